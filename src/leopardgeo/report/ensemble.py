"""The report section of a resistance ensemble: which corridors are robust, which depend on the resistance guess.

Reads what :func:`leopardgeo.runner.ensemble.run_ensemble` wrote (``ensemble_links.csv``, ``ensemble.json``,
``ensemble.gpkg``, ``corridor_frequency.tif``) and writes ``ensemble_report.md`` and
``maps/ensemble_corridors.png`` beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from leopardgeo.core.errors import DataError

__all__ = ["ensemble_markdown", "write_ensemble_report"]

_CLASS_COLOURS = {"robust": "#1a9641", "sensitive": "#fdae61", "rare": "#d7191c"}


def _label(row: pd.Series) -> str:
    return f"{row.patch_a} – {row.patch_b}"


def _areas(name: str) -> str:
    """A patch's protected areas (``; ``-joined in the tables) joined with commas, for a list that uses ``;``."""
    return name.replace("; ", ", ")


def _names(links: pd.DataFrame) -> str:
    """``1 = Kedrovaya Pad, Land of the Leopard; 2 = Lazovsky`` for the patches with names (each once), or ''."""
    named: dict[int, str] = {}
    for end in ("a", "b"):
        for pid, name in zip(links[f"patch_{end}"], links.get(f"name_{end}", pd.Series(dtype=object)), strict=False):
            if isinstance(name, str) and name:
                named.setdefault(int(pid), _areas(name))
    return "; ".join(f"{k} = {named[k]}" for k in sorted(named))


