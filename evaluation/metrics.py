"""Generative metrics: named functions `(prediction, item) -> float` in [0, 1], as lm-eval's metrics are.

`exact_match` and `f1` give TAT-QA's official values (NExTplusplus/TAT-QA, tatqa_metric.py), quirks
included, so scores compare with published ones. The official metric takes the prediction as spans
plus a separate `pred_scale`; a language model writes free text, read here as follows:

- spans: the text split on ";" (answer_text and the few-shot prompts join gold spans with "; "), each
  stripped of whitespace and of a sentence-final ".", which would otherwise turn "1.5." into "15";
- scale: when the last span is a number followed by thousand/million/billion (or plural) or
  "percent", that word is the prediction's scale and is cut from every number span it ends;
  "%" stays in the text, where the official number reader applies it itself (as it does to a gold
  "(66)%", so a verbatim copy matches).

Items without a scale or answer type (not TAT-QA) get the same normalised EM and token-set F1;
Chinese and Japanese characters count as one token each there, so F1 is not all-or-nothing.
"""

from __future__ import annotations

import math
import re
import string
from functools import lru_cache, partial

import numpy as np
from rouge_score import rouge_scorer

from contracts.items import GenItem

# --- TAT-QA's number reading (tatqa_utils.py), kept exactly: gold answers were scored with it ---
_SCALE_FACTORS = (
    ("hundred", 100),
    ("thousand", 1000),
    ("million", 10**6),
    ("billion", 10**9),
    ("percent", 0.01),
)
_NOT_IN_NUMBERS = str.maketrans("", "", "'\"\\$€£¥%(),[]")


def _scale_factor(text: str) -> float:
    """The first scale word that `text` contains ("millions" too), else 1."""
    text = text.lower()
    return next((factor for word, factor in _SCALE_FACTORS if word in text), 1)


def _is_number(text: str) -> bool:
    """A number, optionally followed by a scale word, once currency, %, parentheses and commas go."""
    words = text.translate(_NOT_IN_NUMBERS).split()
    try:
        if math.isnan(float(words[0])):
            return False
    except (IndexError, ValueError):
        return False
    return len(words) < 2 or _scale_factor(words[1]) != 1


def _to_number(text: str) -> float | None:
    """The first number, times its scale word, -1 for "(3.1)" and 0.01 for "%", rounded to 4 places.

    As officially, only parentheses around digits and dots mean negative: "(1,234)" stays positive.
    """
    first = re.search(r"[+-]?\d+(?:\.\d+)?|[+-]?\.\d+", text.translate(_NOT_IN_NUMBERS))
    if first is None or first.group().lstrip("+-").startswith("."):
        return None
    number = float(first.group()) if "." in first.group() else int(first.group())
    word = re.search(r"[\d.]+\s?[a-zA-Z]+", text)
    sign = -1 if re.search(r"\([\d.\s]+\)", text) else 1
    percent = 0.01 if re.search(r"[\d.\s]+%", text) else 1
    return round(number * (_scale_factor(word.group()) if word else 1) * sign * percent, 4)


def _answer_string(spans: list[str], scale: str) -> str:
    """Spans sorted (order-free) and joined; a number becomes its value times the scale, to 4 places."""
    parts = []
    for span in sorted(spans):
        number = _to_number(span) if _is_number(span) else None
        if number is None:
            parts.append(f"{span} {scale}" if scale else span)
        elif "%" in span:
            parts.append(f"{number:.4f}")
        else:
            parts.append(f"{round(number, 2) * _scale_factor(scale):.4f}")
    return " ".join(parts)


def _normalise_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in string.punctuation)
    if _is_number(token):
        token = str(_to_number(token))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", token).split())


def _normalise(text: str) -> str:
    """Lower case; no punctuation (outside numbers), articles or extra space; numbers as values."""
    return " ".join(part for part in map(_normalise_token, text.split(" ")) if part)


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"  # kana, kanji, half-width kana


def _bag(text: str) -> set[str]:
    """Whitespace tokens, with each CJK character a token (CJK punctuation separates)."""
    return set(re.findall(rf"[{_CJK}]|[^\s\u3000-\u303f{_CJK}]+", text))


def _em_f1(prediction: str, gold: str) -> tuple[float, float]:
    prediction, gold = _normalise(prediction), _normalise(gold)
    predicted, expected = _bag(prediction), _bag(gold)
    common = len(predicted & expected)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(expected) if expected else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(prediction == gold), float(np.round(f1, 2))  # numpy's rounding, as officially


