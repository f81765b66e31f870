"""The run report's sections: one builder per output, the run metadata and the file list.

Outputs with a section: patches, links, metrics, cross-border, barriers, Omniscape,
scenarios, capacity, sites.

Each builder takes the run folder and the :class:`~leopardgeo.report.document.Report`
being assembled and returns a :class:`~leopardgeo.report.document.Section`, or ``None``
when its inputs are absent; :data:`SECTIONS` lists them in report order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.io import LAYERS, RASTERS, json_records
from leopardgeo.report.document import (
    TOP_ROWS,
    Block,
    Figure,
    Report,
    Section,
    Table,
    _display,
    _fmt,
    _lonlat,
    format_lonlat,
)
from leopardgeo.report.folder import _patch_names, _RunFolder

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


