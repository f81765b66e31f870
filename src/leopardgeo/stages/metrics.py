r"""Graph connectivity metrics of Conefor and Graphab on the networkx patch graph.

Formulas (``reference/algorithms.md``; papers cited per function):

* dispersal probability of a link :math:`p_{ij} = e^{-k d_{ij}}`, with
  :math:`k = -\ln p_0 / d_0` from one (distance, probability) pair, by default
  :math:`p = 0.5` at the median dispersal distance;
* :math:`p^*_{ij}` = the maximum product of link probabilities over all paths =
  :math:`e^{-k D_{ij}}` with :math:`D` the shortest-path distance on the link
  weights (``scipy.sparse.csgraph``), :math:`p^*_{ii} = 1`;
* PC :math:`= \sum_i \sum_j a_i a_j p^*_{ij} / A_L^2` (Saura & Pascual-Hortal
  2007), EC :math:`= \sqrt{\sum_i \sum_j a_i a_j p^*_{ij}}` (ha);
* IIC :math:`= \sum_i \sum_j a_i a_j / (1 + nl_{ij}) / A_L^2` over connected
  pairs, :math:`nl` = links on the topologically shortest path (Pascual-Hortal
  & Saura 2006);
* dPC of a node or link = :math:`100 (PC - PC_{\text{removed}}) / PC` with
  :math:`A_L` unchanged; node dPC = intra + flux + connector (Saura & Rubio
  2010);
* BC: shortest-path betweenness on the link weights; BCPC: each pair's path
  weighted by :math:`a_i a_j p^*_{ij}` (Bodin & Saura 2010).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, shortest_path

from leopardgeo.core.errors import ConfigError, DataError

__all__ = ["MetricsResult", "add_metric_attributes", "connectivity_metrics", "dispersal_k"]


def dispersal_k(distance: float, probability: float = 0.5) -> float:
    """Decay constant ``k`` of ``p = exp(-k d)`` that gives ``probability`` at ``distance``.

    Examples
    --------
    >>> round(dispersal_k(1000.0), 6)            # p = 0.5 at 1 km
    0.000693
    """
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
        ``PC``, ``IIC``, ``EC_ha``, ``components``, ``landscape_area_ha``, ``k``.
    nodes
        Indexed by node: ``dPC``, ``dPC_intra``, ``dPC_flux``, ``dPC_connector``,
        ``dIIC``, ``BC``, ``BCPC``, ``articulation``.
    links
        One row per edge (``patch_a``, ``patch_b``): ``p``, ``dPC_link``, ``bridge``.
    """

    summary: dict
    nodes: pd.DataFrame
    links: pd.DataFrame


