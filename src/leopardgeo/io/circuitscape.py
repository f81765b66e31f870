"""Circuitscape's text inputs: include / exclude pair files.

Circuitscape (``included_pairs_file``; Circuitscape.jl ``read_included_pairs``)
reads two layouts, told apart by the first word of the file:

* a list: ``mode include`` or ``mode exclude`` on the first line, then one pair
  of focal ids per line;
* a matrix: ``min VALUE`` and ``max VALUE`` on the first two lines, then a
  table whose first row and first column hold the focal ids (the corner cell is
  ignored); as in Circuitscape, an entry above ``max`` counts as 0, and a pair
  is included when its entry (either triangle) is then at least ``min``.  The
  matrix layout is always an include list.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from leopardgeo.core.errors import DataError

__all__ = ["read_pairs_file"]


def _bad(path: Path, what: str) -> DataError:
    return DataError(
        f"{path}: expected a Circuitscape pairs file ('mode include' / 'mode exclude' then one pair of ids per "
        f"line, or 'min' / 'max' lines then an id matrix), found {what}. Fix the file or list the pairs in "
        "[circuit] include_pairs / exclude_pairs."
    )


def read_pairs_file(path: str | Path) -> tuple[str, list[tuple[int, int]]]:
    r"""Read a Circuitscape include / exclude pairs file.

    Parameters
    ----------
    path
        Text file in either of Circuitscape's layouts (module docstring).

    Returns
    -------
    tuple
        ``(mode, pairs)``: ``"include"`` or ``"exclude"``, and the pairs as
        sorted ``(a, b)`` tuples with ``a < b``, without repeats.

    Raises
    ------
    DataError
        If the file is missing or in neither layout.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "pairs.txt"
    >>> _ = f.write_text("mode exclude\n2 1\n3 4\n")
    >>> read_pairs_file(f)
    ('exclude', [(1, 2), (3, 4)])
    >>> _ = f.write_text("min 1\nmax 1\n0 1 2 3\n1 0 1 0\n2 1 0 1\n3 0 1 0\n")
    >>> read_pairs_file(f)
    ('include', [(1, 2), (2, 3)])
    """
    p = Path(path)
    try:
        lines = [ln.split() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError as exc:
        msg = f"{p}: expected a readable Circuitscape pairs file, found {exc.strerror or exc}. Check the path."
        raise DataError(msg) from exc
    if not lines:
        raise _bad(p, "an empty file")
    head = lines[0][0].lower()
    try:
        if head == "mode":
            mode = lines[0][1].lower() if len(lines[0]) > 1 else ""
            if mode not in ("include", "exclude"):
                raise _bad(p, f"mode {mode!r}")
            pairs = set()
            for row in lines[1:]:
                if len(row) != 2:
                    raise _bad(p, f"the line {' '.join(row)!r}")
                a, b = (int(float(v)) for v in row)
                if a != b:
                    pairs.add((min(a, b), max(a, b)))
            return mode, sorted(pairs)
        if head == "min":
            lo = float(lines[0][1])
            if len(lines) < 3 or lines[1][0].lower() != "max":
                raise _bad(p, "a 'min' line without a 'max' line after it")
            hi = float(lines[1][1])
            table = np.array([[float(v) for v in row] for row in lines[2:]])
            if table.ndim != 2 or table.shape[0] != table.shape[1]:
                raise _bad(p, f"a matrix of {len(lines) - 2} rows of unequal or non-square length")
            ids = [int(v) for v in table[0, 1:]]
            if [int(v) for v in table[1:, 0]] != ids:
                raise _bad(p, "row ids that differ from the column ids")
            vals = table[1:, 1:]
            ok = np.where(vals > hi, 0.0, vals) >= lo
            keep = set()
            for i, j in combinations(range(len(ids)), 2):
                if ok[i, j] or ok[j, i]:
                    keep.add((min(ids[i], ids[j]), max(ids[i], ids[j])))
            return "include", sorted(keep)
    except (ValueError, IndexError) as exc:
        if isinstance(exc, DataError):
            raise
        raise _bad(p, f"unreadable numbers ({exc})") from exc
    raise _bad(p, f"a first word {lines[0][0]!r}")
