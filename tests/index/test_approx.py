"""Approximate search (``SearchParams(mode="approx")``) against the exact engine as the oracle.

A random corpus of 30,000 documents (Zipf-like terms, float weights) in one segment; the segment
size from which parts are built (``approx.MIN_DOCS``, 65,536) is lowered to 1,000 for the module
and each term keeps 300 postings, so the static pruning really drops documents. Checked: the
recall knob, exact scores of what is returned, deletes, filters, added documents, threads,
persistence (saved, reopened, reused, collected, damaged) and the parameters' errors.
The build and the kernel are numba-only: without the JIT one 30,000-document build takes minutes.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sparsearch.errors import IndexCorruptError, InvalidInputError
from sparsearch.index import SparseIndex, approx
from sparsearch.index.approx import LADDER, ApproxConfig
from sparsearch.search import SearchParams
from sparsearch.sparse import SparseVectors
from tests.index.pruned_corpora import Corpus, random_corpus

pytestmark = pytest.mark.numba_only

CONFIG = ApproxConfig(postings_per_term=300)
EXACT = SearchParams(threads=1)


@pytest.fixture(scope="module", autouse=True)
def _small_segments():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(approx, "MIN_DOCS", 1000)
        yield


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return random_corpus(0, n=30_000)


def build(corpus: Corpus) -> SparseIndex:
    index = SparseIndex(dim=corpus.docs.dim)
    index.add(corpus.ids, corpus.docs, corpus.payloads)
    index.build_approx(CONFIG)
    return index


@pytest.fixture(scope="module")
def index(corpus) -> SparseIndex:
    return build(corpus)


def approx_params(**kwargs) -> SearchParams:
    return SearchParams(threads=1, mode="approx", **kwargs)


def recall(got: np.ndarray, want: np.ndarray) -> float:
    """Mean share of each row's real exact hits that ``got`` holds too."""
    shares = []
    for got_row, want_row in zip(got.tolist(), want.tolist(), strict=True):
        real = {doc for doc in want_row if doc is not None and doc != -1}
        if real:
            shares.append(len(real & set(got_row)) / len(real))
    return float(np.mean(shares))


def test_recall_follows_the_knob_and_scores_are_exact(corpus, index):
    part = index.snapshot().segments[0].approx
    assert part is not None and part.config == CONFIG
    assert len(part.calibration) == len(LADDER) and all(0 <= r <= 1 for r in part.calibration)
    exact = index.search(corpus.queries, 10, params=EXACT)
    cheapest = index.search(corpus.queries, 10, params=approx_params(query_terms=1, heap_factor=1))
    assert recall(cheapest.ids, exact.ids) < 0.9  # the pruning really drops documents
    for target in (0.8, 0.9, 0.95):
        hits = index.search(corpus.queries, 10, params=approx_params(recall=target))
        assert recall(hits.ids, exact.ids) >= target - 0.05, target
        for q, (ids, scores) in enumerate(zip(hits.ids, hits.scores, strict=True)):
            rows = [corpus.row_of[doc] for doc in ids.tolist() if doc != -1]
            np.testing.assert_array_equal(scores[: len(rows)], corpus.scores[q, rows])
            assert np.all(np.diff(scores[: len(rows)]) <= 0)
    perfect = index.search(corpus.queries, 10, params=approx_params(recall=1.0))
    assert recall(perfect.ids, exact.ids) >= 0.95
    thorough = approx_params(query_terms=64, heap_factor=0.3)
    assert recall(index.search(corpus.queries, 10, params=thorough).ids, exact.ids) > 0.99


def test_threads_give_the_same_answers(corpus, index):
    one = index.search(corpus.queries, 10, params=approx_params(recall=0.9))
    two = index.search(
        corpus.queries, 10, params=SearchParams(threads=2, mode="approx", recall=0.9)
    )
    np.testing.assert_array_equal(one.ids, two.ids)
    np.testing.assert_array_equal(one.scores, two.scores)


def test_deleted_documents_are_never_returned(corpus):
    index = build(corpus)
    before = index.search(corpus.queries, 10, params=approx_params(recall=0.95))
    gone = {doc for doc in before.ids[:, 0].tolist()}  # every query's best hit
    index.delete(sorted(gone))
    hits = index.search(corpus.queries, 10, params=approx_params(recall=0.95))
    assert not gone & set(hits.ids.ravel().tolist())
    exact = index.search(corpus.queries, 10, params=EXACT)
    assert recall(hits.ids, exact.ids) >= 0.85
    assert index.snapshot().segments[0].approx is not None  # the part outlives the delete


def test_filters_are_respected(corpus, index):
    allowed = set(corpus.ids[::2] + corpus.ids[1::4])  # 75 %: searched approximately
    params = approx_params(recall=0.95, filter=sorted(allowed))
    hits = index.search(corpus.queries, 10, params=params)
    assert set(hits.ids.ravel().tolist()) - {-1} <= allowed
    exact = index.search(corpus.queries, 10, params=SearchParams(threads=1, filter=sorted(allowed)))
    assert recall(hits.ids, exact.ids) >= 0.85
    # a payload filter keeping ~20 % is below MIN_ALLOWED: that segment is searched exactly
    group = {"payload": {"group": 1}}
    hits = index.search(corpus.queries, 10, params=approx_params(recall=0.5, filter=group))
    exact = index.search(corpus.queries, 10, params=SearchParams(threads=1, filter=group))
    np.testing.assert_array_equal(hits.ids, exact.ids)


