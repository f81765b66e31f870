"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

F = Callable[..., Any]


def verbosity_options(f: F) -> F:
    """Counted ``-v`` / ``-q``."""
    f = click.option("-q", "--quiet", count=True, help="Less output (repeatable).")(f)
    return click.option("-v", "--verbose", count=True, help="More output (repeatable).")(f)


def debug_option(f: F) -> F:
    """``--debug``: show the full traceback of an error."""
    return click.option("--debug", is_flag=True, help="Show the full traceback on error.")(f)


out_option = click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: the config's output.dir, 'out').",
)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")


def executor_options(f: F) -> F:
    """``--workers`` / ``--scheduler`` / ``--threads``: where the parallel tasks run (the config's ``[executor]``)."""
    f = click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="Threads of the local pool, or per worker process (default: the available cores, shared out).",
    )(f)
    f = click.option(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Join a running Dask cluster at this scheduler address (e.g. tcp://10.0.0.5:8786).",
    )(f)
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Run parallel tasks on a local Dask cluster of N worker processes (default: local threads).",
    )(f)
