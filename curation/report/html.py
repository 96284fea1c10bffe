"""One self-contained HTML page: the funnel, distributions, classifier scores, clusters, examples."""

from __future__ import annotations

import html
import itertools
import json
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from contracts.layout import RunLayout
from curation.report.stats import EDIT_STATS, records
from curation.report.tokenizer_audit import fertility_figure
from figures import figure_html, new_figure, page_html, table_html

EXAMPLES_PER_REASON = 3
SNIPPET_CHARS = 400
COMPARED_PAGES = 25
SAMPLE_DOCS = 5000  # kept documents the report holds in memory, as a seeded sample
SAMPLED_METADATA = ("corpus", "language", "domain_score", "quality_score", "minhash_cluster_size", "source")


def _light(doc: dict) -> dict:
    """A document as the report keeps it: a snippet, its length and the metadata it plots."""
    meta, text = doc["metadata"], doc.get("text", "")  # a document rejected unread has none
    return {
        "id": doc["id"],
        "text": text[:SNIPPET_CHARS],
        "chars": len(text),
        "metadata": {k: meta[k] for k in (*SAMPLED_METADATA, "rejected_cause") if k in meta},
    }


@dataclass
class KeptSample:
    """What the report reads of the kept corpus, in one streaming pass: a seeded reservoir sample of
    at most `SAMPLE_DOCS` light documents, the first well-shaped table, and the first HTML pages
    to compare the extractors on. The corpus itself is never held in memory."""

    total: int = 0
    docs: list[dict] = field(default_factory=list)
    table: str = ""
    html_pages: list[Path] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path, cap: int = SAMPLE_DOCS, seed: int = 0) -> KeptSample:
        sample, rng = cls(), random.Random(seed)
        for doc in records(folder):
            sample.total += 1
            sample.table = sample.table or _table_example(doc)
            source = Path(doc["metadata"].get("source", ""))
            from_html = doc["metadata"].get("extracted_from") == "html"
            if from_html and len(sample.html_pages) < COMPARED_PAGES and source.is_file():
                sample.html_pages.append(source)
            if len(sample.docs) < cap:
                sample.docs.append(_light(doc))
            elif (slot := rng.randrange(sample.total)) < cap:
                sample.docs[slot] = _light(doc)
        return sample


def funnel_steps(stats: dict) -> list[dict]:
    """What a person reads as the funnel: the input readers, then the steps that act on documents
    (stage-to-stage readers and writers only repeat their neighbours' counts)."""
    return [
        s for s in stats["steps"] if s["kind"] == "step" or s["kind"] == "reader" and s["stage"] == "extract"
    ]


