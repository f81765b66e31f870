"""The run report: ``report.md``, a self-contained ``report.html``, ``summary.json``, maps and CSV tables.

:func:`build_report` reads whatever a run folder holds and assembles the
report as :class:`Section` objects; each section appears only when its inputs
exist (links, metrics, cross-border, barriers, territories and capacity,
reintroduction sites and the population simulation), so the same report works
for a run with every stage and for one that stopped at the patches.
:func:`write_report` renders it as Markdown and HTML (maps embedded as base64
PNG, no external resources), writes ``summary.json`` (layout in
``docs/outputs.md``, versioned by :data:`SUMMARY_SCHEMA_VERSION`), the CSV
tables and the PNG maps, all through one atomic
:class:`~leopardgeo.io.OutputWriter`.

The HTML is rendered from the sections directly (not through a Markdown
converter): tables come from the data frames, text needs only ``**bold**`` and
```code``` inline, so a converter dependency buys nothing.

Examples
--------
>>> print(markdown_table(pd.DataFrame({"patch": [1, 2], "area (ha)": ["5,000", "12,000"]})))
| patch | area (ha) |
|---:|---:|
| 1 | 5,000 |
| 2 | 12,000 |
>>> inline_html("**PC** falls by `42 %` <here>")
'<strong>PC</strong> falls by <code>42 %</code> &lt;here&gt;'
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import logging
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import pyogrio

from leopardgeo.core.errors import DataError, OutputExistsError
from leopardgeo.core.version import __version__
from leopardgeo.io import GPKG_NAME, LAYERS, RASTERS, OutputWriter, json_records

__all__ = [
    "REPORT_FILES",
    "SUMMARY_SCHEMA_VERSION",
    "Bullets",
    "Figure",
    "Report",
    "Section",
    "Table",
    "build_report",
    "inline_html",
    "markdown_table",
    "render_html",
    "render_markdown",
    "report_files",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Version of the ``summary.json`` layout (major.minor; a minor step only adds keys).
SUMMARY_SCHEMA_VERSION = "1.0"
#: Files every report writes (plus links / cross-border tables and maps when the run has them).
REPORT_FILES = ("report.md", "report.html", "summary.json")
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


# ---------------------------------------------------------------------- reading the run
class _RunFolder:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.gpkg = self.dir / GPKG_NAME
        if not self.gpkg.is_file():
            msg = (
                f"{str(self.dir)!r}: expected a run folder holding {GPKG_NAME}, found none. "
                f"Run `leopardgeo run --out {self.dir}` first."
            )
            raise DataError(msg)
        try:
            self.layers = [str(n) for n in pyogrio.list_layers(self.gpkg)[:, 0]]
        except Exception as exc:  # pyogrio / GDAL / sqlite errors on a damaged file
            raise _damaged(self.gpkg, "a GeoPackage", exc) from exc

    def has(self, name: str) -> bool:
        return name in self.layers if "." not in name else (self.dir / name).is_file()

    def table(self, layer: str) -> pd.DataFrame | None:
        if layer not in self.layers:
            return None
        try:
            return pd.DataFrame(pyogrio.read_dataframe(self.gpkg, layer=layer, read_geometry=False))
        except Exception as exc:
            raise _damaged(self.gpkg, f"a GeoPackage with a readable layer {layer!r}", exc) from exc

    def frame(self, layer: str) -> Any:
        """The layer with its geometry (a GeoDataFrame), or None if absent or empty."""
        if layer not in self.layers:
            return None
        gdf = pyogrio.read_dataframe(self.gpkg, layer=layer)
        return gdf if len(gdf) else None

    def json(self, name: str) -> Any:
        p = self.dir / name
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{p}: expected JSON, found a file that does not parse ({exc}). Re-run the stage that wrote it."
            raise DataError(msg) from exc

    def csv(self, name: str) -> pd.DataFrame | None:
        p = self.dir / name
        if not p.is_file():
            return None
        try:
            return pd.read_csv(p)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise _damaged(p, "a CSV table", exc) from exc


def _damaged(path: Path, expected: str, exc: BaseException) -> DataError:
    """The error for a run file that exists but cannot be read."""
    msg = (
        f"{str(path)!r}: expected {expected}, found a file that cannot be read ({type(exc).__name__}: {exc}). "
        "It is damaged or was replaced: re-run `leopardgeo run` into this folder with --overwrite."
    )
    return DataError(msg)


def _crs_text(crs: Any) -> str:
    """``EPSG:xxxx`` when the CRS has a code, else its PROJ string (short enough for a table)."""
    epsg = crs.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PROJ strings drop datum details; this text is for reading only
        return str(crs.to_proj4()).replace(" +no_defs=True", "").replace(" +no_defs", "")


def _grid_info(run: _RunFolder) -> dict[str, Any]:
    import rasterio

    for name in ("suitability.tif", "resistance.tif", "patches.tif"):
        p = run.dir / name
        if p.is_file():
            with rasterio.open(p) as ds:
                crs = ds.crs
                return {
                    "crs": _crs_text(crs) if crs else None,
                    "crs_wkt": crs.to_wkt() if crs else None,
                    "cell_size_m": float(abs(ds.transform.a)),
                    "shape": [int(ds.height), int(ds.width)],
                    "bounds": [float(v) for v in ds.bounds],
                }
    return {"crs": None, "crs_wkt": None, "cell_size_m": None, "shape": None, "bounds": None}


# ---------------------------------------------------------------------- sections
_MAP_CAPTIONS = {
    "suitability": "Habitat suitability 0–1 (modelled; see the habitat section of the configuration).",
    "resistance": "Resistance to movement (log scale; no data = impassable).",
    "patches": "Habitat patches and protected areas.",
    "cwd": "Cost-weighted distance to the nearest patch.",
    "links": "Least-cost links coloured by corridor score; cross-border links highlighted.",
    "corridors": "Normalised least-cost corridors (low = close to the least-cost path).",
    "current": "Cumulative current density (circuit theory).",
    "pinchpoints": "Pinch points: current inside each truncated corridor.",
    "omniscape": (
        "Omniscape normalised current (modelled): current over flow potential; blue = impeded, red = channelled "
        "movement, independent of the patches."
    ),
    "barriers": "Barrier Mapper: where restoring resistance would shorten links most.",
    "border": "Border crossings of least-cost paths and the border permeability profile.",
    "territories": "Packed territories by sex (modelled).",
    "sites": "Candidate reintroduction sites coloured by score.",
}


def _fig(report: Report, name: str) -> list[Block]:
    p = report.maps.get(name)
    return [Figure(p, f"maps/{name}.png", _MAP_CAPTIONS.get(name, ""))] if p is not None else []


def _run_section(run: _RunFolder, report: Report, manifest: dict | None, grid: dict[str, Any]) -> Section:
    s = Section("Run", anchor="run")
    rows = [("output folder", run.dir.resolve().name)]  # the name only: no machine path in a shared report
    if manifest:
        rows += [
            ("leopardgeo", str(manifest.get("versions", {}).get("leopardgeo", "-"))),
            ("started (UTC)", str(manifest.get("started", "-"))),
            ("finished (UTC)", str(manifest.get("finished", "-"))),
            ("run time", f"{manifest.get('total_s', 0):,.1f} s"),
            ("config hash", str(manifest.get("config_hash", "-"))),
        ]
    if grid["crs"]:
        rows += [
            ("CRS", grid["crs"]),
            ("grid", f"{grid['shape'][0]:,} × {grid['shape'][1]:,} cells of {grid['cell_size_m']:g} m"),
        ]
    s.blocks.append(Table(pd.DataFrame(rows, columns=["", "value"])))
    if manifest and manifest.get("timings_s"):
        t = manifest["timings_s"]
        total = sum(t.values()) or 1.0
        frame = pd.DataFrame({"stage": list(t), "seconds": list(t.values())})
        frame["share"] = frame["seconds"] / total * 100
        s.blocks.append(Table(_display(frame, {"seconds": ",.1f", "share": ".0f"}), "Stage timings"))
    if manifest and manifest.get("inputs"):
        inp = pd.DataFrame(manifest["inputs"]).drop_duplicates("path")
        frame = pd.DataFrame(
            {
                "input": [Path(p).name for p in inp["path"]],
                "size (kB)": inp["size_bytes"] / 1024,
                "sha256": inp["sha256"].str[:16],
            }
        )
        s.blocks.append(Table(_display(frame, {"size (kB)": ",.0f"}), "Input files", "Full paths and hashes in manifest.json."))
    elif not manifest:
        s.blocks.append("No manifest.json in this folder (a run from an older leopardgeo): timings and input hashes unknown.")
    return s


def _pa_clause(run: _RunFolder) -> str:
    """How the run's protected areas entered the patches, from its effective config (``[patches]``)."""
    manifest = run.json("manifest.json") or {}
    mode = str(manifest.get("config", {}).get("patches", {}).get("protected_areas", ""))
    return {
        "merge": ", protected areas merged in",
        "label": "; protected areas only name the patches, they add no habitat",
    }.get(mode, "")


