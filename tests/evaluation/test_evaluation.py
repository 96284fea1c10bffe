"""The harness core: task files, bootstrap intervals, the eval command (scoring: test_scoring.py)."""

import json

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from contracts.items import TaskError, load_items
from contracts.layout import TrainLayout
from evaluation.intervals import (
    bootstrap_interval,
    paired_difference,
    paired_ratio_difference,
    ratio_interval,
)


def test_malformed_rows_are_reported_with_file_and_line(tmp_path):
    good = {"id": "a", "question": "q?", "choices": ["x", "y"], "answer": 1}
    path = tmp_path / "task.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(good | {"answer": 2}) + "\n")
    with pytest.raises(TaskError, match=f"{path}:3: answer must index choices"):
        load_items(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(TaskError, match=f"{path}:2: not JSON"):
        load_items(path)


def test_shared_benchmarks_load(kit):
    for path in sorted((kit / "benchmarks").glob("*.jsonl")):
        items = load_items(path)
        assert items and all(0 <= i.answer < len(i.choices) for i in items)


def test_bootstrap_interval_covers_the_true_mean_at_its_rate():
    rng = np.random.default_rng(1)
    trials, covered = 300, 0
    for trial in range(trials):
        sample = rng.random(150) < 0.3  # per-item correctness with true accuracy 0.3
        low, high = bootstrap_interval(sample, resamples=500, seed=trial)
        covered += low <= 0.3 <= high
    assert 0.90 <= covered / trials <= 0.98


def test_paired_difference_says_better_only_beyond_noise():
    rng = np.random.default_rng(2)
    base = (rng.random(400) < 0.5).astype(float)
    better = np.where(rng.random(400) < 0.3, 1.0, base)  # fixes ~15% of the items
    assert paired_difference(base, better)["significant"]
    noisy = np.where(rng.random(400) < 0.05, 1 - base, base)  # flips a few either way
    assert not paired_difference(base, noisy)["significant"]


def test_eval_command_compares_models_with_intervals_and_exports_lm_eval_tasks(tiny, tmp_path):
    import subprocess
    import sys

    import yaml
    from conftest import ROOT

    model, tokenizer = tiny
    folders = []
    for name, seed in (("first", 0), ("second", 1), ("third", 2)):
        torch.manual_seed(seed)
        LlamaForCausalLM(model.config).save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
        folders.append(str(tmp_path / name))
    demo = ROOT / "data" / "tasks" / "gnucash-demo.jsonl"
    task = tmp_path / "task.jsonl"
    task.write_text("".join(demo.read_text().splitlines(keepends=True)[:6]))
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "evalrun",
                "output_dir": str(tmp_path / "out"),
                "eval": {
                    "models": folders,
                    "baselines": ["second", "third"],  # e.g. the full corpus and a random selection
                    "tasks": [{"path": str(task), "shots": 2, "fewshot": str(demo)}],
                },
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "eval", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out" / "evalrun" / "eval"
    results = json.loads((out / "results.json").read_text())
    entry = results["tasks"]["gnucash_demo"]
    assert entry["n"] == 6 and set(entry["scores"]) == {"first", "second", "third"}
    low, high = entry["scores"]["first"]["acc"]["ci95"]
    assert low <= entry["scores"]["first"]["acc"]["mean"] <= high
    assert set(entry["paired"]) == {"first - second", "third - second", "first - third", "second - third"}
    assert set(entry["paired"]["first - second"]) == {"acc", "acc_norm", "acc_bytes"}
    assert results["prefix"] == {"first": "eos", "second": "eos", "third": "eos"}
    assert "paired differences" in result.stderr + result.stdout
    assert "Paired differences" in (out / "report.html").read_text()
    spec = yaml.safe_load((out / "lm_eval_tasks" / "gnucash_demo.yaml").read_text())
    assert spec["dataset_path"] == "json" and spec["dataset_kwargs"]["data_files"]["test"] == str(
        task.resolve()
    )


def test_eval_recipe_errors_name_the_key_and_file(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    recipe = tmp_path / "bad.yaml"
    recipe.write_text("name: x\neval:\n  tasks:\n    - {path: nowhere/*.jsonl}\n  batchsize: 4\n")
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "eval", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"{recipe}: eval.batchsize: unknown key" in result.stderr


def test_paired_bits_per_byte_of_a_model_against_itself_is_exactly_zero():
    rng = np.random.default_rng(3)
    n_bytes = rng.integers(50, 5000, size=40)
    bits = n_bytes * rng.uniform(0.8, 1.6, size=40)
    same = paired_ratio_difference(bits, n_bytes, bits, n_bytes)
    assert same == {"mean": 0.0, "ci95": [0.0, 0.0], "significant": False}
    low, high = ratio_interval(bits, n_bytes)
    assert low < bits.sum() / n_bytes.sum() < high
    worse = paired_ratio_difference(bits, n_bytes, bits * 1.05, n_bytes)  # 5% more bits on every document
    assert worse["significant"] and worse["ci95"][0] > 0


def _metrics(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _steps(stage, start_step, tokens_per_s, val_loss):
    """Step rows of one stage; `val_loss` maps stage_step -> {corpus: loss} (0: the stage start row)."""
    rows = [{"step": start_step, "stage": stage, "stage_step": 0, "tokens": 0, "val_loss": val_loss[0]}]
    for i, speed in enumerate(tokens_per_s, 1):
        row = {"step": start_step + i, "stage": stage, "stage_step": i, "loss": 3.0, "lr": 1e-3}
        rows.append(
            row
            | {"grad_norm": 1.0, "tokens_per_s": speed, "tokens": 16 * i, "seconds": 16 / speed}
            | ({"val_loss": val_loss[i]} if i in val_loss else {})
        )
    return rows


@pytest.fixture(scope="module")
def trained_run(tiny, tmp_path_factory):
    """A run as `make train` leaves it (stages base and cpt, selection `rand` of cpt) and a reference
    model with base's weights, evaluated once: 16 tokens per step (global_batch 2 x seq_len 8)."""
    import gzip

    import yaml
    from conftest import ROOT

    from evaluation.config import load_eval_config
    from evaluation.harness import run_eval

    model, tokenizer = tiny
    tmp = tmp_path_factory.mktemp("trained")
    train = tmp / "out" / "run" / "train"
    for folder, seed in ((tmp / "reference", 0), (train / "hf" / "base", 0), (train / "hf" / "cpt", 1)):
        torch.manual_seed(seed)
        LlamaForCausalLM(model.config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    torch.manual_seed(2)
    LlamaForCausalLM(model.config).save_pretrained(train / "selections" / "rand" / "hf" / "cpt")
    tokenizer.save_pretrained(train / "selections" / "rand" / "hf" / "cpt")
    for export in (train / "hf" / "base", train / "hf" / "cpt", train / "selections" / "rand" / "hf" / "cpt"):
        (export / "export.json").write_text("{}")  # the trainer's mark of a complete export
    start = {"domain": 4.0, "replay": 3.4}
    _metrics(
        train / "metrics.jsonl",
        _steps("base", 0, [16.0, 8.0], {0: {"domain": 5.0, "replay": 4.0}, 2: {"domain": 4.5, "replay": 3.5}})
        + _steps(
            "cpt",
            2,
            [32.0] * 4,
            {0: start, 2: {"domain": 3.0, "replay": 3.6}, 4: {"domain": 2.0, "replay": 3.8}},
        ),
    )
    _metrics(
        train / "selections" / "rand" / "metrics.jsonl",
        _steps("cpt", 2, [16.0] * 3, {0: start, 3: {"domain": 2.9, "replay": 3.5}}),
    )
    docs = {
        "domain": [
            "A split transaction divides one amount between accounts. " * 3,
            "Assets minus liabilities.",
        ],
        "replay": ["PostgreSQL stores tables in heap files.", "def main():\n    return 0\n" * 4, "Debian"],
    }
    for corpus, texts in docs.items():
        (tmp / "out" / "run" / "corpus" / "docs" / corpus / "val").mkdir(parents=True)
        with gzip.open(tmp / "out" / "run" / "corpus" / "docs" / corpus / "val" / "000.jsonl.gz", "wt") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    recipe = tmp / "eval.yaml"
    task = {"path": str(ROOT / "data" / "tasks" / "gnucash-demo.jsonl"), "sample": 5}
    eval_section = {
        "tasks": [task],
        "reference_models": {"original": str(tmp / "reference")},
        "baselines": ["original", "cpt"],
        "perplexity_doc_chars": 60,
        "perplexity_window": 8,
    }
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "run",
                "output_dir": str(tmp / "out"),
                "eval": eval_section,
            }
        )
    )
    run = load_eval_config(recipe)
    return run, run_eval(run), docs


def test_reference_models_come_first_and_can_be_a_baseline(trained_run):
    _, results, _ = trained_run
    assert list(results["models"]) == ["original", "base", "cpt", "cpt-rand"]
    pairs = set(results["tasks"]["gnucash_demo"]["paired"])
    assert pairs == {
        "base - original",
        "cpt - original",
        "cpt-rand - original",
        "original - cpt",
        "base - cpt",
        "cpt-rand - cpt",
    }
    assert set(results["perplexity_paired"]["domain"]) == pairs
    same = results["perplexity_paired"]["domain"]["base - original"]  # the same weights
    assert same == {"mean": 0.0, "ci95": [0.0, 0.0], "significant": False}


def test_sample_scores_the_same_n_items_for_every_model(trained_run):
    from evaluation.tasks import sample_items

    run, results, _ = trained_run
    entry = results["tasks"]["gnucash_demo"]
    assert entry["n"] == 5 and entry["file_items"] == 16
    ids = [[r["id"] for r in per_item] for per_item in entry["items"].values()]
    assert len(ids) == 4 and all(i == ids[0] for i in ids) and len(set(ids[0])) == 5
    assert ids[0] == sorted(ids[0])  # file order
    every = load_items(run.eval.tasks[0].files()[0])
    assert ids[0] == [i.id for i in sample_items(every, 5, run.eval.seed)]  # drawn with eval.seed
    assert ids[0] != [i.id for i in sample_items(every, 5, run.eval.seed + 1)]


def test_bits_per_byte_keep_totals_intervals_and_cut_documents(trained_run):
    _, results, docs = trained_run
    for corpus, texts in docs.items():
        n_bytes = sum(len(t[:60].encode()) for t in texts)
        for model, summary in results["perplexity_intervals"][corpus].items():
            assert summary["bytes"] == n_bytes and summary["documents"] == len(texts)
            assert summary["ci95"][0] <= summary["bpb"] <= summary["ci95"][1]
            assert results["perplexity_bits_per_byte"][corpus][model] == summary["bpb"]
            bits = results["perplexity_documents"][corpus]["bits"][model]
            assert sum(bits) / n_bytes == pytest.approx(summary["bpb"], abs=1e-4)


def test_cost_and_equal_compute_come_from_the_training_metrics(trained_run):
    _, results, _ = trained_run
    assert results["cost"] == {
        "original": {"tokens": 0, "seconds": 0.0, "cumulative_tokens": 0},
        "base": {"tokens": 32, "seconds": 3.0, "cumulative_tokens": 32},  # 16/16 + 16/8 seconds
        "cpt": {"tokens": 64, "seconds": 2.0, "cumulative_tokens": 96},
        "cpt-rand": {"tokens": 48, "seconds": 3.0, "cumulative_tokens": 80},  # from base's export
    }
    # the full run's cpt at 48 tokens: halfway between its evaluations at 32 and 64 tokens
    assert results["equal_compute"] == {
        "cpt-rand": {
            "tokens": 48,
            "selection_val_loss": {"domain": 2.9, "replay": 3.5},
            "full_run_val_loss_at_tokens": {"domain": 2.5, "replay": 3.7},
        }
    }


def test_a_reference_model_from_another_run_costs_what_that_run_trained(tmp_path):
    """Another recipe's arm named in `eval.reference_models` (its `train/hf/<stage>` export) shows the
    tokens and seconds of its own run; a converted or hub model trained nothing here."""
    from evaluation.harness import reference_cost

    other = TrainLayout(tmp_path / "other" / "train")
    _metrics(other.metrics, _steps("cpt", 0, [16.0, 8.0], {0: {"domain": 4.0}}))
    other.export("cpt").mkdir(parents=True)
    assert reference_cost(str(other.export("cpt"))) == {"tokens": 32, "seconds": 3.0, "cumulative_tokens": 32}
    zero = {"tokens": 0, "seconds": 0.0, "cumulative_tokens": 0}
    assert reference_cost(str(other.export("not-trained"))) == zero
    assert reference_cost(str(tmp_path / "models" / "converted")) == zero
    assert reference_cost("HuggingFaceTB/SmolLM2-135M") == zero


def test_equal_compute_is_null_where_the_full_run_trained_less():
    from evaluation.costs import equal_compute

    start = {"domain": 4.0}
    main = _steps("cpt", 0, [32.0] * 2, {0: start, 2: {"domain": 3.0}})
    longer = _steps("cpt", 0, [32.0] * 3, {0: start, 3: {"domain": 2.8}})
    assert equal_compute(longer, main, "cpt")["full_run_val_loss_at_tokens"] is None
    assert equal_compute(main, main, "cpt")["full_run_val_loss_at_tokens"] == {"domain": 3.0}


def test_eval_report_and_console_show_bits_per_byte_cost_and_pairs(trained_run):
    from rich.console import Console

    from evaluation.__main__ import print_eval
    from evaluation.report import render_eval_report

    run, results, _ = trained_run
    html = render_eval_report(results)
    assert html.count("<img") == 2 and "lower is better" in html and "Equal compute" in html
    assert "cpt-rand - original" in html and "beyond noise" in html
    console = Console(record=True, width=200)
    print_eval(console, run, results)
    text = console.export_text()
    assert "paired differences in bits per byte" in text and "cpt-rand - cpt" in text
    assert "48" in text and "equal compute" in text


def test_sample_must_be_positive_and_baselines_known(tmp_path):
    import yaml
    from conftest import ROOT

    from contracts.recipe import RecipeError
    from evaluation.config import EvalError, load_eval_config
    from evaluation.harness import choose_models

    task = str(ROOT / "data" / "tasks" / "gnucash-demo.jsonl")
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(yaml.safe_dump({"name": "x", "eval": {"tasks": [{"path": task, "sample": 0}]}}))
    with pytest.raises(RecipeError, match="eval.tasks.0.sample"):
        load_eval_config(recipe)
    spec = {"reference_models": {"original": "somewhere"}, "baselines": ["cpt"]}
    recipe.write_text(yaml.safe_dump({"name": "x", "output_dir": str(tmp_path), "eval": spec}))
    with pytest.raises(EvalError, match=r"eval.baselines: \['cpt'\]"):
        choose_models(load_eval_config(recipe))


def _eval_recipe(tmp_path, eval_section: dict, name: str = "guarded"):
    import yaml

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "output_dir": str(tmp_path / "out"), "eval": eval_section}))
    return path


