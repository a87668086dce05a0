"""Result tables: markdown text, or a rich table on a terminal when ``rich`` is installed."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any, column: str) -> str:
    """Metrics (``name@k``) and reference values to 4 decimals, FLOPS to 2, other floats to 1."""
    if isinstance(value, float):
        if "@" in column or column in ("reference", "ours", "diff"):
            return f"{value:.4f}"
        return f"{value:.2f}" if column == "flops" else f"{value:.1f}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of ``rows`` (missing cells blank)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c), c) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print rows with ``rich`` on a terminal when it is installed, else as markdown."""
    try:
        if not sys.stdout.isatty():
            raise ImportError("not a terminal: plain markdown reads better in logs and pipes")
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        if title:
            print(title)
        print(markdown_table(rows, columns))
        return
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "model") else "right")
    for row in rows:
        table.add_row(*(_cell(row.get(c), c) for c in columns))
    Console().print(table)
