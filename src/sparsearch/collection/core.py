"""Collection: a folder that owns everything a search needs — encoders, engine, dense vectors.

Layout::

    ROOT/collection.json   what it was built with (see :mod:`.config`)
    ROOT/index/            the SparseIndex (durable: every write is in its log before it returns)
    ROOT/models/           encoders given as objects, saved here (hub ids are only named)
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sparsearch.collection import encoders, stored
from sparsearch.collection.config import (
    CollectionConfig,
    DenseSpec,
    ModelSpec,
    check_choice,
    read_config,
    write_config,
)
from sparsearch.collection.dense import DenseVectors
from sparsearch.collection.queries import (
    MODES,
    Encoded,
    check_text,
    dense_query,
    row_dict,
    sparse_query,
)
from sparsearch.collection.results import Hit, Point
from sparsearch.collection.searching import run_search
from sparsearch.collection.validation import check_payload_types
from sparsearch.errors import (
    CollectionExistsError,
    ConfigError,
    DuplicateIdError,
    InvalidInputError,
    UnknownIdError,
)
from sparsearch.filters import DocId, FilterLike
from sparsearch.index import SparseIndex
from sparsearch.index.checks import check_payloads, normalize_ids
from sparsearch.sparse import SparseVectors

INDEX_DIR = "index"


class Collection:
    """Text in, ranked hits out: an encoder (and optionally a dense model) bound to an index.

    Create one with :meth:`create`, reopen it with :meth:`open`. Writes encode the texts and go
    to the engine in atomic batches of ``write_batch`` documents (a search sees all of a batch
    or none of it), each in the write-ahead log before the call returns.

    Example::

        col = Collection.create("notes", model="rasyosef/splade-tiny")
        col.upsert_texts(["a", "b"], ["the weather is nice", "she is going to the cinema"],
                         payloads=[{"lang": "en"}, {"lang": "fr"}])
        col.search("cinema", k=1)[0].id                                      # 'b'
        col.search("cinema", k=1, filter={"must": [{"key": "lang", "match": {"value": "en"}}]})
        col.close()
    """

    def __init__(
        self,
        path: Path,
        config: CollectionConfig,
        sparse_model: Any,
        dense_model: Any,
        index: SparseIndex,
    ) -> None:
        self.path = path
        self.config = config
        self.sparse_model = sparse_model
        self.dense_model = dense_model
        self.index = index
        self.dense = DenseVectors(config.dense) if config.dense is not None else None
        vocab = sparse_model.vocab
        self.tokens = {token: i for i, token in enumerate(vocab)} if vocab is not None else None
        self._encode_lock = threading.Lock()  # torch modules are not re-entrant across threads

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        model: Any,
        *,
        dense_model: Any = None,
        dense_index: str = "flat",
        fusion: str = "rrf",
        payload_schema: Mapping[str, str] | None = None,
        max_active_dims: int | None = None,
        precision: str = "float32",
        store_text: bool = True,
    ) -> Collection:
        """A new collection in the empty or new folder ``path``.

        ``model``: the sparse encoder (hub id, folder, or a ``SparseEncoder``; objects are saved
        inside the collection). ``dense_model``: a sentence-transformers model (id, folder or
        object) for ``mode="dense"`` / ``"hybrid"``, searched with faiss (``dense_index``:
        ``"flat"`` exact inner product, or ``"hnsw"``). ``fusion``: the hybrid default (``"rrf"``
        or ``"linear"``). ``payload_schema``: ``{field: type}`` checked on every write.
        ``store_text``: keep each document's text (needed for ``get`` texts and reranking).
        """
        root = Path(path)
        if (root / "collection.json").exists():
            raise CollectionExistsError(f"{root} already holds a collection")
        if root.exists() and any(root.iterdir()):
            raise CollectionExistsError(f"{root} is not empty: a collection needs its own folder")
        check_choice("fusion", fusion, ("rrf", "linear"))
        check_choice("dense_index", dense_index, ("flat", "hnsw"))
        check_choice("precision", precision, ("float32", "bfloat16"))
        if max_active_dims is not None and (
            isinstance(max_active_dims, bool)
            or not isinstance(max_active_dims, int)
            or max_active_dims < 1
        ):  # checked here: the encoder would only refuse it at the first write
            raise ConfigError(
                f"max_active_dims must be a positive integer, got {max_active_dims!r}"
            )
        root.mkdir(parents=True, exist_ok=True)
        try:
            return cls._build(
                root,
                model,
                dense_model,
                dense_index,
                fusion,
                payload_schema,
                max_active_dims,
                precision,
                store_text,
            )
        except BaseException:  # leave the folder as it was found: empty
            for child in root.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            raise

    @classmethod
    def _build(
        cls,
        root: Path,
        model: Any,
        dense_model: Any,
        dense_index: str,
        fusion: str,
        payload_schema: Mapping[str, str] | None,
        max_active_dims: int | None,
        precision: str,
        store_text: bool,
    ) -> Collection:
        sparse, source, revision = encoders.prepare(model, root, "sparse", encoders.load_sparse)
        if max_active_dims is not None:
            sparse.max_active_dims = max_active_dims
        spec = ModelSpec(
            source=source,
            revision=revision,
            fingerprint=encoders.fingerprint(sparse),
            max_active_dims=sparse.max_active_dims,
            precision=precision,
        )
        dense, dense_spec = None, None
        if dense_model is not None:
            dense, dsource, drevision = encoders.prepare(
                dense_model, root, "dense", encoders.load_dense
            )
            from sparsearch.hybrid.dense import normalizes

            dense_spec = DenseSpec(
                model=ModelSpec(dsource, drevision, encoders.fingerprint(dense)),
                dim=int(dense.get_embedding_dimension()),
                normalize=normalizes(dense),
                index=dense_index,
            )
        config = CollectionConfig(
            sparse=spec,
            dense=dense_spec,
            fusion=fusion,
            payload_schema=dict(payload_schema or {}),
            store_text=store_text,
        )
        index = SparseIndex(root / INDEX_DIR, dim=sparse.dim, vocab=sparse.vocab, durable=True)
        index.save()
        write_config(root, config)  # last: a folder without it is not a collection yet
        return cls(root, config, sparse, dense, index)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, force: bool = False) -> Collection:
        """Open a collection; a model whose weights differ from the ones that wrote it raises
        :class:`~sparsearch.errors.ModelMismatchError` unless ``force``."""
        root = Path(path)
        config = read_config(root)
        spec = config.sparse
        sparse = encoders.load_sparse(encoders.model_folder(spec.source, spec.revision, root))
        encoders.check_fingerprint(spec, sparse, "sparse", force)
        sparse.max_active_dims = spec.max_active_dims
        dense = None
        if config.dense is not None:
            dspec = config.dense.model
            dense = encoders.load_dense(encoders.model_folder(dspec.source, dspec.revision, root))
            encoders.check_fingerprint(dspec, dense, "dense", force)
        index = SparseIndex.open(root / INDEX_DIR, durable=True)
        return cls(root, config, sparse, dense, index)

    def flush(self) -> None:
        """Fold the write-ahead log into segments (reopening is faster afterwards)."""
        self.index.flush()

    def close(self) -> None:
        """Release the writer lock (logged writes stay durable in the log)."""
        self.index.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Collection({str(self.path)!r}, {self.count()} documents)"

    # ------------------------------------------------------------------ encoding
    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> tuple[SparseVectors, np.ndarray | None]:
        """The sparse (and dense, with a dense model) vectors of documents, as ingest makes them."""
        return self._encode(texts, "document", batch_size)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> tuple[SparseVectors, np.ndarray | None]:
        """The sparse (and dense) vectors of query texts, ``batch_size`` per forward pass."""
        return self._encode(texts, "query", batch_size)

    def _encode(
        self, texts: Sequence[str], side: str, batch_size: int
    ) -> tuple[SparseVectors, np.ndarray | None]:
        spec = self.config.sparse
        route = spec.query_route if side == "query" else spec.document_route
        with self._encode_lock:
            sparse = self.sparse_model.encode(
                list(texts), batch_size=batch_size, task=route, precision=spec.precision
            )
            dense = self._embed(texts, side, batch_size)
        return sparse, dense

    def _embed(self, texts: Sequence[str], route: str, batch_size: int) -> np.ndarray | None:
        if self.dense_model is None or self.config.dense is None:
            return None
        from sparsearch.hybrid.dense import embed

        return embed(
            self.dense_model, list(texts), route, batch_size, self.config.dense.normalize, False
        )

    # ------------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        **options: Any,
    ) -> list[DocId]:
        """Add new documents (an id already stored raises ``DuplicateIdError``); returns the ids
        (random UUIDs when not given). Options as :meth:`upsert_texts`."""
        checked = self._ids(ids if ids is not None else [uuid.uuid4().hex for _ in texts], texts)
        present = _located(self.index, checked, stored_ones=True)
        if present:
            raise DuplicateIdError(f"ids already stored: {present[:5]} (use upsert_texts)")
        self._write_texts(checked, texts, payloads, add=True, **options)
        return checked

    def upsert_texts(
        self,
        ids: Sequence[DocId],
        texts: Sequence[str],
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int = 32,
        write_batch: int = 256,
        show_progress_bar: bool | None = None,
    ) -> None:
        """Encode and store documents, replacing those whose id is stored.

        ``batch_size`` texts per forward pass; every ``write_batch`` documents are one atomic,
        durable engine write (a progress bar counts them for more than one batch)."""
        self._write_texts(
            self._ids(ids, texts),
            texts,
            payloads,
            add=False,
            batch_size=batch_size,
            write_batch=write_batch,
            show_progress_bar=show_progress_bar,
        )

    def _write_texts(
        self,
        ids: list[DocId],
        texts: Sequence[str],
        payloads: Sequence[Mapping[str, Any] | None] | None,
        *,
        add: bool,
        batch_size: int = 32,
        write_batch: int = 256,
        show_progress_bar: bool | None = None,
    ) -> None:
        texts = [check_text(text, f"text {i}") for i, text in enumerate(texts)]
        self._check_payloads(payloads, len(ids))
        if isinstance(write_batch, bool) or not isinstance(write_batch, int) or write_batch < 1:
            raise InvalidInputError(f"write_batch must be a positive integer, got {write_batch!r}")
        progress = len(ids) > write_batch if show_progress_bar is None else show_progress_bar
        with tqdm(total=len(ids), desc="Ingesting", unit="doc", disable=not progress) as bar:
            for start in range(0, len(ids), write_batch):
                part = slice(start, start + write_batch)
                sparse, dense = self.encode_documents(texts[part], batch_size)
                self._write(
                    ids[part],
                    sparse,
                    payloads[part] if payloads is not None else None,
                    texts[part],
                    dense,
                    add=add,
                )
                bar.update(len(ids[part]))

    def upsert_vectors(
        self,
        ids: Sequence[DocId],
        vectors: SparseVectors | Sequence[Mapping[str, float]],
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        dense: np.ndarray | Sequence[Sequence[float]] | None = None,
        texts: Sequence[str] | None = None,
    ) -> None:
        """Store pre-encoded documents in one atomic write: ``vectors`` as ``SparseVectors`` or
        ``{token: weight}`` dicts, optionally their ``dense`` rows and ``texts``."""
        checked = self._ids(ids, None)
        if not isinstance(vectors, SparseVectors):
            if isinstance(vectors, (str, bytes, Mapping)) or not isinstance(vectors, Sequence):
                raise InvalidInputError("vectors must be SparseVectors or a list of dicts")
            vectors = SparseVectors.from_dicts(
                [self._row(row, i) for i, row in enumerate(vectors)], dim=self.sparse_model.dim
            )
        if vectors.n != len(checked):
            raise InvalidInputError(f"{len(checked)} ids for {vectors.n} vectors")
        if texts is not None:
            texts = [check_text(text, f"text {i}") for i, text in enumerate(texts)]
            if len(texts) != len(checked):
                raise InvalidInputError(f"{len(checked)} ids for {len(texts)} texts")
        dense_rows = self._dense_rows(dense, len(checked))
        self._check_payloads(payloads, len(checked))
        self._write(checked, vectors, payloads, texts, dense_rows, add=False)

    def _row(self, vector: Any, i: int) -> dict[int, Any]:
        row = row_dict(vector, self.tokens) if isinstance(vector, Mapping) and vector else None
        if row is None and not (isinstance(vector, Mapping) and not vector):
            raise InvalidInputError(
                f"vector {i} must be {{token: weight}} or {{indices, values}}, got {vector!r:.60}"
            )
        return row or {}

    def _dense_rows(self, dense: Any, n: int) -> np.ndarray | None:
        if dense is None:
            return None
        if self.config.dense is None:
            raise InvalidInputError("this collection has no dense model: it stores no dense rows")
        rows = np.asarray(dense, dtype=np.float32)
        if rows.shape != (n, self.config.dense.dim):
            raise InvalidInputError(
                f"dense rows must have shape ({n}, {self.config.dense.dim}), got {rows.shape}"
            )
        if not np.isfinite(rows).all():
            raise InvalidInputError("dense rows must be finite (no NaN or infinity)")
        return rows

    def _write(
        self,
        ids: list[DocId],
        vectors: SparseVectors,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        texts: Sequence[str] | None,
        dense: np.ndarray | None,
        *,
        add: bool,
    ) -> None:
        keep = texts if self.config.store_text else None
        packed = stored.pack(payloads, keep, dense, len(ids))
        (self.index.add if add else self.index.upsert)(ids, vectors, packed)

    def _ids(self, ids: Any, texts: Sequence[str] | None) -> list[DocId]:
        checked = normalize_ids(ids)
        if texts is not None:
            if isinstance(texts, str) or not isinstance(texts, Sequence):
                raise InvalidInputError("texts must be a list of strings")
            if len(texts) != len(checked):
                raise InvalidInputError(f"{len(checked)} ids for {len(texts)} texts")
        if len(set(checked)) != len(checked):
            twice = [doc_id for doc_id, n in Counter(checked).items() if n > 1]
            raise DuplicateIdError(f"ids given twice in one batch: {twice[:5]}")
        return checked

    def _check_payloads(self, payloads: Any, n: int) -> None:
        if payloads is None:
            return
        if isinstance(payloads, (str, bytes, Mapping)) or not isinstance(payloads, Sequence):
            raise InvalidInputError("payloads must be a list of objects (or null)")
        if len(payloads) != n:
            raise InvalidInputError(f"{n} documents but {len(payloads)} payloads")
        check_payload_types(payloads, self.config.payload_schema)
        # the engine and stored.pack check these per write batch: check all of them before the
        # first batch is written, so that a bad payload further on leaves nothing stored
        check_payloads(list(payloads), n)
        for i, payload in enumerate(payloads):
            if payload is not None and stored.RESERVED in payload:
                raise InvalidInputError(f"payload {i} uses the reserved field {stored.RESERVED!r}")

    def delete(self, ids: Sequence[DocId]) -> None:
        """Delete documents; an unknown id raises ``UnknownIdError`` and deletes nothing."""
        self.index.delete(ids)

    # ------------------------------------------------------------------ reads
    def count(self) -> int:
        """How many documents are stored."""
        return len(self.index)

    def get(self, ids: Sequence[DocId]) -> list[Point]:
        """The stored documents (payload, text, sparse vector); an unknown id raises
        ``UnknownIdError``."""
        view = self.index.pinned()
        checked = normalize_ids(ids)
        missing = _located(view, checked, stored_ones=False)
        if missing:
            raise UnknownIdError(f"unknown ids: {missing[:5]}")
        vectors = view.get(checked)
        rows = view.get_payloads(checked)
        vocab = self.sparse_model.vocab
        out = []
        for i, doc_id in enumerate(checked):
            idx, val = vectors.row(i)
            keys = [vocab[j] if vocab is not None else str(j) for j in idx.tolist()]
            out.append(
                Point(
                    id=doc_id,
                    payload=stored.user_payload(rows[i]),
                    text=stored.text_of(rows[i]),
                    vector=dict(zip(keys, val.tolist(), strict=True)),
                )
            )
        return out

    def info(self) -> dict[str, Any]:
        """Counts, sizes, the encoders and the payload fields."""
        stats = self.index.stats()
        fields = {
            name: sorted(kinds)
            for name, kinds in self.index.payload_fields().items()
            if name != stored.RESERVED
        }
        return {
            "path": str(self.path),
            "documents": stats["documents"],
            "segments": stats["segments"],
            "bytes": stats["bytes"],
            "dim": stats["dim"],
            "config": self.config.to_dict(),
            "payload_fields": fields,
        }

    # ------------------------------------------------------------------ search
    def search(
        self,
        query: Any,
        k: int = 10,
        *,
        filter: FilterLike | None = None,  # noqa: A002 - the name users know from Qdrant
        mode: str | None = None,
        fusion: str | None = None,
        rerank: Any = None,
        explain: bool = False,
        with_payload: bool = True,
        candidates: int = 100,
        threads: int | None = None,
        recall: float | None = None,
    ) -> list[Hit]:
        """The top ``k`` documents for one query (see :meth:`search_batch`)."""
        return self.search_batch(
            [query],
            k,
            filter=filter,
            mode=mode,
            fusion=fusion,
            rerank=rerank,
            explain=explain,
            with_payload=with_payload,
            candidates=candidates,
            threads=threads,
            recall=recall,
        )[0]

    def search_batch(
        self,
        queries: Sequence[Any],
        k: int = 10,
        *,
        filter: FilterLike | None = None,  # noqa: A002
        mode: str | None = None,
        fusion: str | None = None,
        rerank: Any = None,
        explain: bool = False,
        with_payload: bool = True,
        candidates: int = 100,
        threads: int | None = None,
        recall: float | None = None,
        encoded: Encoded | None = None,
    ) -> list[list[Hit]]:
        """The top ``k`` documents of each query, all on one snapshot of the collection.

        A query is text, ``{token: weight}``, ``{"indices", "values"}``, a one-row
        ``SparseVectors`` or a dense vector. ``mode``: ``"sparse"`` (default without a dense
        model), ``"dense"``, or ``"hybrid"`` (default with one): both lists of ``candidates``
        fused by ``fusion`` (``"rrf"`` or ``"linear"``; default: the collection's). ``rerank``:
        a cross-encoder (model id or object with ``predict(pairs)``) that rescores the top
        ``candidates`` on the stored texts. ``explain``: each hit's matching tokens with the
        query weight, document weight and contribution (they sum to the sparse score).
        ``threads``: engine threads for the batch (default: every core). ``recall``: search
        the sparse side approximately, aiming at this recall@10 against exact search
        (``SearchParams(mode="approx", recall=...)``, see the engine docs); default exact.
        ``encoded``: the
        queries already encoded by :meth:`encode` (what the server's micro-batching passes).
        """
        if isinstance(queries, (str, bytes, Mapping)) or not isinstance(queries, Sequence):
            raise InvalidInputError("queries must be a list")
        mode = mode or ("hybrid" if self.dense is not None else "sparse")
        check_choice("mode", mode, MODES)
        fusion = fusion or self.config.fusion
        check_choice("fusion", fusion, ("rrf", "linear"))
        if mode != "sparse" and self.dense is None:
            raise InvalidInputError(f"mode {mode!r} needs a dense model; this collection has none")
        if not isinstance(explain, bool) or not isinstance(with_payload, bool):
            raise InvalidInputError("explain and with_payload must be booleans")
        if encoded is None:
            encoded = self.encode(queries)
        return run_search(
            self,
            encoded,
            k,
            mode=mode,
            fusion=fusion,
            flt=filter,
            rerank=rerank,
            explain=explain,
            with_payload=with_payload,
            candidates=candidates,
            threads=threads,
            recall=recall,
        )

    def encode(self, queries: Sequence[Any], batch_size: int = 32) -> Encoded:
        """Each query as vectors (texts are encoded ``batch_size`` per forward pass)."""
        dim = self.sparse_model.dim
        dense_dim = self.config.dense.dim if self.config.dense is not None else None
        texts: list[str | None] = []
        sparse: list[SparseVectors | None] = []
        dense: list[np.ndarray | None] = []
        for i, query in enumerate(queries):
            as_dense = dense_query(query, dense_dim) if not isinstance(query, str) else None
            as_sparse = (
                sparse_query(query, dim, self.tokens)
                if as_dense is None and not isinstance(query, str)
                else None
            )
            if isinstance(query, str):
                check_text(query, f"query {i}")
            elif as_dense is None and as_sparse is None:
                raise InvalidInputError(
                    f"query {i} must be text, {{token: weight}}, {{indices, values}} or a dense "
                    f"vector; got {type(query).__name__}"
                )
            texts.append(query if isinstance(query, str) else None)
            sparse.append(as_sparse)
            dense.append(as_dense)
        todo = [i for i, text in enumerate(texts) if text is not None]
        if todo:
            sparse_rows, dense_rows = self.encode_queries(
                [q for q in texts if q is not None], batch_size
            )
            for row, i in enumerate(todo):
                sparse[i] = sparse_rows[np.array([row])]
                dense[i] = dense_rows[row] if dense_rows is not None else None
        return Encoded(texts=texts, sparse=sparse, dense=dense)


def _located(index: SparseIndex, ids: list[DocId], *, stored_ones: bool) -> list[DocId]:
    """Up to five of ``ids`` that ``index`` holds (``stored_ones``) or lacks, in one bulk lookup."""
    where, _ = index.snapshot().locate(ids)
    chosen = np.flatnonzero(where >= 0 if stored_ones else where < 0)[:5]
    return [ids[i] for i in chosen.tolist()]
