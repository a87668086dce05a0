"""Fusion stages and run helpers, checked against the formulas written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sparsearch.errors import InvalidInputError
from sparsearch.hybrid import RRF, LinearFusion, cut, drop_identical_ids, from_arrays, top_k

SPARSE = {"q": {"a": 10.0, "b": 8.0, "c": 8.0, "d": 1.0}, "r": {"x": 1.0}}
DENSE = {"q": {"c": 0.9, "e": 0.8, "a": 0.1}}


def test_rrf_sums_reciprocal_ranks_in_trec_eval_order():
    fused = RRF(k=60).fuse([SPARSE, DENSE])
    # sparse ranks: a 1, c 2 (tie with b, docid descending), b 3, d 4; dense: c 1, e 2, a 3
    expected = {
        "a": 1 / 61 + 1 / 63,
        "b": 1 / 63,
        "c": 1 / 62 + 1 / 61,
        "d": 1 / 64,
        "e": 1 / 62,
    }
    assert fused["q"] == pytest.approx(expected, abs=1e-15)
    assert fused["r"] == {"x": 1 / 61}
    weighted = RRF(k=0, weights=[2.0, 0.0]).fuse([SPARSE, DENSE])
    assert weighted["q"]["a"] == 2.0 and weighted["q"]["e"] == 0.0


def test_linear_minmax_fusion():
    fused = LinearFusion(weights=[0.7, 0.3], normalization="minmax").fuse([SPARSE, DENSE])["q"]
    sparse = {"a": 1.0, "b": 7 / 9, "c": 7 / 9, "d": 0.0, "e": 0.0}  # e missing → 0
    dense = {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0, "e": 0.7 / 0.8}  # b, d missing → 0
    assert fused == pytest.approx({d: 0.7 * sparse[d] + 0.3 * dense[d] for d in sparse})


def test_linear_zscore_fusion_gives_missing_documents_the_lowest_z():
    fused = LinearFusion(normalization="zscore").fuse([SPARSE, DENSE])["q"]
    s = np.array([10.0, 8.0, 8.0, 1.0])
    zs = dict(zip("abcd", (s - s.mean()) / s.std(), strict=True))
    d = np.array([0.9, 0.8, 0.1])
    zd = dict(zip("cea", (d - d.mean()) / d.std(), strict=True))
    zs["e"], zd["b"], zd["d"] = min(zs.values()), min(zd.values()), min(zd.values())
    assert fused == pytest.approx({k: 0.5 * zs[k] + 0.5 * zd[k] for k in "abcde"})
    # one hit only: min-max maps it to 1, z-score to 0
    assert LinearFusion().fuse([{"q": {"a": 3.0}}])["q"] == {"a": 1.0}
    assert LinearFusion(normalization="zscore").fuse([{"q": {"a": 3.0}}])["q"] == {"a": 0.0}


def test_fusion_rejects_bad_arguments():
    with pytest.raises(InvalidInputError):
        RRF().fuse([])
    with pytest.raises(InvalidInputError):
        RRF(k=-1)
    with pytest.raises(InvalidInputError):
        LinearFusion(weights=[1.0]).fuse([SPARSE, DENSE])
    with pytest.raises(InvalidInputError):
        LinearFusion(normalization="rank")


def test_run_helpers():
    assert top_k(SPARSE["q"], 3) == [("a", 10.0), ("c", 8.0), ("b", 8.0)]
    assert cut(SPARSE, 1) == {"q": {"a": 10.0}, "r": {"x": 1.0}}
    assert drop_identical_ids({"1": {"1": 5.0, "2": 1.0}}) == {"1": {"2": 1.0}}
    ids = np.array([["a", None], ["b", "c"]], dtype=object)
    scores = np.array([[1.0, -np.inf], [2.0, 1.5]], dtype=np.float32)
    assert from_arrays(["q1", "q2"], ids, scores) == {"q1": {"a": 1.0}, "q2": {"b": 2.0, "c": 1.5}}