def _funnel(stats: dict) -> str:
    rows = []
    for s in funnel_steps(stats):
        dropped = sum(s["dropped"].values())
        reasons = ", ".join(
            [f"{html.escape(k)}: {v}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])]
            + [f"{EDIT_STATS[k]}: {v}" for k, v in s.get("edits", {}).items()]
        )
        ok = "✔" if s["in"] == s["kept"] + dropped else "✘"
        rows.append(
            [s["stage"], html.escape(s["step"]), s["in"], s["kept"], dropped, reasons, ok, s["time_s"]]
        )
    return (
        "<h2>Funnel</h2><p>Every step: documents in = kept + dropped (✔ when the identity holds); "
        "steps that edit what they keep say so beside the drop reasons.</p>"
        + _funnel_plot([s for s in stats["steps"] if sum(s["dropped"].values())])
        + table_html(["stage", "step", "in", "kept", "dropped", "reasons", "in = kept + dropped", "s"], rows)
    )


def _funnel_plot(steps: list[dict]) -> str:
    """Kept and dropped documents of each step that drops any."""
    if not steps:
        return ""
    fig, ax = new_figure()
    names = [s["step"][:28] for s in steps]
    ax.barh(names, [s["kept"] for s in steps], label="kept", color="#4c9f70")
    ax.barh(
        names,
        [sum(s["dropped"].values()) for s in steps],
        left=[s["kept"] for s in steps],
        label="dropped",
        color="#d9534f",
    )
    ax.invert_yaxis()
    ax.set_xlabel("documents")
    ax.legend()
    return figure_html(fig)


def _inputs(stats: dict) -> str:
    """Keep-rate per input, so a source that the filters empty is seen at once."""
    rows = []
    for name, row in stats.get("inputs", {}).items():
        top = ", ".join(f"{html.escape(k)}: {v}" for k, v in list(row["dropped"].items())[:4])
        rows.append(
            [
                html.escape(name),
                row["kind"],
                row["documents"],
                row["kept"],
                f"{row['kept'] / max(1, row['documents']):.0%}",
                f"{row['chars_kept_share']:.0%}",
                row["kept_80pct"],
                top,
            ]
        )
    cuts = [
        [html.escape(s["step"]), html.escape(reason), v["passages"], f"{v['chars']:,}"]
        for s in stats["steps"]
        for reason, v in sorted(s.get("passage_cuts", {}).items(), key=lambda kv: -kv[1]["chars"])
    ]
    return (
        "<h2>Keep-rate per input</h2><p>Documents kept to the end of the run; characters kept out of"
        " those extracted (long documents lose only the passages cut).</p>"
        + table_html(
            [
                "input",
                "kind",
                "documents",
                "kept",
                "kept %",
                "characters kept",
                "documents keeping ≥ 80% of characters",
                "top drop reasons",
            ],
            rows,
        )
        + (
            "<h3>Passages cut from long documents</h3>"
            + table_html(["step", "reason", "passages", "characters"], cuts)
            if cuts
            else ""
        )
    )


def _table_example(doc: dict) -> str:
    """A table of the document as the PDF extractor wrote it (rows in reading order), so its shape
    can be checked; empty when it has none with five rows mostly of figures."""
    for start, end in doc["metadata"].get("tables") or []:
        rows = doc["text"][start:end].splitlines()
        figures = sum(len(re.findall(r"\| \$?\(?[\d,.]+\)?%?(?= \||$)", row)) >= 2 for row in rows)
        if len(rows) >= 5 and figures >= 0.6 * len(rows):
            source = html.escape(str(doc["metadata"].get("source", doc["id"])))
            return (
                f"<h2>A table as extracted</h2><p>From <b>{source}</b>: rows in reading order,"
                " cells separated by ` | `; table regions are recorded in metadata `tables` and"
                " are not judged as prose.</p><pre>"
                + html.escape(doc["text"][start : min(end, start + 1500)])
                + "</pre>"
            )
    return ""


def _distributions(sample: KeptSample) -> str:
    docs = sample.docs
    if not docs:
        return "<h2>Distributions</h2><p>No documents were kept.</p>"
    by_corpus = defaultdict(list)
    for d in docs:
        by_corpus[d["metadata"].get("corpus", "?")].append(d)
    langs = Counter((d["metadata"].get("corpus", "?"), d["metadata"].get("language", "?")) for d in docs)
    parts = ["<h2>Distributions</h2>"]
    if len(docs) < sample.total:
        parts.append(f"<p>Over a random sample of {len(docs):,} of the {sample.total:,} kept documents.</p>")
    fig, ax = new_figure()
    ax.bar([f"{c}/{lang}" for c, lang in langs], list(langs.values()), color="#5b8def")
    ax.set_ylabel("documents")
    ax.set_title("language per corpus")
    parts.append(figure_html(fig))
    fig, ax = new_figure()
    for corpus, items in sorted(by_corpus.items()):
        ax.hist([d["chars"] for d in items], bins=40, alpha=0.6, label=corpus, log=True)
    ax.set_xlabel("characters")
    ax.set_title("document length")
    ax.legend()
    parts.append(figure_html(fig))
    for key, title in (
        ("domain_score", "domain classifier score"),
        ("quality_score", "quality classifier score"),
    ):
        if any(key in d["metadata"] for d in docs):
            fig, ax = new_figure()
            for corpus, items in sorted(by_corpus.items()):
                scores = [d["metadata"].get(key, 0) for d in items]
                ax.hist(scores, bins=20, range=(0, 1), alpha=0.6, label=corpus)
            ax.set_title(title)
            ax.legend()
            parts.append(figure_html(fig))
    sizes = Counter(d["metadata"].get("minhash_cluster_size", 1) for d in docs)
    if any(s > 1 for s in sizes):
        fig, ax = new_figure()
        ax.bar([str(k) for k in sorted(sizes)], [sizes[k] for k in sorted(sizes)], color="#9b59b6")
        ax.set_xlabel("near-duplicate cluster size of kept documents")
        ax.set_yscale("log")
        parts.append(figure_html(fig))
    return "".join(parts)


def _snippet(doc: dict) -> str:
    meta = doc.get("metadata", {})
    source = meta.get("source") or doc.get("id", "")
    text = doc.get("text", "")[:SNIPPET_CHARS]
    body = html.escape(text) or "(no text)"
    cause = meta.get("rejected_cause")
    why = (
        "<br>" + html.escape(f"{cause.get('type', '')} {cause.get('module', '')}: {cause['message']}".strip())
        if cause
        else ""
    )
    return f"<div class='ex'><b>{html.escape(str(source))}</b>{why}<br><pre>{body}</pre></div>"


def _examples(rejected: Path, kept: list[dict]) -> str:
    parts = ["<h2>Examples of dropped documents, per reason</h2>"]
    for step_dir in sorted(p for p in rejected.glob("*") if p.is_dir()):
        per_reason = defaultdict(list)
        counts = Counter()
        for doc in records(step_dir):
            reason = doc["metadata"].get("rejected_reason", "?")
            counts[reason] += 1
            if len(per_reason[reason]) < EXAMPLES_PER_REASON:
                per_reason[reason].append(_light(doc))
        for reason, items in sorted(per_reason.items()):
            parts.append(f"<h3>{html.escape(step_dir.name)} → {html.escape(reason)} ({counts[reason]})</h3>")
            parts += [_snippet(d) for d in items]
    parts.append("<h2>Examples of kept documents</h2>")
    by_corpus = defaultdict(list)
    for d in kept:
        by_corpus[d["metadata"].get("corpus", "?")].append(d)
    for corpus, items in sorted(by_corpus.items()):
        parts.append(f"<h3>{html.escape(corpus)}</h3>")
        parts += [_snippet(d) for d in items[:EXAMPLES_PER_REASON]]
    return "".join(parts)


def _summary(stats: dict) -> str:
    rows = [
        [corpus, split, v["documents"], f"{v['tokens']:,}"]
        for corpus, splits in stats["tokens"].items()
        for split, v in splits.items()
    ]
    clf = [
        [
            html.escape(name),
            m.get("precision"),
            m.get("recall"),
            m.get("threshold", ""),
            html.escape(json.dumps(m.get("held_out_examples", m.get("source")))),
        ]
        for name, m in stats["classifiers"].items()
    ]
    return (
        "<h2>Output</h2>"
        + table_html(["corpus", "split", "documents", "tokens"], rows)
        + "<h2>Classifiers (held-out)</h2>"
        + table_html(["classifier", "precision", "recall", "threshold", "held-out examples / source"], clf)
    )


def _extractor_comparison(pages: list[Path]) -> str:
    """trafilatura vs resiliparse on kept HTML pages, so users can pick the backend knowingly; each
    backend runs in the extractors' sandbox, with its per-page time limit."""
    from curation.extractors import HtmlExtractor, Rejected

    if not pages:
        return ""
    texts, seconds = {}, {}
    for name in ("trafilatura", "resiliparse"):
        results = HtmlExtractor(name).extract_all(itertools.chain([b""], (p.read_bytes() for p in pages)))
        next(results)  # an empty page starts the sandbox, so the clock times extraction alone
        start = time.perf_counter()
        texts[name] = ["" if isinstance(r, Rejected) else r[0] for r in results]
        seconds[name] = time.perf_counter() - start
    rows, ratios, overlaps = [], [], []
    for page, ours, theirs in zip(pages, texts["trafilatura"], texts["resiliparse"]):
        a, b = set(ours.split()), set(theirs.split())
        overlap = len(a & b) / max(1, len(a | b))
        ratio = len(theirs) / max(1, len(ours))
        ratios.append(ratio)
        overlaps.append(overlap)
        rows.append([html.escape(page.name), len(ours), len(theirs), f"{ratio:.2f}", f"{overlap:.2f}"])

    fig, ax = new_figure()
    ax.scatter(ratios, overlaps, color="#e67e22")
    ax.set_xlabel("resiliparse / trafilatura characters")
    ax.set_ylabel("word-set overlap (Jaccard)")
    speed = ", ".join(f"{name} {len(pages) / max(t, 1e-9):.0f} pages/s" for name, t in seconds.items())
    return (
        f"<h2>HTML extractors compared on {len(pages)} kept pages</h2><p>Speed on this machine: {speed}. "
        "trafilatura favours precision (main text only); resiliparse keeps more of the page.</p>"
        + figure_html(fig)
        + table_html(["page", "trafilatura chars", "resiliparse chars", "ratio", "word overlap"], rows)
    )


def _tokenizer_audit(audit: dict | None) -> str:
    """Fertility of each audited tokenizer per corpus x language (`corpus/tokenizers/audit.json`)."""
    if not audit:
        return ""
    rows = [
        [
            r["corpus"],
            r["language"],
            html.escape(r["tokenizer"]),
            r["documents"],
            f"{r['chars']:,}",
            f"{r['tokens_per_char']:.3f}",
            f"{r['tokens_per_byte']:.3f}",
            f"{r['byte_fallback_share']:.1%}",
            f"{r['unknown_share']:.1%}",
            f"{r['multi_token_word_share']:.1%}",
            html.escape(", ".join(f"{w['word']} ({w['tokens']:g})" for w in r["multi_token_words"][:5])),
        ]
        for r in audit["rows"]
    ]
    failed = "".join(
        f"<p>{html.escape(label)} ({html.escape(t['source'])}) not audited: {html.escape(t['error'])}</p>"
        for label, t in audit["tokenizers"].items()
        if "error" in t
    )
    return (
        "<h2>Tokenizer audit</h2><p>Tokens per character and per UTF-8 byte on a sample of each corpus"
        f" and language (up to {audit['sample']['max_chars']:,} characters); byte-fallback tokens are"
        " not whole characters; split words are words (for Japanese, runs of one script) spread over"
        " 2+ tokens.</p>"
        + (figure_html(fertility_figure(audit)) if rows else "")
        + table_html(
            [
                "corpus",
                "language",
                "tokenizer",
                "documents",
                "characters",
                "tokens / char",
                "tokens / byte",
                "byte fallback",
                "unknown",
                "split words",
                "most frequent split words (tokens)",
            ],
            rows,
        )
        + failed
    )


def _exercises(stats: dict) -> str:
    """The `transform` step's reading-comprehension exercises: counts per type and a few examples."""
    ex = stats.get("exercises")
    if not ex:
        return ""
    rows = [[kind, n] for kind, n in ex["per_type"].items()]
    examples = "".join(_snippet(e) for e in ex["examples"])  # exercise text, truncated
    return (
        f"<h2>Reading-comprehension exercises</h2><p>{ex['with_exercises']:,} of {ex['documents']:,} domain"
        " training documents were given exercises mined from their own sentences (AdaptLLM).</p>"
        + table_html(["type", "exercises"], rows)
        + examples
    )


def render_report(layout: RunLayout, stats: dict) -> str:
    kept = KeptSample.read(layout.docs)
    body = (
        _summary(stats)
        + _tokenizer_audit(stats.get("tokenizers"))
        + _funnel(stats)
        + _inputs(stats)
        + _exercises(stats)
        + _distributions(kept)
        + kept.table
        + _extractor_comparison(kept.html_pages)
        + _examples(layout.rejected, kept.docs)
    )
    title = f"dacp corpus report: {html.escape(stats['recipe'])}"
    return page_html(title, f"<h1>{title}</h1>{body}")
