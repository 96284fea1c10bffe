"""LLM grades for a stratified sample of the corpus: the labels a cheap classifier is distilled from.

Two graders share one contract, `grade_many(prompts, texts) -> list[Grade]`:
- `TransformersGrader`: a local causal LM (an instruct model through its chat template) reads the
  grade from its next-token probabilities for the digits 0-5 after `Grade:` (the expected grade,
  no sampling), batched; optionally it also writes free replies, to see whether it could follow
  the reply format on its own;
- `OpenAiGrader`: any OpenAI-compatible `/chat/completions` endpoint (vLLM, SGLang, TGI, llama.cpp
  server, Ollama) with bounded concurrency, timeouts and retries with jittered back-off (or the
  server's `Retry-After`); a grade counts only when the reply parses strictly.
Each grader names what makes its grades (`identity`); `GradeCache` keeps one file per identity.
`LlmGrader` picks the sample, skips what the cache already holds, and writes every sampled
document's outcome (graded, ungraded with the raw reply, or failed with the error) to grades.jsonl.
"""

from __future__ import annotations

import email.utils
import hashlib
import heapq
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC
from functools import cached_property
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from contracts.publish import write_atomic
from selection.rubric import REPLY_FORMAT, RUBRICS, GradePrompt, parse_grade


@dataclass(frozen=True)
class Grade:
    """One document's outcome. `grade` is set only when `status` is "graded"."""

    status: str  # graded | ungraded (the reply did not parse) | failed (no usable reply)
    grade: float | None = None
    reply: str | None = None  # the raw reply, kept whenever there is one
    error: str | None = None
    grade_mass: float | None = None  # local grader: probability the model put on the digits