def _patch_section(run: _RunFolder, report: Report) -> Section:
    from leopardgeo.runner.pipeline import summary_table

    s = Section("Habitat patches", anchor="patches")
    patches = run.table("patches")
    if patches is None:
        s.blocks.append("The GeoPackage has no `patches` layer.")
        return s
    by = summary_table(patches)
    report.summary["patches"] = {
        "count": len(patches),
        "area_ha": float(patches["area_ha"].sum()),
        "by_country": json_records(by),
    }
    s.blocks.append(
        f"**{len(patches)} habitat patches**, {patches['area_ha'].sum():,.0f} ha in all "
        f"(suitability above the threshold, at least the minimum area{_pa_clause(run)}). A patch across a "
        "border counts in each country it reaches, with that country's share of its area."
    )
    s.blocks.append(Table(_display(by, {"area_ha": ",.0f"}).rename(columns={"area_ha": "area (ha)"}), "Patches by country"))
    cols = [c for c in ("patch_id", "name", "country", "area_ha", "mean_quality", "protected_frac", "dPC") if c in patches]
    nodes = run.table("graph_nodes")
    top = patches
    if nodes is not None and "dPC" in nodes.columns:
        top = patches.merge(nodes[["patch_id", "dPC"]], on="patch_id", how="left")
        cols.append("dPC")
    top = top.sort_values("area_ha", ascending=False)[cols].head(TOP_ROWS)
    fmt = {"patch_id": "d", "area_ha": ",.0f", "mean_quality": ".2f", "protected_frac": ".0%", "dPC": ".1f"}
    heads = {"patch_id": "patch", "area_ha": "area (ha)", "mean_quality": "suitability", "protected_frac": "protected",
             "dPC": "dPC (%)"}  # fmt: skip
    s.blocks.append(
        Table(_display(top, fmt).rename(columns=heads), f"Largest patches (top {min(TOP_ROWS, len(patches))} of {len(patches)})",
              "patch: id used on every map and in every link (a-b = between patches a and b); name: protected areas the "
              "patch holds; area in hectares (1 km² = 100 ha); suitability: mean modelled habitat suitability of its "
              "cells, 0–1; protected: share of its area inside protected areas; dPC: % of the landscape's probability of "
              "connectivity lost if the patch were lost (Saura & Rubio 2010).")
    )  # fmt: skip
    for name in ("suitability", "resistance", "patches"):
        s.blocks += _fig(report, name)
    return s


def _links_section(run: _RunFolder, report: Report) -> Section | None:
    from leopardgeo.report import link_table

    links = run.table("links")
    if links is None:
        report.summary["links"] = None
        return Section(
            "Least-cost links",
            ["This run has no links. Build them with `leopardgeo links OUT_DIR` (or `[links] enabled = true`)."],
            anchor="links",
        )
    table = link_table(links, run.table("graph_nodes"))
    report.tables["links"] = table
    report.files["links.csv"] = table.to_csv(index=False)
    report.files["links.json"] = json.dumps({"columns": list(table.columns), "links": json_records(table)}, indent=1,
                                            ensure_ascii=False)  # fmt: skip
    n_cross = int(table["countries"].str.contains(";").sum())
    report.summary["links"] = {"count": len(table), "cross_border": n_cross, "ranked": json_records(table)}
    ranked_by = "corridor score (0–100, best first)" if "score" in table.columns else "cost-weighted distance (cheapest first)"
    s = Section("Least-cost links and corridor scores", anchor="links")
    s.blocks.append(f"**{len(table)} links**, {n_cross} crossing a national border, ranked by {ranked_by}.")
    show = pd.DataFrame(
        {
            "rank": table["score_rank"] if "score_rank" in table.columns else range(1, len(table) + 1),
            "from": [f"{i} {n}".strip() for i, n in zip(table["from_id"], table["from_name"], strict=True)],
            "to": [f"{i} {n}".strip() for i, n in zip(table["to_id"], table["to_name"], strict=True)],
        }
    )
    extra = {"score": ("score", ".0f"), "cwd": ("cwd", ",.0f"), "path_km": ("path km", ",.1f"),
             "cwd_to_euclid": ("cwd/euclid", ",.1f"), "corridor_width_m": ("width km", ".1f"),
             "pinch_current": ("pinch A", ".3g"), "dPC_link": ("dPC %", ".1f"), "countries": ("countries", "")}  # fmt: skip
    fmt = {}
    for col, (head, spec) in extra.items():
        if col in table.columns:
            show[head] = table[col] / 1000 if col == "corridor_width_m" else table[col]
            fmt[head] = spec
    s.blocks.append(
        Table(_display(show.head(TOP_ROWS), fmt | {"rank": "d"}), f"Links (top {min(TOP_ROWS, len(table))} of {len(table)})",
              "rank: by corridor score. from / to: patch id and the protected areas it holds. score: 0–100, the "
              "weighted mean of cost, width, pinch current and dPC, each rescaled over the run's links (higher = better; "
              "formula in docs/parameters.md). cwd: cost-weighted distance of the least-cost path, cost-weighted metres "
              "(metres × resistance). path km: its length. cwd/euclid: cost per metre of straight-line gap (1 = open "
              "habitat all the way). width km: corridor width at its narrowest point. pinch A: highest current density "
              "in the corridor for 1 A between the two patches (closer to 1 = one narrow passage carries it all). "
              "dPC %: connectivity lost without the link. All rows in links.csv.")
    )  # fmt: skip
    pin = run.frame("pinch_points")
    if pin is not None and {"patch_a", "patch_b", "pinch_current"} <= set(pin.columns):
        pin = pin.sort_values("pinch_current", ascending=False).head(10)
        frame = pd.DataFrame(
            {
                "link": [f"{int(a)}-{int(b)}" for a, b in zip(pin["patch_a"], pin["patch_b"], strict=True)],
                "pinch current (A)": pin["pinch_current"].to_numpy(),
                "location": [format_lonlat(lo, la) for lo, la in _lonlat(pin)],
            }
        )
        s.blocks.append(
            Table(_display(frame, {"pinch current (A)": ".2f"}), "Strongest pinch points",
                  "Per link, the corridor cell outside the patches with the highest current density when 1 A flows between "
                  "the two patches through the truncated corridor (Pinchpoint Mapper): near 1 A, a single narrow passage "
                  "carries all the movement and losing it cuts the link. location: WGS 84 latitude / longitude.")
        )  # fmt: skip
    for name in ("links", "corridors", "current", "pinchpoints", "cwd"):
        s.blocks += _fig(report, name)
    return s


def _connectivity_section(run: _RunFolder, report: Report) -> Section | None:
    m = run.json("metrics.json")
    report.summary["connectivity"] = m
    if not m:
        return None
    s = Section("Connectivity", anchor="connectivity")
    s.blocks.append(
        f"Probability of connectivity **PC {m.get('PC', float('nan')):.3g}**, IIC {m.get('IIC', float('nan')):.3g}, "
        f"equivalent connected area **EC {m.get('EC_ha', float('nan')):,.0f} ha** of a landscape of "
        f"{m.get('landscape_area_ha', float('nan')):,.0f} ha, in {m.get('components', '-')} connected component(s)."
    )
    nodes = run.table("graph_nodes")
    if nodes is not None and "dPC" in nodes.columns:
        cols = [c for c in ("patch_id", "name", "country", "area_ha", "dPC", "dPC_intra", "dPC_flux", "dPC_connector", "BCPC")
                if c in nodes.columns]  # fmt: skip
        top = nodes.sort_values("dPC", ascending=False)[cols].head(10)
        fmt = {"patch_id": "d", "area_ha": ",.0f", "BCPC": ".3g"} | {c: ".1f" for c in cols if c.startswith("dPC")}
        s.blocks.append(
            Table(_display(top, fmt).rename(columns={"patch_id": "patch", "area_ha": "area (ha)"}),
                  "Most important patches (dPC, % of PC lost without the patch)",
                  "dPC: % of the probability of connectivity (PC) lost without the patch, split into intra (its own "
                  "habitat), flux (flow from and to it) and connector (the stepping stone it is between others); they add "
                  "up to dPC. BCPC: betweenness weighted by PC, how often the patch lies on the best route between others "
                  "(unitless, compare within the run).")
        )  # fmt: skip
    return s


def _crossborder_section(run: _RunFolder, report: Report) -> Section | None:
    from leopardgeo.report import _side, crossborder_markdown, crossborder_report

    report.summary["crossborder"] = None
    if run.table("links") is None:
        return None
    table, fence, perm = crossborder_report(run.dir)
    links = run.table("links")
    if not ("score" in links.columns or fence is not None or perm is not None):
        return None
    report.tables["crossborder"] = table
    report.fence = fence
    report.files["crossborder.csv"] = table.to_csv(index=False)
    report.files["crossborder.json"] = json.dumps(
        {"columns": list(table.columns), "routes": json_records(table), "fence": fence}, indent=1, ensure_ascii=False
    )
    report.files["crossborder.md"] = crossborder_markdown(table, fence)
    report.summary["crossborder"] = {"routes": json_records(table), "fence": (fence or {}).get("summary")}
    s = Section("Cross-border routes", anchor="crossborder")
    n_link = int((table["route"] == "link").sum())
    n_patch = int((table["route"] == "transboundary patch").sum())
    s.blocks.append(
        f"**Where leopards cross:** {n_patch} habitat patch{'es' if n_patch != 1 else ''} straddle a border and "
        f"{n_link} least-cost link{'s' if n_link != 1 else ''} cross one, ranked by the % of the network's "
        "probability of connectivity (PC) lost if the route were closed (a link removed; a patch cut at the border)."
    )
    show = pd.DataFrame(
        {
            "rank": table["rank"],
            "route": [f"link {i}" if r == "link" else f"patch {i}"
                      for r, i in zip(table["route"], table["route_id"], strict=True)],
            "dPC %": table["importance_dpc"],
            "crossing": ["-" if not math.isfinite(la) else f"{la:.3f} N {lo:.3f} E"
                         for la, lo in zip(table["crossing_lat"], table["crossing_lon"], strict=True)],
            "border": [f"{b} #{int(g)}" if g == g else str(b)
                       for b, g in zip(table["border"], table["border_segment"], strict=True)],
            "side a": [_side(c, n) for c, n in zip(table["country_a"], table["protected_a"], strict=True)],
            "side b": [_side(c, n) for c, n in zip(table["country_b"], table["protected_b"], strict=True)],
            "border in habitat km": table["border_length_m"] / 1000,
            "cwd": table["cwd"],
            "width km": table["corridor_width_m"] / 1000,
        }
    )  # fmt: skip
    s.blocks.append(
        Table(_display(show.head(TOP_ROWS), {"rank": "d", "dPC %": ".2f", "border in habitat km": ".1f", "cwd": ",.0f",
                                             "width km": ".1f"}),
              "Cross-border routes",
              "rank: by dPC %, the connectivity (PC) lost if the route were closed (a link removed; a transboundary "
              "patch cut at the border). crossing: where the path crosses the border, or a patch's main crossing (WGS 84 "
              "latitude / longitude); border: the nearest segment of the permeability profile. side a / b: country and "
              "protected areas on each side. border in habitat km: border length through a transboundary patch. cwd "
              "(cost-weighted metres) and width km (the corridor at its narrowest) as in the links table. All rows, with "
              "the current and the border line, in crossborder.csv.")
    )  # fmt: skip
    if fence:
        sm = fence["summary"]
        gaps = sm.get("gaps") or []
        gone = [f"{r['patch_a']}-{r['patch_b']}" for r in fence["links"] if r.get("status") == "vanished"]
        cut = sm.get("transboundary_cut") or []
        cap = ""
        if "capacity_cross_border_before" in sm:
            cap = (f"; adults in populations connected across the border {sm['capacity_cross_border_before']:,.0f} → "
                   f"{sm['capacity_cross_border_after']:,.0f}")  # fmt: skip
        s.blocks.append(
            f"**What a fence would cost** ({sm.get('fence')}, {len(gaps)} gap{'s' if len(gaps) != 1 else ''}; "
            f"transboundary patches cut at the border: {', '.join(map(str, cut)) or 'none'}): "
            f"PC {sm['PC_before']:.4g} → {sm['PC_after']:.4g} (**{sm['PC_loss_pct']:.1f} % lost**), "
            f"EC {sm['EC_before_ha']:,.0f} → {sm['EC_after_ha']:,.0f} ha ({sm['EC_loss_pct']:.1f} % lost){cap}; "
            f"components {sm['components_before']} → {sm['components_after']}; "
            f"links vanishing: {', '.join(gone) or 'none'}; newly isolated patches: "
            f"{', '.join(map(str, sm.get('newly_isolated') or [])) or 'none'}."
        )
    s.blocks += _fig(report, "border")
    if perm is not None and "border_permeability.png" in report.maps:
        p = report.maps["border_permeability.png"]
        s.blocks.append(Figure(p, "border_permeability.png", "Current crossing each border segment."))
    return s


