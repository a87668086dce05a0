"""OpenSearch neural sparse search through ``opensearch-py``: ``rank_features`` fields,
``neural_sparse`` queries with ``query_tokens``, the two-phase search pipeline, and inference-free
queries that OpenSearch weights itself.

``opensearch://host:9200/name`` (``opensearch+https://`` for TLS; ``?field=`` names the vector
field). What the engine keeps and accepts (9-bit weights, key and weight limits, ids) is described
in :mod:`sparsearch.backends.lucene`. Filters go in the ``filter`` clause of a ``bool`` query
around ``neural_sparse`` (the query has no filter of its own on ``rank_features`` fields), so
they never change scores.

Two-phase search (:meth:`OpenSearchBackend.use_two_phase`, OpenSearch 2.15+) scores documents
with the high-weight tokens first and rescores only the best ``k x expansion_rate`` with all
tokens: faster, no longer exact. Inference-free models: :func:`write_tokenizer_model` packs the
model's tokenizer and static query weights as the ``SPARSE_TOKENIZE`` model OpenSearch registers
(:func:`register_tokenizer_body`); :meth:`OpenSearchBackend.search_texts` then sends the texts and
OpenSearch weights their tokens. OpenSearch gives 1.0 to tokens missing from ``idf.json``, and
zero weights cannot be written there (OpenSearch rejects them), so the two agree for tables with
a positive weight for every token, as OpenSearch's own IDF tables have.

Tested at the format level only: no OpenSearch server runs here (it needs a JVM); the tests check
the requests the official client sends and the parsing of documented responses.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparsearch.backends.lucene import (
    DEFAULT_FIELD,
    MAX_CLAUSES,
    LuceneBackend,
    server_url,
)
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import InvalidInputError
from sparsearch.search import Hits, SearchParams

TWO_PHASE_PIPELINE = "sparsearch-two-phase"


class OpenSearchBackend(LuceneBackend):
    """An OpenSearch index whose vectors live in a ``rank_features`` field.

    ``hosts``: the server URL (ignored when ``client``, an ``opensearchpy.OpenSearch``, is
    given); ``client_options`` go to ``OpenSearch(...)`` (``http_auth``, ``verify_certs``, ...).
    ``settings``: index settings at creation; ``max_clauses``: the cluster's
    ``indices.query.bool.max_clause_count``.
    """

    engine = "OpenSearch"
    vector_type = "rank_features"

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
        **client_options: Any,
    ) -> None:
        if client is None:
            from opensearchpy import OpenSearch

            client = OpenSearch(hosts=[hosts], **client_options)
        super().__init__(
            client,
            index,
            field=field,
            recreate=recreate,
            settings=settings,
            max_clauses=max_clauses,
        )

    def _create_index(self, body: dict[str, Any]) -> Any:
        return self.client.indices.create(index=self.index, body=body)

    def _bulk(self, lines: list[dict[str, Any]]) -> Any:
        return self.client.bulk(body=lines)

    def _msearch(self, lines: list[dict[str, Any]]) -> Any:
        return self.client.msearch(body=lines, index=self.index)

    def _clause(self, tokens: dict[str, float]) -> dict[str, Any]:
        return {"neural_sparse": {self.field: {"query_tokens": tokens}}}

    def _is_transient(self, err: BaseException) -> bool:
        from opensearchpy.exceptions import ConnectionError, TransportError

        if isinstance(err, ConnectionError):  # timeouts included
            return True
        return isinstance(err, TransportError) and err.status_code in (429, 502, 503, 504)

    def use_two_phase(self, name: str = TWO_PHASE_PIPELINE, **parameters: Any) -> dict[str, Any]:
        """Create the two-phase search pipeline ``name`` (``parameters``: those of
        :func:`two_phase_pipeline`) and make it this index's default
        (``index.search.default_pipeline``); returns the pipeline body."""
        body = two_phase_pipeline(**parameters)
        pipelines = self.client.search_pipeline
        self._call("create the search pipeline", lambda: pipelines.put(id=name, body=body))
        settings = {"index.search.default_pipeline": name}
        self._call(
            "set the default pipeline",
            lambda: self.client.indices.put_settings(index=self.index, body=settings),
        )
        return body

    def search_texts(
        self,
        texts: Sequence[str],
        k: int = 10,
        *,
        model_id: str | None = None,
        analyzer: str | None = None,
        params: SearchParams | None = None,
    ) -> Hits:
        """Top ``k`` documents of each text, weighted by OpenSearch itself: the deployed model or
        tokenizer ``model_id`` (see :func:`register_tokenizer_body`), or a built-in ``analyzer``
        (``bert-uncased``, ``mbert-uncased``; OpenSearch 3.0+)."""
        if isinstance(texts, str) or not all(isinstance(t, str) and t for t in texts):
            raise InvalidInputError("texts must be a list of non-empty strings")
        if (model_id is None) == (analyzer is None):
            raise InvalidInputError("give exactly one of model_id and analyzer")
        source = {"model_id": model_id} if model_id is not None else {"analyzer": analyzer}
        clauses = [
            {"neural_sparse": {self.field: {"query_text": text, **source}}} for text in texts
        ]
        return self.run_searches(clauses, k, params)


def two_phase_pipeline(
    prune_ratio: float = 0.4,
    expansion_rate: float = 5.0,
    max_window_size: int = 10000,
    enabled: bool = True,
) -> dict[str, Any]:
    """The body of a search pipeline holding OpenSearch's ``neural_sparse_two_phase_processor``.

    ``prune_ratio`` (0..1): tokens weighing less than ``prune_ratio x`` the query's largest
    weight wait for the second phase. ``expansion_rate`` (> 1): the second phase rescores
    ``size x expansion_rate`` documents, at most ``max_window_size`` (> 50).

    >>> two_phase_pipeline()["request_processors"][0]["neural_sparse_two_phase_processor"]
    {'enabled': True, 'two_phase_parameter': {'prune_ratio': 0.4, 'expansion_rate': 5.0, 'max_window_size': 10000}}
    """
    if not 0 <= prune_ratio <= 1:
        raise InvalidInputError(f"prune_ratio must be in [0, 1], got {prune_ratio!r}")
    if not expansion_rate > 1:
        raise InvalidInputError(f"expansion_rate must be above 1, got {expansion_rate!r}")
    if isinstance(max_window_size, bool) or not isinstance(max_window_size, int):
        raise InvalidInputError(f"max_window_size must be an integer, got {max_window_size!r}")
    if max_window_size <= 50:
        raise InvalidInputError(f"max_window_size must be above 50, got {max_window_size}")
    processor = {
        "enabled": bool(enabled),
        "two_phase_parameter": {
            "prune_ratio": float(prune_ratio),
            "expansion_rate": float(expansion_rate),
            "max_window_size": max_window_size,
        },
    }
    return {"request_processors": [{"neural_sparse_two_phase_processor": processor}]}


def write_tokenizer_model(model: Any, path: str | Path) -> Path:
    """Write the zip OpenSearch registers as a ``SPARSE_TOKENIZE`` model: ``tokenizer.json``
    and ``idf.json`` (each token's static query weight; zero weights left out) of an
    inference-free ``model`` (a ``SparseEncoder`` whose query side is a
    ``SparseStaticEmbedding``, or that module). Returns ``path``."""
    static = _static_module(model)
    tokenizer = static.tokenizer
    weights = static.weight.detach().cpu().float().numpy()
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(weights))))
    idf = {token: float(w) for token, w in zip(tokens, weights.tolist(), strict=True) if w > 0}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("tokenizer.json", tokenizer.backend_tokenizer.to_str())
        zipped.writestr("idf.json", json.dumps(idf, ensure_ascii=False))
    tmp.replace(path)
    return path


def register_tokenizer_body(zip_path: str | Path, name: str, url: str) -> dict[str, Any]:
    """The ``POST /_plugins/_ml/models/_register`` body of the zip written by
    :func:`write_tokenizer_model`, served to the cluster at ``url``."""
    data = Path(zip_path).read_bytes()
    return {
        "name": name,
        "version": "1.0.0",
        "function_name": "SPARSE_TOKENIZE",
        "model_format": "TORCH_SCRIPT",
        "model_content_size_in_bytes": len(data),
        "model_content_hash_value": hashlib.sha256(data).hexdigest(),
        "url": url,
    }


def _static_module(model: Any) -> Any:
    from sparsearch.models import SparseStaticEmbedding

    if isinstance(model, SparseStaticEmbedding):
        return model
    modules = model.modules() if hasattr(model, "modules") else []
    static = [module for module in modules if isinstance(module, SparseStaticEmbedding)]
    if len(static) != 1:
        raise InvalidInputError(
            "an inference-free model has one SparseStaticEmbedding on its query side, "
            f"found {len(static)} in {type(model).__name__}"
        )
    return static[0]


def from_uri(uri: TargetURI, **options: Any) -> OpenSearchBackend:
    """``opensearch://host:port/index`` (``opensearch+https://`` for TLS)."""
    return OpenSearchBackend(
        server_url(uri), uri.require_name(), **uri.options(options, {"field": str})
    )
