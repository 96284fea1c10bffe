"""Merges equal their formulas exactly, tensor by tensor, on tiny Llamas saved in the test."""

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_LLAMA
from safetensors.torch import load_file, save_file
from torch.testing import assert_close
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from contracts.layout import EXPORT_MARKER, RunLayout
from contracts.recipe import RecipeError, load_recipe
from training.merge import merger as merger_module
from training.merge.config import Merge, MergeError, MergeRecipe
from training.merge.merger import run_merges, summary
from training.merge.methods import magnitude_mask, merge_tensor

EMBEDDINGS = {"model.embed_tokens.weight", "lm_head.weight"}
EXTRA_ROWS = 8


def save(model, tokenizer, folder, **kwargs):
    model.save_pretrained(folder, **kwargs)
    tokenizer.save_pretrained(folder)
    return str(folder)


def perturbed(model, seed):
    """The model plus small noise on every weight: a fine-tune of it."""
    torch.manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny):
    """base; cpt and chat fine-tuned from it; `wide`, cpt with 8 new vocabulary rows; cpt sharded."""
    tokenizer = tiny[1]
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA, vocab_size=len(tokenizer)))
    cpt = perturbed(base, 1)
    wide = perturbed(cpt, 3)
    wide.resize_token_embeddings(len(tokenizer) + EXTRA_ROWS)
    with torch.no_grad():
        for m in (wide.get_input_embeddings(), wide.get_output_embeddings()):
            m.weight[-EXTRA_ROWS:] = torch.randn(EXTRA_ROWS, m.weight.shape[1])
    sharded = save(cpt, tokenizer, root / "sharded", max_shard_size="20KB")
    # beside the index, a file that is no part of the model (Mistral's repositories ship consolidated.*)
    save_file({"layers.0.attention.wq.weight": torch.ones(2)}, root / "sharded" / "consolidated.safetensors")
    return {
        "sharded": sharded,
        "base": save(base, tokenizer, root / "base"),
        "cpt": save(cpt, tokenizer, root / "cpt"),
        "chat": save(perturbed(base, 2), tokenizer, root / "chat"),
        "wide": save(wide, tokenizer, root / "wide"),
    }


def weights(folder) -> dict[str, torch.Tensor]:
    out = {}
    for shard in sorted(folder.glob("*.safetensors")):
        out |= load_file(shard)
    return out


def run(tmp_path, merges: dict) -> tuple[MergeRecipe, dict]:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "output_dir": str(tmp_path / "out"), "merge": merges}))
    recipe = load_recipe(path, MergeRecipe)
    return recipe, run_merges(recipe)


def merged(tmp_path, spec: dict) -> dict[str, torch.Tensor]:
    """The one output of one merge, after checking it loads with transformers."""
    _, results = run(tmp_path, {"x": spec})
    (folder,) = results["x"]
    assert_loads(folder)
    return weights(folder)


def assert_loads(folder):
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("def merge(a, b):", return_tensors="pt").input_ids
    assert torch.isfinite(model(ids).logits).all()
    assert not folder.with_name(folder.name + ".partial").exists()


def model(models, name, **parameters) -> dict:
    return {"model": models[name], "parameters": parameters} if parameters else {"model": models[name]}


def weights_of(models, *names) -> list[dict[str, torch.Tensor]]:
    return [weights(Path(models[name])) for name in names]


def chat_vector(models, first: str, skip: bool) -> dict:
    return {
        "merge_method": "chat_vector",
        "base_model": models["base"],
        "models": [{"model": models[first]}, {"model": models["chat"]}],
        "parameters": {"skip_embeddings": skip},
    }


def test_linear_is_the_weighted_mean_or_sum(tmp_path, models):
    a, b = weights_of(models, "cpt", "chat")
    spec = {
        "merge_method": "linear",
        "models": [model(models, "cpt", weight=0.3), model(models, "chat", weight=0.5)],
    }
    recipe, results = run(tmp_path, {"mean": spec, "sum": spec | {"parameters": {"normalize": False}}})
    mean, total = (weights(results[k][0]) for k in ("mean", "sum"))
    for name in a:
        assert_close(mean[name], (0.3 * a[name] + 0.5 * b[name]) / 0.8)
        assert_close(total[name], 0.3 * a[name] + 0.5 * b[name])
    assert_loads(results["mean"][0])
    text = summary(recipe, results)
    assert "mean: linear" in text and str(results["sum"][0]) in text


