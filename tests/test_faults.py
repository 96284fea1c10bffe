"""Fault injection: `make corpus|train|select|audit` killed (SIGKILL, the whole job) at chosen points,
then run again, leave what an uninterrupted run leaves. bench/faults.py kills at random offsets."""

import json
from pathlib import Path

import pytest
from fault_harness import (
    TRAIN,
    Inject,
    Watch,
    audit_section,
    check_audit,
    check_corpus,
    check_select,
    check_train,
    corpus_recipe,
    grade_cache,
    grader_model,
    linked_recipe,
    make,
    planted_task,
    select_section,
)

pytestmark = pytest.mark.slow


def completed(stage: str):
    """True once some task of corpus stage `stage` has finished (its completion marker is there)."""
    return lambda run: any((run / "corpus" / "logs" / stage / "completions").glob("*"))


# a datatrove task's output is written, its completion marker not yet
TASK_OUTPUT_UNMARKED = Inject("datatrove.executor.base:PipelineExecutor.mark_rank_as_completed:1")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


def uninterrupted(target: str, recipe: Path) -> Path:
    run = recipe.parent / "out" / recipe.stem
    outcome = make(target, recipe, run)
    assert outcome.returncode == 0, outcome.log[-3000:]
    return run


def killed_then_resumed(target: str, recipe: Path, *points) -> Path:
    """Kill the run at each point in turn (each kill on a rerun of the last), then run it to the end."""
    run = recipe.parent / "out" / recipe.stem
    for point in points:
        outcome = make(target, recipe, run, point)
        assert outcome.returncode is None, f"the run ended before {point.label}:\n{outcome.log[-3000:]}"
    outcome = make(target, recipe, run)
    assert outcome.returncode == 0, outcome.log[-3000:]
    return run


@pytest.fixture(scope="module")
def corpus(work) -> Path:
    return uninterrupted("corpus", corpus_recipe(work, "corpus"))


def test_corpus_killed_mid_extract_during_dedup_and_between_stages(work, corpus):
    recipe = corpus_recipe(work, "corpus-killed")
    run = killed_then_resumed(
        "corpus",
        recipe,
        TASK_OUTPUT_UNMARKED,  # mid-extract
        Watch("during dedup", completed("minhash_buckets")),
        Watch(
            "between stages", lambda run: (run / "corpus" / "logs" / "classifiers" / "wall_seconds").exists()
        ),
    )
    assert check_corpus(run, corpus) == []


@pytest.fixture(scope="module")
def trained(work, corpus) -> Path:
    return uninterrupted("train", linked_recipe(work / "corpus.yaml", "train", train=TRAIN))


def test_training_killed_mid_checkpoint_mid_trainer_json_and_mid_export(work, trained):
    recipe = linked_recipe(work / "corpus.yaml", "train-killed", train=TRAIN)
    run = killed_then_resumed(
        "train",
        recipe,
        # the second checkpoint's shards are written, its trainer.json not yet
        Inject("torch.distributed.checkpoint:save:2:after"),
        # the rerun's first trainer.json (the same checkpoint's) half written
        Inject("pathlib:Path.write_text:1:torn", match="trainer.json"),
        # the base stage's export: weights written, tokenizer not yet
        Inject("transformers.modeling_utils:PreTrainedModel.save_pretrained:1:after"),
    )
    assert check_train(run, trained) == []


@pytest.fixture(scope="module")
def grader(work, corpus) -> Path:
    return grader_model(corpus / "corpus", work / "grader")


@pytest.fixture(scope="module")
def selected(work, grader) -> Path:
    return uninterrupted(
        "select", linked_recipe(work / "corpus.yaml", "select", select=select_section(grader))
    )


def test_select_killed_mid_grading_grades_nothing_twice(work, grader, selected):
    recipe = linked_recipe(work / "corpus.yaml", "select-killed", select=select_section(grader))
    run = recipe.parent / "out" / recipe.stem
    mid_grading = Inject("selection.grading:GradeCache.put:6:after")  # 6 grades cached
    assert make("select", recipe, run, mid_grading).returncode is None
    keys, torn = grade_cache(run / "select")
    assert len(keys) == 6 and not torn
    # the cache's last line cut in half, as a crash or a full disk leaves it
    cache = next((run / "select" / "grades" / "cache").glob("*.jsonl"))
    text = cache.read_text()
    cache.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    killed_then_resumed(
        "select",
        recipe,
        mid_grading,  # killed again, mid-grading
        Watch("between steps", lambda run: (run / "select" / "distilled").is_dir()),
    )
    assert check_select(run, selected) == []


@pytest.fixture(scope="module")
def audit(work, corpus) -> dict:
    return audit_section(planted_task(corpus / "corpus", work / "planted.jsonl"))


@pytest.fixture(scope="module")
def audited(work, audit) -> Path:
    run = uninterrupted("audit", linked_recipe(work / "corpus.yaml", "audit", **audit))
    assert json.loads((run / "audit" / "contamination.json").read_text())["tasks"]["planted"]["dirty"] > 6
    return run


def test_audit_killed_mid_scan_and_mid_report(work, audit, audited):
    recipe = linked_recipe(work / "corpus.yaml", "audit-killed", **audit)
    run = killed_then_resumed(
        "audit",
        recipe,
        TASK_OUTPUT_UNMARKED,
        Inject("contracts.publish:write_atomic:1:torn", match="contamination.json"),
    )
    assert check_audit(run, audited) == []
