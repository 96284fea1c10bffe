"""Hostile-input benchmark: each input of tests/hostile_inputs.py alone through `python -m curation
run`, with the verdict of the limit steps, the run's seconds and the peak RSS of its largest process.

Writes bench/results/hostile.json. Not a test: numbers depend on the machine.
  python bench/hostile.py
`run_hostile(workdir)` returns the same dict (bench/faults.py imports it).
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from hostile_inputs import HOSTILE, corpus_recipe, run_measured  # noqa: E402

GUARDS = ("read", "pdf", "html")  # the steps that enforce the limits


def verdict(root: Path, name: str) -> dict:
    """Whether the limit steps rejected input `name`, and why (the most common reason there)."""
    reasons = Counter()
    for path in sorted((root / "rejected").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for meta in (json.loads(line)["metadata"] for line in f):
                if meta.get("input") == name and meta["rejected_step"] in GUARDS:
                    reasons[meta["rejected_reason"]] += 1
    return {"rejected": bool(reasons), "reason": reasons.most_common(1)[0][0] if reasons else None}


def run_hostile(workdir: Path) -> dict:
    """{input: {rejected, reason, peak_rss_mb, seconds}}, one corpus run per hostile input."""
    results = {}
    for name in HOSTILE:
        work = Path(workdir) / name
        run = run_measured(corpus_recipe(work, [name]))
        outcome = (
            verdict(work / "out" / "hostile" / "corpus", name)
            if run["returncode"] == 0
            else {"rejected": None, "reason": f"run failed: {run['stderr'][-300:]}"}
        )
        results[name] = outcome | {"peak_rss_mb": run["peak_rss_mb"], "seconds": run["seconds"]}
        print(name, results[name], flush=True)
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "inputs": run_hostile(Path(tmp)),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
