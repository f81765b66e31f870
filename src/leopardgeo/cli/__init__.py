"""The ``leopardgeo`` command line: a thin click layer over the library."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from leopardgeo.cli.options import debug_option, executor_options, out_option, overwrite_option, verbosity_options
from leopardgeo.core.errors import LeopardGeoError
from leopardgeo.core.version import __version__

__all__ = ["cli", "main"]


from leopardgeo.cli.printing import (  # the rich tables each command prints
    _console,
    _print_capacity,
    _print_crossborder,
    _print_findings,
    _print_link_table,
    _print_links,
    _print_run_summary,
    _print_sites,
    _print_summary,
)


def _keep_unwrapped(help_text: str | None) -> str | None:
    r"""Turn the two characters ``\b`` on a line of their own into click's "do not rewrap" marker.

    Docstrings here are raw strings (ruff D301), so the ``\b`` that tells click
    to keep an example block as written arrives as a backslash and a ``b``.
    """
    return help_text.replace("\\b\n", "\b\n") if help_text else help_text


class _Command(click.Command):
    r"""A command whose help keeps its ``\b`` example blocks unwrapped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _keep_unwrapped(self.help)


class _Group(click.Group):
    """Turns a LeopardGeoError into one readable line (``--debug`` shows the traceback)."""

    command_class = _Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _keep_unwrapped(self.help)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeopardGeoError as exc:
            if ctx.meta.get("leopardgeo.debug"):
                raise
            msg = f"{type(exc).__name__}: {exc}"
            raise click.ClickException(msg) from exc
        except OSError as exc:  # a file-system error no guard foresaw: one line naming the file, not a traceback
            if ctx.meta.get("leopardgeo.debug"):
                raise
            from leopardgeo.io import output_errors

            try:
                with output_errors(exc.filename or "?"):
                    raise exc
            except LeopardGeoError as clean:
                msg = f"{type(clean).__name__}: {clean}"
                raise click.ClickException(msg) from exc


def _setup_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-2, min(verbosity, 2)), logging.DEBUG
    )
    con = _console(stderr=True)
    if con.is_terminal:
        handler: logging.Handler = RichHandler(show_path=False, show_time=False, console=con)
        fmt = "%(message)s"
    else:  # a pipe or a file: plain lines, not padded to the console width
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(message)s"
    logging.basicConfig(level=level, handlers=[handler], format=fmt, force=True)
    logging.captureWarnings(True)


