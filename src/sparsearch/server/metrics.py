"""Request counts and latencies in the Prometheus text format (no client library needed)."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Latency histogram bounds, in seconds."""


class Metrics:
    """Thread-safe counters of requests by (method, route, status) and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._encoded_batches: list[int] = [0, 0]  # batches, queries

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            counts = self._buckets.setdefault((method, route), [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sums[(method, route)] += seconds

    def observe_query_batch(self, size: int) -> None:
        with self._lock:
            self._encoded_batches[0] += 1
            self._encoded_batches[1] += size

    def render(self, collections: Iterable[tuple[str, int, int]]) -> str:
        """The exposition text; ``collections``: (name, documents, bytes) of each collection."""
        lines = [
            "# HELP sparsearch_requests_total HTTP requests by method, route and status.",
            "# TYPE sparsearch_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), count in sorted(self._requests.items()):
                lines.append(
                    f'sparsearch_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {count}'
                )
            lines += [
                "# HELP sparsearch_request_seconds HTTP request latency.",
                "# TYPE sparsearch_request_seconds histogram",
            ]
            for (method, route), counts in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{route}"'
                total = 0
                for bound, count in zip([*BUCKETS, "+Inf"], counts, strict=True):
                    total += count
                    lines.append(
                        f'sparsearch_request_seconds_bucket{{{labels},le="{bound}"}} {total}'
                    )
                lines.append(
                    f"sparsearch_request_seconds_sum{{{labels}}} {self._sums[(method, route)]}"
                )
                lines.append(f"sparsearch_request_seconds_count{{{labels}}} {total}")
            batches, queries = self._encoded_batches
        lines += [
            "# HELP sparsearch_query_encode_batches_total Forward passes that encoded text queries.",
            "# TYPE sparsearch_query_encode_batches_total counter",
            f"sparsearch_query_encode_batches_total {batches}",
            "# HELP sparsearch_query_encode_queries_total Text queries encoded.",
            "# TYPE sparsearch_query_encode_queries_total counter",
            f"sparsearch_query_encode_queries_total {queries}",
            "# HELP sparsearch_collection_documents Documents stored per collection.",
            "# TYPE sparsearch_collection_documents gauge",
        ]
        sizes = list(collections)
        lines += [f'sparsearch_collection_documents{{collection="{n}"}} {d}' for n, d, _ in sizes]
        lines += [
            "# HELP sparsearch_collection_bytes Index bytes per collection.",
            "# TYPE sparsearch_collection_bytes gauge",
        ]
        lines += [f'sparsearch_collection_bytes{{collection="{n}"}} {b}' for n, _, b in sizes]
        return "\n".join(lines) + "\n"