def _barrier_section(run: _RunFolder, report: Report) -> Section | None:
    b = run.table("barriers")
    report.summary["barriers"] = None if b is None else {"top": json_records(b)}
    if b is None:
        return None
    s = Section("Restoration opportunities (Barrier Mapper)", anchor="barriers")
    gb = run.frame("barriers")
    top = gb.sort_values("rank").head(10) if "rank" in gb.columns else gb.head(10)
    names = _patch_names(run)
    show = pd.DataFrame({"rank": top["rank"] if "rank" in top.columns else range(1, len(top) + 1)})
    show["location"] = [format_lonlat(lo, la) for lo, la in _lonlat(top)]
    if {"patch_a", "patch_b"} <= set(top.columns):
        show["link"] = [f"{int(a)}-{int(c)}" for a, c in zip(top["patch_a"], top["patch_b"], strict=True)]
        show["between"] = [f"{names.get(int(a), '') or f'patch {int(a)}'} / {names.get(int(c), '') or f'patch {int(c)}'}"
                           for a, c in zip(top["patch_a"], top["patch_b"], strict=True)]  # fmt: skip
    heads = {"radius_m": "radius (km)", "improvement_cwd": "saving (cost-weighted m)", "pct_of_lcd": "saving (% of link)",
             "score": "saving per m restored"}  # fmt: skip
    for col, head in heads.items():
        if col in top.columns:
            show[head] = top[col].to_numpy() / (1000 if col == "radius_m" else 1)
    s.blocks.append(
        Table(_display(show.reset_index(drop=True), {"rank": "d", "radius (km)": "g", "saving (cost-weighted m)": ",.0f",
                                                     "saving (% of link)": ".0f", "saving per m restored": ",.1f"}),
              "Best places to restore",
              "Barrier Mapper (McRae et al. 2012): a circle of the given radius restored to the lowest resistance shortens "
              "the link's least-cost path. location: centre of the circle (WGS 84 latitude / longitude). link a-b: between "
              "patches a and b (ids on the maps). saving: cost-weighted metres the link's cost drops by, and that as a % "
              "of the link's cost. saving per m restored: the saving divided by the circle's diameter, the score the "
              "ranking and the map use (cost-weighted m per m). Neighbouring ranks often mark one barrier.")
    )  # fmt: skip
    s.blocks += _fig(report, "barriers")
    return s


def _omniscape_section(run: _RunFolder, report: Report) -> Section | None:
    doc = run.json("omniscape.json")
    report.summary["omniscape"] = doc
    if doc is None:
        return None
    s = Section("Omnidirectional connectivity (Omniscape)", anchor="omniscape")
    cell = float(doc.get("cell_size_m", float("nan")))
    rows = [
        ("window radius", f"{doc['radius_cells'] * cell / 1000:,.1f} km ({doc['radius_cells']} cells)"),
        ("target blocks", f"{doc['block_size']} x {doc['block_size']} cells"),
        ("sources", str(doc.get("source", ""))),
        ("windows solved", f"{doc['n_targets']:,}"),
    ]
    seconds = ((run.json("manifest.json") or {}).get("timings_s") or {}).get("omniscape")
    if seconds is not None:
        rows.append(("time", f"{seconds:,.1f} s"))
    if "share_channelled" in doc:
        rows.append(("cells with normalised current > 1 (channelled)", f"{100 * doc['share_channelled']:.1f} %"))
    s.blocks.append(
        Table(
            pd.DataFrame(rows, columns=["item", "value"]),
            "Omniscape run",
            "Moving-window circuits (McRae et al. 2016; Omniscape.jl's conventions, Landau et al. 2021): every block of "
            "habitat sends current to the sources within the radius, no patches needed. omniscape_current.tif holds the "
            "cumulative current, omniscape_flow_potential.tif the same on a uniform landscape, omniscape_normalized.tif "
            "their ratio (docs/circuit.md).",
        )
    )
    s.blocks += _fig(report, "omniscape")
    return s


def _scenarios_section(run: _RunFolder, report: Report) -> Section | None:
    """One row per ``scenarios/<name>/compare.json`` (the run's ``[[scenarios]]``), in plain words."""
    folders = sorted(p for p in (run.dir / "scenarios").glob("*") if (p / "compare.json").is_file())
    if not folders:
        return None
    s = Section("Scenarios: what if", anchor="scenarios")
    rows = []
    for d in folders:
        c = json.loads((d / "compare.json").read_text(encoding="utf-8"))
        names = c.get("patch_names") or {}

        def label(p: Any, names: dict = names) -> str:
            n = str(names.get(str(p), "")).split(";")[0].strip()
            return f"{p} ({n})" if n and not n.startswith("patch ") else str(p)

        cut = [f"{label(p)} isolated" for p in c.get("newly_isolated") or []]
        cut += [f"{label(p)} cut in two" for p in c.get("patches_split") or []]
        w = c.get("most_changed_link")
        worst = "none"
        if w:
            worst = f"{label(w['patch_a'])} – {label(w['patch_b'])}: " + (
                "lost" if w["status"] == "lost" else f"costs ×{w['cwd_ratio']:.2f}"
            )
        rows.append(
            {
                "scenario": f"{c.get('scenario')}{' (ILLUSTRATIVE)' if c.get('illustrative') else ''}",
                "what it is": c.get("description") or "",
                "PC change (%)": c.get("PC_change_pct"),
                "EC change (%)": c.get("EC_ha_change_pct"),
                "links lost / costlier / merged / gained": f"{c.get('links_lost', 0)} / {c.get('links_lengthened', 0)} / "
                f"{c.get('links_merged', 0)} / {c.get('links_gained', 0)}",
                "most affected link": worst,
                "patches cut off": "; ".join(cut) or "none",
                "adults reachable from the source": f"{_fmt(c.get('capacity_reachable_before'))} → "
                f"{_fmt(c.get('capacity_reachable_after'))}",
            }
        )
    frame = pd.DataFrame(rows)
    s.blocks.append(
        Table(_display(frame, {"PC change (%)": "+.1f", "EC change (%)": "+.1f"}),
              "Each scenario against this run",
              "Each scenario reruns only the stages its edits touch and is compared with this run (folder scenarios/<name>/; "
              "`leopardgeo compare OUT NAME` lists the links that changed). PC: probability of connectivity, EC: equivalent "
              "connected area: both count the habitat a leopard can reach, inside patches as well as between them, so a "
              "costlier route between two large patches can move them little; read the links too. costlier: the cheapest "
              "path between the two patches costs more (×: cost after / before; cwd_ratio in links_change.csv). merged: "
              "the scenario joined the two patches into one (PC / EC then count them as one block of habitat, which alone can "
              "move them by tens of per cent). gained: a new neighbour in the planar graph after paths "
              "reroute, usually a long one; it does not make up for a lost or costlier link. adults reachable: the "
              "territories' adults in the patches linked to the source population's. "
              "ILLUSTRATIVE scenarios use made-up geometry to show the method; they are not plans.")
    )  # fmt: skip
    return s


#: Capacity columns shown first (the rest follow), from the territory stage's capacity.csv.
_CAPACITY_FIRST = ("zone_type", "zone", "name", "females", "males", "adults")


