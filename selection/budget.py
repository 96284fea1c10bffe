"""FinPythia-style selection under a token budget: scores combined by rank, documents kept until the
budget is spent, and every document left out recorded with the reason `budget`.

Scores come from `select/scores/<name>/*.jsonl` ({id, score}), one folder per scorer (the files
its `_done.json` lists: see `selection.outputs`); each is turned into its rank among the
competing documents (0 worst, 1 best) so scores on different scales can be weighted together.
`top` keeps the best-ranked documents; `sample` draws without replacement in proportion to the
combined score (Efraimidis-Spirakis keys), so lower-scored documents keep a chance; `random` is the
uniform control that ignores scores.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep
from scipy.stats import rankdata

from selection.outputs import finished_files


def rank_normalised(values: np.ndarray) -> np.ndarray:
    """Each value's rank in [0, 1] (ties share their average rank)."""
    if len(values) < 2:
        return np.ones(len(values))
    return (rankdata(values, method="average") - 1) / (len(values) - 1)


def choose(tokens: np.ndarray, combined: np.ndarray, budget: int, method: str, seed: int) -> np.ndarray:
    """Which documents to keep: in order of preference, every document that still fits the budget.

    Afterwards the kept tokens are at most `budget`, and every document left out is larger than
    what is left of it.
    """
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(len(tokens))
    if method == "random":
        order = np.argsort(tiebreak)
    elif method == "top":
        order = np.lexsort((tiebreak, -combined))
    else:  # key u**(1/w): sorting by it samples without replacement with probability ~ w
        order = np.argsort(-(tiebreak ** (1 / np.maximum(combined, 1e-6))), kind="stable")
    keep = np.zeros(len(tokens), dtype=bool)
    spent = 0
    for i in order.tolist():
        if spent + tokens[i] <= budget:
            keep[i] = True
            spent += int(tokens[i])
    return keep


def read_scores(folder: Path) -> dict[str, float]:
    """The scores a finished step wrote in `folder`, whatever else lies there."""
    return {
        record["id"]: record["score"]
        for path in finished_files(folder)
        if path.suffix == ".jsonl"
        for record in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    }


class BudgetSelector(PipelineStep):
    """Keeps the documents it reads up to the token budget (see `choose`) and passes them on; the
    rest go to `exclusion_writer` with the reason `budget`. Writes `summary_file` (selection.json).

    `tokens` up to 1 is a share of the documents' tokens, above 1 a count; `scores` weighs each
    score (read from its folder in `score_folders`) by rank; `method` is `top`, `sample` or `random`.
    Choosing needs every document, so this step runs as a single task.
    """

    type = "🧑‍⚖️ - SELECT"
    name = "💰 budget selector"

    def __init__(
        self,
        score_folders: dict[str, str],
        tokenizer_file: str,
        summary_file: str,
        tokens: float,
        scores: dict[str, float],
        method: str = "top",
        seed: int = 0,
        exclusion_writer=None,
        label: str = "budget",
    ):
        super().__init__()
        self.label = label  # the selection's name, for messages
        self.tokens = tokens
        self.scores = scores
        self.method = method
        self.seed = seed
        self.score_folders = score_folders
        self.tokenizer_file = tokenizer_file
        self.summary_file = Path(summary_file)
        self.exclusion_writer = exclusion_writer

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from tokenizers import Tokenizer

        if world_size != 1:
            raise ValueError("BudgetSelector weighs every document against every other: run it as one task")
        docs = list(data or [])
        combined = np.zeros(len(docs))
        for name, weight in self.scores.items() if self.method != "random" else ():
            scores = read_scores(Path(self.score_folders[name]))
            missing = [d.id for d in docs if d.id not in scores]
            if missing:
                raise ValueError(
                    f"select.budgets.{self.label}.scores.{name}: no score for {len(missing)} documents, "
                    f"e.g. {missing[0]} (is `select.scores` or `select.distill` set?)"
                )
            combined += weight * rank_normalised(np.array([scores[d.id] for d in docs]))
        combined /= sum(self.scores.values())  # random: all zero, unused
        tokenizer = Tokenizer.from_file(self.tokenizer_file)
        tokens = np.array([len(e.ids) + 1 for e in tokenizer.encode_batch([d.text for d in docs])])  # + EOS
        budget = int(self.tokens) if self.tokens > 1 else int(self.tokens * tokens.sum())
        keep = choose(tokens, combined, budget, self.method, self.seed)
        summary = {
            "budget_tokens": budget,
            "documents": len(docs),
            "tokens": int(tokens.sum()),
            "kept_documents": int(keep.sum()),
            "kept_tokens": int(tokens[keep].sum()),
            "method": self.method,
            "scores": self.scores,
        }
        self.summary_file.parent.mkdir(parents=True, exist_ok=True)
        self.summary_file.write_text(json.dumps(summary, indent=2))
        writer = self.exclusion_writer
        with writer or nullcontext():
            for doc, kept, score in zip(docs, keep.tolist(), combined.tolist()):
                doc.metadata["selection_score"] = round(score, 4)
                self.stat_update("total")
                if kept:
                    self.stat_update("forwarded")
                    yield doc
                else:
                    self.stat_update("dropped", "dropped_budget")
                    doc.metadata["filter_reason"] = "budget"
                    if writer:
                        writer.write(doc, rank)
