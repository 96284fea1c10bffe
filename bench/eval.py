"""Multiple-choice scoring speed against lm-evaluation-harness, with per-item parity.

SmolLM2-135M-Instruct (the folder `python -m training model recipes/finance-smollm2.yaml` converts)
scores four kit tasks: `fpb` (500 items, 3 one-token choices, short prompts), `cybermetric_500`
(500, English, 4 choices of ~6 tokens, short prompts), `cma_basics` (38, Japanese, 4 choices of ~56
tokens) and the first 40 items of `fp2` (Japanese, ~650-token prompts, 4 choices that differ only
in their last token, which lm-eval already runs once per prompt). Each task runs once by dacp's
scorer and once by `lm_eval.simple_evaluate` (HFLM, the YAML dacp exports, `add_bos_token=True` so
both put the tokenizer's BOS first, as dacp's `auto` prefix does), in turn, in one process on the
same model object: same threads, batch size 16, CPU, float32. Timed: items to scores (dacp: loading
the items and scoring; lm-eval: simple_evaluate, which loads the task, builds and runs the
requests); model loading is apart. Tokens/s counts the same tokens for both: each request's context
plus continuation tokens as lm-eval runs them (not the fewer tokens dacp's packing runs). Per task:
seconds and ratio, acc, acc_norm, acc_bytes of both, how many items agree on all three, and the
largest per-choice log-likelihood difference. Writes bench/results/eval.json; skips when the kit or
lm-eval is absent.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
KIT = ROOT.parent / "shared" / "data"
MODEL = ROOT / "out" / "models" / "SmolLM2-135M-Instruct.Q4_1"
WORK = ROOT / "out" / "bench-eval"
TASKS = {  # name: (kit file, first n items)
    "fpb": ("fpb.jsonl", None),
    "cybermetric_500": ("cybermetric_500.jsonl", None),
    "cma_basics": ("cma_basics.jsonl", None),
    "fp2_40": ("fp2.jsonl", 40),
}
BATCH_SIZE = 16
TARGET_RATIO = 1.5
METRICS = ("acc", "acc_norm", "acc_bytes")


def task_files() -> dict[str, Path]:
    """Each task as a file (the kit's, or its first n lines) with its lm-eval YAML beside it."""
    from contracts.items import language_template, load_items
    from evaluation.lm_eval_export import lm_eval_yaml

    WORK.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (file, n) in TASKS.items():
        path = KIT / "benchmarks" / file
        if n is not None:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:n]
            path = WORK / f"{name}.jsonl"
            path.write_text("".join(lines), encoding="utf-8")
        template = language_template(load_items(path)[0])
        (WORK / f"{name}.yaml").write_text(lm_eval_yaml(name, path, template), encoding="utf-8")
        paths[name] = path
    return paths


