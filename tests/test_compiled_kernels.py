"""Every function the sources mark as compiled is a numba dispatcher.

A kernel that silently runs as plain Python gives the same numbers hundreds of
times slower (a decorator lost in a merge once made each AMG Gauss-Seidel sweep
of a 4 M-cell grid take 15 s instead of 0.05 s); the numeric tests cannot see
that, this one does.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numba
import pytest

import leopardgeo

SRC = Path(leopardgeo.__file__).parent
MARK = "pragma: no cover - compiled"


def _marked() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if MARK not in text:
            continue
        lines = text.splitlines()
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and MARK in lines[node.lineno - 1]:
                found.append((module, node.name))
    return found


MARKED = _marked()


def test_the_scan_finds_the_kernels():
    assert ("leopardgeo.kernels.circuit._compiled", "_gs_forward_from_zero") in MARKED
    assert len(MARKED) > 50


@pytest.mark.parametrize(("module", "name"), MARKED, ids=[f"{m.rsplit('.', 1)[-1]}.{n}" for m, n in MARKED])
def test_marked_function_is_compiled(module, name):
    func = getattr(importlib.import_module(module), name)
    compiled = (numba.core.registry.CPUDispatcher, numba.core.extending._Intrinsic)
    assert isinstance(func, compiled), f"{module}.{name} is marked compiled but is plain Python"
