"""Reports on a run's outputs: link table, cross-border corridors, reintroduction sites (terminal, CSV, JSON, Markdown)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

import geopandas as gpd
import pyogrio

from leopardgeo.core._crs import M_PER_KM
from leopardgeo.core._lazy import submodule_getattr
from leopardgeo.core.errors import DataError
from leopardgeo.io import GPKG_NAME, OutputWriter, json_records

__all__ = [
    "CAPACITY_FILES",
    "LINK_TABLE_COLUMNS",
    "capacity_markdown",
    "crossborder_report",
    "link_table",
    "permeability_chart",
    "read_capacity",
    "read_run_layer",
    "sites_markdown",
    "sites_report",
    "write_sites_report",
    "write_capacity_report",
    "write_crossborder_report",
    "write_link_table",
]

#: Columns of the link table, in order.
LINK_TABLE_COLUMNS = (
    "from_id",
    "from_name",
    "to_id",
    "to_name",
    "cwd",
    "path_km",
    "euclid_km",
    "cwd_to_euclid",
    "cwd_to_lcp_length",
    "countries",
)


def read_run_layer(out_dir: str | Path, layer: str) -> gpd.GeoDataFrame:
    """Read a layer of a run's ``leopardgeo.gpkg``.

    Raises
    ------
    DataError
        If the folder holds no run, or the run has no such layer (naming the
        command that makes it).
    """
    gpkg = Path(out_dir) / GPKG_NAME
    if not gpkg.is_file():
        msg = f"{str(out_dir)!r}: expected a run folder holding {GPKG_NAME}, found none. Run `leopardgeo run --out {out_dir}`."
        raise DataError(msg)
    layers = [str(n) for n in pyogrio.list_layers(gpkg)[:, 0]]
    if layer not in layers:
        msg = (
            f"{gpkg}: expected a layer {layer!r}, found {layers}. "
            "Build it with `leopardgeo links` (or `leopardgeo run` with [links] enabled = true)."
        )
        raise DataError(msg)
    return pyogrio.read_dataframe(gpkg, layer=layer)


#: Link attributes added by later stages, copied into the table when present.
OPTIONAL_COLUMNS = (
    "corridor_width_m",
    "protected_frac",
    "eff_resistance",
    "pinch_current",
    "dPC_link",
    "score",
    "score_rank",
)


def link_table(links: pd.DataFrame, nodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The link table: from, to (with patch names), cwd, path km, ratios; ranked by corridor score (else by cwd).

    Examples
    --------
    >>> links = pd.DataFrame({"patch_a": [1], "patch_b": [2], "cwd": [900.0], "lcp_length_m": [300.0],
    ...                       "euclid_m": [250.0], "cwd_to_euclid": [3.6], "cwd_to_lcp_length": [3.0],
    ...                       "countries": ["RUS"]})
    >>> link_table(links)[["from_id", "to_id", "cwd", "path_km"]].to_dict("records")
    [{'from_id': 1, 'to_id': 2, 'cwd': 900.0, 'path_km': 0.3}]
    """
    names = {}
    if nodes is not None and "name" in nodes.columns:
        names = dict(zip(nodes["patch_id"].astype(int), nodes["name"].fillna("").astype(str), strict=True))
    t = pd.DataFrame(
        {
            "from_id": links["patch_a"].astype(int),
            "from_name": [names.get(int(i), "") for i in links["patch_a"]],
            "to_id": links["patch_b"].astype(int),
            "to_name": [names.get(int(i), "") for i in links["patch_b"]],
            "cwd": links["cwd"].astype(float),
            "path_km": links["lcp_length_m"].astype(float) / M_PER_KM,
            "euclid_km": links["euclid_m"].astype(float) / M_PER_KM,
            "cwd_to_euclid": links["cwd_to_euclid"].astype(float),
            "cwd_to_lcp_length": links["cwd_to_lcp_length"].astype(float),
            "countries": ["" if pd.isna(v) else str(v) for v in links["countries"]],
        }
    )
    if "kind" in links.columns:  # seams (touching patches) have no score and come last
        t["kind"] = links["kind"].fillna("corridor").astype(str).to_numpy()
    for col in OPTIONAL_COLUMNS:  # from the corridor, circuit, pinch-point, metrics and score stages, when they ran
        if col in links.columns:
            t[col] = links[col].astype(float).to_numpy()
    order = ["score_rank", "cwd", "from_id", "to_id"] if "score_rank" in t.columns else ["cwd", "from_id", "to_id"]
    if "score_rank" in t.columns:
        t["score_rank"] = t["score_rank"].astype("Int64")  # NA for seams: not ranked
    return t.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)


