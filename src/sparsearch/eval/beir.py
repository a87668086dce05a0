"""BEIR-format datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

This module is the one place that parses BEIR files (the CLI reads through it too). Every problem
is an :class:`~sparsearch.errors.InvalidInputError` whose one-line message names the file and,
where there is one, the line. The rules for ``corpus.jsonl`` / ``queries.jsonl`` rows:

- each non-blank line is one JSON object, in UTF-8 (a leading byte-order mark is allowed);
- ``_id`` is a non-empty string or an integer (kept as its string; ``true``, ``1.5``, ``null``
  and lists are errors), unique within the file (:class:`~sparsearch.errors.DuplicateIdError`
  names both lines);
- ``text`` is required and ``title`` optional; each is a string or ``null`` (read as ``""``);
- other keys (``metadata``...) are ignored;
- a file without a single row is an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sparsearch.errors import DuplicateIdError, InvalidInputError

Qrels = dict[str, dict[str, int]]
Kind = Literal["corpus", "queries"]
Duplicates = Literal["error", "first"]


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR dataset: the whole corpus, the judged queries and their graded qrels.

    ``queries`` holds only the queries that have at least one judgment in the split (as BEIR does).
    Document order is the file order of ``corpus.jsonl``.
    """

    name: str
    split: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: Qrels

    def doc_texts(self) -> dict[str, str]:
        """Each document as one text, ``(title + " " + text).strip()`` (the BEIR convention)."""
        return {d: doc_text(doc["title"], doc["text"]) for d, doc in self.corpus.items()}


