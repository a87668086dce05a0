"""Fusion stages and the Run type, checked against the formulas written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid import RRF, LinearFusion
from sparsearch.run import Run, top_k

SPARSE = Run.from_dict({"q": {"a": 10.0, "b": 8.0, "c": 8.0, "d": 1.0}, "r": {"x": 1.0}})
DENSE = Run.from_dict({"q": {"c": 0.9, "e": 0.8, "a": 0.1}})


def test_rrf_sums_reciprocal_ranks_in_trec_eval_order():
    fused = RRF(k=60).fuse([SPARSE, DENSE]).to_dict()
    # sparse ranks: a 1, c 2 (tie with b, docid descending), b 3, d 4; dense: c 1, e 2, a 3
    expected = {
        "a": 1 / 61 + 1 / 63,
        "b": 1 / 63,
        "c": 1 / 62 + 1 / 61,
        "d": 1 / 64,
        "e": 1 / 62,
    }
    assert fused["q"] == pytest.approx(expected, abs=1e-15)
    assert list(fused["q"]) == ["c", "a", "e", "b", "d"]  # the fused run is in trec_eval order
    assert fused["r"] == {"x": 1 / 61}
    weighted = RRF(k=0, weights=[2.0, 0.0]).fuse([SPARSE, DENSE]).to_dict()
    assert weighted["q"]["a"] == 2.0 and weighted["q"]["e"] == 0.0


def test_linear_minmax_fusion():
    fused = LinearFusion(weights=[0.7, 0.3], normalization="minmax").fuse([SPARSE, DENSE])
    sparse = {"a": 1.0, "b": 7 / 9, "c": 7 / 9, "d": 0.0, "e": 0.0}  # e missing → 0
    dense = {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0, "e": 0.7 / 0.8}  # b, d missing → 0
    assert fused.to_dict()["q"] == pytest.approx(
        {d: 0.7 * sparse[d] + 0.3 * dense[d] for d in sparse}
    )
    assert fused.to_dict()["r"] == pytest.approx({"x": 0.7})  # the dense run has no hit for r


def test_linear_zscore_fusion_gives_missing_documents_the_lowest_z():
    fused = LinearFusion(normalization="zscore").fuse([SPARSE, DENSE]).to_dict()["q"]
    s = np.array([10.0, 8.0, 8.0, 1.0])
    zs = dict(zip("abcd", (s - s.mean()) / s.std(), strict=True))
    d = np.array([0.9, 0.8, 0.1])
    zd = dict(zip("cea", (d - d.mean()) / d.std(), strict=True))
    zs["e"], zd["b"], zd["d"] = min(zs.values()), min(zd.values()), min(zd.values())
    assert fused == pytest.approx({k: 0.5 * zs[k] + 0.5 * zd[k] for k in "abcde"})
    # one hit only: min-max maps it to 1, z-score to 0
    one = Run.from_dict({"q": {"a": 3.0}})
    assert LinearFusion().fuse([one]).to_dict()["q"] == {"a": 1.0}
    assert LinearFusion(normalization="zscore").fuse([one]).to_dict()["q"] == {"a": 0.0}


def test_fusion_keeps_int_ids_and_payloads():
    a = Run.from_arrays(
        ["q"],
        np.array([[7, 3]]),
        np.array([[2.0, 1.0]]),
        payloads=np.array([[{"n": 7}, {"n": 3}]], object),
    )
    b = Run.from_arrays(["q"], np.array([[3, -1]]), np.array([[5.0, -np.inf]]))
    fused = RRF().fuse([a, b])
    assert fused.row(0) == [(3, 1 / 61 + 1 / 62), (7, 1 / 61)]
    assert fused.payloads[0, :2].tolist() == [{"n": 3}, {"n": 7}]


def test_fusion_rejects_bad_arguments():
    with pytest.raises(InvalidInputError):
        RRF().fuse([])
    with pytest.raises(InvalidInputError):
        RRF(k=-1)
    with pytest.raises(InvalidInputError):
        LinearFusion(weights=[1.0]).fuse([SPARSE, DENSE])
    with pytest.raises(InvalidInputError):
        LinearFusion(normalization="rank")


def test_run_orders_rows_like_trec_eval_and_converts_at_the_edges():
    assert SPARSE.row(0) == [("a", 10.0), ("c", 8.0), ("b", 8.0), ("d", 1.0)]
    assert SPARSE.cut(1).to_dict() == {"q": {"a": 10.0}, "r": {"x": 1.0}}
    assert Run.from_dict({"1": {"1": 5.0, "2": 1.0}}).drop_identical_ids().to_dict() == {
        "1": {"2": 1.0}
    }
    ids = np.array([["a", None], ["b", "c"]], dtype=object)
    scores = np.array([[1.0, -np.inf], [2.0, 1.5]], dtype=np.float32)
    run = Run.from_arrays(["q1", "q2"], ids, scores)
    assert run.to_dict() == {"q1": {"a": 1.0}, "q2": {"b": 2.0, "c": 1.5}}
    ints = Run.from_arrays(["q"], np.array([[9, 10]]), np.array([[1.0, 1.0]]))
    assert ints.row(0) == [(9, 1.0), (10, 1.0)]  # ids stay ints; ties by id text: "9" > "10"
    with pytest.raises(InvalidInputError, match="finite"):
        Run.from_dict({"q": {"a": float("nan")}})
    with pytest.raises(InvalidInputError, match="twice"):
        Run.from_arrays(["q", "q"], ids, scores)


def test_top_k_of_a_dense_score_matrix():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    positions, values = top_k(scores, 3)
    assert positions.tolist() == [[1, 3, 2], [0, 1, 2]]  # ties: lower position first
    assert values.tolist() == [[0.9, 0.9, 0.5], [3.0, 2.0, 1.0]]
    assert top_k(scores, 10)[0].shape == (2, 4)


def test_bm25_on_a_corpus_of_stop_words_is_a_named_error():
    from sparsearch.hybrid import BM25Retriever

    with pytest.raises(InvalidInputError, match="nothing to index"):
        BM25Retriever({"d1": "a b", "d2": "the of"})
    hits = BM25Retriever({"d1": "aspirin fever", "d2": "paris"}).retrieve({"q": "fever"}, k=2)
    assert hits.run.row(0)[0][0] == "d1" and len(hits.run.row(0)) == 1  # no zero-score filler
