"""Single steps on real sample documents: readers, normalisation, classifiers, tokens, timeouts."""

import gzip
import json

import numpy as np
import pytest
from conftest import SAMPLES
from datatrove.data import Document, Media

from contracts.fasttext import FastTextSettings
from curation.classifiers import ClassifierScorer, ClassifierTrainer, SeedReader
from curation.extractors import HtmlExtractor, PdfExtractor
from curation.formatters import NfkcFormatter
from curation.output import TokenizerBuilder
from curation.readers import RECORD_READERS, DocumentFileReader, WarcRecordReader


def sample_records(n: int = 12) -> list[dict]:
    with gzip.open(SAMPLES / "jsonl" / "python-doc-sources.jsonl.gz", "rt") as f:
        records = [json.loads(line) for line in f][:n]
    records.append({"id": "blank", "text": "", "source": "made-empty"})
    return records


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_parquet_and_local_hf_dataset_readers_keep_empty_records(tmp_path, fmt):
    import datasets

    records = sample_records()
    ds = datasets.Dataset.from_list(records)
    if fmt == "parquet":
        ds.to_parquet(str(tmp_path / "part.parquet"))
        reader = RECORD_READERS["parquet"](
            str(tmp_path), glob_pattern="*.parquet", default_metadata={"format": "text"}
        )
    else:
        ds.save_to_disk(str(tmp_path / "hfds"))
        reader = RECORD_READERS["hf"](str(tmp_path / "hfds"), default_metadata={"format": "text"})
    docs = list(reader.run())
    assert len(docs) == len(records)
    assert {d.id for d in docs} == {r["id"] for r in records}
    blank = next(d for d in docs if d.id == "blank")
    assert blank.text == "" and blank.metadata["format"] == "text"  # left for the language step to reject


def test_a_single_file_input_is_dealt_to_tasks_record_by_record():
    """One WARC (or one JSONL dump) must not put all its records on one task."""
    reader = WarcRecordReader(str(SAMPLES / "crawl"), glob_pattern="*.warc.gz")
    everything = [d.id for d in reader.run()]
    per_task = [
        [
            d.id
            for d in WarcRecordReader(str(SAMPLES / "crawl"), glob_pattern="*.warc.gz").run(
                rank=rank, world_size=4
            )
        ]
        for rank in range(4)
    ]
    assert sorted(sum(per_task, [])) == sorted(everything)  # each record read by exactly one task
    assert max(map(len, per_task)) - min(map(len, per_task)) <= 1
    many = DocumentFileReader(str(SAMPLES / "finance" / "economics"), "pdf", glob_pattern="*.pdf")
    files = [[d.id for d in many.run(rank=rank, world_size=2)] for rank in range(2)]
    assert all(files) and not set(files[0]) & set(files[1])  # enough files: whole files per task


@pytest.mark.parametrize("world_size", [1, 3])
def test_an_input_limit_reads_the_first_records_whatever_the_task_count(world_size):
    def read(reader_cls, *args, limit, **kwargs):
        ids = []
        for rank in range(world_size):
            reader = reader_cls(*args, **kwargs)
            reader.record_limit = limit
            ids += [d.id for d in reader.run(rank=rank, world_size=world_size)]
        return sorted(ids)

    warc = (WarcRecordReader, str(SAMPLES / "crawl"))
    everything = [d.id for d in WarcRecordReader(*warc[1:], glob_pattern="*.warc.gz").run()]
    assert read(*warc, limit=5, glob_pattern="*.warc.gz") == sorted(everything[:5])
    pdfs = sorted(str(p) for p in (SAMPLES / "finance" / "economics").glob("*.pdf"))
    first_two = read(
        DocumentFileReader, str(SAMPLES / "finance" / "economics"), "pdf", limit=2, glob_pattern="*.pdf"
    )
    assert len(pdfs) > 2 and first_two == pdfs[:2]


def test_nfkc_folds_full_width_characters():
    doc = Document("ＧｎｕＣａｓｈ　２０２４年　ｶﾀｶﾅ", "x")
    (out,) = NfkcFormatter().run(iter([doc]))
    assert out.text == "GnuCash 2024年 カタカナ"


