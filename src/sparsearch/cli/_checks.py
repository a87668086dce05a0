"""Checks the commands share: argument types, input files, output folders.

Each turns a bad argument or a bad file into a named error (``InvalidInputError``), which
``sparsearch.cli.main`` prints as one line, ``sparsearch CMD: error: ...``, with exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sparsearch.errors import InvalidInputError, SparsearchError

#: the largest ``-k`` a search accepts (larger requests are refused; any k is also capped at the
#: number of documents the index holds)
MAX_TOP_K = 1_000_000


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def top_k(text: str) -> int:
    """argparse type of ``-k``: 1 .. MAX_TOP_K."""
    value = positive_int(text)
    if value > MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TOP_K:,}, got {value:,}")
    return value


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Prefix the message of a sparsearch error raised inside with ``path`` (same error class)."""
    try:
        yield
    except SparsearchError as err:
        raise type(err)(f"{path}: {err}") from err


def open_output(path: Path) -> TextIO:
    """``path`` (checked by :func:`output_file`) opened for writing as UTF-8 text."""
    output_file(path)
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as err:
        raise InvalidInputError(f"{path}: cannot write ({err.strerror})") from err


def output_file(path: Path) -> Path:
    """Check that ``path`` can be written as a file, creating its folder; return it."""
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file where a folder should be, no permission, ...
        raise InvalidInputError(f"{path}: cannot create its folder ({err.strerror})") from err
    return path


def index_output_dir(path: Path, append: bool) -> None:
    """An index directory may only be new, empty, or (with ``--append``) an index already.

    The engine owns its folder: a save removes every file there that the index does not list, so
    a folder holding anything else is refused.
    """
    from sparsearch.index import storage

    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{path}: exists and is not a folder")
    if (path / storage.CURRENT).exists():
        if not append:
            raise InvalidInputError(f"{path} already holds an index (use --append)")
        return
    if path.is_dir() and any(path.iterdir()):
        raise InvalidInputError(
            f"{path} is not empty and holds no index: an index needs a new or empty folder "
            "(its saves delete files they do not know)"
        )
