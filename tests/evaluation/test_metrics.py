"""Generative metrics: TAT-QA's official EM/F1 on handmade answers, numeric match, ROUGE-L."""

import pytest
from rouge_score import rouge_scorer

from contracts.items import GenItem
from evaluation.metrics import GENERATIVE_METRICS, exact_match, f1, numeric_match, rouge_l, score_generation

# Expected (EM, F1) are the official metric's outputs: TaTQAEmAndF1 from github.com/NExTplusplus/TAT-QA
# at 870accc41953dcde885aabeb963d94aabdc0fbc3 (tatqa_metric.py, tatqa_utils.py), run outside the repo
# on these pairs with the prediction's spans and pred_scale read as evaluation/metrics.py reads them.
CASH, DOLLARS = ["Cash flow from operations", "Tax paid"], ["$3,440,258", "$3,236,004"]
TATQA = [  # prediction, gold answers, scale, answer_type, official (EM, F1)
    ("1.5 million", ["1.5"], "million", "arithmetic", (1.0, 1.0)),
    ("1.5 million.", ["1.5"], "million", "arithmetic", (1.0, 1.0)),
    ("1.5 thousand", ["1.5"], "million", "arithmetic", (0.0, 0.0)),  # wrong scale
    ("1.5", ["1.5"], "million", "arithmetic", (0.0, 0.0)),  # no scale
    ("1.234 million", ["1.23"], "million", "arithmetic", (1.0, 1.0)),  # numbers to 2 places
    ("$712.1 million", ["$712.1"], "million", "span", (1.0, 1.0)),
    ("$712.1", ["$712.1"], "million", "span", (0.0, 0.0)),
    ("Cash flow from operations; Tax paid", CASH, "", "multi-span", (1.0, 1.0)),
    ("Tax paid; Cash flow from operations", CASH, "", "multi-span", (1.0, 1.0)),
    ("Tax paid", CASH, "", "multi-span", (0.0, 0.5)),  # a span missing
    ("Cash flow from operations; Tax paid; Interest paid", CASH, "", "multi-span", (0.0, 0.92)),  # one extra
    ("3,236,004 thousand; 3,440,258 thousand", DOLLARS, "thousand", "multi-span", (1.0, 1.0)),
    ("$3,440,258; $3,236,004", DOLLARS, "thousand", "multi-span", (0.0, 0.0)),
    ("2015; 2017; 2016", ["2015", "2016", "2017"], "", "multi-span", (1.0, 1.0)),
    ("(3.1)", ["-3.1"], "", "arithmetic", (1.0, 1.0)),  # negative in parentheses
    ("-19.2", ["(19.2)"], "", "span", (1.0, 1.0)),
    ("(33) million", ["(33)"], "million", "span", (1.0, 1.0)),
    ("(20,597) thousand", ["$(20,597)"], "thousand", "span", (1.0, 1.0)),
    ("-20,597 thousand", ["$(20,597)"], "thousand", "span", (0.0, 0.0)),  # officially "(20,597)" is positive
    ("12.5%", ["12.5"], "percent", "arithmetic", (1.0, 1.0)),
    ("12.5 percent", ["12.5"], "percent", "arithmetic", (1.0, 1.0)),
    ("0.125", ["12.5"], "percent", "arithmetic", (1.0, 1.0)),  # a fraction for a percentage
    ("12.5", ["12.5"], "percent", "arithmetic", (0.0, 0.0)),
    ("-6.06%", ["-6.06"], "percent", "arithmetic", (1.0, 1.0)),
    ("27 percent", ["27%"], "", "span", (1.0, 1.0)),
    ("(66)%; (223)%", ["(66)%", "(223)%"], "percent", "multi-span", (1.0, 1.0)),
    ("-66%; -223%", ["(66)%", "(223)%"], "percent", "multi-span", (0.0, 0.0)),  # officially "(66)%" is -66
    ("$1,066 million", ["$1,066 million"], "", "span", (1.0, 1.0)),
    ("1066 million", ["$1,066 million"], "", "span", (1.0, 1.0)),
    ("$1,066", ["$1,066 million"], "", "span", (0.0, 0.0)),
    ("1,031", ["1031"], "million", "arithmetic", (0.0, 0.0)),
    ("1,031 million", ["1031"], "million", "arithmetic", (1.0, 1.0)),
    ("-49955 thousand; 2019", ["-49955"], "thousand", "arithmetic", (0.0, 0.0)),  # F1 = EM
    ("-49955 thousand; 2019", ["-49955"], "thousand", "span", (0.0, 0.67)),  # the same as a span
    ("Modified retrospective method.", ["the modified retrospective method"], "", "span", (1.0, 1.0)),
    ("A modified, retrospective method", ["the modified retrospective method"], "", "span", (1.0, 1.0)),
    ("the modified method", ["the modified retrospective method"], "", "span", (0.0, 0.8)),
    ("2015 through 2019 tax years", ["2015 through 2019 tax years."], "", "span", (1.0, 1.0)),
    ("2", ["2"], "", "count", (1.0, 1.0)),
    ("two", ["2"], "", "count", (0.0, 0.0)),
    ("", ["2"], "", "count", (0.0, 0.0)),
]


