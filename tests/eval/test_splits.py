"""The dev split carved from a training split: fixed by its seed, disjoint from what is left for
training, and free of queries that repeat the excluded (test) split."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsearch.errors import InvalidInputError
from sparsearch.eval.beir import BeirDataset, load_beir
from sparsearch.eval.splits import carve_dev


def _toy(n: int, texts: dict[str, str] | None = None) -> BeirDataset:
    queries = {f"q{i}": f"query number {i}" for i in range(n)} | (texts or {})
    corpus = {f"d{i}": {"title": "", "text": f"doc {i}"} for i in range(n)}
    qrels = {q: {f"d{i % n}": 1} for i, q in enumerate(queries)}
    return BeirDataset("toy", "train", corpus, queries, qrels)


def test_the_draw_depends_on_the_seed_only_and_splits_the_queries():
    train = _toy(40)
    rest, dev = carve_dev(train, 10, seed=7)
    again_rest, again_dev = carve_dev(_toy(40), 10, seed=7)
    assert dev.queries == again_dev.queries and rest.queries == again_rest.queries
    assert len(dev.queries) == 10 and len(rest.queries) == 30
    assert not set(dev.queries) & set(rest.queries)
    assert set(dev.queries) | set(rest.queries) == set(train.queries)
    assert all(dev.qrels[q] == train.qrels[q] for q in dev.queries)
    assert dev.corpus is train.corpus  # the whole corpus stays searchable
    other = carve_dev(train, 10, seed=8)[1]
    assert set(other.queries) != set(dev.queries)


def test_queries_repeating_the_excluded_split_are_dropped_from_both_sides():
    train = _toy(30, {"dup": "  Query Number 3  "})  # "query number 3" is also a test query
    test = BeirDataset("toy", "test", train.corpus, {"t": "query number 3"}, {"t": {"d0": 1}})
    rest, dev = carve_dev(train, 5, exclude=test)
    assert "dup" not in dev.queries and "dup" not in rest.queries
    assert "q3" not in dev.queries and "q3" not in rest.queries
    assert len(dev.queries) + len(rest.queries) == 29


def test_bad_requests_are_named():
    with pytest.raises(InvalidInputError, match="n_queries must be a positive integer"):
        carve_dev(_toy(5), 0)
    with pytest.raises(InvalidInputError, match="seed must be an integer"):
        carve_dev(_toy(5), 2, seed="a")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="5 usable queries, cannot carve 5"):
        carve_dev(_toy(5), 5)


@pytest.mark.real_model
def test_scifact_dev_mirrors_test(shared_data: Path):
    train = load_beir(shared_data / "scifact", "train")
    test = load_beir(shared_data / "scifact", "test")
    rest, dev = carve_dev(train, 150, exclude=test)
    assert (len(train.queries), len(rest.queries), len(dev.queries)) == (809, 657, 150)
    test_texts = {" ".join(t.lower().split()) for t in test.queries.values()}
    assert not any(" ".join(t.lower().split()) in test_texts for t in dev.queries.values())
