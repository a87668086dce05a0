"""The sentence-transformers-style evaluators: parity with sentence-transformers' sparse evaluators
on real SciFact text with the real rasyosef/splade-tiny in both libraries, the ranking metrics
against scikit-learn and brute force, JSONL inputs, and clear errors for bad input.

Parity data (SciFact train, ``load_beir``): the first 12 claims of ``qrels/train.tsv`` whose first
cited document no earlier claim cites and whose title shares a word (4+ letters) with the claim.
Distinct documents keep texts from repeating, and the shared word keeps a positive from scoring
0: either would tie scores, and ties are where the libraries differ (by design for MRR, by float
noise otherwise). A claim's hard negatives are the 4 uncited documents whose titles share the
most such words with it (ties: corpus order).

- similarity: (claim, cited title, 2), (claim, title of its hardest negative, 1), (claim, the next
  claim's cited title, 0) — graded by hand, as SciFact's qrels are binary;
- triplets: (claim, cited document, hardest negative document);
- reranking: each claim against the titles of every document it cites and of its 4 hard
  negatives, at_k=3; plus a claim without negatives and one without positives, which both
  libraries leave out;
- MSE: the same model as teacher (cited titles) and student (claims).

Both models truncate at 64 tokens to keep the file fast. Tolerance 1e-6 (absolute, or relative for
values above 1): the vectors of the two libraries differ by float32 rounding (~1e-7 relative; other
batch padding and summation order), and sentence-transformers computes similarities and the mean
active dims in float32 where we use float64 (a mean of 43.9 active dims is 2e-6 off in float32).
Rank- and threshold-based metrics (Spearman, accuracy, MRR) come out identical because no two
scores of the data are that close.
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

from sparsearch.errors import DimensionMismatchError, InvalidInputError
from sparsearch.eval import (
    EmbeddingSimilarityEvaluator,
    MSEEvaluator,
    RerankingEvaluator,
    SequentialEvaluator,
    TripletEvaluator,
    load_beir,
)
from sparsearch.eval.evaluators.reranking import (
    average_precision,
    ndcg_at_k,
    reciprocal_rank_at_k,
)
from sparsearch.sparse import SparseVectors
from tests.conftest import SENTENCES, TINY_DOCS, TINY_QUERIES, real_model

SPLADE = "rasyosef/splade-tiny"
TOLERANCE = 1e-6
N_CLAIMS = 12
N_NEGATIVES = 4


# ---------------------------------------------------------------------------- parity fixtures
@pytest.fixture(scope="module")
def ours():
    from sparsearch.models import SparseEncoder

    model = SparseEncoder(real_model(SPLADE))
    model.max_seq_length = 64
    return model


@pytest.fixture(scope="module")
def theirs():
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(real_model(SPLADE)).eval()
    model.max_seq_length = 64
    return model


def long_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{4,}", text.lower()))


@pytest.fixture(scope="module")
def scifact(shared_data):
    """Per claim (as the module docstring picks them): its text, its first cited document (text,
    title), the titles of all it cites, and its hard negatives (texts, titles)."""
    data = load_beir(shared_data / "scifact", "train")
    texts = data.doc_texts()
    title_words = {d: long_words(doc["title"]) for d, doc in data.corpus.items()}
    claims, firsts = [], []
    for qid, judged in data.qrels.items():
        first = next(iter(judged))
        if first not in firsts and long_words(data.queries[qid]) & title_words[first]:
            claims.append(qid)
            firsts.append(first)
        if len(claims) == N_CLAIMS:
            break
    negatives = []
    for qid in claims:
        shared = {d: len(long_words(data.queries[qid]) & w) for d, w in title_words.items()}
        uncited = [d for d in data.corpus if d not in data.qrels[qid]]
        negatives.append(sorted(uncited, key=lambda d: -shared[d])[:N_NEGATIVES])
    return {
        "claims": [data.queries[q] for q in claims],
        "docs": [texts[d] for d in firsts],
        "titles": [data.corpus[d]["title"] for d in firsts],
        "cited_titles": [[data.corpus[d]["title"] for d in data.qrels[q]] for q in claims],
        "negative_docs": [[texts[d] for d in ds] for ds in negatives],
        "negative_titles": [[data.corpus[d]["title"] for d in ds] for ds in negatives],
    }


def assert_same_metrics(evaluator, reference, ours, theirs) -> dict[str, float]:
    mine, expected = evaluator(ours), reference(theirs)
    assert mine.keys() == expected.keys()
    for key, value in expected.items():
        assert mine[key] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), key
    assert evaluator.primary_metric == reference.primary_metric
    return mine


# ---------------------------------------------------------------------------- parity
@pytest.mark.real_model
def test_similarity_matches_sentence_transformers(ours, theirs, scifact):
    from sentence_transformers.sparse_encoder.evaluation import SparseEmbeddingSimilarityEvaluator

    claims, titles = scifact["claims"], scifact["titles"]
    hardest = [negatives[0] for negatives in scifact["negative_titles"]]
    pairs = [(c, t, 2.0) for c, t in zip(claims, titles, strict=True)]
    pairs += [(c, t, 1.0) for c, t in zip(claims, hardest, strict=True)]
    pairs += [(c, t, 0.0) for c, t in zip(claims, titles[1:] + titles[:1], strict=True)]
    inputs = [list(column) for column in zip(*pairs, strict=True)]
    options = {"similarity_fn_names": ["cosine", "dot"], "main_similarity": "cosine"}
    mine = assert_same_metrics(
        EmbeddingSimilarityEvaluator(*inputs, name="sts", **options),
        SparseEmbeddingSimilarityEvaluator(*inputs, name="sts", **options),
        ours,
        theirs,
    )
    assert 0 < mine["sts_spearman_cosine"] < 1 and mine["sts_active_dims"] > 0


@pytest.mark.real_model
def test_triplets_match_sentence_transformers(ours, theirs, scifact):
    from sentence_transformers.sparse_encoder.evaluation import SparseTripletEvaluator

    hardest = [negatives[0] for negatives in scifact["negative_docs"]]
    triplets = (scifact["claims"], scifact["docs"], hardest)
    options = {"similarity_fn_names": ["cosine", "dot"], "margin": {"dot": 1.0}}
    mine = assert_same_metrics(
        TripletEvaluator(*triplets, name="tri", **options),
        SparseTripletEvaluator(*triplets, name="tri", **options),
        ours,
        theirs,
    )
    assert 0 < mine["tri_dot_accuracy"] < 1 and 0 < mine["tri_cosine_accuracy"] < 1


@pytest.mark.real_model
def test_reranking_matches_sentence_transformers(ours, theirs, scifact):
    from sentence_transformers.sparse_encoder.evaluation import SparseRerankingEvaluator

    claims = scifact["claims"]
    samples = [
        {"query": claim, "positive": positives, "negative": negatives}
        for claim, positives, negatives in zip(
            claims, scifact["cited_titles"], scifact["negative_titles"], strict=True
        )
    ]
    samples += [
        {"query": claims[0], "positive": scifact["titles"][:1], "negative": []},
        {"query": claims[1], "positive": [], "negative": scifact["titles"][:2]},
    ]
    evaluator = RerankingEvaluator(samples, at_k=3, name="rerank")
    assert len(evaluator.samples) == N_CLAIMS  # the last two are left out
    mine = assert_same_metrics(
        evaluator, SparseRerankingEvaluator(samples, at_k=3, name="rerank"), ours, theirs
    )
    assert 0 < mine["rerank_map"] < 1 and 0 < mine["rerank_mrr@3"] < 1


@pytest.mark.real_model
def test_mse_matches_sentence_transformers(ours, theirs, scifact):
    from sentence_transformers.sparse_encoder.evaluation import SparseMSEEvaluator

    sources, targets = scifact["titles"], scifact["claims"]
    mine = assert_same_metrics(
        MSEEvaluator(sources, targets, teacher=ours, name="mse"),
        SparseMSEEvaluator(sources, targets, teacher_model=theirs, name="mse"),
        ours,
        theirs,
    )
    assert mine["mse_negative_mse"] < 0


# ---------------------------------------------------------------------------- ranking metrics
def random_lists(n_lists: int, max_size: int, seed: int = 0):
    """Integer scores (many ties) with at least one positive and one negative each."""
    rng = np.random.default_rng(seed)
    for _ in range(n_lists):
        size = int(rng.integers(2, max_size + 1))
        relevant = rng.permutation(np.arange(size) < rng.integers(1, size))
        yield rng.integers(0, 3, size).astype(np.float64), relevant


@pytest.mark.parametrize("k", [1, 3, 10])
def test_ap_and_ndcg_follow_scikit_learn_with_ties(k):
    from sklearn.metrics import average_precision_score, ndcg_score

    for scores, relevant in random_lists(60, 12):
        assert average_precision(scores, relevant) == pytest.approx(
            average_precision_score(relevant, scores), abs=1e-12
        )
        assert ndcg_at_k(scores, relevant, k) == pytest.approx(
            ndcg_score([relevant], [scores], k=k), abs=1e-12
        )


@pytest.mark.parametrize("k", [1, 2, 10])
def test_mrr_is_the_expectation_over_the_order_of_ties(k):
    for scores, relevant in random_lists(30, 6):
        rrs = []
        for order in itertools.permutations(range(len(scores))):
            if np.all(np.diff(scores[list(order)]) <= 0):  # one tie-breaking of the ranking
                first = next(r for r, i in enumerate(order) if relevant[i])
                rrs.append(1 / (first + 1) if first < k else 0.0)
        assert reciprocal_rank_at_k(scores, relevant, k) == pytest.approx(np.mean(rrs))


def test_tied_candidates_are_not_ranked_by_their_position(tiny_splade):
    from sklearn.metrics import average_precision_score, ndcg_score

    text = TINY_DOCS["d0"][1]
    result = RerankingEvaluator(
        [{"query": TINY_QUERIES[0], "positive": [text], "negative": [text]}]
    )(tiny_splade)
    assert result["mrr@10"] == 0.75  # first or second, each with probability 1/2
    assert result["map"] == average_precision_score([1, 0], [1.0, 1.0])
    assert result["ndcg@10"] == pytest.approx(ndcg_score([[1, 0]], [[1.0, 1.0]], k=10))


# ---------------------------------------------------------------------------- behaviour
def test_sequential_prefixes_merge_and_score_the_last_primary_metric(tiny_splade):
    triplets = TripletEvaluator(SENTENCES[:2], SENTENCES[2:], SENTENCES[:2], name="tri")
    sts = EmbeddingSimilarityEvaluator(SENTENCES[:2], SENTENCES[2:], [1.0, 0.0], name="sts")
    result = SequentialEvaluator([triplets, sts])(tiny_splade)
    assert result == {
        **triplets(tiny_splade),
        **sts(tiny_splade),
        "sequential_score": result["sts_spearman_dot"],
    }
    assert sts.primary_metric == "sts_spearman_dot"
    mean = SequentialEvaluator([triplets, sts], main_score_function=np.mean)(tiny_splade)
    expected = (result["tri_dot_accuracy"] + result["sts_spearman_dot"]) / 2
    assert mean["sequential_score"] == pytest.approx(expected)


def test_sequential_refuses_evaluators_that_overwrite_each_other(tiny_splade):
    same = [TripletEvaluator(SENTENCES[:1], SENTENCES[1:2], SENTENCES[2:3]) for _ in range(2)]
    with pytest.raises(InvalidInputError, match="different names"):
        SequentialEvaluator(same)(tiny_splade)
    with pytest.raises(InvalidInputError, match="at least one"):
        SequentialEvaluator([])


def test_mse_takes_the_teachers_vectors_and_is_zero_for_the_teacher_itself(tiny_splade):
    vectors = tiny_splade.encode(SENTENCES)
    from_vectors = MSEEvaluator(SENTENCES, SENTENCES[::-1], teacher=vectors)(tiny_splade)
    assert from_vectors == MSEEvaluator(SENTENCES, SENTENCES[::-1], teacher=tiny_splade)(
        tiny_splade
    )
    assert from_vectors["negative_mse"] < 0
    assert MSEEvaluator(SENTENCES, SENTENCES, teacher=vectors)(tiny_splade)["negative_mse"] == 0
    wrong_dim = SparseVectors.from_dicts([{0: 1.0}] * len(SENTENCES), dim=10)
    with pytest.raises(DimensionMismatchError):
        MSEEvaluator(SENTENCES, SENTENCES, teacher=wrong_dim)(tiny_splade)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_jsonl_inputs_build_the_same_evaluators(tmp_path, tiny_splade):
    q, d = TINY_QUERIES[:3], [text for _, text in list(TINY_DOCS.values())[:3]]
    triplets = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"anchor": a, "positive": p, "negative": n}
            for a, p, n in zip(q, d, d[::-1], strict=True)
        ],
    )
    rerank = write_jsonl(
        tmp_path / "r.jsonl", [{"query": q[0], "positive": d[0], "negative": d[1:]}]
    )
    sts = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"sentence1": a, "sentence2": b, "score": s}
            for a, b, s in zip(q, d, [1, 0.5, 0], strict=True)
        ],
    )
    mse = write_jsonl(tmp_path / "m.jsonl", [{"source": d[0]}, {"source": d[1], "target": q[1]}])
    pairs = [
        (TripletEvaluator.from_jsonl(triplets), TripletEvaluator(q, d, d[::-1])),
        (
            RerankingEvaluator.from_jsonl(rerank, at_k=2),
            RerankingEvaluator([{"query": q[0], "positive": [d[0]], "negative": d[1:]}], at_k=2),
        ),
        (
            EmbeddingSimilarityEvaluator.from_jsonl(sts),
            EmbeddingSimilarityEvaluator(q, d, [1, 0.5, 0]),
        ),
        (
            MSEEvaluator.from_jsonl(mse, teacher=tiny_splade),
            MSEEvaluator(d[:2], [d[0], q[1]], teacher=tiny_splade),
        ),
    ]
    for from_file, from_lists in pairs:
        assert from_file(tiny_splade) == from_lists(tiny_splade)


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        (
            [{"anchor": "a", "positive": "p", "negative": "n"}, {"anchor": "a", "positive": "p"}],
            "bad.jsonl:2: no 'negative'",
        ),
        (
            [{"anchor": "a", "positive": ["p"], "negative": "n"}],
            "bad.jsonl:1: 'positive' must be a string",
        ),
        ([["a", "p", "n"]], "bad.jsonl:1: expected a JSON object, got list"),
        ([], "bad.jsonl: empty file"),
    ],
)
def test_bad_jsonl_lines_are_named(tmp_path, rows, words):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        TripletEvaluator.from_jsonl(path)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (
            lambda: EmbeddingSimilarityEvaluator(["a", "b"], ["c"], [1.0, 0.0]),
            "sentences1 has 2, sentences2 has 1",
        ),
        (lambda: EmbeddingSimilarityEvaluator([], [], []), "sentences1 is empty"),
        (
            lambda: EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [1.0, 1.0]),
            "two different values",
        ),
        (
            lambda: EmbeddingSimilarityEvaluator(["a", "b"], ["c", 4], [1.0, 0.0]),
            r"sentences2\[1\] is a int",
        ),
        (
            lambda: EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [1.0, float("nan")]),
            r"scores\[1\] must be finite",
        ),
        (
            lambda: EmbeddingSimilarityEvaluator(
                ["a", "b"], ["c", "d"], [1, 0], similarity_fn_names=["euclidean"]
            ),
            "must be one of \\['cosine', 'dot'\\]",
        ),
        (
            lambda: TripletEvaluator(
                ["a"], ["p"], ["n"], main_similarity="cosine", similarity_fn_names=["dot"]
            ),
            "main_similarity 'cosine' is not in similarity_fn_names",
        ),
        (lambda: TripletEvaluator(["a", "b"], ["p"], ["n", "m"]), "anchors has 2, positives has 1"),
        (lambda: TripletEvaluator("abc", ["p"], ["n"]), "anchors must be a list of strings"),
        (
            lambda: TripletEvaluator(["a"], ["p"], ["n"], margin={"manhattan": 1.0}),
            "each key of margin",
        ),
        (
            lambda: RerankingEvaluator([{"query": "q", "positive": [], "negative": ["n"]}]),
            "none of the 1 samples",
        ),
        (
            lambda: RerankingEvaluator([{"query": "q", "positive": ["p"]}]),
            r"samples\[0\] must be a mapping",
        ),
        (
            lambda: RerankingEvaluator([{"query": "q", "positive": "p", "negative": "n"}], at_k=0),
            "at_k must be",
        ),
        (
            lambda: MSEEvaluator(["a", "b"], ["c"], teacher=SparseVectors.empty(3)),
            "source_sentences has 2",
        ),
        (
            lambda: MSEEvaluator(["a"], ["c"], teacher=SparseVectors.empty(3)),
            "0 rows for 1 sentences",
        ),
        (lambda: MSEEvaluator(["a"], ["c"], teacher="some/model"), "teacher must be a model"),
        (lambda: TripletEvaluator(["a"], ["p"], ["n"], batch_size=0), "batch_size must be"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(build, words):
    with pytest.raises(InvalidInputError, match=words):
        build()
