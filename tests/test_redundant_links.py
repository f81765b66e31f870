"""Detour links: a link is redundant exactly when other links join its patches more cheaply (networkx as reference)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from leopardgeo.stages.graph import redundant_links


def test_redundant_links_match_networkx_shortest_paths():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(3, 9))
        pairs = [(a, b) for a in range(1, n + 1) for b in range(a + 1, n + 1) if rng.random() < 0.5]
        if not pairs:
            continue
        a, b = np.array(pairs).T
        cwd = rng.integers(1, 20, size=len(pairs)).astype(float)  # integers: ties happen and are not redundant
        got = redundant_links(a, b, cwd)
        for i, (u, v) in enumerate(pairs):
            g = nx.Graph()
            g.add_weighted_edges_from((x, y, w) for j, (x, y, w) in enumerate(zip(a, b, cwd, strict=True)) if j != i)
            joined = g.has_node(u) and g.has_node(v) and nx.has_path(g, u, v)
            other = nx.shortest_path_length(g, u, v, weight="weight") if joined else np.inf
            assert got[i] == (other < cwd[i]), (pairs, cwd, i)


def test_redundant_links_ignore_missing_and_zero_cost():
    assert redundant_links([1, 2, 1], [2, 3, 3], [np.nan, 0.0, 5.0]).tolist() == [False, False, False]
    assert redundant_links([], [], []).tolist() == []