def test_eval_models_are_model_references(tmp_path):
    """`hf/<stage>` and `selections/<selection>/hf/<stage>` name the run's exports (labelled as the
    run's own exports are); a `gguf:` model not converted yet says to run `make model`."""
    from evaluation.config import EvalError, load_eval_config
    from evaluation.harness import choose_models

    train = TrainLayout(tmp_path / "out" / "guarded" / "train")
    rand = TrainLayout(train.root / "selections" / "rand")
    for folder in (train.export("cpt"), rand.export("cpt")):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "export.json").write_text("{}")
    section = {"models": ["hf/cpt", "selections/rand/hf/cpt"]}
    assert choose_models(load_eval_config(_eval_recipe(tmp_path, section))) == {
        "cpt": str(train.export("cpt")),
        "cpt-rand": str(rand.export("cpt")),
    }
    section["reference_models"] = {"original": "gguf:some_package/Model.Q4_1.gguf"}
    with pytest.raises(EvalError, match=r"eval\.reference_models\.original: .*run `make model`"):
        choose_models(load_eval_config(_eval_recipe(tmp_path, section)))


def _demo_rows(n: int) -> list[dict]:
    from conftest import ROOT

    lines = (ROOT / "data" / "tasks" / "gnucash-demo.jsonl").read_text().splitlines()[:n]
    return [json.loads(line) for line in lines]


