r"""Graph connectivity metrics of Conefor and Graphab on the networkx patch graph.

Formulas (``reference/algorithms.md``; papers cited per function):

* dispersal probability of a link :math:`p_{ij} = e^{-k d_{ij}}`, with
  :math:`k = -\ln p_0 / d_0` from one (distance, probability) pair, by default
  :math:`p = 0.5` at the median dispersal distance;
* :math:`p^*_{ij}` = the maximum product of link probabilities over all paths =
  :math:`e^{-k D_{ij}}` with :math:`D` the shortest-path distance on the link
  weights, :math:`p^*_{ii} = 1`;
* PC :math:`= \sum_i \sum_j a_i a_j p^*_{ij} / A_L^2` (Saura & Pascual-Hortal
  2007), EC :math:`= \sqrt{\sum_i \sum_j a_i a_j p^*_{ij}}` (ha);
* IIC :math:`= \sum_i \sum_j a_i a_j / (1 + nl_{ij}) / A_L^2` over connected
  pairs, :math:`nl` = links on the topologically shortest path (Pascual-Hortal
  & Saura 2006);
* dPC of a node or link = :math:`100 (PC - PC_{\text{removed}}) / PC` with
  :math:`A_L` unchanged; node dPC = intra + flux + connector (Saura & Rubio
  2010), and the same split of dIIC;
* BC: shortest-path betweenness on the link weights; BCPC: each pair's path
  weighted by :math:`a_i a_j p^*_{ij}` (Bodin & Saura 2010).

All removal deltas come from one compiled pass per source node
(:mod:`leopardgeo.kernels.graph_metrics`): only the pairs whose every shortest path runs
through the removed node or link are recomputed, which gives the brute-force
definition exactly at a fraction of its cost (``docs/performance.md``).

**The split of a node's dPC.** *intra* :math:`= 100\, a_x^2 / N`, *flux*
:math:`= 100 \cdot 2 a_x \sum_{j \ne x} a_j p^*_{xj} / N`, *connector* :math:`= 100
\sum_{i, j \ne x} a_i a_j (p^*_{ij} - p^{*,-x}_{ij}) / N`, with :math:`N` the sum
of PC.  The connector fraction is summed from its non-negative terms (never
taken as dPC − intra − flux, whose round-off can fall below zero), so it is
reported :math:`\ge 0`; dPC is the sum of the three and equals the brute-force
difference to about :math:`10^{-12}` of :math:`N`.  dIIC is split alike.

**Minimum link probability.** ``min_probability`` (Conefor users often set
0.01) drops every link with :math:`p_{ij}` below it *before* the max-product
paths.  With :math:`p = 0.5` at the median dispersal distance :math:`d_{50}`,
0.01 drops links longer than :math:`\log_2 100 \approx 6.64\, d_{50}`.  It can
only lower :math:`p^*` of pairs whose best path used such a link, each by at
most 0.01 of :math:`a_i a_j`, so PC falls slightly, IIC and the number of
components may change (IIC counts links, not probabilities), and a dropped link
gets ``used = False``, ``dPC_link = 0``.  Without it (the default) every link
with a finite distance is used, however improbable.

**Pair probability floor (optional, off by default).** ``pair_probability_floor``
:math:`\varepsilon` trades exactness for speed on graphs that extend far beyond the
dispersal distance, and only in the removal deltas of dPC.  Pairs with
:math:`p^*_{st} < \varepsilon` (distance beyond :math:`D_\varepsilon = -\ln\varepsilon / k`)
are not recomputed: each skipped pair's true loss lies in :math:`[0, a_s a_t p^*_{st}]`;
and a recomputed pair whose new distance exceeds :math:`D_\varepsilon` is off by less
than :math:`a_s a_t \varepsilon`.  The kernel adds these terms up per node and link, so
``summary["dPC_error_bound"]`` is a computed, rigorous bound (percentage points) on
the error of every node dPC (through its connector fraction) and every link dPC.  It
is at most :math:`100\,\varepsilon\,(\sum_i a_i)^2 / N` and usually far below it.  Unlike
``min_probability`` it keeps every link and leaves PC, EC, the intra and flux
fractions, dIIC, BC and BCPC exact.  It pays only where many pairs are farther apart
than :math:`D_\varepsilon` (``docs/performance.md``): with :math:`p = 0.5` at
:math:`d_{50}`, :math:`D_\varepsilon = \log_2(1/\varepsilon)\, d_{50}`, e.g.
:math:`13.3\, d_{50}` for :math:`10^{-4}`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from leopardgeo.config import _f, _normalise, _positive
from leopardgeo.core._crs import M2_PER_HA
from leopardgeo.core.errors import ConfigError, DataError
from leopardgeo.kernels.graph_metrics import MODE_IIC, MODE_PC, removal_deltas
from leopardgeo.stages.base import RunConfigLike, Section, Stage
from leopardgeo.stages.inputs import Inputs

__all__ = ["LINK_METRICS_MAX_LINKS", "MetricsResult", "add_metric_attributes", "connectivity_metrics", "dispersal_k"]

logger = logging.getLogger(__name__)

#: With ``links=None``, link metrics are computed only up to this many links (the 404-node complete
#: graph has 81,406 and takes seconds; their cost grows with links × mean subtree size).
LINK_METRICS_MAX_LINKS = 250_000

NODE_COLUMNS = (
    "dPC", "dPC_intra", "dPC_flux", "dPC_connector",
    "dIIC", "dIIC_intra", "dIIC_flux", "dIIC_connector",
    "BC", "BCPC", "articulation",
)  # fmt: skip
LINK_COLUMNS = ("patch_a", "patch_b", "p", "used", "dPC_link", "dIIC_link", "bridge")


def _as_number(value: object) -> float | None:
    """``value`` as a float, or None when it is no number (a string, None, a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def dispersal_k(distance: float, probability: float = 0.5) -> float:
    """Decay constant ``k`` of ``p = exp(-k d)`` that gives ``probability`` at ``distance``.

    Examples
    --------
    >>> round(dispersal_k(1000.0), 6)            # p = 0.5 at 1 km
    0.000693
    """
    for value, what in ((distance, "distance"), (probability, "probability")):
        if _as_number(value) is None:
            msg = f"dispersal {what}: expected a number, found {value!r} ({type(value).__name__})."
            raise ConfigError(msg)
    distance, probability = float(distance), float(probability)  # a float32 would round k
    if not (distance > 0 and math.isfinite(distance)):
        msg = f"dispersal distance: expected a finite number > 0, found {distance!r}."
        raise ConfigError(msg)
    if not 0 < probability < 1:
        msg = f"dispersal probability: expected a value strictly between 0 and 1, found {probability!r}."
        raise ConfigError(msg)
    return -math.log(probability) / distance


@dataclass(frozen=True)
class MetricsResult:
    """Global, node and link metrics of :func:`connectivity_metrics`.

    Attributes
    ----------
    summary
        ``PC``, ``IIC``, ``EC_ha``, ``components``, ``landscape_area_ha``, ``k``, ``min_probability``,
        ``links_used``, ``link_metrics`` (``"computed"`` or why not), ``pair_probability_floor``,
        ``dPC_error_bound`` (percentage points; 0 when exact).
    nodes
        Indexed by node: ``dPC``, ``dPC_intra``, ``dPC_flux``, ``dPC_connector``, ``dIIC``,
        ``dIIC_intra``, ``dIIC_flux``, ``dIIC_connector``, ``BC``, ``BCPC``, ``articulation``.
    links
        One row per edge (``patch_a``, ``patch_b``): ``p``, ``used`` (kept after ``min_probability``),
        ``dPC_link``, ``dIIC_link`` (NaN when link metrics were not computed), ``bridge``.
    """

    summary: dict
    nodes: pd.DataFrame
    links: pd.DataFrame


def _check(G: nx.Graph, attribute: str, weight: str) -> tuple[list, np.ndarray]:
    if G.is_directed() or G.is_multigraph():
        kind = type(G).__name__
        msg = (
            f"metrics: expected an undirected graph with one link per pair of patches (networkx Graph), found a {kind}. "
            "PC, IIC and their removal deltas treat every link as going both ways at one distance (as Conefor does): "
            "build an nx.Graph, keeping for each pair the distance you mean (e.g. the shorter of two directions or "
            "parallel links)."
        )
        raise DataError(msg)
    nodes = list(G.nodes)
    if not nodes:
        msg = "metrics: expected a graph with at least one patch, found none."
        raise DataError(msg)
    with contextlib.suppress(TypeError):  # ids of mixed types keep the graph's order
        nodes = sorted(nodes)
    values = []
    for n in nodes:
        if attribute not in G.nodes[n]:
            msg = f"metrics: expected node attribute {attribute!r} on every patch, found it missing on patch {n!r}."
            raise DataError(msg)
        x = _as_number(G.nodes[n][attribute])
        if x is None:
            msg = (
                f"metrics: expected node attribute {attribute!r} to be a number, found {G.nodes[n][attribute]!r} on patch {n!r}."
            )
            raise DataError(msg)
        values.append(x)
    a = np.array(values, dtype=np.float64)
    if (a < 0).any() or not np.isfinite(a).all():
        msg = f"metrics: expected {attribute} >= 0 and finite, found {a[~(a >= 0) | ~np.isfinite(a)][:3].tolist()}."
        raise DataError(msg)
    missing = [(u, v) for u, v, d in G.edges(data=True) if weight not in d]
    if missing:
        msg = f"metrics: expected edge attribute {weight!r} on every link, found it missing on {missing[:3]}."
        raise DataError(msg)
    text = [(u, v, d[weight]) for u, v, d in G.edges(data=True) if _as_number(d[weight]) is None]
    if text:
        msg = f"metrics: expected link {weight} to be a number (inf for no link), found {text[:3]}."
        raise DataError(msg)
    bad = [(u, v, d[weight]) for u, v, d in G.edges(data=True) if not float(d[weight]) >= 0]
    if bad:
        msg = (
            f"metrics: expected link {weight} >= 0 (or inf for no link), found {bad[:3]}; "
            "fix or drop those links before computing the metrics."
        )
        raise DataError(msg)
    return nodes, a


def _csr(n: int, ui: np.ndarray, vi: np.ndarray, ids: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Symmetric CSR arrays (indptr, indices, weights, link ids) of the used links."""
    rows = np.concatenate([ui, vi])
    cols = np.concatenate([vi, ui])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols[order], np.concatenate([w, w])[order], np.concatenate([ids, ids])[order]


def connectivity_metrics(
    G: nx.Graph,
    *,
    attribute: str = "area_ha",
    weight: str = "cwd",
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    landscape_area: float | None = None,
    min_probability: float | None = None,
    links: bool | None = None,
    pair_probability_floor: float | None = None,
) -> MetricsResult:
    """PC, IIC, EC and node / link importance (dPC, dIIC and their fractions, BC, BCPC) of a patch graph.

    Parameters
    ----------
    G
        Undirected patch graph, one link per pair (``networkx.Graph``; a directed or multi-graph is refused):
        nodes carry ``attribute``, edges carry ``weight`` (numbers; ``inf`` = no link). Node ids of any
        hashable kind; the tables list them sorted when they sort, else in the graph's order.
    attribute
        Node attribute used as ``a`` (default ``area_ha``).
    weight
        Edge distance ``d`` (default ``cwd``, cost-weighted metres).
    median_distance, probability
        The kernel passes through (``median_distance``, ``probability``), same unit as ``weight``.
    landscape_area
        :math:`A_L` in the unit of ``attribute``; default: the sum of ``a``.
    min_probability
        Drop links with :math:`p_{ij}` below this before the max-product paths (module docstring);
        default: keep every link.
    links
        Compute ``dPC_link`` and ``dIIC_link``: ``None`` (default) does so up to
        :data:`LINK_METRICS_MAX_LINKS` links and says so in ``summary["link_metrics"]`` above it.
    pair_probability_floor
        Speed for a stated error (module docstring): in the removal deltas of dPC, pairs whose
        max-product probability is below this are not recomputed; ``summary["dPC_error_bound"]`` is
        the largest possible error of any node or link dPC it allows, in percentage points.  Default
        (``None``): every pair, exact.  PC, EC, the intra and flux fractions, dIIC, BC and BCPC are
        always exact.

    Returns
    -------
    MetricsResult

    Examples
    --------
    Two patches of 1 ha joined at p = 0.5, landscape 2 ha: PC = (1 + 1 + 2·0.5) / 4.

    >>> G = nx.Graph()
    >>> G.add_node(1, area_ha=1.0); G.add_node(2, area_ha=1.0)
    >>> G.add_edge(1, 2, cwd=100.0)
    >>> m = connectivity_metrics(G, median_distance=100.0)
    >>> m.summary["PC"], round(m.summary["EC_ha"], 4)
    (0.75, 1.7321)
    >>> m.links[["dPC_link", "dIIC_link"]].round(3).values.tolist()   # 2·1·1·0.5 of 3; 2·1·1/2 of 3
    [[33.333, 33.333]]
    """
    nodes, a = _check(G, attribute, weight)
    n = len(nodes)
    k = dispersal_k(median_distance, probability)
    if min_probability is not None and not 0 <= min_probability < 1:
        msg = f"metrics: min_probability: expected a value in [0, 1) or None, found {min_probability!r}."
        raise ConfigError(msg)
    if pair_probability_floor is not None and not 0 < pair_probability_floor < 1:
        msg = (
            f"metrics: pair_probability_floor: expected a value strictly between 0 and 1 or None, found "
            f"{pair_probability_floor!r}; use None for exact removal deltas."
        )
        raise ConfigError(msg)
    max_distance = math.inf if pair_probability_floor is None else -math.log(pair_probability_floor) / k
    al = float(landscape_area) if landscape_area is not None else float(a.sum())
    if not al > 0:
        msg = f"metrics: expected a landscape area > 0, found {al!r}."
        raise DataError(msg)
    total = float(a.sum())
    if al < total * (1.0 - 1e-9):  # A_L holds every node (PC and IIC would exceed 1)
        msg = (
            f"metrics: expected a landscape area at least the nodes' total {attribute!r} ({total:g}), found {al:g}. "
            "Give the whole study area (A_L) in the unit of the node weights (ha for areas), or leave it out."
        )
        raise DataError(msg)
    index = {v: i for i, v in enumerate(nodes)}
    edges = [(u, v, float(d[weight])) for u, v, d in G.edges(data=True)]
    m_all = len(edges)
    ui = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
    vi = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
    dist = np.array([d for _, _, d in edges], dtype=np.float64)
    p = np.exp(-k * dist)
    used = np.isfinite(dist) & (ui != vi)
    if min_probability is not None:
        used &= p >= min_probability
    ids = np.flatnonzero(used)
    if links is None:
        links = len(ids) <= LINK_METRICS_MAX_LINKS
        status = "computed" if links else (
            f"skipped: {len(ids):,} links > {LINK_METRICS_MAX_LINKS:,} (the automatic limit); "
            "pass links=True to compute them anyway, or raise min_probability to drop improbable links"
        )
        if not links:
            logger.warning("metrics: link metrics %s", status)
    else:
        status = "computed" if links else "not requested"
    lid = np.arange(len(ids), dtype=np.int64)
    indptr, indices, w, eid = _csr(n, ui[ids], vi[ids], lid, np.maximum(dist[ids], 0.0))
    r_pc = removal_deltas(indptr, indices, w, eid, a, n_links=len(ids), mode=MODE_PC, k=k, links=links,
                          betweenness=True, max_distance=max_distance)  # fmt: skip
    r_iic = removal_deltas(indptr, indices, np.ones_like(w), eid, a, n_links=len(ids), mode=MODE_IIC, links=links,
                           betweenness=False)  # fmt: skip
    tot, node_pc, link_pc, bc2, bcpc2 = r_pc.totals, r_pc.node_loss, r_pc.link_loss, r_pc.bc, r_pc.bcpc
    tot_i, node_iic, link_iic = r_iic.totals, r_iic.node_loss, r_iic.link_loss
    num = float(a @ tot)
    inum = float(a @ tot_i)
    adj = csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n))
    n_comp = int(connected_components(adj, directed=False)[0])
    summary = {
        "PC": num / al**2,
        "IIC": inum / al**2,
        "EC_ha": math.sqrt(num),
        "components": n_comp,
        "landscape_area_ha": al,
        "k": k,
        "min_probability": min_probability,
        "links_used": len(ids),
        "link_metrics": status,
        "pair_probability_floor": pair_probability_floor,
        "dPC_error_bound": (
            100.0 * max(float(r_pc.node_bound.max(initial=0.0)), float(r_pc.link_bound.max(initial=0.0))) / num
            if num > 0 else 0.0
        ),
    }

    def split(total: float, own: np.ndarray, loss: np.ndarray, name: str) -> dict[str, np.ndarray]:
        scale = 100.0 / total if total > 0 else 0.0
        intra = scale * a**2
        flux = scale * 2.0 * a * np.maximum(own - a, 0.0)
        conn = scale * np.maximum(loss, 0.0)
        return {name: intra + flux + conn, f"{name}_intra": intra, f"{name}_flux": flux, f"{name}_connector": conn}

    cols = split(num, tot, node_pc, "dPC") | split(inum, tot_i, node_iic, "dIIC")
    node_df = pd.DataFrame(cols, index=pd.Index(nodes, name="node", tupleize_cols=False))
    node_df["BC"] = bc2 / 2.0
    node_df["BCPC"] = bcpc2 / 2.0
    H = nx.Graph()
    H.add_nodes_from(nodes)
    H.add_edges_from((edges[i][0], edges[i][1]) for i in ids)
    # one biconnected decomposition (networkx.bridges' chain decomposition is ~10x slower on dense graphs):
    # a bridge is a component of one link, an articulation point a node in two or more components
    seen: dict = {}
    bridges = set()
    for comp in nx.biconnected_component_edges(H):
        if len(comp) == 1:
            bridges.add(frozenset(comp[0]))
        for v in {x for e in comp for x in e}:
            seen[v] = seen.get(v, 0) + 1
    node_df["articulation"] = [seen.get(v, 0) > 1 for v in nodes]
    dpc_link = np.zeros(m_all)
    diic_link = np.zeros(m_all)
    if links:
        dpc_link[ids] = 100.0 * np.maximum(link_pc, 0.0) / num if num > 0 else 0.0
        diic_link[ids] = 100.0 * np.maximum(link_iic, 0.0) / inum if inum > 0 else 0.0
    else:
        dpc_link[:] = np.nan
        diic_link[:] = np.nan
    link_df = pd.DataFrame(
        {
            "patch_a": [nodes[i] for i in np.minimum(ui, vi)],  # in the node table's order (ids of mixed types too)
            "patch_b": [nodes[i] for i in np.maximum(ui, vi)],
            "p": np.where(np.isfinite(dist), p, 0.0),
            "used": used,
            "dPC_link": dpc_link,
            "dIIC_link": diic_link,
            "bridge": [used[i] and frozenset(edges[i][:2]) in bridges for i in range(m_all)],
        },
        columns=list(LINK_COLUMNS),
    )
    return MetricsResult(summary=summary, nodes=node_df[list(NODE_COLUMNS)], links=link_df)


def add_metric_attributes(G: nx.Graph, result: MetricsResult) -> None:
    """Store node metrics as node attributes, link metrics as edge attributes and the summary in ``G.graph``."""
    for node, row in result.nodes.to_dict("index").items():  # rows as dicts of Python scalars (no Series per row)
        G.nodes[node].update({k: (bool(v) if k == "articulation" else float(v)) for k, v in row.items()})
    for row in result.links.itertuples(index=False):
        G.edges[row.patch_a, row.patch_b].update(
            {"p": row.p, "dPC_link": row.dPC_link, "dIIC_link": row.dIIC_link, "bridge": bool(row.bridge)}
        )
    G.graph["metrics"] = dict(result.summary)


# ---------------------------------------------------------------------- config section
@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """Graph connectivity metrics (Conefor / Graphab: PC, IIC, EC, dPC, BC, BCPC)."""

    enabled: bool = _f(True, doc="compute the metrics in `leopardgeo run` (needs [links] enabled)")
    attribute: str = _f("area_ha", doc="patch attribute used as the node weight a_i (area_ha, or e.g. a quality-weighted area)")
    distance: str = _f(
        "cwd", doc="link attribute used as the distance d_ij (cwd, cost-weighted metres; or lcp_length_m, euclid_m)"
    )
    median_dispersal: float = _f(
        11_000.0,
        doc=(
            "distance at which the dispersal probability is `probability`, in the unit of `distance`: "
            "11 km, the mean natal dispersal of male leopards (Fattebert et al. 2015, PLoS ONE e0122355; "
            "South African leopards: no Amur figure is published); with cwd, 11 km of resistance-1 habitat"
        ),
    )
    probability: float = _f(0.5, doc="dispersal probability at median_dispersal (0.5 = median, as in Conefor and Graphab)")
    landscape_area_ha: float | None = _f(None, doc="A_L of PC and IIC, ha; default: the study area's valid (land) cells")
    min_probability: float | None = _f(
        None,
        doc=(
            "drop links whose dispersal probability is below this before the max-product paths (Conefor users often "
            "set 0.01: with p = 0.5 at median_dispersal it drops links longer than 6.64 x median_dispersal); "
            "default: keep every link"
        ),
    )
    link_metrics: bool | None = _f(
        None, doc="compute dPC_link / dIIC_link; default: yes up to 250,000 links, then skipped with a message"
    )

    def __post_init__(self) -> None:
        _normalise(self, "metrics")
        _positive(self.median_dispersal, "metrics.median_dispersal")
        if not 0 < self.probability < 1:
            msg = f"[metrics] probability: expected a value strictly between 0 and 1, found {self.probability!r}."
            raise ConfigError(msg)
        if self.landscape_area_ha is not None:
            _positive(self.landscape_area_ha, "metrics.landscape_area_ha")
        if self.min_probability is not None and not 0 <= self.min_probability < 1:
            msg = f"[metrics] min_probability: expected a value in [0, 1), found {self.min_probability!r}."
            raise ConfigError(msg)


# ---------------------------------------------------------------------- the stage
def _landscape_area(cfg: RunConfigLike, inputs: Inputs) -> float:
    """A_L of PC / IIC: ``[metrics] landscape_area_ha``, else the study area's valid cells (ha)."""
    area = cfg.metrics.landscape_area_ha
    if area is None:
        area = float(np.count_nonzero(inputs.valid)) * inputs.grid.cell_size_m**2 / M2_PER_HA  # a tenth of sum()'s time
    return float(area)


def compute_metrics(cfg: RunConfigLike, inputs: Inputs, graph: nx.Graph) -> MetricsResult:
    """PC, IIC, EC and node / link importance (see :mod:`leopardgeo.stages.metrics`); stored on ``graph``."""
    m = cfg.metrics
    result = connectivity_metrics(
        graph,
        attribute=m.attribute,
        weight=m.distance,
        median_distance=m.median_dispersal,
        probability=m.probability,
        landscape_area=_landscape_area(cfg, inputs),
        min_probability=m.min_probability,
        links=m.link_metrics,
    )
    add_metric_attributes(graph, result)
    return result


STAGE = Stage(
    "metrics",
    "connectivity metrics",
    lambda cfg, c: {"metrics": compute_metrics(cfg, c["inputs"], c["graph"])},
    config=(Section("metrics", MetricsConfig, "graph connectivity metrics"),),
    needs=("inputs", "links"),
    after=("corridors", "circuit", "pinch_points", "barriers"),  # the graph's in-place chain
    produces=("metrics",),
    mutates=("graph",),
    enabled=lambda cfg: cfg.metrics.enabled,
    outputs=("metrics.json",),
    write=lambda writer, cfg, c: writer.text("metrics.json", json.dumps(c["metrics"].summary, indent=1)) and None,
)
