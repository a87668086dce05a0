"""Bulk NDJSON files for OpenSearch or Elasticsearch: ``bulk:out.ndjson``.

Writes ``out.ndjson`` (an ``index`` action line, then the document, per document: the body of
``POST /_bulk``) and ``out.mapping.json`` beside it (the body of ``PUT /<index>``: the
``rank_features`` mapping for ``flavor="opensearch"``, ``sparse_vector`` for
``"elasticsearch"``). Both appear only when the export finishes (temporary files, then renames);
an existing file is refused unless ``overwrite=True``.
Documents are exactly what :mod:`sparsearch.backends.opensearch` and
:mod:`sparsearch.backends.elastic` send; their limits are in :mod:`sparsearch.backends.lucene`.

Loading them::

    curl -XPUT host:9200/scifact -H 'Content-Type: application/json' -d @out.mapping.json
    curl -XPOST host:9200/_bulk -H 'Content-Type: application/x-ndjson' --data-binary @out.ndjson

(split large files: a request may not pass ``http.max_content_length``, 100 MB by default).
Options: ``flavor``, ``index`` (default: the file's name without ``.ndjson``), ``field``,
``overwrite``.
A format only: no engine reads these files here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from sparsearch.backends.base import Fields, Payload, Target
from sparsearch.backends.files import destination, temp_sibling, unwritable
from sparsearch.backends.lucene import (
    DEFAULT_FIELD,
    FeatureSpace,
    bulk_lines,
    check_field_name,
    index_body,
    ndjson,
)
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import InvalidInputError
from sparsearch.filters import DocId
from sparsearch.sparse import SparseVectors

VECTOR_TYPES = {"opensearch": "rank_features", "elasticsearch": "sparse_vector"}


class BulkWriter(Target):
    """Writes bulk NDJSON to ``path`` and the create-index body to :attr:`mapping_path`."""

    def __init__(
        self,
        path: str | Path,
        *,
        flavor: str = "opensearch",
        index: str | None = None,
        field: str = DEFAULT_FIELD,
        overwrite: bool = False,
    ) -> None:
        if flavor not in VECTOR_TYPES:
            raise InvalidInputError(f"flavor must be one of {sorted(VECTOR_TYPES)}, got {flavor!r}")
        self.overwrite = overwrite
        self.path = destination(path, overwrite)
        stem = self.path.name.removesuffix(".ndjson")
        self.mapping_path = destination(self.path.with_name(stem + ".mapping.json"), overwrite)
        self.flavor = flavor
        self.index = index or stem
        self.field = check_field_name(field)
        self._space: FeatureSpace | None = None
        self._mapping: dict[str, Any] | None = None
        self._out: IO[str] | None = None
        self._tmp_path: Path | None = None

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        self._space = FeatureSpace.of(self.field, dim, vocab)
        self._mapping = index_body(self._space, VECTOR_TYPES[self.flavor], fields)
        self._tmp_path = temp_sibling(self.path)
        try:
            self._out = open(self._tmp_path, "x", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as err:
            raise unwritable(self.path, err) from None

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        if self._space is None or self._out is None:
            raise InvalidInputError("call begin() before write()")
        self._out.write(
            ndjson(bulk_lines(self.index, self._space.documents(ids, vectors, payloads)))
        )

    def finish(self) -> None:
        """Write the mapping, then rename both files into place (the documents last)."""
        if self._out is None or self._mapping is None or self._tmp_path is None:
            raise InvalidInputError("call begin() before finish()")
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        self._out = None
        destination(self.path, self.overwrite)
        destination(self.mapping_path, self.overwrite)
        mapping_tmp = temp_sibling(self.mapping_path)
        with open(mapping_tmp, "x", encoding="utf-8") as out:
            json.dump(self._mapping, out, ensure_ascii=False, indent=2)
        os.replace(mapping_tmp, self.mapping_path)
        os.replace(self._tmp_path, self.path)
        self._tmp_path = None

    def close(self) -> None:
        """Drop an unfinished file (nothing partial is left behind)."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None


def from_uri(uri: TargetURI, **options: Any) -> BulkWriter:
    """``bulk:out.ndjson`` (options: ``flavor``, ``index``, ``field``, ``overwrite``; also as URI
    parameters)."""
    kinds = {"flavor": str, "index": str, "field": str, "overwrite": bool}
    return BulkWriter(uri.path, **uri.options(options, kinds))
