"""The package boundaries, read from the source with `ast`: stages meet only in `contracts` and on disk;
and the corpus stages' declarations, which their fingerprints and reruns rely on."""

import ast
import inspect
from pathlib import Path

import pytest
from conftest import ROOT

STAGES = ("curation", "selection", "training", "evaluation")
# what each package may import of the project's packages
ALLOWED = {
    "contracts": {"contracts"},
    "figures": {"figures"},
    **{stage: {stage, "contracts", "figures"} for stage in STAGES},
}
RUN_PATH_PARTS = {"tokens", "hf", "budgets"}  # folders of out/<name>/ named in contracts/layout.py only
MAX_FUNCTION_LINES = 60


def modules(*packages: str) -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def project_imports(tree: ast.Module) -> set[str]:
    """Top-level project packages a module imports, at any depth (function-local imports too)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(ALLOWED)


@pytest.mark.parametrize("package", list(ALLOWED))
def test_a_package_imports_only_what_lies_below_it(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {sorted(found - ALLOWED[package])}"
        for path, tree in modules(package)
        if (found := project_imports(tree)) - ALLOWED[package]
    }
    assert not wrong, "\n".join(sorted(wrong))


def test_four_stage_packages_on_two_shared_ones():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {*STAGES, "contracts", "figures"}


def test_the_corpus_engine_needs_no_torch():
    """curation/ runs on CPU-only cluster nodes with datatrove alone: torch belongs to the stages
    that load models (selection, training, evaluation)."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in modules("curation")
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        and any(a.name.split(".")[0] == "torch" for a in node.names)
        or isinstance(node, ast.ImportFrom)
        and (node.module or "").split(".")[0] == "torch"
    ]
    assert not found, f"torch imported under curation/: {found}"


def builds_run_path(node: ast.AST) -> bool:
    """`x / "hf"`, `"hf" / x`, or `Path(..., "hf")` / `x.joinpath("hf")`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        parts = (node.left, node.right)
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        parts = node.args if name in ("Path", "joinpath", "PurePath") else ()
    else:
        return False
    return any(isinstance(p, ast.Constant) and p.value in RUN_PATH_PARTS for p in parts)


def test_run_paths_are_named_in_the_layout_module_only():
    layout = ROOT / "contracts" / "layout.py"
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in modules("contracts", "figures", *STAGES)
        if path != layout
        for node in ast.walk(tree)
        if builds_run_path(node)
    ]
    assert not found, f"run paths built outside contracts/layout.py: {found}"
    # the check does see them where they belong
    assert any(builds_run_path(node) for node in ast.walk(ast.parse(layout.read_text())))


def test_no_function_is_longer_than_a_screen():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in modules("contracts", "figures", *STAGES)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


# CorpusRecipe fields that no stage fingerprints, and why that is safe
UNFINGERPRINTED = {
    "executor": "how and where tasks run, not what they write; each stage's task count is in its fingerprint",
    "name": "where the run lives (out/<name>/), not what it holds",
    "output_dir": "where the run lives, not what it holds",
    "eval": "read only for decontamination's benchmark files, which `dedup_filter` hashes in its `files`",
    "train": "read only for the model tokenizer the report audits, and the report reruns every time",
}


def default_corpus_pipeline(monkeypatch):
    from curation.config import load_corpus_recipe
    from curation.pipeline import CorpusPipeline

    monkeypatch.chdir(ROOT)
    return CorpusPipeline(load_corpus_recipe("recipes/default.yaml"))


def test_every_corpus_recipe_section_is_in_a_stage_fingerprint(monkeypatch):
    """A section no stage declares would change the corpus without rerunning anything."""
    from curation.config import CorpusRecipe

    fingerprinted = {key for stage in default_corpus_pipeline(monkeypatch).stages for key in stage.sections}
    assert set(CorpusRecipe.sections) - fingerprinted - set(UNFINGERPRINTED) == set()
    assert not fingerprinted & set(UNFINGERPRINTED), "an allowed exception is fingerprinted after all"


class RecordingRecipe:
    """A recipe that records the top-level attributes read; its own methods and properties run on
    the proxy, so what they read is recorded too."""

    def __init__(self, recipe):
        self._recipe, self.read = recipe, set()

    def __getattr__(self, name):
        self.read.add(name)
        attr = inspect.getattr_static(type(self._recipe), name, None)
        code = attr.fget if isinstance(attr, property) else attr
        if inspect.isfunction(code) and code.__module__.startswith(("curation", "contracts")):
            return attr.__get__(self)
        return getattr(self._recipe, name)


def test_each_corpus_stage_reads_only_sections_fingerprinted_by_it_or_before(monkeypatch):
    """Fingerprints chain, so a section an earlier stage declares reruns the later ones too; one no
    stage so far declares would leave the stage's old output standing after that section changed."""
    from curation.config import CorpusRecipe

    pipeline = default_corpus_pipeline(monkeypatch)
    recipe = pipeline.recipe = RecordingRecipe(pipeline.recipe)
    fingerprinted, reads, wrong = set(UNFINGERPRINTED), {}, []
    for stage in pipeline.stages:
        fingerprinted |= set(stage.sections)
        recipe.read.clear()
        pipeline.build(stage)
        reads[stage.name] = recipe.read & set(CorpusRecipe.model_fields)
        wrong += [f"stage `{stage.name}` reads `{key}`" for key in sorted(reads[stage.name] - fingerprinted)]
    assert not wrong, "\n".join(wrong)
    assert {"output", "transform", "classifiers"} <= reads["route"]  # the proxy does see the reads
