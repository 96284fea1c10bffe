"""How numbers, a task's headline metric and empty tables are shown: shared by the pages and the
console summaries."""

from __future__ import annotations

DPI = 100


def format_tokens(n: int) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def format_seconds(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 7200 else f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


def or_none(rows: list[list]) -> list[list]:
    return rows or [["none"]]