def test_added_documents_are_found(corpus):
    index = build(corpus)
    queries = corpus.queries[:5]  # a document of 100 x each query outscores the rest
    new = SparseVectors(queries.indptr, queries.indices, queries.values * 100, queries.dim)
    index.add([10**9 + i for i in range(5)], new)  # not a corpus id
    hits = index.search(queries, 3, params=approx_params(recall=0.9))
    assert hits.ids[:, 0].tolist() == [10**9 + i for i in range(5)]


def test_small_segments_are_searched_exactly(corpus, monkeypatch):
    monkeypatch.setattr(approx, "MIN_DOCS", 1 << 16)
    index = SparseIndex(dim=corpus.docs.dim)
    index.add(corpus.ids[:2000], corpus.docs[:2000])
    hits = index.search(corpus.queries, 10, params=approx_params(recall=0.5))
    exact = index.search(corpus.queries, 10, params=EXACT)
    np.testing.assert_array_equal(hits.ids, exact.ids)
    assert index.snapshot().segments[0].approx is None  # never built


def test_the_part_is_saved_reopened_reused_and_collected(corpus, tmp_path):
    index = build(corpus)
    params = approx_params(recall=0.9)
    want = index.search(corpus.queries, 10, params=params)
    index.save(tmp_path / "idx")
    folders = sorted(p.name for p in (tmp_path / "idx" / "approx").iterdir())
    assert len(folders) == 1
    for verify in (True, False):
        opened = SparseIndex.open(tmp_path / "idx", verify=verify)
        part = opened.snapshot().segments[0].approx
        assert part is not None and part.config == CONFIG  # read, not rebuilt
        got = opened.search(corpus.queries, 10, params=params)
        np.testing.assert_array_equal(got.ids, want.ids)
        opened.close()
    # a delete commits new tombstones; the part's folder is reused, not rewritten
    index.delete([corpus.ids[0]])
    index.save()
    assert sorted(p.name for p in (tmp_path / "idx" / "approx").iterdir()) == folders
    # compaction makes a new segment without a part: the old part's folder is collected once
    # no commit lists it (readers of the previous commit keep it one commit longer)
    index.compact()
    index.save()
    assert sorted(p.name for p in (tmp_path / "idx" / "approx").iterdir()) == folders
    index.save()
    assert not any((tmp_path / "idx" / "approx").iterdir())
    reopened = SparseIndex.open(tmp_path / "idx")
    assert reopened.snapshot().segments[0].approx is None
    reopened.search(corpus.queries[:2], 10, params=params)  # built on demand
    assert reopened.snapshot().segments[0].approx is not None
    reopened.close()


def test_damaged_or_foreign_parts(corpus, tmp_path):
    index = build(corpus)
    index.save(tmp_path / "idx")
    index.close()
    (folder,) = (tmp_path / "idx" / "approx").iterdir()
    pristine = tmp_path / "pristine"
    shutil.copytree(tmp_path / "idx", pristine)
    # out-of-range documents of the same size: the checksum catches it, and unverified the check
    docs = np.load(folder / "block_docs.npy")
    docs[len(docs) // 2] = corpus.docs.n
    np.save(folder / "block_docs.npy", docs)
    with pytest.raises(IndexCorruptError, match="checksum"):
        SparseIndex.open(tmp_path / "idx")
    with pytest.raises(IndexCorruptError, match="outside the segment"):
        SparseIndex.open(tmp_path / "idx", verify=False)
    # a part written by another layout version is ignored and rebuilt on demand
    shutil.rmtree(tmp_path / "idx")
    shutil.copytree(pristine, tmp_path / "idx")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "version": 0}))
    opened = SparseIndex.open(tmp_path / "idx", verify=False)
    assert opened.snapshot().segments[0].approx is None
    opened.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "fast"}, "mode must be"),
        ({"mode": "approx", "recall": 0}, "recall must be"),
        ({"mode": "approx", "recall": float("nan")}, "recall must be"),
        ({"mode": "approx", "query_terms": 5}, "set together"),
        ({"query_terms": 5, "heap_factor": 0.9}, "mode='approx' only"),
        ({"mode": "approx", "query_terms": 0, "heap_factor": 0.9}, "query_terms must be"),
        ({"mode": "approx", "query_terms": 5, "heap_factor": 1.5}, "heap_factor must be"),
    ],
)
def test_bad_search_params(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        SearchParams(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"postings_per_term": 0},
        {"block_fraction": 0},
        {"summary_energy": 1.5},
        {"block_fraction": "x"},
    ],
)
def test_bad_approx_config(kwargs):
    with pytest.raises(InvalidInputError):
        ApproxConfig(**kwargs)


def test_kept_postings_scale_with_the_segment(corpus, monkeypatch):
    assert ApproxConfig().kept(1000) == approx.MIN_KEPT
    assert ApproxConfig().kept(4_000_000) == 4 * approx.KEPT_PER_MILLION
    assert ApproxConfig(postings_per_term=50).kept(4_000_000) == 50
    # at 10,000 per million, the 30,000-document segment keeps 300 postings of each term
    monkeypatch.setattr(approx, "MIN_KEPT", 100)
    monkeypatch.setattr(approx, "KEPT_PER_MILLION", 10_000)
    index = SparseIndex(dim=corpus.docs.dim)
    index.add(corpus.ids, corpus.docs)
    index.build_approx(ApproxConfig())
    seg = index.snapshot().segments[0]
    term_block = seg.approx.arrays["term_block"]
    block_indptr = seg.approx.arrays["block_indptr"]
    kept = block_indptr[term_block[1:]] - block_indptr[term_block[:-1]]
    df = np.diff(seg.inverted[0])
    assert df.max() > 300
    np.testing.assert_array_equal(kept, np.minimum(df, 300))
