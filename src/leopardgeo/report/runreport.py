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


Block = str | Table | Figure


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


# ---------------------------------------------------------------------- formatting
def _fmt(v: Any, spec: str = ",.0f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if spec == "d" and isinstance(v, int | float | np.number):
        return f"{int(v):d}" if float(v).is_integer() else format(float(v), ".3g")
    if isinstance(v, int | np.integer) and spec.endswith("f"):
        return f"{int(v):,d}"
    if isinstance(v, int | float | np.number):
        return format(float(v), spec)
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
        "(suitability above the threshold, at least the minimum area, protected areas merged in)."
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
    s.blocks.append(
        Table(_display(top, fmt), f"Largest patches (top {min(TOP_ROWS, len(patches))} of {len(patches)})",
              "mean_quality: mean suitability; protected_frac: share inside protected areas; "
              "dPC: % of PC lost without the patch.")
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
              "cwd in cost-weighted metres; width: the corridor's narrowest point; all rows in links.csv.")
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
        s.blocks.append(Table(_display(top, fmt), "Most important patches (dPC, % of PC lost without the patch)"))
    return s


def _crossborder_section(run: _RunFolder, report: Report) -> Section | None:
    from leopardgeo.report import crossborder_markdown, crossborder_report

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
        {"columns": list(table.columns), "corridors": json_records(table), "fence": fence}, indent=1, ensure_ascii=False
    )
    report.files["crossborder.md"] = crossborder_markdown(table, fence)
    report.summary["crossborder"] = {"corridors": json_records(table), "fence": (fence or {}).get("summary")}
    s = Section("Cross-border corridors", anchor="crossborder")
    s.blocks.append(f"**{len(table)} links cross a national border**, best corridor score first.")
    show = pd.DataFrame(
        {
            "rank": table["rank"],
            "from": [f"{i} {n}".strip() for i, n in zip(table["from_id"], table["from_name"], strict=True)],
            "to": [f"{i} {n}".strip() for i, n in zip(table["to_id"], table["to_name"], strict=True)],
            "countries": table["countries"],
            "score": table["score"],
            "cwd": table["cwd"],
            "width km": table["corridor_width_m"] / 1000,
            "dPC %": table["dPC_link"],
            "crossing": ["-" if not math.isfinite(la) else f"{la:.3f} N {lo:.3f} E"
                         for la, lo in zip(table["crossing_lat"], table["crossing_lon"], strict=True)],
        }
    )  # fmt: skip
    s.blocks.append(
        Table(_display(show.head(TOP_ROWS), {"rank": "d", "score": ".0f", "cwd": ",.0f", "width km": ".1f", "dPC %": ".1f"}),
              "Cross-border corridors", "All rows, with pinch current and the protected areas joined, in crossborder.csv.")
    )  # fmt: skip
    if fence:
        sm = fence["summary"]
        gaps = sm.get("gaps") or []
        gone = [f"{r['patch_a']}-{r['patch_b']}" for r in fence["links"] if r.get("status") == "vanished"]
        s.blocks.append(
            f"**Border-fence scenario** ({sm.get('fence')}, {len(gaps)} gap{'s' if len(gaps) != 1 else ''}): "
            f"PC {sm['PC_before']:.4g} → {sm['PC_after']:.4g} (**{sm['PC_loss_pct']:.1f} % lost**), "
            f"EC {sm['EC_before_ha']:,.0f} → {sm['EC_after_ha']:,.0f} ha ({sm['EC_loss_pct']:.1f} % lost); "
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
    cols = [c for c in ("rank", "patch_a", "patch_b", "radius_m", "improvement_cwd", "pct_of_lcd", "score") if c in b.columns]
    s.blocks.append(
        Table(_display(b[cols].head(10), {"rank": "d", "patch_a": "d", "patch_b": "d", "radius_m": ",.0f",
                                          "improvement_cwd": ",.0f", "pct_of_lcd": ".0f", "score": ".3g"}),
              "Best places to restore", "improvement_cwd: cost-weighted metres saved on the link; pct_of_lcd: % of its cost.")
    )  # fmt: skip
    s.blocks += _fig(report, "barriers")
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
                  "Counts are those of replicate 0 (the packing drawn on the map and in the territories layer); "
                  "ranges are min–max over the replicates, means and sd in capacity.csv.")
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
            sites = sites.sort_values("rank", kind="stable")
        first = [c for c in ("rank", "name", "score", "persistence_25y", "persistence_50y") if c in sites.columns]
        rest = [c for c in sites.columns if c not in first and c not in ("site_id", "geometry")
                and pd.api.types.is_numeric_dtype(sites[c])][:6]  # fmt: skip
        fmt = {"rank": "d", "score": ".1f", "persistence_25y": ".0%", "persistence_50y": ".0%"}
        s.blocks.append(
            Table(_display(sites[first + rest].head(TOP_ROWS), fmt), "Candidate sites, best first",
                  "score: 0–100 multi-criteria score; persistence: modelled probability that the population persists. "
                  "Every criterion in sites.csv.")
        )  # fmt: skip
    s.blocks += _fig(report, "sites")
    if isinstance(sim, dict):
        scalars = {k: v for k, v in sim.items() if isinstance(v, int | float | str | bool) and not isinstance(v, bool)}
        if scalars:
            frame = pd.DataFrame({"quantity": list(scalars), "value": [_fmt(v, ".3g") for v in scalars.values()]})
            s.blocks.append(Table(frame, "Population simulation (modelled)", "Full output in simulation.json."))
    if has_png:
        s.blocks.append(Figure(run.dir / "simulation.png", "simulation.png", "Simulated population trajectories (modelled)."))
    return s


def _files_section(run: _RunFolder, report: Report) -> Section:
    present = sorted(p.name for p in run.dir.iterdir() if p.is_file() and not p.name.startswith("."))
    names = sorted(set(present) | set(report.files) | {"report.md", "report.html", "summary.json"})
    report.summary["files"] = names
    desc = {"leopardgeo.gpkg": "GeoPackage 1.2, every layer styled for QGIS (layer_styles)",
            "run_config.toml": "the effective configuration (reloadable)", "manifest.json": "inputs + hashes, versions, timings",
            "summary.json": "this report as data (schema in docs/outputs.md)", "links.csv": "every link, ranked",
            "crossborder.csv": "every cross-border corridor, ranked", "capacity.csv": "carrying capacity by zone",
            "sites.csv": "candidate sites with every criterion", "metrics.json": "PC, IIC, EC and the kernel",
            "fence.json": "border-fence scenario", "circuit.csv": "effective resistance of every pair",
            "links.json": "every link, ranked (JSON)", "crossborder.json": "cross-border corridors and fence (JSON)",
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
            **dict.fromkeys(("patches", "links", "connectivity", "crossborder", "barriers", "capacity", "sites", "simulation")),
            "maps": {},
            "files": [],
        }
    )
    report.sections.append(_run_section(run, report, manifest, grid))
    for build in SECTIONS:
        sec = build(run, report)
        if sec is not None:
            report.sections.append(sec)
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
header{background:#1b3a2a;color:#fff;padding:1.2em 2em}header h1{margin:0;font-size:1.6em}
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
