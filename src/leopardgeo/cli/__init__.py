"""The ``leopardgeo`` command line: a thin click layer over the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

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

    Writes leopardgeo.gpkg (study_area, borders, protected_areas, patches),
    suitability.tif, resistance.tif, patches.tif and run_config.toml to the
    output folder, then prints patches and area by country.

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
    con.print(f"Outputs written to {result.out_dir}/")


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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="leopardgeo")
