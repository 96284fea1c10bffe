"""Builders of hostile inputs, each small on disk (or sparse) and written where the caller says.

Nothing here is committed as a file: tests and bench/hostile.py build the set in a temporary
folder. `HOSTILE` names each input, how a recipe reads it and the reason it must be rejected with
(None: it must not be rejected for what makes it hostile; the test checks what it must check).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"

MIB = 1 << 20
UTF7_MARKUP = "+ADw-script+AD4-alert(1)+ADw-/script+AD4-"  # `<script>alert(1)</script>` in UTF-7
_PROSE = (
    "Double-entry bookkeeping records every transaction twice, as a debit in one account and a"
    " credit in another, so that the books always balance and errors can be found by comparing"
    " the totals of both sides at the end of each period. "
)


def gzip_of_zeros(n_mib: int) -> bytes:
    """A valid gzip stream of `n_mib` MiB of zeros, about 1 KB per MiB: one compressed block of
    zeros after a full flush repeats byte for byte, so it is built by repetition, not compression."""
    zero = bytes(MIB)
    stream = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = stream.compress(zero) + stream.flush(zlib.Z_FULL_FLUSH)
    block = stream.compress(zero) + stream.flush(zlib.Z_FULL_FLUSH)
    end = stream.flush()[:-8]  # the final block, before the trailer (CRC-32 and size)
    crc = 0
    for _ in range(n_mib):
        crc = zlib.crc32(zero, crc)
    return first + block * (n_mib - 1) + end + struct.pack("<II", crc, (n_mib * MIB) & 0xFFFFFFFF)


def warc_gzip_bomb(folder: Path, gib: int = 4) -> Path:
    """A WARC response whose HTML body is sent with `Content-Encoding: gzip`: ~4 MB on disk,
    `gib` GiB once decoded (warcio decodes the Content-Encoding as it is read)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    body = gzip_of_zeros(gib * 1024)
    headers = StatusAndHeaders(
        "200 OK",
        [("Content-Type", "text/html"), ("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))],
        protocol="HTTP/1.1",
    )
    path = folder / "bomb.warc"
    with path.open("wb") as f:
        writer = WARCWriter(f, gzip=False)
        writer.write_record(
            writer.create_warc_record(
                "https://example.com/bomb.html", "response", payload=io.BytesIO(body), http_headers=headers
            )
        )
    return path


def sparse_html(folder: Path, gib: int = 2) -> Path:
    """A `gib` GiB `.html` file that costs no disk (a hole, read back as zeros)."""
    path = folder / "huge.html"
    with path.open("wb") as f:
        f.truncate(gib << 30)
    return path


def blank_pages_pdf(folder: Path, pages: int = 5000) -> Path:
    import pymupdf

    path = folder / "blank-pages.pdf"
    with pymupdf.open() as doc:
        for _ in range(pages):
            doc.new_page()
        doc.save(path)
    return path


def big_text_pdf(folder: Path, text_mb: int = 50) -> Path:
    """A PDF whose text layer is `text_mb` MB, about 100 KB on disk: every page shows one
    content stream of about 87,000 characters."""
    import pymupdf

    path = folder / "big-text.pdf"
    line = b"(" + b"lorem ipsum dolor sit amet " * 4 + b") Tj T*\n"
    with pymupdf.open() as doc:
        first = doc.new_page()
        first.insert_text((10, 10), "x", fontname="helv")  # gives the page a font resource
        contents = first.get_contents()[0]
        doc.update_stream(contents, b"BT /helv 1 Tf 1 TL 10 800 Td\n" + line * 1000 + b"ET")
        chars = len(first.get_text())
        resources = doc.xref_get_key(first.xref, "Resources")[1]
        for _ in range(text_mb * 1_000_000 // chars):
            page = doc.new_page()
            doc.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
            doc.xref_set_key(page.xref, "Resources", resources)
        doc.save(path)
    return path


def utf7_html(folder: Path) -> Path:
    """A page declaring UTF-7, whose body decoded as UTF-7 would carry a script element."""
    path = folder / "utf7.html"
    body = f"<p>{_PROSE * 6}</p><p>{UTF7_MARKUP} {_PROSE * 3}</p>"
    page = f'<html><head><meta charset="utf-7"><title>Ledgers</title></head><body>{body}</body></html>'
    path.write_bytes(page.encode("ascii"))
    return path


def long_jsonl_line(folder: Path, line_mb: int = 100, around: bool = False) -> Path:
    """A JSONL record on one `line_mb` MB line (with `around`, between two ordinary records)."""
    path = folder / "long-line.jsonl"
    ordinary = [json.dumps({"id": i, "text": _PROSE * 4}).encode() + b"\n" for i in ("before", "after")]
    with path.open("wb") as f:
        f.write(ordinary[0] if around else b"")
        f.write(b'{"id": "long", "text": "')
        for _ in range(line_mb):
            f.write(b"a" * MIB)
        f.write(b'"}\n')
        f.write(ordinary[1] if around else b"")
    return path


MALFORMED_JSONL_LINES = [
    b"{not json",
    b"[1, 2]",
    b'{"id": "n", "text": 5}',
    b'{"id": "u", "text": "\xff\xfe"}',
]


def malformed_jsonl(folder: Path) -> list[Path]:
    """Lines that are not JSON, not an object, with a number for text or invalid UTF-8; and a
    .jsonl.gz cut off in the middle of its compressed stream."""
    lines = folder / "malformed.jsonl"
    lines.write_bytes(b"\n".join(MALFORMED_JSONL_LINES) + b"\n")
    truncated = folder / "truncated.jsonl.gz"
    whole = gzip.compress(
        b"".join(json.dumps({"id": i, "text": _PROSE}).encode() + b"\n" for i in range(200))
    )
    truncated.write_bytes(whole[: len(whole) // 2])
    return [lines, truncated]


def malformed_parquet(folder: Path) -> Path:
    """A real Parquet file cut in half: its magic number is there, its footer is not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "truncated.parquet"
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(500)), "text": [_PROSE] * 500}), buf)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def benchmark_task_path(folder: Path) -> Path:
    """A benchmark file whose row names its `task` as a path (it would pick where results go)."""
    path = folder / "bench-task-path.jsonl"
    row = {
        "id": "x1",
        "task": "../../../../tmp/escaped",
        "lang": "en",
        "context": "",
        "question": "What balances a debit?",
        "choices": ["A credit", "Another debit"],
        "answer": 0,
    }
    path.write_text(json.dumps(row) + "\n")
    return path


# name -> (builder, recipe input format, the step and reason it is rejected with, or None)
HOSTILE = {
    "warc_gzip_bomb": (warc_gzip_bomb, "warc", ("read", "too_large")),
    "sparse_2gb_html": (sparse_html, "html", ("read", "too_large")),
    "pdf_5000_blank_pages": (blank_pages_pdf, "pdf", ("pdf", "too_many_pages")),
    "pdf_50mb_text": (big_text_pdf, "pdf", ("pdf", "text_too_long")),
    "html_declaring_utf7": (utf7_html, "html", None),
    "jsonl_100mb_line": (long_jsonl_line, "jsonl", ("read", "too_large")),
    "malformed_jsonl": (malformed_jsonl, "jsonl", ("read", "malformed")),
    "malformed_parquet": (malformed_parquet, "parquet", ("read", "malformed")),
}


def build(name: str, folder: Path) -> list[Path]:
    """The files of hostile input `name`, built in their own folder under `folder`."""
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    built = HOSTILE[name][0](target)
    return built if isinstance(built, list) else [built]


def corpus_recipe(work: Path, names: list[str]) -> Path:
    """A recipe reading the hostile inputs `names` (built under `work`), a few real pages of each
    corpus, and seeds of which one is the 5,000-page PDF (seeds go through the extractors too)."""
    inputs = []
    for name in names:
        files = build(name, work / "inputs")
        inputs.append({"name": name, "path": str(files[0].parent), "glob": "*", "format": HOSTILE[name][1]})
    seed = work / "seeds" / "blank-pages.pdf"
    if not seed.exists():
        seed.parent.mkdir(parents=True, exist_ok=True)
        blank_pages_pdf(seed.parent)
    few = {"limit": 4, "kind": "document"}
    recipe = {
        "name": "hostile",
        "output_dir": str(work / "out"),
        "inputs": inputs
        + [
            {"name": "domain", "path": str(SAMPLES / "finance" / "gnucash" / "en"), "glob": "*.html", **few},
            {"name": "replay", "path": str(SAMPLES / "general" / "python"), "glob": "*.html", **few},
        ],
        "dedup": {"exact": False, "minhash": None},
        "classifiers": {
            "domain": {
                "positive": [str(SAMPLES / "finance" / "eqonomize" / "*.html"), str(seed)],
                "negative": [str(SAMPLES / "general" / "postgresql" / "postgresql-a*.html")],
            }
        },
        "tokenizer": {"train": {"vocab_size": 300}},
        "executor": {"type": "local", "tasks": 1, "workers": 1},
    }
    for good in recipe["inputs"][-2:]:
        good["corpus"] = good["name"]
    path = work / "hostile.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_measured(recipe: Path) -> dict:
    """`python -m curation run recipe`: return code, stderr, seconds, and the peak RSS of its
    largest process (the command, its workers and their sandboxes), from wait4's rusage."""
    shutil.rmtree(recipe.parent / "out", ignore_errors=True)
    start = time.perf_counter()
    with (recipe.parent / "stderr.txt").open("w+") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "curation", "run", str(recipe)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    return {
        "returncode": process.returncode,
        "stderr": stderr,
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
