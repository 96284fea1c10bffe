"""Interrupted runs resume; recipe changes recompute only what they affect; Ray gives the same corpus."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_corpus, subset_recipe


def corpus_content(root: Path) -> list[tuple[str, str, str, str]]:
    docs = []
    for path in sorted((root / "docs").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                d = json.loads(line)
                docs.append((d["id"], d["metadata"]["corpus"], d["metadata"]["split"], d["text"]))
    return sorted(docs)


def test_interrupted_run_resumes_to_the_same_corpus(corpus_run, tmp_path):
    recipe = subset_recipe(corpus_run["work"], name="interrupted")
    root = corpus_run["work"] / "out" / "interrupted" / "corpus"
    proc = subprocess.Popen(
        [sys.executable, "-m", "curation", "run", str(recipe)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = root / "logs" / "minhash_signatures" / "completions"
    deadline = time.time() + 300
    while time.time() < deadline and not (marker.is_dir() and any(marker.iterdir())):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
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
    assert "recomputing from stage `select`" in result.stderr
    assert {p: p.stat().st_mtime for p in (root / "work" / "deduped").iterdir()} == before
    changed = corpus_content(root)
    original = corpus_content(corpus_run["root"])
    assert sorted(d[0] for d in changed) == sorted(d[0] for d in original)  # same documents, no stale copies
    assert sum(d[2] == "val" for d in changed) > sum(d[2] == "val" for d in original)
    stats = json.loads((root / "stats.json").read_text())
    assert sum(v["documents"] for c in stats["tokens"].values() for v in c.values()) == len(changed)


@pytest.mark.slow
def test_ray_executor_matches_local(corpus_run):
    pytest.importorskip("ray")
    ray_executor = {"type": "ray", "tasks": 4, "workers": 2}
    recipe = subset_recipe(corpus_run["work"], name="on_ray", executor=ray_executor)
    result = run_corpus(recipe, env=os.environ | {"RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    root = corpus_run["work"] / "out" / "on_ray" / "corpus"
    assert corpus_content(root) == corpus_content(corpus_run["root"])
