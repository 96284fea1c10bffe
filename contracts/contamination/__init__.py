"""Benchmark overlap, defined once for the corpus's `Decontaminate` step and for `make audit`."""

from contracts.contamination.index import (
    BenchmarkText,
    ContaminationIndex,
    NgramSettings,
    Run,
    load_benchmark_texts,
)
from contracts.contamination.near_duplicates import NearDuplicateIndex, NearDuplicateSettings, NearMatch
from contracts.contamination.units import UnitText

__all__ = [
    "BenchmarkText",
    "ContaminationIndex",
    "NearDuplicateIndex",
    "NearDuplicateSettings",
    "NearMatch",
    "NgramSettings",
    "Run",
    "UnitText",
    "load_benchmark_texts",
]
