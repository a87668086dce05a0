"""Hard-negative mining (BM25, a sparse model) and teacher scoring on real SciFact text."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from sparsearch.errors import ConfigError
from sparsearch.train.mining import mine_hard_negatives, score_with_teacher

pytestmark = pytest.mark.real_model  # real SciFact text and real models


@pytest.fixture(scope="module")
def small_scifact(shared_data):
    from sparsearch.eval.beir import load_beir

    train = load_beir(shared_data / "scifact", "train")
    docs = train.doc_texts()
    pairs = {"query": [], "positive": []}
    for qid, judged in list(train.qrels.items())[:12]:
        for did in judged:
            pairs["query"].append(train.queries[qid])
            pairs["positive"].append(docs[did][:400])
    corpus = sorted({text[:400] for text in list(docs.values())[:300]} | set(pairs["positive"]))
    return Dataset.from_dict(pairs), corpus


def test_bm25_negatives_come_from_the_rank_window_and_are_never_positives(small_scifact):
    import bm25s

    pairs, corpus = small_scifact
    mined = mine_hard_negatives(pairs, corpus, "bm25", num_negatives=2, range_min=1, range_max=10)
    assert mined.column_names == ["query", "positive", "negative_1", "negative_2"]
    positives = {}
    for q, p in zip(pairs["query"], pairs["positive"], strict=True):
        positives.setdefault(q, set()).add(p)
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
    )
    expected_rows = 0
    mined_rows = iter(mined)
    for query in pairs["query"]:
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        ids, scores = retriever.retrieve(tokens, k=10, show_progress=False)
        # bm25s pads with zero-score documents that share no term with the query: never negatives
        ranked = [j for j, score in zip(ids[0], scores[0], strict=True) if score > 0]
        window = [corpus[j] for j in ranked[1:10] if corpus[j] not in positives[query]]
        if len(window) < 2:
            continue  # too few candidates: the row is dropped
        expected_rows += 1
        row = next(mined_rows)
        assert row["query"] == query
        assert [row["negative_1"], row["negative_2"]] == window[:2]  # "top" keeps the best
    assert len(mined) == expected_rows >= len(pairs) - 2


def test_mining_refuses_bad_options(small_scifact):
    pairs, corpus = small_scifact
    with pytest.raises(ConfigError, match="column 'question'"):
        mine_hard_negatives(pairs, corpus, query_column="question")
    with pytest.raises(ConfigError, match="range_min < range_max"):
        mine_hard_negatives(pairs, corpus, range_min=5, range_max=5)
    with pytest.raises(ConfigError, match="unknown retriever"):
        mine_hard_negatives(pairs, corpus, retriever="dense")


def test_model_mined_negative_is_the_best_scoring_non_positive(small_scifact, splade_tiny):
    pairs, corpus = small_scifact
    pairs = pairs.select(range(4))
    corpus = sorted(set(corpus[:60]) | set(pairs["positive"]))
    mined = mine_hard_negatives(pairs, corpus, splade_tiny, num_negatives=1, range_max=20)
    scores = (
        splade_tiny.encode_query(mined["query"]).to_scipy()
        @ splade_tiny.encode_document(corpus).to_scipy().T
    ).toarray()
    for i, row in enumerate(mined):
        own = {
            p for q, p in zip(pairs["query"], pairs["positive"], strict=True) if q == row["query"]
        }
        best = max(scores[i, j] for j, text in enumerate(corpus) if text not in own)
        assert scores[i, corpus.index(row["negative_1"])] == pytest.approx(best, rel=1e-5)


def test_teacher_scores_are_the_teachers_dot_products(small_scifact, splade_tiny):
    pairs, corpus = small_scifact
    rows = mine_hard_negatives(pairs.select(range(5)), corpus, "bm25", num_negatives=1)
    scored = score_with_teacher(rows, splade_tiny)
    labels = np.asarray(scored["label"])
    assert labels.shape == (5, 2)
    q = splade_tiny.encode_query(rows["query"]).to_dense()
    pos = splade_tiny.encode_document(rows["positive"]).to_dense()
    np.testing.assert_allclose(labels[:, 0], (q * pos).sum(1), rtol=1e-4)
    lengths = score_with_teacher(rows, lambda qs, ds: [float(len(d)) for d in ds])
    assert lengths["label"][0] == [
        float(len(rows[0]["positive"])),
        float(len(rows[0]["negative_1"])),
    ]
