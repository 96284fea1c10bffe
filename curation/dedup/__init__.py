"""Exact and MinHash near-duplicate removal (datatrove's multi-stage algorithms)."""

from curation.dedup.minhash import FastMinhashSignature, normalised_text

__all__ = ["FastMinhashSignature", "normalised_text"]
