"""The tasks as lm-evaluation-harness YAML (`dataset_path: json` over the same local file), so the
scores can be checked with the tool people would otherwise use (`lm_eval --include_path`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from contracts.items import Template

# the gold answer as dacp reads it: `answer_text`, else `answers` joined, else the correct choice
# (a multiple-choice file asked generatively)
GOLD_TEXT = (
    "{{answer_text if answer_text is defined and answer_text else answers | join('; ') "
    "if answers is defined and answers else choices[answer]}}"
)


def lm_eval_yaml(
    task: str, path: Path, template: Template, generate: tuple[int, list[str]] | None = None
) -> str:
    """A multiple-choice task (each choice scored as a continuation of the prompt), or with
    `generate` = (max_new_tokens, stop) a generative one: greedy decoding until a stop string,
    scored by exact match against the gold text after stripping whitespace, case and punctuation
    (the closest of lm-eval's options to SQuAD-style normalisation; TAT-QA's numeracy-aware F1 is
    dacp's own)."""
    prompt = template.prompt.replace("{context}", "{{context + '\\n' if context else ''}}")
    prompt = prompt.replace("{question}", "{{question}}")
    spec = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(path.resolve())}},
        "test_split": "test",
        "doc_to_text": prompt,
    }
    if generate is None:
        return _dump(
            spec
            | {
                "output_type": "multiple_choice",
                "doc_to_choice": "{{choices}}",
                "doc_to_target": "{{answer}}",
                "target_delimiter": template.delimiter,
                "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}, {"metric": "acc_bytes"}],
            }
        )
    max_new_tokens, stop = generate
    return _dump(
        spec
        | {
            "output_type": "generate_until",
            "doc_to_target": GOLD_TEXT,
            "generation_kwargs": {"until": list(stop), "max_gen_toks": max_new_tokens, "do_sample": False},
            "filter_list": [
                {"name": "strip", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}
            ],
            "metric_list": [
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "ignore_case": True,
                    "ignore_punctuation": True,
                }
            ],
        }
    )


def _dump(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
