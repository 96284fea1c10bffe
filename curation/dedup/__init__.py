"""Exact and MinHash near-duplicate removal (datatrove's multi-stage algorithms)."""

from curation.dedup.minhash import FastMinhashSignature, MinhashClusterFilter, normalised_text

__all__ = ["FastMinhashSignature", "MinhashClusterFilter", "normalised_text"]
