"""AdaptLLM's reading-comprehension transform: golden exercises from handwritten English and Japanese
sentences, the step's two modes, and one corpus run with the transform on."""

import json

import pytest
from conftest import read_docs, run_corpus, subset_recipe
from datatrove.data import Document

from contracts.recipe import RecipeError
from curation.config import load_corpus_recipe
from curation.pipeline import CorpusPipeline
from curation.transforms import ReadingComprehension, mine
from curation.transforms.reading_comprehension import ENGLISH, JAPANESE

NLI_EN = "Interest rates on savings accounts rose sharply during the year."
NLI_EN_NEXT = "Therefore, many households moved their cash into deposit accounts."

GOLDEN = {
    "en_entail": (
        ENGLISH,
        f"{NLI_EN} {NLI_EN_NEXT}",
        None,
        [
            (
                "nli",
                f"Premise: {NLI_EN}\nHypothesis: Many households moved their cash into deposit accounts.\n"
                "Does the premise entail the hypothesis?\nAnswer: Yes",
            ),
            (
                "cause_effect",
                f'Question: What is the effect of "{NLI_EN}"?\n'
                "Answer: Many households moved their cash into deposit accounts.",
            ),
        ],
    ),
    "en_contradict": (
        ENGLISH,
        "A bond fund is usually less volatile than a stock fund. "
        "However, long-dated bonds can lose value quickly when rates rise.",
        None,
        [
            (
                "nli",
                "Premise: A bond fund is usually less volatile than a stock fund.\n"
                "Hypothesis: Long-dated bonds can lose value quickly when rates rise.\n"
                "Does the premise entail the hypothesis?\nAnswer: No",
            )
        ],
    ),
    "en_neutral": (
        ENGLISH,
        "Each transaction must balance its debits against its credits.\n"
        "Moreover, every split of a transaction can carry its own memo.",
        None,
        [
            (
                "nli",
                "Premise: Each transaction must balance its debits against its credits.\n"
                "Hypothesis: Every split of a transaction can carry its own memo.\n"
                "Does the premise entail the hypothesis?\nAnswer: Maybe",
            )
        ],
    ),
    "en_paraphrase": (
        ENGLISH,
        "The invoice stays open until the customer pays the full amount. "
        "In other words, a partial payment leaves a balance on the account.",
        None,
        [
            (
                "paraphrase",
                "Sentence: The invoice stays open until the customer pays the full amount.\n"
                "How can this be put in other words?\n"
                "Answer: A partial payment leaves a balance on the account.",
            )
        ],
    ),
    "en_effect_cause": (
        ENGLISH,
        "The quarterly report was delayed because the auditors found errors in the ledger.",
        None,
        [
            (
                "cause_effect",
                'Question: What is the cause of "The quarterly report was delayed"?\n'
                "Answer: The auditors found errors in the ledger.",
            )
        ],
    ),
    "en_definition": (
        ENGLISH,
        "A liability is defined as an amount of money that you owe to someone else.",
        None,
        [
            (
                "word2text",
                'What does "liability" mean?\n'
                "Answer: A liability is defined as an amount of money that you owe to someone else.",
            )
        ],
    ),
    "en_keywords": (
        ENGLISH,
        "Depreciation spreads the purchase cost of equipment over its useful life.\n"
        "Depreciation of equipment reduces its purchase value a little each year.",
        None,
        [
            (
                "word2text",
                "Keywords: Depreciation, purchase, equipment\nWrite a sentence that uses all these words.\n"
                "Sentence: Depreciation spreads the purchase cost of equipment over its useful life.",
            ),
            (
                "word2text",
                "Keywords: Depreciation, equipment, purchase\nWrite a sentence that uses all these words.\n"
                "Sentence: Depreciation of equipment reduces its purchase value a little each year.",
            ),
        ],
    ),
    "en_title_and_completion": (
        ENGLISH,
        "Every new account starts with an opening balance entry. "
        "The opening balance comes from your last bank statement. "
        "Enter it on the first day you plan to track in the book. "
        "Later entries then build on this starting amount correctly.",
        "3.2. Opening Balances",
        [
            (
                "summarize",
                "Every new account starts with an opening balance entry. "
                "The opening balance comes from your last bank statement. "
                "Enter it on the first day you plan to track in the book.\n"
                "What is a potential title for this text?\nTitle: Opening Balances",
            ),
            (
                "completion",
                "Here is the beginning of a text: Every new account starts with an opening balance entry. "
                "The opening balance comes from your last bank statement.\nHow would you continue it?\n"
                "Enter it on the first day you plan to track in the book. "
                "Later entries then build on this starting amount correctly.",
            ),
        ],
    ),
    "ja_entail": (
        JAPANESE,
        "金利が上昇すると、債券の価格は下落する傾向があります。"
        "したがって、長期債を保有する投資家は損失を被ることがあります。",
        None,
        [
            (
                "nli",
                "前提: 金利が上昇すると、債券の価格は下落する傾向があります。\n"
                "仮説: 長期債を保有する投資家は損失を被ることがあります。\n"
                "前提から仮説が導かれますか。\n答え: はい",
            ),
            (
                "cause_effect",
                "「金利が上昇すると、債券の価格は下落する傾向があります」の結果、どうなりますか。\n"
                "答え: 長期債を保有する投資家は損失を被ることがあります。",
            ),
        ],
    ),
    "ja_contradict": (
        JAPANESE,
        "株式は長期的に高い収益を期待できる資産です。しかし、短期的には価格が大きく変動することがあります。",
        None,
        [
            (
                "nli",
                "前提: 株式は長期的に高い収益を期待できる資産です。\n"
                "仮説: 短期的には価格が大きく変動することがあります。\n"
                "前提から仮説が導かれますか。\n答え: いいえ",
            )
        ],
    ),
    "ja_neutral": (
        JAPANESE,
        "口座の残高は毎月末に照合する必要があります。\nまた、照合の結果は記録として保存しておくと便利です。",
        None,
        [
            (
                "nli",
                "前提: 口座の残高は毎月末に照合する必要があります。\n"
                "仮説: 照合の結果は記録として保存しておくと便利です。\n前提から仮説が導かれますか。\n"
                "答え: どちらとも言えない",
            )
        ],
    ),
    "ja_paraphrase": (
        JAPANESE,
        "この勘定科目には将来支払うべき金額が記録されます。つまり、負債の残高を示しています。",
        None,
        [
            (
                "paraphrase",
                "この勘定科目には将来支払うべき金額が記録されます。\n"
                "これを言い換えると、どうなりますか。\n答え: 負債の残高を示しています。",
            )
        ],
    ),
    "ja_effect_cause": (
        JAPANESE,
        "取引先からの入金が遅れたため、今月の資金繰りが厳しくなりました。",
        None,
        [
            (
                "cause_effect",
                "「今月の資金繰りが厳しくなりました」の原因は何ですか。\n"
                "答え: 取引先からの入金が遅れたためです。",
            )
        ],
    ),
    "ja_definition": (
        JAPANESE,
        "収益とは、時間やサービスの提供によって受け取る報酬のことです。",
        None,
        [
            (
                "word2text",
                "「収益」とは何ですか。\n"
                "答え: 収益とは、時間やサービスの提供によって受け取る報酬のことです。",
            )
        ],
    ),
    "ja_keywords": (
        JAPANESE,
        "減価償却は固定資産の取得原価を配分する方法です。減価償却では固定資産の取得原価を耐用年数で割ります。",
        None,
        [
            (
                "word2text",
                "キーワード: 減価償却、固定資産、取得原価\nこれらの語をすべて使った文を書いてください。\n"
                "文: 減価償却は固定資産の取得原価を配分する方法です。",
            ),
            (
                "word2text",
                "キーワード: 減価償却、固定資産、取得原価\nこれらの語をすべて使った文を書いてください。\n"
                "文: 減価償却では固定資産の取得原価を耐用年数で割ります。",
            ),
        ],
    ),
    "ja_title_and_completion": (
        JAPANESE,
        "取引は日付と説明と金額を入れて記録します。入力が終わったら画面下のボタンを押してください。"
        "誤りに気付いた場合はいつでも修正できます。最後に変更を保存するのを忘れないでください。",
        "第4章 取引の入力",
        [
            (
                "summarize",
                "取引は日付と説明と金額を入れて記録します。入力が終わったら画面下のボタンを押してください。"
                "誤りに気付いた場合はいつでも修正できます。\n"
                "この文章に題名を付けてください。\n題名: 取引の入力",
            ),
            (
                "completion",
                "次の文章の続きを書いてください。\n"
                "取引は日付と説明と金額を入れて記録します。入力が終わったら画面下のボタンを押してください。\n"
                "続き: 誤りに気付いた場合はいつでも修正できます。"
                "最後に変更を保存するのを忘れないでください。",
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", GOLDEN)
def test_golden_exercises(case):
    lang, text, title, expected = GOLDEN[case]
    assert [(e.kind, e.text) for e in mine(text, lang, title, seed="doc")] == expected


@pytest.mark.parametrize(
    "lang, text",
    [
        (ENGLISH, "Short line.\nThe balance is therefore final, and nothing follows from it at all."),
        (ENGLISH, "Therefore, this document opens with a connective and has no sentence before it."),
        (JAPANESE, "短い文です。GnuCashとは異なり、この表計算ソフトには予算機能がありません。"),
    ],
)
def test_nothing_to_mine_gives_nothing(lang, text):
    """A connective inside a sentence, one with no sentence before it, 「とは異なり」 (no definition)."""
    assert mine(text, lang) == []


def test_draws_at_most_max_per_type_by_document_id():
    _, text, _, expected = GOLDEN["en_keywords"]
    one = [e.text for e in mine(text, ENGLISH, seed="a.html", max_per_type=1)]
    assert len(one) == 1 and one[0] in [t for _, t in expected]
    assert one == [e.text for e in mine(text, ENGLISH, seed="a.html", max_per_type=1)]
    drawn = {mine(text, ENGLISH, seed=f"doc{i}", max_per_type=1)[0].text for i in range(20)}
    assert len(drawn) == 2  # the id, not the position, decides


def _doc(text, doc_id="d1", **meta):
    return Document(text, doc_id, metadata={"corpus": "domain", "split": "train", "language": "en"} | meta)


def test_append_adds_exercises_to_domain_training_documents_only():
    _, text, _, expected = GOLDEN["en_entail"]
    step = ReadingComprehension("append")
    docs = [
        _doc(text),
        _doc(text, "v", split="val"),
        _doc(text, "r", corpus="replay"),
        _doc(text, "de", language="de"),
    ]
    train, val, replay, german = list(step.run(iter(docs)))
    assert train.text == "\n\n".join([text, ENGLISH.intro, *(t for _, t in expected)])
    assert train.metadata["exercises"] == {"nli": 1, "cause_effect": 1}
    assert train.text[train.metadata["exercises_start"] :].startswith("\n\n" + ENGLISH.intro)
    for doc in (val, replay, german):
        assert doc.text == text and "exercises" not in doc.metadata
    assert step.stats["exercises_nli"].total == 1 and step.stats["exercises_cause_effect"].total == 1
    assert step.stats["transformed"].total == 2 and step.stats["unsupported_language"].total == 1


def test_separate_yields_linked_exercise_documents():
    _, text, _, expected = GOLDEN["en_entail"]
    out = list(ReadingComprehension("separate").run(iter([_doc(text, "manual.html", input="finance")])))
    parent, *exercises = out
    assert parent.text == text and parent.id == "manual.html"
    assert [(d.id, d.metadata["exercise"], d.text) for d in exercises] == [
        (f"manual.html#rc{i}", kind, t) for i, (kind, t) in enumerate(expected)
    ]
    for d in exercises:
        assert d.metadata["parent_id"] == "manual.html"
        assert (d.metadata["corpus"], d.metadata["split"], d.metadata["input"]) == (
            "domain",
            "train",
            "finance",
        )


def test_recipe_section_is_strict(tmp_path):
    recipe = subset_recipe(tmp_path, transform={"mode": "separate", "max_per_typ": 3})
    with pytest.raises(RecipeError, match="max_per_typ"):
        load_corpus_recipe(recipe, check_paths=False)
    recipe = subset_recipe(tmp_path, name="named", transform="reading_comprehension")
    section = load_corpus_recipe(recipe, check_paths=False).transform
    assert (section.kind, section.mode, section.max_per_type) == ("reading_comprehension", "append", 2)


def test_changed_section_reruns_the_select_stage(tmp_path):
    """`transform` is in the select stage's fingerprint: changing it rebuilds docs/ and what follows."""
    prints = []
    for name, section in (
        ("none", None),
        ("append", "reading_comprehension"),
        ("separate", {"mode": "separate"}),
    ):
        recipe = load_corpus_recipe(subset_recipe(tmp_path, name=name, transform=section))
        stages = {s.name: s.fingerprint for s in CorpusPipeline(recipe).stages}
        prints.append((stages["classifiers"], stages["route"]))
    assert len({classifiers for classifiers, _ in prints}) == 1
    assert len({select for _, select in prints}) == 3


def test_corpus_run_gives_exercises_to_domain_training_documents_only(tmp_path):
    recipe = subset_recipe(tmp_path, name="rc", transform="reading_comprehension")
    result = run_corpus(recipe)
    assert result.returncode == 0, result.stderr[-3000:]
    root = tmp_path / "out" / "rc" / "corpus"
    train = read_docs(root / "docs" / "domain" / "train")
    given = [d for d in train if "exercises" in d["metadata"]]
    assert {d["metadata"]["language"] for d in given} == {"en", "ja"}
    for d in given:
        assert d["text"][d["metadata"]["exercises_start"] :].startswith("\n\n")
    others = [
        d
        for folder in ("domain/val", "replay/train", "replay/val")
        for d in read_docs(root / "docs" / folder)
    ]
    assert others and not any("exercises" in d["metadata"] for d in others)
    assert not any(lang.intro in d["text"] for d in others for lang in (ENGLISH, JAPANESE))
    stats = json.loads((root / "stats.json").read_text())["exercises"]
    per_doc = {}
    for d in given:
        for kind, n in d["metadata"]["exercises"].items():
            per_doc[kind] = per_doc.get(kind, 0) + n
    assert {k: v for k, v in stats["per_type"].items() if v} == per_doc
    assert stats["with_exercises"] == len(given) and stats["documents"] == len(train)
    assert stats["per_type"]["nli"] and stats["per_type"]["summarize"]
    assert 2 <= len(stats["examples"]) <= 3
    assert "Reading-comprehension exercises" in (root / "report.html").read_text()
