"""The ``leopardgeo`` command line: a thin click layer over the library.

The command group and what its commands share live in :mod:`leopardgeo.cli.app`;
the commands in :mod:`~leopardgeo.cli.analysis` (``run``, ``ensemble``,
``circuitscape``, ``omniscape``, ``init``), :mod:`~leopardgeo.cli.outputs`
(``links``, ``report``, ``crossborder``, ``sites``, ``territories``, ``metrics``)
and :mod:`~leopardgeo.cli.scenarios` (``compare``, ``scenarios``, ``rank``).
Importing them here registers the commands on :func:`cli`.
"""

from __future__ import annotations

from leopardgeo.cli import analysis, outputs, scenarios  # noqa: F401  (registers the commands)
from leopardgeo.cli.analysis import circuitscape, ensemble, init, omniscape, run  # noqa: F401
from leopardgeo.cli.app import (  # noqa: F401
    _base_config,
    _Command,
    _fmt_num,
    _Group,
    _keep_unwrapped,
    _run_stage,
    _setup_logging,
    _show_versions,
    _spinner,
    _StageRun,
    _with_executor,
    cli,
)
from leopardgeo.cli.outputs import crossborder, links, metrics_command, report, sites, territories  # noqa: F401
from leopardgeo.cli.scenarios import compare, rank_command, scenarios_command  # noqa: F401
from leopardgeo.core.memory import keep_freed_heap, one_malloc_arena

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    one_malloc_arena()  # before any thread starts: ensemble draws on threads reuse their arrays (see its docs)
    keep_freed_heap()  # and arrays up to 32 MB come from the heap, not from fresh pages each draw (see its docs)
    cli(prog_name="leopardgeo")