def test_interpolation_endpoints_are_the_sources(tmp_path, models):
    a, b = weights_of(models, "base", "cpt")
    spec = {
        "merge_method": "linear",
        "models": [model(models, "base"), model(models, "cpt")],
        "interpolate": [0.0, 0.5, 1.0],
        "dtype": "bfloat16",
    }
    _, results = run(tmp_path, {"wise": spec})
    assert [f.name for f in results["wise"]] == ["t0", "t0.5", "t1"]
    start, middle, end = (weights(f) for f in results["wise"])
    for name in a:
        assert torch.equal(start[name], a[name].bfloat16())
        assert torch.equal(end[name], b[name].bfloat16())
        assert_close(middle[name], (0.5 * a[name] + 0.5 * b[name]).bfloat16())
    assert json.loads((results["wise"][1] / "config.json").read_text())["dtype"] == "bfloat16"
    for folder in results["wise"]:
        assert_loads(folder)


def test_task_arithmetic_scales_the_weighted_deltas_by_lambda(tmp_path, models):
    base, a, b = weights_of(models, "base", "cpt", "chat")
    out = merged(
        tmp_path,
        {
            "merge_method": "task_arithmetic",
            "base_model": models["base"],
            "models": [model(models, "cpt", weight=0.7), model(models, "chat", weight=0.4)],
            "parameters": {"lambda": 0.5},
        },
    )
    for name in base:
        assert_close(
            out[name], base[name] + 0.5 * (0.7 * (a[name] - base[name]) + 0.4 * (b[name] - base[name]))
        )


@pytest.mark.parametrize("skip", [True, False])
def test_chat_vector_adds_the_chat_delta_to_the_cpt_model(tmp_path, models, skip):
    base, cpt, chat = weights_of(models, "base", "cpt", "chat")
    out = merged(tmp_path, chat_vector(models, "cpt", skip))
    for name in base:
        if skip and name in EMBEDDINGS:
            assert torch.equal(out[name], cpt[name])
        else:
            assert_close(out[name], cpt[name] + (chat[name] - base[name]))


@pytest.mark.parametrize("skip", [True, False])
def test_a_resized_vocabulary_keeps_its_new_rows(tmp_path, models, skip):
    base, wide, chat = weights_of(models, "base", "wide", "chat")
    out = merged(tmp_path, chat_vector(models, "wide", skip))
    for name in EMBEDDINGS:
        rows = len(base[name])
        assert out[name].shape == wide[name].shape == (rows + EXTRA_ROWS, TINY_LLAMA["hidden_size"])
        assert torch.equal(out[name][rows:], wide[name][rows:])
        expected = wide[name][:rows] if skip else wide[name][:rows] + chat[name] - base[name]
        assert_close(out[name][:rows], expected, rtol=0, atol=0 if skip else 1e-6)


def test_ties_elects_a_sign_and_normalises_by_the_agreeing_weights():
    base = torch.ones(4)
    deltas = [torch.tensor([3.0, -1.0, 0.5, -2.0]), torch.tensor([-1.0, -2.5, 1.5, 0.5])]
    spec = Merge.model_validate(
        {
            "merge_method": "ties",
            "base_model": "b",
            "models": [
                {"model": "x", "parameters": {"weight": 1}},
                {"model": "y", "parameters": {"weight": 2}},
            ],
        }
    )
    # weighted deltas [3, -1, .5, -2] and [-2, -5, 3, 1]: elected signs + - + -, so the second model's
    # first and last entries disagree and drop out of both the sum and the divisor
    out = merge_tensor(spec, "w", base, [base + d for d in deltas], [1.0, 2.0])
    assert_close(out, torch.tensor([1 + 3.0, 1 - 6.0 / 3, 1 + 3.5 / 3, 1 - 2.0]))
    sparse = spec.model_copy(update={"models": [m.model_copy(update={"parameters": m.parameters.model_copy(
        update={"density": 0.5})}) for m in spec.models]})  # fmt: skip
    # top-2 magnitudes: [3, 0, 0, -2] and [0, -2.5, 1.5, 0]; zeros vote for no sign
    out = merge_tensor(sparse, "w", base, [base + d for d in deltas], [1.0, 2.0])
    assert_close(out, torch.tensor([1 + 3.0, 1 - 5.0 / 2, 1 + 3.0 / 2, 1 - 2.0]))


def test_ties_keeps_the_largest_density_share_of_each_delta(tmp_path, models):
    base, cpt = weights_of(models, "base", "cpt")
    spec = {
        "merge_method": "ties",
        "base_model": models["base"],
        "models": [model(models, "cpt", density=0.3)],
    }
    out = merged(tmp_path, spec)
    for name in base:
        delta = cpt[name] - base[name]
        kept = out[name] != base[name]
        assert kept.sum() == int(0.3 * delta.numel()) == magnitude_mask(delta, 0.3).sum()
        assert delta[kept].abs().min() >= delta[~kept].abs().max()
        assert_close(out[name][kept], cpt[name][kept])


