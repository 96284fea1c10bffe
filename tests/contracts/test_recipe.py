"""Recipe validation: every error names the key and the file, before any work starts."""

import pytest
import yaml
from conftest import ROOT, run_corpus

from contracts.recipe import RecipeError, UnsafePathError, path_under, remove_under, safe_name
from curation.config import load_corpus_recipe
from selection.config import load_select_recipe
from training.config import load_train_config


def write(tmp_path, data) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def base() -> dict:
    return yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())


def test_default_recipe_is_valid(monkeypatch):
    monkeypatch.chdir(ROOT)
    recipe = load_corpus_recipe("recipes/default.yaml")
    assert recipe.name == "default"
    assert {src.format for src in recipe.inputs} == {"html", "pdf", "warc", "jsonl"}


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        (lambda r: r.update(colour="red"), "colour", "unknown key"),
        (lambda r: r["languages"].update(treshold=0.5), "languages.treshold", "unknown key"),
        (lambda r: r["executor"].update(tasks="many"), "executor.tasks", "integer"),
        (lambda r: r["inputs"][0].update(path="no/such/dir"), "inputs.0.path", "does not exist"),
        (
            lambda r: r["classifiers"]["domain"].update(positive=["nothing/*.html"]),
            "classifiers.domain.positive.0",
            "matches no file",
        ),
        (
            lambda r: r["filters"].update(document={"en": {"gopherr": {}}}),
            "filters",
            "unknown filter `gopherr` under `document.en`",
        ),
        (lambda r: r["filters"].update(en={"c4": False}), "filters", "unknown source kind `en`"),
        (lambda r: r["inputs"][0].update(kind="manual"), "inputs.0.kind", "'web' or 'document'"),
        (lambda r: r["tokenizer"].update(path="x"), "tokenizer", "exactly one of `path` or `train`"),
        (lambda r: r.pop("classifiers"), "classifiers", "Field required"),
        (lambda r: r["inputs"][0].update(limit=0), "inputs.0.limit", "greater than or equal to 1"),
        (lambda r: r["inputs"][0].update(corpus="general"), "inputs.0.corpus", "'domain' or 'replay'"),
        (
            lambda r: r["inputs"][0].update(format="hf", limit=3),
            "inputs.0",
            "`limit` is for files and JSONL/Parquet/WARC records",
        ),
        (
            lambda r: r.update(inputs=[{"path": "no/such.jsonl", "optional": True}]),
            "inputs",
            "every input is optional and absent",
        ),
        (lambda r: r.update(name=".."), "name", "'..' is not a safe name"),
        (lambda r: r.update(name="../../recipes"), "name", "is not a safe name"),
        (lambda r: r.update(select={"budgets": {"..": {}}}), "select.budgets", "'..' is not a safe name"),
    ],
)
def test_errors_name_key_and_file(tmp_path, monkeypatch, mutate, key, words):
    monkeypatch.chdir(ROOT)
    recipe = base()
    mutate(recipe)
    path = write(tmp_path, recipe)
    with pytest.raises(RecipeError) as err:
        load_corpus_recipe(path)
    message = str(err.value)
    assert path in message and key in message and words in message, message


def test_an_absent_optional_input_is_left_out_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    recipe = base()
    recipe["inputs"].append({"name": "kit", "path": "no/such/kit.jsonl.gz", "optional": True})
    loaded = load_corpus_recipe(write(tmp_path, recipe))
    assert [src.label for src in loaded.inputs] == [src["name"] for src in base()["inputs"]]
    assert "inputs.7 (kit): no/such/kit.jsonl.gz is absent; optional, left out" in capsys.readouterr().err
    recipe["inputs"][-1]["optional"] = False
    with pytest.raises(RecipeError, match="inputs.7.path"):
        load_corpus_recipe(write(tmp_path, recipe))