def _write_rows(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_a_task_name_from_data_never_becomes_a_path(tiny, tmp_path):
    """A row whose `task` is a path is left out with its reason, the rest of its file is scored, and a
    file of nothing but such rows is recorded row by row: no crash, nothing written elsewhere."""
    from evaluation.config import load_eval_config
    from evaluation.harness import run_eval

    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    rows = _demo_rows(3)
    mixed = _write_rows(tmp_path / "mixed.jsonl", [rows[0] | {"task": "../../recipes/default"}, *rows[1:]])
    hostile = _write_rows(tmp_path / "hostile.jsonl", [rows[0] | {"id": "x", "task": ".."}])
    victim = tmp_path / "out" / "guarded" / "recipes" / "default.yaml"  # where ../../ would land
    victim.parent.mkdir(parents=True)
    victim.write_text("name: default\n")
    section = {
        "models": [str(tmp_path / "m")],
        "tasks": [{"path": mixed}, {"path": hostile}],
        "perplexity": [],
    }
    results = run_eval(load_eval_config(_eval_recipe(tmp_path, section)))
    assert list(results["tasks"]) == ["gnucash_demo"] and results["tasks"]["gnucash_demo"]["n"] == 2
    rejected = results["rejected_items"]
    assert [(r["file"], r["id"]) for r in rejected] == [(mixed, rows[0]["id"]), (hostile, "x")]
    assert all("is not a safe name" in r["reason"] for r in rejected)
    assert victim.read_text() == "name: default\n"
    written = tmp_path / "out" / "guarded" / "eval" / "lm_eval_tasks"
    assert [p.name for p in written.iterdir()] == ["gnucash_demo.yaml"]


def test_two_task_files_with_one_task_are_an_error_before_any_model_loads(tmp_path):
    from evaluation.config import EvalError, load_eval_config
    from evaluation.harness import run_eval

    (tmp_path / "unloadable").mkdir()
    (tmp_path / "unloadable" / "config.json").write_text("{}")  # complete-looking: loading it would fail
    a = _write_rows(tmp_path / "a.jsonl", _demo_rows(2))
    b = _write_rows(tmp_path / "b.jsonl", _demo_rows(3)[1:])
    section = {"models": [str(tmp_path / "unloadable")], "tasks": [{"path": a}, {"path": b}]}
    with pytest.raises(EvalError, match=f"task 'gnucash_demo' is in two files: {a} and {b}"):
        run_eval(load_eval_config(_eval_recipe(tmp_path, section)))
    assert not (tmp_path / "out" / "guarded" / "eval").exists()


@pytest.mark.parametrize(
    "section, key, words",
    [
        (
            {"models": ["a/train/hf/cpt", "b/train/hf/cpt"]},
            "eval.models",
            "'a/train/hf/cpt' and 'b/train/hf/cpt'",
        ),
        (
            {"reference_models": {"cpt": "x/base"}, "models": ["a/cpt"]},
            "eval.models",
            "reference model 'cpt'",
        ),
        ({"models": ["a/cpt"], "baselines": ["cpt", "base"]}, "eval.baselines", "['base'] are not among"),
        ({"models": ["a/cpt"], "baselines": ["cpt", "cpt"]}, "eval.baselines", "named twice"),
        ({"models": ["a/.."]}, "eval.models", "its label '..' is not a safe name"),
        ({"reference_models": {"../x": "x/base"}}, "eval.reference_models", "'../x' is not a safe name"),
        ({"perplexity": ["domian"]}, "eval.perplexity.0", "'domain' or 'replay'"),
    ],
)
def test_model_labels_baselines_and_corpora_are_checked_at_config_time(tmp_path, section, key, words):
    from contracts.recipe import RecipeError
    from evaluation.config import load_eval_config

    path = _eval_recipe(tmp_path, section)
    with pytest.raises(RecipeError) as err:
        load_eval_config(path)
    message = str(err.value)
    assert f"{path}: {key}" in message and words in message, message


def test_only_complete_exports_with_distinct_labels_are_evaluated(tmp_path):
    from evaluation.config import EvalError, load_eval_config
    from evaluation.harness import choose_models, default_models

    def export(folder, complete=True):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        if complete:
            (folder / "export.json").write_text("{}")  # written last by the trainer

    train = tmp_path / "out" / "guarded" / "train"
    _metrics(train / "metrics.jsonl", _steps("base", 0, [16.0], {0: {}}) + _steps("cpt", 1, [16.0], {0: {}}))
    export(train / "hf" / "base")
    export(train / "hf" / "cpt", complete=False)  # an export cut short
    run = load_eval_config(_eval_recipe(tmp_path, {}))
    assert default_models(run) == {"base": str(train / "hf" / "base")}
    half = tmp_path / "half"
    half.mkdir()
    with pytest.raises(EvalError, match=f"model 'half': {half} is not a model folder"):
        choose_models(load_eval_config(_eval_recipe(tmp_path, {"models": [str(half)]})))
    # stage `cpt-rand` and selection `rand` of stage `cpt` would share a label
    (train / "hf" / "cpt" / "export.json").write_text("{}")
    _metrics(
        train / "metrics.jsonl", _steps("cpt", 0, [16.0], {0: {}}) + _steps("cpt-rand", 1, [16.0], {0: {}})
    )
    export(train / "hf" / "cpt-rand")
    _metrics(train / "selections" / "rand" / "metrics.jsonl", _steps("cpt", 0, [16.0], {0: {}}))
    export(train / "selections" / "rand" / "hf" / "cpt")
    with pytest.raises(EvalError, match="would both be labelled 'cpt-rand'"):
        choose_models(run)