class GradeCache:
    """Grades, appended as they arrive to `<folder>/<hash of the grader's identity>.jsonl` (the
    identity itself beside it, in `<hash>.json`): a killed run resumes where it stopped and never
    pays twice, and no grade is reused by another model or setting. Only grades are cached: a failed
    or ungraded document is asked again by the next run."""

    def __init__(self, folder: Path, identity: dict):
        name = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        self.path = folder / f"{name}.jsonl"
        self.entries: dict[str, Grade] = {}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(identity, indent=2, sort_keys=True))
        if self.path.is_file():
            raw = self.path.read_bytes()
            whole = raw[: raw.rfind(b"\n") + 1]  # a killed run may have torn its last line: drop it
            if len(whole) < len(raw):
                with open(self.path, "r+b") as f:
                    f.truncate(len(whole))
            for line in whole.decode("utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    key = entry.pop("key")
                    self.entries[key] = Grade(**entry)
                except (json.JSONDecodeError, KeyError, TypeError):  # unreadable: graded again
                    continue
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the cache's lifetime
        self._lock = threading.Lock()

    @staticmethod
    def key(prompt: GradePrompt, text: str) -> str:
        return f"{prompt.digest}:{hashlib.sha256(text[: prompt.max_chars].encode()).hexdigest()[:24]}"

    def put(self, key: str, grade: Grade) -> None:
        if grade.status != "graded":
            return
        with self._lock:
            self.entries[key] = grade
            self._file.write(json.dumps({"key": key, **asdict(grade)}, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


Done = Callable[[int, Grade], None]
TEMPERATURE = 0  # greedy: the same prompt gets the same reply, which is what makes caching sound


def retry_after_s(value: str | None, now: float) -> float | None:
    """The wait a server asked for in `Retry-After` (seconds, or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.replace(tzinfo=when.tzinfo or UTC).timestamp() - now  # HTTP dates are GMT
    return max(0.0, seconds) if math.isfinite(seconds) else None


class OpenAiGrader:
    """Grades through an OpenAI-compatible chat endpoint; transient trouble (timeouts, connection
    errors, bodies that do not decode or are not the API's JSON, 429 and 5xx) is retried after the
    server's `Retry-After` or a jittered exponential back-off. A redirect loop or another 4xx fails
    the document at once. Interrupted, it sends nothing more and hands back what already came in."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60,
        retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60,
        max_tokens: int = 256,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env  # the environment variable holding the key, never the key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.max_tokens = max_tokens
        self.identity = {
            "grader": "http",
            "base_url": self.base_url,
            "model": model,
            "max_tokens": max_tokens,
            "temperature": TEMPERATURE,
        }

    def grade_many(self, prompts: list[GradePrompt], texts: list[str], done: Done) -> None:
        import httpx

        key = self.api_key_env
        headers = {"Authorization": f"Bearer {os.environ[key]}"} if key else {}
        stop = threading.Event()
        pool = ThreadPoolExecutor(self.concurrency)
        with httpx.Client(
            base_url=self.base_url, headers=headers, timeout=self.timeout_s, follow_redirects=True
        ) as client:
            futures = {
                pool.submit(self._grade, client, stop, *job): i for i, job in enumerate(zip(prompts, texts))
            }
            try:
                for future in as_completed(futures):  # cached as each finishes: a kill loses those in flight
                    done(futures.pop(future), future.result())
            except BaseException:  # Ctrl-C above all: send no queued request, keep the answers in flight
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                for future, i in futures.items():
                    if not future.cancelled() and future.exception() is None:
                        done(i, future.result())
                raise
            finally:
                pool.shutdown()

    def _wait_s(self, attempt: int, retry_after: float | None) -> float:
        """Before retry `attempt` (1, 2, ...): what the server asked for, else exponential back-off,
        with jitter so concurrent requests do not all return at once; at most `max_wait_s`."""
        if retry_after is not None:
            return min(self.max_wait_s, retry_after + random.uniform(0, self.backoff_s))
        return min(self.max_wait_s, self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1))

    def _grade(self, client, stop: threading.Event, prompt: GradePrompt, text: str) -> Grade:
        import httpx

        system, user = prompt.render(text)
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": TEMPERATURE,
            "max_tokens": self.max_tokens,
        }
        error, retry_after = "", None
        for attempt in range(self.retries + 1):
            if attempt and stop.wait(self._wait_s(attempt, retry_after)):
                return Grade("failed", error=f"interrupted; {error} ({attempt} attempts)")
            retry_after = None
            try:
                response = client.post("/chat/completions", json=body)
            except httpx.TooManyRedirects as e:
                return Grade("failed", error=f"redirect loop: {e}")
            except httpx.TimeoutException:
                error = f"timed out after {self.timeout_s} s"
                continue
            except httpx.RequestError as e:  # connection trouble, a body that does not decode
                error = f"{type(e).__name__}: {e}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                error = f"HTTP {response.status_code}"
                retry_after = retry_after_s(response.headers.get("retry-after"), time.time())
                continue
            if not response.is_success:  # our request is wrong: retrying cannot help
                return Grade("failed", error=f"HTTP {response.status_code}: {response.text[:300]}")
            try:
                reply = response.json()["choices"][0]["message"]["content"]
                if not isinstance(reply, str):
                    raise TypeError
            except (ValueError, KeyError, IndexError, TypeError):  # ValueError: not JSON, not UTF-8
                error = f"malformed response body: {response.text[:200]!r}"
                continue
            grade = parse_grade(reply)
            if grade is None:
                return Grade("ungraded", reply=reply)
            return Grade("graded", float(grade), reply)
        return Grade("failed", error=f"{error} ({self.retries + 1} attempts)")


def model_identity(model: str) -> dict:
    """What makes a local model's grades: its resolved folder, the content of every small file in it
    (config, tokenizer, chat template) and the size and modification time of each large one (the
    weights: hashing gigabytes on every run would cost more than it saves). A hub id is its name."""
    folder = Path(model)
    if not folder.is_dir():
        return {"model": model}
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        files[path.relative_to(folder).as_posix()] = (
            hashlib.sha256(path.read_bytes()).hexdigest()
            if stat.st_size <= 1 << 20
            else f"{stat.st_size} bytes, modified {stat.st_mtime_ns}"
        )
    return {"model": str(folder.resolve()), "files": files}


class TransformersGrader:
    """Grades with a local causal LM: the probabilities of the next token after `Grade:` over the
    digits 0-5 give the expected grade. The grade is read at a fixed position after the fenced
    document, so nothing the document says can change where it is read."""

    def __init__(
        self,
        model: str,
        batch_size: int = 8,
        device: str = "cpu",
        max_tokens: int = 2048,
        check_replies: int = 0,
        reply_tokens: int = 48,
    ):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.max_tokens = max_tokens  # the prompt's length cap, below the model's context
        self.check_replies = check_replies  # free greedy replies for the first N documents (grader health)
        self.reply_tokens = reply_tokens
        self.identity = {"grader": "local", "max_tokens": max_tokens, **model_identity(model)}
        self._model = None

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model, dtype=torch.float32)
        model.to(self.device).eval()
        for form in (" {}", "{}"):  # BPE vocabularies usually hold " 3"; others (digits split) "3"
            ids = [tokenizer.encode(form.format(g), add_special_tokens=False) for g in range(6)]
            if all(len(x) == 1 for x in ids):
                self._digits = [x[0] for x in ids]
                self._forced = "Grade:" if form == " {}" else "Grade: "  # the space as the model writes it
                break
        else:
            raise ValueError(f"{self.model}: the digits 0-5 are not single tokens in its vocabulary")
        self._model, self._tokenizer = model, tokenizer
        self._max_tokens = min(model.config.max_position_embeddings, self.max_tokens)

    def _conversation(self, prompt: GradePrompt, body: str) -> str:
        """The prompt up to the assistant's reply: the model's chat template when it has one (an
        instruct model), else the rubric and document as plain text."""
        system, user = prompt.render(body)
        if self._tokenizer.chat_template:
            return self._tokenizer.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                tokenize=False,
                add_generation_prompt=True,
            )
        return f"{system}\n\n{user}\n"

    def _prompt(self, prompt: GradePrompt, text: str) -> str:
        """The conversation with the document cut (in tokens) to fit the model's context."""
        room = self._max_tokens - len(self._encode(self._conversation(prompt, "") + self._forced)) - 4
        if room < 16:
            raise ValueError(
                f"{self.model}: the rubric fills the {self._max_tokens}-token prompt (the model's "
                "context or `select.grading.local.max_tokens`, whichever is smaller); raise max_tokens, "
                "give a shorter `select.grading.rubric`, or a model with a longer context"
            )
        ids = self._encode(text[: prompt.max_chars])
        return self._conversation(
            prompt, self._tokenizer.decode(ids[:room]) if len(ids) > room else text[: prompt.max_chars]
        )

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def _replies(self, conversations: list[str]) -> list[str]:
        """Greedy free replies: whether the model follows the reply format on its own (grader health)."""
        import torch

        enc = self._tokenizer(conversations, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.device)
        with torch.inference_mode():
            out = self._model.generate(
                **enc,
                max_new_tokens=self.reply_tokens,
                do_sample=False,
                pad_token_id=self._tokenizer.pad_token_id,
            )
        return self._tokenizer.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)

    def grade_many(self, prompts: list[GradePrompt], texts: list[str], done: Done) -> None:
        import torch

        if self._model is None:
            self._load()
        b, checked = self.batch_size, 0
        for first in range(0, len(texts), b):
            conversations = [
                self._prompt(p, t) for p, t in zip(prompts[first : first + b], texts[first : first + b])
            ]
            enc = self._tokenizer(
                [c + self._forced for c in conversations],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(self.device)
            positions = (enc.attention_mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self._model(**enc, position_ids=positions).logits[:, -1].float()
            probs = torch.softmax(logits, dim=-1)[:, self._digits]
            mass = probs.sum(-1)
            expected = (probs * torch.arange(6, dtype=probs.dtype)).sum(-1) / mass
            n_replies = min(len(conversations), self.check_replies - checked)
            replies = self._replies(conversations[:n_replies]) if n_replies > 0 else []
            checked += len(replies)
            for j, (grade, share) in enumerate(zip(expected.tolist(), mass.tolist())):
                reply = replies[j] if j < len(replies) else None
                done(first + j, Grade("graded", round(grade, 4), reply, grade_mass=round(share, 4)))


def grader_health(grades: list[dict]) -> dict:
    """How far the grader can be trusted to grade at all: the mean probability a local grader puts on
    the grade digits, and the share of free replies that parse strictly as `Grade: N` (a local
    grader's `check_replies`; for an HTTP grader every reply, graded or ungraded, is one)."""
    masses = [g["grade_mass"] for g in grades if g.get("grade_mass") is not None]
    local = bool(masses)
    replies = [g for g in grades if g.get("reply") is not None and (g["status"] != "failed")]
    parsed = (
        sum(parse_grade(g["reply"]) is not None for g in replies)
        if local
        else (sum(g["status"] == "graded" for g in replies))
    )
    return {
        "grade_mass": round(sum(masses) / len(masses), 4) if masses else None,
        "replies_checked": len(replies),
        "replies_parsed": parsed,
        "parse_rate": round(parsed / len(replies), 4) if replies else None,
    }


Grader = OpenAiGrader | TransformersGrader


class LlmGrader(PipelineStep):
    """Grades a stratified sample of the documents it reads (size `sample`, allocated to the strata
    named in `stratify` in proportion to their size, chosen by a seeded hash of the document id) and
    writes `output_file`: one line per sampled document, whatever happened to it. Grades are asked
    of `grader` (the built-in rubric for `domain`, or the text file `rubric`, on the first
    `max_chars` characters) and kept in `cache_folder`.

    Sampling needs every document, so this step runs as a single task.
    """

    type = "🧑‍⚖️ - SELECT"
    name = "🧑‍⚖️ LLM grader"

    def __init__(
        self,
        output_file: str,
        cache_folder: str,
        grader: Grader,
        sample: int = 500,
        stratify: Sequence[str] = ("corpus", "language"),
        domain: str = "finance",
        rubric: str | None = None,
        max_chars: int = 4000,
        seed: int = 0,
    ):
        super().__init__()
        self.output_file = Path(output_file)
        self.cache_folder = Path(cache_folder)
        self.grader = grader
        self.sample_size = sample
        self.stratify = list(stratify)  # document metadata keys
        self.domain = domain
        self.rubric = rubric
        self.max_chars = max_chars
        self.seed = seed

    def _sample_key(self, doc: Document) -> str:
        return hashlib.sha256(f"{self.seed}:{doc.id}".encode()).hexdigest()

    def _stratum(self, doc: Document) -> str:
        return "/".join(str(doc.metadata.get(k, "-")) for k in self.stratify)

    def sample(self, docs) -> list[Document]:
        """The `sample` documents to grade, in proportion to each stratum's size (at least one per
        stratum while the sample allows), lowest seeded hash first; deterministic for a seed."""
        n = self.sample_size
        counts: dict[str, int] = {}
        lowest: dict[str, list] = {}  # per stratum, a max-heap of the n lowest keys
        for doc in docs:
            stratum = self._stratum(doc)
            counts[stratum] = counts.get(stratum, 0) + 1
            heap = lowest.setdefault(stratum, [])
            item = (_negated(self._sample_key(doc)), doc.id, doc)
            if len(heap) < n:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        total = sum(counts.values())
        quota = {s: min(c, max(1, n * c // total)) if total else 0 for s, c in counts.items()}
        by_remainder = sorted(counts, key=lambda s: (-(n * counts[s] % max(total, 1)), s))
        while sum(quota.values()) < min(n, total):  # hand out what rounding left, largest remainder first
            for s in by_remainder:
                if quota[s] < counts[s] and sum(quota.values()) < min(n, total):
                    quota[s] += 1
        while sum(quota.values()) > n:  # more strata than the sample: the smallest give way
            quota[min((s for s in quota if quota[s]), key=lambda s: (counts[s], s))] -= 1
        chosen = []
        for stratum in sorted(lowest):
            chosen += [doc for _, _, doc in sorted(lowest[stratum], reverse=True)[: quota[stratum]]]
        return chosen

    @cached_property
    def _rubric(self) -> str:
        return Path(self.rubric).read_text(encoding="utf-8").format(domain=self.domain)

    def _prompt(self, doc: Document) -> GradePrompt:
        language = doc.metadata.get("language")
        language = language if language in RUBRICS else "en"
        if self.rubric:  # the user's rubric; the reply format stays ours, since parsing depends on it
            return GradePrompt(self._rubric, REPLY_FORMAT[language], self.max_chars)
        return GradePrompt.built_in(language, self.domain, self.max_chars)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if world_size != 1:
            raise ValueError("LlmGrader samples the whole corpus: run it as a single task")
        chosen = self.sample(data or [])
        cache = GradeCache(self.cache_folder, self.grader.identity)
        prompts = [self._prompt(doc) for doc in chosen]
        keys = [GradeCache.key(p, doc.text) for p, doc in zip(prompts, chosen)]
        todo = [i for i, key in enumerate(keys) if key not in cache.entries]
        pending = set(todo)
        self.stat_update("sampled", value=len(chosen))
        self.stat_update("from_cache", value=len(chosen) - len(todo))
        from tqdm import tqdm

        with tqdm(total=len(todo), desc="grading", unit="doc", disable=not todo) as bar:

            def done(j: int, grade: Grade) -> None:
                cache.put(keys[todo[j]], grade)
                results[todo[j]] = grade
                bar.update()

            results = {i: cache.entries[key] for i, key in enumerate(keys) if key in cache.entries}
            try:
                self.grader.grade_many([prompts[i] for i in todo], [chosen[i].text for i in todo], done)
            finally:
                cache.close()
        lines = []
        for i, doc in enumerate(chosen):
            grade = results[i]
            self.stat_update(grade.status)
            record = {"id": doc.id, "stratum": self._stratum(doc), "cached": i not in pending}
            lines.append(json.dumps(record | asdict(grade), ensure_ascii=False) + "\n")
        write_atomic(self.output_file, "".join(lines))  # never half a file


def _negated(hex_key: str) -> int:
    return -int(hex_key[:16], 16)
