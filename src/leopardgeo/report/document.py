"""The run report's building blocks: :class:`Report`, :class:`Section` and its blocks, cell formatting.

A section holds text paragraphs (``**bold**`` / ```code``` inline), :class:`Table`
(display strings, a caption above and a note below), :class:`Figure` (a PNG) and
:class:`Bullets`; :mod:`leopardgeo.report.render` turns them into Markdown and HTML.

Examples
--------
>>> print(markdown_table(pd.DataFrame({"patch": [1, 2], "area (ha)": ["5,000", "12,000"]})))
| patch | area (ha) |
|---:|---:|
| 1 | 5,000 |
| 2 | 12,000 |
>>> inline_html("**PC** falls by `42 %` <here>")
'<strong>PC</strong> falls by <code>42 %</code> &lt;here&gt;'
>>> _fmt(123456.7), _fmt(0.5, ".0%"), _fmt(None)
('123,457', '50%', '-')
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Rows of a table shown in report.md / report.html (the CSV files hold every row).
TOP_ROWS = 20


# ---------------------------------------------------------------------- model
@dataclass
class Table:
    """A table block: ``frame`` holds display strings; ``caption`` above, ``note`` below."""

    frame: pd.DataFrame
    caption: str = ""
    note: str = ""


@dataclass
class Figure:
    """A PNG figure block (``path`` is read when rendering); ``name`` is its path relative to the run folder."""

    path: Path
    name: str
    caption: str = ""


@dataclass
class Bullets:
    """A bulleted list of short text items (``**bold**`` / ```code``` inline)."""

    items: list[str]


Block = str | Table | Figure | Bullets


@dataclass
class Section:
    """A report section: title and blocks (text paragraphs with ``**bold**`` / ```code```, tables, figures)."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""


@dataclass
class Report:
    """What :func:`build_report` assembled."""

    out_dir: Path
    sections: list[Section]
    summary: dict[str, Any]
    #: CSV / JSON / Markdown files to write: name -> text.
    files: dict[str, str] = field(default_factory=dict)
    #: Map name -> PNG path (in the staging folder while writing).
    maps: dict[str, Path] = field(default_factory=dict)
    #: Full tables behind the sections: ``links``, ``crossborder``, ``capacity``, ``sites`` (when present).
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: The border-fence scenario (``fence.json``), when the run has one.
    fence: dict[str, Any] | None = None
    title: str = "leopardgeo run report"
    #: One-line answers the findings open with (filled while the findings section is built).
    headlines: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------- formatting
def _fmt(v: Any, spec: str = ",.0f") -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if spec == "d" and isinstance(v, int | float | np.number):
        return f"{int(v):d}" if float(v).is_integer() else format(float(v), ".3g")
    if isinstance(v, int | np.integer) and spec.endswith("f"):
        return f"{int(v):,d}"
    if isinstance(v, int | float | np.number):
        text = format(float(v), spec)
        if "e" in text and spec.endswith("g"):  # readable numbers: no 3.9e+05, no 6.8e-64
            a = abs(float(v))
            text = format(float(v), ",.0f") if a >= 100 else format(float(v), ".3f") if a >= 1e-3 else "< 0.001"
        return text
    return str(v)


def _display(df: pd.DataFrame, formats: dict[str, str] | None = None, default: str = ".3g") -> pd.DataFrame:
    """A copy of ``df`` with every cell formatted as text (``formats``: column -> format spec)."""
    formats = formats or {}
    out = {}
    for col in df.columns:
        spec = formats.get(col, default)
        out[col] = [_fmt(v, spec) if not isinstance(v, str) else (v or "-") for v in df[col].tolist()]
    return pd.DataFrame(out, columns=df.columns)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; numeric-looking columns right-aligned, ``|`` escaped."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    def numeric(col: str) -> bool:
        vals = [str(v) for v in frame[col] if str(v) not in ("", "-")]
        return bool(vals) and all(re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*%?", v) for v in vals)

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    align = "|" + "|".join("---:" if numeric(c) else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, align, *rows])


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def inline_html(text: str) -> str:
    """Escape ``text`` for HTML and render its ``**bold**`` and ```code``` spans."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


def _lonlat(gdf: Any) -> list[tuple[float, float]]:
    """(lon, lat) of each geometry's representative point (points as they are), in WGS 84."""
    from pyproj import Transformer

    if gdf is None or not len(gdf):
        return []
    pts = gdf.geometry.representative_point()
    if gdf.crs is None:
        return [(math.nan, math.nan)] * len(gdf)
    tr = Transformer.from_crs(gdf.crs, 4326, always_xy=True)
    lon, lat = tr.transform(pts.x.to_numpy(), pts.y.to_numpy())
    return list(zip(np.atleast_1d(lon).tolist(), np.atleast_1d(lat).tolist(), strict=True))


def format_lonlat(lon: float, lat: float) -> str:
    """``43.123 N 131.456 E`` (three decimals, about 100 m), ``-`` when unknown.

    Examples
    --------
    >>> format_lonlat(131.4561, 43.1234), format_lonlat(float("nan"), 1.0)
    ('43.123 N 131.456 E', '-')
    """
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return "-"
    return f"{abs(lat):.3f} {'N' if lat >= 0 else 'S'} {abs(lon):.3f} {'E' if lon >= 0 else 'W'}"
