"""Kill `make corpus|train|select|audit` at a chosen point, run it again, and compare what it leaves
with an uninterrupted run. Shared by tests/test_faults.py (a few chosen points) and bench/faults.py
(randomized offsets).

A kill is SIGKILL to the whole job: make's process group and every descendant (torchrun starts its
workers in sessions of their own). A point is one of:
  Watch(path test)   killed as soon as the test holds for the run folder (polled every 10 ms)
  Inject(spec)       killed inside a function (tests/faults/sitecustomize.py: DACP_KILL_AT)
  After(seconds)     killed that long after the start (the randomized benchmark)
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import SAMPLES, TINY_LLAMA, free_port, subset_recipe  # noqa: E402

INJECT = ROOT / "tests" / "faults"
# the only JSON values allowed to differ between runs: measured durations and speeds, and the run's
# name (`recipe` in stats.json); paths into the run's own folder are written `<run>` before comparing
UNCOMPARED_KEYS = frozenset({"stage_seconds", "time_s", "seconds", "cpu_seconds", "tokens_per_s", "recipe"})
SUBSET = {  # a small corner of the sample: every input kind, near-duplicates and bad files
    "finance/gnucash/en": ["gnucash-guide-[ab]*.html"],
    "finance/gnucash/ja": ["gnucash-guide-accts-*.html"],
    "finance/eqonomize": ["eqonomize-a*.html"],
    "finance/economics": ["zoo-quickref.pdf"],
    "general/debian-handbook/en": ["debian-handbook-[ab]*.html", "*-mirror.html", "*network-services.html"],
    "general/debian-handbook/ja": ["debian-handbook-b*.html"],
    "general/python": ["python-library-a*.html", "*index*.html"],
    "general/postgresql": ["postgresql-a*.html", "postgresql-catalog-pg-a*.html", "postgresql-ddl-depend*"],
    "crawl": ["*.warc.gz"],
    "jsonl": ["*.jsonl.gz"],
    "bad": ["*"],
}
TRAIN = {  # a tiny Llama: two stages of a few steps, a checkpoint every 2 steps
    "init": TINY_LLAMA,
    "seq_len": 64,
    "micro_batch": 2,
    "global_batch": 4,
    "eval_every": 3,
    "eval_batches": 2,
    "checkpoint_every": 2,
    "stages": [
        {"name": "base", "mixture": {"replay": 1.0}, "steps": 5, "schedule": {"warmup_steps": 1}},
        {"name": "cpt", "mixture": {"domain": 1, "replay": 1}, "steps": 5, "schedule": {"warmup_steps": 1}},
    ],
}


# ---- recipes ---------------------------------------------------------------------------------------
def corpus_recipe(work: Path, name: str) -> Path:
    """The default recipe on a small copied subset of the sample (a run takes about 30 s on 2 cores)."""
    data = work / "samples"
    if not data.exists():
        for folder, patterns in SUBSET.items():
            (data / folder).mkdir(parents=True)
            for pattern in patterns:
                for path in (SAMPLES / folder).glob(pattern):
                    shutil.copy(path, data / folder / path.name)
    executor = {"type": "local", "tasks": 4, "workers": 2}
    return subset_recipe(work, name, executor=executor, output={"val_fraction": 0.25})


def linked_recipe(base: Path, name: str, **sections) -> Path:
    """Recipe `base` renamed `name`, with `sections` set; its corpus is base's, linked, not rebuilt."""
    recipe = yaml.safe_load(base.read_text())
    out = Path(recipe["output_dir"])
    (out / name).mkdir(parents=True, exist_ok=True)
    link = out / name / "corpus"
    if not link.exists():
        link.symlink_to(out / recipe["name"] / "corpus")
    path = base.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe | {"name": name, **sections}, sort_keys=False))
    return path


# ---- running and killing -------------------------------------------------------------------------
@dataclass(frozen=True)
class Watch:
    """Kill as soon as `test(run_dir)` holds."""

    label: str
    test: Callable[[Path], bool]


@dataclass(frozen=True)
class Inject:
    """Kill inside a function: `spec` is tests/faults/sitecustomize.py's DACP_KILL_AT."""

    spec: str
    match: str = ""

    @property
    def label(self) -> str:
        return self.spec + (f" [{self.match}]" if self.match else "")


@dataclass(frozen=True)
class After:
    seconds: float

    @property
    def label(self) -> str:
        return f"after {self.seconds:.2f} s"


@dataclass
class Outcome:
    returncode: int | None  # None: killed
    seconds: float
    log: str


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL to the job's process group and to every descendant, wherever its session is."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)
    proc.wait()