def _capacity_section(run: _RunFolder, report: Report) -> Section | None:
    cap = run.csv("capacity.csv")
    terr = run.table("territories")
    report.summary["capacity"] = None if cap is None else {"rows": json_records(cap)}
    if cap is None and terr is None and "territories" not in report.maps:
        return None
    if cap is not None:
        report.tables["capacity"] = cap
    s = Section("Territories and carrying capacity", anchor="capacity")
    s.blocks.append(
        "Territories packed into the habitat (modelled: sex-specific area needs, see the `[territories]` section of "
        "the configuration); the capacity is the number of territories that fit, by zone: replicate 0, with the range over "
        "the replicates."
    )
    if terr is not None and "sex" in terr.columns:
        n = terr["sex"].astype(str).str.upper().value_counts()
        s.blocks.append(f"Layer `territories`: **{int(n.get('F', 0))} female** and **{int(n.get('M', 0))} male** territories.")
    if cap is not None:
        first = [c for c in _CAPACITY_FIRST if c in cap.columns]
        ranges = []
        for x in ("females", "males", "adults"):
            if f"{x}_min" in cap.columns and f"{x}_max" in cap.columns:
                ranges.append(x)
        show = cap[first].copy()
        for x in ranges:
            lo, hi = cap[f"{x}_min"], cap[f"{x}_max"]
            show[f"{x} range"] = [f"{_fmt(a, ',.0f')}–{_fmt(b, ',.0f')}" for a, b in zip(lo, hi, strict=True)]
        if "zone_type" in cap.columns:
            order = {"all": 0, "country": 1, "protected_area": 2, "patch": 3}
            show = show.iloc[np.argsort([order.get(str(z), 9) for z in cap["zone_type"]], kind="stable")]
        fmt = dict.fromkeys(("females", "males", "adults"), ",.1f")
        s.blocks.append(
            Table(_display(show.head(40), fmt), "Carrying capacity by zone",
                  "zone_type: the whole study area, a country, a protected area or a patch; zone: its code or id. "
                  "females / males / adults: territories of each sex that the packing fits in replicate 0 (a territory "
                  "counts for the zone holding most of it); ranges: min–max over the replicates. These are modelled room, "
                  "not animals: compare with the published counts in the Findings. All columns in capacity.csv.")
        )  # fmt: skip
    s.blocks += _fig(report, "territories")
    return s


def _sites_section(run: _RunFolder, report: Report) -> Section | None:
    sites = run.csv("sites.csv")
    sim = run.json("simulation.json")
    report.summary["sites"] = None if sites is None else {"rows": json_records(sites)}
    report.summary["simulation"] = sim
    has_png = (run.dir / "simulation.png").is_file()
    if sites is None and sim is None and not has_png and "sites" not in report.maps:
        return None
    if sites is not None:
        report.tables["sites"] = sites
    s = Section("Reintroduction sites", anchor="sites")
    if sites is not None:
        if "rank" in sites.columns:
            sites = sites.sort_values("rank", kind="stable").reset_index(drop=True)
        s.blocks += _site_tables(run, sites)
    s.blocks += _fig(report, "sites")
    if isinstance(sim, dict) and isinstance(sim.get("table"), list) and sim["table"]:
        via = pd.DataFrame(sim["table"])
        keep = [c for c in ("site", "corridor", "persistence_25y", "persistence_50y", "persistence_100y", "adults_50y",
                            "het_retained_50y", "het_retained_100y", "inbreeding_50y", "first_year_inbred_median",
                            "migrants_per_generation") if c in via.columns]  # fmt: skip
        fmt = {c: ".0%" for c in keep if c.startswith("persistence")} | {
            c: ".2f" for c in keep if c.startswith(("het_", "inbreeding", "migrants"))
        }
        s.blocks.append(
            Table(_display(via[keep], fmt), "Population viability by corridor (modelled)",
                  "Persistence: share of runs with both sexes present; adults and heterozygosity retained (H_t / H_0): "
                  "medians over the runs (5–95 % intervals in simulation.json); inbreeding: median pedigree F; "
                  "no_corridor: the same site with no movement to or from the source.")
        )  # fmt: skip
    if has_png:
        s.blocks.append(Figure(run.dir / "simulation.png", "simulation.png", "Simulated population trajectories (modelled)."))
    return s


def _site_tables(run: _RunFolder, sites: pd.DataFrame) -> list[Block]:
    """The site summary (rank, score, stability, persistence, location) and the criteria table behind the score."""
    from leopardgeo.stages.sites import CRITERIA

    doc = run.json("sites.json") or {}
    weights: dict[str, float] = {k: float(v) for k, v in (doc.get("weights") or {}).items()}
    directions: dict[str, str] = doc.get("directions") or {}
    names = [str(n) for n in sites["name"]] if "name" in sites.columns else [str(i + 1) for i in range(len(sites))]
    blocks: list[Block] = []
    if doc.get("source"):
        blocks.append(f"Source population: **{doc['source']}** (the site's connection is measured to it).")
    summary = pd.DataFrame({"rank": sites["rank"] if "rank" in sites.columns else range(1, len(sites) + 1), "site": names})
    gsites = run.frame("sites")
    if gsites is not None and "name" in gsites.columns:
        where = dict(zip(gsites["name"].astype(str), (format_lonlat(lo, la) for lo, la in _lonlat(gsites)), strict=True))
        summary["centre"] = [where.get(n, "-") for n in names]
    cols = {"score": ("score (0–100)", ".1f"), "first_share": ("ranked first", ".0%"), "mean_rank": ("mean rank", ".2f"),
            "capacity_females": ("female territories", ",.0f"), "capacity_males": ("male territories", ",.0f"),
            "persistence_25y": ("persists 25 y", ".0%"), "persistence_50y": ("persists 50 y", ".0%"),
            "persistence_100y": ("persists 100 y", ".0%"),
            "persistence_50y_no_corridor": ("persists 50 y, no corridor", ".0%"),
            "het_retained_50y": ("H retained 50 y", ".2f"),
            "dispersers_to_source": ("dispersers to source", ".2f"),
            "dispersers_from_source": ("dispersers from source", ".2f")}  # fmt: skip
    fmt: dict[str, str] = {"rank": "d"}
    for col, (head, spec) in cols.items():
        if col in sites.columns:
            summary[head] = sites[col].to_numpy()
            fmt[head] = spec
    blocks.append(
        Table(_display(summary, fmt), "Candidate sites, best first",
              "score: weighted mean of the normalised criteria below × 100 (the contributions in the next table add up to "
              "it). ranked first / mean rank: rank stability, the share of random weight draws (each weight × U(1 − s, "
              "1 + s), [sites] in the configuration) in which the site comes first, and its mean rank over them. "
              "territories: what the packing fits inside the site (replicate 0). persists: modelled probability that "
              "the released population still exists after 25 and 50 years (spatially explicit simulation; see "
              "docs/territories.md). dispersers: mean animals per run moving between site and source. centre: "
              "a point inside the site (WGS 84 latitude / longitude).")
    )  # fmt: skip
    crit = [c for c in CRITERIA if c in sites.columns and (weights.get(c, 0.0) > 0 or not weights)]
    if not crit:
        return blocks
    total_w = sum(weights.get(c, 0.0) for c in crit) or 1.0
    rows = []
    for c in crit:
        direction, meaning = CRITERIA[c]
        row = {"criterion": c, "meaning (unit)": meaning, "weight": f"{weights.get(c, 0.0):.2f}",
               "better": "higher" if directions.get(c, direction) == "benefit" else "lower"}  # fmt: skip
        for i, n in enumerate(names):
            v = sites[c].iloc[i]
            row[f"{n}: value"] = _fmt(v, ".2f" if abs(float(v) if pd.notna(v) else 0) < 10 else ",.0f")
            nv = sites[f"n_{c}"].iloc[i] if f"n_{c}" in sites.columns else math.nan
            row[f"{n}: normalised"] = _fmt(nv, ".2f")
            row[f"{n}: points"] = _fmt(100 * weights.get(c, 0.0) * float(nv) / total_w if pd.notna(nv) else math.nan, ".1f")
        rows.append(row)
    frame = pd.DataFrame(rows)
    blocks.append(
        Table(frame, "Why the sites rank as they do: every criterion, normalised and weighted",
              "value: the criterion in its unit. normalised: min–max over the candidate sites, 1 = best (for a 'lower is "
              "better' criterion the lowest value gets 1); with two sites every criterion is 0 or 1, so one site wins "
              "each. weight: from [sites] weights (modelling choices; no published weighting exists). points: "
              "100 × weight × normalised / sum of weights; a site's points add up to its score. Every column in "
              "sites.csv.")
    )  # fmt: skip
    return blocks


# ---------------------------------------------------------------------- findings (the report's first section)
#: Published figures shown beside the modelled ones, by ISO3 (and "all"). Every figure carries its source
#: (collected in the project's reference notes on the Amur leopard; see README, "Science").
PUBLISHED: dict[str, dict[str, str]] = {
    "RUS": {
        "habitat": "≈6,500–7,000 km² occupied range; 10,648 km² potential habitat (Hebblewhite et al. 2011)",
        "count": "129 adults + ≥14 cubs in the protected areas, 2024 (monitoring reported by TASS and the RGO)",
    },
    "CHN": {
        "habitat": "21,174 km² of suitable patches for 195 leopards (Jiang et al. 2015, Sci. Rep. 5:15475)",
        "count": "≥42 on camera traps 2012–14 (Wang et al., Landsc. Ecol.); ≈80 in the NE China Tiger and Leopard NP, "
        "2023–24 (press)",
    },
    "PRK": {
        "habitat": "9,149 km² across the Jilin–DPRK border for +89 breeding adults (Gardener 2020, MScRes thesis)",
        "count": "no survey published",
    },
    "all": {
        "habitat": "",
        "count": "84 (95 % CI 70–108) across the border, 2014–15 camera traps (Vitkalova et al. 2018, Conserv. Lett.)",
    },
}
#: Adults per 100 km² from spatial capture-recapture in Land of the Leopard (Vitkalova & Shevtsova 2016).
PUBLISHED_DENSITY_PER_100KM2 = 0.98
_COUNTRY_NAMES = {"RUS": "Russia", "CHN": "China", "PRK": "North Korea", "all": "all"}
_KM2_PER_HA = 0.01


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


