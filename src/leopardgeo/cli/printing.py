"""What the commands print: the rich tables and lines of ``leopardgeo run``, ``report`` and the stage commands.

Each function takes a rich console and what the library returned (a run result, a report's tables) and
prints it; nothing here computes.  Heavy modules are imported inside the functions, so ``leopardgeo --help``
loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    con = Console(stderr=stderr)
    if not con.is_terminal:  # a pipe or file: keep the report tables whole instead of wrapping them at 80 columns
        con = Console(stderr=stderr, width=180)
    return con


def _print_summary(table: Any, result: Any) -> None:
    from rich.table import Table

    t = Table(title=f"Habitat patches ({result.grid.cell_size_m:g} m cells)")
    t.add_column("country")
    t.add_column("patches", justify="right")
    t.add_column("area (ha)", justify="right")
    for row in table.itertuples():
        t.add_row(str(row.country), f"{row.patches:d}", f"{row.area_ha:,.0f}")
    con = _console()
    con.print(t)
    named = result.patches[result.patches["name"] != ""]
    if len(named):
        con.print(
            "Patches holding protected areas: "
            + "; ".join(f"{r.patch_id}: {r.name} ({r.area_ha:,.0f} ha)" for r in named.head(12).itertuples())
        )
    if result.graph is not None:
        _print_links(con, result.graph)
    _print_connectivity(con, result)
    _print_territory_line(con, result.out_dir)
    con.print(f"Outputs written to {result.out_dir}/")


def _print_territory_line(con: Any, out_dir: Path | None) -> None:
    """One line: territories by country (replicate 0) and the range of adults over the replicates."""
    from leopardgeo.report import read_capacity

    table = read_capacity(out_dir) if out_dir is not None else None
    if table is None:
        return
    by = table[table["zone_type"] == "country"]
    total = table[table["zone_type"] == "all"].iloc[0]
    parts = [f"{r.zone} {r.females} F / {r.males} M / {r.adults} adults" for r in by.itertuples(index=False)]
    parts.append(f"all {total.females} F / {total.males} M / {total.adults} adults")
    con.print(
        f"Territories: {'; '.join(parts)} (adults {total.adults_min}-{total.adults_max} over the replicates; see capacity.csv)."
    )


def _print_capacity(con: Any, table: Any, top: int) -> None:
    """The "Territory capacity" table in the terminal: all, countries, protected areas, then the largest patches."""
    import pandas as pd
    from rich.table import Table

    from leopardgeo.report import capacity_rows

    rows = capacity_rows(table)
    patches = rows[rows["zone_type"] == "patch"]
    rows = pd.concat([rows[rows["zone_type"] != "patch"], patches.head(top)])
    t = Table(title=f"Territory capacity ({len(patches)} patches; the {min(top, len(patches))} holding most shown)")
    for col in ("zone type", "zone", "name"):
        t.add_column(col)
    for col in ("females", "males", "adults", "adults mean ± sd", "adults range"):
        t.add_column(col, justify="right")
    for r in rows.itertuples(index=False):
        sd = "" if r.adults_sd != r.adults_sd else f" ± {r.adults_sd:.1f}"
        t.add_row(
            r.zone_type.replace("_", " "),
            str(r.zone),
            str(r.name),
            str(r.females),
            str(r.males),
            str(r.adults),
            f"{r.adults_mean:.1f}{sd}",
            f"{r.adults_min}-{r.adults_max}",
        )
    con.print(t)


def _print_connectivity(con: Any, result: Any) -> None:
    """One line each for the corridor, circuit, pinch-point and barrier stages that ran."""
    import numpy as np

    if result.corridors is not None and len(result.corridors.table):
        t = result.corridors.table
        i = int(t["corridor_width_m"].fillna(np.inf).to_numpy().argmin())
        con.print(
            f"Corridors: {len(t)}; narrowest {t['corridor_width_m'].iloc[i] / 1000:,.1f} km "
            f"(patches {t['patch_a'].iloc[i]}-{t['patch_b'].iloc[i]})."
        )
    if result.circuit is not None:
        r = result.circuit.resistances
        if "eff_resistance" in r.columns:
            fin = r[np.isfinite(r["eff_resistance"])]
            con.print(
                f"Circuit ({result.circuit.solver}): {len(r)} pairs, {len(fin)} connected; see circuit.csv and current.tif."
            )
    if result.pinch is not None and len(result.pinch.table):
        p = result.pinch.table.sort_values("pinch_current", ascending=False).iloc[0]
        con.print(f"Strongest pinch point: link {p['patch_a']}-{p['patch_b']}, {p['pinch_current']:.2f} A of 1 A.")
    if result.metrics is not None:
        m = result.metrics
        top = m.nodes["dPC"].idxmax()
        name = result.graph.nodes[top].get("name", "") if result.graph is not None else ""
        con.print(
            f"Connectivity: PC {m.summary['PC']:.3g}, EC {m.summary['EC_ha']:,.0f} ha, {m.summary['components']} components; "
            f"most important patch {top}{' (' + name + ')' if name else ''}, dPC {m.nodes.loc[top, 'dPC']:.1f} %."
        )
    xb = getattr(result, "crossborder", None)
    if xb is not None and result.graph is not None:
        n_cross = sum(1 for *_, d in result.graph.edges(data=True) if d.get("crosses_border"))
        n_tb = 0 if xb.transboundary is None else int(xb.transboundary["patch_id"].nunique())
        con.print(
            f"Cross-border links: {n_cross}; {len(xb.crossings)} border crossings (layer border_crossings); "
            f"{n_tb} transboundary patch{'es' if n_tb != 1 else ''} (layer transboundary_patches); "
            f"routes ranked in layer crossing_routes."
        )
        if xb.fence is not None:
            s = xb.fence.summary
            con.print(
                f"Border fence ({s['fence']}, {len(s['gaps'])} gaps): PC {s['PC_before']:.3g} -> {s['PC_after']:.3g} "
                f"({s['PC_loss_pct']:.1f} % lost), EC {s['EC_loss_pct']:.1f} % lost; {s['links_vanished']} links vanish, "
                f"{s['links_lengthened']} lengthen; newly isolated patches: {s['newly_isolated'] or 'none'}."
            )
    if getattr(result, "scores", None) is not None and len(result.scores):
        top = result.scores.iloc[0]
        con.print(f"Best corridor by score: {int(top['patch_a'])}-{int(top['patch_b'])} ({top['score']:.0f} / 100).")
    if getattr(result, "sites", None) is not None and len(result.sites.table):
        best = result.sites.table.iloc[0]
        p50 = best.get("persistence_50y", float("nan"))
        con.print(
            f"Reintroduction sites ({len(result.sites.table)}; source {result.sites.source.name}): best {best['name']}, "
            f"score {best['score']:.0f} / 100, first in {100 * best['first_share']:.0f} % of weight draws, "
            f"{int(best['capacity_females'])} F / {int(best['capacity_males'])} M territories"
            + ("" if p50 != p50 else f", persistence at 50 years {p50:.2f}")
            + " (layer sites, sites.csv)."
        )
    if result.barriers is not None and len(result.barriers.top):
        b = result.barriers.top.iloc[0]
        con.print(
            f"Restoration, the Barrier Mapper's first place (by cost saved): link {b['patch_a']}-{b['patch_b']}, "
            f"radius {b['radius_m']:,.0f} m, saves {b['improvement_cwd']:,.0f} cost-weighted m ({b['pct_of_lcd']:.0f} % "
            "of the link); the report orders the places by the connectivity they add."
        )


def _print_links(con: Any, graph: Any) -> None:
    n_cross = sum(1 for *_, d in graph.edges(data=True) if ";" in str(d.get("countries", "")))
    con.print(
        f"Least-cost links: {graph.number_of_edges()} ({graph.graph.get('rule')} rule), "
        f"{n_cross} of them cross a national border."
    )
    if graph.graph.get("isolated"):
        con.print(f"Patches with no link (cut off by no data): {graph.graph['isolated']}")


def _print_findings(con: Any, headlines: list[str]) -> None:
    """The one-line answers the report opens with (``**bold**`` shown bold)."""
    import re

    from rich.markup import escape

    if not headlines:
        return
    con.print("[bold]Findings[/bold]")
    for line in headlines:
        con.print("  • " + re.sub(r"\*\*(.+?)\*\*", r"[bold]\1[/bold]", escape(line)))


def _print_run_summary(con: Any, summary: dict) -> None:
    """The "Run" table of ``leopardgeo report``: grid, patches, links, connectivity, run time."""
    from rich.table import Table

    t = Table(title="Run summary", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    run = summary.get("run") or {}
    if run.get("shape"):
        t.add_row("grid", f"{run['shape'][0]:,} x {run['shape'][1]:,} cells of {run['cell_size_m']:g} m ({run['crs']})")
    p = summary.get("patches")
    if p:
        by = ", ".join(f"{r['country']} {r['patches']}" for r in p["by_country"] if r["country"] != "all")
        t.add_row("habitat patches", f"{p['count']} ({p['area_ha']:,.0f} ha; {by})")
    links = summary.get("links")
    if links:
        t.add_row("least-cost links", f"{links['count']}, {links['cross_border']} crossing a national border")
    m = summary.get("connectivity")
    if m:
        t.add_row("connectivity", f"PC {m['PC']:.3g}, EC {m['EC_ha']:,.0f} ha, {m['components']} component(s)")
    xb = summary.get("crossborder")
    if xb and xb.get("fence"):
        f = xb["fence"]
        t.add_row("border fence", f"PC {f['PC_loss_pct']:.1f} % lost, EC {f['EC_loss_pct']:.1f} % lost")
    if run.get("total_s") is not None:
        t.add_row("run time", f"{run['total_s']:,.1f} s, started {run.get('started')}")
    con.print(t)


def _print_link_table(con: Any, table: Any, out_dir: Path, top: int) -> None:
    """The ranked link table of ``leopardgeo report``."""
    from rich.table import Table

    ranked = "best corridor score first" if "score_rank" in table.columns else "cheapest first"
    t = Table(title=f"Least-cost links in {out_dir} ({len(table)}, {ranked})")
    if "score" in table.columns:
        t.add_column("rank", justify="right")
        t.add_column("score", justify="right")
    for col, just in (
        ("from", "left"),
        ("to", "left"),
        ("cwd", "right"),
        ("path km", "right"),
        ("cwd/euclid", "right"),
        ("countries", "left"),
    ):
        t.add_column(col, justify=just)
    extra = [(c, h) for c, h in (("corridor_width_m", "width km"), ("eff_resistance", "R eff"), ("pinch_current", "pinch A"))
             if c in table.columns]  # fmt: skip
    for _, head in extra:
        t.add_column(head, justify="right")

    def fmt(col: str, v: float) -> str:
        if v != v:
            return "-"
        return f"{v / 1000:,.1f}" if col == "corridor_width_m" else f"{v:.3g}"

    for r in table.head(top).itertuples():
        scored = []
        if "score" in table.columns:
            rank = getattr(r, "score_rank", None)
            unranked = rank is None or str(rank) in ("<NA>", "nan")  # seams: not ranked
            scored = ["-" if unranked else str(rank), "-" if r.score != r.score else f"{r.score:.0f}"]
        t.add_row(
            *scored,
            f"{r.from_id} {r.from_name}".strip(),
            f"{r.to_id} {r.to_name}".strip(),
            f"{r.cwd:,.0f}",
            f"{r.path_km:,.1f}",
            "-" if r.cwd_to_euclid != r.cwd_to_euclid else f"{r.cwd_to_euclid:,.1f}",
            r.countries,
            *(fmt(c, getattr(r, c)) for c, _ in extra),
        )
    con.print(t)


def _print_crossborder(con: Any, table: Any, fence: dict | None, top: int) -> None:
    """The "Cross-border routes" table and the fence scenario, in the terminal."""
    from rich.table import Table

    t = Table(title=f"Cross-border routes ({len(table)}, most important first: dPC = % of PC lost if closed)")
    for col in ("rank", "route", "dPC %", "crossing", "side a", "side b", "border km", "cwd"):
        t.add_column(
            col,
            justify="right" if col in ("rank", "dPC %", "border km", "cwd") else "left",
            overflow="fold" if col.startswith("side") else "ellipsis",
            no_wrap=not col.startswith("side"),
        )

    def f(v: float, fmt: str) -> str:
        return "-" if v != v else format(v, fmt)

    def side(c: object, n: object) -> str:
        c, n = str(c or ""), "" if str(n) == "nan" else str(n or "")
        return f"{c}: {n}" if c and n else (c or n or "-")

    for r in table.head(top).itertuples(index=False):
        where = "-" if r.crossing_lat != r.crossing_lat else f"{r.crossing_lat:.3f}N {r.crossing_lon:.3f}E"
        t.add_row(
            str(r.rank),
            f"{'link' if r.route == 'link' else 'patch'} {r.route_id}",
            f(r.importance_dpc, ".2f"),
            where,
            side(r.country_a, r.protected_a),
            side(r.country_b, r.protected_b),
            f(r.border_length_m / 1000, ".1f"),
            f(r.cwd, ",.0f"),
        )
    con.print(t)
    if fence:
        s = fence["summary"]
        gone = [f"{r['patch_a']}-{r['patch_b']}" for r in fence["links"] if r["status"] == "vanished"]
        con.print(
            f"Border fence ({s['fence']}, {len(s.get('gaps') or [])} gaps): PC {s['PC_before']:.4g} -> {s['PC_after']:.4g} "
            f"({s['PC_loss_pct']:.1f} % lost); EC {s['EC_before_ha']:,.0f} -> {s['EC_after_ha']:,.0f} ha "
            f"({s['EC_loss_pct']:.1f} % lost); links vanishing: {', '.join(gone) or 'none'}; "
            f"lengthened: {s['links_lengthened']}; newly isolated patches: {s['newly_isolated'] or 'none'}."
        )


def _print_sites(con: Any, table: Any, doc: dict, sim: dict | None, top: int) -> None:
    """The "Reintroduction sites" table, rank stability and simulation, in the terminal."""
    from rich.table import Table

    t = Table(title=f"Reintroduction sites ({len(table)}, best score first; source: {doc.get('source', '?')})")
    cols = [
        ("rank", "rank", "d"), ("name", "site", "s"), ("score", "score", ".1f"), ("first_share", "1st %", "%"),
        ("capacity_females", "F", "d"), ("capacity_males", "M", "d"), ("habitat_area_ha", "habitat ha", ",.0f"),
        ("mean_quality", "quality", ".2f"), ("cwd_to_source", "cwd", ",.0f"), ("euclid_to_source_m", "km", "km"),
        ("eff_resistance", "R eff", ".3g"), ("n_corridors", "corr.", "d"), ("dPC_gain_pct", "dPC %", ".2f"),
        ("cropland_frac", "crop %", "%"), ("urban_frac", "urban %", "%"), ("protected_frac", "prot. %", "%"),
        ("persistence_25y", "P25", "%"), ("persistence_50y", "P50", "%"),
    ]  # fmt: skip
    cols = [c for c in cols if c[0] in table.columns]
    for key, head, _ in cols:
        t.add_column(head, justify="left" if key == "name" else "right")

    def f(v: Any, fmt: str) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        if fmt == "s":
            return str(v)
        if fmt == "%":
            return f"{100 * float(v):.0f}"
        if fmt == "km":
            return f"{float(v) / 1000:,.0f}"
        if fmt == "d":
            return f"{int(v)}"
        return format(float(v), fmt)

    for r in table.head(top).to_dict("records"):
        t.add_row(*(f(r[k], fmt) for k, _, fmt in cols))
    con.print(t)
    for s in doc.get("rank_stability") or []:
        con.print(
            f"Rank stability, {s.get('name', s.get('site_id'))}: first in {100 * s['first_share']:.0f} % of the weight "
            f"draws, mean rank {s['mean_rank']:.2f}."
        )
    for name, s in ((sim or {}).get("sites") or {}).items():
        con.print(
            f"Simulation, {name}: persistence {f(s.get('persistence_25y'), '%')} % at 25 years, "
            f"{f(s.get('persistence_50y'), '%')} % at 50 years ({s.get('n_runs', '?')} runs)."
        )
