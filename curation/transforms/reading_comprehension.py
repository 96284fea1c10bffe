"""AdaptLLM's reading-comprehension transform (Cheng et al., ICLR 2024; microsoft/LMOps `adaptllm`).

Continued pretraining on raw domain text teaches knowledge but costs prompting ability; AdaptLLM
follows each text with exercises mined from its own sentences by patterns, so the model also
practises answering about what it read. The types, as in the paper:

- `summarize`: the title from the document's lead;
- `word2text`: a sentence from its keywords (words long and repeated in the document, standing in
  for the paper's domain-tokenizer keywords), and definitions ("X is defined as ...", 「Xとは…」);
- `nli`: two sentences joined by a connective: Therefore (entailed), However (contradicted),
  Moreover (neither);
- `cause_effect`: the sentence after "Thus"/"Therefore" as the effect of the one before, and the
  cause after "because"/"due to" inside a sentence;
- `paraphrase`: the sentence after "In other words"/"That is" as a restatement;
- `completion`: two sentences continued by the next two.

Where this departs from the paper: each exercise quotes what it needs (summary and completion quote
a few sentences instead of wrapping the whole text), so it reads the same appended to its document
or on its own; one template per exercise kind (the paper samples among many), so the output is a
function of the text and the document id alone (the id seeds the draw when there are more
candidates than `max_per_type`); the paper's "different" paraphrases (after However) are left to
`nli`.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

EXERCISE_TYPES = ("summarize", "word2text", "nli", "cause_effect", "paraphrase", "completion")


@dataclass(frozen=True)
class Exercise:
    kind: str  # one of EXERCISE_TYPES
    text: str


def _opening(connectives: str) -> re.Pattern:
    """A sentence opened by one of the connectives and a comma; group `rest` is what follows."""
    return re.compile(rf"(?:{connectives})[,、]\s*(?P<rest>.+)", re.DOTALL)


# section numbering left out of a title: "Chapter 5.", "2.1.", "B.1.", "第17章"
TITLE_NUMBERING = re.compile(
    r"^(?:(?:Chapter|Section|Appendix) (?:[A-Z]|\d+)\.?\s+|第\d+章\s*|(?:[A-Z]\.)?\d+(?:\.\d+)*\.\s+)"
)


@dataclass(frozen=True)
class Language:
    """What mining needs of a language: its sentences, connectives, clauses and templates."""

    joins: re.Pattern  # a line break inside a sentence (hard-wrapped extracted text)
    splits: re.Pattern  # a sentence boundary
    sentence: re.Pattern  # a sentence worth quoting
    min_chars: int
    max_chars: int
    glue: str  # between quoted sentences, and what a joined line break becomes
    list_sep: str
    capitalise: bool  # a sentence's rest after its connective starts with a capital
    quote_drops: str  # the sentence end left out inside quotes
    pairs: dict[str, dict[str, re.Pattern]]  # exercise type -> label -> opening of the 2nd sentence
    effect_cause: re.Pattern  # groups `effect`, `cause`
    definition: re.Pattern  # group `term`
    keyword: re.Pattern
    templates: dict[str, str]  # `type` or `type/label` -> template
    answers: dict[str, str]  # nli label -> answer
    intro: str  # between a document and its appended exercises

    def cap(self, text: str) -> str:
        return text[:1].upper() + text[1:] if self.capitalise else text


ENGLISH = Language(
    joins=re.compile(r"(?<![.!?:;])[ \t]*\n(?=[a-z])"),
    splits=re.compile(r"\n+|(?:(?<=[.!?])|(?<=[.!?][\"”’)]))\s+(?=[A-Z0-9\"“(])"),
    sentence=re.compile(r"[A-Z\"“(][^\n]*[.!?][\"”’)]?"),
    min_chars=40,
    max_chars=500,
    glue=" ",
    list_sep=", ",
    capitalise=True,
    quote_drops="",
    pairs={
        "nli": {
            "entail": _opening("Therefore|Thus|Hence|Accordingly|Consequently|As a result|For this reason"),
            "contradict": _opening(
                "However|But|In contrast|On the contrary|Nevertheless|Nonetheless|Conversely"
            ),
            "neutral": _opening("Moreover|Furthermore|Additionally|In addition|Also"),
        },
        "cause_effect": {
            "cause": _opening("Therefore|Thus|Hence|Accordingly|Consequently|As a result|For this reason")
        },
        "paraphrase": {
            "similar": _opening(r"In other words|That is to say|That is|Namely|Put differently|I\.e\.")
        },
    },
    effect_cause=re.compile(
        r"(?P<effect>[A-Z][^;]{19,}?),? (?:because of|due to|owing to|on account of|because) "
        r"(?P<cause>[^;]{10,}?)[.!?]"
    ),
    definition=re.compile(
        r"(?:(?:An?|The) )?(?!(?:This|That|It|These|Those|Which|What|There)\b)"
        r"(?P<term>[A-Za-z][\w/-]*(?: [\w/-]+){0,3}) (?:is defined as|refers to|is the term for) .+"
    ),
    keyword=re.compile(r"\b[A-Za-z][A-Za-z-]{7,}\b"),
    templates={
        "summarize": "{lead}\nWhat is a potential title for this text?\nTitle: {title}",
        "word2text/keywords": "Keywords: {keywords}\nWrite a sentence that uses all these words.\n"
        "Sentence: {sentence}",
        "word2text/definition": 'What does "{term}" mean?\nAnswer: {sentence}',
        "nli": "Premise: {first}\nHypothesis: {second}\nDoes the premise entail the hypothesis?\n"
        "Answer: {answer}",
        "cause_effect/cause": 'Question: What is the effect of "{quoted}"?\nAnswer: {second}',
        "cause_effect/effect": 'Question: What is the cause of "{effect}"?\nAnswer: {cause}.',
        "paraphrase": "Sentence: {first}\nHow can this be put in other words?\nAnswer: {second}",
        "completion": "Here is the beginning of a text: {beginning}\nHow would you continue it?\n{rest}",
    },
    answers={"entail": "Yes", "contradict": "No", "neutral": "Maybe"},
    intro="Now answer some questions about the text above.",
)

# Japanese: the connectives carry over one for one (sentence-initial, followed by 、); causes are
# clauses ending in ので/ため before 、; definitions are 「Xとは…」. Sentences end with 。！？. Keywords
# are runs of kanji or katakana (Japanese has no spaces to find words by). Every type has a pattern.
JAPANESE = Language(
    joins=re.compile(r"(?<![。！？:：])[ \t]*\n(?=[\u3041-\u309f])"),
    splits=re.compile(r"\n+|(?<=[。！？])\s*"),
    sentence=re.compile(r"[^\n]*[。！？]」?"),
    min_chars=15,
    max_chars=250,
    glue="",
    list_sep="、",
    capitalise=False,
    quote_drops="。",
    pairs={
        "nli": {
            "entail": _opening("したがって|従って|そのため|よって|ゆえに|それゆえ|その結果"),
            "contradict": _opening("しかしながら|しかし|ただし|ところが|一方|それに対して|けれども"),
            "neutral": _opening("さらに|また|加えて|なお|そのうえ|しかも"),
        },
        "cause_effect": {
            "cause": _opening("その結果|そのため|したがって|従って|よって|ゆえに|それゆえ|だから")
        },
        "paraphrase": {"similar": _opening("つまり|すなわち|言い換えれば|言い換えると|要するに|換言すれば")},
    },
    effect_cause=re.compile(r"(?P<cause>[^、。]{5,}?)(?:ので|ため)、(?P<effect>.{5,}?)。"),
    definition=re.compile(r"(?P<term>[^、。「」\s]{1,20}?)とは(?!異な|違)、?.{5,}"),  # not 「とは異なり」
    keyword=re.compile(r"[一-龯々ァ-ヶー]{3,}"),
    templates={
        "summarize": "{lead}\nこの文章に題名を付けてください。\n題名: {title}",
        "word2text/keywords": "キーワード: {keywords}\nこれらの語をすべて使った文を書いてください。\n"
        "文: {sentence}",
        "word2text/definition": "「{term}」とは何ですか。\n答え: {sentence}",
        "nli": "前提: {first}\n仮説: {second}\n前提から仮説が導かれますか。\n答え: {answer}",
        "cause_effect/cause": "「{quoted}」の結果、どうなりますか。\n答え: {second}",
        "cause_effect/effect": "「{effect}」の原因は何ですか。\n答え: {cause}ためです。",
        "paraphrase": "{first}\nこれを言い換えると、どうなりますか。\n答え: {second}",
        "completion": "次の文章の続きを書いてください。\n{beginning}\n続き: {rest}",
    },
    answers={"entail": "はい", "contradict": "いいえ", "neutral": "どちらとも言えない"},
    intro="上の文章について、次の問いに答えてください。",
)

LANGUAGES = {"en": ENGLISH, "ja": JAPANESE}


def sentences(text: str, lang: Language) -> list[str | None]:
    """The text's pieces in order: a sentence worth quoting, or None (a heading, a list item, a
    fragment) which breaks runs of consecutive sentences."""
    pieces = (p.strip() for p in lang.splits.split(lang.joins.sub(" " if lang.glue else "", text)))
    return [
        p if lang.min_chars <= len(p) <= lang.max_chars and lang.sentence.fullmatch(p) else None
        for p in pieces
        if p
    ]


def title_of(text: str, title: str | None, lang: Language) -> str | None:
    """The extractor's title, else the first line when it reads as one (the paper's rule); without
    its section numbering."""
    if not title:
        first, _, rest = text.strip().partition("\n")
        title = first if rest.strip() and len(first) <= 100 and not lang.sentence.fullmatch(first) else ""
    return TITLE_NUMBERING.sub("", title.strip()).strip() or None


def mine(
    text: str, lang: Language, title: str | None = None, seed: str = "", max_per_type: int = 2
) -> list[Exercise]:
    """The exercises of a text, in EXERCISE_TYPES order; at most `max_per_type` of each type, drawn
    in text order with `seed` (the document id) when there are more."""
    sents = sentences(text, lang)
    usable = [s for s in sents if s]
    t = lang.templates
    found: dict[str, list[str]] = {kind: [] for kind in EXERCISE_TYPES}
    if (title := title_of(text, title, lang)) and usable:
        found["summarize"].append(t["summarize"].format(lead=lang.glue.join(usable[:3]), title=title))
    found["word2text"] = _definitions(usable, lang) + _keywords(text, usable, lang)
    for first, second in zip(sents, sents[1:]):
        for kind, labels in lang.pairs.items():
            for label, opening in labels.items():
                if first and second and (m := opening.fullmatch(second)):
                    found[kind].append(
                        t.get(f"{kind}/{label}", t.get(kind)).format(
                            first=first,
                            quoted=first.removesuffix(lang.quote_drops),
                            second=lang.cap(m["rest"]),
                            answer=lang.answers.get(label, ""),
                        )
                    )
    for s in usable:
        if m := lang.effect_cause.fullmatch(s):
            found["cause_effect"].append(
                t["cause_effect/effect"].format(effect=m["effect"], cause=lang.cap(m["cause"]))
            )
    rng = random.Random(seed)
    if runs := [i for i in range(len(sents) - 3) if all(sents[i : i + 4])]:
        i = rng.choice(runs)
        beginning, rest = lang.glue.join(sents[i : i + 2]), lang.glue.join(sents[i + 2 : i + 4])
        found["completion"].append(t["completion"].format(beginning=beginning, rest=rest))
    exercises = []
    for kind in EXERCISE_TYPES:
        items = found[kind]
        if len(items) > max_per_type:
            items = [items[i] for i in sorted(rng.sample(range(len(items)), max_per_type))]
        exercises += [Exercise(kind, item) for item in items]
    return exercises


def _definitions(usable: list[str], lang: Language) -> list[str]:
    return [
        lang.templates["word2text/definition"].format(term=m["term"], sentence=s)
        for s in usable
        if (m := lang.definition.fullmatch(s))
    ]


def _keywords(text: str, usable: list[str], lang: Language, per_sentence: int = 3) -> list[str]:
    """Sentences holding `per_sentence` keywords: long words the document repeats."""
    counts = Counter(w.lower() for w in lang.keyword.findall(text))
    out = []
    for s in usable:
        words = list(dict.fromkeys(w for w in lang.keyword.findall(s) if counts[w.lower()] >= 2))
        if len(words) >= per_sentence:
            keywords = lang.list_sep.join(words[:per_sentence])
            out.append(lang.templates["word2text/keywords"].format(keywords=keywords, sentence=s))
    return out


class ReadingComprehension(PipelineStep):
    """Mines exercises from the documents of one corpus and split (the domain's training documents:
    validation stays raw text, so bits per byte compare arms on the same text).

    `append` follows the document with its exercises, as the paper does (metadata `exercises_start`
    is where they begin); `separate` keeps the document as it is and yields each exercise as a
    document of its own (id `<parent>#rc<i>`, the parent's metadata, `parent_id`, `exercise`).
    Counts go to the stats (`exercises_<type>`) and to metadata `exercises`. Documents in a language
    without patterns pass unchanged (`unsupported_language`).
    """

    type = "🎓 - TRANSFORM"
    name = "🎓 reading comprehension"

    def __init__(
        self, mode: str = "append", max_per_type: int = 2, corpus: str = "domain", split: str = "train"
    ):
        super().__init__()
        self.mode = mode
        self.max_per_type = max_per_type
        self.corpus = corpus
        self.split = split

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            meta = doc.metadata
            if meta.get("corpus") != self.corpus or meta.get("split") != self.split:
                yield doc
                continue
            self.stat_update("transformed")
            lang = LANGUAGES.get(meta.get("language"))
            if lang is None:
                self.stat_update("unsupported_language")
                yield doc
                continue
            with self.track_time():
                exercises = mine(doc.text, lang, meta.get("title"), str(doc.id), self.max_per_type)
            if not exercises:
                yield doc
                continue
            counts = Counter(e.kind for e in exercises)
            self.stat_update("with_exercises")
            for kind, n in counts.items():
                self.stat_update(f"exercises_{kind}", value=n)
            meta["exercises"] = dict(counts)
            if self.mode == "append":
                doc.text = doc.text.rstrip()
                meta["exercises_start"] = len(doc.text)
                doc.text = "\n\n".join([doc.text, lang.intro, *(e.text for e in exercises)])
            yield doc
            if self.mode == "separate":
                for i, exercise in enumerate(exercises):
                    extra = {"parent_id": doc.id, "exercise": exercise.kind}
                    yield Document(exercise.text, f"{doc.id}#rc{i}", metadata=dict(meta) | extra)