def _country_rows(run: _RunFolder) -> pd.DataFrame | None:
    """Habitat (km²) and modelled capacity by country beside the published figures."""
    patches = run.table("patches")
    if patches is None or "country" not in patches.columns:
        return None
    per_country = [c for c in patches.columns if c.startswith("area_ha_")]
    if per_country:  # transboundary patches: each country's share of each patch, not the majority country's whole
        area = patches[per_country].sum().rename(lambda c: c.removeprefix("area_ha_").upper())
        area = area[area > 0]
    else:
        area = patches.assign(country=patches["country"].fillna("").replace("", "?")).groupby("country")["area_ha"].sum()
    area["all"] = float(patches["area_ha"].sum())
    cap = run.csv("capacity.csv")
    adults: dict[str, tuple[float, float, float]] = {}
    if cap is not None and {"zone_type", "zone", "adults"} <= set(cap.columns):
        for r in cap[cap["zone_type"].isin(["country", "all"])].to_dict("records"):
            lo, hi = r.get("adults_min", r["adults"]), r.get("adults_max", r["adults"])
            adults[str(r["zone"])] = (float(r["adults"]), float(lo), float(hi))
    rows = []
    for code, ha in area.items():
        km2 = float(ha) * _KM2_PER_HA
        a = adults.get(str(code))
        pub = PUBLISHED.get(str(code), {})
        rows.append(
            {
                "country": _COUNTRY_NAMES.get(str(code), str(code)),
                "habitat (km²)": f"{km2:,.0f}",
                "modelled room (adults)": "-" if a is None else f"{a[0]:,.0f} ({a[1]:,.0f}–{a[2]:,.0f})",
                "at published density (adults)": f"{km2 * PUBLISHED_DENSITY_PER_100KM2 / 100:,.0f}",
                "published habitat": pub.get("habitat", "") or "-",
                "published count": pub.get("count", "") or "-",
            }
        )
    order = {"RUS": 0, "CHN": 1, "PRK": 2}
    rows.sort(key=lambda r: (r["country"] == "all", order.get(next((k for k, v in _COUNTRY_NAMES.items()
                                                                      if v == r["country"]), ""), 5)))  # fmt: skip
    return pd.DataFrame(rows)


def _patch_names(run: _RunFolder) -> dict[int, str]:
    nodes = run.table("graph_nodes")
    if nodes is None:
        nodes = run.table("patches")
    if nodes is None or "name" not in nodes.columns:
        return {}
    return {int(i): str(n) for i, n in zip(nodes["patch_id"], nodes["name"].fillna(""), strict=True) if str(n)}


def _patch_label(pid: int, names: dict[int, str]) -> str:
    name = names.get(int(pid), "")
    return f"{int(pid)} ({name})" if name else str(int(pid))


def _habitat_finding(run: _RunFolder, report: Report) -> list[Block]:
    rows = _country_rows(run)
    if rows is None:
        return []
    patches = run.table("patches")
    total_km2 = float(patches["area_ha"].sum()) * _KM2_PER_HA
    by = {r["country"]: r for r in rows.to_dict("records")}
    parts = [f"{r['habitat (km²)']} km² in {c}" for c, r in by.items() if c != "all"]
    text = (f"**Habitat and capacity.** The model finds **{total_km2:,.0f} km² of habitat** in {len(patches)} patches "
            f"({', '.join(parts)}).")  # fmt: skip
    allrow = by.get("all", {})
    room = allrow.get("modelled room (adults)", "-")
    if room != "-":
        dens = total_km2 * PUBLISHED_DENSITY_PER_100KM2 / 100
        text += (
            f" Territory packing leaves room for **{room.split(' ')[0]} adults**, against **84 (70–108) counted** across "
            f"the border in 2014–15 and 129 adults in Russia's protected areas in 2024. At the density surveyed in Land of "
            f"the Leopard ({PUBLISHED_DENSITY_PER_100KM2} adults per 100 km²) the same habitat would hold about "
            f"{dens:,.0f}. The packing counts room for territories, not animals (no prey density, poaching or road "
            "deaths in it): read it as an upper bound on space, and the modelled habitat as potential forest habitat, "
            "not the occupied range."
        )
    report.summary.setdefault("findings", {})["habitat_km2"] = total_km2
    report.headlines.append(
        f"**Habitat:** {total_km2:,.0f} km² modelled"
        + (f", room for {room.split(' ')[0]} adults against 84 (70–108) counted in 2014–15 (upper bound on space, "
           "not a population estimate)." if room != "-" else ".")
    )  # fmt: skip
    note = (
        "habitat: area of the habitat patches (modelled suitability above the threshold, at least the minimum area). "
        "modelled room: adults (females + males) that the territory packing fits, replicate 0, with the min–max over "
        f"the replicates. at published density: habitat × {PUBLISHED_DENSITY_PER_100KM2} adults / 100 km² "
        "(Vitkalova & Shevtsova 2016, SECR in Land of the Leopard; China: 0.62, Qi et al.) — derived, not a source. "
        "Published figures: see the sources named in each cell."
    )
    return [text, Table(rows, "Habitat and capacity by country, modelled beside published", note)]


def _crossborder_finding(run: _RunFolder, report: Report) -> list[Block]:
    routes = run.table("crossing_routes")
    if routes is not None and run.table("links") is not None:
        return _routes_finding(run, report, routes)
    return _links_crossborder_finding(run, report)


def _fence_text(run: _RunFolder, names: dict[int, str]) -> tuple[str, str]:
    """(sentence for the findings, clause for the headline) of the fence scenario; empty without one."""
    fence = run.json("fence.json")
    if not (fence and fence.get("summary")):
        return "", ""
    sm = fence["summary"]
    gaps = sm.get("gaps") or []
    iso = sm.get("newly_isolated") or []
    cut = sm.get("transboundary_cut") or []
    text = (
        f" **A border fence** ({sm.get('fence', '?')}, {len(gaps)} gap{'s' if len(gaps) != 1 else ''}) would cost "
        f"**{sm['PC_loss_pct']:.0f} % of the probability of connectivity** and {sm['EC_loss_pct']:.0f} % of the "
        f"equivalent connected area ({sm['EC_before_ha'] * _KM2_PER_HA:,.0f} → {sm['EC_after_ha'] * _KM2_PER_HA:,.0f} "
        f"km²)"
        + (f", cut the transboundary habitat of {', '.join(_patch_label(i, names) for i in cut)} at the border" if cut else "")
        + f", cut {sm.get('links_vanished', 0)} links and "
        + (f"isolate patch{'es' if len(iso) > 1 else ''} {', '.join(_patch_label(i, names) for i in iso)}" if iso
           else "isolate no patch")
    )  # fmt: skip
    if "capacity_cross_border_before" in sm:
        text += (f"; adults (territories) in populations connected across the border: "
                 f"{sm['capacity_cross_border_before']:,.0f} → {sm['capacity_cross_border_after']:,.0f}")  # fmt: skip
    return text + ".", f"; a border fence would cost {sm['PC_loss_pct']:.0f} % of the connectivity (PC)"


def _routes_finding(run: _RunFolder, report: Report, routes: pd.DataFrame) -> list[Block]:
    """Where leopards cross (the ranked ``crossing_routes``) and what a fence would cost."""
    names = _patch_names(run)
    routes = routes.sort_values("rank")
    n_link = int((routes["route"] == "link").sum())
    n_patch = int(routes.loc[routes["route"] != "link", "route_id"].astype(str).nunique())

    def label(r: dict) -> str:
        if r["route"] == "link":
            a, b = (int(v) for v in str(r["route_id"]).split("-"))
            return f"link {_patch_label(a, names)} – {_patch_label(b, names)}"
        return f"{_patch_label(int(r['route_id']), names)} across the {r['border']} border"

    if not len(routes):
        return ["**Cross-border routes.** No link crosses a national border and no habitat patch straddles one."]
    items = []
    for r in routes.head(3).to_dict("records"):
        bits = [f"crossing at {format_lonlat(r['crossing_lon'], r['crossing_lat'])}"]
        if pd.notna(r["importance_dpc"]):
            bits.append(f"{r['importance_dpc']:.1f} % of PC lost if closed")
        if r["route"] != "link" and pd.notna(r["border_length_m"]):
            bits.append(f"{r['border_length_m'] / 1000:,.0f} km of border through habitat")
        if r["route"] == "link" and pd.notna(r["corridor_width_m"]):
            bits.append(f"{r['corridor_width_m'] / 1000:,.1f} km wide at its narrowest")
        items.append(f"{label(r)} ({', '.join(bits)})")
    text = (f"**Cross-border routes.** {n_patch} habitat patch{'es' if n_patch != 1 else ''} straddle a national "
            f"border and {n_link} link{'s' if n_link != 1 else ''} cross one. The routes the network depends on most "
            f"(dPC: connectivity lost if the route were closed): " + "; ".join(items) + ".")  # fmt: skip
    r0 = routes.iloc[0].to_dict()
    fence_text, fence_head = _fence_text(run, names)
    report.headlines.append(
        f"**Cross-border:** the route that matters most is {label(r0)} at "
        f"{format_lonlat(r0['crossing_lon'], r0['crossing_lat'])}{fence_head}."
    )
    return [text + fence_text]


