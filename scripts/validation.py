#!/usr/bin/env python3
"""Regenerate ``docs/validation.md``: the demo's habitat, capacity and connection beside the published figures.

Usage::

    python scripts/validation.py            # rewrite docs/validation.md
    python scripts/validation.py --check    # exit 1 if the page is stale or a target is not met

It runs the habitat, resistance, patch
and territory stages of the embedded demo (about 30 s).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leopardgeo.report.validation import validate, validation_markdown

PAGE = Path(__file__).resolve().parent.parent / "docs" / "validation.md"


def main(argv: list[str] | None = None) -> int:
    """Write (or check) the validation page."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=PAGE, help="page to write (default docs/validation.md)")
    ap.add_argument("--check", action="store_true", help="do not write; fail if the page is stale or a target is unmet")
    args = ap.parse_args(argv)
    result = validate()
    text = validation_markdown(result)
    if args.check:
        stale = not args.out.is_file() or args.out.read_text(encoding="utf-8") != text
        sys.stderr.write(f"{args.out}: {'stale' if stale else 'fresh'}; {len(result.failed())} target(s) not met\n")
        return 1 if stale or not result.ok else 0
    args.out.write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {args.out}: {len(result.checks) - len(result.failed())} of {len(result.checks)} targets met\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
