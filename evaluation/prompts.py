"""How an item becomes a prompt: the language template, k solved examples before it, and for
instruct models the tokenizer's chat template around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from contracts.items import Item, Template, gold_text, language_template


@dataclass(frozen=True)
class ChatPrompt:
    """A template's prompt as the user's turn of the tokenizer's chat template. The answer follows
    the assistant header with no delimiter, as lm-eval's `--apply_chat_template` scores it; the
    template carries its own beginning of sequence, so the scorer adds no prefix."""

    template: Template
    tokenizer: object
    delimiter: str = ""

    def render(self, item: Item) -> str:
        turn = [{"role": "user", "content": self.template.render(item)}]
        return self.tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)


PromptFor = Callable[[Item], Template | ChatPrompt]


def fewshot_templates(items: list[Item], pool: list[Item], shots: int, seed: int) -> dict[str, Template]:
    """One template per item, prefixed with `shots` solved examples drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    out = {}
    for item in items:
        base = language_template(item)
        examples = [p for p in pool if p.id != item.id]
        chosen = [
            examples[i] for i in rng.choice(len(examples), size=min(shots, len(examples)), replace=False)
        ]
        solved = "".join(
            (base.render(e) + base.delimiter + gold_text(e)).replace("{", "{{").replace("}", "}}") + "\n\n"
            for e in chosen
        )
        out[item.id] = Template(solved + base.prompt, base.delimiter)
    return out


def in_chat(template_for: PromptFor, tokenizer) -> PromptFor:
    """The same prompts, each wrapped in the tokenizer's chat template."""
    return lambda item: ChatPrompt(template_for(item), tokenizer)