def ensemble_markdown(links: pd.DataFrame, summary: dict, *, map_path: str | None = None) -> str:
    """The ensemble section as Markdown: the verdict first, then the table of links.

    Examples
    --------
    >>> links = pd.DataFrame({"patch_a": [1, 2], "patch_b": [2, 3], "name_a": ["", ""], "name_b": ["", ""],
    ...     "share": [1.0, 0.4], "robustness": ["robust", "sensitive"], "in_base": [True, True],
    ...     "cwd_median": [1e4, 2e4], "cwd_p05": [9e3, 1.5e4], "cwd_p95": [1.1e4, 3e4],
    ...     "rank_median": [1.0, 2.0], "rank_p05": [1.0, 2.0], "rank_p95": [1.0, 2.0]})
    >>> md = ensemble_markdown(links, {"draws": 10, "varied": ["max_resistance"], "robust_share": 0.9, "rare_share": 0.1})
    >>> "**Robust** (in at least 90 % of draws, ranked within 25 % of the links' ranks): 1 – 2" in md
    True
    >>> "**Depend on the resistance guess**, present in 10 % to 90 % of draws: 2 – 3" in md
    True
    >>> links.loc[0, ["name_a", "name_b"]] = ["Kedrovaya Pad; Leopard", "Lazovsky"]
    >>> md = ensemble_markdown(links, {"draws": 10, "robust_share": 0.9, "rare_share": 0.1, "links_ranked": 2})
    >>> print(next(line for line in md.splitlines() if line.startswith("- Between")))
    - Between protected areas, 1 – 2 (Kedrovaya Pad, Leopard – Lazovsky): **robust**, in 100 % of draws, rank 1 (1–1) of about 2
    """
    n = summary["draws"]
    varied = ", ".join(summary.get("varied", [])) or "none"
    lines = [
        "## Robustness to the resistance guess (ensemble)",
        "",
        (
            f"{n} draws of the resistance model, varying {varied} (`ensemble_draws.csv`). Habitat patches are those "
            "of the configuration in every draw; each draw recomputes resistance and the stages after it. "
            "The draws are a sensitivity analysis of modelled, approximate parameters, not a measured uncertainty."
        ),
        "",
    ]
    rs, ra = summary.get("robust_share", 0.9), summary.get("rare_share", 0.1)
    spread = summary.get("rank_spread", 0.25)
    pct = lambda x: f"{x * 100:g} %"  # noqa: E731
    cls, share = links["robustness"], links["share"]
    verdicts = [
        (cls == "robust", f"**Robust** (in at least {pct(rs)} of draws, ranked within {pct(spread)} of the links' ranks)"),
        (
            (cls == "sensitive") & (share < rs),
            f"**Depend on the resistance guess**, present in {pct(ra)} to {pct(rs)} of draws",
        ),
        (
            (cls == "sensitive") & (share >= rs),
            (
                f"**Depend on the resistance guess**, present in at least {pct(rs)} of draws but their rank among "
                f"the corridors moves across more than {pct(spread)} of the links (5–95 % of draws)"
            ),
        ),
        (cls == "rare", f"**Rare** (in fewer than {pct(ra)} of draws)"),
    ]
    for pick, head in verdicts:
        g = links[pick.to_numpy()]
        names = "; ".join(_label(r) for r in g.itertuples()) if len(g) else "none"
        lines.append(f"- {head}: {names}")
    named = _names(links)
    if named:
        lines.append(f"- Patches named by the protected areas they hold: {named}")
    both = links[links["name_a"].fillna("").astype(bool) & links["name_b"].fillna("").astype(bool)] if named else links[:0]
    ranked = summary.get("links_ranked")
    for r in both.itertuples():  # the links between protected areas: the ones a reader looks for first
        lines.append(
            f"- Between protected areas, {_label(r)} ({_areas(r.name_a)} – {_areas(r.name_b)}): "
            f"**{r.robustness}**, in {r.share * 100:.0f} % of draws, rank {r.rank_median:g} "
            f"({r.rank_p05:g}–{r.rank_p95:g})" + (f" of about {ranked:g}" if ranked else "")
        )
    cq = summary.get("current_quantiles")
    if cq:
        lines.append(
            f"- **Current (circuit)** per cell over the draws: `current_quantiles.tif` (bands median, 5 %, 95 %). "
            f"Where the median current is in its top 10 % ({cq['top_cells']:,} cells), the 5–95 % range is typically "
            f"{cq['relative_range_median'] * 100:.0f} % of the median."
        )
    lines.append("")
    if map_path:
        lines += [f"![Corridor frequency and links by robustness]({map_path})", ""]
    lines += [
        (
            "cwd is in the cost units of each draw's resistance, so a draw with a larger maximum resistance or "
            "another shape scales it: compare a link's rank across draws, its cwd only within one."
        ),
        "",
        "| link | share of draws | class | in base run | cwd median (5–95 %) | rank median (5–95 %) |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for r in links.sort_values(["share", "cwd_median"], ascending=[False, True]).itertuples():
        lines.append(
            f"| {_label(r)} | {r.share:.2f} | {r.robustness} | {'yes' if r.in_base else 'no'} | "
            f"{r.cwd_median:,.0f} ({r.cwd_p05:,.0f}–{r.cwd_p95:,.0f}) | "
            f"{r.rank_median:g} ({r.rank_p05:g}–{r.rank_p95:g}) |"
        )
    return "\n".join(lines) + "\n"


def _draw_map(out: Path, links_path: Path) -> Path | None:
    """Corridor frequency under the links coloured by robustness (PNG), or None without the raster."""
    tif = out / "corridor_frequency.tif"
    if not tif.is_file():
        return None
    import matplotlib

    import geopandas as gpd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.colors import ListedColormap

    import rasterio

    from leopardgeo.report.maps import add_scale_bar
    from leopardgeo.stages.graph import redundant_links

    with rasterio.open(tif) as src:
        freq = src.read(1, masked=True)
        b = src.bounds
    gdf = gpd.read_file(links_path, layer="ensemble_links")
    fig, ax = plt.subplots(figsize=(8.5, 7.5), dpi=110)
    # a grey ramp under the class colours (green / orange / red), which a colour ramp would hide
    greys = ListedColormap(plt.get_cmap("Greys")(np.linspace(0.05, 0.75, 256)))
    im = ax.imshow(np.ma.masked_where(freq <= 0, freq), extent=(b.left, b.right, b.bottom, b.top), cmap=greys,
                   vmin=0, vmax=1, interpolation="nearest")  # fmt: skip
    fig.colorbar(im, ax=ax, shrink=0.7, label="share of draws with a corridor in the cell")
    # planar links that run around a third patch's region (a cheaper chain joins their patches) are drawn apart
    cwd = gdf["cwd_median"] if "cwd_median" in gdf.columns else gdf.get("base_cwd")
    detour = redundant_links(gdf["patch_a"], gdf["patch_b"], cwd.astype(float)) if cwd is not None else np.zeros(len(gdf), bool)
    if detour.any():
        gdf[detour].plot(ax=ax, color="#8c8c8c", linewidth=0.7, linestyle=":",
                         label=f"detour (cheaper via other patches) ({int(detour.sum())})")  # fmt: skip
    for cls, colour in _CLASS_COLOURS.items():
        sub = gdf[(gdf["robustness"] == cls).to_numpy() & ~detour]
        if len(sub):
            sub.plot(ax=ax, color=colour, linewidth=2.2, label=f"{cls} ({len(sub)})",
                     path_effects=[patheffects.withStroke(linewidth=3.6, foreground="white")])  # fmt: skip
    ax.legend(loc="lower right", fontsize=8, title="links")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Resistance ensemble: corridor frequency and link robustness")
    add_scale_bar(ax)
    maps = out / "maps"
    maps.mkdir(exist_ok=True)
    path = maps / "ensemble_corridors.png"
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def write_ensemble_report(out_dir: str | Path, *, maps: bool = True) -> Path:
    """Write ``ensemble_report.md`` (and its map) from an ensemble's outputs in ``out_dir``.

    Raises
    ------
    DataError
        If the folder holds no ensemble outputs.
    """
    out = Path(out_dir)
    csv, js = out / "ensemble_links.csv", out / "ensemble.json"
    if not csv.is_file() or not js.is_file():
        msg = f"{str(out)!r}: expected the outputs of `leopardgeo ensemble` (ensemble_links.csv, ensemble.json). Run it first."
        raise DataError(msg)
    links = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    for c in ("name_a", "name_b"):
        links[c] = links[c].fillna("").astype(str)
    summary = json.loads(js.read_text())
    png = _draw_map(out, out / "ensemble.gpkg") if maps else None
    rel = png.relative_to(out).as_posix() if png else None
    text = "# Resistance ensemble\n\n" + ensemble_markdown(links, summary, map_path=rel)
    path = out / "ensemble_report.md"
    path.write_text(text)
    return path
