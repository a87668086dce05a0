"""Distillation: the mean squared error between a student's vectors and a teacher's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError
from sparsearch.eval.evaluators.base import (
    SparseEvaluator,
    TextEncoder,
    check_same_length,
    check_texts,
    sparsity,
)
from sparsearch.eval.evaluators.files import read_rows
from sparsearch.sparse import SparseVectors


def mean_squared_error(a: SparseVectors, b: SparseVectors) -> float:
    """Mean of ``(a - b) ** 2`` over all ``n × dim`` entries, zeros included.

    >>> a = SparseVectors.from_dicts([{0: 1.0}], dim=4)
    >>> mean_squared_error(a, SparseVectors.from_dicts([{0: 3.0, 1: 2.0}], dim=4))  # (4 + 4) / 4
    2.0
    """
    a.check_compatible(b)
    if a.n != b.n:
        raise InvalidInputError(f"{a.n} vectors cannot be compared with {b.n}")
    difference = a.to_scipy().astype(np.float64) - b.to_scipy().astype(np.float64)
    return float(np.square(difference.data).sum() / (a.n * a.dim))


class MSEEvaluator(SparseEvaluator):
    """MSE (× 100) between the teacher's vectors of ``source_sentences`` and the evaluated
    (student) model's vectors of ``target_sentences``, as sentence-transformers'
    ``SparseMSEEvaluator``: the mean runs over every one of the ``n × dim`` entries.

    ``teacher`` is a model, which encodes ``source_sentences`` once, here, or the teacher's
    vectors of them (one row per source sentence). Both sides go through plain ``encode`` (the
    default route, as sentence-transformers does); ``max_active_dims`` caps the student only (the
    teacher keeps its own setting). Keys: ``negative_mse`` (``-100 × MSE``, so higher is better;
    the primary metric) and the student's ``active_dims`` / ``sparsity_ratio``.

    Example::

        evaluator = MSEEvaluator(texts, texts, teacher=SparseEncoder("big-teacher"), name="distill")
        evaluator(student)["distill_negative_mse"]
    """

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        teacher: TextEncoder | SparseVectors,
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        max_active_dims: int | None = None,
    ) -> None:
        super().__init__(name, batch_size, show_progress_bar, max_active_dims)
        sources = check_texts(source_sentences, "source_sentences")
        self.target_sentences = check_texts(target_sentences, "target_sentences")
        check_same_length(source_sentences=sources, target_sentences=self.target_sentences)
        if isinstance(teacher, SparseVectors):
            if teacher.n != len(sources):
                raise InvalidInputError(
                    f"the teacher's vectors have {teacher.n} rows for {len(sources)} sentences"
                )
            self.teacher_vectors = teacher
        elif isinstance(teacher, (str, bytes)) or not callable(getattr(teacher, "encode", None)):
            raise InvalidInputError(
                "teacher must be a model (load a hub id or folder with SparseEncoder) or "
                f"SparseVectors, got {type(teacher).__name__}"
            )
        else:
            self.teacher_vectors = teacher.encode(
                sources, batch_size=self.batch_size, show_progress_bar=show_progress_bar
            )

    @classmethod
    def from_jsonl(
        cls, path: str | Path, teacher: TextEncoder | SparseVectors, **kwargs: Any
    ) -> MSEEvaluator:
        """From a JSONL file of ``{"source": str, "target": str}`` rows (no ``target``: the
        student reads the source text too); ``kwargs`` go to the constructor."""
        rows = read_rows(path, {"source": "text", "target": "text"}, optional={"target"})
        return cls(
            [r["source"] for r in rows],
            [r.get("target", r["source"]) for r in rows],
            teacher,
            **kwargs,
        )

    def _evaluate(self, model: TextEncoder) -> tuple[dict[str, float], str]:
        student = self._encode(model, self.target_sentences, None)
        mse = mean_squared_error(self.teacher_vectors, student) * 100
        return {"negative_mse": -mse, **sparsity(student)}, "negative_mse"
