"""External engines and file formats: the same vectors, filters and results beyond one machine.

Engines (searchable, :class:`Backend`): Qdrant, Milvus, OpenSearch, Elasticsearch. File formats
(:class:`Target`): CIFF, Anserini's JsonVectorCollection, OpenSearch/Elasticsearch bulk NDJSON.
:func:`export` streams an index, a collection or encoded shards into any of them; targets are
named by URI (:mod:`sparsearch.backends.uri`). Each engine's client is imported only when used.
"""

from __future__ import annotations

from sparsearch.backends.base import Backend, Batch, Target
from sparsearch.backends.export import ExportReport, export
from sparsearch.backends.sources import Source, as_source
from sparsearch.backends.tokens import key_token, token_key
from sparsearch.backends.uri import TargetURI, open_backend, open_target, parse_uri

__all__ = [
    "Backend",
    "Batch",
    "ExportReport",
    "Source",
    "Target",
    "TargetURI",
    "as_source",
    "export",
    "key_token",
    "open_backend",
    "open_target",
    "parse_uri",
    "token_key",
]
