"""Feeding datasets to the model: column roles, the collator, and the concatenated view."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset

LABEL_COLUMNS = ("label", "score")
DATASET_NAME_KEY = "dataset_name"


def split_columns(column_names: Sequence[str]) -> tuple[list[str], str | None]:
    """(text columns in order, the label column or None) of a dataset's columns."""
    labels = [c for c in column_names if c in LABEL_COLUMNS]
    return [c for c in column_names if c not in LABEL_COLUMNS], (labels[0] if labels else None)


class NamedConcatDataset(TorchDataset):
    """Several named datasets seen as one index space; each row says which dataset it came from."""

    def __init__(self, datasets: Mapping[str, Any]) -> None:
        self.names = list(datasets)
        self.datasets = [datasets[n] for n in self.names]
        self.offsets = []
        total = 0
        for ds in self.datasets:
            self.offsets.append(total)
            total += len(ds)
        self.total = total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> dict[str, Any]:
        for k in range(len(self.datasets) - 1, -1, -1):
            if index >= self.offsets[k]:
                row = dict(self.datasets[k][index - self.offsets[k]])
                row[DATASET_NAME_KEY] = self.names[k]
                return row
        raise IndexError(index)


class SparseEncoderDataCollator:
    """Tokenizes each text column of a batch (with its route) and stacks the label column.

    Output: {"dataset_name": str, "columns": [features per text column], "labels": tensor|None}.
    `router_mapping` is {dataset name: {column: route}}.
    """

    def __init__(
        self,
        tokenize: Callable[..., dict[str, Any]],
        router_mapping: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.tokenize = tokenize
        self.router_mapping = router_mapping

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        name = rows[0][DATASET_NAME_KEY]
        columns = [c for c in rows[0] if c != DATASET_NAME_KEY]
        text_columns, label_column = split_columns(columns)
        routes = self.router_mapping.get(name, {})
        features = [self.tokenize([r[c] for r in rows], task=routes.get(c)) for c in text_columns]
        labels = None
        if label_column is not None:
            labels = torch.tensor([r[label_column] for r in rows], dtype=torch.float32)
        return {DATASET_NAME_KEY: name, "columns": features, "labels": labels}
