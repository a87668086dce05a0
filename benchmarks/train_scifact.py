"""Fine-tune sparse encoders on SciFact train, evaluate on SciFact test (CPU).

Runs (pick with --run, default all): `splade` (rasyosef/splade-tiny + SpladeLoss(MNRL) with
BM25-mined hard negatives), `inference_free` (splade-tiny document side + IDF-initialised static
query weights, router_mapping + learning_rate_mapping), `csr` (CSR head on all-MiniLM-L6-v2),
and the variants of each in ``RUNNERS``.
Each run evaluates before and after training with exact search; results go to
benchmarks/results/train_scifact.{json,md}.

    HF_HUB_OFFLINE=1 HF_HUB_CACHE=../shared/hf-cache nice -n 5 .venv/bin/python benchmarks/train_scifact.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "scifact"
IDF = SHARED / "models" / "opensearch-bert-uncased-idf" / "idf.json"
RESULTS = ROOT / "benchmarks" / "results"
#: training-argument overrides (``--quick`` sets a few steps); applied to every run
OVERRIDES: dict = {}


def load_split(split: str):
    from sparsearch.eval.beir import load_beir

    return load_beir(DATA, split)


def train_pairs(split_data):
    """(query, positive) rows: one per judged (query, document) pair with grade > 0."""
    from datasets import Dataset

    docs = split_data.doc_texts()
    rows = {"query": [], "positive": []}
    for qid, judged in split_data.qrels.items():
        for did, grade in judged.items():
            if grade > 0 and qid in split_data.queries and did in docs:
                rows["query"].append(split_data.queries[qid])
                rows["positive"].append(docs[did])
    return Dataset.from_dict(rows)


class ExactIREvaluator:
    """nDCG@10 / Recall@100 / active dims by exact dot-product search over the whole corpus."""

    def __init__(self, test, batch_size: int = 64) -> None:
        self.test = test
        self.doc_ids = list(test.corpus)
        texts = test.doc_texts()
        self.doc_texts = [texts[d] for d in self.doc_ids]
        self.qids = list(test.queries)
        self.query_texts = [test.queries[q] for q in self.qids]
        self.batch_size = batch_size

    def __call__(self, model) -> dict[str, float]:
        from sparsearch.eval.metrics import evaluate_run

        t0 = time.perf_counter()
        q = model.encode_query(self.query_texts, batch_size=self.batch_size)
        query_seconds = time.perf_counter() - t0
        d = model.encode_document(self.doc_texts, batch_size=self.batch_size)
        scores = (q.to_scipy() @ d.to_scipy().T).toarray()
        top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
        run = {
            qid: {self.doc_ids[j]: float(scores[i, j]) for j in top[i]}
            for i, qid in enumerate(self.qids)
        }
        metrics = evaluate_run(run, self.test.qrels, k=[10, 100]).mean()
        return {
            "ndcg@10": metrics["ndcg@10"],
            "recall@100": metrics["recall@100"],
            "query_active_dims": float(np.diff(q.indptr).mean()),
            "document_active_dims": float(np.diff(d.indptr).mean()),
            "query_encode_ms_per_query": 1000 * query_seconds / len(self.query_texts),
        }


def run_training(name, model, loss, dataset, evaluator, args_kwargs, card) -> dict:
    from sparsearch.train import SparseEncoderTrainer, SparseEncoderTrainingArguments

    out = ROOT / "benchmarks" / "out" / f"scifact-{name}"  # git-ignored
    before = evaluator(model)
    print(f"[{name}] before: {json.dumps(before)}", flush=True)
    settings = {
        "logging_steps": 5,
        "save_steps": 20,
        "save_total_limit": 2,
        "seed": 12,
        # several epochs: evaluate after each, for the curve
        "eval_strategy": "epoch" if args_kwargs["num_train_epochs"] > 1 else "no",
        **args_kwargs,
        **OVERRIDES,
    }
    args = SparseEncoderTrainingArguments(output_dir=str(out), use_cpu=True, **settings)
    trainer = SparseEncoderTrainer(
        model, args, train_dataset=dataset, loss=loss, evaluator=evaluator, model_card_data=card
    )
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0
    after = trainer.evaluate()
    after = {k.removeprefix("eval_"): v for k, v in after.items() if k != "eval_runtime"}
    trainer.save_model(str(out / "final"))
    print(f"[{name}] after: {json.dumps(after)}  train {train_seconds:.0f}s", flush=True)
    keys = (
        "step",
        "epoch",
        "loss",
        "query_active_dims",
        "document_active_dims",
        "eval_ndcg@10",
        "eval_document_active_dims",
    )
    curve = [
        {k: h[k] for k in keys if k in h}
        for h in trainer.state.log_history
        if "loss" in h or "eval_ndcg@10" in h
    ]
    return {
        "before": before,
        "after": after,
        "train_seconds": round(train_seconds, 1),
        "steps": trainer.state.global_step,
        "steps_per_second": round(trainer.state.global_step / train_seconds, 4),
        "rows": len(dataset),
        "args": args_kwargs,
        "curve": curve,
    }


def run_splade(
    pairs,
    corpus,
    evaluator,
    name: str = "splade",
    doc_weight: float = 3e-3,
    query_weight: float = 5e-3,
    epochs: int = 1,
    learning_rate: float = 5e-5,
) -> dict:
    from sparsearch.models import SparseEncoder
    from sparsearch.train import SparseMultipleNegativesRankingLoss, SpladeLoss
    from sparsearch.train.mining import mine_hard_negatives

    dataset = mine_hard_negatives(
        pairs, corpus, "bm25", num_negatives=1, range_min=10, range_max=50, sampling="random"
    )
    model = SparseEncoder("rasyosef/splade-tiny")
    model.max_seq_length = 256
    loss = SpladeLoss(
        model,
        SparseMultipleNegativesRankingLoss(model),
        document_regularizer_weight=doc_weight,
        query_regularizer_weight=query_weight,
    )
    args = {
        "num_train_epochs": epochs,
        "per_device_train_batch_size": 16,
        "learning_rate": learning_rate,
        "warmup_steps": 0.1,
    }
    card = {
        "base_model": "rasyosef/splade-tiny",
        "model_name": "splade-tiny fine-tuned on SciFact",
        "data_description": "SciFact train pairs with one BM25 hard negative (ranks 10-50).",
    }
    result = run_training(name, model, loss, dataset, evaluator, args, card)
    result["regularizer_weights"] = {"document": doc_weight, "query": query_weight}
    return result


def run_inference_free(
    pairs,
    corpus,
    evaluator,
    name: str = "inference_free",
    doc_weight: float = 3e-3,
    epochs: int = 1,
    learning_rate: float = 5e-5,
) -> dict:
    from sparsearch.models import (
        MLMTransformer,
        Router,
        SparseEncoder,
        SparseStaticEmbedding,
        SpladePooling,
    )
    from sparsearch.train import SparseMultipleNegativesRankingLoss, SpladeLoss
    from sparsearch.train.mining import mine_hard_negatives

    dataset = mine_hard_negatives(
        pairs, corpus, "bm25", num_negatives=1, range_min=10, range_max=50, sampling="random"
    )
    mlm = MLMTransformer("rasyosef/splade-tiny", max_seq_length=256)
    static = SparseStaticEmbedding.from_json(IDF, mlm.tokenizer)
    model = SparseEncoder(modules=[Router.for_query_document([static], [mlm, SpladePooling()])])
    loss = SpladeLoss(
        model,
        SparseMultipleNegativesRankingLoss(model),
        document_regularizer_weight=doc_weight,
        query_regularizer_weight=None,
    )
    args = {
        "num_train_epochs": epochs,
        "per_device_train_batch_size": 16,
        "learning_rate": learning_rate,
        "warmup_steps": 0.1,
        "router_mapping": {"query": "query", "positive": "document", "negative_1": "document"},
        "learning_rate_mapping": {r"sub_modules\.query\.0\.weight": 1e-3},
    }
    card = {
        "base_model": "rasyosef/splade-tiny (document side) + OpenSearch IDF query weights",
        "model_name": "inference-free splade-tiny fine-tuned on SciFact",
        "data_description": "SciFact train pairs with one BM25 hard negative (ranks 10-50).",
    }
    result = run_training(name, model, loss, dataset, evaluator, args, card)
    result["regularizer_weights"] = {"document": doc_weight}
    return result


def dense_baseline(evaluator) -> dict:
    """nDCG@10 of all-MiniLM-L6-v2 itself (cosine, exact), the reference for the CSR head."""
    from sentence_transformers import SentenceTransformer

    from sparsearch.eval.metrics import evaluate_run

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    model.max_seq_length = 256
    q = model.encode(evaluator.query_texts, normalize_embeddings=True)
    d = model.encode(evaluator.doc_texts, normalize_embeddings=True, batch_size=64)
    scores = q @ d.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    run = {
        qid: {evaluator.doc_ids[j]: float(scores[i, j]) for j in top[i]}
        for i, qid in enumerate(evaluator.qids)
    }
    return {
        k: float(v)
        for k, v in evaluate_run(run, evaluator.test.qrels, k=[10, 100]).mean().items()
        if k in ("ndcg@10", "recall@100")
    }


def run_csr(pairs, corpus, evaluator, name: str = "csr", head_lr: float | None = None) -> dict:
    from sparsearch.models import Pooling, SparseAutoEncoder, SparseEncoder, Transformer
    from sparsearch.train import CSRLoss, SparseMultipleNegativesRankingLoss

    if head_lr is None:  # the plain run measures the dense reference once
        dense = dense_baseline(evaluator)
        print(f"[csr] dense all-MiniLM-L6-v2: {json.dumps(dense)}", flush=True)
    backbone = Transformer("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256)
    model = SparseEncoder(
        modules=[
            backbone,
            Pooling(384, "mean"),
            SparseAutoEncoder(384, hidden_dim=4 * 384, k=64, k_aux=512),
        ]
    )
    loss = CSRLoss(
        model,
        SparseMultipleNegativesRankingLoss(model, scale=20.0, similarity="cosine"),
        beta=0.1,
        gamma=1.0,
    )
    args = {
        "num_train_epochs": 1,
        "per_device_train_batch_size": 32,
        "learning_rate": 4e-5,
        "warmup_steps": 0.1,
    }
    if head_lr is not None:  # the autoencoder (module 2) starts from random weights
        args["learning_rate_mapping"] = {r"^2\.": head_lr}
    card = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_name": "CSR (k=64) on all-MiniLM-L6-v2, SciFact",
        "data_description": "SciFact train (query, positive) pairs.",
    }
    result = run_training(name, model, loss, pairs, evaluator, args, card)
    if head_lr is None:
        result["dense"] = dense
    return result


#: --run NAME -> the run (each variant's comment says why it exists)
RUNNERS = {
    "splade": run_splade,
    # the same with 10x weaker FLOPS weights: the 3e-3 / 5e-3 run halved the document dims
    "splade_light": partial(run_splade, name="splade_light", doc_weight=3e-4, query_weight=5e-4),
    # sentence-transformers' SPLADE example weights (100x weaker again), 3 epochs at 1e-4
    "splade_long": partial(
        run_splade,
        name="splade_long",
        doc_weight=3e-5,
        query_weight=5e-5,
        epochs=3,
        learning_rate=1e-4,
    ),
    "inference_free": run_inference_free,
    # 3e-3 cut the document dims 248 -> 102 and lost nDCG: the same 10x weaker
    "inference_free_light": partial(
        run_inference_free, name="inference_free_light", doc_weight=3e-4
    ),
    # splade_long's recipe on the inference-free model
    "inference_free_long": partial(
        run_inference_free,
        name="inference_free_long",
        doc_weight=3e-5,
        epochs=3,
        learning_rate=1e-4,
    ),
    "csr": run_csr,
    # 28 steps at 4e-5 barely move a randomly initialised autoencoder: 1e-3 for it alone
    "csr_fast_head": partial(run_csr, name="csr_fast_head", head_lr=1e-3),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="all", choices=[*RUNNERS, "all"])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 64 pairs, 2 steps of 8, a 300-document slice of the test corpus",
    )
    opts = parser.parse_args()
    print(
        "command:",
        "nice -n 5 .venv/bin/python benchmarks/train_scifact.py",
        *sys.argv[1:],
        flush=True,
    )
    train, test = load_split("train"), load_split("test")
    pairs = train_pairs(train)
    corpus = list(train.doc_texts().values())
    name = "train_scifact"
    if opts.quick:
        name += "_quick"
        OVERRIDES.update(max_steps=2, save_steps=2, per_device_train_batch_size=8)
        pairs = pairs.select(range(64))
        test = quick_slice(test)
    evaluator = ExactIREvaluator(test)
    print(f"train pairs: {len(pairs)}, queries: {len(set(pairs['query']))}", flush=True)
    results_path = RESULTS / f"{name}.json"
    for run in [opts.run] if opts.run != "all" else list(RUNNERS):
        result = RUNNERS[run](pairs, corpus, evaluator)
        result["provenance"] = provenance()  # per run: the file keeps runs of other processes
        # read again just before writing: runs of other processes may have finished meanwhile
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[run] = result
        results_path.write_text(json.dumps(results, indent=2))
        write_markdown(results, name)
    return 0


def quick_slice(test):
    """40 judged queries and a corpus of their judged documents plus the first 300 others."""
    import dataclasses

    qrels = dict(list(test.qrels.items())[:40])
    keep = {d for judged in qrels.values() for d in judged} | set(list(test.corpus)[:300])
    return dataclasses.replace(
        test,
        corpus={d: doc for d, doc in test.corpus.items() if d in keep},
        queries={q: test.queries[q] for q in qrels},
        qrels=qrels,
    )


def write_markdown(results: dict, name: str) -> None:
    lines = [
        "# Fine-tuning on SciFact (train → test), CPU",
        "",
        f"`nice -n 5 .venv/bin/python benchmarks/train_scifact.py{' --quick' if 'quick' in name else ''}`",
        "",
        *(
            [
                "Smoke run: 40 test queries over a ~370-document slice of the corpus, 64 training pairs, "
                "2-3 steps. It checks the pipeline end to end; its numbers say nothing about quality.",
                "",
            ]
            if "quick" in name
            else []
        ),
        "| run | nDCG@10 before | nDCG@10 after | doc dims before | doc dims after | query dims after "
        "| query ms/q | train s | steps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run, r in results.items():
        b, a = r["before"], r["after"]
        lines.append(
            f"| {run} | {b['ndcg@10']:.4f} | {a['ndcg@10']:.4f} | {b['document_active_dims']:.1f} "
            f"| {a['document_active_dims']:.1f} | {a['query_active_dims']:.1f} "
            f"| {a['query_encode_ms_per_query']:.2f} | {r['train_seconds']:.0f} | {r['steps']} |"
        )
    for run, r in results.items():
        # one per epoch (the final evaluate() repeats the last epoch's)
        evals = list({c["epoch"]: c for c in r["curve"] if "eval_ndcg@10" in c}.values())
        if len(evals) > 1:
            lines += [
                "",
                f"{run}, after each epoch: "
                + ", ".join(
                    f"epoch {c['epoch']:.0f} nDCG@10 {c['eval_ndcg@10']:.4f} "
                    f"(doc dims {c['eval_document_active_dims']:.1f})"
                    for c in evals
                )
                + ".",
            ]
    if "csr" in results:
        dense = results["csr"]["dense"]
        lines += [
            "",
            f"Dense all-MiniLM-L6-v2 (the CSR backbone) on the same test: nDCG@10 "
            f"{dense['ndcg@10']:.4f}, Recall@100 {dense['recall@100']:.4f}.",
        ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
