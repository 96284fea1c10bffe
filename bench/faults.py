"""Fault-injection benchmark: `make corpus|train|select|audit` killed (SIGKILL, the whole job) at
seeded random offsets into an uninterrupted run's duration, run again (now and then killed again),
and compared with the uninterrupted run (tests/fault_harness.py says what must match).

Writes bench/results/faults.json: kills survived out of kills tried, per target, with every kill's
offset and what differed; and, when bench/hostile.py is there, its hostile-input results.
  python bench/faults.py [--kills 52] [--seed 0] [--work DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))
from fault_harness import (  # noqa: E402
    TRAIN,
    After,
    audit_section,
    check_audit,
    check_corpus,
    check_select,
    check_train,
    corpus_recipe,
    grader_model,
    linked_recipe,
    make,
    planted_task,
    select_section,
)

TARGETS = ("corpus", "train", "select", "audit")
CHECKS = {"corpus": check_corpus, "train": check_train, "select": check_select, "audit": check_audit}
KILLED_AGAIN = 0.25  # share of reruns killed once more before the run that finishes


def recipe_for(target: str, work: Path, name: str, grader: Path | None) -> Path:
    if target == "corpus":
        return corpus_recipe(work, name)
    base = work / "corpus.yaml"
    if target == "train":
        return linked_recipe(base, name, train=TRAIN)
    if target == "select":
        return linked_recipe(base, name, select=select_section(grader))
    return linked_recipe(base, name, **audit_section(work / "planted.jsonl"))


def run_dir(recipe: Path) -> Path:
    return recipe.parent / "out" / recipe.stem


def one_kill(target: str, work: Path, index: int, seconds: float, rng: random.Random, grader) -> dict:
    """A fresh run killed at a random offset, rerun (killed again now and then), then compared."""
    recipe = recipe_for(target, work, f"{target}-{index}", grader)
    offsets = [round(rng.uniform(0.02, 0.98) * seconds, 3)]
    outcome = make(target, recipe, run_dir(recipe), After(offsets[0]))
    record = {"target": target, "offsets_s": offsets, "killed": outcome.returncode is None}
    if outcome.returncode == 0:  # it ended before the offset: its duration narrows the next draws
        shutil.rmtree(run_dir(recipe), ignore_errors=True)
        return record | {"seconds": outcome.seconds}
    if outcome.returncode not in (None, 0):
        return record | {
            "survived": False,
            "differences": [f"exit {outcome.returncode}: {outcome.log[-500:]}"],
        }
    if rng.random() < KILLED_AGAIN:  # the rerun is killed too, at a random offset of its own
        offsets.append(round(rng.uniform(0.02, 0.98) * seconds, 3))
        make(target, recipe, run_dir(recipe), After(offsets[-1]))
    outcome = make(target, recipe, run_dir(recipe))
    if outcome.returncode != 0:
        return record | {
            "survived": False,
            "differences": [f"rerun exit {outcome.returncode}: {outcome.log[-500:]}"],
        }
    differences = CHECKS[target](run_dir(recipe), run_dir(work / f"{target}.yaml"))
    shutil.rmtree(run_dir(recipe), ignore_errors=True)  # disk: keep only what failed
    return record | {"survived": not differences, "differences": differences}


def hostile(work: Path) -> dict:
    """bench/hostile.py's results (hostile inputs rejected out of tried), when it is there."""
    path = ROOT / "bench" / "hostile.py"
    if not path.is_file():
        return {"status": "bench/hostile.py not found: hostile inputs not tried"}
    spec = importlib.util.spec_from_file_location("hostile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (work / "hostile").mkdir(exist_ok=True)
    inputs = module.run_hostile(work / "hostile")
    return {
        "tried": len(inputs),
        "rejected": sum(bool(r.get("rejected")) for r in inputs.values()),
        "peak_rss_mb": max((r.get("peak_rss_mb") or 0 for r in inputs.values()), default=None),
        "inputs": inputs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=52, help="randomized kills across the four targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dacp-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rng = random.Random(args.seed)
    durations, grader = {}, None
    for target in TARGETS:  # the uninterrupted references, and how long each takes
        if target == "select":
            corpus = run_dir(work / "corpus.yaml") / "corpus"
            grader = grader_model(corpus, work / "grader")
            planted_task(corpus, work / "planted.jsonl")
        recipe = recipe_for(target, work, target, grader)
        outcome = make(target, recipe, run_dir(recipe))
        if outcome.returncode != 0:
            raise SystemExit(f"the uninterrupted `make {target}` failed:\n{outcome.log[-3000:]}")
        durations[target] = round(outcome.seconds, 2)
        print(f"{target}: uninterrupted in {outcome.seconds:.1f} s", flush=True)
    kills, missed = [], 0
    windows = dict(durations)  # offsets are drawn in (0, window); a run that ends sooner shrinks it
    for index in range(2 * args.kills):  # a run may end before its offset: that kill is not counted
        if len(kills) == args.kills:
            break
        target = TARGETS[len(kills) % len(TARGETS)]
        record = one_kill(target, work, index, windows[target], rng, grader)
        if not record["killed"]:
            missed += 1
            windows[target] = min(windows[target], record["seconds"])
            continue
        kills.append(record)
        verdict = "survived" if record["survived"] else record["differences"]
        print(f"{len(kills)}/{args.kills} {target} killed at {record['offsets_s']} s: {verdict}", flush=True)
        write(kills, missed, durations, args.seed, {"status": "not run yet"}, start)
    write(kills, missed, durations, args.seed, hostile(work), start)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


def write(
    kills: list[dict], missed: int, durations: dict, seed: int, hostile_result: dict, start: float
) -> None:
    """bench/results/faults.json as it stands (rewritten after every kill: a long run shows progress)."""
    by_target = {
        t: {
            "tried": sum(k["target"] == t for k in kills),
            "survived": sum(k["target"] == t and k["survived"] for k in kills),
        }
        for t in TARGETS
    }
    result = {
        "kills": {
            "tried": len(kills),
            "survived": sum(k["survived"] for k in kills),
            "by_target": by_target,
            "missed": missed,  # runs that ended before their offset
            "uninterrupted_seconds": durations,
            "seed": seed,
            "details": kills,
        },
        "hostile": hostile_result,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