def write_link_table(table: pd.DataFrame, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``links.csv`` and ``links.json`` into ``out_dir`` (atomically; refuses to overwrite)."""
    records = [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]
    with OutputWriter(out_dir, overwrite=overwrite, names=["links.csv", "links.json"]) as w:
        table.to_csv(w.path("links.csv"), index=False)
        w.text("links.json", json.dumps({"columns": list(table.columns), "links": records}, indent=1, ensure_ascii=False))
    return [Path(out_dir) / "links.csv", Path(out_dir) / "links.json"]


def crossborder_report(out_dir: str | Path) -> tuple[pd.DataFrame, dict | None, gpd.GeoDataFrame | None]:
    """Every cross-border route of a run, ranked (links and transboundary patches), its fence scenario and permeability.

    The routes are the run's ``crossing_routes`` layer (see :func:`leopardgeo.crossborder.crossing_routes`);
    a run written before that layer existed gets its cross-border links only.

    Raises
    ------
    DataError
        If the run has no links (see :func:`read_run_layer`).
    """
    from leopardgeo.stages.crossborder import ROUTE_COLUMNS, crossing_routes, mark_crosses_border
    from leopardgeo.stages.graph import gdfs_to_graph

    gpkg = Path(out_dir) / GPKG_NAME
    graph = gdfs_to_graph(read_run_layer(out_dir, "graph_nodes"), read_run_layer(out_dir, "links"))
    if not any("crosses_border" in d for *_, d in graph.edges(data=True)):
        mark_crosses_border(graph)
    names = [str(n) for n in pyogrio.list_layers(gpkg)[:, 0]] if gpkg.is_file() else []
    perm = pyogrio.read_dataframe(gpkg, layer="border_permeability") if "border_permeability" in names else None
    if "crossing_routes" in names:
        routes = pyogrio.read_dataframe(gpkg, layer="crossing_routes")
    else:
        crossings = pyogrio.read_dataframe(gpkg, layer="border_crossings") if "border_crossings" in names else None
        routes = crossing_routes(graph, crossings, None, permeability=perm)
    table = pd.DataFrame(routes.drop(columns="geometry", errors="ignore")).reindex(columns=list(ROUTE_COLUMNS))
    fence_path = Path(out_dir) / "fence.json"
    fence = json.loads(fence_path.read_text(encoding="utf-8")) if fence_path.is_file() else None
    return table, fence, perm


def _side(country: object, names: object) -> str:
    c, n = str(country or ""), str(names or "")
    n = "" if n == "nan" else n
    return f"{c}: {n}" if c and n else (c or n or "-")


def crossborder_markdown(table: pd.DataFrame, fence: dict | None) -> str:
    """The "Cross-border routes" report section as Markdown: where leopards cross, and what a fence would cost.

    Examples
    --------
    >>> t = pd.DataFrame({"rank": [1], "route": ["transboundary patch"], "route_id": ["3"], "importance_dpc": [41.5],
    ...                   "country_a": ["CHN"], "patch_a": ["P"], "protected_a": ["NCTLNP"], "country_b": ["RUS"],
    ...                   "patch_b": ["P"], "protected_b": ["LLNP"], "crossing_lon": [130.9], "crossing_lat": [43.1],
    ...                   "border": ["CHN-RUS"], "border_segment": [12.0], "border_line_m": [150.0],
    ...                   "cwd": [float("nan")], "corridor_width_m": [float("nan")], "border_length_m": [88000.0],
    ...                   "current": [0.02], "current_share": [0.83]})
    >>> print(crossborder_markdown(t, None).splitlines()[6])
    | 1 | transboundary patch 3 P | 41.50 | 43.1000 N 130.9000 E | CHN-RUS #12 | CHN: NCTLNP | RUS: LLNP | 88.0 | - | 83 % |
    """

    def f(v: float, fmt: str) -> str:
        return "-" if v is None or v != v else format(v, fmt)

    lines = [
        "## Cross-border routes",
        "",
        (
            "Where leopards can cross a border: least-cost links whose path crosses it, and habitat patches that "
            "straddle it. Importance: % of the network's probability of connectivity (PC) lost if the route were closed."
        ),
        "",
        (
            "| rank | route | importance (dPC %) | crossing | border segment | side a | side b | border in habitat (km) "
            "| cwd | current across in habitat |"
        ),
        "|---:|---|---:|---|---|---|---|---:|---:|---:|",
    ]
    for r in table.itertuples(index=False):
        where = "-" if r.crossing_lat != r.crossing_lat else f"{r.crossing_lat:.4f} N {r.crossing_lon:.4f} E"
        what = (f"link {r.route_id} {r.patch_a} – {r.patch_b}" if r.route == "link"
                else f"transboundary patch {r.route_id} {r.patch_a}")  # fmt: skip
        seg = f"{r.border} #{int(r.border_segment)}" if r.border_segment == r.border_segment else str(r.border or "-")
        share = "-" if r.current_share != r.current_share else f"{100 * r.current_share:.0f} %"
        lines.append(
            f"| {r.rank} | {what.strip()} | {f(r.importance_dpc, '.2f')} | {where} | {seg} | "
            f"{_side(r.country_a, r.protected_a)} | {_side(r.country_b, r.protected_b)} | "
            f"{f(r.border_length_m / 1000, '.1f')} | {f(r.cwd, ',.0f')} | {share} |"
        )
    if not len(table):
        lines.append("| - | no route crosses a national border | | | | | | | | |")
    lines += [
        "",
        (
            "cwd in cost-weighted metres (links). Current across in habitat: share of 1 A between the patch's national "
            "parts that crosses the border inside the patch."
        ),
        "",
    ]
    if fence:
        s = fence["summary"]
        gaps = s.get("gaps") or []
        lost = [f"{r['patch_a']}-{r['patch_b']}" for r in fence["links"] if r["status"] == "vanished"]
        longer = [
            f"{r['patch_a']}-{r['patch_b']} (+{r['change_pct']:.0f} %)" for r in fence["links"] if r["status"] == "lengthened"
        ]
        cut = s.get("transboundary_cut") or []
        rejoined = set(s.get("transboundary_rejoined") or [])
        lines += [
            f"### Border-fence scenario ({s['fence']}, {len(gaps)} gap{'s' if len(gaps) != 1 else ''})",
            "",
            (f"- PC {s['PC_before']:.4g} → {s['PC_after']:.4g} (**{s['PC_loss_pct']:.1f} % lost**); "
            f"EC {s['EC_before_ha']:,.0f} → {s['EC_after_ha']:,.0f} ha ({s['EC_loss_pct']:.1f} % lost)"),
            "- transboundary patches cut at the border: "
            + (", ".join(f"{p}{' (parts still linked around the fence)' if p in rejoined else ''}" for p in cut) or "none"),
            f"- components {s['components_before']} → {s['components_after']}; links {s['links_before']} → {s['links_after']}",
            f"- links that vanish: {', '.join(lost) or 'none'}",
            f"- links that lengthen: {', '.join(longer) or 'none'}",
            f"- patches newly isolated: {', '.join(map(str, s['newly_isolated'])) or 'none'}",
        ]
        if "capacity_cross_border_before" in s:
            lines.append(
                f"- adults (territories) in populations connected across the border: "
                f"{s['capacity_cross_border_before']:,.0f} → {s['capacity_cross_border_after']:,.0f}; in the largest "
                f"connected population {s['capacity_largest_before']:,.0f} → {s['capacity_largest_after']:,.0f}"
            )
        lines.append("")
    return "\n".join(lines)


def permeability_chart(perm: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Bar chart of the current crossing each border segment, one panel per border (PNG, written atomically).

    Returns the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    borders = list(perm["border"].drop_duplicates()) if len(perm) else []
    fig = Figure(figsize=(9, 2.4 * max(1, len(borders))), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(1, len(borders)), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, borders, strict=False):
        seg = perm[perm["border"] == name]
        start_km = (seg["length_m"].cumsum() - seg["length_m"]).to_numpy() / M_PER_KM
        ax.bar(start_km, seg["current_sum"].fillna(0).to_numpy(), width=seg["length_m"].to_numpy() / M_PER_KM,
               align="edge", color="#b2182b", label="current crossing (A, summed over cells)")  # fmt: skip
        ax.set_ylabel("current (A)")
        ax.set_title(f"Border {name}: permeability by {seg['length_m'].max() / M_PER_KM:.0f} km segment")
        if "n_corridors" in seg.columns and seg["n_corridors"].sum() > 0:
            ax2 = ax.twinx()
            ax2.plot(start_km + seg["length_m"].to_numpy() / M_PER_KM / 2, seg["n_corridors"].to_numpy(), "k.", ms=4,
                     label="corridors crossing")  # fmt: skip
            ax2.set_ylabel("corridors")
        ax.set_xlabel("distance along the border line (km)")
    if not borders:
        axes[0].text(0.5, 0.5, "no border lines in the study area", ha="center", va="center")
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    tmp.replace(path)
    return path


CROSSBORDER_FILES = ("crossborder.csv", "crossborder.json", "crossborder.md", "border_permeability.png")


def write_crossborder_report(
    table: pd.DataFrame, fence: dict | None, perm: gpd.GeoDataFrame | None, out_dir: str | Path, *, overwrite: bool = False
) -> list[Path]:
    """Write ``crossborder.csv``, ``crossborder.json``, ``crossborder.md`` and ``border_permeability.png`` (atomically)."""
    names = list(CROSSBORDER_FILES if perm is not None else CROSSBORDER_FILES[:3])
    with OutputWriter(out_dir, overwrite=overwrite, names=names) as w:
        table.to_csv(w.path("crossborder.csv"), index=False)
        doc = {"columns": list(table.columns), "routes": json_records(table), "fence": fence}
        w.text("crossborder.json", json.dumps(doc, indent=1, ensure_ascii=False))
        w.text("crossborder.md", crossborder_markdown(table, fence))
        if perm is not None:
            permeability_chart(perm, w.path("border_permeability.png"))
    return [Path(out_dir) / n for n in names]


# --------------------------------------------------------------------------- reintroduction sites
#: Columns of the "Reintroduction sites" table, in order (those a run has).
SITE_REPORT_COLUMNS = (
    "rank",
    "site_id",
    "name",
    "score",
    "first_share",
    "mean_rank",
    "capacity_females",
    "capacity_females_min",
    "capacity_females_max",
    "capacity_males",
    "capacity_males_min",
    "capacity_males_max",
    "habitat_area_ha",
    "mean_quality",
    "cwd_to_source",
    "euclid_to_source_m",
    "eff_resistance",
    "n_corridors",
    "best_corridor_score",
    "dPC_gain_pct",
    "dEC_gain_ha",
    "cropland_frac",
    "urban_frac",
    "road_density_km_per_km2",
    "protected_frac",
    "dist_to_territory_m",
    "persistence_25y",
    "persistence_50y",
    "dispersers_to_source",
    "dispersers_from_source",
)

SITES_REPORT_FILES = ("sites_report.csv", "sites_report.json", "sites.md")


def sites_report(out_dir: str | Path) -> tuple[pd.DataFrame, dict, dict | None]:
    """The ranked "Reintroduction sites" table of a run, its ``sites.json`` and ``simulation.json`` (None if absent).

    Raises
    ------
    DataError
        If the run has no ``sites.csv`` (the sites stage did not run).
    """
    out = Path(out_dir)
    csv = out / "sites.csv"
    if not csv.is_file():
        msg = f"{str(out)!r}: expected sites.csv of the sites stage, found none. Run `leopardgeo sites --out {out}`."
        raise DataError(msg)
    table = pd.read_csv(csv)
    cols = [c for c in SITE_REPORT_COLUMNS if c in table.columns]
    table = table[cols].sort_values("rank", kind="stable").reset_index(drop=True)
    doc_path = out / "sites.json"
    doc = json.loads(doc_path.read_text(encoding="utf-8")) if doc_path.is_file() else {}
    sim_path = out / "simulation.json"
    sim = json.loads(sim_path.read_text(encoding="utf-8")) if sim_path.is_file() else None
    return table, doc, sim


def sites_markdown(table: pd.DataFrame, doc: dict, sim: dict | None = None) -> str:
    """The "Reintroduction sites" report section as Markdown: ranked table, rank stability, simulation.

    Examples
    --------
    >>> t = pd.DataFrame({"rank": [1], "site_id": [1], "name": ["Лазовский"], "score": [80.0], "first_share": [0.9],
    ...                   "mean_rank": [1.1], "capacity_females": [60], "cwd_to_source": [1.5e5]})
    >>> md = sites_markdown(t, {"source": "Land of the Leopard", "weights": {"capacity_females": 1.0}})
    >>> print(md.splitlines()[6])
    | 1 | 1 Лазовский | 80.0 | 90 % | 1.10 | 60 | 150,000 |
    """

    def f(v: object, col: str) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        if col in ("first_share", "cropland_frac", "urban_frac", "protected_frac", "persistence_25y", "persistence_50y"):
            return f"{100 * float(v):.0f} %"
        if col in ("score", "best_corridor_score"):
            return f"{float(v):.1f}"
        if col in ("mean_quality", "mean_rank", "dPC_gain_pct", "road_density_km_per_km2", "dispersers_to_source",
                   "dispersers_from_source"):  # fmt: skip
            return f"{float(v):.2f}"
        if col == "eff_resistance":
            return f"{float(v):.3g}"
        if isinstance(v, float) and not math.isfinite(v):
            return "∞"
        if isinstance(v, float | int | np.integer | np.floating):
            return f"{float(v):,.0f}"
        return str(v)

    cols = [c for c in table.columns if c not in ("site_id", "name")]
    lines = [
        "## Reintroduction sites",
        "",
        f"Source population: {doc.get('source', '?')}. Weights: "
        + ", ".join(f"{k} {v:g}" for k, v in (doc.get("weights") or {}).items())
        + ".",
        "",
        "| " + " | ".join(["rank", "site", *cols[1:]]) + " |",
        "|" + "---:|---|" + "---:|" * (len(cols) - 1),
    ]
    for r in table.to_dict("records"):
        cells = [str(r["rank"]), f"{r.get('site_id', '')} {r.get('name', '')}".strip()]
        cells += [f(r[c], c) for c in cols[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "Score 0-100: weighted mean of the criteria, each min-max normalised over the sites (1 = best). "
            "cwd in cost-weighted metres, distances in metres, areas in ha, effective resistance in ohms."
        ),
        "",
    ]
    stab = doc.get("rank_stability") or []
    if stab:
        lines += ["### Rank stability", ""]
        lines += [
            f"- {s.get('name', s.get('site_id'))}: first in {100 * s['first_share']:.0f} % of the draws, mean rank "
            f"{s['mean_rank']:.2f} (best {s['best_rank']}, worst {s['worst_rank']})"
            for s in stab
        ]
        lines.append("")
    if sim:
        lines += ["### Population simulation", ""]
        for name, s in (sim.get("sites") or {}).items():
            p25, p50 = s.get("persistence_25y"), s.get("persistence_50y")
            to_src = f(s.get("dispersers_to_source"), "dispersers_to_source")
            from_src = f(s.get("dispersers_from_source"), "dispersers_from_source")
            lines.append(
                f"- {name}: persistence {f(p25, 'persistence_25y')} at 25 years, {f(p50, 'persistence_50y')} at 50 years "
                f"({s.get('n_runs', '?')} runs); dispersers reaching the source {to_src}, coming from it {from_src} "
                "(mean per run)"
            )
        lines += ["", "![Simulated trajectories](simulation.png)", ""]
    return "\n".join(lines)


def write_sites_report(
    table: pd.DataFrame, doc: dict, sim: dict | None, out_dir: str | Path, *, overwrite: bool = False
) -> list[Path]:
    """Write ``sites_report.csv``, ``sites_report.json`` and ``sites.md`` (atomically)."""
    with OutputWriter(out_dir, overwrite=overwrite, names=SITES_REPORT_FILES) as w:
        table.to_csv(w.path("sites_report.csv"), index=False)
        body = {
            "columns": list(table.columns),
            "sites": json_records(table),
            "source": doc.get("source"),
            "weights": doc.get("weights"),
            "rank_stability": doc.get("rank_stability"),
            "simulation": sim,
        }
        w.text("sites_report.json", json.dumps(body, indent=1, ensure_ascii=False))
        w.text("sites.md", sites_markdown(table, doc, sim))
    return [Path(out_dir) / n for n in SITES_REPORT_FILES]


# ---------------------------------------------------------------------- territory capacity
#: Files ``leopardgeo report`` and ``leopardgeo territories`` add for the capacity section.
CAPACITY_FILES = ("capacity.md",)

#: Order of the zone types in the capacity section.
_ZONE_ORDER = {"all": 0, "country": 1, "protected_area": 2, "patch": 3}


def read_capacity(out_dir: str | Path) -> pd.DataFrame | None:
    """The run's ``capacity.csv`` (territory capacity by zone), or None if the territory stage did not run."""
    path = Path(out_dir) / "capacity.csv"
    if not path.is_file():
        return None
    fix = "It is damaged or was replaced: re-run the territory stage (`leopardgeo run` or `leopardgeo territories`)."
    try:
        table = pd.read_csv(path, dtype={"zone_type": str, "zone": str, "name": str}, keep_default_na=False, na_values=[""])
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        msg = f"{str(path)!r}: expected the capacity table, found a file that cannot be read ({exc}). {fix}"
        raise DataError(msg) from exc
    need = ["zone_type", "zone", "name", "females", "males", "adults", "adults_mean", "adults_sd", "adults_min", "adults_max"]
    missing = [c for c in need if c not in table.columns]
    if missing or not (table.get("zone_type") == "all").any():
        found = f"columns {list(table.columns)[:8]} (missing {missing})" if missing else "no row with zone_type 'all'"
        msg = f"{str(path)!r}: expected the capacity table (columns {', '.join(need)}), found {found}. {fix}"
        raise DataError(msg)
    numeric = need[3:]
    bad = [c for c in numeric if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        msg = f"{str(path)!r}: expected numbers in columns {bad}, found text. {fix}"
        raise DataError(msg)
    table["name"] = table["name"].fillna("")
    return table


def capacity_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The capacity rows in report order: all, countries, protected areas, patches (each by adults, most first)."""
    key = table["zone_type"].map(_ZONE_ORDER).fillna(len(_ZONE_ORDER))
    return table.assign(_k=key).sort_values(["_k", "adults"], ascending=[True, False], kind="stable").drop(columns="_k")


def capacity_markdown(table: pd.DataFrame) -> str:
    """The "Territory capacity" report section as Markdown.

    Examples
    --------
    >>> t = pd.DataFrame({"zone_type": ["country", "all"], "zone": ["RUS", "all"], "name": ["Russia", "all"],
    ...                   "females": [10, 10], "males": [5, 5], "adults": [15, 15], "adults_mean": [14.5, 14.5],
    ...                   "adults_sd": [0.7, 0.7], "adults_min": [14, 14], "adults_max": [15, 15]})
    >>> print(capacity_markdown(t).splitlines()[4])
    | all | all | all | 10 | 5 | 15 | 14.5 ± 0.7 | 14–15 |
    """

    def sd(v: float) -> str:
        return "" if v != v else f" ± {v:.1f}"

    lines = [
        "## Territory capacity",
        "",
        "| zone type | zone | name | females | males | adults | adults, mean ± sd | adults, range |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in capacity_rows(table).itertuples(index=False):
        lines.append(
            f"| {r.zone_type.replace('_', ' ')} | {r.zone} | {r.name} | {r.females} | {r.males} | {r.adults} | "
            f"{r.adults_mean:.1f}{sd(r.adults_sd)} | {r.adults_min}–{r.adults_max} |"
        )
    lines += [
        "",
        (
            "Territories packed on the habitat patches (replicate 0; mean, sd and range over the replicates). "
            "A territory counts for the patch, country and protected area covering most of its cells. "
            "Females are exclusive among females and males among males; a male overlaps females. "
            "This is a packing maximum for the habitat model, not a population estimate."
        ),
        "",
    ]
    return "\n".join(lines)


def write_capacity_report(table: pd.DataFrame, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``capacity.md`` into ``out_dir`` (atomically; refuses to overwrite)."""
    with OutputWriter(out_dir, overwrite=overwrite, names=list(CAPACITY_FILES)) as w:
        w.text("capacity.md", capacity_markdown(table))
    return [Path(out_dir) / n for n in CAPACITY_FILES]




__getattr__ = submodule_getattr(__name__)  # submodules load on first access (PEP 562)
