"""Elasticsearch sparse retrieval through the ``elasticsearch`` client: ``sparse_vector`` fields
and the ``sparse_vector`` query with a ``query_vector`` (Elasticsearch 8.15+).

``elasticsearch://host:9200/name`` (``elasticsearch+https://`` for TLS; ``?field=`` names the
vector field). What the engine keeps and accepts (9-bit weights, key and weight limits, ids) is
described in :mod:`sparsearch.backends.lucene`. Filters go in the ``filter`` clause of a ``bool``
query around ``sparse_vector``, so they never change scores.

Token pruning: Elasticsearch 9.1+ prunes query tokens by default on new ``sparse_vector``
fields (frequent, low-weight tokens are skipped: faster, no longer exact). Queries here say
``"prune": false`` unless :class:`ElasticsearchBackend` is given ``prune=True`` (and optionally a
``pruning_config``: ``tokens_freq_ratio_threshold``, ``tokens_weight_threshold``,
``only_score_pruned_tokens``).

Tested at the format level only: no Elasticsearch server runs here (it needs a JVM); the tests
check the requests the official client sends and the parsing of documented responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparsearch.backends.lucene import (
    DEFAULT_FIELD,
    MAX_CLAUSES,
    LuceneBackend,
    server_url,
)
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import InvalidInputError

PRUNING_KEYS = (
    "tokens_freq_ratio_threshold",
    "tokens_weight_threshold",
    "only_score_pruned_tokens",
)


class ElasticsearchBackend(LuceneBackend):
    """An Elasticsearch index whose vectors live in a ``sparse_vector`` field.

    ``hosts``: the server URL (ignored when ``client``, an ``elasticsearch.Elasticsearch``, is
    given); ``client_options`` go to ``Elasticsearch(...)`` (``api_key``, ``basic_auth``,
    ``verify_certs``, ...). ``prune`` / ``pruning_config``: the query's token pruning (off by
    default, for exact scores). ``settings``: index settings at creation; ``max_clauses``: the
    cluster's limit on query clauses.
    """

    engine = "Elasticsearch"
    vector_type = "sparse_vector"

    def __init__(
        self,
        hosts: str = "http://localhost:9200",
        index: str = "sparsearch",
        *,
        client: Any = None,
        field: str = DEFAULT_FIELD,
        recreate: bool = False,
        settings: Mapping[str, Any] | None = None,
        max_clauses: int = MAX_CLAUSES,
        prune: bool = False,
        pruning_config: Mapping[str, Any] | None = None,
        **client_options: Any,
    ) -> None:
        if pruning_config is not None and (not prune or set(pruning_config) - set(PRUNING_KEYS)):
            raise InvalidInputError(
                f"pruning_config needs prune=True and holds only {', '.join(PRUNING_KEYS)}"
            )
        if client is None:
            from elasticsearch import Elasticsearch

            client = Elasticsearch(hosts, **client_options)
        super().__init__(
            client,
            index,
            field=field,
            recreate=recreate,
            settings=settings,
            max_clauses=max_clauses,
        )
        self.prune = bool(prune)
        self.pruning_config = dict(pruning_config) if pruning_config is not None else None

    def _create_index(self, body: dict[str, Any]) -> Any:
        return self.client.indices.create(index=self.index, **body)

    def _bulk(self, lines: list[dict[str, Any]]) -> Any:
        return self.client.bulk(operations=lines)

    def _msearch(self, lines: list[dict[str, Any]]) -> Any:
        return self.client.msearch(searches=lines, index=self.index)

    def _clause(self, tokens: dict[str, float]) -> dict[str, Any]:
        query: dict[str, Any] = {"field": self.field, "query_vector": tokens, "prune": self.prune}
        if self.pruning_config is not None:
            query["pruning_config"] = self.pruning_config
        return {"sparse_vector": query}

    def _is_transient(self, err: BaseException) -> bool:
        from elastic_transport import ConnectionError, ConnectionTimeout
        from elasticsearch import ApiError

        if isinstance(err, (ConnectionError, ConnectionTimeout)):
            return True
        return isinstance(err, ApiError) and err.status_code in (429, 502, 503, 504)


def from_uri(uri: TargetURI, **options: Any) -> ElasticsearchBackend:
    """``elasticsearch://host:port/index`` (``elasticsearch+https://`` for TLS)."""
    return ElasticsearchBackend(
        server_url(uri), uri.require_name(), **uri.options(options, {"field": str})
    )
