"""TREC run files (``qid Q0 docid rank score tag``) and TREC qrels (``qid 0 docid grade``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sparsearch.errors import InvalidInputError


def ranked(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """A query's hits in trec_eval order: score descending, then document id descending."""
    return sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)


def write_run(
    path: str | Path, run: Mapping[str, Mapping[str, float]], tag: str = "sparsearch"
) -> None:
    """Write ``{qid: {docid: score}}`` as a TREC run file, ranks 1.. in trec_eval order."""
    if not tag or any(c.isspace() for c in tag):
        raise InvalidInputError(f"run tag must be one non-empty word, got {tag!r}")
    with Path(path).open("w", encoding="utf-8") as fh:
        for qid, docs in run.items():
            for rank, (docid, score) in enumerate(ranked(docs), 1):
                fh.write(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")


def _rows(path: Path, n_fields: int):
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path}")
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != n_fields:
                raise InvalidInputError(
                    f"{path}:{line_no}: expected {n_fields} fields, got {len(fields)}"
                )
            yield line_no, fields


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file into ``{qid: {docid: score}}`` (the rank column is not used)."""
    run: dict[str, dict[str, float]] = {}
    for line_no, (qid, _q0, docid, _rank, score, _tag) in _rows(Path(path), 6):
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise InvalidInputError(f"{path}:{line_no}: document {docid} twice for query {qid}")
        try:
            docs[docid] = float(score)
        except ValueError as err:
            raise InvalidInputError(f"{path}:{line_no}: score {score!r} is not a number") from err
    return run


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read TREC qrels (``qid iteration docid grade``) into ``{qid: {docid: grade}}``."""
    qrels: dict[str, dict[str, int]] = {}
    for line_no, (qid, _iteration, docid, grade) in _rows(Path(path), 4):
        try:
            qrels.setdefault(qid, {})[docid] = int(grade)
        except ValueError as err:
            raise InvalidInputError(f"{path}:{line_no}: grade {grade!r} is not an integer") from err
    return qrels


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> None:
    """Write ``{qid: {docid: grade}}`` as TREC qrels."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for qid, docs in qrels.items():
            for docid, grade in docs.items():
                fh.write(f"{qid} 0 {docid} {int(grade)}\n")
