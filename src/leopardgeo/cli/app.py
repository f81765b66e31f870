"""The ``leopardgeo`` command group and what its commands share: error handling, logging, running stages."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from leopardgeo.cli.options import debug_option, verbosity_options
from leopardgeo.cli.printing import (  # the rich tables each command prints
    _console,
)
from leopardgeo.core.errors import LeopardGeoError
from leopardgeo.core.version import __version__


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


def _base_config(out_dir: Path) -> Any:
    """What a partial config completes: the effective config of the run in ``out_dir``, else the demo's."""
    from leopardgeo.runner.registry import demo_config, load_config

    earlier = out_dir / "run_config.toml"
    return load_config(earlier) if earlier.is_file() else demo_config()


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