def _matrices(G: nx.Graph, nodes: list, weight: str, removed_edge: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shortest-path distance on ``weight`` and topological distance (links), inf when disconnected."""
    index = {n: i for i, n in enumerate(nodes)}
    rows, cols, w = [], [], []
    for u, v, d in G.edges(data=True):
        if u not in index or v not in index or (removed_edge is not None and {u, v} == set(removed_edge)):
            continue
        val = float(d[weight])
        if not (val >= 0 and math.isfinite(val)):
            continue
        rows += [index[u], index[v]]
        cols += [index[v], index[u]]
        w += [max(val, 1e-300), max(val, 1e-300)]  # an explicit 0 would be read as "no edge"
    n = len(nodes)
    m = csr_matrix((w, (rows, cols)), shape=(n, n))
    dist = shortest_path(m, method="D", directed=False)
    topo = shortest_path(m, method="D", directed=False, unweighted=True)
    return dist, topo


def _pc_num(a: np.ndarray, dist: np.ndarray, k: float) -> float:
    return float(a @ np.exp(-k * dist) @ a)


def _iic_num(a: np.ndarray, topo: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        inv = np.where(np.isfinite(topo), 1.0 / (1.0 + topo), 0.0)
    return float(a @ inv @ a)


def connectivity_metrics(
    G: nx.Graph,
    *,
    attribute: str = "area_ha",
    weight: str = "cwd",
    median_distance: float = 11_000.0,
    probability: float = 0.5,
    landscape_area: float | None = None,
) -> MetricsResult:
    """PC, IIC, EC and node / link importance (dPC and fractions, dIIC, BC, BCPC) of a patch graph.

    Parameters
    ----------
    G
        Patch graph (nodes carry ``attribute``, edges carry ``weight``).
    attribute
        Node attribute used as ``a`` (default ``area_ha``).
    weight
        Edge distance ``d`` (default ``cwd``, cost-weighted metres).
    median_distance, probability
        The kernel passes through (``median_distance``, ``probability``), same unit as ``weight``.
    landscape_area
        :math:`A_L` in the unit of ``attribute``; default: the sum of ``a``.

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
    """
    nodes = sorted(G.nodes)
    if not nodes:
        msg = "metrics: expected a graph with at least one patch, found none."
        raise DataError(msg)
    try:
        a = np.array([float(G.nodes[n][attribute]) for n in nodes])
    except KeyError as exc:
        msg = f"metrics: expected node attribute {attribute!r} on every patch, found it missing ({exc})."
        raise DataError(msg) from None
    if (a < 0).any() or not np.isfinite(a).all():
        msg = f"metrics: expected {attribute} >= 0 and finite, found {a[~(a >= 0)][:3].tolist()}."
        raise DataError(msg)
    missing = [(u, v) for u, v, d in G.edges(data=True) if weight not in d]
    if missing:
        msg = f"metrics: expected edge attribute {weight!r} on every link, found it missing on {missing[:3]}."
        raise DataError(msg)
    k = dispersal_k(median_distance, probability)
    al = float(landscape_area) if landscape_area is not None else float(a.sum())
    if not al > 0:
        msg = f"metrics: expected a landscape area > 0, found {al!r}."
        raise DataError(msg)
    dist, topo = _matrices(G, nodes, weight)
    pstar = np.exp(-k * dist)
    num = float(a @ pstar @ a)
    inum = _iic_num(a, topo)
    n_comp = int(connected_components(csr_matrix(np.isfinite(dist).astype(float)), directed=False)[0])
    summary = {
        "PC": num / al**2,
        "IIC": inum / al**2,
        "EC_ha": math.sqrt(num),
        "components": n_comp,
        "landscape_area_ha": al,
        "k": k,
    }
    rows = []
    for i, node in enumerate(nodes):
        keep = [j for j in range(len(nodes)) if j != i]
        sub = [nodes[j] for j in keep]
        d2, t2 = _matrices(G.subgraph(sub), sub, weight)
        num_r = _pc_num(a[keep], d2, k)
        inum_r = _iic_num(a[keep], t2)
        dpc = 100.0 * (num - num_r) / num if num > 0 else 0.0
        intra = 100.0 * a[i] ** 2 / num if num > 0 else 0.0
        flux = 100.0 * 2.0 * a[i] * float(pstar[i, keep] @ a[keep]) / num if num > 0 else 0.0
        rows.append(
            {
                "node": node,
                "dPC": dpc,
                "dPC_intra": intra,
                "dPC_flux": flux,
                "dPC_connector": dpc - intra - flux,
                "dIIC": 100.0 * (inum - inum_r) / inum if inum > 0 else 0.0,
            }
        )
    node_df = pd.DataFrame(rows).set_index("node")
    # betweenness on the link weights (unnormalised, each unordered pair once) and its PC-weighted form
    bc = nx.betweenness_centrality(G.subgraph(nodes), weight=weight, normalized=False)
    node_df["BC"] = [float(bc[n]) for n in nodes]
    node_df["BCPC"] = _bcpc(G, nodes, a, pstar, weight)
    art = set(nx.articulation_points(G.subgraph(nodes)))
    node_df["articulation"] = [n in art for n in nodes]
    bridges = {frozenset(e) for e in nx.bridges(G.subgraph(nodes))}
    link_rows = []
    for u, v, d in G.edges(data=True):
        d2, _ = _matrices(G, nodes, weight, removed_edge=(u, v))
        num_r = _pc_num(a, d2, k)
        val = float(d.get(weight, math.nan))
        link_rows.append(
            {
                "patch_a": min(u, v),
                "patch_b": max(u, v),
                "p": math.exp(-k * val) if math.isfinite(val) else 0.0,
                "dPC_link": 100.0 * (num - num_r) / num if num > 0 else 0.0,
                "bridge": frozenset((u, v)) in bridges,
            }
        )
    links = pd.DataFrame(link_rows, columns=["patch_a", "patch_b", "p", "dPC_link", "bridge"])
    return MetricsResult(summary=summary, nodes=node_df, links=links)


def _bcpc(G: nx.Graph, nodes: list, a: np.ndarray, pstar: np.ndarray, weight: str) -> list[float]:
    """Sum over pairs i < j of a_i a_j p*_ij for each node strictly inside their shortest path."""
    index = {n: i for i, n in enumerate(nodes)}
    out = np.zeros(len(nodes))
    H = G.subgraph(nodes)
    for i, src in enumerate(nodes):
        _, paths = nx.single_source_dijkstra(H, src, weight=weight)
        for dst, path in paths.items():
            j = index[dst]
            if j <= i:
                continue
            w = a[i] * a[j] * pstar[i, j]
            for mid in path[1:-1]:
                out[index[mid]] += w
    return out.tolist()


def add_metric_attributes(G: nx.Graph, result: MetricsResult) -> None:
    """Store node metrics as node attributes, link metrics as edge attributes and the summary in ``G.graph``."""
    for node, row in result.nodes.iterrows():
        G.nodes[node].update({k: (bool(v) if k == "articulation" else float(v)) for k, v in row.items()})
    for row in result.links.itertuples(index=False):
        G.edges[row.patch_a, row.patch_b].update({"p": row.p, "dPC_link": row.dPC_link, "bridge": bool(row.bridge)})
    G.graph["metrics"] = dict(result.summary)
