"""MinHash signatures: near-duplicates collide, different documents don't; Japanese by characters."""

import numpy as np
from conftest import SAMPLES
from datatrove.pipeline.dedup.minhash import MinhashConfig

from curation.dedup import FastMinhashSignature
from curation.extractors import HtmlExtractor


def signature(step, text, language="en"):
    step._language = language
    return np.array(step.get_signature(step.get_shingles(text)))


def pages(folder: str, n: int) -> list[str]:
    """The first `n` long pages of a data/samples folder (embedded: they must be there)."""
    found = sorted((SAMPLES / folder).glob("*.html"))
    texts = []
    for page in found:
        text, _ = HtmlExtractor().extract(page.read_bytes())
        if len(text) > 2000:
            texts.append(text)
        if len(texts) == n:
            break
    assert len(texts) == n, f"{len(texts)} of {n} long pages found among {len(found)} in {folder}"
    return texts


def test_near_duplicates_share_buckets(tmp_path):
    step = FastMinhashSignature(str(tmp_path), MinhashConfig(), char_ngrams=5, char_languages=["ja"])
    mirror = next((SAMPLES / "general" / "postgresql").glob("*-mirror.html"))
    original = mirror.with_name(mirror.name.replace("-mirror", ""))
    a = signature(step, HtmlExtractor().extract(original.read_bytes())[0])
    b = signature(step, HtmlExtractor().extract(mirror.read_bytes())[0])
    assert (a == b).all(axis=1).any(), "a planted near-duplicate must share at least one LSH bucket"
    assert (a == b).mean() > 0.8
    others = [signature(step, t) for t in pages("general/python", 5)]
    for x in others:
        assert not (a == x).all(axis=1).any()


def test_japanese_uses_character_shingles(tmp_path):
    step = FastMinhashSignature(str(tmp_path), MinhashConfig(), char_ngrams=5, char_languages=["ja"])
    step._language = "ja"
    text = pages("finance/gnucash/ja", 1)[0]
    shingles_ja = step.get_shingles(text)
    step._language = "en"
    shingles_en = step.get_shingles(text)
    assert len(shingles_ja) > 3 * len(shingles_en)
    edited = text.replace("。", "。追加。", 1)
    assert (signature(step, text, "ja") == signature(step, edited, "ja")).mean() > 0.8


def test_signature_values_fit_datatrove_readers(tmp_path):
    step = FastMinhashSignature(str(tmp_path), MinhashConfig(), char_ngrams=5, char_languages=["ja"])
    sig = signature(step, pages("general/python", 1)[0])
    assert sig.shape == (14, 8)
    assert sig.max() < (1 << 61) - 1
