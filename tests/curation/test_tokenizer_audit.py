"""The tokenizer audit on real sample text with real tokenizers: byte-level BPEs trained here on the
GnuCash guide (English, Japanese), GPT-2's files from the data kit, and the CLI on a built corpus."""

import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
import yaml
from conftest import KIT, ROOT, SAMPLES

from contracts.layout import RunLayout
from curation.config import TrainModel, load_corpus_recipe
from curation.report.tokenizer_audit import WORDS, TokenizerAudit, audit_sources, load_tokenizer

SENTENCE = "日本銀行は金利を上げた"  # 11 characters of 3 UTF-8 bytes each


def page_text(path: Path) -> str:
    return lxml.html.fromstring(path.read_bytes()).text_content()


def texts(folder: str) -> list[str]:
    return [page_text(p) for p in sorted((SAMPLES / folder).glob("*.html"))]


def byte_bpe(corpus: list[str], vocab_size: int = 1000):
    """A byte-level BPE as the corpus stage trains one (curation.output.tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def english_bpe():
    """Trained on the English guide's ASCII text: no merge joins the bytes of a Japanese character."""
    return byte_bpe([t.encode("ascii", "ignore").decode() for t in texts("finance/gnucash/en")])


@pytest.fixture(scope="module")
def japanese_bpe():
    return byte_bpe(texts("finance/gnucash/ja"))


def write_corpus(root: Path, docs: dict[tuple[str, str, str], list[str]]) -> RunLayout:
    """docs/<corpus>/<split>/00000.jsonl.gz as the corpus stage writes it, with `language` metadata."""
    layout = RunLayout(root / "out", "audit")
    for (corpus, split, language), bodies in docs.items():
        folder = layout.corpus_docs(corpus, split)
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(folder / "00000.jsonl.gz", "at") as f:
            for i, text in enumerate(bodies):
                meta = {"language": language, "corpus": corpus}
                f.write(json.dumps({"id": f"{language}-{i}", "text": text, "metadata": meta}) + "\n")
    return layout


def test_words_are_letter_runs_and_japanese_script_runs():
    text = "GnuCash の勘定科目 (Accounts) は 2024 年にコンピューターでつくられた"
    assert [m.group() for m in WORDS.finditer(text)] == [
        "GnuCash", "の", "勘定科目", "Accounts", "は", "年", "に", "コンピューター", "でつくられた",
    ]  # fmt: skip


def test_kanji_cost_three_byte_tokens_without_japanese_merges(english_bpe):
    row = TokenizerAudit({}).measure(english_bpe, [SENTENCE])
    assert (row["chars"], row["bytes"], row["tokens"]) == (11, 33, 33)
    assert row["tokens_per_char"] == 3.0
    assert row["tokens_per_byte"] == 1.0
    assert row["byte_fallback_share"] == 1.0
    assert row["multi_token_word_share"] == 1.0
    assert [(w["word"], w["count"], w["tokens"]) for w in row["multi_token_words"]] == [
        ("日本銀行", 1, 12), ("は", 1, 3), ("金利", 1, 6), ("を", 1, 3), ("上", 1, 3), ("げた", 1, 6),
    ]  # fmt: skip


def test_a_tokenizer_trained_on_japanese_spends_fewer_tokens_on_it(english_bpe, japanese_bpe):
    """On another Japanese manual (Debian's handbook), and the other way round on English text."""
    audit = TokenizerAudit({})
    ja_text = texts("general/debian-handbook/ja")[:4]
    en_text = texts("general/debian-handbook/en")[:4]
    on_ja = {name: audit.measure(tok, ja_text) for name, tok in (("en", english_bpe), ("ja", japanese_bpe))}
    on_en = {name: audit.measure(tok, en_text) for name, tok in (("en", english_bpe), ("ja", japanese_bpe))}
    assert on_ja["ja"]["tokens_per_char"] < 0.6 * on_ja["en"]["tokens_per_char"]
    assert on_ja["ja"]["byte_fallback_share"] < on_ja["en"]["byte_fallback_share"]
    assert on_en["en"]["tokens_per_char"] < on_en["ja"]["tokens_per_char"]
    # the English BPE splits every Japanese word: 3 tokens per character, none of them whole
    assert on_ja["en"]["multi_token_words"][0]["tokens"] >= 3


def test_gpt2_from_the_kit(kit):
    gpt2 = load_tokenizer(str(kit / "tokenizers" / "gpt2"))
    row = TokenizerAudit({}).measure(gpt2, ["Revenue rose 11.1%"])  # Re|venue|Ġrose|Ġ11|.|1|%
    assert (row["tokens"], row["byte_fallback_share"], row["tokens_per_char"]) == (7, 0.0, round(7 / 18, 4))
    assert row["multi_token_words"] == [{"word": "Revenue", "count": 1, "tokens": 2.0}]
    assert row["multi_token_word_share"] == 0.5
    ja = TokenizerAudit({}).measure(gpt2, [SENTENCE])
    assert 0 < ja["byte_fallback_share"] < 1 and 1 < ja["tokens_per_char"] <= 3


