"""Interrupted runs resume; recipe changes recompute only what they affect; Ray gives the same corpus."""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SAMPLES, run_corpus, subset_recipe

from curation.config import load_corpus_recipe
from curation.pipeline import CorpusPipeline


def corpus_content(root: Path) -> list[tuple[str, str, str, str]]:
    docs = []
    for path in sorted((root / "docs").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                d = json.loads(line)
                docs.append((d["id"], d["metadata"]["corpus"], d["metadata"]["split"], d["text"]))
    return sorted(docs)


def interrupt(recipe: Path, completions: Path) -> None:
    """Start a corpus run and kill it (all its processes) once a task has left a completion marker."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "curation", "run", str(recipe)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (completions.is_dir() and any(completions.iterdir())):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_interrupted_run_resumes_to_the_same_corpus(corpus_run, tmp_path):
    recipe = subset_recipe(corpus_run["work"], name="interrupted")
    root = corpus_run["work"] / "out" / "interrupted" / "corpus"
    interrupt(recipe, root / "logs" / "minhash_signatures" / "completions")
    assert not (root / "stats.json").exists()
    extract_done = sorted((root / "logs" / "extract" / "completions").iterdir())
    assert extract_done

    result = run_corpus(recipe)
    assert result.returncode == 0, result.stderr[-2000:]
    # the finished extract stage was not redone
    assert sorted((root / "logs" / "extract" / "completions").iterdir()) == extract_done
    assert corpus_content(root) == corpus_content(corpus_run["root"])

    # a changed recipe recomputes from the first affected stage on, and says so
    data = yaml.safe_load(recipe.read_text())
    data["output"]["val_fraction"] = 0.3
    recipe.write_text(yaml.safe_dump(data))
    before = {p: p.stat().st_mtime for p in (root / "work" / "deduped").iterdir()}
    result = run_corpus(recipe)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recomputing from stage `route`" in result.stderr
    assert {p: p.stat().st_mtime for p in (root / "work" / "deduped").iterdir()} == before
    changed = corpus_content(root)
    original = corpus_content(corpus_run["root"])
    assert sorted(d[0] for d in changed) == sorted(d[0] for d in original)  # same documents, no stale copies
    assert sum(d[2] == "val" for d in changed) > sum(d[2] == "val" for d in original)
    stats = json.loads((root / "stats.json").read_text())
    assert sum(v["documents"] for c in stats["tokens"].values() for v in c.values()) == len(changed)

    # a run folder from before the `select` stage was renamed `route` reruns from it, to the same corpus
    (root / "logs" / "route").rename(root / "logs" / "select")
    result = run_corpus(recipe)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stage `select` is now named `route`: recomputing from stage `route`" in result.stderr
    assert not (root / "logs" / "select").exists() and (root / "logs" / "route" / "fingerprint").is_file()
    assert {p: p.stat().st_mtime for p in (root / "work" / "deduped").iterdir()} == before
    assert corpus_content(root) == changed


@pytest.mark.slow
def test_ray_executor_matches_local(corpus_run):
    pytest.importorskip("ray")
    ray_executor = {"type": "ray", "tasks": 4, "workers": 2, "tasks_per_job": 2}  # one actor runs 2 tasks
    recipe = subset_recipe(corpus_run["work"], name="on_ray", executor=ray_executor)
    result = run_corpus(recipe, env=os.environ | {"RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    root = corpus_run["work"] / "out" / "on_ray" / "corpus"
    assert corpus_content(root) == corpus_content(corpus_run["root"])


def test_an_input_added_before_the_resume_is_read_once(tmp_path):
    """Files are dealt to tasks by the input listing: a file added between an interrupted run and its
    resume restarts the extract stage, so the corpus is a fresh run's on the new inputs."""
    recipe = subset_recipe(tmp_path, name="grown")
    root = tmp_path / "out" / "grown" / "corpus"
    interrupt(recipe, root / "logs" / "extract" / "completions")
    added = SAMPLES / "finance" / "gnucash" / "en" / "gnucash-guide-capgain_concepts1.html"
    copy = tmp_path / "samples" / "finance" / "gnucash" / "en" / added.name
    assert not copy.exists()
    shutil.copy(added, copy)

    result = run_corpus(recipe)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recipe or inputs changed since the last run: recomputing from stage `extract`" in result.stderr
    fresh = run_corpus(subset_recipe(tmp_path, name="fresh"))
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    resumed = corpus_content(root)
    ids = [doc[0] for doc in resumed]
    assert len(ids) == len(set(ids)), "a document was read twice"
    assert str(copy) in ids, "the added file is in the corpus"
    assert resumed == corpus_content(tmp_path / "out" / "fresh" / "corpus")


def test_a_folder_that_cannot_be_removed_stops_the_run_before_its_new_fingerprint(tmp_path):
    pipeline = CorpusPipeline(load_corpus_recipe(subset_recipe(tmp_path, name="stuck")))
    marker = pipeline.logs("extract") / "fingerprint"
    marker.parent.mkdir(parents=True)
    marker.write_text("an older recipe")
    pipeline.work.mkdir(parents=True)
    (pipeline.work / "filtered").write_text("a file where the stage's folder belongs")
    with pytest.raises(NotADirectoryError):
        pipeline.prepare()
    assert marker.read_text() == "an older recipe"  # the next run still knows the stage is stale
    assert [p.name for p in marker.parent.iterdir()] == ["fingerprint"]


def test_each_stage_reads_only_the_inputs_and_what_earlier_stages_own(monkeypatch):
    """The declared stages are in data-flow order, and each folder has one owner to empty it."""
    monkeypatch.chdir(ROOT)
    pipeline = CorpusPipeline(load_corpus_recipe("recipes/default.yaml"))
    written = [Path(src.path) for src in pipeline.recipe.inputs]
    for stage in pipeline.stages:
        for folder in stage.inputs:
            assert any(w == folder or w.is_relative_to(folder) for w in written), (stage.name, folder)
        owned = pipeline.owned(stage)
        assert all(o.is_relative_to(pipeline.layout.corpus) and o not in written for o in owned)
        written += owned
    assert {"exact_filter", "minhash_cluster", "classifiers"} <= {s.name for s in pipeline.stages}


def test_a_rejected_folder_a_stage_does_not_declare_stops_the_build(tmp_path):
    """A rerun empties only the declared rejected folders: writing another would keep stale
    documents in it, so building the executors refuses before any stage runs."""
    pipeline = CorpusPipeline(load_corpus_recipe(subset_recipe(tmp_path, name="undeclared")))
    route = next(stage for stage in pipeline.stages if stage.name == "route")
    del route.rejects["quality"]
    with pytest.raises(ValueError, match=r"stage `route` writes rejected/quality/ without declaring it"):
        pipeline.executors()
    assert pipeline.layout.rejected / "quality" not in pipeline.owned(route)


def test_the_report_takes_its_default_reasons_from_the_declarations(tmp_path):
    pipeline = CorpusPipeline(load_corpus_recipe(subset_recipe(tmp_path, name="reasons")))
    report = pipeline.executors()[-1].pipeline[-1]
    declared = {reason for stage in pipeline.stages for reason in stage.rejects.values() if reason}
    assert declared == {"exact_duplicate", "near_duplicate"}
    assert set(report.default_reasons.values()) == declared
