"""The tasks as lm-evaluation-harness YAML (`dataset_path: json` over the same local file), so the
scores can be checked with the tool people would otherwise use (`lm_eval --include_path`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from contracts.items import Template


def lm_eval_yaml(task: str, path: Path, template: Template) -> str:
    """A multiple-choice task: each choice scored as a continuation of the prompt."""
    prompt = template.prompt.replace("{context}", "{{context + '\\n' if context else ''}}")
    prompt = prompt.replace("{question}", "{{question}}")
    spec = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(path.resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": prompt,
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{answer}}",
        "target_delimiter": template.delimiter,
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}, {"metric": "acc_bytes"}],
    }
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
