"""Generative tasks and chat prompts through the harness: real tiny models, real task files."""

import json

import pytest
import torch
import yaml
from conftest import ROOT
from transformers import LlamaForCausalLM

from contracts.items import GenItem, language_template, load_items
from evaluation.config import EvalError, load_eval_config
from evaluation.harness import plan_eval, run_eval
from evaluation.prompts import fewshot_templates
from evaluation.scoring import LoglikelihoodScorer

TABLE = "Table:\nItem | 2019 | 2018\nRevenue | $1,200.5 | $1,050.0\nNet loss | (3.1) | (2.4)\n\nText:\n"
GENERATIVE = [
    {"question": "What was the revenue in 2019?", "answers": ["1200.5"], "scale": "million"},
    {"question": "What was the net loss in 2018?", "answers": ["-2.4"], "scale": "million"},
    {"question": "Which years are shown?", "answers": ["2019", "2018"], "answer_type": "multi-span"},
    {"question": "What is the change in revenue?", "answers": ["150.5"], "answer_type": "arithmetic"},
    {"question": "What was the growth rate?", "answers": ["14.33"], "scale": "percent"},
    {"question": "What does the text describe?", "answers": ["the annual results"]},
]
MAX_NEW_TOKENS = 8


def _greedy(model, tokenizer, prompt: str) -> str:
    """Greedy decoding by plain `generate`, one prompt, the harness's EOS prefix: what it must match."""
    ids = torch.tensor([[tokenizer.eos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=MAX_NEW_TOKENS,
            pad_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def _models(tiny, folder, seeds, chat_template=None) -> list[str]:
    model, tokenizer = tiny
    out = []
    for name, seed in seeds.items():
        torch.manual_seed(seed)
        LlamaForCausalLM(model.config).save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
        if chat_template and name == "chatty":
            config = json.loads((folder / name / "tokenizer_config.json").read_text())
            config["chat_template"] = chat_template
            (folder / name / "tokenizer_config.json").write_text(json.dumps(config))
        out.append(str(folder / name))
    return out


def _recipe(tmp_path, eval_section: dict):
    path = tmp_path / "eval.yaml"
    run = {"name": "gen", "output_dir": str(tmp_path / "out"), "eval": {"perplexity": []} | eval_section}
    path.write_text(yaml.safe_dump(run))
    return load_eval_config(path)


@pytest.fixture(scope="module")
def generative_run(tiny, tmp_path_factory):
    """Two models on a TAT-QA-shaped task whose first gold answer is what model `first` writes
    (decoded independently here), and on a multiple-choice file asked generatively."""
    tmp = tmp_path_factory.mktemp("generative")
    folders = _models(tiny, tmp, {"first": 0, "second": 1})
    rows = [
        {"id": f"g{i}", "task": "tatqa_mini", "context": TABLE + "Annual results."} | r
        for i, r in enumerate(GENERATIVE)
    ]
    task = tmp / "tatqa_mini.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = load_items(task)[0]
    model = LlamaForCausalLM.from_pretrained(folders[0]).eval()
    written = _greedy(model, tiny[1], language_template(first).render(first)).split("\n")[0].strip()
    assert written.strip(".,;:!? "), f"the tiny model wrote nothing to match: {written!r}"
    rows[0] |= {"answers": [written], "scale": ""}
    task.write_text("".join(json.dumps(r) + "\n" for r in rows))
    demo = ROOT / "data" / "tasks" / "gnucash-demo.jsonl"
    mc = tmp / "mc.jsonl"
    mc.write_text("".join(demo.read_text().splitlines(keepends=True)[:5]))
    run = _recipe(
        tmp,
        {
            "models": folders,
            "tasks": [
                {"path": str(task), "max_new_tokens": MAX_NEW_TOKENS},
                {"path": str(mc), "output_type": "generate", "metrics": ["exact_match", "rouge_l"]},
            ],
        },
    )
    return run, run_eval(run), written


def test_a_generative_task_is_scored_by_exact_match_and_f1_with_intervals(generative_run):
    run, results, written = generative_run
    entry = results["tasks"]["tatqa_mini"]
    assert entry["output_type"] == "generate" and entry["metrics"] == ["exact_match", "f1"]
    assert entry["chat"] == {"first": False, "second": False}
    first = {r["id"]: r for r in entry["items"]["first"]}
    assert first["g0"]["prediction"].split("\n")[0].strip() == written
    assert first["g0"]["exact_match"] == first["g0"]["f1"] == 1.0  # the gold is its own greedy answer
    assert first["g2"]["gold"] == "2019; 2018"
    for model in ("first", "second"):
        for metric in ("exact_match", "f1"):
            s = entry["scores"][model][metric]
            assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    assert set(entry["paired"]["second - first"]) == {"exact_match", "f1"}
    report = run.layout.eval_report.read_text()
    assert "Wrong generations" in report and "g1" in report


def test_a_multiple_choice_file_can_be_asked_generatively(generative_run):
    run, results, _ = generative_run
    entry = results["tasks"]["gnucash_demo"]
    assert entry["output_type"] == "generate" and entry["metrics"] == ["exact_match", "rouge_l"]
    demo = load_items(ROOT / "data" / "tasks" / "gnucash-demo.jsonl")[0]
    assert entry["items"]["first"][0]["gold"] == demo.choices[demo.answer]
    spec = yaml.safe_load((run.layout.lm_eval_tasks / "tatqa_mini.yaml").read_text())
    assert spec["output_type"] == "generate_until"
    assert spec["generation_kwargs"]["max_gen_toks"] == MAX_NEW_TOKENS


def test_a_generative_file_scored_as_multiple_choice_names_the_key(generative_run, tmp_path):
    run, _, _ = generative_run
    task = next(p for p, _ in [(s.path, s) for s in run.eval.tasks] if "tatqa" in p)
    bad = _recipe(
        tmp_path, {"models": run.eval.models, "tasks": [{"path": task, "output_type": "multiple_choice"}]}
    )
    with pytest.raises(EvalError, match=r"eval.tasks.output_type: .*tatqa_mini.jsonl holds generative items"):
        plan_eval(bad)


def test_max_new_tokens_beyond_the_models_context_names_the_key(generative_run, tmp_path):
    run, _, _ = generative_run
    task = {"path": run.eval.tasks[0].path, "max_new_tokens": 5000}  # the tiny models have 2048
    bad = _recipe(tmp_path, {"models": run.eval.models[:1], "tasks": [task]})
    with pytest.raises(EvalError, match="eval.tasks.max_new_tokens: 5000 for .* model's 2048 tokens"):
        run_eval(bad)


CHAT = "{% for m in messages %}<|user|>{{ m['content'] }}\n{% endfor %}<|assistant|>"


def test_chat_prompts_use_the_tokenizers_template_and_are_recorded(tiny, tmp_path):
    chatty, plain = _models(tiny, tmp_path, {"chatty": 0, "plain": 1}, chat_template=CHAT)
    demo = ROOT / "data" / "tasks" / "gnucash-demo.jsonl"
    task = {"path": str(demo), "sample": 4}
    run = _recipe(tmp_path, {"models": [chatty, plain], "chat_models": ["chatty"], "tasks": [task]})
    entry = run_eval(run)["tasks"]["gnucash_demo"]
    assert entry["chat"] == {"chatty": True, "plain": False}
    item = next(i for i in load_items(demo) if i.id == entry["items"]["chatty"][0]["id"])
    model = LlamaForCausalLM.from_pretrained(chatty).eval()
    prompt = f"<|user|>{language_template(item).render(item)}\n<|assistant|>"
    scorer = LoglikelihoodScorer(model, tiny[1], prefix="none")  # the template starts the sequence
    expected = scorer.loglikelihoods([(prompt, choice) for choice in item.choices])  # no delimiter
    assert entry["items"]["chatty"][0]["loglikelihoods"] == pytest.approx(expected, abs=1e-4)
    every = _recipe(tmp_path, {"models": [chatty, plain], "tasks": [task | {"chat": True}]})
    with pytest.raises(EvalError, match="model 'plain' is prompted in its chat template, but its tokenizer"):
        plan_eval(every)


def test_few_shot_examples_of_a_generative_task_show_their_answer_text():
    items = [
        GenItem(f"g{i}", "t", "en", r["question"], tuple(r["answers"]), TABLE)
        for i, r in enumerate(GENERATIVE)
    ]
    prompt = fewshot_templates(items[:1], items[2:3], shots=1, seed=0)["g0"].render(items[0])
    assert prompt.count("Question:") == 2 and "Which years are shown?\nAnswer: 2019; 2018\n\n" in prompt
    assert prompt.endswith("What was the revenue in 2019?\nAnswer:")
