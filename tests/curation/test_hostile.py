"""Hostile inputs through the real corpus command: each is rejected with its own reason and cause,
read no further than its limit, and the good documents beside them still make the corpus."""

import gzip
import io
import json

import pytest
import yaml
from conftest import SAMPLES, read_docs
from hostile_inputs import HOSTILE, UTF7_MARKUP, corpus_recipe, long_jsonl_line, run_measured

from curation.readers.records import UNREAD, JsonlRecordReader, WarcRecordReader

GUARDS = ("read", "pdf", "html")  # the steps that enforce the limits
CUT = "passages_cut"  # passages cut from a document that stays
MAX_RSS_MB = 1500  # the bomb decodes to 4 GiB, the sparse file is 2 GiB: reading either whole exceeds it
PROSE = "The general ledger holds every account of the business, and each entry moves money between two. " * 8


def real_text() -> str:
    """A real English page's text (Python's documentation), as a crawler would store it."""
    with gzip.open(SAMPLES / "jsonl" / "python-doc-sources.jsonl.gz", "rt") as f:
        return json.loads(f.readline())["text"]


def plain_text_warc(folder, text: str = PROSE) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    headers = StatusAndHeaders("200 OK", [("Content-Type", "text/plain; charset=utf-8")], protocol="HTTP/1.1")
    with (folder / "plain.warc").open("wb") as f:
        writer = WARCWriter(f, gzip=False)
        record = writer.create_warc_record(
            "https://example.com/ledger.txt",
            "response",
            payload=io.BytesIO(text.encode()),
            http_headers=headers,
        )
        writer.write_record(record)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """One corpus run over every hostile input (and a WARC of plain text), beside real pages."""
    work = tmp_path_factory.mktemp("hostile")
    recipe_path = corpus_recipe(work, list(HOSTILE))
    recipe = yaml.safe_load(recipe_path.read_text())
    (work / "inputs" / "warc_text").mkdir()
    plain_text_warc(work / "inputs" / "warc_text", real_text())
    recipe["inputs"].append(
        {
            "name": "warc-text",
            "path": str(work / "inputs" / "warc_text"),
            "glob": "*.warc",
            "kind": "document",
        }
    )
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    run = run_measured(recipe_path)
    assert run["returncode"] == 0, run["stderr"][-3000:]
    root = work / "out" / "hostile" / "corpus"
    rejected = {}
    for doc in read_docs(root / "rejected"):
        rejected.setdefault(doc["metadata"]["input"], []).append(doc)
    return {"root": root, "rejected": rejected, "kept": read_docs(root / "docs"), "run": run}


@pytest.mark.parametrize("name", [name for name, (_, _, verdict) in HOSTILE.items() if verdict])
def test_hostile_input_is_rejected_with_its_reason_and_cause(hostile_run, name):
    step, reason = HOSTILE[name][2]
    docs = hostile_run["rejected"][name]
    hostile = [d for d in docs if d["metadata"]["rejected_reason"] == reason]
    assert hostile, [(d["metadata"]["rejected_step"], d["metadata"]["rejected_reason"]) for d in docs]
    for doc in hostile:
        assert doc["metadata"]["rejected_step"] == step
        assert doc["metadata"]["rejected_cause"]["message"]
        assert UNREAD not in doc["metadata"]


def test_limits_name_the_limit_and_causes_name_the_library(hostile_run):
    cause = {
        name: [d["metadata"]["rejected_cause"] for d in docs if d["metadata"]["rejected_step"] in GUARDS]
        for name, docs in hostile_run["rejected"].items()
    }
    assert cause["warc_gzip_bomb"] == [{"message": "payload over 67,108,864 bytes once decoded"}]
    assert cause["sparse_2gb_html"] == [{"message": "over 268,435,456 bytes"}]
    assert cause["pdf_5000_blank_pages"] == [{"message": "5,000 pages, limit 2,000"}]
    assert cause["pdf_50mb_text"][0]["message"].startswith("over 10,000,000 characters by page")
    assert cause["jsonl_100mb_line"] == [{"message": "line 0 is over 67,108,864 bytes"}]
    *lines, truncated = cause["malformed_jsonl"]
    assert [c["type"] for c in lines] == ["JSONDecodeError", "TypeError", "TypeError", "JSONDecodeError"]
    assert "not valid UTF-8" in lines[3]["message"] and "Traceback" in lines[0]["traceback"]
    assert truncated["type"] == "EOFError" and truncated["module"] == "gzip"
    assert cause["malformed_parquet"][0]["module"].startswith("pyarrow")


def test_utf7_page_is_decoded_as_detected(hostile_run):
    docs = [d for d in hostile_run["kept"] if d["metadata"]["input"] == "html_declaring_utf7"]
    docs += hostile_run["rejected"].get("html_declaring_utf7", [])
    (doc,) = docs
    assert doc["metadata"]["charset"] == "utf-8" and doc["metadata"]["charset_declared"] == "utf-7"
    assert UTF7_MARKUP in doc["text"]


def test_warc_plain_text_is_read_as_text(hostile_run):
    """A text/plain record reaches the filters with its text (it used to leave as `no_text`)."""
    docs = [d for d in hostile_run["kept"] if d["metadata"]["input"] == "warc-text"]
    docs += [d for d in hostile_run["rejected"].get("warc-text", []) if d["metadata"]["rejected_step"] != CUT]
    (doc,) = docs
    assert doc["metadata"].get("rejected_reason") not in ("no_text", "unsupported_format")
    assert doc["text"] and doc["metadata"]["charset"] == "utf-8" and doc["metadata"]["format"] == "text"


def test_good_documents_survive_and_seeds_obey_the_limits(hostile_run):
    inputs = {d["metadata"]["input"] for d in hostile_run["kept"]}
    assert {"domain", "replay"} <= inputs
    stats = json.loads((hostile_run["root"] / "stats.json").read_text())
    assert stats["classifiers"]["domain"]["train_examples"]["positive"] > 0
    logs = hostile_run["root"] / "logs" / "classifiers" / "stats"
    trainer = json.loads(next(logs.glob("*.json")).read_text())
    counts = {k: v for step in trainer for k, v in step.get("stats", {}).items()}
    assert counts["seed_rejected_too_many_pages"] == 1


def test_the_run_stays_within_memory(hostile_run):
    """Peak RSS of the largest process of the run (workers, sandboxes), not a time: a limit that
    read the bomb or the sparse file whole would pass 2 GiB."""
    assert hostile_run["run"]["peak_rss_mb"] < MAX_RSS_MB


def test_jsonl_reader_reads_past_an_over_long_line(tmp_path):
    path = long_jsonl_line(tmp_path, line_mb=3, around=True)
    docs = list(JsonlRecordReader(str(tmp_path), max_bytes=1 << 20).read_file(path.name))
    assert [d.id for d in docs] == ["before", "long-line.jsonl#1", "after"]
    assert docs[1].metadata[UNREAD]["reason"] == "too_large" and docs[2].text.startswith("Double-entry")


def test_warc_reader_keeps_plain_text(tmp_path):
    plain_text_warc(tmp_path)
    (doc,) = WarcRecordReader(str(tmp_path)).read_file("plain.warc")
    assert doc.text == PROSE and doc.metadata["format"] == "text" and not doc.media
