"""TREC run files (``qid Q0 docid rank score tag``) and TREC qrels (``qid 0 docid grade``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from sparsearch.errors import InvalidInputError
from sparsearch.run import Run


def trec_lines(
    run: Run | Mapping[str, Mapping[str, float]], tag: str = "sparsearch"
) -> Iterator[str]:
    """The lines of a TREC run file (``qid Q0 docid rank score tag``), ranks 1.. in trec_eval order.

    >>> list(trec_lines({"q1": {"d1": 0.5, "d2": 0.5}}, tag="t"))
    ['q1 Q0 d2 1 0.5 t\\n', 'q1 Q0 d1 2 0.5 t\\n']
    """
    if not tag or any(c.isspace() for c in tag):
        raise InvalidInputError(f"run tag must be one non-empty word, got {tag!r}")
    if not isinstance(run, Run):
        run = Run.from_dict(run)
    for qid, hits in run:
        for rank, (docid, score) in enumerate(hits, 1):
            yield f"{qid} Q0 {docid} {rank} {score!r} {tag}\n"


def write_run(
    out: str | Path | TextIO,
    run: Run | Mapping[str, Mapping[str, float]],
    tag: str = "sparsearch",
) -> None:
    """Write a run (a :class:`~sparsearch.Run` or ``{qid: {docid: score}}``) as a TREC run file.

    ``out`` is a path or an open text stream.
    """
    lines = trec_lines(run, tag)
    if isinstance(out, (str, Path)):
        with Path(out).open("w", encoding="utf-8") as fh:
            fh.writelines(lines)
    else:
        out.writelines(lines)


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


def read_run(path: str | Path) -> Run:
    """Read a TREC run file into a :class:`~sparsearch.Run` (the rank column is not used)."""
    run: dict[str, dict[str, float]] = {}
    for line_no, (qid, _q0, docid, _rank, score, _tag) in _rows(Path(path), 6):
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise InvalidInputError(f"{path}:{line_no}: document {docid} twice for query {qid}")
        try:
            docs[docid] = float(score)
        except ValueError as err:
            raise InvalidInputError(f"{path}:{line_no}: score {score!r} is not a number") from err
    return Run.from_dict(run)


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
