"""Property tests: after any sequence of add / delete / upsert / compact, search equals brute force
over the live documents (ids identical, scores within 1e-6), with and without filters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.errors import FilterError
from sparsearch.index import SparseIndex
from sparsearch.search import Filter, SearchParams
from sparsearch.sparse import SparseVectors
from tests.index.brute import assert_same_hits, brute_force, sparse_batches

DIM = 24


class Model:
    """The live documents in insertion order: the reference the index must agree with."""

    def __init__(self) -> None:
        self.docs: dict[int, tuple[SparseVectors, dict]] = {}  # dicts keep insertion order

    def add(self, ids, vectors, payloads):
        for i, doc_id in enumerate(ids):
            self.docs.pop(doc_id, None)
            self.docs[doc_id] = (vectors[i], payloads[i])

    def expect(self, queries, k, allowed_ids=None, payload=None):
        ids = list(self.docs)
        vectors = (
            SparseVectors.concat([v for v, _ in self.docs.values()])
            if ids
            else SparseVectors.empty(DIM)
        )
        allowed = None
        if allowed_ids is not None or payload:
            allowed = np.array(
                [
                    (allowed_ids is None or doc_id in allowed_ids)
                    and all(p.get(key) == value for key, value in (payload or {}).items())
                    for doc_id, (_, p) in self.docs.items()
                ],
                bool,
            )
        return brute_force(vectors, ids, queries, k, allowed)


@st.composite
def operations(draw):
    """A list of operations with ids drawn from a small pool, so upserts and deletes hit."""
    ops = []
    for _ in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(["add", "add", "upsert", "delete", "compact"]))
        if kind in ("add", "upsert"):
            vectors = draw(sparse_batches(n_min=1, n_max=25, dim=DIM))
            ids = draw(
                st.lists(st.integers(0, 60), min_size=vectors.n, max_size=vectors.n, unique=True)
            )
            payloads = [{"color": draw(st.sampled_from(["red", "blue"]))} for _ in ids]
            ops.append((kind, ids, vectors, payloads))
        elif kind == "delete":
            ops.append((kind, draw(st.lists(st.integers(0, 60), max_size=10, unique=True))))
        else:
            ops.append((kind,))
    return ops


def apply(index: SparseIndex, model: Model, ops) -> None:
    for op in ops:
        if op[0] == "add":
            _, ids, vectors, payloads = op
            fresh = [i for i, doc_id in enumerate(ids) if doc_id not in model.docs]
            ids = [ids[i] for i in fresh]
            vectors, payloads = vectors[np.array(fresh, int)], [payloads[i] for i in fresh]
            index.add(ids, vectors, payloads)
            model.add(ids, vectors, payloads)
        elif op[0] == "upsert":
            _, ids, vectors, payloads = op
            index.upsert(ids, vectors, payloads)
            model.add(ids, vectors, payloads)
        elif op[0] == "delete":
            present = [doc_id for doc_id in op[1] if doc_id in model.docs]
            index.delete(present)
            for doc_id in present:
                del model.docs[doc_id]
        else:
            index.compact()


@settings(max_examples=60, deadline=None)
@given(
    ops=operations(),
    queries=sparse_batches(n_min=1, n_max=5, dim=DIM),
    k=st.integers(1, 12),
    data=st.data(),
)
def test_search_after_any_operations_equals_brute_force(ops, queries, k, data):
    index = SparseIndex(dim=DIM, max_segments=3)
    model = Model()
    apply(index, model, ops)
    assert len(index) == len(model.docs)
    threads = data.draw(st.sampled_from([1, 2]))
    assert_same_hits(
        index.search(queries, k=k, params=SearchParams(threads=threads)), *model.expect(queries, k)
    )

    allowed = set(data.draw(st.lists(st.integers(0, 60), max_size=30)))
    assert_same_hits(
        index.search(queries, k=k, params=SearchParams(filter=Filter(ids=allowed))),
        *model.expect(queries, k, allowed_ids=allowed),
    )
    color = data.draw(st.sampled_from(["red", "blue"]))
    params = SearchParams(filter={"payload": {"color": color}}, return_payloads=True)
    if len(index) and "color" not in index.payload_fields():
        with pytest.raises(FilterError, match="unknown payload field 'color'"):
            index.search(queries, k=k, params=params)
        return
    hits = index.search(queries, k=k, params=params)
    assert_same_hits(hits, *model.expect(queries, k, payload={"color": color}))
    assert all(p is None or p == {"color": color} for p in hits.payloads.ravel())
    assert [p is None for p in hits.payloads.ravel()] == np.isneginf(hits.scores).ravel().tolist()


@settings(max_examples=25, deadline=None)
@given(ops=operations(), queries=sparse_batches(n_min=1, n_max=4, dim=DIM))
def test_operations_equal_an_index_built_fresh_from_live_documents(ops, queries):
    index = SparseIndex(dim=DIM, max_segments=2)
    model = Model()
    apply(index, model, ops)
    fresh = SparseIndex(dim=DIM)
    if model.docs:
        fresh.add(
            list(model.docs),
            SparseVectors.concat([v for v, _ in model.docs.values()]),
            [p for _, p in model.docs.values()],
        )
    a, b = index.search(queries, k=5), fresh.search(queries, k=5)
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_array_equal(a.scores, b.scores)
    for doc_id, (vector, _) in model.docs.items():
        got = index.get([doc_id])
        np.testing.assert_array_equal(got.indices, vector.indices)
        np.testing.assert_array_equal(got.values, vector.values)
