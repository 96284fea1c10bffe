"""End to end on real sample documents: accounting, reasons, outputs, tokens, report."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import read_docs

EXPECTED_BAD = {
    "truncated.pdf": "damaged",
    "encrypted.pdf": "encrypted",
    "image-only.pdf": "image_only",
    "empty.html": "empty_file",
    "binary.html": "binary",
}


@pytest.fixture(scope="module")
def out(corpus_run):
    root = corpus_run["root"]
    return {
        "root": root,
        "stats": json.loads((root / "stats.json").read_text()),
        "kept": read_docs(root / "docs"),
        "rejected": [
            d for d in read_docs(root / "rejected") if d["metadata"]["rejected_step"] != "passages_cut"
        ],
    }


def test_every_step_accounts_for_every_document(out):
    """`kept` is counted downstream (forwarded, or what the next step or writer received), so a
    document lost without a reason breaks in = kept + dropped; the last writer wrote what docs/ holds."""
    steps = out["stats"]["steps"]
    assert len(steps) >= 12
    for s in steps:
        assert s["in"] == s["kept"] + sum(s["dropped"].values()), s
    for stage in {s["stage"] for s in steps}:
        rows = [s for s in steps if s["stage"] == stage and s["kind"] != "reader"]
        for before, after in zip(rows, rows[1:]):
            assert after["in"] == before["kept"], (before, after)
    written = [s for s in steps if s["stage"] == "route" and s["kind"] == "writer"]
    assert [s["kept"] for s in written] == [len(out["kept"])]


def test_steps_chain_without_losing_documents(out):
    steps = out["stats"]["steps"]
    read = sum(s["kept"] for s in steps if s["kind"] == "reader" and s["stage"] == "extract")
    filters = [s for s in steps if s["kind"] == "step"]
    assert filters[0]["in"] == read
    for before, after in zip(filters, filters[1:]):
        assert after["in"] == before["kept"], (before, after)
    assert filters[-1]["kept"] == len(out["kept"])


def test_every_dropped_document_is_written_with_its_reason(out):
    from_stats = Counter()
    for s in out["stats"]["steps"]:
        from_stats.update(s["dropped"])
    from_files = Counter(d["metadata"]["rejected_reason"] for d in out["rejected"])
    assert from_files == from_stats
    assert all(d["metadata"].get("rejected_step") for d in out["rejected"])


def test_bad_inputs_rejected_with_their_reasons(out):
    by_file = {}
    for d in out["rejected"]:
        source = d["metadata"].get("source", "")
        if "/bad/" in source:
            by_file[Path(source).name] = d["metadata"]["rejected_reason"]
    for name, reason in EXPECTED_BAD.items():
        assert by_file.get(name) == reason, (name, by_file)
    assert "near-empty.html" in by_file  # a page with one sentence never reaches the corpus


def test_non_utf8_page_is_decoded_not_lost(out):
    docs = [
        d for d in out["kept"] + out["rejected"] if d["metadata"].get("source", "").endswith("shift_jis.html")
    ]
    assert len(docs) == 1
    doc = docs[0]
    assert "ホットプラグ" in doc["text"] and "\ufffd" not in doc["text"]  # read as Shift-JIS
    assert doc in out["kept"], doc["metadata"].get("rejected_reason")


def test_both_corpora_have_train_and_val_tokens(out):
    tokens = out["stats"]["tokens"]
    for corpus in ("domain", "replay"):
        for split in ("train", "val"):
            assert tokens[corpus][split]["tokens"] > 0, (corpus, split)
            assert any((out["root"] / "tokens" / corpus / split).glob("*.ds"))


def test_token_shards_end_every_document_with_eos(out):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out["root"] / "tokenizer")
    folder = out["root"] / "tokens" / "domain" / "train"
    shard = sorted(folder.glob("*.ds"))[0]
    dtype = np.uint16 if out["stats"]["tokens"]["domain"]["train"]["token_bytes"] == 2 else np.uint32
    ids = np.fromfile(shard, dtype=dtype)
    ends = np.fromfile(str(shard) + ".index", dtype=np.uint64)
    assert ends[-1] == len(ids)
    assert (ids[ends - 1] == tok.eos_token_id).all()
    first = tok.decode(ids[: ends[0] - 1].tolist())
    assert first in {d["text"] for d in out["kept"]}


def test_kept_documents_carry_metadata(out):
    kept = out["kept"]
    assert {d["metadata"]["corpus"] for d in kept} == {"domain", "replay"}
    assert {d["metadata"]["split"] for d in kept} == {"train", "val"}
    for d in kept:
        m = d["metadata"]
        assert m["language"] in ("en", "ja") and 0 <= m["domain_score"] <= 1 and "quality_score" in m
        assert m["minhash_cluster_size"] >= 1
    assert any(m["metadata"]["minhash_cluster_size"] > 1 for m in kept), (
        "planted near-duplicates form a cluster"
    )
    assert sum(d["metadata"]["language"] == "ja" for d in kept) >= 5, "Japanese survives the filters"


def test_domain_routing_follows_the_sources(out):
    finance = [d for d in out["kept"] if "/finance/" in d["metadata"]["source"]]
    general = [
        d for d in out["kept"] if "/general/" in d["metadata"]["source"] or "crawl" in d["metadata"]["source"]
    ]
    assert sum(d["metadata"]["corpus"] == "domain" for d in finance) >= 0.8 * len(finance)
    assert sum(d["metadata"]["corpus"] == "replay" for d in general) >= 0.8 * len(general)


def test_duplicates_removed(out):
    reasons = Counter(d["metadata"]["rejected_reason"] for d in out["rejected"])
    assert reasons["exact_duplicate"] >= 1  # the crawl holds the same page under two URLs
    assert reasons["near_duplicate"] >= 1  # the planted *-mirror.html pages


def test_pii_is_redacted(out):
    emails = {m.rstrip(".") for d in out["kept"] for m in re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", d["text"])}
    assert emails <= {"email@example.com", "firstname.lastname@example.org"}, emails


def test_classifier_metrics_written(out):
    for name in ("domain", "quality"):
        metrics = json.loads((out["root"] / "classifiers" / f"{name}.json").read_text())
        assert {"precision", "recall", "held_out_examples", "train_examples"} <= set(metrics)
        assert (out["root"] / "classifiers" / f"{name}.bin").stat().st_size > 0
    domain = json.loads((out["root"] / "classifiers" / "domain.json").read_text())
    assert domain["precision"] >= 0.7 and domain["recall"] >= 0.7, domain


def test_report_shows_funnel_and_rejections(out, corpus_run):
    report = (out["root"] / "report.html").read_text()
    for needle in ("Funnel", "encrypted", "image_only", "damaged", "near_duplicate", "data:image/png;base64"):
        assert needle in report, needle
    assert "report.html" in corpus_run["result"].stderr  # the summary ends with the report's path
    assert (out["root"] / "recipe.yaml").is_file()