def doc_text(title: str, text: str) -> str:
    """A document as one text: ``(title + " " + text).strip()`` (the BEIR convention)."""
    return (title + " " + text).strip()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line, decoded as UTF-8 one line at a time."""
    try:
        fh = path.open("rb")
    except FileNotFoundError as err:
        raise InvalidInputError(f"{path}: no such file") from err
    except IsADirectoryError as err:
        raise InvalidInputError(f"{path}: is a folder, not a file") from err
    except OSError as err:
        raise InvalidInputError(f"{path}: cannot read ({err.strerror})") from err
    with fh:
        for line_no, raw in enumerate(fh, 1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InvalidInputError(
                    f"{path}:{line_no}: not UTF-8 (byte 0x{raw[err.start]:02x} at column "
                    f"{err.start + 1})"
                ) from err
            if line.strip():
                yield line_no, line


def _string_field(path: Path, line_no: int, row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{path}:{line_no}: {key!r} must be a string, got {type(value).__name__}"
        )
    return value


def read_beir_jsonl(
    path: str | Path, kind: Kind = "corpus", *, duplicates: Duplicates = "error"
) -> dict[str, dict[str, str]]:
    """Every row of a BEIR ``corpus.jsonl`` or ``queries.jsonl``: ``{_id: {"title", "text"}}``.

    Rows are checked as the module docstring says; file order is kept. ``kind`` only names the
    file in messages. ``duplicates="first"`` keeps the first row of a repeated ``_id`` instead of
    raising (for published sets known to repeat ids).

    Example::

        docs = read_beir_jsonl("../shared/data/scifact/corpus.jsonl")
        docs["4983"]["title"][:30]   # 'Microstructural development of'
    """
    if kind not in ("corpus", "queries"):
        raise InvalidInputError(f"kind must be 'corpus' or 'queries', got {kind!r}")
    if duplicates not in ("error", "first"):
        raise InvalidInputError(f"duplicates must be 'error' or 'first', got {duplicates!r}")
    path = Path(path)
    rows: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    for line_no, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{path}:{line_no}: not JSON ({err})") from err
        if not isinstance(row, dict):
            raise InvalidInputError(
                f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}"
            )
        if "_id" not in row:
            raise InvalidInputError(f"{path}:{line_no}: no '_id'")
        raw_id = row["_id"]
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise InvalidInputError(
                f"{path}:{line_no}: '_id' must be a string or an integer, got {raw_id!r}"
            )
        row_id = str(raw_id)
        if not row_id.strip():
            raise InvalidInputError(f"{path}:{line_no}: empty '_id'")
        if "text" not in row:
            raise InvalidInputError(f"{path}:{line_no}: no 'text' (id {row_id!r})")
        record = {
            "title": _string_field(path, line_no, row, "title"),
            "text": _string_field(path, line_no, row, "text"),
        }
        if row_id in first_line:
            if duplicates == "first":
                continue
            raise DuplicateIdError(
                f"{path}:{line_no}: duplicate _id {row_id!r} (first at line {first_line[row_id]})"
            )
        first_line[row_id] = line_no
        rows[row_id] = record
    if not rows:
        raise InvalidInputError(f"{path}: empty {kind} file (no rows)")
    return rows


def read_jsonl_texts(
    path: str | Path, kind: Kind = "corpus", *, duplicates: Duplicates = "error"
) -> tuple[list[str], list[str]]:
    """(ids, texts) of a BEIR JSONL file, in file order, checked by :func:`read_beir_jsonl`.

    A document is ``(title + " " + text).strip()``; a query is its ``text``, stripped (a title
    is ignored).

    Example::

        ids, texts = read_jsonl_texts("../shared/data/scifact/queries.jsonl", "queries")
    """
    rows = read_beir_jsonl(path, kind, duplicates=duplicates)
    if kind == "queries":
        return list(rows), [row["text"].strip() for row in rows.values()]
    return list(rows), [doc_text(row["title"], row["text"]) for row in rows.values()]


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInputError(f"BEIR file missing: {path}")
    return path


def list_splits(data_dir: str | Path) -> list[str]:
    """The qrels splits a BEIR folder holds (``["test", "train"]``...)."""
    return sorted(p.stem for p in (Path(data_dir) / "qrels").glob("*.tsv"))


def load_qrels(path: str | Path) -> Qrels:
    """A BEIR qrels TSV (header ``query-id corpus-id score``) as ``{qid: {docid: grade}}``."""
    path = _require(Path(path))
    qrels: Qrels = {}
    lines = _lines(path)
    header = next(lines, None)
    if header is None or [h.strip() for h in header[1].split("\t")[:3]] != [
        "query-id",
        "corpus-id",
        "score",
    ]:
        raise InvalidInputError(f"{path}: expected the header 'query-id corpus-id score'")
    for line_no, line in lines:
        row = line.rstrip("\r\n").split("\t")
        try:
            qid, docid, grade = row[0], row[1], int(row[2])
        except (IndexError, ValueError) as err:
            raise InvalidInputError(f"{path}:{line_no}: bad qrels row {row!r}") from err
        qrels.setdefault(qid, {})[docid] = grade
    return qrels


def load_beir(
    data_dir: str | Path, split: str = "test", *, duplicates: Duplicates = "error"
) -> BeirDataset:
    """Load one split of a local BEIR folder (files checked as :func:`read_beir_jsonl` says).

    ``duplicates="first"`` keeps the first row of an ``_id`` that ``corpus.jsonl`` or
    ``queries.jsonl`` repeats, instead of raising :class:`~sparsearch.errors.DuplicateIdError`.

    Example::

        ds = load_beir("../shared/data/scifact", "test")
        len(ds.corpus), len(ds.queries)   # (5183, 300)
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InvalidInputError(f"no BEIR dataset folder at {root}")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise InvalidInputError(
            f"{root.name} has no split {split!r} (splits: {', '.join(list_splits(root)) or 'none'})"
        )
    qrels = load_qrels(qrels_path)
    corpus = read_beir_jsonl(_require(root / "corpus.jsonl"), "corpus", duplicates=duplicates)
    all_queries = read_beir_jsonl(
        _require(root / "queries.jsonl"), "queries", duplicates=duplicates
    )
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise InvalidInputError(f"{root.name}/{split}: qrels name unknown queries {missing[:5]}")
    queries = {q: all_queries[q]["text"] for q in qrels}
    return BeirDataset(name=root.name, split=split, corpus=corpus, queries=queries, qrels=qrels)
