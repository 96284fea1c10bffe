"""`make merge` end to end: `python -m training merge` writes an interpolation between two exports,
`python -m evaluation merges` scores each in bits per byte as `make eval` does, and marks the front."""

import gzip
import json
import subprocess
import sys

import torch
import yaml
from conftest import ROOT
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from evaluation.harness import bits_per_byte
from evaluation.merges import pareto_front

DOCS = {
    "domain": ["A split transaction divides one amount between accounts. " * 3, "Assets minus liabilities."],
    "replay": ["PostgreSQL stores tables in heap files.", "def main():\n    return 0\n" * 4],
}


def test_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    points = {"a": (1.0, 3.0), "b": (2.0, 2.0), "c": (2.5, 2.5), "d": (3.0, 1.0), "e": (3.0, 1.0)}
    assert pareto_front(points) == {"a", "b", "d", "e"}  # c is beaten by b; equal points both stay


def test_merge_then_score_an_interpolation(tiny, tmp_path):
    model, tokenizer = tiny
    run = tmp_path / "out" / "run"
    for stage, seed in (("base", 0), ("cpt", 1)):
        torch.manual_seed(seed)
        LlamaForCausalLM(model.config).save_pretrained(run / "train" / "hf" / stage)
        tokenizer.save_pretrained(run / "train" / "hf" / stage)
        (run / "train" / "hf" / stage / "export.json").write_text("{}")  # the trainer's completion mark
    for corpus, texts in DOCS.items():
        (run / "corpus" / "docs" / corpus / "val").mkdir(parents=True)
        with gzip.open(run / "corpus" / "docs" / corpus / "val" / "000.jsonl.gz", "wt") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    recipe = tmp_path / "merge.yaml"
    merge = {"merge_method": "linear", "models": [{"model": "hf/base"}, {"model": "hf/cpt"}]}
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "run",
                "output_dir": str(tmp_path / "out"),
                "eval": {"perplexity_window": 8},
                "merge": {"base-cpt": merge | {"interpolate": [0.0, 0.5, 1.0]}},
            }
        )
    )
    for package in ("training", "evaluation merges"):
        command = [sys.executable, "-m", *package.split(), *(["merge"] if package == "training" else [])]
        result = subprocess.run([*command, str(recipe)], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    pareto = json.loads((run / "merge" / "pareto.json").read_text())
    assert list(pareto["models"]) == ["base-cpt t=0", "base-cpt t=0.5", "base-cpt t=1"]
    assert "Pareto front" in result.stderr and (run / "merge" / "report.html").read_text().count("<img") == 1
    # an endpoint is its source, scored exactly as `make eval` scores the source
    folder = run / "merge" / "base-cpt" / "t1"
    source = AutoModelForCausalLM.from_pretrained(run / "train" / "hf" / "cpt").eval()
    merged = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), merged.state_dict().values()))
    tok = AutoTokenizer.from_pretrained(folder)
    for corpus, texts in DOCS.items():
        bits, n_bytes = zip(*bits_per_byte(source, tok, texts, [tok.eos_token_id], 8))
        assert pareto["models"]["base-cpt t=1"]["bits_per_byte"][corpus]["bpb"] == round(
            sum(bits) / sum(n_bytes), 5
        )
    points = {
        k: (m["bits_per_byte"]["domain"]["bpb"], m["bits_per_byte"]["replay"]["bpb"])
        for k, m in pareto["models"].items()
    }
    assert {k for k, m in pareto["models"].items() if m["pareto"]} == pareto_front(points)
