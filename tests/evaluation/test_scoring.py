"""Log-likelihood scoring on a tiny real model: lm-eval's encoding, packed prompts, batch independence."""

import copy

import numpy as np
import pytest
import torch

from contracts.items import McItem, language_template
from evaluation.scoring import LoglikelihoodScorer, score_items

ITEMS = [
    McItem(
        "q1",
        "demo",
        "en",
        "Which account type records money owed to you?",
        ("Asset", "Liability", "Equity"),
        0,
    ),
    McItem(
        "q2",
        "demo",
        "en",
        "What does a split transaction divide?",
        ("an amount", "a file"),
        0,
        "GnuCash guide",
    ),
    McItem(
        "q3",
        "demo",
        "ja",
        "貸方に記録されるのはどれですか。",
        ("負債の増加", "資産の増加", "費用の発生", "収益の減少"),
        0,
    ),
    McItem(
        "q4", "demo", "en", "Which report shows income and expenses?", ("Profit & Loss", "Balance Sheet"), 0
    ),
]


def test_loglikelihood_equals_the_models_own_loss(tiny):
    model, tokenizer = tiny
    scorer = LoglikelihoodScorer(model, tokenizer, batch_size=3)
    prompt, continuation = "Question: What is a ledger?\nAnswer:", " a book of accounts"
    (ll,) = scorer.loglikelihoods([(prompt, continuation)])
    ids = [tokenizer.eos_token_id] + tokenizer(prompt + continuation)["input_ids"]
    n = len(ids) - 1 - len(tokenizer(prompt)["input_ids"])
    labels = torch.tensor([[-100] * (len(ids) - n) + ids[-n:]])
    with torch.no_grad():  # transformers' mean cross-entropy over the continuation tokens only
        loss = model(input_ids=torch.tensor([ids]), labels=labels).loss.item()
    assert scorer.prefix == "eos" and n > 1
    assert ll == pytest.approx(-loss * n, abs=1e-4)


def test_scores_do_not_depend_on_batch_size(tiny):
    model, tokenizer = tiny
    one = score_items(LoglikelihoodScorer(model, tokenizer, batch_size=1), ITEMS, language_template)
    many = score_items(LoglikelihoodScorer(model, tokenizer, batch_size=5), ITEMS, language_template)
    for a, b in zip(one, many):
        assert (a["acc"], a["acc_norm"], a["acc_bytes"]) == (b["acc"], b["acc_norm"], b["acc_bytes"])
        assert np.allclose(a["loglikelihoods"], b["loglikelihoods"], atol=1e-5)
    assert all(len(r["loglikelihoods"]) == len(item.choices) for r, item in zip(one, ITEMS))


def test_packed_choices_equal_each_request_run_alone(tiny):
    """Requests sharing a prompt run as one packed sequence; each still scores as lm-eval scores it
    alone: the prompt's trailing whitespace moves to the continuation, whose tokens are those after
    the prompt's in the encoding of both."""
    model, tokenizer = tiny
    requests = [
        (prompt, choice)
        for prompt in ("Question: What is a ledger?\nAnswer:", "user: Which is an asset?\nassistant:\n")
        for choice in (" a book of accounts", " cash", "負債の増加 — €5")
    ]
    scored = LoglikelihoodScorer(model, tokenizer, batch_size=1).loglikelihoods(requests)
    for (prompt, choice), ll in zip(requests, scored):
        context, continuation = prompt.rstrip(), prompt[len(prompt.rstrip()) :] + choice
        context_ids = [tokenizer.eos_token_id, *tokenizer(context)["input_ids"]]
        whole = [tokenizer.eos_token_id, *tokenizer(context + continuation)["input_ids"]]
        ids = context_ids + whole[len(context_ids) :]
        with torch.no_grad():
            logprobs = model(input_ids=torch.tensor([ids[:-1]])).logits[0].log_softmax(-1)
        n = len(ids) - len(context_ids)
        expected = logprobs[-n:].gather(1, torch.tensor(ids[-n:])[:, None]).sum().item()
        assert n > 1 and ll == pytest.approx(expected, abs=1e-4)


def test_a_request_longer_than_the_context_loses_its_prompts_left_end_as_in_lm_eval(tiny):
    """lm-eval scores (context + continuation)[-(max_length + 1):]: the prompt is cut from the left,
    by how much depending on each continuation's length."""
    model, tokenizer = tiny
    short = copy.deepcopy(model)
    short.config.max_position_embeddings = 12
    prompt = "Question: Which statement lists what a company owns and what it owes?\nAnswer:"
    requests = [(prompt, " cash"), (prompt, " a book of accounts")]
    scored = LoglikelihoodScorer(short, tokenizer).loglikelihoods(requests)
    for (_, continuation), ll in zip(requests, scored):
        context = [tokenizer.eos_token_id, *tokenizer(prompt)["input_ids"]]
        whole = [tokenizer.eos_token_id, *tokenizer(prompt + continuation)["input_ids"]]
        n = len(whole) - len(context)
        window = whole[-13:]
        with torch.no_grad():
            logprobs = model(input_ids=torch.tensor([window[:-1]])).logits[0].log_softmax(-1)
        expected = logprobs[-n:].gather(1, torch.tensor(window[-n:])[:, None]).sum().item()
        assert len(context) > 13 and ll == pytest.approx(expected, abs=1e-4)
