"""dacp's scores equal lm-evaluation-harness's on the YAML dacp exports: a tiny real model, an English
and a Japanese task with multi-byte choices, and a generative task lm-eval runs."""

import json

import pytest
from transformers import AutoTokenizer

from contracts.items import GenItem, McItem, language_template
from evaluation.lm_eval_export import lm_eval_yaml
from evaluation.scoring import LoglikelihoodScorer, score_items

lm_eval = pytest.importorskip("lm_eval")

EN = [
    ("What did revenue rise to?", ["€5.2 million", "5.2 million euros", "$5.2m"], 0, "Revenue rose 11.1%."),
    ("Which statement lists what a company owns?", ["balance sheet", "cash-flow — statement"], 0, None),
    ("What is a bond's coupon?", ["its periodic interest", "a discount voucher", "the face value"], 0, None),
    ("Which is a liability?", ["accounts payable", "inventory", "goodwill", "cash"], 0, None),
    ("Net income fell — why?", ["higher costs", "lower taxes"], 0, "Costs grew faster than sales."),
    ("What does EBITDA exclude?", ["depreciation", "revenue", "cost of goods sold"], 0, None),
    ("What is the yen sign?", ["¥", "$", "£", "€"], 0, None),
    ("Sentiment of: profits tripled", ["positive", "negative", "neutral"], 0, None),
    ("Who sets the policy rate?", ["the central bank", "the treasury", "a commercial bank"], 0, None),
]
JA = [
    ("貸方に記録されるのはどれですか。", ["負債の増加", "資産の増加", "費用の発生", "収益の減少"], 0, None),
    ("日本の通貨は何ですか。", ["円", "ドル", "ユーロ"], 0, None),
    ("株式会社の最高意思決定機関は？", ["株主総会", "取締役会", "監査役"], 0, None),
    ("利息の計算方法で、元本にのみ利息がつくのは？", ["単利", "複利"], 0, "利息には単利と複利がある。"),
    ("インフレとは何か。", ["物価の継続的な上昇", "物価の下落", "金利の低下"], 0, None),
    ("消費税の標準税率は？", ["10%", "８％", "5%"], 0, None),
    ("貸借対照表の右側は？", ["負債と純資産", "資産", "収益"], 0, None),
    ("配当とは何ですか。", ["株主への利益の分配", "借入金", "税金"], 0, None),
]
GEN = [
    ("What was the change?", ["-3.1"], "Inventories fell from 1,571.7 to 1,568.6."),
    ("Which years are shown?", ["2019", "2018"], "Table:\nYear | 2019 | 2018"),
    ("What is the unit?", ["million"], None),
]


@pytest.fixture(scope="module")
def folder(tiny, tmp_path_factory):
    """The tiny model saved with a tokenizer whose BOS is its EOS (as GPT-2's), so that dacp's
    `auto` prefix and lm-eval's `add_bos_token=True` put the same token first."""
    model, tokenizer = tiny
    path = tmp_path_factory.mktemp("parity") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    AutoTokenizer.from_pretrained(path, bos_token=tokenizer.eos_token).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def lm(folder):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(folder), dtype="float32", device="cpu", batch_size=16, add_bos_token=True)


def write_task(folder, name: str, rows: list[dict], generate=None) -> None:
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    template = language_template(McItem("x", name, rows[0]["lang"], "", ("", ""), 0))
    (folder / f"{name}.yaml").write_text(lm_eval_yaml(name, data, template, generate), encoding="utf-8")


def lm_eval_samples(lm, tasks_dir, names: list[str], **kwargs) -> dict:
    from lm_eval.tasks import TaskManager

    result = lm_eval.simple_evaluate(
        model=lm,
        tasks=names,
        task_manager=TaskManager(include_path=str(tasks_dir)),
        log_samples=True,
        **kwargs,
    )
    return result


def test_loglikelihoods_and_accuracies_equal_lm_evals(folder, lm, tiny, tmp_path):
    model, _ = tiny
    tokenizer = AutoTokenizer.from_pretrained(folder)
    scorer = LoglikelihoodScorer(model, tokenizer, batch_size=3)
    assert scorer.prefix == "bos" and scorer.prefix_ids == [tokenizer.eos_token_id]
    ours, items = {}, {}
    for lang, name, rows in (("en", "parity_en", EN), ("ja", "parity_ja", JA)):
        task = [
            McItem(f"{name}-{i}", name, lang, q, tuple(c), a, ctx) for i, (q, c, a, ctx) in enumerate(rows)
        ]
        write_task(tmp_path, name, [vars(i) | {"choices": list(i.choices)} for i in task])
        items[name] = task
        ours[name] = score_items(scorer, task, language_template)
    samples = lm_eval_samples(lm, tmp_path, list(ours))["samples"]
    differing_norms = 0
    for name, scored in ours.items():
        theirs = sorted(samples[name], key=lambda s: s["doc_id"])
        assert len(theirs) == len(scored) >= 8
        for mine, sample, item in zip(scored, theirs, items[name]):
            assert sample["doc"]["id"] == mine["id"]
            assert mine["loglikelihoods"] == pytest.approx([r[0][0] for r in sample["resps"]], abs=1e-4)
            assert [mine[m] for m in ("acc", "acc_norm", "acc_bytes")] == [
                sample[m] for m in ("acc", "acc_norm", "acc_bytes")
            ]
            differing_norms += any(len(c) != len(c.encode()) for c in item.choices)
    assert differing_norms >= 10  # items whose acc_norm and acc_bytes divide by different lengths


def test_generative_export_runs_in_lm_eval(lm, tmp_path):
    rows = [
        vars(GenItem(f"gen-{i}", "parity_gen", "en", q, tuple(a), ctx)) | {"answer_text": "; ".join(a)}
        for i, (q, a, ctx) in enumerate(GEN)
    ]
    write_task(tmp_path, "parity_gen", rows, generate=(8, ["\n"]))
    result = lm_eval_samples(lm, tmp_path, ["parity_gen"], limit=3)
    assert 0.0 <= result["results"]["parity_gen"]["exact_match,strip"] <= 1.0
    samples = result["samples"]["parity_gen"]
    assert len(samples) == 3 and all(s["target"] == r["answer_text"] for s, r in zip(samples, rows))
