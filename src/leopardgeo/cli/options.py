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