def gen_item(answers, scale="", answer_type="", lang="en") -> GenItem:
    return GenItem("q", "t", lang, "question?", tuple(answers), None, scale, answer_type)


@pytest.mark.parametrize("prediction, answers, scale, answer_type, official", TATQA)
def test_em_and_f1_equal_the_official_tatqa_metric(prediction, answers, scale, answer_type, official):
    item = gen_item(answers, scale, answer_type)
    assert (exact_match(prediction, item), f1(prediction, item)) == official


@pytest.mark.parametrize(
    "prediction, answers, expected",
    [
        ("asset.", ["Asset"], (1.0, 1.0)),
        ("amount", ["an amount"], (1.0, 1.0)),
        ("a book of accounts", ["book of all accounts"], (0.0, 0.86)),
        ("$1,200", ["1200"], (1.0, 1.0)),
        ("負債の増加。", ["負債の増加"], (1.0, 1.0)),
        ("負債の減少", ["負債の増加"], (0.0, 0.6)),  # a character is a token: 3 of 5 in common
    ],
)
def test_em_and_f1_of_items_without_tatqa_fields(prediction, answers, expected):
    item = gen_item(answers, lang="ja" if answers[0][0] == "負" else "en")
    assert (exact_match(prediction, item), f1(prediction, item)) == expected


@pytest.mark.parametrize(
    "prediction, answer, scale, tolerance, expected",
    [
        ("about $1.52 million", "1.5", "million", 0.02, 1.0),
        ("about $1.52 million", "1.5", "million", 0.01, 0.0),
        ("1.5", "1.5", "million", 0.01, 0.0),  # a scale is part of the value
        ("1,500,000", "1.5", "million", 0.0, 1.0),
        ("(3.1)", "-3.1", "", 0.0, 1.0),
        ("3.1", "-3.1", "", 0.5, 0.0),
        ("-20,597 thousand", "$(20,597)", "thousand", 0.0, 1.0),
        ("12.5%", "12.5", "percent", 0.0, 1.0),
        ("0.125", "12.5", "percent", 0.0, 1.0),
        ("-66 percent", "(66)%", "percent", 0.0, 1.0),  # the gold's own % is not applied twice
        ("$1,066 million", "$1,066 million", "", 0.0, 1.0),
        ("0.0", "0", "", 0.0, 1.0),
        ("0.001", "0", "", 0.5, 0.0),
        ("In 2019 it was 1.5 million", "1.5", "million", 0.01, 0.0),  # the first number counts
        ("n/a", "1.5", "", 0.01, 0.0),
        ("5", "the modified retrospective method", "", 0.01, 0.0),
        ("2019 and 2018", "2019 and 2018", "", 0.01, 0.0),
    ],
)
def test_numeric_match_within_a_relative_tolerance(prediction, answer, scale, tolerance, expected):
    assert numeric_match(prediction, gen_item([answer], scale), tolerance) == expected


def test_numeric_match_needs_one_gold_number():
    assert numeric_match("2015", gen_item(["2015", "2016"]), 0.01) == 0.0


def test_rouge_l_is_rouge_score_on_english_and_counts_characters_in_japanese():
    gold, prediction = "Revenue increased due to higher sales.", "revenue increased because of higher sales"
    official = rouge_scorer.RougeScorer(["rougeL"]).score(gold, prediction)["rougeL"].fmeasure
    assert rouge_l(prediction, gen_item([gold])) == pytest.approx(official) == pytest.approx(2 / 3)
    assert rouge_l("負債の減少", gen_item(["負債の増加"], lang="ja")) == pytest.approx(0.6)
    assert rouge_scorer.RougeScorer(["rougeL"]).score("負債の増加", "負債の減少")["rougeL"].fmeasure == 0.0
    assert rouge_l("Tax paid; Cash flow", gen_item(["Cash flow", "Tax paid"])) == pytest.approx(0.5)
    assert rouge_l("", gen_item(["Cash flow"])) == 0.0 and isinstance(rouge_l("", gen_item(["x"])), float)


def test_score_generation_scores_the_named_metrics_with_the_tolerance():
    item = gen_item(["1.5"], "million", "arithmetic")
    scores = score_generation("1.52 million", item, ["numeric", "exact_match", "f1", "rouge_l"], 0.02)
    assert scores == {"numeric": 1.0, "exact_match": 0.0, "f1": 0.0, "rouge_l": pytest.approx(0.4)}
    assert score_generation("1.52 million", item, ["numeric"], 0.001) == {"numeric": 0.0}
    assert set(GENERATIVE_METRICS) == {"exact_match", "f1", "numeric", "rouge_l"}