def test_not_yaml_and_not_mapping(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_corpus_recipe(write(tmp_path, "name: [unclosed"))
    with pytest.raises(RecipeError, match="a recipe is a mapping"):
        load_corpus_recipe(write(tmp_path, "- just a list"))


def test_unknown_filter_argument_fails_before_work(tmp_path):
    """A typo in a datatrove filter argument is caught when the pipeline is built, naming it."""
    recipe = base()
    recipe["filters"] = {"document": {"en": {"gopher_quality": {"min_doc_wordz": 3}}}}
    recipe["output_dir"] = str(tmp_path / "out")
    path = write(tmp_path, recipe)
    result = run_corpus(path)
    assert result.returncode == 2
    assert "filters.document.en.gopher_quality" in result.stderr and "min_doc_wordz" in result.stderr
    assert not (tmp_path / "out").exists()


def test_slurm_recipe_builds_a_dependent_job_chain(tmp_path, monkeypatch):
    """No Slurm here: check the chain is built (one job per stage, each depending on the last)."""
    from datatrove.executor import SlurmPipelineExecutor

    from curation.pipeline import CorpusPipeline

    monkeypatch.chdir(ROOT)
    recipe = base()
    recipe["output_dir"] = str(tmp_path / "out")
    slurm = {"partition": "cpu"}
    recipe["executor"] = {"type": "slurm", "tasks": 8, "workers": 4, "tasks_per_job": 2, "slurm": slurm}
    pipeline = CorpusPipeline(load_corpus_recipe(write(tmp_path, recipe)))
    chain = pipeline.executors()
    assert all(isinstance(e, SlurmPipelineExecutor) for e in chain)
    assert [e.depends for e in chain[1:]] == chain[:-1]
    assert chain[0].tasks == 8 and chain[0].partition == "cpu" and chain[0].tasks_per_job == 2
    assert [s.name for s in pipeline.stages][-2:] == ["tokenize", "report"]


def test_slurm_needs_its_section(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    recipe = base()
    recipe["executor"] = {"type": "slurm"}
    with pytest.raises(RecipeError, match="executor: type: slurm needs a `slurm:` section"):
        load_corpus_recipe(write(tmp_path, recipe))
    recipe["executor"] = {"type": "local", "tasks_per_job": 2}
    with pytest.raises(RecipeError, match="executor: `tasks_per_job` is for type: slurm or ray"):
        load_corpus_recipe(write(tmp_path, recipe))


def test_a_recipe_extends_another_key_by_key(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    recipe = load_corpus_recipe("recipes/default-select.yaml")
    assert recipe.inputs == load_corpus_recipe("recipes/default.yaml").inputs
    assert recipe.name == "default-select"
    assert set(load_select_recipe("recipes/default-select.yaml").select.budgets) == {
        "llm",
        "ets",
        "eta",
        "random",
    }
    train = load_train_config("recipes/default-select.yaml").train
    assert train.selections == ["llm", "ets", "eta", "random"]
    assert train.stages[0].name == "base"  # merged into, not replaced
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(RecipeError, match="extends itself"):
        load_corpus_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\nname: c\n")
    with pytest.raises(RecipeError, match="missing.yaml: recipe file not found"):
        load_corpus_recipe(tmp_path / "c.yaml")
    bad = base() | {"select": {"budgets": {"x": {"method": "best"}}}}
    with pytest.raises(RecipeError, match=r"r.yaml: select.budgets.x.method"):
        load_corpus_recipe(write(tmp_path, bad))


def test_train_selections_name_budgets_of_the_select_section(tmp_path):
    """A selection the select section does not make fails validation, in every stage, not at train time."""
    recipe = base()
    recipe["train"] = {**base()["train"], "selections": ["llm", "randm"]}
    recipe["select"] = {"budgets": {"llm": {"method": "random"}, "random": {"method": "random"}}}
    path = write(tmp_path, recipe)
    for load in (load_corpus_recipe, load_select_recipe, load_train_config):
        with pytest.raises(
            RecipeError, match=r"r.yaml: .*train.selections: \['randm'\] are not in select.budgets"
        ):
            load(path)
    del recipe["select"]
    with pytest.raises(
        RecipeError, match="train.selections: .* are not in select.budgets .the recipe has none"
    ):
        load_train_config(write(tmp_path, recipe))


@pytest.mark.parametrize("name", ["cpt", "v1.2_final-b", "SmolLM2-135M", "a.."])
def test_safe_names_pass_unchanged(name):
    assert safe_name(name) == name


@pytest.mark.parametrize(
    "name", [".", "..", "../x", "a/b", "a\\b", "", ".hidden", "-rf", "a b", "x" * 129, 5]
)
def test_names_that_could_leave_their_folder_are_refused(name):
    with pytest.raises(UnsafePathError, match="is not a safe name"):
        safe_name(name)


def test_path_under_keeps_paths_inside_their_root(tmp_path):
    root = tmp_path / "out" / "run"
    root.mkdir(parents=True)
    assert path_under(root, "eval", "task.yaml") == (root / "eval" / "task.yaml").resolve()
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    for parts in [("..", "other"), ("eval", "..", "..", "x"), ("/etc",), ("link", "file"), (".",), ()]:
        with pytest.raises(UnsafePathError, match="is not inside"):
            path_under(root, *parts)


def test_remove_under_deletes_only_inside_the_run_folder(tmp_path):
    run = tmp_path / "out" / "run"
    (run / "audit").mkdir(parents=True)
    (run / "audit" / "old.json").write_text("{}")
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "data.txt").write_text("precious")
    (run / "escape").symlink_to(outside)
    for folder in [outside, run / "escape", run / ".." / "keep", run]:
        with pytest.raises(UnsafePathError):
            remove_under(run, folder)
    assert (outside / "data.txt").read_text() == "precious" and run.is_dir()
    remove_under(run, run / "audit")
    remove_under(run, run / "never-made")  # nothing there: nothing to do
    assert not (run / "audit").exists()
    (run / "stuck").write_text("a file where a folder belongs")
    with pytest.raises(NotADirectoryError):  # a failed removal raises, never passes silently
        remove_under(run, run / "stuck")


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda t: t["stages"][0].update(name=".."), "train.stages.0.name"),
        (lambda t: t["stages"][1].update(mixture={"../domain": 1.0}), "train.stages.1.mixture"),
        (lambda t: t.update(selections=["../../recipes"]), "train.selections.0"),
        (lambda t: t["stages"][1].update(name="base"), "train: stages: ['base'] named more than once"),
    ],
)
def test_training_names_become_folders_only_when_safe(tmp_path, mutate, key):
    from training.config import load_train_config

    recipe = base()
    mutate(recipe["train"])
    path = write(tmp_path, recipe)
    with pytest.raises(RecipeError) as err:
        load_train_config(path)
    assert path in str(err.value) and key in str(err.value), str(err.value)


