"""Benchmark tasks are plain JSONL, one item a line (the schema of shared/data/benchmarks):
`{"id", "task", "lang", "domain", "context", "question", "choices", "answer", ...}`.

A malformed row is reported with its file and line, never skipped silently.
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
class Template:
    """How an item becomes a prompt, and what joins the prompt to each choice."""

    prompt: str
    delimiter: str = " "

    def render(self, item: McItem) -> str:
        context = f"{item.context}\n" if item.context else ""
        return self.prompt.format(context=context, question=item.question)


TEMPLATES = {  # lm-evaluation-harness style: the answer is scored as a continuation of the prompt
    "en": Template("{context}Question: {question}\nAnswer:", " "),
    "ja": Template("{context}質問: {question}\n答え:", " "),
}


def load_items(path: Path) -> list[McItem]:
    items = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TaskError(f"{where}: not JSON ({e.msg})") from None
            missing = [k for k in ("id", "question", "choices", "answer") if k not in row]
            if missing:
                raise TaskError(f"{where}: missing {', '.join(missing)}")
            choices = row["choices"]
            if (
                not isinstance(choices, list)
                or len(choices) < 2
                or not all(isinstance(c, str) for c in choices)
            ):
                raise TaskError(f"{where}: choices must be a list of at least two strings")
            answer = row["answer"]
            if not isinstance(answer, int) or not 0 <= answer < len(choices):
                raise TaskError(f"{where}: answer must index choices (0..{len(choices) - 1}), got {answer!r}")
            items.append(
                McItem(
                    id=str(row["id"]),
                    task=row.get("task") or path.stem,
                    lang=row.get("lang", "en"),
                    question=row["question"],
                    choices=tuple(choices),
                    answer=answer,
                    context=row.get("context"),
                )
            )
    if not items:
        raise TaskError(f"{path}: no items")
    return items


def language_template(item: McItem) -> Template:
    """The built-in zero-shot template for the item's language (English for the rest)."""
    return TEMPLATES.get(item.lang, TEMPLATES["en"])
