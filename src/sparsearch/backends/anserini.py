"""Anserini export (``anserini:DIR``): a ``JsonVectorCollection`` folder for Anserini's
``IndexCollection -collection JsonVectorCollection -impact -pretokenized``.

The folder holds part files ``part-00000.jsonl``, ... (``docs_per_file`` documents each), one
JSON object a line: ``{"id": "doc1", "contents": "", "vector": {"token": 125, ...}}``. Anserini
turns each vector into a pseudo-document that repeats every token ``weight`` times (it reads the
weight with Jackson's ``asInt``, truncating floats), so weights are integer impacts
``round(w * scale)``, made by the same :func:`~sparsearch.backends.ciff.quantize` as CIFF (impacts
of 0 are dropped; a document left with no impact is written, and Anserini skips it as empty).
The pseudo-document is ``sum(impacts)`` tokens long, so large scales make slow indexing.

Tokens become keys with :func:`anserini_key`: :func:`~sparsearch.backends.tokens.token_key`
(``.``, ``%`` and the empty token escaped), plus whitespace escaped as ``%XX`` / ``%uXXXX``, since
``-pretokenized`` splits the pseudo-document at whitespace. Keys longer than Lucene's 255-char
token limit are refused. Vectors without a vocabulary use the dimension numbers as keys.
Ids are written as strings, each once (a repeated id is refused). Payloads are not written.

The folder is written under a temporary name next to the target and renamed into place by
:meth:`AnseriniWriter.finish`; an export that fails leaves nothing, and a previous folder at the
target stays as it was. Anserini itself (Java) cannot run here: the tests check the files.
:func:`write_topics` writes queries for ``-topicReader JsonStringVector`` / ``JsonIntVector``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from sparsearch.backends.base import Fields, Payload, Target, positive
from sparsearch.backends.ciff import (
    SCALE,
    Impacts,
    check_scale,
    quantize,
    term_names,
)
from sparsearch.backends.files import destination, temp_sibling, unwritable
from sparsearch.backends.tokens import key_token, token_key
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import DimensionMismatchError, DuplicateIdError, InvalidInputError
from sparsearch.filters import DocId
from sparsearch.index.checks import check_batch
from sparsearch.sparse import SparseVectors

__all__ = ["AnseriniWriter", "anserini_key", "anserini_token", "from_uri", "write_topics"]

_SPACE = re.compile(r"%(?:u([0-9A-F]{4})|(?!25|2E)([0-9A-F]{2}))")
"""An escaped whitespace character (``%25`` and ``%2E`` are token_key's own escapes)."""

MAX_KEY = 255
"""Lucene's WhitespaceTokenizer splits tokens longer than this."""


def anserini_key(token: str) -> str:
    """The vector key of ``token``: :func:`token_key`, whitespace escaped (reversible).

    >>> anserini_key("new york"), anserini_key("u.s."), anserini_token(anserini_key("a\\u3000b"))
    ('new%20york', 'u%2Es%2E', 'a\\u3000b')
    """
    key = token_key(token)
    if not any(char.isspace() for char in key):
        return key
    return "".join(
        (f"%{ord(c):02X}" if ord(c) < 0x100 else f"%u{ord(c):04X}") if c.isspace() else c
        for c in key
    )


def anserini_token(key: str) -> str:
    """The token an :func:`anserini_key` was made from."""

    def space(found: re.Match[str]) -> str:
        char = chr(int(found.group(1) or found.group(2), 16))
        if not char.isspace():
            raise InvalidInputError(f"{key!r} is not a key made by anserini_key")
        return char

    return key_token(_SPACE.sub(space, key))


def _keys(vocab: Sequence[str] | None, dim: int) -> list[str]:
    keys = [anserini_key(term) for term in term_names(vocab, dim)]
    long = next((k for k in keys if len(k) > MAX_KEY), None)
    if long is not None:
        raise InvalidInputError(f"token key {long[:40]!r}... is longer than {MAX_KEY} characters")
    return keys


def _vector(keys: list[str], rows: Impacts, i: int) -> dict[str, int]:
    start, stop = rows.indptr[i], rows.indptr[i + 1]
    terms, impacts = rows.indices[start:stop].tolist(), rows.impacts[start:stop].tolist()
    return {keys[t]: w for t, w in zip(terms, impacts, strict=True)}


class AnseriniWriter(Target):
    """Writes the exported documents as a JsonVectorCollection folder (see the module
    docstring). ``scale``: impact = round(weight * scale). ``docs_per_file``: documents per part
    file. ``overwrite``: replace an existing folder."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scale: Any = SCALE,
        docs_per_file: int = 100_000,
        overwrite: bool = False,
    ) -> None:
        self.path = destination(Path(path), overwrite)
        self.scale = check_scale(scale)
        self.docs_per_file = positive(docs_per_file, "docs_per_file")
        self.overwrite = overwrite
        self._keys: list[str] = []
        self._seen: set[str] = set()
        self._tmp: Path | None = None
        self._file: IO[str] | None = None
        self._parts = 0
        self._in_file = 0

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        """Check the token keys and create the temporary folder next to the target."""
        self._keys = _keys(vocab, dim)
        try:
            self._tmp = temp_sibling(self.path)
            self._tmp.mkdir()
        except OSError as err:
            self._tmp = None
            raise unwritable(self.path, err) from None

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        """Append one batch to the part files (payloads are not written)."""
        if self._tmp is None:
            raise InvalidInputError("call begin() before write()")
        if vectors.dim != len(self._keys):
            raise DimensionMismatchError(
                f"vectors of dim {vectors.dim}, began with {len(self._keys)}"
            )
        checked = [str(doc_id) for doc_id in check_batch(ids, vectors, payloads)]
        again = next((key for key in checked if key in self._seen), None)
        if again is not None:
            raise DuplicateIdError(f"id {again!r} written twice: each document goes in once")
        rows = quantize(vectors, self.scale)
        for i, doc_id in enumerate(checked):
            line = {"id": doc_id, "contents": "", "vector": _vector(self._keys, rows, i)}
            self._part().write(json.dumps(line, ensure_ascii=False) + "\n")
            self._in_file += 1
            self._seen.add(doc_id)

    def _part(self) -> IO[str]:
        if self._file is not None and self._in_file < self.docs_per_file:
            return self._file
        self._close_part()
        assert self._tmp is not None
        self._file = open(self._tmp / f"part-{self._parts:05d}.jsonl", "w", encoding="utf-8")
        self._parts += 1
        self._in_file = 0
        return self._file

    def _close_part(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def finish(self) -> None:
        """Close the part files and rename the folder into place (an existing folder is moved
        aside first and deleted after)."""
        if self._tmp is None:
            raise InvalidInputError("call begin() before finish()")
        self._close_part()
        destination(self.path, self.overwrite)
        old = None
        if self.path.exists():
            old = temp_sibling(self.path)
            os.replace(self.path, old)
        os.replace(self._tmp, self.path)
        self._tmp = None
        if old is not None:
            shutil.rmtree(old)

    def close(self) -> None:
        """Drop an unfinished export's temporary folder."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def from_uri(uri: TargetURI, **options: Any) -> AnseriniWriter:
    """``anserini:DIR[?scale=100&docs_per_file=100000&overwrite=true]`` (``options`` override
    the query)."""
    settings = uri.options(options, {"scale": float, "docs_per_file": int, "overwrite": bool})
    per_file = settings.get("docs_per_file")
    if isinstance(per_file, str) and per_file.isdigit():
        settings["docs_per_file"] = int(per_file)
    return AnseriniWriter(uri.path.rstrip("/"), **settings)


def write_topics(
    path: str | os.PathLike[str],
    ids: Sequence[DocId],
    queries: SparseVectors,
    *,
    scale: Any = SCALE,
) -> None:
    """Queries as Anserini vector topics, one ``{"qid": ..., "vector": {key: impact}}`` a line
    (``-topicReader JsonStringVector``, or ``JsonIntVector`` for int ids), quantised and keyed
    like the documents."""
    checked = check_batch(ids, queries, None)
    keys = _keys(queries.vocab, queries.dim)
    rows = quantize(queries, scale)
    with open(path, "w", encoding="utf-8") as out:
        for i, qid in enumerate(checked):
            out.write(json.dumps({"qid": qid, "vector": _vector(keys, rows, i)}) + "\n")
