"""The ``leopardgeo`` command line: a thin click layer over the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from leopardgeo import __version__
from leopardgeo.cli.options import debug_option, out_option, overwrite_option, verbosity_options
from leopardgeo.errors import LeopardGeoError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns a LeopardGeoError into one readable line (``--debug`` shows the traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeopardGeoError as exc:
            if ctx.meta.get("leopardgeo.debug"):
                raise
            msg = f"{type(exc).__name__}: {exc}"
            raise click.ClickException(msg) from exc


def _setup_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-2, min(verbosity, 2)), logging.DEBUG
    )
    handler = RichHandler(show_path=False, show_time=False, console=_console(stderr=True))
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    logging.captureWarnings(True)


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _show_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        from leopardgeo import show_versions

        click.echo(show_versions())
        ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="leopardgeo")
@click.option(
    "--show-versions",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_show_versions,
    help="Print the versions of leopardgeo and its libraries, then exit.",
)
@verbosity_options
@debug_option
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, debug: bool) -> None:
    r"""Territory and corridor analysis for the Amur leopard.

    \b
    Examples:
      leopardgeo run                      # the embedded Amur study area -> out/
      leopardgeo init my_area.toml        # a commented config to edit
      leopardgeo run my_area.toml --out results --overwrite
    """
    ctx.meta["leopardgeo.debug"] = debug
    ctx.obj = {"verbosity": verbose - quiet}
    _setup_logging(verbose - quiet)


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.pass_context
def run(ctx: click.Context, config: Path | None, out: Path | None, overwrite: bool) -> None:
    r"""Run the pipeline on CONFIG (default: the embedded Amur study area).

    Writes leopardgeo.gpkg (study_area, borders, protected_areas, patches,
    graph_nodes, links), suitability.tif, resistance.tif, patches.tif,
    cwd.tif, allocation.tif and run_config.toml to the output folder, then
    prints patches and area by country and the cheapest links.

    \b
    Example:
      leopardgeo run --out out --overwrite
    """
    from leopardgeo.config import demo_config, load_config
    from leopardgeo.pipeline import run as run_pipeline
    from leopardgeo.pipeline import summary_table

    cfg = load_config(config) if config else demo_config()
    quiet = ctx.obj["verbosity"] < 0
    result = run_pipeline(
        cfg,
        out_dir=out if out is not None else Path(cfg.output.dir or "out"),
        overwrite=overwrite or cfg.output.overwrite,
        progress=not quiet and sys.stderr.isatty(),
    )
    if not quiet:
        _print_summary(summary_table(result.patches), result)


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
    con.print(f"Outputs written to {result.out_dir}/")


def _print_connectivity(con: Any, result: Any) -> None:
    """One line each for the corridor, circuit, pinch-point and barrier stages that ran."""
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
    if result.barriers is not None and len(result.barriers.top):
        b = result.barriers.top.iloc[0]
        con.print(
            f"Best restoration site: link {b['patch_a']}-{b['patch_b']}, radius {b['radius_m']:,.0f} m, "
            f"saves {b['improvement_cwd']:,.0f} cost-weighted m ({b['pct_of_lcd']:.0f} % of the link)."
        )


def _print_links(con: Any, graph: Any) -> None:
    n_cross = sum(1 for *_, d in graph.edges(data=True) if ";" in str(d.get("countries", "")))
    con.print(
        f"Least-cost links: {graph.number_of_edges()} ({graph.graph.get('rule')} rule), "
        f"{n_cross} of them cross a national border."
    )
    if graph.graph.get("isolated"):
        con.print(f"Patches with no link (cut off by no data): {graph.graph['isolated']}")


@cli.command()
@click.argument("path", default="leopardgeo.toml", type=click.Path(dir_okay=False, path_type=Path))
@overwrite_option
def init(path: Path, overwrite: bool) -> None:
    r"""Write a commented config template to PATH (default leopardgeo.toml).

    The template describes the embedded Amur study area with every key, its
    default and the source of each default; edit it for your own data.

    \b
    Example:
      leopardgeo init my_area.toml && leopardgeo run my_area.toml
    """
    from leopardgeo.config import config_template
    from leopardgeo.errors import OutputExistsError

    if path.exists() and not overwrite:
        msg = f"{str(path)!r} exists; expected a new file. Pass --overwrite to replace it."
        raise OutputExistsError(msg)
    path.write_text(config_template(), encoding="utf-8")
    click.echo(f"wrote {path}")


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
def links(out_dir: Path, config: Path | None, overwrite: bool) -> None:
    r"""Build the least-cost links of an earlier run in OUT_DIR (this stage alone).

    Reads resistance.tif, patches.tif and the patches layer, adds the links and
    graph_nodes layers to leopardgeo.gpkg, writes cwd.tif and allocation.tif.

    \b
    Example:
      leopardgeo links out --config knn.toml --overwrite
    """
    from leopardgeo.config import load_config
    from leopardgeo.pipeline import run_links

    graph, _ = run_links(out_dir, load_config(config) if config else None, overwrite=overwrite)
    _print_links(_console(), graph)


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--top", type=int, default=20, show_default=True, help="Rows to print (all rows go to the files).")
@overwrite_option
def report(out_dir: Path, top: int, overwrite: bool) -> None:
    r"""Print the link table of OUT_DIR and write it as links.csv and links.json.

    Columns: from, to (patch id and protected areas in it), cwd (cost-weighted
    metres), path km, Euclidean km, cwd / Euclidean, cwd / path length,
    countries the path passes through and, when the later stages ran, the
    corridor's narrowest width (km), effective resistance (ohms) and pinch-point
    current (A); sorted by cwd.

    \b
    Example:
      leopardgeo report out --top 10
    """
    from rich.table import Table

    from leopardgeo.report import link_table, read_run_layer, write_link_table

    table = link_table(read_run_layer(out_dir, "links"), read_run_layer(out_dir, "graph_nodes"))
    written = write_link_table(table, out_dir, overwrite=overwrite)
    t = Table(title=f"Least-cost links in {out_dir} ({len(table)}, cheapest first)")
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
        t.add_row(
            f"{r.from_id} {r.from_name}".strip(),
            f"{r.to_id} {r.to_name}".strip(),
            f"{r.cwd:,.0f}",
            f"{r.path_km:,.1f}",
            "-" if r.cwd_to_euclid != r.cwd_to_euclid else f"{r.cwd_to_euclid:,.1f}",
            r.countries,
            *(fmt(c, getattr(r, c)) for c, _ in extra),
        )
    con = _console()
    con.print(t)
    con.print("Written: " + ", ".join(str(p) for p in written))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="leopardgeo")