def _spinner(label: str, *, show: bool) -> Any:
    """A rich spinner with elapsed time on stderr while a one-step command works (or nothing)."""
    import contextlib

    return _console(stderr=True).status(f"{label}...") if show else contextlib.nullcontext()


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
      leopardgeo report out               # report.html, report.md, summary.json, maps
      leopardgeo metrics habitat.gpkg --out m   # PC, dPC... of your own habitat polygons
    """
    ctx.meta["leopardgeo.debug"] = debug
    ctx.obj = {"verbosity": verbose - quiet}
    _setup_logging(verbose - quiet)


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.option(
    "--recompute",
    is_flag=True,
    help="Compute every stage; by default, with --overwrite, stages an earlier run in the folder computed with the "
    "same settings and inputs are reused.",
)
@executor_options
@click.pass_context
def run(
    ctx: click.Context,
    config: Path | None,
    out: Path | None,
    overwrite: bool,
    recompute: bool,
    workers: int | None,
    scheduler: str | None,
    threads: int | None,
) -> None:
    r"""Run the pipeline on CONFIG (default: the embedded Amur study area).

    Writes leopardgeo.gpkg (study_area, borders, protected_areas, patches,
    graph_nodes, links, territories, ...), suitability.tif, resistance.tif,
    patches.tif, cwd.tif, allocation.tif, territories.tif, capacity.csv,
    capacity.json and run_config.toml to the output folder, then prints
    patches and area by country, the cheapest links and the territories by
    country.

    Parallel parts (territory replicates, simulation runs, ...) run on local
    threads, or with --workers / --scheduler on a Dask cluster; the outputs
    are the same either way.

    \b
    Examples:
      leopardgeo run --out out --overwrite
      leopardgeo run my_area.toml --workers 2          # a local Dask cluster of 2 processes
      leopardgeo run my_area.toml --scheduler tcp://10.0.0.5:8786
    """
    from leopardgeo.runner.pipeline import run as run_pipeline
    from leopardgeo.runner.pipeline import summary_table
    from leopardgeo.runner.registry import demo_config, load_config

    cfg = load_config(config, over=_base_config(out or Path("out"))) if config else demo_config()
    cfg = _with_executor(cfg, workers=workers, scheduler=scheduler, threads=threads)
    quiet = ctx.obj["verbosity"] < 0
    result = run_pipeline(
        cfg,
        out_dir=out if out is not None else Path(cfg.output.dir or "out"),
        overwrite=overwrite or cfg.output.overwrite,
        progress=not quiet and sys.stderr.isatty(),
        recompute=recompute,
    )
    if not quiet:
        _print_summary(summary_table(result.patches), result)
        if result.reused:
            _console().print(f"Reused from the earlier run: {', '.join(result.reused)} (--recompute computes everything).")


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.option("--draws", type=click.IntRange(min=1), default=None, help="Draws (default: [ensemble] draws).")
@click.option("--no-maps", is_flag=True, help="Do not draw the report's map.")
@executor_options
@click.pass_context
def ensemble(
    ctx: click.Context,
    config: Path | None,
    out: Path | None,
    overwrite: bool,
    draws: int | None,
    no_maps: bool,
    workers: int | None,
    scheduler: str | None,
    threads: int | None,
) -> None:
    r"""Run a resistance ensemble on CONFIG: which corridors are robust to the resistance guess.

    Draws the parameters [ensemble] varies (max_resistance, shape_c,
    barrier_penalty_factor, coefficient_se, or a table), runs resistance and
    the stages [ensemble] stages names for each draw, and writes
    ensemble_links.csv (share of draws, class, cwd / rank / score median and
    5-95 %), ensemble.gpkg (styled), corridor_frequency.tif,
    ensemble_draws.csv, ensemble.json and ensemble_report.md.  An interrupted
    ensemble resumes from the draws in OUT/ensemble_draws.  Without CONFIG:
    the demo with max_resistance in [50, 200], shape_c in [4, 12] and
    illustrative standard errors on the forest and elevation coefficients.

    \b
    Examples:
      leopardgeo ensemble --out ens --draws 200 --workers 2
      leopardgeo ensemble my_area.toml --out ens --scheduler tcp://10.0.0.5:8786
    """
    import dataclasses as dc

    from leopardgeo.config.ensemble import EnsembleConfig
    from leopardgeo.report.ensemble import write_ensemble_report
    from leopardgeo.runner.ensemble import run_ensemble
    from leopardgeo.runner.registry import demo_config, load_config

    if config:
        cfg = load_config(config, over=demo_config())
    else:
        cfg = demo_config()
        # illustrative ranges and standard errors (modelled, not published): see docs/parallel.md
        se = {"forest": 0.75, "elevation_km": 0.5}
        demo = EnsembleConfig(max_resistance=(50.0, 200.0), shape_c=(4.0, 12.0), coefficient_se=se)
        cfg = cfg.replace(ensemble=demo)
    if draws is not None:
        cfg = cfg.replace(ensemble=dc.replace(cfg.ensemble, draws=draws))
    cfg = _with_executor(cfg, workers=workers, scheduler=scheduler, threads=threads)
    out_dir = out if out is not None else Path("out_ensemble")
    quiet = ctx.obj["verbosity"] < 0
    show = not quiet and sys.stderr.isatty()
    if show:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("draws"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("draws", total=cfg.ensemble.draws)
            res = run_ensemble(cfg, out_dir, overwrite=overwrite, progress=lambda d, n: bar.update(task, completed=d))
    else:
        res = run_ensemble(cfg, out_dir, overwrite=overwrite)
    report = write_ensemble_report(out_dir, maps=not no_maps)
    if not quiet:
        counts = res.links["robustness"].value_counts()
        _console().print(
            f"{len(res.draws)} draws in {res.elapsed_s:.1f} s"
            + (f" ({res.resumed} resumed)" if res.resumed else "")
            + f": {counts.get('robust', 0)} robust, {counts.get('sensitive', 0)} sensitive, {counts.get('rare', 0)} rare links. "
            + f"Report: {report}"
        )


def _with_executor(cfg: Any, **options: Any) -> Any:
    """``cfg`` with the command line's executor options (``--workers`` replaces a config's scheduler, and back)."""
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return cfg
    if given.get("workers") is not None and given.get("scheduler") is not None:
        msg = "--workers and --scheduler: expected one of them (a local cluster, or a running one to join). Remove one."
        raise click.UsageError(msg)
    ex = dataclasses.asdict(cfg.executor) | given
    if "workers" in given:
        ex["scheduler"] = None
    if "scheduler" in given:
        ex["workers"] = None
    return cfg.replace(executor=type(cfg.executor)(**ex))


@cli.command()
@click.argument("ini", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@overwrite_option
@click.pass_context
def circuitscape(ctx: click.Context, ini: Path, overwrite: bool) -> None:
    r"""Run a Circuitscape .ini file (raster pairwise, advanced, one-to-all, all-to-one; network pairwise).

    Reads the file's keys as Circuitscape does and writes Circuitscape's
    outputs after its output_file prefix (BASE_resistances.out,
    BASE_cum_curmap.asc, BASE_curmap_1_2.asc, ...).  A key leopardgeo does not
    know or implement is an error naming it.  See docs/circuit.md.

    \b
    Example:
      leopardgeo circuitscape my_project.ini --overwrite
    """
    from leopardgeo.runner.circuitscape import run_circuitscape

    written = run_circuitscape(ini, overwrite=overwrite)
    if ctx.obj["verbosity"] >= 0:
        con = _console()
        if not written:
            con.print("No outputs asked for (write_cur_maps, write_volt_maps, ... are all False).")
        for f in written:
            con.print(f"wrote {f}")


def _base_config(out_dir: Path) -> Any:
    """What a partial config completes: the effective config of the run in ``out_dir``, else the demo's."""
    from leopardgeo.runner.registry import demo_config, load_config

    earlier = out_dir / "run_config.toml"
    return load_config(earlier) if earlier.is_file() else demo_config()


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@out_option
@overwrite_option
@click.option(
    "--resistance",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Run on this resistance GeoTIFF instead of CONFIG (projected, metres; read band by band; needs --out).",
)
@click.option(
    "--source",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --resistance: source strengths on its grid (default: 1 / resistance, Omniscape's source_from_resistance).",
)
@click.option("--radius-m", type=float, default=None, help="Window radius in metres (default: [omniscape] radius_m, 10 km).")
@click.option("--block-size", type=int, default=None, help="Odd block size in cells (default: [omniscape] block_size, 9).")
@click.option("--source-threshold", type=float, default=None, help="Sources below this are 0 (with --resistance: 0).")
@click.option(
    "--condition",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Conditional connectivity: a raster of the condition at the sources ([omniscape] condition1); "
    "a target is connected only to sources whose condition matches its own.",
)
@click.option(
    "--condition-future",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --condition: the condition at the targets (Omniscape's compare_to_future).",
)
@click.option(
    "--comparison",
    type=click.Choice(["within", "equal"]),
    default=None,
    help="With --condition: within (source - target in --condition-range) or equal (default: within).",
)
@click.option(
    "--condition-range",
    type=(float, float),
    default=None,
    help="With --comparison within: LOWER UPPER bounds of source - target (default: 0 0).",
)
@executor_options
@click.pass_context
def omniscape(
    ctx: click.Context,
    config: Path | None,
    out: Path | None,
    overwrite: bool,
    resistance: Path | None,
    source: Path | None,
    radius_m: float | None,
    block_size: int | None,
    source_threshold: float | None,
    condition: Path | None,
    condition_future: Path | None,
    comparison: str | None,
    condition_range: tuple[float, float] | None,
    workers: int | None,
    scheduler: str | None,
    threads: int | None,
) -> None:
    r"""Omnidirectional connectivity (Omniscape): moving-window circuits, no patches needed.

    Without --resistance: runs the stages Omniscape needs (inputs, habitat,
    resistance) of CONFIG (default: the embedded Amur study area, sources
    from the habitat suitability) with [omniscape] on, and writes
    omniscape_current.tif, omniscape_flow_potential.tif,
    omniscape_normalized.tif (styled for QGIS) and omniscape.json into the run
    folder.  With --resistance (and --source): the same maps of those
    GeoTIFFs, read band by band, written into --out all or nothing.  Bands of
    windows run on local threads, or with --workers / --scheduler on a Dask
    cluster; the maps are the same either way.  Conventions and options:
    docs/circuit.md.

    \b
    Examples:
      leopardgeo omniscape --out out_omni --overwrite
      leopardgeo omniscape --resistance r.tif --source s.tif --radius-m 5000 --block-size 5 --out omni
      leopardgeo omniscape --resistance r.tif --condition t.tif --condition-range -1 1 --out omni
    """
    import dataclasses

    from leopardgeo.core.errors import ConfigError
    from leopardgeo.core.executor import ExecutorConfig, get_executor

    given = {"radius_m": radius_m, "block_size": block_size, "source_threshold": source_threshold}
    over: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if condition is None and (condition_future is not None or comparison is not None or condition_range is not None):
        msg = "--condition-future / --comparison / --condition-range: expected --condition as well, found none. Add --condition."
        raise ConfigError(msg)
    if condition is not None:  # files named on the command line: absolute, whatever folder the config is in
        over |= {"conditional": True, "condition1": str(condition.resolve())}
        over["condition1_future"] = None if condition_future is None else str(condition_future.resolve())
        over["comparison1"] = comparison or "within"
        if condition_range is not None:
            over["condition1_lower"], over["condition1_upper"] = condition_range
    if resistance is None:
        if source is not None:
            msg = "--source: expected it with --resistance, found it alone. Give --resistance too, or neither."
            raise ConfigError(msg)

        def edit(cfg: Any) -> Any:
            cfg = _with_executor(cfg, workers=workers, scheduler=scheduler, threads=threads)
            return cfg.replace(omniscape=dataclasses.replace(cfg.omniscape, **over))

        targets = ("patches", "omniscape")  # the patches outline the report's map
        run = _run_stage(
            ctx, config, out, overwrite, targets, ("omniscape.json",), "Omniscape maps", enable=("omniscape",), edit=edit
        )
        written = [run.out_dir / n for n in ("omniscape_current.tif", "omniscape.json")]
    else:
        from leopardgeo.runner.omniscape import run_omniscape_files
        from leopardgeo.stages.omniscape import OmniscapeConfig, OmniscapeSource

        if out is None or config is not None:
            msg = "--resistance: expected an output folder (--out) and no CONFIG, found " + (
                "no --out." if out is None else f"CONFIG {config}."
            )
            raise ConfigError(msg)
        kw: dict[str, Any] = {"source_threshold": 0.0, **over}  # Omniscape's default for a source file: every source > 0
        if source is None:
            kw["source"] = OmniscapeSource.RESISTANCE
        cfg = OmniscapeConfig(**kw)
        with get_executor(ExecutorConfig(), workers=workers, scheduler=scheduler, threads=threads) as ex:
            written = run_omniscape_files(resistance, out_dir=out, cfg=cfg, source=source, overwrite=overwrite, executor=ex)
    if ctx.obj["verbosity"] >= 0:
        _console().print("Written: " + ", ".join(str(p) for p in written))


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
    from leopardgeo.core.errors import OutputError, OutputExistsError
    from leopardgeo.runner.registry import config_template

    if path.exists() and not overwrite:
        msg = f"{str(path)!r} exists; expected a new file. Pass --overwrite to replace it."
        raise OutputExistsError(msg)
    from leopardgeo.io import output_errors

    if not path.parent.is_dir():
        msg = f"{str(path)!r}: expected an existing folder for the config, found no folder {str(path.parent)!r}. Create it first."
        raise OutputError(msg)
    with output_errors(path):
        path.write_text(config_template(relative_to=path.parent), encoding="utf-8")
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
@click.option("--top", type=int, default=20, show_default=True, help="Rows to print (all rows go to the files).")
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
@click.option("--top", type=int, default=20, show_default=True, help="Rows to print (all rows go to the files).")
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
@click.option("--top", type=int, default=20, show_default=True, help="Rows to print (all rows go to the files).")
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
@click.option("--top", type=int, default=20, show_default=True, help="Patches to print (all rows go to the files).")
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
@click.option("--top", type=int, default=10, show_default=True, help="Nodes to print (all rows go to the files).")
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


@dataclasses.dataclass(frozen=True)
class _StageRun:
    out_dir: Path
    overwrite: bool
    quiet: bool
    result: Any


def _fmt_num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _patch_label(d: dict, p: Any) -> str:
    n = str((d.get("patch_names") or {}).get(str(p), "")).split(";")[0].strip()
    return f"{p} ({n})" if n and not n.startswith("patch ") else str(p)


def _patch_list(d: dict) -> str:
    cut = [f"{_patch_label(d, p)} isolated" for p in d.get("newly_isolated") or []]
    cut += [f"{_patch_label(d, p)} cut in two" for p in d.get("patches_split") or []]
    return "; ".join(cut) or "none"


def _worst_link(d: dict) -> str:
    w = d.get("most_changed_link")
    if not w:
        return "none"
    link = f"{_patch_label(d, w['patch_a'])}–{_patch_label(d, w['patch_b'])}"
    return f"{link} lost" if w["status"] == "lost" else f"{link} costs ×{w['cwd_ratio']:.2f}"


def _print_comparisons(con: Any, docs: list[dict]) -> None:
    """One row per scenario: what a manager asks first (connectivity, links, isolation, leopards reachable)."""
    from rich.table import Table

    t = Table(title="Scenarios compared with the baseline run", title_justify="left")
    for col in ("scenario", "PC change", "EC change", "links lost / costlier / merged / gained", "most affected link",
                "patches cut off", "adults reachable from the source", "sites cut off"):  # fmt: skip
        t.add_column(col, justify="left" if col in ("scenario", "most affected link", "patches cut off") else "right")
    for d in docs:
        name = d.get("scenario", "") + (" (illustrative)" if d.get("illustrative") else "")
        pc, ec = d.get("PC_change_pct"), d.get("EC_ha_change_pct")
        cap = f"{_fmt_num(d.get('capacity_reachable_before'))} → {_fmt_num(d.get('capacity_reachable_after'))}"
        t.add_row(
            name,
            "—" if pc is None else f"{pc:+.1f} %",
            "—" if ec is None else f"{ec:+.1f} %",
            f"{d.get('links_lost', 0)} / {d.get('links_lengthened', 0)} / {d.get('links_merged', 0)} / "
            f"{d.get('links_gained', 0)}",
            _worst_link(d),
            _patch_list(d),
            cap,
            ", ".join(str(p) for p in d.get("sites_disconnected") or []) or "none",
        )
    con.print(t)
    con.print(
        "PC (probability of connectivity) and EC (equivalent connected area) count the habitat a leopard can reach, "
        "inside patches as well as between them, so a costlier route between two large patches can move them little: "
        "read the links too. costlier: the cheapest path costs more (×: cost after / before; links_change.csv). "
        "merged: the two patches became one (PC / EC then count them as one block of habitat, which alone can move them "
        "by tens of per cent). gained: a new neighbour after paths reroute, usually long. "
        "Illustrative scenarios use made-up geometry to show the method."
    )


def _print_link_changes(con: Any, links: Any, top: int) -> None:
    from rich.table import Table

    changed = links[links["status"] != "unchanged"]
    if not len(changed):
        con.print("No link changed.")
        return
    t = Table(title="Links that changed (patch ids as in the baseline)", title_justify="left")
    for col in ("link", "status", "cost before", "cost after", "ratio"):
        t.add_column(col, justify="left" if col in ("link", "status") else "right")
    for _, r in changed.head(top).iterrows():
        t.add_row(f"{int(r['patch_a'])}–{int(r['patch_b'])}", str(r["status"]), _fmt_num(r["cwd_before"]),
                  _fmt_num(r["cwd_after"]), _fmt_num(r["cwd_ratio"]))  # fmt: skip
    con.print(t)


@cli.command()
@click.argument("base", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("scenario", required=False)
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the comparison of two folders here (tables, difference maps, the `changes` layer).")
@overwrite_option
@click.option("--top", type=int, default=20, show_default=True, help="Changed links to print.")
@click.pass_context
def compare(ctx: click.Context, base: Path, scenario: str | None, out: Path | None, overwrite: bool, top: int) -> None:
    r"""Compare a scenario with its baseline run.

    BASE alone: every scenario the run holds (from [[scenarios]]), one line each.
    BASE NAME: that scenario of BASE (BASE/scenarios/NAME).  BASE FOLDER: two run
    folders on the same grid; with --out the comparison is written there
    (compare.json, links_change.csv, patches_change.csv, sites_change.csv,
    crossings.csv, current_diff.tif, corridors_change.tif, and leopardgeo.gpkg
    with the styled `changes` layer).

    \b
    Examples:
      leopardgeo compare out
      leopardgeo compare out new_road
      leopardgeo compare out_today out_fence --out cmp --overwrite
    """
    import pandas as pd

    from leopardgeo.runner.compare import compare_folders, scenario_folder, stored_comparisons

    con = _console()
    quiet = ctx.obj["verbosity"] < 0
    if scenario is None:
        docs = stored_comparisons(base)
        if not docs:
            msg = f"{str(base)!r} holds no scenarios; add [[scenarios]] to the config and rerun, or give two folders."
            raise click.ClickException(msg)
        if not quiet:
            _print_comparisons(con, docs)
        return
    folder = Path(scenario)
    if not folder.is_dir() or folder.resolve() == base.resolve():
        folder = scenario_folder(base, scenario)
        if out is None:
            import json

            doc = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
            if not quiet:
                _print_comparisons(con, [doc])
                _print_link_changes(con, pd.read_csv(folder / "links_change.csv"), top)
                con.print(f"Files: {folder}")
            return
    comp = compare_folders(base, folder, out, overwrite=overwrite)
    if not quiet:
        _print_comparisons(con, [{"scenario": folder.name, **comp.summary}])
        _print_link_changes(con, comp.links, top)
        if out is not None:
            con.print(f"Written: {out}")


@cli.command("scenarios")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--config", "config", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="A file with [[scenarios]] (default: the run's own run_config.toml).")
@click.option("--demo", is_flag=True, help="The demo's illustrative scenarios (data/amur/scenarios.toml).")
@click.option("--only", multiple=True, help="Run only this scenario (repeatable).")
@overwrite_option
@click.pass_context
def scenarios_command(
    ctx: click.Context, run_dir: Path, config: Path | None, demo: bool, only: tuple[str, ...], overwrite: bool
) -> None:
    r"""Run [[scenarios]] on the finished run in RUN_DIR, reusing its stages.

    Each scenario reruns only the stages its edits touch (a road's penalty:
    links and what follows; habitat loss: patches and what follows) and is
    written to RUN_DIR/scenarios/NAME with its comparison; then the scenarios
    are listed as by `leopardgeo compare RUN_DIR`.

    \b
    Examples:
      leopardgeo scenarios out --config scenarios.toml --overwrite
      leopardgeo scenarios out --demo --overwrite
    """
    from leopardgeo.runner.compare import stored_comparisons
    from leopardgeo.runner.interventions import rerun_scenarios
    from leopardgeo.runner.registry import load_config

    if demo:
        if config is not None:
            msg = "give either --config or --demo"
            raise click.UsageError(msg)
        from leopardgeo.core.data import demo_data_dir

        config = demo_data_dir() / "scenarios.toml"
    todo = None
    if config is not None:
        todo = load_config(config, over=load_config(run_dir / "run_config.toml")).scenarios
    if only:
        pool = todo if todo is not None else load_config(run_dir / "run_config.toml").scenarios
        missing = sorted(set(only) - {s.name for s in pool})
        if missing:
            msg = f"--only {missing}: expected names of [[scenarios]], found {[s.name for s in pool]}."
            raise click.ClickException(msg)
        todo = tuple(s for s in pool if s.name in only)
    rerun_scenarios(run_dir, scenarios=todo, overwrite=overwrite)
    if ctx.obj["verbosity"] >= 0:
        _print_comparisons(_console(), stored_comparisons(run_dir))


@cli.command("rank")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--candidates", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Vector file of candidates: points / lines (crossing structures) or polygons (restorations), any CRS.")
@click.option("--layer", default=None, help="Layer of --candidates.")
@click.option("--barriers", "n_barriers", type=int, default=None,
              help="Use the Barrier Mapper's N best sites as restoration candidates (circles of their radius).")
@click.option("--scenario", "scenario_name", default=None,
              help="Rank on top of this [[scenarios]] entry of the run (e.g. the road the underpasses cross).")
@click.option("--name-field", default=None, help="Column naming each candidate.")
@click.option("--cost-field", default=None, help="Column with each candidate's cost (ranks per unit of cost).")
@click.option("--per", type=click.Choice(["structure", "km2", "cost"]), default=None,
              help="Unit of the gain (default: cost with --cost-field, else km2 for polygons, structure for crossings).")
@click.option("--method", type=click.Choice(["greedy", "exhaustive"]), default="greedy", show_default=True)
@click.option("--metric", type=click.Choice(["PC", "EC_ha"]), default="PC", show_default=True)
@click.option("--width", "width_m", type=float, default=0.0, help="Width of each crossing structure, metres.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for ranking.csv and candidates.gpkg (default: RUN_DIR/ranking).")
@overwrite_option
@click.pass_context
def rank_command(ctx: click.Context, run_dir: Path, candidates: Path | None, layer: str | None, n_barriers: int | None,
                 scenario_name: str | None, name_field: str | None, cost_field: str | None, per: str | None, method: str,
                 metric: str, width_m: float, out: Path | None, overwrite: bool) -> None:  # fmt: skip
    r"""Rank candidate crossing structures or restorations of the run in RUN_DIR by connectivity gained.

    Each candidate set the ranking needs is burned into the run's resistance
    (on top of --scenario's edits), the links and metrics are rebuilt, and the
    candidates are ranked by PC (or EC) gained per structure, km² or cost;
    patches stay as they are.

    \b
    Examples:
      leopardgeo rank out --barriers 5
      leopardgeo rank out --scenario new_road --candidates underpasses.gpkg --cost-field cost_usd
    """
    import geopandas as gpd

    from leopardgeo.io import OutputWriter, read_vector
    from leopardgeo.runner.interventions import barrier_candidates, candidate_edits, load_context, rank_candidates

    if (candidates is None) == (n_barriers is None):
        msg = "give either --candidates FILE or --barriers N"
        raise click.UsageError(msg)
    config, base = load_context(run_dir)
    grid = base["inputs"].grid
    if n_barriers is not None:
        if base.get("barriers") is None:
            msg = "the run has no Barrier Mapper results; run with [barrier_mapper] enabled"
            raise click.ClickException(msg)
        frame = barrier_candidates(base["barriers"], grid, n=n_barriers)
        name_field = "name"
    else:
        frame = read_vector(candidates, layer, grid=grid, what="candidates")
    kind = "restoration" if set(frame.geom_type.str.removeprefix("Multi")) == {"Polygon"} else "gap"
    edits = candidate_edits(frame, kind=kind, name_field=name_field, width_m=width_m)
    scenario = None
    if scenario_name is not None:
        scenario = next((s for s in config.scenarios if s.name == scenario_name), None)
        if scenario is None:
            msg = f"--scenario {scenario_name!r}: expected one of {[s.name for s in config.scenarios]}."
            raise click.ClickException(msg)
    unit = per or ("cost" if cost_field else "km2" if kind == "restoration" else "structure")
    costs = None
    if unit == "cost":
        if not cost_field or cost_field not in frame.columns:
            msg = "--per cost needs --cost-field naming a column of the candidates"
            raise click.UsageError(msg)
        costs = {e.name: float(v) for (e, _), v in zip(edits, frame[cost_field], strict=True)}
    table = rank_candidates(config, base, edits, scenario=scenario, method=method, per=unit, costs=costs, metric=metric)
    folder = out or run_dir / "ranking"
    layer_out = gpd.GeoDataFrame(
        table.merge(_candidate_frame(edits), on="candidate"), geometry="geometry", crs=grid.crs
    )
    with OutputWriter(folder, overwrite=overwrite, names=["ranking.csv", "candidates.gpkg"]) as w:
        w.text("ranking.csv", table.to_csv(index=False, float_format="%.6g"))
        from leopardgeo.io import write_layers

        write_layers(w.path("candidates.gpkg"), {"candidates": layer_out})
    if ctx.obj["verbosity"] >= 0:
        from rich.table import Table

        t = Table(title=f"Candidates ranked by {metric} gained per {unit} ({method})", title_justify="left")
        for col in ("rank", "candidate", f"{metric} gain", "per unit", f"{metric} with it and those above"):
            t.add_column(col, justify="left" if col == "candidate" else "right")
        for _, r in table.iterrows():
            t.add_row(str(r["rank"]), str(r["candidate"]), _fmt_num(r["gain"]), _fmt_num(r["gain_per_unit"]),
                      _fmt_num(r["value_after"]))  # fmt: skip
        _console().print(t)
        _console().print(f"Written: {folder / 'ranking.csv'}, {folder / 'candidates.gpkg'}")


def _candidate_frame(edits: Any) -> Any:
    """Candidate name and geometry of each edit, as a frame to join the ranking on."""
    import pandas as pd

    return pd.DataFrame({"candidate": [e.name for e, _ in edits], "geometry": [f.geometry.iloc[0] for _, f in edits]})


def _run_stage(
    ctx: click.Context,
    config: Path | None,
    out: Path | None,
    overwrite: bool,
    targets: tuple[str, ...],
    report_files: tuple[str, ...],
    what: str,
    *,
    enable: tuple[str, ...] = (),
    check: Callable[[Any], None] | None = None,
    edit: Callable[[Any], Any] | None = None,
) -> _StageRun:
    """Run the stage ``targets`` of CONFIG (default: the demo), with the config ``enable`` sections switched on.

    The runner resolves the targets (:func:`leopardgeo.runner.pipeline.run`): only the stages they need run.
    Into the folder of an earlier run, the stages of that run run too: unchanged ones are reused, those
    depending on a change are recomputed, so nothing the run holds is lost or left stale; CONFIG (if given)
    completes the run's effective config.  Refuses before any work when ``report_files`` of an earlier run are
    in the output folder and ``--overwrite`` was not given; ``edit`` may change the configuration and ``check``
    refuse it first.
    """
    from leopardgeo.core.errors import OutputExistsError
    from leopardgeo.runner.pipeline import run as run_pipeline
    from leopardgeo.runner.registry import load_config

    folder = out if out is not None else Path("out")
    base = _base_config(folder)
    cfg = load_config(config, over=base) if config else base
    cfg = cfg.replace(**{name: dataclasses.replace(getattr(cfg, name), enabled=True) for name in enable})
    if edit is not None:
        cfg = edit(cfg)
    if check is not None:
        check(cfg)
    quiet = ctx.obj["verbosity"] < 0
    out_dir = out if out is not None else Path(cfg.output.dir or "out")
    overwrite = overwrite or cfg.output.overwrite
    existing = [n for n in report_files if (out_dir / n).exists()]
    if existing and not overwrite:
        msg = f"{out_dir}: expected no earlier {what}, found {existing}. Pass --overwrite to replace them."
        raise OutputExistsError(msg)
    result = run_pipeline(
        cfg, out_dir=out_dir, overwrite=overwrite, progress=not quiet and sys.stderr.isatty(), targets=targets
    )
    return _StageRun(out_dir, overwrite, quiet, result)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="leopardgeo")