def test_every_stage_declares_its_view():
    from contracts.recipe import stage_views
    from curation.config import CorpusRecipe
    from evaluation.config import RunConfig as EvalView
    from selection.config import SelectRecipe
    from training.config import RunConfig as TrainView
    from training.merge.config import MergeRecipe

    assert set(stage_views()) == {CorpusRecipe, SelectRecipe, TrainView, EvalView, MergeRecipe}


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda r: r["train"].update(sequence_length=512), "train.sequence_length"),
        (lambda r: r["eval"].update(batch_size=0), "eval.batch_size"),
        (lambda r: r.update(audit={"workers": "two"}), "audit.workers"),
    ],
)
def test_the_corpus_stage_refuses_a_later_stages_typo(tmp_path, monkeypatch, mutate, key):
    """The whole recipe is checked whichever stage runs: a typo in `train:` fails `make corpus` in
    seconds, not after the corpus is built."""
    monkeypatch.chdir(ROOT)
    recipe = base()
    mutate(recipe)
    with pytest.raises(RecipeError, match=rf"r.yaml: {key}:"):
        load_corpus_recipe(write(tmp_path, recipe))
    with pytest.raises(RecipeError, match=rf"r.yaml: {key}:"):
        load_train_config(write(tmp_path, recipe))


def test_a_stage_needs_only_its_own_sections(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    corpus_only = {k: v for k, v in base().items() if k not in ("train", "mixsweep")}  # mixsweep needs train
    assert load_corpus_recipe(write(tmp_path, corpus_only)).name == "default"
    with pytest.raises(RecipeError, match="r.yaml: train: Field required"):
        load_train_config(write(tmp_path, corpus_only))
    assert load_train_config(write(tmp_path, {"name": "t", "train": base()["train"]})).name == "t"
    with pytest.raises(RecipeError, match="r.yaml: selection: unknown key"):  # a run field, not a key
        load_train_config(write(tmp_path, {"name": "t", "train": base()["train"], "selection": "x"}))
