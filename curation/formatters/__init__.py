"""Formatters rewrite text in place and never drop documents."""

from curation.formatters.nfkc import NfkcFormatter

__all__ = ["NfkcFormatter"]
