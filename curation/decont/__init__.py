from curation.decont.decontaminate import Decontaminate
from curation.decont.index import BenchmarkText, ContaminationIndex, Run, load_benchmark_texts
from curation.decont.near_duplicates import NearDuplicateIndex, NearDuplicateSettings, NearMatch
from curation.decont.units import UnitText

__all__ = [
    "BenchmarkText",
    "ContaminationIndex",
    "Decontaminate",
    "NearDuplicateIndex",
    "NearDuplicateSettings",
    "NearMatch",
    "Run",
    "UnitText",
    "load_benchmark_texts",
]
