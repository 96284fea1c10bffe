"""Contamination: items planted in real GnuCash guide pages are found (verbatim → dirty with the
document and offsets, half-copied → partial, reworded → near-duplicate only, Japanese by character
n-grams), clean items stay clean, and the `Decontaminate` step removes what the audit finds."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import trafilatura
import yaml
from conftest import ROOT, SAMPLES
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from contracts.contamination import (
    BenchmarkText,
    ContaminationIndex,
    NearDuplicateIndex,
    NearDuplicateSettings,
    UnitText,
    load_benchmark_texts,
)
from contracts.rejected import RejectedWriter
from curation.decont import Decontaminate
from curation.report.stats import stage_stats, step_rows
from evaluation.audit import run_audit
from evaluation.config import load_eval_config


def paragraphs(path: Path, min_words: int = 0) -> list[str]:
    text = trafilatura.extract(path.read_text(errors="ignore"))
    return [p for p in text.split("\n") if len(p.split()) >= min_words and len(p) > 60]


def units(text: str) -> list[str]:
    doc = UnitText(text)
    return [doc.unit(u) for u in range(len(doc))]


def reword(text: str, every: int) -> str:
    return " ".join(w if i % every != every // 2 else "zzq" + str(i) for i, w in enumerate(text.split()))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A corpus of real guide pages with benchmark items planted in them, and the task file."""
    root = tmp_path_factory.mktemp("decont")
    en = sorted((SAMPLES / "finance" / "gnucash" / "en").glob("*.html"))
    ja_page = SAMPLES / "finance" / "gnucash" / "ja" / "gnucash-guide-accts-types1.html"
    pages = {p.stem: "\n".join(paragraphs(p)) for p in en[:6]}
    long_paragraphs = [p for page in en[6:40] for p in paragraphs(page, min_words=40)]
    verbatim, half, reworded, clean_text = long_paragraphs[:4]
    ja_context = paragraphs(ja_page)[0]
    half_words = half.split()
    cut = len(half_words) // 2
    items = [
        {"id": "dirty", "context": verbatim, "question": "Which statement is described?", "answer": 0},
        # first half verbatim, second half rewritten: partial
        {
            "id": "partial",
            "context": " ".join(half_words[:cut] + [f"w{i}x" for i in range(cut, len(half_words))]),
            "question": "What is described?",
            "answer": 0,
        },
        {"id": "reworded", "context": reword(reworded, 8), "question": "Which is true?", "answer": 0},
        {"id": "clean", "context": clean_text, "question": "What follows?", "answer": 0},
        {"id": "ja", "lang": "ja", "context": ja_context, "question": "正しいものはどれか。", "answer": 0},
    ]
    for item in items:
        item |= {"task": "planted", "lang": item.get("lang", "en"), "choices": ["Assets", "Equity"]}
    task = root / "planted.jsonl"
    task.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    docs = [{"id": stem, "text": text} for stem, text in pages.items()]
    docs[0]["text"] += f"\n{verbatim}\nWhich statement is described? Assets\n"
    docs[1]["text"] = f"{half}\n" + docs[1]["text"]
    docs[2]["text"] += f"\n{reworded}\n"
    docs.append({"id": "ja-page", "text": "\n".join(paragraphs(ja_page))})
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "docs.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return root, task, corpus, {d["id"]: d["text"] for d in docs}, {i["id"]: i for i in items}


