"""Our metrics equal pytrec_eval (trec_eval) per query, on real runs and on adversarial ones."""

from __future__ import annotations

import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.errors import InvalidInputError
from sparsearch.eval import evaluate_run, load_beir
from sparsearch.hybrid import BM25Retriever
from sparsearch.run import Run

CUTS = (1, 3, 5, 10, 100)
TREC_NAMES = {
    "ndcg": "ndcg_cut_{k}",
    "recall": "recall_{k}",
    "map": "map_cut_{k}",
    "precision": "P_{k}",
}
SETS = ["scifact", "nfcorpus-partial", "trec-dl19-pool", "cranfield", "cacm"]


def assert_equal_to_pytrec_eval(run, qrels, cuts=CUTS) -> int:
    """Compare every metric of every query; returns how many queries were compared.

    Ours consume the :class:`Run` arrays; pytrec_eval gets the same run as a dict.

    Always the same cutoffs: pytrec_eval keeps measure parameters in trec_eval's global state,
    and evaluators built with different cutoff lists in one process can crash it.
    """
    run = run if isinstance(run, Run) else Run.from_dict(run)
    ours = evaluate_run(run, qrels, k=cuts).to_dict()
    measures = {
        f"{name.split('_')[0]}_cut" if name.startswith(("ndcg", "map")) else name.split("_")[0]
        for name in TREC_NAMES.values()
    }
    measures = {f"{m}.{','.join(map(str, cuts))}" for m in measures}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run.to_dict())
    assert ours.keys() == reference.keys()
    for k in cuts:
        # trec_eval has no recip_rank cut: score the run truncated to k instead
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run.cut(k).to_dict())
        for qid in reference:
            assert ours[qid][f"mrr@{k}"] == pytest.approx(rr[qid]["recip_rank"], abs=1e-9), qid
            for ours_name, trec_name in TREC_NAMES.items():
                expected = reference[qid][trec_name.format(k=k)]
                got = ours[qid][f"{ours_name}@{k}"]
                assert got == pytest.approx(expected, abs=1e-9), (qid, ours_name, k)
    return len(reference)


@pytest.mark.real_model
@pytest.mark.parametrize("name", SETS)
def test_metrics_equal_pytrec_eval_on_bm25_runs_of_every_dataset(shared_data, name):
    ds = load_beir(shared_data / name, "test")
    run = BM25Retriever(ds.doc_texts()).retrieve(ds.queries, k=100).run
    assert assert_equal_to_pytrec_eval(run, ds.qrels) == len(ds.qrels)


def test_ties_negative_grades_and_empty_queries_follow_trec_eval():
    qrels = {
        "q1": {"a": 2, "b": 0, "c": -1, "d": 1, "z": 3},
        "q2": {"a": 0, "b": 0},  # judged, nothing relevant
        "q3": {"x": 1},  # relevant document never retrieved
        "q4": {"a": 1},  # in the run with no hits
        "q6": {"a": 1},  # not in the run: not scored
    }
    run = {
        "q1": {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.5, "e": 2.0},
        "q2": {"a": 1.0},
        "q3": {"a": 1.0},
        "q4": {},
        "q5": {"a": 1.0},  # not judged: not scored
    }
    assert assert_equal_to_pytrec_eval(run, qrels) == 4
    ours = evaluate_run(run, qrels, k=10)
    assert ours.qids == ["q1", "q2", "q3", "q4"]
    # ties: c > b > a by docid descending, so the first relevant document (a) is at rank 4
    assert ours.to_dict()["q1"]["mrr@10"] == 0.25


docids = st.sampled_from(["a", "b", "B", "c", "10", "9", "d-1", "é"])
scores = st.sampled_from([0.0, 0.5, 1.0, 1.0000001, 2.0, -3.0])


@settings(max_examples=150, deadline=None)
@given(
    run=st.dictionaries(st.sampled_from(["q1", "q2", "q3"]), st.dictionaries(docids, scores)),
    # pytrec_eval corrupts memory (and crashes) on a query judged with negative grades only:
    # every generated query gets at least one grade >= 0
    qrels=st.dictionaries(
        st.sampled_from(["q1", "q2", "q3"]),
        st.dictionaries(docids, st.integers(-2, 4), min_size=1).filter(
            lambda grades: max(grades.values()) >= 0
        ),
        min_size=1,
    ),
)
def test_random_runs_with_ties_equal_pytrec_eval(run, qrels):
    assert_equal_to_pytrec_eval(run, qrels)


def test_relevance_level_raises_the_bar_for_binary_metrics():
    run = {"q": {"a": 2.0, "b": 1.0}}
    qrels = {"q": {"a": 1, "b": 2}}
    assert evaluate_run(run, qrels, k=10).mean()["mrr@10"] == 1.0
    assert evaluate_run(run, qrels, k=10, relevance_level=2).mean()["mrr@10"] == 0.5


def test_means_and_bad_arguments():
    metrics = evaluate_run(
        {"q": {"a": 1.0}, "r": {"b": 1.0}}, {"q": {"a": 1}, "r": {"a": 1}}, k=[1]
    )
    assert metrics.mean()["precision@1"] == 0.5
    with pytest.raises(InvalidInputError):
        evaluate_run({}, {}, k=0)
    with pytest.raises(InvalidInputError):
        evaluate_run({}, {}, measures=["bpref"])
    with pytest.raises(InvalidInputError):
        evaluate_run({"q": {"a": float("nan")}}, {"q": {"a": 1}})
