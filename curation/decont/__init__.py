from curation.decont.decontaminate import Decontaminate

__all__ = ["Decontaminate"]