def _links_crossborder_finding(run: _RunFolder, report: Report) -> list[Block]:
    """The cross-border finding of a run written before the ``crossing_routes`` layer: links only."""
    links = run.table("links")
    if links is None:
        return []
    names = _patch_names(run)
    cross = links[links["countries"].fillna("").str.contains(";")] if "countries" in links.columns else links.iloc[:0]
    out: list[Block] = []
    if not len(cross):
        return [f"**Cross-border routes.** None of the {len(links)} links crosses a national border."]
    key = [c for c in ("dPC_link", "score") if c in cross.columns]
    top = cross.sort_values(key, ascending=False).head(3) if key else cross.sort_values("cwd").head(3)
    bc = run.frame("border_crossings")
    where: dict[tuple[int, int], str] = {}
    if bc is not None:
        for (lon, lat), a, b in zip(_lonlat(bc), bc["patch_a"], bc["patch_b"], strict=True):
            where.setdefault((int(a), int(b)), format_lonlat(lon, lat))
    items = []
    for r in top.to_dict("records"):
        a, b = int(r["patch_a"]), int(r["patch_b"])
        bits = [f"crossing at {where[(a, b)]}"] if (a, b) in where else []
        if "score" in r and pd.notna(r["score"]):
            bits.append(f"score {r['score']:.0f}/100")
        if "dPC_link" in r and pd.notna(r["dPC_link"]):
            bits.append(f"{r['dPC_link']:.1f} % of PC lost without it")
        if "corridor_width_m" in r and pd.notna(r["corridor_width_m"]):
            bits.append(f"{r['corridor_width_m'] / 1000:,.1f} km wide at its narrowest")
        items.append(f"{_patch_label(a, names)} – {_patch_label(b, names)} ({', '.join(bits)})")
    text = (f"**Cross-border routes.** {len(cross)} of {len(links)} links cross a national border. The ones the network "
            f"depends on most (by dPC, the share of connectivity lost without the link): " + "; ".join(items) + ".")  # fmt: skip
    r0 = top.iloc[0]
    head = (f"**Cross-border:** {len(cross)} of {len(links)} links cross a border; the one that matters most is "
            f"{int(r0['patch_a'])}-{int(r0['patch_b'])}"
            + (f" at {where[(int(r0['patch_a']), int(r0['patch_b']))]}" if (int(r0['patch_a']), int(r0['patch_b'])) in where
               else ""))  # fmt: skip
    fence = run.json("fence.json")
    if fence and fence.get("summary"):
        head += f"; a border fence would cost {fence['summary']['PC_loss_pct']:.0f} % of the connectivity (PC)"
    report.headlines.append(head + ".")
    if fence and fence.get("summary"):
        sm = fence["summary"]
        gaps = sm.get("gaps") or []
        iso = sm.get("newly_isolated") or []
        text += (
            f" **A border fence** ({sm.get('fence', '?')}, {len(gaps)} gap{'s' if len(gaps) != 1 else ''}) would cost "
            f"**{sm['PC_loss_pct']:.0f} % of the probability of connectivity** and {sm['EC_loss_pct']:.0f} % of the "
            f"equivalent connected area ({sm['EC_before_ha'] * _KM2_PER_HA:,.0f} → {sm['EC_after_ha'] * _KM2_PER_HA:,.0f} "
            f"km²), cut {sm.get('links_vanished', 0)} links and "
            + (f"isolate patch{'es' if len(iso) > 1 else ''} {', '.join(_patch_label(i, names) for i in iso)}." if iso
               else "isolate no patch.")
        )  # fmt: skip
    out.append(text)
    return out


def _site_patch(geom: Any, patches: Any) -> int | None:
    """The patch holding most of ``geom`` (None if it touches none)."""
    hit = patches[patches.intersects(geom)]
    if not len(hit):
        return None
    share = hit.geometry.intersection(geom).area.to_numpy()
    return int(hit["patch_id"].to_numpy()[int(np.argmax(share))])


def _sikhote_finding(run: _RunFolder, report: Report) -> list[Block]:
    sites = run.frame("sites")
    doc = run.json("sites.json") or {}
    if sites is None or not len(sites):
        return []
    sites = sites.sort_values("rank") if "rank" in sites.columns else sites
    best = sites.iloc[0]
    source = doc.get("source") or (best.get("source") if "source" in sites.columns else None) or "the source population"
    name = str(best.get("name", "the best site"))
    cwd = float(best.get("cwd_to_source", math.nan))
    connects = math.isfinite(cwd)
    text = f"**Southern Sikhote-Alin.** The best-ranked site, **{name}**"
    if "score" in sites.columns:
        text += f" (score {best['score']:.0f}/100"
        if "first_share" in sites.columns:
            text += f", ranked first in {100 * best['first_share']:.0f} % of the weight draws"
        text += ")"
    if not connects:
        report.headlines.append(f"**Southern Sikhote-Alin:** {name} does **not** connect to {source} (no least-cost path).")
        return [text + f", has **no least-cost path to {source}**: it does not connect to the source population."]
    text += (f", **connects to {source}**: least-cost distance {cwd:,.0f} cost-weighted m over "
             f"{float(best.get('euclid_to_source_m', math.nan)) / 1000:,.0f} km in a straight line")  # fmt: skip
    if "eff_resistance" in sites.columns and pd.notna(best["eff_resistance"]):
        text += f", effective resistance {best['eff_resistance']:.2f} Ω"
    text += "."
    weak, short = _weakest_section(run, sites.geometry.iloc[0], source)
    if weak:
        text += " " + weak
    p50 = best.get("persistence_50y", math.nan)  # a pandas row: .get gives the default when the column is absent
    if pd.notna(p50):
        text += f" A released population persists 50 years in {100 * float(p50):.0f} % of the simulated runs"
        alone = best.get("persistence_50y_no_corridor", math.nan)
        text += f" ({100 * float(alone):.0f} % with no movement to or from the source)." if pd.notna(alone) else "."
    report.headlines.append(f"**Southern Sikhote-Alin:** {name} connects to {source}" + (f"; {short}." if short else "."))
    return [text]


def _weakest_section(run: _RunFolder, site_geom: Any, source: str) -> tuple[str, str]:
    """The route from site to source and its weakest link: a sentence and a short form (both "" if unknown)."""
    import networkx as nx

    patches = run.frame("patches")
    links = run.table("links")
    pa = run.frame("protected_areas")
    if patches is None or links is None or pa is None:
        return "", ""
    col = next((c for c in ("NAME", "name") if c in pa.columns), None)
    if col is None:
        return "", ""
    src = pa[pa[col].astype(str).str.casefold().str.contains(str(source).casefold(), regex=False)]
    a = _site_patch(site_geom, patches)
    b = _site_patch(src.union_all(), patches) if len(src) else None
    if a is None or b is None:
        return "", ""
    names = _patch_names(run)
    if a == b:
        return f"Site and source lie in the same habitat patch ({_patch_label(a, names)}).", "both in one habitat patch"
    g = nx.Graph()
    for r in links.to_dict("records"):
        g.add_edge(int(r["patch_a"]), int(r["patch_b"]), **r)
    if a not in g or b not in g or not nx.has_path(g, a, b):
        return f"No chain of links joins patch {a} (site) to patch {b} (source).", ""
    path = nx.shortest_path(g, a, b, weight="cwd")
    edges = [g.edges[u, v] for u, v in itertools.pairwise(path)]
    if edges and "score" in edges[0]:
        weakest = min(edges, key=lambda e: e["score"] if pd.notna(e["score"]) else math.inf)
        why = f"corridor score {weakest['score']:.0f}/100"
    else:
        weakest = max(edges, key=lambda e: e["cwd"])
        why = f"the costliest link, {weakest['cwd']:,.0f} cost-weighted m"
    wa, wb = int(weakest["patch_a"]), int(weakest["patch_b"])
    if pd.notna(weakest.get("corridor_width_m", math.nan)):
        why += f", {weakest['corridor_width_m'] / 1000:,.1f} km wide at its narrowest"
    pin = run.frame("pinch_points")
    where = ""
    short = f"weakest section link {wa}-{wb}"
    if pin is not None:
        row = pin[(pin["patch_a"] == wa) & (pin["patch_b"] == wb)]
        if len(row):
            lon, lat = _lonlat(row.iloc[:1])[0]
            where = f"; its pinch point is at **{format_lonlat(lon, lat)}**"
            short += f", pinch point at {format_lonlat(lon, lat)}"
    route = " → ".join(_patch_label(p, names) for p in path)
    return f"The route runs {route}; **its weakest section is link {wa}-{wb}** ({why}){where}.", short