def timed(run) -> tuple[object, dict]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, {
        "wall_seconds": round(time.perf_counter() - wall, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
    }


def run_dacp(scorer, path: Path) -> list[dict]:
    from contracts.items import language_template, load_items
    from evaluation.scoring import score_items

    return score_items(scorer, load_items(path), language_template)


def run_lm_eval(model, name: str) -> tuple[list[dict], dict]:
    """HFLM around the same model object (so loading is timed apart, as for dacp), its tokenizer
    adding the BOS."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL, add_bos_token=True)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, device="cpu", batch_size=BATCH_SIZE, add_bos_token=True)
    result, times = timed(
        lambda: lm_eval.simple_evaluate(
            model=lm, tasks=[name], task_manager=TaskManager(include_path=str(WORK)), log_samples=True
        )
    )
    samples = [
        {"id": s["doc"]["id"], "loglikelihoods": [r[0][0] for r in s["resps"]]} | {m: s[m] for m in METRICS}
        for s in sorted(result["samples"][name], key=lambda s: s["doc_id"])
    ]
    return samples, times


def request_tokens(scorer, path: Path) -> int:
    """Context plus continuation tokens of every request, as lm-eval encodes and runs them."""
    from contracts.items import language_template, load_items

    total = 0
    for item in load_items(path):
        template = language_template(item)
        for choice in item.choices:
            context, continuation = scorer.encode(template.render(item), template.delimiter + choice)
            total += len(context) + len(continuation) - 1  # the last token is predicted, never run
    return total


def compare(ours: list[dict], theirs: list[dict], times: dict) -> dict:
    """Both tools on one task: scores, per-item agreement, seconds and the speed ratio."""
    assert [o["id"] for o in ours] == [t["id"] for t in theirs]
    mean = lambda rows, m: round(sum(r[m] for r in rows) / len(rows), 4)  # noqa: E731
    return {
        "n": len(ours),
        "seconds": times,
        "speed_ratio": round(times["lm_eval"]["wall_seconds"] / times["dacp"]["wall_seconds"], 2),
        "dacp": {m: mean(ours, m) for m in METRICS},
        "lm_eval": {m: mean(theirs, m) for m in METRICS},
        "items_agreeing_on_all_metrics": sum(
            all(o[m] == t[m] for m in METRICS) for o, t in zip(ours, theirs)
        ),
        "items_agreeing": {m: sum(o[m] == t[m] for o, t in zip(ours, theirs)) for m in METRICS},
        "max_abs_loglikelihood_difference": max(
            abs(a - b)
            for o, t in zip(ours, theirs)
            for a, b in itertools.zip_longest(o["loglikelihoods"], t["loglikelihoods"])
        ),
    }


def main() -> None:
    if not (KIT / "benchmarks").is_dir():
        print(f"skipped: {KIT} is absent")
        return
    if importlib.util.find_spec("lm_eval") is None:
        print("skipped: lm-eval is not installed (pip install -e '.[bench]')")
        return
    subprocess.run(  # converts the GGUF once (again only when the file or the converter changed)
        [sys.executable, "-m", "training", "model", "recipes/finance-smollm2.yaml"], cwd=ROOT, check=True
    )
    sys.path.insert(0, str(ROOT))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evaluation.scoring import LoglikelihoodScorer

    paths = task_files()
    (tokenizer, model), load = timed(
        lambda: (
            AutoTokenizer.from_pretrained(MODEL),
            AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval(),
        )
    )
    scorer = LoglikelihoodScorer(model, tokenizer, BATCH_SIZE, "bos")
    tasks, tokens = {}, 0
    for name, path in paths.items():  # each tool on each task in turn, so both see the same machine
        theirs, lm_eval_times = run_lm_eval(model, name)
        ours, dacp_times = timed(lambda path=path: run_dacp(scorer, path))
        tasks[name] = compare(ours, theirs, {"dacp": dacp_times, "lm_eval": lm_eval_times})
        tokens += request_tokens(scorer, path)
    total = {
        tool: {
            key: round(sum(t["seconds"][tool][key] for t in tasks.values()), 2)
            for key in ("wall_seconds", "cpu_seconds")
        }
        for tool in ("dacp", "lm_eval")
    }
    for tool in total:
        total[tool]["tokens_per_s"] = round(tokens / total[tool]["wall_seconds"])
    result = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "model": str(MODEL.relative_to(ROOT)),
        "batch_size": BATCH_SIZE,
        "prefix": "bos (dacp auto; lm-eval add_bos_token=True)",
        "request_tokens": tokens,
        "model_load_seconds": load["wall_seconds"],
        "dacp": total["dacp"],
        "lm_eval": total["lm_eval"],
        "speed_ratio": round(total["lm_eval"]["wall_seconds"] / total["dacp"]["wall_seconds"], 2),
        "target_ratio": TARGET_RATIO,
        "scores_equal": all(
            t["dacp"][m] == t["lm_eval"][m] for t in tasks.values() for m in ("acc", "acc_norm")
        ),
        "tasks": tasks,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "eval.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
