"""Benchmark tasks are plain JSONL, one item a line. Two schemas, told apart by their fields:

- multiple choice (shared/data/benchmarks): `{"id", "task", "lang", "context", "question", "choices",
  "answer", ...}`, `answer` indexing `choices`;
- generative (shared/data/generative): `{"id", "task", "lang", "context", "question", "answers",
  "answer_text", "scale", "answer_type", ...}`, `answers` the gold strings (one, or several for a
  multi-span answer), `answer_text` them joined with "; " (either field is enough).

A file holds one kind. A malformed row is reported with its file and line, never skipped silently.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from contracts.recipe import Strict


class TaskError(ValueError):
    """A task file problem, phrased as `file:line: what is wrong`."""


class TaskGlob(Strict):
    """Benchmark task files (JSONL) by path or glob; `optional` ones may match nothing."""

    path: str
    optional: bool = False  # e.g. ../shared/data/benchmarks: used when present, skipped when not

    def files(self) -> list[Path]:
        return [Path(p) for p in sorted(glob.glob(self.path, recursive=True))]


@dataclass(frozen=True)
class McItem:
    """One multiple-choice item; `answer` indexes `choices`."""

    id: str
    task: str
    lang: str
    question: str
    choices: tuple[str, ...]
    answer: int
    context: str | None = None


@dataclass(frozen=True)
class GenItem:
    """One generative item: the model writes the answer, scored against the gold `answers`.

    `scale` (TAT-QA: thousand, million, billion, percent) is kept apart from the answers, as the
    dataset does; `answer_type` (span, multi-span, arithmetic, count) decides how F1 is counted.
    """

    id: str
    task: str
    lang: str
    question: str
    answers: tuple[str, ...]
    context: str | None = None
    scale: str = ""
    answer_type: str = ""

    @property
    def answer_text(self) -> str:
        return "; ".join(self.answers)


Item = McItem | GenItem


def gold_text(item: Item) -> str:
    """The text of the correct answer: the right choice, or a generative item's `answer_text`."""
    return item.choices[item.answer] if isinstance(item, McItem) else item.answer_text


def as_generative(item: McItem) -> GenItem:
    """A multiple-choice item asked generatively: the correct choice is the one gold answer."""
    return GenItem(item.id, item.task, item.lang, item.question, (item.choices[item.answer],), item.context)


@dataclass(frozen=True)
class Template:
    """How an item becomes a prompt, and what joins the prompt to each choice."""

    prompt: str
    delimiter: str = " "

    def render(self, item: Item) -> str:
        context = f"{item.context}\n" if item.context else ""
        return self.prompt.format(context=context, question=item.question)


TEMPLATES = {  # lm-evaluation-harness style: the answer is scored as a continuation of the prompt
    "en": Template("{context}Question: {question}\nAnswer:", " "),
    "ja": Template("{context}質問: {question}\n答え:", " "),
}


def _shared_fields(row: dict, path: Path) -> dict:
    """What both kinds of item read alike; a row without `task` belongs to its file's task."""
    return {
        "id": str(row["id"]),
        "task": row.get("task") or path.stem,
        "lang": row.get("lang", "en"),
        "question": row["question"],
        "context": row.get("context"),
    }


def _mc_item(row: dict, path: Path, where: str) -> McItem:
    missing = [k for k in ("choices", "answer") if k not in row]
    if missing:
        raise TaskError(f"{where}: missing {', '.join(missing)}")
    choices = row["choices"]
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise TaskError(f"{where}: choices must be a list of at least two strings")
    answer = row["answer"]
    if not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise TaskError(f"{where}: answer must index choices (0..{len(choices) - 1}), got {answer!r}")
    return McItem(**_shared_fields(row, path), choices=tuple(choices), answer=answer)


def _gen_item(row: dict, path: Path, where: str) -> GenItem:
    answers = row["answers"] if "answers" in row else [row["answer_text"]]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
        raise TaskError(f"{where}: answers must be a list of non-empty strings (answer_text: a string)")
    return GenItem(
        **_shared_fields(row, path),
        answers=tuple(answers),
        scale=row.get("scale") or "",
        answer_type=row.get("answer_type") or "",
    )


def _item(row: dict, path: Path, where: str) -> Item:
    missing = [k for k in ("id", "question") if k not in row]
    if missing:
        raise TaskError(f"{where}: missing {', '.join(missing)}")
    if "choices" not in row and ("answers" in row or "answer_text" in row):
        return _gen_item(row, path, where)
    if "choices" not in row and "answer" not in row:
        raise TaskError(f"{where}: missing choices, answer (multiple choice) or answer_text (generative)")
    return _mc_item(row, path, where)


def load_items(path: Path) -> list[Item]:
    """A task file's items, multiple choice or generative (one kind per file)."""
    items: list[Item] = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise TaskError(f"{where}: not a JSON object")
            item = _item(row, path, where)
            if items and type(item) is not type(items[0]):
                raise TaskError(f"{where}: a {kind(item)} item in a file of {kind(items[0])} items")
            items.append(item)
    if not items:
        raise TaskError(f"{path}: no items")
    return items


def kind(item: Item) -> str:
    """The lm-evaluation-harness output type an item is scored as by default."""
    return "multiple_choice" if isinstance(item, McItem) else "generate"


def language_template(item: Item) -> Template:
    """The built-in zero-shot template for the item's language (English for the rest)."""
    return TEMPLATES.get(item.lang, TEMPLATES["en"])
