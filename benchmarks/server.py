"""The HTTP server against the embedded Collection: latency, throughput, micro-batching, ingest.

Data: SciFact (5,183 documents, the 300 test queries) from ../shared/data/scifact. Two
collections in one server root: ``splade`` (rasyosef/splade-tiny on both sides) and ``ifree``
(inference-free: splade-tiny documents + OpenSearch's bert-base-uncased IDF table as static query
weights, built in code and saved inside the collection). The server runs as a subprocess
(``sparsearch serve``, uvicorn, one worker); clients are threads of this process, each with its
own keep-alive ``httpx.Client``, so clients and server share the same cores.

Measured:

1. ingest: documents/s of ``PUT /points`` with texts (encoded on the server, batches of 64) for
   ``splade``; the same documents as pre-encoded vectors for ``ifree``; and the embedded
   ``Collection.upsert_texts`` on 1,000 documents for comparison;
2. vector queries (``{"indices", "values"}``, pre-encoded) at 1, 8 and 32 concurrent clients:
   requests/s, p50, p99, errors; the embedded ``Collection.search`` of the same vectors (one
   thread, ``threads=1`` like the server) gives the HTTP layer's overhead at p50;
3. text queries at 1, 8 and 32 clients, with micro-batching (the default: 2 ms window, up to 64
   queries per forward pass) and without (a second server, ``--max-query-batch 1``): requests/s,
   p50, p99, errors, and the mean batch size from ``/metrics``.

Every answer is checked (status 200, k hits); errors are counted, never dropped.

Reproduce (about 10 minutes on 2 cores):

    .venv/bin/python benchmarks/server.py
    .venv/bin/python benchmarks/server.py --quick     # 600 documents, short runs

Writes benchmarks/results/server.{json,md} (``--quick``: benchmarks/out/server_quick.*).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IDF = SHARED / "models" / "opensearch-bert-uncased-idf" / "idf.json"
MODEL = "rasyosef/splade-tiny"
CLIENTS = (1, 8, 32)


def inference_free() -> Any:
    from sparsearch.models import (
        MLMTransformer,
        Router,
        SparseEncoder,
        SparseStaticEmbedding,
        SpladePooling,
    )

    mlm = MLMTransformer(MODEL)
    static = SparseStaticEmbedding.from_json(IDF, mlm.tokenizer)
    return SparseEncoder(modules=[Router.for_query_document([static], [mlm, SpladePooling()])])


class Server:
    """``sparsearch serve ROOT`` in a subprocess on a free port."""

    def __init__(self, root: Path, *extra: str) -> None:
        port_file = root.parent / f"port-{os.getpid()}-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sparsearch.cli", "serve", str(root), "--port", "0"]
            + ["--port-file", str(port_file), "--max-batch", "4096", *extra],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def http_client(url: str) -> Any:
    """A keep-alive client with TCP_NODELAY, as :class:`sparsearch.Client` uses (without it,
    Nagle's algorithm holds the request body behind the headers until the server's delayed ACK:
    about 40 ms a request)."""
    import socket

    import httpx

    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=url, timeout=600, transport=transport)


def timed_requests(
    url: str, bodies: list[dict[str, Any]], clients: int, total: int, k: int
) -> dict[str, Any]:
    """``total`` searches from ``clients`` threads (each its own connection), bodies in turn."""

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        with http_client(url) as http:
            http.get("/healthz")
            mine = []
            for i in counter:
                start = time.perf_counter()
                reply = http.post(
                    "/collections/" + bodies[i % len(bodies)]["_col"] + "/points/search",
                    json={key: v for key, v in bodies[i % len(bodies)].items() if key != "_col"},
                )
                elapsed = time.perf_counter() - start
                if reply.status_code != 200 or len(reply.json()["hits"]) != k:
                    with lock:
                        errors[0] += 1
                mine.append(elapsed)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors[0],
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def batch_counters(url: str) -> tuple[float, float]:
    import httpx

    text = httpx.get(url + "/metrics").text
    values = {}
    for line in text.splitlines():
        if line.startswith("sparsearch_query_encode_"):
            name, value = line.split()
            values[name] = float(value)
    return (
        values.get("sparsearch_query_encode_batches_total", 0.0),
        values.get("sparsearch_query_encode_queries_total", 0.0),
    )


def ingest(url: str, name: str, points: list[dict[str, Any]], batch: int) -> dict[str, Any]:

    start = time.perf_counter()
    with http_client(url) as http:
        for i in range(0, len(points), batch):
            reply = http.put(f"/collections/{name}/points", json={"points": points[i : i + batch]})
            reply.raise_for_status()
    seconds = time.perf_counter() - start
    return {"documents": len(points), "seconds": seconds, "docs_per_s": len(points) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 documents, short runs")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_CACHE", str(SHARED / "hf-cache"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from sparsearch.collection import Collection
    from sparsearch.eval import load_beir

    data = load_beir(SHARED / "data" / "scifact", "test")
    docs = data.doc_texts()
    if args.quick:
        docs = dict(list(docs.items())[:600])
    queries = list(data.queries.values())
    per_config = 200 if args.quick else 600
    tmp = Path(tempfile.mkdtemp(prefix="sparsearch-server-bench-"))
    root = tmp / "root"
    results: dict[str, Any] = {"documents": len(docs), "queries": len(queries), "k": args.k}
    try:
        # the inference-free collection is built in code, so it is created in-process
        ifree = Collection.create(root / "ifree", model=inference_free())
        ifree.close()
        server = Server(root)
        try:
            import httpx

            httpx.put(server.url + "/collections/splade", json={"model": MODEL}, timeout=300)
            points = [{"id": d, "text": t} for d, t in docs.items()]
            results["ingest_text_http"] = ingest(server.url, "splade", points, 64)
            print("ingest (texts over HTTP):", results["ingest_text_http"], flush=True)

            embedded = Collection.open(root / "splade")  # read-only here: the server writes
            ids = list(docs)
            vectors, _ = embedded.encode_documents([docs[d] for d in ids])
            vector_points = [
                {"id": d, "vector": {"indices": row[0].tolist(), "values": row[1].tolist()}}
                for d, row in zip(ids, (vectors.row(i) for i in range(vectors.n)), strict=True)
            ]
            results["ingest_vectors_http"] = ingest(server.url, "ifree", vector_points, 256)
            print("ingest (vectors over HTTP):", results["ingest_vectors_http"], flush=True)

            scratch = Collection.create(tmp / "scratch", model=embedded.sparse_model)
            sample = ids[:1000]
            start = time.perf_counter()
            scratch.upsert_texts(sample, [docs[d] for d in sample], write_batch=64)
            seconds = time.perf_counter() - start
            results["ingest_text_embedded"] = {
                "documents": len(sample),
                "seconds": seconds,
                "docs_per_s": len(sample) / seconds,
            }
            scratch.close()
            print("ingest (texts embedded):", results["ingest_text_embedded"], flush=True)

            embedded.index.refresh()
            encoded, _ = embedded.encode_queries(queries)
            vector_queries = [
                {"indices": encoded.row(i)[0].tolist(), "values": encoded.row(i)[1].tolist()}
                for i in range(encoded.n)
            ]
            for query in vector_queries[:20]:  # warm-up
                embedded.search(query, k=args.k, mode="sparse", threads=1)
            times = []
            for query in vector_queries * (2 if args.quick else 4):
                start = time.perf_counter()
                embedded.search(query, k=args.k, mode="sparse", threads=1)
                times.append(time.perf_counter() - start)
            embedded_ms = np.array(times) * 1000
            results["vector_embedded"] = {
                "p50_ms": float(np.percentile(embedded_ms, 50)),
                "p99_ms": float(np.percentile(embedded_ms, 99)),
            }
            embedded.close()

            results["vector_http"] = []
            bodies = [{"_col": "splade", "query": q, "k": args.k} for q in vector_queries]
            timed_requests(server.url, bodies, 4, 100, args.k)  # warm-up
            for clients in CLIENTS:
                row = timed_requests(server.url, bodies, clients, per_config, args.k)
                results["vector_http"].append(row)
                print("vector queries:", row, flush=True)
            one = results["vector_http"][0]["p50_ms"]
            results["http_overhead_p50_ms"] = one - results["vector_embedded"]["p50_ms"]

            results["text_http"] = run_text(server.url, queries, per_config, args.k, "batched")
        finally:
            server.stop()
        single = Server(root, "--max-query-batch", "1", "--batch-window-ms", "0")
        try:
            results["text_http"] += run_text(
                single.url, queries, per_config, args.k, "one at a time"
            )
        finally:
            single.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summarize(results)
    results["provenance"] = provenance(sys.argv[1:])
    out = REPO / ("benchmarks/out/server_quick" if args.quick else "benchmarks/results/server")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def run_text(url: str, queries: list[str], total: int, k: int, how: str) -> list[dict[str, Any]]:
    rows = []
    for name in ("splade", "ifree"):
        bodies = [{"_col": name, "query": q, "k": k} for q in queries]
        timed_requests(url, bodies, 4, 60, k)  # warm-up
        for clients in CLIENTS:
            before = batch_counters(url)
            row = timed_requests(url, bodies, clients, total, k)
            after = batch_counters(url)
            batches = after[0] - before[0]
            row.update(
                collection=name,
                encoding=how,
                mean_batch=(after[1] - before[1]) / batches if batches else None,
            )
            rows.append(row)
            print("text queries:", row, flush=True)
    return rows


def summarize(results: dict[str, Any]) -> None:
    """Micro-batching speed-up at 32 clients, and the error total."""
    speedups = {}
    for name in ("splade", "ifree"):
        by = {
            row["encoding"]: row["rps"]
            for row in results["text_http"]
            if row["collection"] == name and row["clients"] == max(CLIENTS)
        }
        speedups[name] = by["batched"] / by["one at a time"]
    results["microbatch_speedup_at_32"] = speedups
    results["errors"] = sum(row["errors"] for row in results["vector_http"] + results["text_http"])


def markdown(results: dict[str, Any]) -> str:
    prov = results.get("provenance", {})
    lines = [
        "# HTTP server benchmark (SciFact, k = {k})".format(**results),
        "",
        f"{results['documents']} documents, {results['queries']} test queries; server and "
        "client threads on the same machine "
        f"({prov.get('cpu_model', '?')}, {prov.get('usable_cpus', '?')} usable CPUs), "
        f"commit {prov.get('commit', '?')[:10]}; command `{prov.get('command', '?')}`.",
        "",
        "## Ingest",
        "",
        "| path | documents | docs/s |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("ingest_text_http", "texts over HTTP (splade-tiny encodes on the server)"),
        ("ingest_text_embedded", "texts, embedded `Collection.upsert_texts`"),
        ("ingest_vectors_http", "pre-encoded vectors over HTTP"),
    ):
        row = results[key]
        lines.append(f"| {label} | {row['documents']} | {row['docs_per_s']:.0f} |")
    emb = results["vector_embedded"]
    lines += [
        "",
        "## Vector queries (pre-encoded splade-tiny queries)",
        "",
        f"Embedded `Collection.search` (one thread): p50 {emb['p50_ms']:.2f} ms, p99 "
        f"{emb['p99_ms']:.2f} ms. HTTP overhead at p50 (1 client): "
        f"**{results['http_overhead_p50_ms']:.2f} ms**.",
        "",
        "| clients | requests/s | p50 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in results["vector_http"]:
        lines.append(
            f"| {row['clients']} | {row['rps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['errors']} |"
        )
    lines += [
        "",
        "## Text queries (encoded on the server)",
        "",
        "| collection | query encoding | clients | requests/s | p50 ms | p99 ms | mean batch | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["text_http"]:
        batch = f"{row['mean_batch']:.1f}" if row["mean_batch"] else "-"
        lines.append(
            f"| {row['collection']} | {row['encoding']} | {row['clients']} | {row['rps']:.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {batch} | {row['errors']} |"
        )
    speedups = results["microbatch_speedup_at_32"]
    lines += [
        "",
        "Micro-batching speed-up at 32 clients: "
        + ", ".join(f"{name} {value:.2f}x" for name, value in speedups.items())
        + f". Errors in all runs: {results['errors']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
