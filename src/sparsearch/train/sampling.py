"""Batch samplers: no-duplicates batches for in-batch negatives, and multi-dataset mixing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler


def _row_texts(row: dict[str, Any], columns: Sequence[str]) -> set[str]:
    return {row[c] for c in columns if isinstance(row[c], str)}


class DatasetBatchSampler(Sampler[list[int]]):
    """Shuffled batches of one dataset's rows (indices offset by `offset` into a concatenation).

    With `no_duplicates`, a batch never holds the same text twice (in any text column), so a
    query's positive can never be served to another query of the batch as a negative. Rows that
    clash are kept for a later batch. The last incomplete batch is dropped.
    """

    def __init__(
        self,
        dataset: Any,  # a datasets.Dataset (untyped): len() and column access
        batch_size: int,
        text_columns: Sequence[str],
        no_duplicates: bool = True,
        seed: int = 0,
        offset: int = 0,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.text_columns = list(text_columns)
        self.no_duplicates = no_duplicates
        self.seed = seed
        self.offset = offset
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        if not self.no_duplicates:
            for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
                yield [self.offset + i for i in order[start : start + self.batch_size]]
            return
        texts = {c: self.dataset[c] for c in self.text_columns}
        pending = order
        while len(pending) >= self.batch_size:
            batch: list[int] = []
            seen: set[str] = set()
            left: list[int] = []
            for i in pending:
                row = _row_texts({c: texts[c][i] for c in self.text_columns}, self.text_columns)
                if len(batch) < self.batch_size and not (row & seen):
                    batch.append(i)
                    seen |= row
                else:
                    left.append(i)
            if len(batch) < self.batch_size:
                return
            yield [self.offset + i for i in batch]
            pending = left


class MultiDatasetBatchSampler(Sampler[list[int]]):
    """Interleaves the batches of several datasets' samplers.

    round_robin: one batch from each dataset in turn, stopping when the smallest runs out.
    proportional: every batch of every dataset, in a seeded random order (larger datasets are
    sampled more often).
    """

    def __init__(
        self, samplers: Sequence[DatasetBatchSampler], mode: str = "proportional", seed: int = 0
    ) -> None:
        self.samplers = list(samplers)
        self.mode = mode
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def __len__(self) -> int:
        if self.mode == "round_robin":
            return min(len(s) for s in self.samplers) * len(self.samplers)
        return sum(len(s) for s in self.samplers)

    def __iter__(self) -> Iterator[list[int]]:
        iterators = [iter(s) for s in self.samplers]
        if self.mode == "round_robin":
            for _ in range(min(len(s) for s in self.samplers)):
                for it in iterators:
                    batch = next(it, None)
                    if batch is None:
                        return
                    yield batch
            return
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        schedule = [k for k, s in enumerate(self.samplers) for _ in range(len(s))]
        for pos in torch.randperm(len(schedule), generator=generator).tolist():
            batch = next(iterators[schedule[pos]], None)
            if batch is not None:
                yield batch