def write_recipe(root: Path, task: Path, corpus: Path, name: str, **audit) -> Path:
    recipe = {
        "name": name,
        "output_dir": str(root / "out"),
        "eval": {"tasks": [{"path": str(task)}]},
        "audit": {"corpus": str(corpus), "tasks": 2, "workers": 1, **audit},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def audit(root, task, corpus, name):
    return run_audit(load_eval_config(write_recipe(root, task, corpus, name)))


def test_audit_finds_planted_items_with_documents_and_offsets(planted):
    root, task, corpus, docs, items = planted
    result = audit(root, task, corpus, "audit")
    by_id = {r["id"]: r for r in result["items"]}

    dirty = by_id["dirty"]
    assert dirty["bucket"] == "dirty" and dirty["coverage"] == 1.0
    assert dirty["input_match"] and dirty["input_label_match"]  # the answer follows the question
    match = dirty["matches"][0]
    doc_text = docs[match["doc"]]
    assert match["doc"] == next(iter(docs))
    assert units(doc_text[match["start"] : match["end"]]) == units(
        f"{items['dirty']['context']}\n{items['dirty']['question']} Assets"
    )

    partial = by_id["partial"]
    assert partial["bucket"] == "partial" and 0.3 < partial["coverage"] < 0.7
    assert partial["input_match"] and not partial["input_label_match"]

    assert by_id["clean"]["bucket"] == "clean" and not by_id["clean"]["matches"]

    # every 13-word window of the reworded copy has a changed word: clean by n-grams, but flagged apart
    reworded = by_id["reworded"]
    assert reworded["bucket"] == "clean" and not reworded["matches"]
    near = reworded["near_duplicates"][0]
    assert near["doc"] == list(docs)[2] and near["jaccard"] >= 0.5
    assert items["reworded"]["context"].split()[0] in near["match"]
    assert (
        not by_id["dirty"]["near_duplicates"] or by_id["dirty"]["near_duplicates"][0]["doc"] == match["doc"]
    )

    assert result["tasks"]["planted"]["dirty"] == 2 and result["tasks"]["planted"]["partial"] == 1
    report = (root / "out" / "audit" / "audit" / "report.html").read_text()
    assert "<mark>" in report and "dirty" in report


def test_a_batch_of_texts_matches_like_each_text_alone(planted):
    """The audit scans documents a batch at a time: same matches and offsets, none across texts."""
    root, task, corpus, docs, items = planted
    texts = list(docs.values())
    words = items["dirty"]["context"].split()
    texts[1:1] = [" ".join(words[:30]), " ".join(words[30:])]  # the item split over two texts: a cut
    benchmark = load_benchmark_texts([task])
    last = len(texts) - 1  # the Japanese page
    for index, found_in in (
        (ContaminationIndex(benchmark), {0, 1, 2, last}),
        (NearDuplicateIndex(benchmark), {0, last}),
    ):
        alone = {(i, m) for i, text in enumerate(texts) for m in index.find(UnitText(text))}
        batched = {(m.text, replace(m, text=0)) for m in index.find(UnitText(*texts))}
        assert batched == alone and {i for i, _ in alone} >= found_in


def test_a_reworded_multi_line_item_is_found_across_lines():
    """A Japanese exam item of several statements, one per line, copied with every 16th character
    changed: no line alone resembles the whole item and no 25-character run survives, but the
    passage of consecutive lines does."""
    page = paragraphs(SAMPLES / "finance" / "gnucash" / "ja" / "gnucash-guide-accts-types1.html")
    statements = [line for line in page if len(line) > 40][:4]
    reworded = ["".join("某" if i % 16 == 8 else c for i, c in enumerate(s)) for s in statements]
    item = BenchmarkText("multi", "planted", "ja", "\n".join(reworded) + "\n正しいものはどれか。", "A")
    doc = UnitText("\n".join(page))
    (match,) = NearDuplicateIndex([item]).find(doc)
    assert match.jaccard >= 0.5 and units(doc.texts[0][match.start : match.end]) == units(
        "\n".join(statements)
    )
    assert not NearDuplicateIndex([item], NearDuplicateSettings(max_lines=1)).find(doc)
    assert not ContaminationIndex([item]).find(doc)


def test_japanese_items_match_by_characters(planted):
    root, task, corpus, docs, items = planted
    result = audit(root, task, corpus, "audit-ja")
    ja = next(r for r in result["items"] if r["id"] == "ja")
    assert ja["n"] == 25  # characters, not words: the Japanese text has almost no spaces
    assert ja["bucket"] == "dirty" and ja["matches"][0]["doc"] == "ja-page"
    assert len(items["ja"]["context"].split()) < 13  # a word 13-gram could never match it


def test_decontaminate_removes_what_the_audit_finds(planted, tmp_path):
    root, task, corpus, docs, items = planted
    LocalPipelineExecutor(
        [
            JsonlReader(str(corpus)),
            Decontaminate(
                [task],
                margin_chars=50,
                min_fragment_chars=40,
                exclusion_writer=RejectedWriter(str(tmp_path / "rejected"), "decontaminate"),
            ),
            JsonlWriter(str(tmp_path / "clean"), output_filename="${rank}.jsonl", compression=None),
        ],
        tasks=1,
        logging_dir=str(tmp_path / "logs"),
    ).run()
    kept = {
        json.loads(line)["id"]: json.loads(line)
        for line in (tmp_path / "clean" / "00000.jsonl").read_text().splitlines()
    }
    assert set(kept) == set(docs)  # spans removed, documents kept (enough text left in each)
    first = kept[next(iter(docs))]
    assert first["metadata"]["contamination"]["items"] == ["dirty"]
    assert items["dirty"]["context"][:200] not in first["text"]
    assert len(first["text"]) < len(docs[first["id"]])
    # the corpus funnel reports the cuts of documents it kept
    (row,) = [
        r for r in step_rows("dedup_filter", stage_stats(tmp_path / "logs")) if "Decontaminate" in r["step"]
    ]
    assert row["dropped"] == {} and row["edits"]["spans_removed"] >= 2 and row["edits"]["chars_removed"] > 500

    result = audit(root, task, tmp_path / "clean", "audit-after")
    assert {r["id"]: r["bucket"] for r in result["items"]} == {
        "dirty": "clean",
        "partial": "clean",
        "reworded": "clean",
        "clean": "clean",
        "ja": "clean",
    }


def test_decontaminate_drops_documents_it_cannot_cut(planted, tmp_path):
    root, task, corpus, docs, items = planted
    step = Decontaminate([task], action="documents")
    from datatrove.data import Document

    assert step.filter(Document(text=docs["ja-page"], id="ja-page")) == (False, "contaminated")
    assert step.filter(Document(text=docs[list(docs)[3]], id="x")) is True  # nothing planted there
    short = Document(text="Intro.\n" + items["dirty"]["context"], id="short")
    assert Decontaminate([task], min_fragment_chars=200).filter(short) == (
        False,
        "contaminated",
    )


def test_a_unit_hashes_the_same_in_any_script_mix():
    """ASCII texts are hashed from their bytes directly, others through UTF-8 offsets: same units."""
    words = "internationalisation of the accounting ledger 2024"
    mixed = UnitText(f"日本語 ｶﾞ {words} é 𝐀𝐁")
    assert [mixed.unit(u) for u in (0, 3, 4, 10, 11)] == ["日", "ガ", "internationalisation", "é", "ab"]
    assert mixed.hashes[4:10].tolist() == UnitText(words).hashes.tolist()
    assert mixed.hashes[11] == UnitText("ab").hashes[0] and len(set(UnitText(words).hashes.tolist())) == 6
    broken = UnitText("caf\ud800e x")  # a lone surrogate (JSON allows one) is no unit, and no crash
    assert [broken.unit(u) for u in range(3)] == ["caf", "e", "x"] and broken.locate(1, 3) == (0, 4, 7)


def test_unit_offsets_survive_normalisation():
    text = "ＡＢＣ　株式会社の ﾃｽﾄ。 Hello, World!"
    doc = UnitText(text)
    assert units(text) == ["abc", "株", "式", "会", "社", "の", "テ", "ス", "ト", "hello", "world"]
    _, start, end = doc.locate(6, 9)  # the half-width katakana, whose NFKC form is shorter
    assert text[start:end] == "ﾃｽﾄ"
    # NFKC composes a half-width kana with its voicing mark; a ligature expands to two units
    text = "ｶﾞｲﾄﾞの ﾃﾞｰﾀ ㍻ 𝐀𝐁 x"
    doc = UnitText(text)
    assert units(text) == ["ガ", "イ", "ド", "の", "デ", "ー", "タ", "平", "成", "ab", "x"]
    assert [text[slice(*doc.locate(u, u + 1)[1:])] for u in (0, 2, 4, 7, 8, 9)] == [
        "ｶﾞ",
        "ﾄﾞ",
        "ﾃﾞ",
        "㍻",
        "㍻",
        "𝐀𝐁",
    ]
    assert text[slice(*doc.locate(4, 7)[1:])] == "ﾃﾞｰﾀ"


def test_audit_cli_and_recipe_errors(planted, tmp_path):
    root, task, corpus, docs, items = planted
    recipe = write_recipe(tmp_path, task, corpus, "cli")
    done = subprocess.run(
        [sys.executable, "-m", "evaluation", "audit", str(recipe)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "out" / "cli" / "audit" / "contamination.json").read_text())
    assert saved["tasks"]["planted"]["items"] == 5 and saved["documents"] == len(docs)
    bad = write_recipe(tmp_path, task, corpus, "bad", near_duplicate={"threshold": 0.5})
    done = subprocess.run(
        [sys.executable, "-m", "evaluation", "audit", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert (
        done.returncode == 2
        and "audit.near_duplicate: unknown key" in done.stderr
        and str(bad) in done.stderr
    )


def test_audit_never_deletes_outside_its_run_folder(planted, tmp_path):
    """out/<name>/audit is cleared before each audit: a link out of the run is refused, not followed."""
    from contracts.recipe import UnsafePathError

    root, task, corpus, _, _ = planted
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not the audit's")
    run = load_eval_config(write_recipe(tmp_path, task, corpus, "linked"))
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "audit").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="is not inside"):
        run_audit(run)
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]