def make(target: str, recipe: Path, run_dir: Path, point=None, timeout: float = 600) -> Outcome:
    """`make TARGET RECIPE=...` as a user types it (the venv is never rebuilt: `-o` the stamp), killed
    at `point` if the run gets there. Returns the exit status, or None when it was killed."""
    work = recipe.parent
    flag = work / "kill.flag"
    flag.unlink(missing_ok=True)
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")])),
        "DACP_KILL_FLAG": str(flag),
    }
    for key in ("DACP_KILL_AT", "DACP_KILL_MATCH"):
        env.pop(key, None)
    if isinstance(point, Inject):
        env |= {"DACP_KILL_AT": point.spec, "DACP_KILL_MATCH": point.match}
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", target, f"RECIPE={recipe}"]
    command += ["NPROC=2", f"MASTER_PORT={free_port()}"]
    log = work / f"{target}.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        killed = False
        while proc.poll() is None:
            elapsed = time.perf_counter() - start
            if elapsed > timeout:
                kill_tree(proc)
                raise TimeoutError(f"{' '.join(command)} ran past {timeout} s")
            if (
                (isinstance(point, Watch) and point.test(run_dir))
                or (isinstance(point, Inject) and flag.exists())
                or (isinstance(point, After) and elapsed >= point.seconds)
            ):
                kill_tree(proc)
                killed = True
                break
            time.sleep(0.01)
    return Outcome(None if killed else proc.returncode, time.perf_counter() - start, log.read_text())


# ---- what a run leaves -----------------------------------------------------------------------------
def _comparable(value):
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in UNCOMPARED_KEYS}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def file_content(path: Path, root: Path) -> bytes:
    """A file's bytes, decompressed, with `root` (the run's own folder) written `<run>`; a JSON file
    without its timing keys."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    data = data.replace(str(root).encode(), b"<run>")
    if path.suffix == ".json":
        try:
            return json.dumps(_comparable(json.loads(data)), sort_keys=True).encode()
        except ValueError:  # a torn file: compared as it is
            pass
    return data


def snapshot(root: Path, parts: list[str]) -> dict[str, bytes]:
    """relative path -> content for every file under `root/part` (a part may be a single file)."""
    files = {}
    for part in parts:
        base = root / part
        for path in [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()):
            files[str(path.relative_to(root))] = file_content(path, root)
    return files


def differences(got: dict[str, bytes], want: dict[str, bytes]) -> list[str]:
    """What differs between two snapshots: missing, extra and changed files (at most 10)."""
    diff = [f"missing {p}" for p in sorted(want.keys() - got.keys())]
    diff += [f"extra {p}" for p in sorted(got.keys() - want.keys())]
    diff += [f"changed {p}" for p in sorted(want.keys() & got.keys()) if got[p] != want[p]]
    return diff[:10] + ([f"... {len(diff) - 10} more"] if len(diff) > 10 else [])


CORPUS_PARTS = ["docs", "tokens", "tokenizer", "rejected", "classifiers", "stats.json"]


def grader_model(corpus: Path, folder: Path) -> Path:
    """A tiny Llama (seeded random weights) with the corpus's tokenizer: the grader and scorer of
    `make select`, as the trained base model is in recipes/default-select.yaml."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), **TRAIN["init"] | {"max_position_embeddings": 512})
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def select_section(model: Path) -> dict:
    """Grading 40 documents, the distilled grade, model scores and three budgets."""
    return {
        "grading": {
            "sample": 40,
            "local": {"model": str(model), "batch_size": 4},
            "rubric": "recipes/rubrics/short.txt",
            "max_chars": 1000,
        },
        "distill": {"labels": "terciles", "threshold": 2},
        "scores": {
            "model": str(model),
            "task_examples": [{"path": "data/tasks/gnucash-demo-examples.jsonl"}],
            "max_tokens": 128,
        },
        "budgets": {
            "llm": {"tokens": 0.3, "scores": {"llm_grade": 1}},
            "eta": {"tokens": 0.3, "scores": {"novelty": 1, "diversity": 1}},
            "random": {"tokens": 0.3, "method": "random"},
        },
    }