def test_dare_rescaling_keeps_the_delta_in_expectation():
    torch.manual_seed(0)
    base, delta = torch.randn(8, 8), torch.randn(8, 8)
    spec = Merge.model_validate(
        {
            "merge_method": "dare_linear",
            "base_model": "b",
            "models": [{"model": "x", "parameters": {"density": 0.3}}],
        }
    )
    mean = (
        sum(
            merge_tensor(spec.model_copy(update={"seed": s}), "w", base, [base + delta], [1.0]) - base
            for s in range(2000)
        )
        / 2000
    )
    # per entry the mean of 2000 draws of delta·Bernoulli(0.3)/0.3 has a standard deviation of 3.4% of
    # |delta|: all 64 stay within 15% of the largest |delta|
    assert (mean - delta).abs().max() <= 0.15 * delta.abs().max()
    plain = spec.model_copy(update={"parameters": spec.parameters.model_copy(update={"rescale": False})})
    unscaled = merge_tensor(plain, "w", base, [base + delta], [1.0]) - base
    assert_close(merge_tensor(spec, "w", base, [base + delta], [1.0]) - base, unscaled / 0.3)


def test_dare_is_deterministic_for_a_seed(tmp_path, models):
    spec = {
        "merge_method": "dare_ties",
        "base_model": models["base"],
        "models": [model(models, "cpt", density=0.5), model(models, "chat", density=0.5)],
        "seed": 7,
    }
    _, results = run(tmp_path, {"a": spec, "b": spec, "c": spec | {"seed": 8}})
    a, b, c = (weights(results[k][0]) for k in "abc")
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not torch.equal(a["model.layers.0.mlp.up_proj.weight"], c["model.layers.0.mlp.up_proj.weight"])


def test_sharded_inputs_and_outputs_give_the_same_weights(tmp_path, models, monkeypatch):
    _, whole = run(tmp_path / "whole", {"x": chat_vector(models, "cpt", False)})
    monkeypatch.setattr(merger_module, "MAX_SHARD_SIZE", 20_000)
    _, parts = run(tmp_path / "parts", {"x": chat_vector(models, "sharded", False)})
    folder = parts["x"][0]
    shards = sorted(folder.glob("*.safetensors"))
    sizes = [[t.nbytes for t in load_file(shard).values()] for shard in shards]
    assert len(shards) > 2 and all(len(s) == 1 or sum(s) <= 20_000 for s in sizes)  # a larger tensor alone
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert {(folder / f) for f in index["weight_map"].values()} == set(shards)
    expected, got = weights(whole["x"][0]), weights(folder)
    assert expected.keys() == got.keys() and all(torch.equal(expected[n], got[n]) for n in expected)
    assert_loads(folder)


def test_a_finished_merge_is_kept_until_its_config_or_inputs_change(tmp_path, models):
    chat = shutil.copytree(models["chat"], tmp_path / "chat")
    spec = {
        "merge_method": "linear",
        "models": [model(models, "cpt"), {"model": str(chat)}],
        "interpolate": [0, 1],
    }
    _, results = run(tmp_path, {"x": spec})
    markers = [folder / EXPORT_MARKER for folder in results["x"]]
    written = [m.stat().st_mtime_ns for m in markers]
    run(tmp_path, {"x": spec | {"interpolate": [0, 0.5, 1]}})  # one more weight: the others are kept
    assert [m.stat().st_mtime_ns for m in markers] == written
    save_file(load_file(chat / "model.safetensors"), chat / "model.safetensors")  # chat trained again
    run(tmp_path, {"x": spec})
    assert all(m.stat().st_mtime_ns != w for m, w in zip(markers, written))
    assert json.loads(markers[1].read_text())["weights"] == [0, 1]


def test_stage_exports_resolve_once_complete(tmp_path, models):
    layout = RunLayout(tmp_path / "out", "m")
    for stage in (layout.train.export("cpt"), layout.train_run("small").export("cpt")):
        shutil.copytree(models["cpt"], stage)
    spec = {"merge_method": "linear", "models": [{"model": "hf/cpt"}, {"model": "selections/small/hf/cpt"}]}
    with pytest.raises(MergeError, match=r"merge\.x\.models\[0\]\.model: hf/cpt: .* run `make train`"):
        run(tmp_path, {"x": spec})
    for stage in (layout.train.export("cpt"), layout.train_run("small").export("cpt")):
        (stage / EXPORT_MARKER).write_text("{}")
    cpt = weights_of(models, "cpt")[0]
    out = weights(run(tmp_path, {"x": spec})[1]["x"][0])
    assert all(torch.equal(out[name], cpt[name]) for name in cpt)