def test_the_listed_matches_do_not_depend_on_the_task_count(planted, tmp_path):
    """Seven equally long copies of one item in seven files: the five listed are the same whichever
    tasks read which files."""
    root, task, _, _, items = planted
    corpus = tmp_path / "copies"
    corpus.mkdir()
    for k in range(7):
        doc = {"id": f"copy-{k}", "text": f"Preface {k}.\n{items['dirty']['context']}\n"}
        (corpus / f"{6 - k}.jsonl").write_text(json.dumps(doc) + "\n")
    listed = []
    for tasks in (1, 4):
        result = run_audit(load_eval_config(write_recipe(root, task, corpus, f"copies-{tasks}", tasks=tasks)))
        dirty = next(r for r in result["items"] if r["id"] == "dirty")
        listed.append([(m["doc"], m["start"]) for m in dirty["matches"]])
    assert listed[0] == listed[1] == [(f"copy-{k}", 11) for k in range(5)]


MULTIPLE_CHOICE = {"qa-leak": {"choices": ["Savings", "Equity"]}, "passage": {"choices": ["A", "B"]}}
GENERATIVE = {"qa-leak": {"answers": ["Savings"]}, "passage": {"answer_text": "A"}}  # TAT-QA's fields


@pytest.mark.parametrize("answers", [MULTIPLE_CHOICE, GENERATIVE], ids=["multiple_choice", "generative"])
def test_a_question_copied_with_its_answer_is_dirty_whatever_its_context(answers, planted, tmp_path):
    """A long-context item (a table, a passage) whose question and answer were copied: little of its
    input is covered, but it leaked. A passage copied without its question is reported apart.
    Generative items are matched on the question and their `answer_text`."""
    root = planted[0]
    en = sorted((SAMPLES / "finance" / "gnucash" / "en").glob("*.html"))
    passages = [p for page in en[40:] for p in paragraphs(page, min_words=60)][:2]
    question = (
        "Which of the accounts listed in the table above carried the largest closing balance in the year?"
    )
    items = [
        {"id": "qa-leak", "context": passages[0], "question": question},
        {"id": "passage", "context": passages[1], "question": "What does it say?"},
    ]
    task = tmp_path / "long.jsonl"
    kind = {"answer": 0} if answers is MULTIPLE_CHOICE else {}
    task.write_text("".join(json.dumps(i | answers[i["id"]] | {"task": "long"} | kind) + "\n" for i in items))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [
        {"id": "forum", "text": f"Posted yesterday.\n{question} Savings\nThanks in advance."},
        {"id": "guide", "text": f"Chapter 3.\n{passages[1]}\nEnd of chapter."},
    ]
    (corpus / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    result = run_audit(load_eval_config(write_recipe(root, task, corpus, "long-context")))
    by_id = {r["id"]: r for r in result["items"]}
    leak = by_id["qa-leak"]
    assert leak["coverage"] < 0.3 and leak["qa_coverage"] == 1.0 and leak["context_coverage"] == 0.0
    assert leak["bucket"] == "dirty"  # it was `clean` by the input's coverage alone
    assert leak["input_label_match"]  # found with its answer
    passage = by_id["passage"]
    assert passage["context_coverage"] == 1.0 and passage["qa_coverage"] == 0.0
    assert result["tasks"]["long"]["context_only"] == 1
