"""FinPythia's selection scores from the base model: task similarity (ETS) and task-agnostic novelty
and diversity (ETA), all from one forward pass per document.

- `ets`: cosine similarity of the document's mean-pooled last hidden state to the mean direction of
  the task examples' (so the average cosine to the examples, up to a constant factor); without a
  base model, the same with fastText sentence vectors (`FastTextTaskSimilarity`).
- `novelty`: the base model's mean loss per token on the document (log perplexity): what the model
  does not know yet.
- `diversity`: entropy in bits of the document's token-type distribution. FinPythia used part-of-
  speech tags; token types need no tagger for Japanese and measure the same thing, lexical variety.
Every score reads the document's first `max_tokens` tokens, so length alone buys no diversity.
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path

from datatrove.pipeline.base import PipelineStep


class TaskExampleError(ValueError):
    pass


def task_example_texts(files: list[Path]) -> list[str]:
    """Unlabelled task text: benchmark rows give context + question, other rows their `text`."""
    texts = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = (
                    "\n".join(filter(None, [row.get("context"), row["question"]]))
                    if "question" in row
                    else row["text"]
                )
                if not isinstance(text, str) or not text.strip():
                    raise TypeError("empty or not a string")
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise TaskExampleError(f"{path}:{n}: not a task row or a {{text}} row ({e})") from None
            texts.append(text)
    return texts


class BaseModelScorer(PipelineStep):
    """Writes `<scores>/{ets,novelty,diversity}/<rank>.jsonl` ({id, score}) for every document, as
    `model` (a Hugging Face folder or hub id) reads its first `max_tokens` tokens."""

    type = "🧑‍⚖️ - SELECT"
    name = "🔭 base-model scores"

    def __init__(
        self,
        model: str,
        task_texts: list[str],
        output_folder: str,
        max_tokens: int = 512,
        batch_size: int = 8,
        device: str = "cpu",
    ):
        super().__init__()
        self.model = model
        self.task_texts = task_texts
        self.output_folder = Path(output_folder)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.device = device

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model)
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._tokenizer.padding_side = "right"
        self._model = AutoModelForCausalLM.from_pretrained(self.model, dtype=torch.float32)
        self._model.to(self.device).eval()

    def _forward(self, texts: list[str]):
        """Per text: the mean-pooled last hidden state, the mean token loss, the token-type entropy."""
        import torch

        limit = min(self.max_tokens, self._model.config.max_position_embeddings)
        texts = [t[: 16 * limit] for t in texts]  # no token sits on more than 16 characters: skip the rest
        enc = self._tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=limit)
        enc = enc.to(self.device)
        with torch.inference_mode():
            out = self._model(**enc, output_hidden_states=True)
        mask = enc.attention_mask.float()
        pooled = (out.hidden_states[-1] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        # next-token targets, -100 where there is none (the last position, padding): no logits copy
        targets = torch.full_like(enc.input_ids, -100)
        targets[:, :-1] = enc.input_ids[:, 1:].masked_fill(enc.attention_mask[:, 1:] == 0, -100)
        logits = out.logits
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        ).view(targets.shape)
        target_mask = (targets != -100).float()
        loss = (losses * target_mask).sum(1) / target_mask.sum(1).clamp(min=1)
        entropies = []
        for ids, m in zip(enc.input_ids, enc.attention_mask):
            _, counts = torch.unique(ids[m.bool()], return_counts=True)
            p = counts.float() / counts.sum()
            entropies.append(float(-(p * p.log2()).sum()))
        return torch.nn.functional.normalize(pooled, dim=-1), loss.tolist(), entropies

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import torch

        self._load()
        task_direction = None
        if self.task_texts:
            b = self.batch_size
            examples = torch.cat(
                [self._forward(self.task_texts[i : i + b])[0] for i in range(0, len(self.task_texts), b)]
            )
            task_direction = torch.nn.functional.normalize(examples.mean(0), dim=0)
        names = ["novelty", "diversity"] + (["ets"] if task_direction is not None else [])
        files = {}
        for name in names:
            (self.output_folder / name).mkdir(parents=True, exist_ok=True)
            files[name] = open(self.output_folder / name / f"{rank:05d}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        try:
            batch = []
            for doc in chain(data or [], [None]):  # None: flush the last batch
                if doc is not None:
                    batch.append(doc)
                if batch and (doc is None or len(batch) == self.batch_size):
                    with self.track_time():
                        embeddings, losses, entropies = self._forward([d.text for d in batch])
                        scores = {"novelty": losses, "diversity": entropies}
                        if task_direction is not None:
                            scores["ets"] = (embeddings @ task_direction).tolist()
                        for name, values in scores.items():
                            for d, v in zip(batch, values):
                                files[name].write(json.dumps({"id": d.id, "score": round(v, 5)}) + "\n")
                        self.stat_update("scored", value=len(batch))
                    yield from batch
                    batch = []
        finally:
            for f in files.values():
                f.close()


class FastTextTaskSimilarity(PipelineStep):
    """ETS without a base model: the cosine of each document's fastText sentence vector to the mean
    direction of the task examples' (a pretrained `.bin` such as cc.en.300, or one trained on the
    corpus with `fasttext skipgram`). Writes `<scores>/ets/<rank>.jsonl` when there are task examples."""

    type = "🧑‍⚖️ - SELECT"
    name = "🔭 task similarity (fastText)"

    def __init__(self, model_path: str, task_texts: list[str], output_folder: str, max_chars: int = 20_000):
        super().__init__()
        self.model_path = model_path
        self.task_texts = task_texts
        self.output_folder = Path(output_folder)
        self.max_chars = max_chars

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import fasttext
        import numpy as np

        from contracts.fasttext import fasttext_line

        if not self.task_texts:  # every task example file was optional and absent: no ets
            yield from data or []
            return
        model = fasttext.load_model(self.model_path)

        def direction(text: str) -> np.ndarray:
            vector = model.get_sentence_vector(fasttext_line(text, self.max_chars))
            return vector / (np.linalg.norm(vector) or 1.0)

        task = np.mean([direction(t) for t in self.task_texts], axis=0)
        task /= np.linalg.norm(task) or 1.0
        (self.output_folder / "ets").mkdir(parents=True, exist_ok=True)
        with open(self.output_folder / "ets" / f"{rank:05d}.jsonl", "w", encoding="utf-8") as out:
            for doc in data or []:
                with self.track_time():
                    out.write(
                        json.dumps({"id": doc.id, "score": round(float(direction(doc.text) @ task), 5)})
                        + "\n"
                    )
                    self.stat_update("scored")
                yield doc
