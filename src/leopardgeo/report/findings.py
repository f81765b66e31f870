"""The report's first section, *Findings*: one paragraph per question the run answers.

Habitat and capacity by country beside the published figures, the cross-border routes
and the fence, the best site's connection to the source and the restoration places
ordered by the equivalent connected area each adds.

Published figures (:data:`PUBLISHED`) carry their sources (README, "Science").
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from leopardgeo.report.document import (
    Block,
    Bullets,
    Report,
    Section,
    Table,
    _lonlat,
    format_lonlat,
)
from leopardgeo.report.folder import _patch_label, _patch_names, _RunFolder

logger = logging.getLogger(__name__)


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


#: Below this dispersal probability a route is named as connected only in the graph (0.01: the minimum link
#: probability Conefor and Makurhini users commonly apply before computing PC).
_MIN_USEFUL_PROBABILITY = 0.01


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
    k = (run.json("metrics.json") or {}).get("k")
    p_route = math.exp(-k * cwd) if k else math.nan  # the metrics' dispersal kernel on the route's cost
    remote = p_route < _MIN_USEFUL_PROBABILITY
    if math.isfinite(p_route):
        text += f", dispersal probability {_probability_text(p_route)}" + (
            " (connected in the graph, but a disperser is not expected to make it)" if remote else ""
        )
    text += "."
    weak, short = _weakest_section(run, sites.geometry.iloc[0], source)
    if weak:
        text += " " + weak
    p50 = best.get("persistence_50y", math.nan)  # a pandas row: .get gives the default when the column is absent
    if pd.notna(p50):
        text += f" A released population persists 50 years in {100 * float(p50):.0f} % of the simulated runs"
        alone = best.get("persistence_50y_no_corridor", math.nan)
        text += f" ({100 * float(alone):.0f} % with no movement to or from the source)." if pd.notna(alone) else "."
    link = f"connects to {source}"
    if remote:
        link += f" only at a dispersal probability of {_probability_text(p_route)}"
    report.headlines.append(f"**Southern Sikhote-Alin:** {name} {link}" + (f"; {short}." if short else "."))
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


def _probability_text(p: float) -> str:
    """A dispersal probability for a sentence: two significant digits, and no scientific notation.

    Examples
    --------
    >>> [_probability_text(p) for p in (0.0, 6e-314, 0.00012, 0.2345)]
    ['0', '< 0.0001', '0.00012', '0.23']
    """
    if p == 0:
        return "0"
    return "< 0.0001" if p < 1e-4 else f"{p:.2g}"


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
                f"{_probability_text(r['p_before'])} → {_probability_text(r['p_after'])}")  # fmt: skip

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


