"""Commands for one output of a run: ``links``, ``report``, ``crossborder``, ``sites``, ``territories``, ``metrics``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from leopardgeo.cli.app import _base_config, _run_stage, _spinner, cli
from leopardgeo.cli.options import out_option, overwrite_option
from leopardgeo.cli.printing import (  # the rich tables each command prints
    _console,
    _print_capacity,
    _print_crossborder,
    _print_findings,
    _print_link_table,
    _print_links,
    _print_run_summary,
    _print_sites,
)

#: ``--top``: rows to print (0: none; a negative count would mean "all but the last")
_ROWS = click.IntRange(min=0)


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config whose [links] section to use (default: OUT_DIR/run_config.toml).",
)
@overwrite_option
@click.pass_context
def links(ctx: click.Context, out_dir: Path, config: Path | None, overwrite: bool) -> None:
    r"""Build the least-cost links of an earlier run in OUT_DIR (this stage alone).

    Reads resistance.tif, patches.tif and the patches layer, adds the links and
    graph_nodes layers to leopardgeo.gpkg, writes cwd.tif and allocation.tif.

    \b
    Example:
      leopardgeo links out --config knn.toml --overwrite
    """
    from leopardgeo.runner.pipeline import run_links
    from leopardgeo.runner.registry import load_config

    quiet = ctx.obj["verbosity"] < 0
    with _spinner("least-cost links", show=not quiet and sys.stderr.isatty()):
        graph, _ = run_links(out_dir, load_config(config, over=_base_config(out_dir)) if config else None, overwrite=overwrite)
    if not quiet:
        _print_links(_console(), graph)


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--top", type=_ROWS, default=20, show_default=True, help="Rows to print (all rows go to the files).")
@click.option("--no-maps", is_flag=True, help="Do not draw the PNG maps (faster; report.html then has no maps).")
@overwrite_option
@click.pass_context
def report(ctx: click.Context, out_dir: Path, top: int, no_maps: bool, overwrite: bool) -> None:
    r"""Report on the run in OUT_DIR: terminal tables, report.md, report.html, summary.json, CSV tables, maps.

    Prints the run summary and the least-cost links ranked by corridor score
    (from, to, cwd in cost-weighted metres, path km, cwd / Euclidean,
    countries, narrowest corridor width, effective resistance, pinch-point
    current), then the cross-border corridors and the border-fence scenario
    when the run has them.  Writes report.md, a self-contained report.html
    (maps embedded), summary.json (schema in docs/outputs.md), links.csv /
    .json, crossborder.csv / .json / .md and the maps as maps/<name>.png.
    Sections for territories / capacity and reintroduction sites appear when
    their files are in OUT_DIR.

    \b
    Example:
      leopardgeo report out --top 10 --overwrite
    """
    from leopardgeo.report.runreport import write_report

    quiet = ctx.obj["verbosity"] < 0
    from leopardgeo.report import read_capacity, sites_report, write_capacity_report, write_sites_report

    rep = write_report(out_dir, overwrite=overwrite, maps=not no_maps, progress=not quiet and sys.stderr.isatty())
    capacity = read_capacity(out_dir)
    sites = sites_report(out_dir) if (out_dir / "sites.csv").is_file() else None
    written = []
    if capacity is not None:
        written += write_capacity_report(capacity, out_dir, overwrite=overwrite)
    if sites is not None:
        written += write_sites_report(*sites, out_dir, overwrite=overwrite)
    if quiet:
        return
    con = _console()
    _print_run_summary(con, rep.summary)
    _print_findings(con, rep.headlines)
    table = rep.tables.get("links")
    if table is None:
        con.print("No least-cost links in this run: build them with `leopardgeo links OUT_DIR`.")
    else:
        _print_link_table(con, table, out_dir, top)
    if "crossborder" in rep.tables:
        _print_crossborder(con, rep.tables["crossborder"], rep.fence, top)
    if capacity is not None:
        _print_capacity(con, capacity, top)
    if sites is not None:
        _print_sites(con, *sites, top)
    con.print(f"Report: {out_dir / 'report.html'} (also report.md, summary.json)")
    if written:
        con.print("Also written: " + ", ".join(str(p) for p in written))
    tables = [n for n in ("links.csv", "crossborder.csv", "capacity.csv", "sites.csv") if (out_dir / n).is_file()]
    n_maps = sum(1 for k in rep.maps if not k.endswith(".png"))
    con.print(f"Tables: {', '.join(tables) or 'none'}; maps: {n_maps} PNG in {out_dir / 'maps'}")


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.option("--top", type=_ROWS, default=20, show_default=True, help="Rows to print (all rows go to the files).")
@click.pass_context
def crossborder(ctx: click.Context, config: Path | None, out: Path | None, overwrite: bool, top: int) -> None:
    r"""Evaluate the cross-border corridors of CONFIG (default: the embedded Amur study area).

    Runs the stages the evaluation needs (patches, territories, links,
    corridors, circuit, pinch points, metrics; not the barrier mapper), then
    the cross-border stage:
    border crossings, border permeability, the border-fence scenario of
    [crossborder] and the corridor scores.  Prints the ranked cross-border
    corridors and the fence's losses; writes the run's outputs plus
    crossborder.csv / .json / .md and border_permeability.png.

    \b
    Example:
      leopardgeo crossborder --out out_xb --overwrite
    """
    from leopardgeo.report import CROSSBORDER_FILES, crossborder_report, write_crossborder_report

    run = _run_stage(
        ctx,
        config,
        out,
        overwrite,
        ("crossborder", "scores"),
        CROSSBORDER_FILES,
        "cross-border report",
        enable=("links", "crossborder"),
    )
    table, fence, perm = crossborder_report(run.out_dir)
    written = write_crossborder_report(table, fence, perm, run.out_dir, overwrite=run.overwrite)
    if not run.quiet:
        con = _console()
        _print_links(con, run.result.graph)
        _print_crossborder(con, table, fence, top)
        con.print("Written: " + ", ".join(str(p) for p in written))


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.option("--top", type=_ROWS, default=20, show_default=True, help="Rows to print (all rows go to the files).")
@click.pass_context
def sites(ctx: click.Context, config: Path | None, out: Path | None, overwrite: bool, top: int) -> None:
    r"""Evaluate the reintroduction sites of CONFIG (default: the embedded Amur study area).

    Runs the stages the sites need (patches, territories, links, corridors,
    circuit, pinch points, metrics, corridor scores; not the barrier mapper or
    the cross-border evaluation), then the sites stage of [sites]:
    capacity, connection to the source population, add-patch gain, human
    pressure, score, rank stability and the population simulation.  Prints the ranked sites;
    writes the run's outputs (layer sites, sites.csv, sites.json) plus
    sites_report.csv / .json and sites.md.

    \b
    Example:
      leopardgeo sites --out out_sites --overwrite
    """
    from leopardgeo.core.errors import ConfigError
    from leopardgeo.report import SITES_REPORT_FILES, sites_report, write_sites_report

    def has_candidates(cfg: Any) -> None:
        if cfg.sites.candidates == "layer" and cfg.inputs.sites is None:
            msg = "[sites]: expected candidate sites, found none. Set [inputs] sites, [sites] candidates = 'auto' or a file."
            raise ConfigError(msg)

    run = _run_stage(
        ctx,
        config,
        out,
        overwrite,
        ("sites",),
        SITES_REPORT_FILES,
        "sites report",
        enable=("sites",),
        check=has_candidates,
    )
    table, doc, sim = sites_report(run.out_dir)
    written = write_sites_report(table, doc, sim, run.out_dir, overwrite=run.overwrite)
    if not run.quiet:
        con = _console()
        _print_sites(con, table, doc, sim, top)
        con.print("Written: " + ", ".join(str(p) for p in written))


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.option("--top", type=_ROWS, default=20, show_default=True, help="Patches to print (all rows go to the files).")
@click.pass_context
def territories(ctx: click.Context, config: Path | None, out: Path | None, overwrite: bool, top: int) -> None:
    r"""Pack territories and count the carrying capacity of CONFIG (default: the embedded Amur study area).

    Runs the stages packing needs (inputs, habitat, resistance, patches; no
    links, corridors or circuit), then packs female and male territories of
    [territories] on the patches.  Prints females, males and adults by
    country, protected area and patch (with the range over the replicates);
    writes the run's outputs (the territories layer, territories.tif,
    capacity.csv, capacity.json) plus capacity.md.

    \b
    Example:
      leopardgeo territories --out out_terr --overwrite
    """
    from leopardgeo.report import CAPACITY_FILES, read_capacity, write_capacity_report

    run = _run_stage(
        ctx,
        config,
        out,
        overwrite,
        ("territories",),
        CAPACITY_FILES,
        "capacity report",
        enable=("territories",),
    )
    table = read_capacity(run.out_dir)
    written = write_capacity_report(table, run.out_dir, overwrite=run.overwrite)
    if not run.quiet:
        con = _console()
        _print_capacity(con, table, top)
        con.print("Written: " + ", ".join(str(p) for p in written))


@cli.command("metrics")
@click.argument("polygons", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--layer", default=None, help="Layer of a multi-layer file (default: the first).")
@click.option("--id-field", default=None, help="Attribute with unique node ids (default: 1..n in file order).")
@click.option("--area-field", default=None, help="Attribute used as the node weight (default: geometry area, ha).")
@click.option(
    "--distance",
    type=click.Choice(["centroid", "edge", "least-cost"]),
    default="centroid",
    show_default=True,
    help="Centroid to centroid (point on surface when outside), edge to edge, or least cost over --resistance.",
)
@click.option(
    "--resistance",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Resistance raster for --distance least-cost.",
)
@click.option(
    "--max-distance",
    type=float,
    default=None,
    help="Threshold: link only pairs at most this far apart (m, or cost-weighted m). Default: every pair.",
)
@click.option(
    "--median-dispersal",
    type=float,
    default=11_000.0,
    show_default=True,
    help="Distance at which the dispersal probability is --probability (unit of the distance).",
)
@click.option("--probability", type=float, default=0.5, show_default=True, help="Dispersal probability at --median-dispersal.")
@click.option("--min-probability", type=float, default=None, help="Drop links with a lower probability (e.g. 0.01).")
@click.option("--landscape-area", type=float, default=None, help="A_L of PC and IIC (unit of the weight; default: sum).")
@click.option(
    "--links/--no-links", "links", default=None, help="Link metrics (dPC_link, dIIC_link); default: on up to 250,000 links."
)
@click.option(
    "--pair-probability-floor",
    type=float,
    default=None,
    help="Speed for a stated error on very large graphs: pairs less probable than this are not recomputed in dPC "
    "(the bound is printed and written). Default: exact.",
)
@click.option("--top", type=_ROWS, default=10, show_default=True, help="Nodes to print (all rows go to the files).")
@overwrite_option
@click.pass_context
def metrics_command(
    ctx: click.Context, polygons: Path, out: Path, layer: str | None, id_field: str | None, area_field: str | None,
    distance: str, resistance: Path | None, max_distance: float | None, median_dispersal: float, probability: float,
    min_probability: float | None, landscape_area: float | None, links: bool | None,
    pair_probability_floor: float | None, top: int, overwrite: bool,
) -> None:  # fmt: skip
    r"""Connectivity metrics of your own habitat polygons: PC, IIC, EC, dPC / dIIC and fractions, BC, link dPC.

    Every polygon of POLYGONS (any vector format, any CRS) is a node weighted
    by its area (or --area-field); links join the pairs within --max-distance,
    measured centroid to centroid, edge to edge or as least cost over a
    resistance raster; p = exp(-k d) with p = --probability at
    --median-dispersal.  Writes leopardgeo.gpkg (layers habitat_nodes and
    node_links, styled for QGIS), habitat_nodes.csv, node_links.csv and
    node_metrics.json to --out.

    \b
    Example:
      leopardgeo metrics habitat.gpkg --out habitat_metrics --distance edge \
          --max-distance 20000 --median-dispersal 11000 --min-probability 0.01
    """
    from leopardgeo.stages.nodes import polygon_metrics, write_polygon_metrics

    quiet = ctx.obj["verbosity"] < 0
    with _spinner("connectivity metrics", show=not quiet and sys.stderr.isatty()):
        result = polygon_metrics(
            polygons, layer=layer, id_field=id_field, area_field=area_field, distance=distance, resistance=resistance,
            max_distance=max_distance, median_distance=median_dispersal, probability=probability,
            min_probability=min_probability, landscape_area=landscape_area, links=links,
            pair_probability_floor=pair_probability_floor,
        )  # fmt: skip
        written = write_polygon_metrics(result, out, overwrite=overwrite)
    if quiet:
        return
    con = _console()
    s = result.summary
    con.print(
        f"{s['nodes']} nodes, {s['links']} links ({s['links_used']} used; {s['distance']} distance), "
        f"{s['components']} component(s): PC = {s['PC']:.6g}, IIC = {s['IIC']:.6g}, EC = {s['EC_ha']:,.1f}"
    )
    if s["link_metrics"] != "computed":
        con.print(f"link metrics {s['link_metrics']}")
    if s.get("pair_probability_floor") is not None:
        con.print(
            f"pair probability floor {s['pair_probability_floor']:g}: every dPC within "
            f"±{s['dPC_error_bound']:.2g} percentage points of the exact value"
        )
    cols = ["node_id", s["weight"], "dPC", "dPC_intra", "dPC_flux", "dPC_connector", "dIIC", "BCPC"]
    table = result.nodes[cols].sort_values("dPC", ascending=False).head(top)
    con.print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    con.print("Written: " + ", ".join(str(p) for p in written))
