"""The one figure and table helper behind every HTML report and the training curves.

Figures are drawn with matplotlib off-screen (Agg: no display on a cluster node) and embedded in the
report as PNG data, so a report is one file that can be mailed or copied off a machine.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

STYLE = """<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left;vertical-align:top}
small{color:#666}mark{background:#ffd54f}.passage{max-width:46em;white-space:pre-wrap}
pre{white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:6px;margin:2px 0}
.ex{margin:6px 0}</style>"""


def page_html(title: str, body: str) -> str:
    """A whole report page: one file with its style, figures and tables inline."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>{STYLE}</head>'
        f"<body>\n{body}\n</body></html>"
    )


def new_figure(width: float = 7, height: float = 3.2, ncols: int = 1) -> tuple[Figure, Axes | list[Axes]]:
    fig, axes = plt.subplots(1, ncols, figsize=(width, height))
    return fig, list(axes) if ncols > 1 else axes


def png(fig: Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes; the figure is closed (a long run draws hundreds)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def figure_html(fig: Figure, dpi: int = 90) -> str:
    """The figure as an <img> with its PNG inline."""
    return f'<img src="data:image/png;base64,{base64.b64encode(png(fig, dpi)).decode()}">'


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> None:
    path.write_bytes(png(fig, dpi))


def table_html(headers: list[str], rows: list[list]) -> str:
    """A table; cells are HTML already (escape text with `html.escape`), headers are text."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
