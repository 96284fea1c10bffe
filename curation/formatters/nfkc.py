"""Unicode NFKC normalisation (full-width Latin to ASCII, compatibility characters folded)."""

import unicodedata

from datatrove.pipeline.formatters.base import BaseFormatter


class NfkcFormatter(BaseFormatter):
    name = "🔤 NFKC"

    def format(self, text: str) -> str:
        return unicodedata.normalize("NFKC", text)