def _equivalent_connected_area(
    nodes: pd.DataFrame, links: pd.DataFrame, k: float, cwd: np.ndarray, *, attribute: str = "area_ha"
) -> float:
    """EC (same unit as ``attribute``) of the patch graph with the link distances ``cwd`` (Saura & Pascual-Hortal 2007).

    ``EC = sqrt(sum_i sum_j a_i a_j exp(-k D_ij))`` with ``D`` the shortest-path distance over the links, as the
    metrics stage computes it.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    ids = nodes["patch_id"].to_numpy(dtype=np.int64)
    a = nodes[attribute].to_numpy(dtype=float)
    pos = {int(p): i for i, p in enumerate(ids)}
    ia = np.array([pos[int(v)] for v in links["patch_a"]], dtype=np.int64)
    ib = np.array([pos[int(v)] for v in links["patch_b"]], dtype=np.int64)
    ok = np.isfinite(cwd)
    g = coo_matrix((np.maximum(cwd[ok], 1e-9), (ia[ok], ib[ok])), shape=(ids.size, ids.size)).tocsr()
    d = dijkstra(g, directed=False)
    return float(np.sqrt(max(a @ np.exp(-k * d) @ a, 0.0)))


#: Above this many patches the report ranks restoration by the link's own pair term instead of recomputing EC.
_EC_RANK_MAX_PATCHES = 1500


def _restoration_gains(run: _RunFolder, places: pd.DataFrame) -> pd.DataFrame | None:
    """Per place (one per link): the link's dispersal probability before and after, and the EC it adds (ha).

    The Barrier Mapper ranks places by the cost-weighted distance they save (Linkage Mapper's convention);
    a link whose probability is about 0 even after restoration adds no connectivity however much it saves.
    This recomputes the equivalent connected area with the restored link's distance shortened by the saved
    share (``pct_of_lcd``), with the metrics' kernel ``k`` (``metrics.json``) on ``cwd``.  None when the run
    lacks the metrics, the graph nodes or the links.
    """
    m = run.json("metrics.json") or {}
    nodes, links = run.table("graph_nodes"), run.table("links")
    k = m.get("k")
    if not k or nodes is None or links is None or "area_ha" not in nodes.columns or "cwd" not in links.columns:
        return None
    cwd = links["cwd"].to_numpy(dtype=float)
    key = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(links["patch_a"], links["patch_b"], strict=True))}
    exact = len(nodes) <= _EC_RANK_MAX_PATCHES
    base = _equivalent_connected_area(nodes, links, k, cwd) if exact else math.nan
    area = dict(zip(nodes["patch_id"].astype(int), nodes["area_ha"].astype(float), strict=True))
    rows = []
    for r in places.to_dict("records"):
        i = key.get((int(r["patch_a"]), int(r["patch_b"])))
        if i is None or not np.isfinite(cwd[i]):
            rows.append({"p_before": math.nan, "p_after": math.nan, "ec_gain_ha": math.nan})
            continue
        after = cwd.copy()
        after[i] = cwd[i] * (1 - float(r["pct_of_lcd"]) / 100)
        p0, p1 = math.exp(-k * cwd[i]), math.exp(-k * after[i])
        if exact:
            gain = _equivalent_connected_area(nodes, links, k, after) - base
        else:  # the pair's own term of EC^2, a lower bound on the change of EC^2
            gain = 2 * area.get(int(r["patch_a"]), 0.0) * area.get(int(r["patch_b"]), 0.0) * (p1 - p0)
        rows.append({"p_before": p0, "p_after": p1, "ec_gain_ha": gain})
    return pd.DataFrame(rows, index=places.index)


def _restore_finding(run: _RunFolder, report: Report) -> list[Block]:
    b = run.frame("barriers")
    if b is None or not len(b):
        return []
    b = b.sort_values("rank") if "rank" in b.columns else b
    b = b.drop_duplicates(["patch_a", "patch_b"])  # the best place on each link (Barrier Mapper's ranking)
    gains = _restoration_gains(run, b)
    if gains is not None and gains["ec_gain_ha"].notna().any():
        b = b.join(gains).sort_values(["ec_gain_ha", "rank"], ascending=[False, True], na_position="last")
    b = b.head(3)  # the three links where restoration adds most connectivity, one place each
    names = _patch_names(run)

    def gain_text(r: dict) -> str:
        if not pd.notna(r.get("ec_gain_ha", math.nan)):
            return ""
        return (f"; adds {r['ec_gain_ha']:,.0f} ha of equivalent connected area, dispersal probability "
                f"{r['p_before']:.2g} → {r['p_after']:.2g}")  # fmt: skip

    items = []
    for (lon, lat), r in zip(_lonlat(b), b.to_dict("records"), strict=True):
        items.append(
            f"**{format_lonlat(lon, lat)}** on link {int(r['patch_a'])}-{int(r['patch_b'])} "
            f"({names.get(int(r['patch_a']), '') or 'patch ' + str(int(r['patch_a']))} – "
            f"{names.get(int(r['patch_b']), '') or 'patch ' + str(int(r['patch_b']))}): restoring a "
            f"{r['radius_m'] / 1000:g} km-radius circle saves {r['pct_of_lcd']:.0f} % of the link's cost"
            + gain_text(r)
        )
    r0 = b.iloc[0]
    lon, lat = _lonlat(b.iloc[:1])[0]
    if pd.notna(r0.get("ec_gain_ha", math.nan)) and r0["ec_gain_ha"] < 1.0:  # less than one hectare of EC
        links_txt = ", ".join(f"{int(r['patch_a'])}-{int(r['patch_b'])}" for r in b.to_dict("records"))
        report.headlines.append(
            f"**Restore first:** none of the places the Barrier Mapper found adds connectivity: their links "
            f"({links_txt}) keep a dispersal probability of about 0 after restoration (details below)."
        )
    else:
        report.headlines.append(
            f"**Restore first:** {format_lonlat(lon, lat)} on link {int(r0['patch_a'])}-{int(r0['patch_b'])} "
            f"(saves {r0['pct_of_lcd']:.0f} % of its cost{gain_text(r0.to_dict())}); more places below."
        )
    how = (
        "ordered by the equivalent connected area each adds (EC recomputed with the link shortened by the cost "
        "saved; the barriers table keeps the Barrier Mapper's ranking by cost saved)"
        if gains is not None and gains["ec_gain_ha"].notna().any()
        else "as the Barrier Mapper ranks them, by cost saved"
    )
    return [f"**Best places to restore**, one place per link, {how}: " + "; ".join(items) + "."]


def _findings_section(run: _RunFolder, report: Report) -> Section:
    """The report's first section: what the run found, in plain sentences with the key numbers."""
    s = Section("Findings", anchor="findings")
    for part in (_habitat_finding, _crossborder_finding, _sikhote_finding, _restore_finding):
        try:
            s.blocks += part(run, report)
        except (KeyError, ValueError, TypeError) as exc:  # an output of an unexpected shape: say so, keep the report
            logger.warning("findings: %s skipped (%s)", part.__name__, exc)
    if not s.blocks:
        s.blocks.append("This run has no patches yet: nothing to summarise.")
    if report.headlines:
        s.blocks.insert(0, Bullets(list(report.headlines)))
    report.summary.setdefault("findings", {})["headlines"] = list(report.headlines)
    s.blocks.append(
        "Modelled results throughout: suitability, territories, capacity and persistence are model outputs on the "
        "demo's illustrative coefficients and approximate protected-area outlines, not observations. Each number is "
        "explained under its table below; run details are at the end."
    )
    return s


def _files_section(run: _RunFolder, report: Report) -> Section:
    present = sorted(p.name for p in run.dir.iterdir() if p.is_file() and not p.name.startswith("."))
    names = sorted(set(present) | set(report.files) | {"report.md", "report.html", "summary.json"})
    report.summary["files"] = names
    desc = {"leopardgeo.gpkg": "GeoPackage 1.2, every layer styled for QGIS (layer_styles)",
            "run_config.toml": "the effective configuration (reloadable)", "manifest.json": "inputs + hashes, versions, timings",
            "summary.json": "this report as data (schema in docs/outputs.md)", "links.csv": "every link, ranked",
            "crossborder.csv": "every cross-border route (links and transboundary patches), ranked",
            "capacity.csv": "carrying capacity by zone",
            "sites.csv": "candidate sites with every criterion", "metrics.json": "PC, IIC, EC and the kernel",
            "fence.json": "border-fence scenario", "circuit.csv": "effective resistance of every pair",
            "links.json": "every link, ranked (JSON)", "crossborder.json": "cross-border routes and fence (JSON)",
            "crossborder.md": "the cross-border section alone (Markdown)", "report.md": "this report (Markdown)",
            "report.html": "this report (one self-contained page)", "border_permeability.png": "border permeability chart",
            "capacity.json": "carrying capacity by zone (JSON)", "sites.json": "candidate sites (JSON)",
            "simulation.json": "population simulation", "simulation.png": "simulated trajectories",
            "territories.tif": "territories (1 female, 2 male, 3 both)", **RASTERS}  # fmt: skip
    qml = [n for n in names if n.endswith(".qml")]
    rows = [(n, desc.get(n, "")) for n in names if not n.endswith(".qml")]
    if qml:
        rows.append((f"*.qml ({len(qml)})", "QGIS style of the GeoTIFF of the same name (loaded with it)"))
    s = Section("Files", anchor="files")
    s.blocks.append(Table(pd.DataFrame(rows, columns=["file", "content"])))
    layers = [(n, LAYERS.get(n, "")) for n in run.layers if n != "layer_styles"]
    s.blocks.append(Table(pd.DataFrame(layers, columns=["GeoPackage layer", "content"]), "Layers of leopardgeo.gpkg"))
    if report.maps:
        s.blocks.append("Maps: " + ", ".join(f"`{n if n.endswith('.png') else 'maps/' + n + '.png'}`" for n in report.maps))
    return s


#: Section builders in report order; each returns ``None`` when its inputs are absent.
SECTIONS: tuple[Callable[[_RunFolder, Report], Section | None], ...] = (
    _patch_section,
    _links_section,
    _connectivity_section,
    _crossborder_section,
    _barrier_section,
    _omniscape_section,
    _scenarios_section,
    _capacity_section,
    _sites_section,
)


# ---------------------------------------------------------------------- build / render / write
def report_files(out_dir: str | Path, *, maps: bool = True) -> list[str]:
    """Files :func:`write_report` would write for the run in ``out_dir`` (for the overwrite check)."""
    from leopardgeo.report.maps import available_maps

    run = _RunFolder(out_dir)
    names = list(REPORT_FILES)
    if run.has("links"):
        names += ["links.csv", "links.json", "crossborder.csv", "crossborder.json", "crossborder.md"]
    if run.has("border_permeability"):
        names.append("border_permeability.png")
    if maps:
        names += [f"maps/{n}.png" for n in available_maps(out_dir)]
    return names


def build_report(out_dir: str | Path, maps: dict[str, Path] | None = None) -> Report:
    """Read a run folder and assemble the report (sections, ``summary.json`` content, tables to write).

    Parameters
    ----------
    out_dir
        A run folder (``leopardgeo.gpkg`` at least).
    maps
        Map name -> PNG already drawn (``maps/<name>.png``, see
        :func:`leopardgeo.report.maps.save_maps`), plus ``"border_permeability.png"``;
        figures without a PNG are left out.

    Raises
    ------
    DataError
        If ``out_dir`` holds no run.
    """
    run = _RunFolder(out_dir)
    manifest = run.json("manifest.json")
    grid = _grid_info(run)
    report = Report(run.dir, [], {}, maps=dict(maps or {}))
    report.summary.update(
        {
            "schema": "leopardgeo.summary",
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "leopardgeo_version": __version__,
            "generated": _now(),
            "out_dir": run.dir.resolve().name,  # the folder's name only: no machine path in a shared report
            "run": {
                "config_hash": (manifest or {}).get("config_hash"),
                "started": (manifest or {}).get("started"),
                "finished": (manifest or {}).get("finished"),
                "total_s": (manifest or {}).get("total_s"),
                "timings_s": (manifest or {}).get("timings_s"),
                **{k: grid[k] for k in ("crs", "crs_wkt", "cell_size_m", "shape", "bounds")},
            },
            # every key is always present (null when the run has no such output), so readers need no key checks
            "findings": {},
            **dict.fromkeys(
                ("patches", "links", "connectivity", "crossborder", "barriers", "omniscape", "capacity", "sites", "simulation")
            ),
            "maps": {},
            "files": [],
        }
    )
    report.sections.append(_findings_section(run, report))
    for build in SECTIONS:
        sec = build(run, report)
        if sec is not None:
            report.sections.append(sec)
    report.sections.append(_run_section(run, report, manifest, grid))
    report.sections.append(_files_section(run, report))
    report.summary["maps"] = {k: (k if k.endswith(".png") else f"maps/{k}.png") for k in report.maps}
    report.title = f"leopardgeo run report: {run.dir.resolve().name}"
    return report


def _now() -> str:
    from leopardgeo.runner.manifest import utc_now

    return utc_now()


def render_markdown(report: Report) -> str:
    """``report.md``: the sections as Markdown, figures as relative links to the PNG files."""
    lines = [f"# {report.title}", "", f"Generated {report.summary.get('generated', '')} by leopardgeo {__version__}.", ""]
    lines += ["Contents: " + " · ".join(f"[{s.title}](#{s.anchor or _slug(s.title)})" for s in report.sections), ""]
    for sec in report.sections:
        lines += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if isinstance(b, Table):
                if b.caption:
                    lines += [f"**{b.caption}**", ""]
                lines += [markdown_table(b.frame), ""]
                if b.note:
                    lines += [f"*{b.note}*", ""]
            elif isinstance(b, Bullets):
                lines += [f"- {item}" for item in b.items] + [""]
            elif isinstance(b, Figure):
                lines += [f"![{b.caption or b.name}]({b.name})", ""]
                if b.caption:
                    lines += [f"*{b.caption}*", ""]
            else:
                lines += [b, ""]
    return "\n".join(lines).rstrip() + "\n"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#222;
background:#fafafa;line-height:1.45}
header{background:#1b3a2a;color:#fff;padding:.7em 2em}header h1{margin:0;font-size:1.4em}
header p{margin:.3em 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #ddd;padding:.6em 2em;position:sticky;top:0;z-index:2;font-size:.95em}
nav a{margin-right:1.1em;color:#1b5e20;text-decoration:none}nav a:hover{text-decoration:underline}
main{max-width:1150px;margin:0 auto;padding:1em 2em 3em}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:.6em 1.4em 1.2em;margin:1.2em 0}
h2{color:#1b3a2a;border-bottom:2px solid #e0e8e2;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 .3em;font-size:.88em;max-width:100%;display:block;overflow-x:auto}
caption{text-align:left;font-weight:600;padding:.3em 0;color:#333}
th,td{border-bottom:1px solid #e6e6e6;padding:.25em .7em;text-align:left;vertical-align:top}
th{background:#f0f4f1;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#f7faf8}.note{color:#666;font-size:.85em;margin:.1em 0 1em}
figure{margin:1em 0}figure img{width:900px;max-width:100%;height:auto;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em;margin-top:.3em}code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
ul.key{background:#f3f7f4;border-left:4px solid #1b5e20;padding:.6em 1em .6em 2em;margin:.4em 0 1em}
ul.key li{margin:.25em 0}
footer{color:#777;font-size:.85em;text-align:center;padding:2em}
"""


def _html_table(t: Table) -> str:
    frame = t.frame

    def numeric(col: str) -> bool:
        vals = [str(v) for v in frame[col] if str(v) not in ("", "-")]
        return bool(vals) and all(re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*%?", v) for v in vals)

    num = [numeric(str(c)) for c in frame.columns]
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{inline_html(t.caption)}</caption>")
    heads = "".join(f'<th{" class=num" if n else ""}>{html.escape(str(c))}</th>' for c, n in zip(frame.columns, num, strict=True))
    out.append(f"<thead><tr>{heads}</tr></thead><tbody>")
    for row in frame.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if n else ""}>{html.escape(str(v))}</td>' for v, n in zip(row, num, strict=True))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    if t.note:
        out.append(f'<p class="note">{inline_html(t.note)}</p>')
    return "\n".join(out)


def _html_figure(f: Figure) -> str:
    data = base64.b64encode(Path(f.path).read_bytes()).decode("ascii")
    alt = html.escape(f.caption or f.name)
    cap = f"<figcaption>{inline_html(f.caption)} <code>{html.escape(f.name)}</code></figcaption>" if f.caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'


def render_html(report: Report) -> str:
    """``report.html``: one self-contained page (inline CSS, maps as base64 PNG, no external resource)."""
    nav = "".join(f'<a href="#{s.anchor or _slug(s.title)}">{html.escape(s.title)}</a>' for s in report.sections)
    body = []
    for sec in report.sections:
        body.append(f'<section id="{sec.anchor or _slug(sec.title)}"><h2>{html.escape(sec.title)}</h2>')
        for b in sec.blocks:
            if isinstance(b, Table):
                body.append(_html_table(b))
            elif isinstance(b, Figure):
                body.append(_html_figure(b))
            elif isinstance(b, Bullets):
                body.append('<ul class="key">' + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>")
            else:
                body.append(f"<p>{inline_html(b)}</p>")
        body.append("</section>")
    gen = html.escape(str(report.summary.get("generated", "")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(report.title)}</h1><p>{html.escape(report.out_dir.resolve().name)} · generated {gen} "
        f"· leopardgeo {html.escape(__version__)}</p></header><nav>{nav}</nav><main>\n"
        + "\n".join(body)
        + "\n</main><footer>Modelled results: suitability, territories, capacity and persistence are model outputs, "
        "not observations. Data sources and what is approximate: see the data README.</footer></body></html>\n"
    )


def write_report(
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    maps: bool = True,
    dpi: float = 110,
    progress: bool = False,
) -> Report:
    """Write ``report.md``, ``report.html``, ``summary.json``, the CSV tables and ``maps/*.png`` into a run folder.

    Everything is staged and moved into place at the end (atomically, file by
    file); a failure leaves the folder as it was.

    Parameters
    ----------
    out_dir
        A run folder.
    overwrite
        Replace a report written before.
    maps
        Draw the maps (``maps/<name>.png``; the slowest part, ~3 s a map on the demo).
    dpi
        Resolution of the maps.
    progress
        Show a progress bar while drawing the maps (terminal or Jupyter).

    Returns
    -------
    Report
        The sections and the summary written.

    Raises
    ------
    DataError
        If ``out_dir`` holds no run.
    OutputExistsError
        If report files exist and ``overwrite`` is false (checked before any work).
    """
    from leopardgeo.report.maps import available_maps, save_maps

    out = Path(out_dir)
    names = report_files(out, maps=maps)
    clash = [n for n in names if (out / n).exists()]
    if clash and not overwrite:
        msg = (
            f"run folder {str(out)!r} already holds a report ({', '.join(clash[:6])}{' ...' if len(clash) > 6 else ''}); "
            "expected none. Pass --overwrite to replace it (the report is always written into the run folder)."
        )
        raise OutputExistsError(msg)
    with OutputWriter(out, overwrite=overwrite, names=names, styles=False) as writer:
        drawn: dict[str, Path] = {}
        todo = available_maps(out) if maps else []
        png_dir = writer.staging / "maps"
        with _Progress(progress, len(todo) + 1) as step:
            for name in todo:
                step(f"map: {name}")
                drawn |= save_maps(out, png_dir, maps=[name], dpi=dpi)
                writer.path(f"maps/{name}.png")
            step("report tables")
            if (out / GPKG_NAME).is_file() and "border_permeability" in _RunFolder(out).layers:
                from leopardgeo.report import permeability_chart

                perm = pyogrio.read_dataframe(out / GPKG_NAME, layer="border_permeability")
                drawn["border_permeability.png"] = permeability_chart(perm, writer.path("border_permeability.png"))
            report = build_report(out, drawn)
        for name, text in report.files.items():
            writer.text(name, text)
        writer.text("report.md", render_markdown(report))
        writer.text("report.html", render_html(report))
        writer.text("summary.json", json.dumps(report.summary, indent=1, ensure_ascii=False, default=_json_default))
    if not maps and overwrite:  # maps of an earlier report would no longer match this one
        for png in sorted((out / "maps").glob("*.png")) if (out / "maps").is_dir() else []:
            png.unlink()
    report.maps = {k: out / (k if k.endswith(".png") else f"maps/{k}.png") for k in report.maps}
    return report


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return _json_value(v)
    if isinstance(v, Path):
        return str(v)
    msg = f"summary.json: cannot serialise {type(v).__name__}"
    raise TypeError(msg)


class _Progress:
    """``with _progress(show, total) as step: step(label)`` — a rich progress bar (terminal or Jupyter) or nothing."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total
        self.bar: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not self.show:
            return lambda label: logger.info("%s", label)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            transient=True)  # fmt: skip
        self.bar.__enter__()
        task = self.bar.add_task("report", total=self.total)

        def step(label: str) -> None:
            logger.info("%s", label)
            self.bar.update(task, description=label, advance=1)

        return step

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
