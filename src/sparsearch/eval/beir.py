"""BEIR-format datasets: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sparsearch.errors import InvalidInputError

Qrels = dict[str, dict[str, int]]


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
        return {d: (doc["title"] + " " + doc["text"]).strip() for d, doc in self.corpus.items()}


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise InvalidInputError(f"{path}:{line_no}: not JSON ({err})") from err


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInputError(f"BEIR file missing: {path}")
    return path


def list_splits(data_dir: str | Path) -> list[str]:
    """The qrels splits a BEIR folder holds (``["test", "train"]``...)."""
    return sorted(p.stem for p in (Path(data_dir) / "qrels").glob("*.tsv"))


def load_qrels(path: str | Path) -> Qrels:
    """A BEIR qrels TSV (header ``query-id corpus-id score``) as ``{qid: {docid: grade}}``."""
    qrels: Qrels = {}
    with _require(Path(path)).open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise InvalidInputError(f"{path}: expected the header 'query-id corpus-id score'")
        for line_no, row in enumerate(rows, 2):
            if not row:
                continue
            try:
                qid, docid, grade = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as err:
                raise InvalidInputError(f"{path}:{line_no}: bad qrels row {row!r}") from err
            qrels.setdefault(qid, {})[docid] = grade
    return qrels


def load_beir(data_dir: str | Path, split: str = "test") -> BeirDataset:
    """Load one split of a local BEIR folder.

    >>> ds = load_beir("../shared/data/scifact", "test")  # doctest: +SKIP
    >>> len(ds.corpus), len(ds.queries)  # doctest: +SKIP
    (5183, 300)
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InvalidInputError(f"no BEIR dataset folder at {root}")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise InvalidInputError(
            f"{root.name} has no split {split!r} (splits: {', '.join(list_splits(root)) or 'none'})"
        )
    corpus = {
        str(row["_id"]): {"title": row.get("title") or "", "text": row.get("text") or ""}
        for row in _jsonl(_require(root / "corpus.jsonl"))
    }
    all_queries = {
        str(row["_id"]): row.get("text") or "" for row in _jsonl(_require(root / "queries.jsonl"))
    }
    qrels = load_qrels(qrels_path)
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise InvalidInputError(f"{root.name}/{split}: qrels name unknown queries {missing[:5]}")
    queries = {q: all_queries[q] for q in qrels}
    return BeirDataset(name=root.name, split=split, corpus=corpus, queries=queries, qrels=qrels)