def _prediction_spans(prediction: str) -> tuple[list[str], str]:
    """The prediction's spans and scale (the official metric's prediction and pred_scale)."""
    spans = [span.strip().rstrip(".。").strip() for span in prediction.split(";")]
    spans = [span for span in spans if span]
    scaled = re.compile(r"(.*?)\s*((?:thousand|million|billion)s?|percent)", re.IGNORECASE)
    last = scaled.fullmatch(spans[-1]) if spans else None
    if last is None or not _is_number(last.group(1)):
        return spans, ""
    word = last.group(2).lower()
    cut = [scaled.fullmatch(span) for span in spans]
    spans = [
        m.group(1) if m and m.group(2).lower() == word and _is_number(m.group(1)) else span
        for m, span in zip(cut, spans)
    ]
    return spans, word.removesuffix("s")


@lru_cache(maxsize=1024)  # `exact_match` and `f1` of one generation share the work
def _tatqa_em_f1(prediction: str, item: GenItem) -> tuple[float, float]:
    """TAT-QA's exact match and numeracy-aware F1; for arithmetic and count answers F1 is EM."""
    spans, scale = _prediction_spans(prediction)
    if not spans:
        return 0.0, 0.0
    candidates = [_answer_string(spans, scale)]
    if len(spans) == 1 and not scale and "%" not in spans[0] and _is_number(spans[0]):
        value = _to_number(spans[0])  # unrounded too: 0.2342 may answer 23.42 percent
        candidates += [] if value is None else [f"{value:.4f}"]
    gold = _answer_string(list(item.answers), item.scale)
    em, f1 = max(_em_f1(candidate, gold) for candidate in candidates)
    return (em, em) if item.answer_type in ("arithmetic", "count") else (em, f1)


def exact_match(prediction: str, item: GenItem) -> float:
    return _tatqa_em_f1(prediction, item)[0]


def f1(prediction: str, item: GenItem) -> float:
    return _tatqa_em_f1(prediction, item)[1]


# --- a plain reading of numbers, for the lenient numeric match ---
_NUMBER = re.compile(
    r"(?P<sign>[-−]?)\s*[$€£¥]?\s*(?P<open>\(?)\s*[$€£¥]?\s*(?P<digits>\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
    r"\s*(?P<close>\)?)\s*(?P<scale>%|percent\b|(?:thousand|million|billion)s?\b)?",
    re.IGNORECASE,
)


def _value(m: re.Match) -> tuple[float, bool]:
    """A matched number's value with its own scale word or %, and whether it had one."""
    value = float(m["digits"].replace(",", ""))
    if m["sign"] or (m["open"] and m["close"]):
        value = -value
    scale = (m["scale"] or "").lower()
    return value * (0.01 if scale == "%" else _scale_factor(scale)), bool(scale)


def numeric_match(prediction: str, item: GenItem, tolerance: float = 0.01) -> float:
    """1.0 when the prediction's first number is the gold number within relative `tolerance`.

    Both sides are values with their scale: "1.5 million" matches gold 1.5 with scale million, a bare
    "1.5" does not (as in the official EM). Gold that is not one number scores 0.
    """
    gold = _NUMBER.fullmatch(item.answers[0].strip()) if len(item.answers) == 1 else None
    predicted = _NUMBER.search(prediction)
    if gold is None or predicted is None:
        return 0.0
    value, has_scale = _value(gold)
    if not has_scale:
        value *= _scale_factor(item.scale)
    return float(abs(_value(predicted)[0] - value) <= max(tolerance * abs(value), 1e-9))


class _Words:
    """rouge-score's tokenisation (lower case, runs of letters and digits), extended beyond ASCII:
    the default drops every non-ASCII character, so Japanese would score 0; here each CJK character
    is a token and other scripts keep their letters. On ASCII text it splits as the default does."""

    def tokenize(self, text: str) -> list[str]:
        return re.findall(rf"[{_CJK}]|[^\W_{_CJK}]+", text.lower())


_ROUGE = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Words())


def rouge_l(prediction: str, item: GenItem) -> float:
    """ROUGE-L F-measure against the gold answer (its spans joined, as answer_text shows them)."""
    return float(_ROUGE.score(item.answer_text, prediction)["rougeL"].fmeasure)


GENERATIVE_METRICS = {"exact_match": exact_match, "f1": f1, "numeric": numeric_match, "rouge_l": rouge_l}


def score_generation(
    prediction: str, item: GenItem, metrics: list[str], tolerance: float
) -> dict[str, float]:
    """The named metrics of one generation; `tolerance` is numeric's relative difference."""
    chosen = {name: GENERATIVE_METRICS[name] for name in metrics}
    if "numeric" in chosen:
        chosen["numeric"] = partial(numeric_match, tolerance=tolerance)
    return {name: metric(prediction, item) for name, metric in chosen.items()}


def headline(entry: dict) -> str:
    """A task's headline metric: acc for multiple choice, the first configured for generation
    (results written before generative tasks have no `metrics`: acc)."""
    return entry.get("metrics", ["acc"])[0]
