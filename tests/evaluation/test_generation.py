"""Greedy generation on a tiny real model: batching, stop sequences, the token limit and EOS."""

import copy

import pytest
import torch
from transformers import LlamaForCausalLM

from evaluation.generation import GreedyGenerator, StopSequences

PROMPTS = [
    "Question: What is a ledger?\nAnswer:",
    "Q: Total?\nA:",
    "Table:\nRevenue | 2019 | 2018\nSales | $1,200 | $1,050\n\nQuestion: What was the change?\nAnswer:",
    "質問: 負債とは何ですか。\n答え:",
    "x",
]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny):
    """A tiny Llama whose EOS is the tokenizer's; wide weights so greedy choices are not near-ties."""
    model, tokenizer = tiny
    config = copy.deepcopy(model.config)
    config.initializer_range = 0.3
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer


def greedy_ids(model, tokenizer, prompt: str, n: int, keep: int | None = None) -> list[int]:
    """Argmax decoding one token at a time, one prompt (its last `keep` tokens), no cache and no
    padding: the reference."""
    ids = [tokenizer.eos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = ids[-keep:] if keep else ids
    start = len(ids)
    with torch.no_grad():
        for _ in range(n):
            ids.append(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax().item())
    return ids[start:]


def generator(model, tokenizer, batch_size: int) -> GreedyGenerator:
    return GreedyGenerator(model, tokenizer, batch_size, [tokenizer.eos_token_id])


def test_left_padded_batches_equal_one_prompt_at_a_time(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    reference = [tokenizer.decode(greedy_ids(model, tokenizer, p, 12)) for p in PROMPTS]
    assert len({len(tokenizer(p)["input_ids"]) for p in PROMPTS}) == len(PROMPTS)  # padding is needed
    assert tokenizer.pad_token_id is None  # the EOS pads
    for batch_size in (1, 3, len(PROMPTS)):
        assert generator(model, tokenizer, batch_size).generate(PROMPTS, 12, []) == reference
    assert len(set(reference)) > 1


def test_a_stop_sequence_cuts_the_text_before_it(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    full = generator(model, tokenizer, 2).generate(PROMPTS, 12, [])
    stop = full[2][len(full[2]) // 2 :][:2]  # two characters from the middle of one generation
    cut = generator(model, tokenizer, 2).generate(PROMPTS, 12, [stop, "never generated"])
    assert cut == [text[: text.index(stop)] if stop in text else text for text in full]
    assert cut[2] and len(cut[2]) < len(full[2])


def test_stop_sequences_look_at_generated_tokens_only(model_and_tokenizer):
    _, tokenizer = model_and_tokenizer
    prompt = tokenizer("Answer:\n", add_special_tokens=False)["input_ids"]
    rows = torch.tensor([prompt + tokenizer(" 12", add_special_tokens=False)["input_ids"][:1]])
    assert not StopSequences(tokenizer, ["\n"], len(prompt))(rows, None).any()
    assert StopSequences(tokenizer, ["\n"], len(prompt) - 1)(rows, None).all()


def test_max_new_tokens_bounds_the_generation(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    texts = generator(model, tokenizer, 3).generate(PROMPTS, 3, [])
    assert texts == [tokenizer.decode(greedy_ids(model, tokenizer, p, 3)) for p in PROMPTS]
    longer = generator(model, tokenizer, 3).generate(PROMPTS, 12, [])
    assert all(b.startswith(a) and len(a) < len(b) for a, b in zip(texts, longer))


def test_eos_stops_its_row_and_only_its_row(model_and_tokenizer, monkeypatch):
    model, tokenizer = model_and_tokenizer
    ids = greedy_ids(model, tokenizer, PROMPTS[0], 10)
    eos = ids[4]  # make the fifth generated token an end of sequence
    assert eos not in greedy_ids(model, tokenizer, PROMPTS[1], 10)
    monkeypatch.setattr(model.generation_config, "eos_token_id", [tokenizer.eos_token_id, eos])
    texts = generator(model, tokenizer, 2).generate(PROMPTS[:2], 10, [])
    assert texts[0] == tokenizer.decode(ids[: ids.index(eos)])
    assert texts[1] == tokenizer.decode(greedy_ids(model, tokenizer, PROMPTS[1], 10))


def test_a_prompt_too_long_for_the_context_loses_tokens_from_its_left(model_and_tokenizer):
    """As lm-eval's generate_until: the prompt keeps its last (context - max_new_tokens) tokens."""
    model, tokenizer = model_and_tokenizer
    short = copy.deepcopy(model)
    short.config.max_position_embeddings = 16
    prompt = PROMPTS[2]
    kept = tokenizer.decode(greedy_ids(model, tokenizer, prompt, 8, keep=8))
    assert kept != tokenizer.decode(greedy_ids(model, tokenizer, prompt, 8))  # the cut shows
    assert generator(short, tokenizer, 1).generate([prompt], 8, []) == [kept]