@pytest.fixture(scope="module")
def misfits(tmp_path_factory, models):
    """Folders that cannot be merged with cpt: a tensor missing, a tensor reshaped, no safetensors."""
    root = tmp_path_factory.mktemp("misfits")
    cpt = weights_of(models, "cpt")[0]
    for name, tensors in [
        ("no-norm", {n: t for n, t in cpt.items() if n != "model.norm.weight"}),
        ("short-norm", cpt | {"model.norm.weight": torch.ones(5)}),
        ("empty", {}),
    ]:
        (root / name).mkdir()
        if tensors:
            save_file(tensors, root / name / "model.safetensors")
    return models | {name: str(root / name) for name in ("no-norm", "short-norm", "empty")}


@pytest.mark.parametrize(
    ("second", "error"),
    [
        ("wide", r"lm_head\.weight has shape \[\d+, 32\], merge\.x\.models\[0\]\.model has"),
        ("short-norm", r"model\.norm\.weight has shape \[5\]"),
        ("no-norm", r"has no tensor model\.norm\.weight"),
        ("empty", r"holds no \*\.safetensors"),
        ("./nowhere", r"\./nowhere: no such folder"),
    ],
)
def test_inputs_that_do_not_fit_the_first_model_are_named(tmp_path, misfits, second, error):
    """Only the first model may have more vocabulary rows (its new tokens); nothing else may differ."""
    spec = {
        "merge_method": "linear",
        "models": [model(misfits, "cpt"), {"model": misfits.get(second, second)}],
    }
    with pytest.raises(MergeError, match=rf"merge\.x\.models\[1\]\.model: .*{error}"):
        run(tmp_path, {"x": spec})


TIES = {"merge_method": "ties", "base_model": "b"}


def with_parameters(*parameters: dict) -> dict:
    return {"models": [{"model": f"m{i}", "parameters": p} for i, p in enumerate(parameters)]}


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"merge_method": "slerp"}, r"merge\.x\.merge_method: Input should be 'linear'"),
        (TIES | {"base_model": None}, r"merge\.x: base_model: ties needs one"),
        ({"base_model": "b"}, r"merge\.x: base_model: a linear merge has none"),
        (TIES | {"interpolate": [0.5]}, r"merge\.x: interpolate: only for a linear merge of exactly two"),
        (
            {"interpolate": [0.5], "models": [{"model": "a"}]},
            r"merge\.x: interpolate: only for a linear merge",
        ),
        ({"interpolate": [0.5, 0.5]}, r"merge\.x: interpolate: a weight is named more than once"),
        (
            {"interpolate": [0.5]} | with_parameters({"weight": 2}, {}),
            r"merge\.x: models\[0\]\.parameters\.weight: not read by linear",
        ),
        (
            TIES | with_parameters({"density": 0}),
            r"merge\.x\.models\.0\.parameters\.density: Input should be greater",
        ),
        (
            TIES | with_parameters({"density": 1.5}),
            r"merge\.x\.models\.0\.parameters\.density: Input should be less",
        ),
        (
            with_parameters({"density": 0.5}),
            r"merge\.x: models\[0\]\.parameters\.density: not read by linear \(it reads normalize, weight\)",
        ),
        (TIES | {"parameters": {"rescale": True}}, r"merge\.x: parameters\.rescale: not read by ties"),
        (
            {"merge_method": "chat_vector", "base_model": "b", "models": [{"model": "a"}]},
            r"merge\.x: models: chat_vector takes two",
        ),
        ({"dtype": "int8"}, r"merge\.x\.dtype: Input should be 'float32'"),
        ({"weights": [1]}, r"merge\.x\.weights: unknown key"),
        (with_parameters({"wieght": 2}), r"merge\.x\.models\.0\.parameters\.wieght: unknown key"),
        (with_parameters({"weight": 1}, {"weight": -1}), r"merge\.x: models: the weights sum to 0"),
    ],
)
def test_config_errors_name_the_key(tmp_path, spec, error):
    path = tmp_path / "recipe.yaml"
    merge = {"merge_method": "linear", "models": [{"model": "a"}, {"model": "b"}]} | spec
    path.write_text(yaml.safe_dump({"name": "m", "merge": {"x": merge}}))
    with pytest.raises(RecipeError, match=rf"recipe\.yaml: {error}"):
        load_recipe(path, MergeRecipe)


def test_a_merge_name_must_be_a_safe_folder_name(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "m", "merge": {"../up": {"merge_method": "linear", "models": [{"model": "a"}]}}}
        )
    )
    with pytest.raises(RecipeError, match=r"merge: .*is not a safe name"):
        load_recipe(path, MergeRecipe)