def test_groups_by_corpus_and_language_and_reports_what_does_not_load(tmp_path, japanese_bpe):
    ja, en = texts("finance/gnucash/ja")[:3], texts("finance/gnucash/en")[:3]
    layout = write_corpus(
        tmp_path, {("domain", "train", "ja"): ja, ("domain", "val", "en"): en, ("replay", "train", "en"): en}
    )
    japanese_bpe.save_pretrained(tmp_path / "ja-bpe")
    broken = tmp_path / "broken" / "tokenizer.json"
    broken.parent.mkdir()
    broken.write_text('{"model": "not a tokenizer"}')
    sources = {
        "ja-bpe": str(tmp_path / "ja-bpe"),
        "tokenizer.json": str(tmp_path / "ja-bpe" / "tokenizer.json"),
        "missing": str(tmp_path / "nowhere"),
        "broken": str(broken),
    }
    audit = TokenizerAudit(sources, max_docs=2, max_chars=5000, doc_chars=2000).run(layout)
    assert set(audit["tokenizers"]) == set(sources)
    assert "no such file or folder" in audit["tokenizers"]["missing"]["error"]
    assert audit["tokenizers"]["broken"]["error"]
    rows = {(r["corpus"], r["language"], r["tokenizer"]): r for r in audit["rows"]}
    assert set(rows) == {(c, lang, t) for c, lang in [("domain", "en"), ("domain", "ja"), ("replay", "en")]
                         for t in ("ja-bpe", "tokenizer.json")}  # fmt: skip
    for r in rows.values():
        assert r["documents"] <= 2 and r["chars"] <= 4000
    # a folder and its tokenizer.json are the same tokenizer
    assert rows["domain", "ja", "ja-bpe"]["tokens"] == rows["domain", "ja", "tokenizer.json"]["tokens"]


def test_a_sentencepiece_model_loads_or_says_why(tmp_path, kit):
    model = kit / "tokenizers" / "sentencepiece-ja" / "test_ja_model.model"
    layout = write_corpus(tmp_path, {("domain", "train", "ja"): [SENTENCE * 3]})
    audit = TokenizerAudit({"sp": str(model)}).run(layout)
    if importlib.util.find_spec("sentencepiece") is None:
        assert "sentencepiece" in audit["tokenizers"]["sp"]["error"]
        assert audit["rows"] == []
    else:
        (row,) = audit["rows"]
        assert row["tokens_per_char"] < 1  # trained on Japanese: fewer tokens than characters


def test_the_recipe_names_what_is_audited():
    """The model's tokenizer is the folder its GGUF file is converted into (training/model_import.py)."""
    recipe = load_corpus_recipe(ROOT / "recipes" / "finance-smollm2.yaml", check_paths=False)
    listed = ["../kit/tokenizers/gpt2", "other/gpt2/tokenizer.json", "sp/test_ja_model.model"]
    recipe = recipe.model_copy(update={"tokenizer": recipe.tokenizer.model_copy(update={"audit": listed})})
    assert audit_sources(recipe) == {
        "corpus": "out/finance-smollm2/corpus/tokenizer",
        "model": "out/models/SmolLM2-135M-Instruct.Q4_1",
        "gpt2": listed[0],
        "gpt2-2": listed[1],
        "test_ja_model": listed[2],
    }
    folder = recipe.model_copy(update={"train": TrainModel(model="some/folder")})
    assert audit_sources(folder)["model"] == "some/folder"
    assert "audit" not in recipe.model_dump()["tokenizer"]  # not in the tokenizer stage's fingerprint


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "curation", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_audits_a_built_corpus(corpus_run, tmp_path, japanese_bpe):
    """The corpus report audits the corpus tokenizer; `tokenizers` adds the recipe's listed ones."""
    stats = json.loads((corpus_run["root"] / "stats.json").read_text())
    assert {r["tokenizer"] for r in stats["tokenizers"]["rows"]} == {"corpus"}
    assert {r["language"] for r in stats["tokenizers"]["rows"]} == {"en", "ja"}
    assert "Tokenizer audit" in (corpus_run["root"] / "report.html").read_text()

    # a copy of the built corpus (documents and tokenizer), so the shared run is left as it is
    corpus = tmp_path / "out" / "subset" / "corpus"
    for folder in ("docs", "tokenizer"):
        shutil.copytree(corpus_run["root"] / folder, corpus / folder)
    japanese_bpe.save_pretrained(tmp_path / "ja-bpe")
    recipe = yaml.safe_load(corpus_run["recipe"].read_text())
    recipe["output_dir"] = str(tmp_path / "out")
    gpt2 = [str(KIT / "tokenizers" / "gpt2")] if (KIT / "tokenizers" / "gpt2").is_dir() else []
    recipe["tokenizer"]["audit"] = [str(tmp_path / "ja-bpe"), *gpt2, "./no/such"]
    path = tmp_path / "subset.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_cli("tokenizers", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    console = " ".join(result.stderr.split())  # rich wraps long lines
    assert "tok/ch" in console and "such not audited: FileNotFoundError: ./no/such: no such file" in console

    layout = RunLayout(tmp_path / "out", "subset")
    audit = json.loads(layout.tokenizer_audit.read_text())
    assert layout.tokenizer_audit_plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "no such file or folder" in audit["tokenizers"]["such"]["error"]
    fertility = {(r["corpus"], r["language"], r["tokenizer"]): r["tokens_per_char"] for r in audit["rows"]}
    # on the Japanese guide, a BPE trained on it beats the corpus tokenizer (trained on the replay
    # corpus, mostly English) and GPT-2's
    assert fertility["domain", "ja", "ja-bpe"] < 0.8 * fertility["domain", "ja", "corpus"]
    if gpt2:
        assert fertility["domain", "ja", "ja-bpe"] < 0.8 * fertility["domain", "ja", "gpt2"]


def test_a_bad_audit_key_names_the_key_and_the_file(corpus_run, tmp_path):
    recipe = yaml.safe_load(corpus_run["recipe"].read_text())
    recipe["tokenizer"]["audit"] = "../shared/data/tokenizers/gpt2"  # a path, not a list of them
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_cli("tokenizers", str(path))
    assert result.returncode == 2
    assert f"{path}: tokenizer.audit:" in result.stderr.replace("\n", " ")
