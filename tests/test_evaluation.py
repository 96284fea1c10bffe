"""The harness core: task files, log-likelihood scoring on a tiny real model, bootstrap intervals."""

import json

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from evaluation.intervals import bootstrap_interval, paired_difference
from evaluation.scoring import LoglikelihoodScorer, score_items
from evaluation.tasks import McItem, TaskError, language_template, load_items

ITEMS = [
    McItem(
        "q1",
        "demo",
        "en",
        "Which account type records money owed to you?",
        ("Asset", "Liability", "Equity"),
        0,
    ),
    McItem(
        "q2",
        "demo",
        "en",
        "What does a split transaction divide?",
        ("an amount", "a file"),
        0,
        "GnuCash guide",
    ),
    McItem(
        "q3",
        "demo",
        "ja",
        "貸方に記録されるのはどれですか。",
        ("負債の増加", "資産の増加", "費用の発生", "収益の減少"),
        0,
    ),
    McItem(
        "q4", "demo", "en", "Which report shows income and expenses?", ("Profit & Loss", "Balance Sheet"), 0
    ),
]


def test_loglikelihood_equals_the_models_own_loss(tiny):
    model, tokenizer = tiny
    scorer = LoglikelihoodScorer(model, tokenizer, batch_size=3)
    prompt, continuation = "Question: What is a ledger?\nAnswer:", " a book of accounts"
    (ll,) = scorer.loglikelihoods([(prompt, continuation)])
    ids = [tokenizer.eos_token_id] + tokenizer(prompt + continuation)["input_ids"]
    n = len(ids) - 1 - len(tokenizer(prompt)["input_ids"])
    labels = torch.tensor([[-100] * (len(ids) - n) + ids[-n:]])
    with torch.no_grad():  # transformers' mean cross-entropy over the continuation tokens only
        loss = model(input_ids=torch.tensor([ids]), labels=labels).loss.item()
    assert scorer.prefix == "eos" and n > 1
    assert ll == pytest.approx(-loss * n, abs=1e-4)


def test_scores_do_not_depend_on_batch_size(tiny):
    model, tokenizer = tiny
    one = score_items(LoglikelihoodScorer(model, tokenizer, batch_size=1), ITEMS, language_template)
    many = score_items(LoglikelihoodScorer(model, tokenizer, batch_size=5), ITEMS, language_template)
    for a, b in zip(one, many):
        assert (a["acc"], a["acc_norm"], a["acc_bytes"]) == (b["acc"], b["acc_norm"], b["acc_bytes"])
        assert np.allclose(a["loglikelihoods"], b["loglikelihoods"], atol=1e-5)
    assert all(len(r["loglikelihoods"]) == len(item.choices) for r, item in zip(one, ITEMS))


def test_malformed_rows_are_reported_with_file_and_line(tmp_path):
    good = {"id": "a", "question": "q?", "choices": ["x", "y"], "answer": 1}
    path = tmp_path / "task.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(good | {"answer": 2}) + "\n")
    with pytest.raises(TaskError, match=f"{path}:3: answer must index choices"):
        load_items(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(TaskError, match=f"{path}:2: not JSON"):
        load_items(path)


def test_shared_benchmarks_load(kit):
    for path in sorted((kit / "benchmarks").glob("*.jsonl")):
        items = load_items(path)
        assert items and all(0 <= i.answer < len(i.choices) for i in items)


def test_bootstrap_interval_covers_the_true_mean_at_its_rate():
    rng = np.random.default_rng(1)
    trials, covered = 300, 0
    for trial in range(trials):
        sample = rng.random(150) < 0.3  # per-item correctness with true accuracy 0.3
        low, high = bootstrap_interval(sample, resamples=500, seed=trial)
        covered += low <= 0.3 <= high
    assert 0.90 <= covered / trials <= 0.98


def test_paired_difference_says_better_only_beyond_noise():
    rng = np.random.default_rng(2)
    base = (rng.random(400) < 0.5).astype(float)
    better = np.where(rng.random(400) < 0.3, 1.0, base)  # fixes ~15% of the items
    assert paired_difference(base, better)["significant"]
    noisy = np.where(rng.random(400) < 0.05, 1 - base, base)  # flips a few either way
    assert not paired_difference(base, noisy)["significant"]


def test_eval_command_compares_models_with_intervals_and_exports_lm_eval_tasks(tiny, tmp_path):
    import subprocess
    import sys

    import yaml
    from conftest import ROOT

    model, tokenizer = tiny
    folders = []
    for name, seed in (("first", 0), ("second", 1), ("third", 2)):
        torch.manual_seed(seed)
        LlamaForCausalLM(model.config).save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
        folders.append(str(tmp_path / name))
    demo = ROOT / "data" / "tasks" / "gnucash-demo.jsonl"
    task = tmp_path / "task.jsonl"
    task.write_text("".join(demo.read_text().splitlines(keepends=True)[:6]))
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "evalrun",
                "output_dir": str(tmp_path / "out"),
                "eval": {
                    "models": folders,
                    "baselines": ["second", "third"],  # e.g. the full corpus and a random selection
                    "tasks": [{"path": str(task), "shots": 2, "fewshot": str(demo)}],
                },
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "eval", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "out" / "evalrun" / "eval"
    results = json.loads((out / "results.json").read_text())
    entry = results["tasks"]["gnucash_demo"]
    assert entry["n"] == 6 and set(entry["scores"]) == {"first", "second", "third"}
    low, high = entry["scores"]["first"]["acc"]["ci95"]
    assert low <= entry["scores"]["first"]["acc"]["mean"] <= high
    assert set(entry["paired"]) == {"first - second", "third - second", "first - third", "second - third"}
    assert set(entry["paired"]["first - second"]) == {"acc", "acc_norm", "acc_bytes"}
    assert results["prefix"] == {"first": "eos", "second": "eos", "third": "eos"}
    assert "paired differences" in result.stderr + result.stdout
    assert "Paired differences" in (out / "report.html").read_text()
    spec = yaml.safe_load((out / "lm_eval_tasks" / "gnucash_demo.yaml").read_text())
    assert spec["dataset_path"] == "json" and spec["dataset_kwargs"]["data_files"]["test"] == str(
        task.resolve()
    )


def test_eval_recipe_errors_name_the_key_and_file(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    recipe = tmp_path / "bad.yaml"
    recipe.write_text("name: x\neval:\n  tasks:\n    - {path: nowhere/*.jsonl}\n  batchsize: 4\n")
    result = subprocess.run(
        [sys.executable, "-m", "evaluation", "eval", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"{recipe}: eval.batchsize: unknown key" in result.stderr