def planted_task(corpus: Path, path: Path, items: int = 12) -> Path:
    """A benchmark whose contexts are 40-word spans of corpus documents: contamination for the
    audit to find (the demo task alone finds none in this small corpus)."""
    docs = sorted((corpus / "docs").rglob("*.jsonl.gz"))
    texts = [json.loads(line)["text"] for p in docs for line in gzip.open(p, "rt")][:items]
    with open(path, "w") as f:
        for i, text in enumerate(texts):
            words = text.split()
            item = {
                "id": f"planted-{i:03d}",
                "task": "planted",
                "lang": "en",
                "context": " ".join(words[len(words) // 3 :][:40]),
                "question": "Which passage is this?",
                "choices": ["this one", "another"],
                "answer": 0,
            }
            f.write(json.dumps(item) + "\n")
    return path


def audit_section(task: Path) -> dict:
    """The audit against the demo task and `task` (the same with or without the shared data kit)."""
    tasks = [{"path": "data/tasks/gnucash-demo.jsonl"}, {"path": str(task)}]
    return {"eval": {"tasks": tasks}, "audit": {"tasks": 4, "workers": 2}}


# ---- comparisons with the uninterrupted run: each returns what differs (empty: survived) ----------
# `run` and `reference` are run folders, out/<name>/
def check_corpus(run: Path, reference: Path) -> list[str]:
    """Every output file of `out/<name>/corpus/` has the reference's content."""
    parts = [f"corpus/{part}" for part in CORPUS_PARTS]
    return differences(snapshot(run, parts), snapshot(reference, parts))


def _metrics(train: Path) -> list[dict]:
    path = train / "metrics.jsonl"
    return [_comparable(json.loads(line)) for line in path.read_text().splitlines()] if path.is_file() else []


def _close(a, b, tolerance: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return abs(a - b) <= tolerance
    return a == b


def check_train(run: Path, reference: Path, tolerance: float = 1e-5) -> list[str]:
    """metrics.jsonl has the reference's rows (losses within `tolerance`, no step twice), the same
    checkpoints are kept, and every Hugging Face export holds the same files and weights."""
    from safetensors.torch import load_file

    problems = []
    run, reference = run / "train", reference / "train"
    got, want = _metrics(run), _metrics(reference)
    keys = [(r["stage"], r["step"], "loss" in r) for r in got]
    if len(set(keys)) != len(keys):
        problems.append(f"metrics.jsonl repeats steps: {sorted(k for k in keys if keys.count(k) > 1)[:4]}")
    if len(got) != len(want):
        problems.append(f"metrics.jsonl has {len(got)} rows, the uninterrupted run {len(want)}")
    problems += [
        f"metrics.jsonl differs at {w}: {g}" for g, w in zip(got, want) if not _close(g, w, tolerance)
    ][:3]
    names = sorted(p.name for p in (run / "checkpoints").iterdir()) if (run / "checkpoints").is_dir() else []
    if names != sorted(p.name for p in (reference / "checkpoints").iterdir()):
        problems.append(f"checkpoints: {names}")
    for folder in sorted((reference / "hf").iterdir()):
        mine = run / "hf" / folder.name
        files = sorted(p.name for p in folder.iterdir())
        if not mine.is_dir() or sorted(p.name for p in mine.iterdir()) != files:
            problems.append(
                f"hf/{folder.name}: {sorted(p.name for p in mine.iterdir()) if mine.is_dir() else 'missing'}"
            )
            continue
        for name in files:
            if name.endswith(".safetensors"):
                a, b = load_file(mine / name), load_file(folder / name)
                if a.keys() != b.keys() or any((a[k] - b[k]).abs().max() > tolerance for k in a):
                    problems.append(f"hf/{folder.name}/{name}: other weights")
            elif file_content(mine / name, run.parent) != file_content(folder / name, reference.parent):
                problems.append(f"changed hf/{folder.name}/{name}")
    return problems


def grade_cache(select: Path) -> tuple[list[str], list[str]]:
    """(keys in file order, lines that do not parse) of the grade cache files."""
    keys, torn = [], []
    for path in sorted((select / "grades" / "cache").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                keys.append(json.loads(line)["key"])
            except (ValueError, KeyError):
                torn.append(line[:80])
    return keys, torn


SELECT_PARTS = ["distilled", "scores", "budgets"]


def check_select(run: Path, reference: Path) -> list[str]:
    """The grade cache parses line by line and holds each document once (nothing graded twice);
    grades (but for `cached`), the distilled model, scores and budgets are the reference's."""
    problems = []
    keys, torn = grade_cache(run / "select")
    if torn:
        problems.append(f"grade cache lines that do not parse: {torn[:2]}")
    if len(keys) != len(set(keys)):
        problems.append(f"graded twice: {len(keys) - len(set(keys))} documents")
    if sorted(set(keys)) != sorted(grade_cache(reference / "select")[0]):
        problems.append("the grade cache holds other documents than the uninterrupted run's")

    def grades(select: Path) -> list[dict]:
        path = select / "grades" / "grades.jsonl"
        rows = path.read_text().splitlines() if path.is_file() else []
        return [{k: v for k, v in json.loads(line).items() if k != "cached"} for line in rows]

    if grades(run / "select") != grades(reference / "select"):
        problems.append("grades.jsonl differs")
    parts = [f"select/{part}" for part in SELECT_PARTS]
    return problems + differences(snapshot(run, parts), snapshot(reference, parts))


def check_audit(run: Path, reference: Path) -> list[str]:
    """contamination.json is the reference's (but for durations), and the report is there."""
    problems = differences(
        snapshot(run, ["audit/contamination.json"]), snapshot(reference, ["audit/contamination.json"])
    )
    if not (run / "audit" / "report.html").is_file():
        problems.append("missing audit/report.html")
    return problems
