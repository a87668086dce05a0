"""What every evaluator shares: encoding through the model's routes, input checks, row-wise
similarities and the sparsity statistics reported beside each metric."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from sparsearch.errors import InvalidInputError
from sparsearch.sparse import SparseVectors

#: the similarity functions the evaluators compute (sentence-transformers' names)
SIMILARITIES = ("cosine", "dot")

Side = Literal["query", "document"] | None
"""Which encoder route a text takes: ``encode_query``, ``encode_document`` or plain ``encode``."""


class TextEncoder(Protocol):
    """A sparse text encoder as the evaluators use it (:class:`sparsearch.SparseEncoder`)."""

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        max_active_dims: int | None = ...,
    ) -> SparseVectors: ...

    def encode_query(
        self,
        texts: Sequence[str],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        max_active_dims: int | None = ...,
    ) -> SparseVectors: ...

    def encode_document(
        self,
        texts: Sequence[str],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        max_active_dims: int | None = ...,
    ) -> SparseVectors: ...


def check_texts(values: Any, what: str) -> list[str]:
    """``values`` as a non-empty list of str, or an error naming ``what``."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)):
        raise InvalidInputError(f"{what} must be a list of strings, got {type(values).__name__}")
    texts = list(values)
    if not texts:
        raise InvalidInputError(f"{what} is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"{what}[{i}] is a {type(text).__name__}, not a str")
    return texts


def check_same_length(**lists: Sequence[Any]) -> None:
    """Raise naming the lists when they are not all equally long."""
    if len({len(values) for values in lists.values()}) > 1:
        sizes = ", ".join(f"{name} has {len(values)}" for name, values in lists.items())
        raise InvalidInputError(f"the inputs must be equally long: {sizes}")


def check_number(value: Any, what: str) -> float:
    """A finite real number (not a bool) as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInputError(f"{what} must be finite, got {value!r}")
    return float(value)


def check_positive_int(value: Any, what: str) -> int:
    """A positive int (not a bool), or an error naming ``what``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_similarity(name: Any, what: str) -> str:
    """One of :data:`SIMILARITIES`, or an error naming ``what``."""
    if name not in SIMILARITIES:
        raise InvalidInputError(f"{what} must be one of {list(SIMILARITIES)}, got {name!r}")
    return str(name)


def similarity_names(names: Sequence[str] | None, main: str | None) -> list[str]:
    """The checked similarity functions to report: ``names``, else ``[main]``, else ``[]`` (the
    model's own, resolved at call time). ``main`` must be among ``names`` when both are given."""
    if main is not None:
        check_similarity(main, "main_similarity")
    if not names:
        return [main] if main is not None else []
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InvalidInputError(f"similarity_fn_names must be a list, got {names!r}")
    checked = [check_similarity(n, "each of similarity_fn_names") for n in dict.fromkeys(names)]
    if main is not None and main not in checked:
        raise InvalidInputError(f"main_similarity {main!r} is not in similarity_fn_names {checked}")
    return checked


def primary_key(template: str, max_key: str, main: str | None, names: Sequence[str]) -> str:
    """The main metric's key: ``template`` filled with ``main``, else ``max_key`` over several
    functions, else ``template`` filled with the one function."""
    if main is not None:
        return template.format(main)
    return max_key if len(names) > 1 else template.format(names[0])


def model_similarity(model: Any) -> str:
    """The model's similarity function (``similarity_fn_name``; dot when it names none)."""
    return check_similarity(
        getattr(model, "similarity_fn_name", None) or "dot", "the model's similarity"
    )


def _row_norms(matrix: sp.csr_matrix) -> npt.NDArray[np.float64]:
    return np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float64).ravel())


def pairwise_similarity(a: SparseVectors, b: SparseVectors, fn: str) -> npt.NDArray[np.float64]:
    """``fn(a[i], b[i])`` for every row ``i``: ``"dot"``, or ``"cosine"`` (0 for an empty vector,
    as torch's normalisation with eps 1e-12 gives).

    >>> a = SparseVectors.from_dicts([{0: 3.0, 1: 4.0}, {2: 1.0}], dim=3)
    >>> b = SparseVectors.from_dicts([{0: 1.0}, {}], dim=3)
    >>> pairwise_similarity(a, b, "dot").tolist(), pairwise_similarity(a, b, "cosine").tolist()
    ([3.0, 0.0], [0.6, 0.0])
    """
    a.check_compatible(b)
    if a.n != b.n:
        raise InvalidInputError(f"pairwise similarity needs as many rows: {a.n} and {b.n}")
    check_similarity(fn, "fn")
    left, right = a.to_scipy().astype(np.float64), b.to_scipy().astype(np.float64)
    dots = np.asarray(left.multiply(right).sum(axis=1), dtype=np.float64).ravel()
    if fn == "dot":
        return dots
    return dots / (np.maximum(_row_norms(left), 1e-12) * np.maximum(_row_norms(right), 1e-12))


def sparsity(vectors: SparseVectors) -> dict[str, float]:
    """Mean active dimensions and sparsity ratio (sentence-transformers' ``model.sparsity``)."""
    stats = vectors.sparsity()
    return {"active_dims": stats["active_dims"], "sparsity_ratio": stats["sparsity_ratio"]}


class SparseEvaluator(ABC):
    """An evaluator: ``evaluator(model) -> {metric: value}``, each key prefixed by ``name``.

    Texts are encoded ``batch_size`` at a time with ``max_active_dims`` (None: the model's).
    After a call, ``primary_metric`` names the key of the main score (what
    :class:`~sparsearch.eval.SequentialEvaluator` combines).
    """

    def __init__(
        self,
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        max_active_dims: int | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise InvalidInputError(f"name must be a string, got {name!r}")
        self.name = name
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.show_progress_bar = show_progress_bar
        self.max_active_dims = (
            None
            if max_active_dims is None
            else check_positive_int(max_active_dims, "max_active_dims")
        )
        self.primary_metric: str | None = None

    def __call__(self, model: TextEncoder) -> dict[str, float]:
        """Evaluate ``model``: the metrics and sparsity statistics, keys prefixed ``{name}_``."""
        metrics, primary = self._evaluate(model)
        self.primary_metric = self._key(primary)
        return {self._key(key): float(value) for key, value in metrics.items()}

    @abstractmethod
    def _evaluate(self, model: TextEncoder) -> tuple[dict[str, float], str]:
        """The unprefixed metrics and the key of the main one."""

    def _key(self, key: str) -> str:
        return f"{self.name}_{key}" if self.name else key

    def _encode(self, model: TextEncoder, texts: Sequence[str], side: Side) -> SparseVectors:
        """``texts`` through the model's query route, document route or plain ``encode``."""
        encode = {
            None: model.encode,
            "query": model.encode_query,
            "document": model.encode_document,
        }[side]
        return encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            max_active_dims=self.max_active_dims,
        )
