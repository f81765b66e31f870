"""Commands that run analyses: ``run``, ``ensemble``, ``circuitscape``, ``omniscape``, ``init``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from leopardgeo.cli.app import _base_config, _run_stage, _with_executor, cli
from leopardgeo.cli.options import executor_options, out_option, overwrite_option
from leopardgeo.cli.printing import (  # the rich tables each command prints
    _console,
    _print_summary,
)


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
