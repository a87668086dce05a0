"""The `sparsearch` command line: a thin shell over the Python API.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Modules are discovered, so adding a
command never means editing this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from sparsearch.errors import SparsearchError


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="sparsearch", description="Learned sparse retrieval: encode, index, search, evaluate."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sparsearch` script.

    Bad input never shows a traceback: commands raise a named ``SparsearchError`` (bad files and
    arguments are converted where they are read), printed here as one line,
    ``sparsearch CMD: error: MESSAGE``, with exit code 2. argparse reports bad flags the same
    way (after the usage line), also with exit code 2.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SparsearchError as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        print(f"sparsearch {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