def test_pdf_time_limit_is_a_reason():
    path = sorted((SAMPLES / "finance" / "gnucash" / "pdf").glob("*.pdf"))[0]
    doc = Document(
        "",
        "big",
        media=[Media(id="b", type=3, url="b", media_bytes=path.read_bytes())],
        metadata={"format": "pdf"},
    )
    step = PdfExtractor(timeout=0.05)
    assert list(step.run(iter([doc]))) == []
    assert step.stats.to_dict()["stats"]["dropped_timeout"] == 1


FASTTEXT = FastTextSettings(epochs=50, word_ngrams=2, hash_buckets=100_000, lr=0.2, max_chars=4000, seed=0)


@pytest.fixture(scope="module")
def trained_domain(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf")
    ClassifierTrainer(
        str(out),
        "domain",
        FASTTEXT,
        threshold=0.5,
        held_out=0.2,
        positive=[
            str(SAMPLES / "finance" / "gnucash" / "en" / "*.html"),
            str(SAMPLES / "finance" / "eqonomize" / "*.html"),
        ],
        negative=[
            str(SAMPLES / "general" / "postgresql" / "*.html"),
            str(SAMPLES / "general" / "python" / "*.html"),
        ],
        seeds=SeedReader({"html": HtmlExtractor()}, max_file_bytes=1 << 24, max_record_bytes=1 << 24),
    ).run()
    return out


def test_classifier_trained_from_seeds_reports_held_out_metrics(trained_domain):
    out = trained_domain
    metrics = json.loads((out / "domain.json").read_text())
    assert metrics["held_out_examples"]["positive"] >= 10
    assert metrics["precision"] >= 0.9 and metrics["recall"] >= 0.8, metrics


def test_classifier_loaded_from_bin_scores_and_filters(trained_domain, tmp_path):
    out = trained_domain
    ClassifierTrainer(str(tmp_path), "quality", FASTTEXT, 0.5, 0.2, model=str(out / "domain.bin")).run()
    assert (tmp_path / "quality.bin").read_bytes() == (out / "domain.bin").read_bytes()
    finance = Document(
        "Record the invoice payment against accounts receivable and reconcile the bank account.", "f"
    )
    general = Document("CREATE INDEX builds a btree index on the column; VACUUM reclaims storage.", "g")
    scorer = ClassifierScorer(str(tmp_path / "quality.bin"), "quality", 0.5, 4000)
    assert scorer.filter(finance) is True
    assert scorer.filter(general) == (False, "quality")
    router = ClassifierScorer(
        str(tmp_path / "quality.bin"), "domain", 0.5, 4000, route=("corpus", "domain", "replay")
    )
    assert router.filter(general) is True and general.metadata["corpus"] == "replay"
    named = Document(general.text, "n", metadata={"corpus": "domain"})  # its input names its corpus
    assert router.filter(named) is True and named.metadata["corpus"] == "domain"
    assert named.metadata["domain_score"] == general.metadata["domain_score"]
    assert finance.metadata["quality_score"] > 0.5 > general.metadata["quality_score"]


def test_large_vocabulary_writes_uint32_tokens(tmp_path):
    """A vocabulary above 65,536 ids needs 4-byte tokens; the shards and our stats say so."""
    from datatrove.pipeline.tokens import DocumentTokenizer
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(70_000)} | {"[UNK]": 70_000, "<eos>": 70_001}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    docs = [Document("w1 w69999 w5", "a"), Document("w68000 unknown", "b")]
    folder = tmp_path / "tokens" / "domain" / "train"
    step = DocumentTokenizer(
        str(folder), str(tmp_path / "tokenizer.json"), eos_token="<eos>", shuffle_documents=False
    )
    step.run(iter(docs))
    from curation.report.stats import token_counts

    counts = token_counts(tmp_path / "tokens")["domain"]["train"]
    assert counts == {"tokens": 7, "documents": 2, "token_bytes": 4}
    ids = np.fromfile(next(folder.glob("*.ds")), dtype=np.uint32)
    assert ids.tolist() == [1, 69999, 5, 70001, 68000, 70000, 70001]


def test_tokenizer_from_a_local_path(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["</s>"], show_progress=False)
    bpe.train_from_iterator([r["text"] for r in sample_records()], trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>").save_pretrained(tmp_path / "given")
    TokenizerBuilder(str(tmp_path / "out"), "<|endoftext|>", path=str(tmp_path / "given")).run()
    loaded = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert loaded.eos_token == "</s>" and len(loaded) == len(bpe.get_vocab())
