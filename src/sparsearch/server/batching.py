"""Query micro-batching: text queries that arrive within a short window share one forward pass.

A request awaits :meth:`QueryBatcher.encode`. When nothing is encoding, the first text opens a
window of ``window_ms``; every text that arrives meanwhile (up to ``max_batch``) joins it, and
the batch is encoded in a worker thread (off the event loop) with one call of
``Collection.encode``. One batch encodes at a time: what arrives meanwhile becomes the next
batch, so under load the batches grow by themselves. ``others_waiting`` (when given) tells
whether other requests are in flight: a lone query does not wait out the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sparsearch.collection.queries import Encoded


class QueryBatcher:
    """Encode concurrent queries of one collection together (``encode_batch`` runs in a thread)."""

    def __init__(
        self,
        encode_batch: Callable[[Sequence[Any]], Encoded],
        window_ms: float = 2.0,
        max_batch: int = 64,
        on_batch: Callable[[int], None] | None = None,
        others_waiting: Callable[[], bool] | None = None,
    ) -> None:
        self._encode_batch = encode_batch
        self._window = window_ms / 1000
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._others_waiting = others_waiting
        self._pending: list[tuple[Any, asyncio.Future[Encoded]]] = []
        self._full = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None

    async def encode(self, query: Any) -> Encoded:
        """This query encoded (alone or with the others of its batch)."""
        future: asyncio.Future[Encoded] = asyncio.get_running_loop().create_future()
        self._pending.append((query, future))
        if len(self._pending) >= self._max_batch:
            self._full.set()
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Encode batches until nothing is pending: the first after the window, each next one
        with everything that arrived while the previous one encoded (one encode at a time)."""
        try:
            if (
                self._window > 0
                and len(self._pending) < self._max_batch
                and (self._others_waiting is None or self._others_waiting())
            ):
                try:
                    await asyncio.wait_for(self._full.wait(), self._window)
                except asyncio.TimeoutError:
                    pass
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._full.clear()
                await self._encode(batch)
        finally:
            self._drainer = None

    async def _encode(self, batch: list[tuple[Any, asyncio.Future[Encoded]]]) -> None:
        queries = [query for query, _ in batch]
        try:
            encoded = await asyncio.to_thread(self._encode_batch, queries)
        except Exception as err:
            if len(batch) > 1:  # one bad query must not fail the others: encode each alone
                for one in batch:
                    await self._encode([one])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(err)
            return
        if self._on_batch is not None:
            self._on_batch(len(batch))
        for i, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(
                    Encoded(
                        texts=[encoded.texts[i]],
                        sparse=[encoded.sparse[i]],
                        dense=[encoded.dense[i]],
                    )
                )
