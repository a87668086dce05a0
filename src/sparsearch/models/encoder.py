"""`SparseEncoder`: a stack of modules that turns texts into `SparseVectors`.

Example::

    from sparsearch.models import SparseEncoder

    enc = SparseEncoder("rasyosef/splade-tiny")
    q = enc.encode_query(["what causes ageing?"])
    enc.decode(q, top_k=3)   # [[('aging', 2.1), ('ageing', 2.0), ('causes', 1.6)]]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from sparsearch.errors import ConfigError, InvalidInputError, ModelLoadError
from sparsearch.models._base import TokenizerInput
from sparsearch.models.autoencoder import SparseAutoEncoder
from sparsearch.models.loading import load_modules, resolve_model_dir, save_modules
from sparsearch.models.router import Router, call_module
from sparsearch.models.static_embedding import SparseStaticEmbedding
from sparsearch.models.transformer import MLMTransformer, tokenizer_vocab
from sparsearch.sparse import SparseVectors


def _check_texts(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Sequence) and not isinstance(texts, np.ndarray):
        raise InvalidInputError(
            f"expected a string or a list of strings, got {type(texts).__name__}"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(f"text at position {i} is a {type(text).__name__}, not a str")
    return out


@overload
def _positive_int(name: str, value: int) -> int: ...
@overload
def _positive_int(name: str, value: int | None) -> int | None: ...
def _positive_int(name: str, value: int | None) -> int | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0
    ):
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return None if value is None else int(value)


#: ``encode(precision=...)``: the dtype of the matrix products (None: as the weights, float32)
PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _dense_to_vectors(dense: torch.Tensor, vocab: tuple[str, ...] | None) -> SparseVectors:
    """CSR of the non-zeros of a (batch, dim) tensor; torch.nonzero yields row-major order."""
    dense = dense.detach().float().cpu()
    rows, cols = dense.nonzero(as_tuple=True)
    indptr = np.zeros(dense.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows.numpy(), minlength=dense.shape[0]), out=indptr[1:])
    return SparseVectors(indptr, cols.numpy(), dense[rows, cols].numpy(), dense.shape[1], vocab)


def _walk(modules: Sequence[torch.nn.Module]) -> list[torch.nn.Module]:
    """All modules, routes of a Router included."""
    out: list[torch.nn.Module] = []
    for module in modules:
        out.append(module)
        if isinstance(module, Router):
            for route in module.stacks().values():
                out.extend(_walk(list(route)))
    return out


class SparseEncoder(torch.nn.Sequential):
    """A sparse text encoder: SPLADE, inference-free SPLADE (router) or CSR.

    Load a hub id or a local folder (sentence-transformers layout, or a plain fill-mask checkpoint
    which becomes MLM + max-pooled SPLADE), or pass ``modules=[...]`` built from parts. Like a
    sentence-transformers model it is a ``torch.nn.Sequential``: ``tokenize(texts, task)`` gives
    the features and ``model(features, task=...)["sentence_embedding"]`` the dense batch × dim
    tensor (with gradients when enabled), which is what training losses use.
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        modules: Sequence[torch.nn.Module] | None = None,
        max_active_dims: int | None = None,
        similarity_fn_name: str | None = None,
    ) -> None:
        config: dict[str, Any] = {}
        if model_name_or_path is not None and modules is None:
            modules, config = load_modules(resolve_model_dir(model_name_or_path))
        elif model_name_or_path is not None or modules is None:
            raise ConfigError("give either model_name_or_path or modules")
        super().__init__(*modules)
        self.max_active_dims = _positive_int(
            "max_active_dims",
            max_active_dims if max_active_dims is not None else config.get("max_active_dims"),
        )
        self.similarity_fn_name = similarity_fn_name or config.get("similarity_fn_name")
        if self.similarity_fn_name not in (None, "dot", "cosine"):
            raise ConfigError(f"unsupported similarity_fn_name {self.similarity_fn_name!r}")
        everything = _walk(list(self))
        sae = next((m for m in everything if isinstance(m, SparseAutoEncoder)), None)
        if sae is not None:
            self.dim = sae.hidden_dim
            self.vocab: tuple[str, ...] | None = None
            if self.max_active_dims is None:
                self.max_active_dims = sae.k
        else:
            lexical = [
                m for m in everything if isinstance(m, (MLMTransformer, SparseStaticEmbedding))
            ]
            if not lexical:
                raise ConfigError("a SparseEncoder needs an MLM, a static embedding or a CSR layer")
            dims = {m.get_embedding_dimension() for m in lexical}
            if len(dims) > 1:
                raise ModelLoadError(f"the routes output different vocabulary sizes {sorted(dims)}")
            self.dim = dims.pop()
            self.vocab = tokenizer_vocab(lexical[0].tokenizer, self.dim)
        self.eval()  # inference by default, like a freshly loaded transformers model

    # ------------------------------------------------------------------ torch API
    def _input(self) -> Router | TokenizerInput:
        """The first module, which tokenizes the texts (a Router: through its routes)."""
        first = self[0]
        if not isinstance(first, (Router, TokenizerInput)):
            raise ConfigError(f"the first module, {type(first).__name__}, does not tokenize texts")
        return first

    def _input_modules(self) -> list[TokenizerInput]:
        """The tokenizing modules: the first module, or the first of each route of a Router."""
        first = self._input()
        return first.input_modules() if isinstance(first, Router) else [first]

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated."""
        return max(module.max_seq_length for module in self._input_modules())

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        value = _positive_int("max_seq_length", value)
        for module in self._input_modules():
            module.max_seq_length = value

    def tokenize(self, texts: list[str], task: str | None = None) -> dict[str, Any]:
        """Features for a batch of texts (``task`` picks a Router's route: query / document)."""
        return self._input().preprocess(texts, task=task)

    # ``features`` like every module's forward (and sentence-transformers'); Sequential's
    # forward names its one argument ``input``.
    def forward(  # type: ignore[override]
        self,
        features: dict[str, Any],
        task: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        for module in self:
            features = call_module(module, features, task=task, **kwargs)
        return features

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        max_active_dims: int | None = None,
        task: str | None = None,
        precision: str = "float32",
    ) -> SparseVectors:
        """Encode texts into sparse vectors, in the input order.

        Texts are sorted by length and encoded ``batch_size`` at a time; ``max_active_dims``
        (default: the model's) keeps only the largest weights of each vector. ``precision=
        "bfloat16"`` runs the matrix products in bfloat16 (torch autocast): several times faster
        on CPUs with AMX or AVX512-BF16 and on GPUs, but not exact (docs/encoding.md measures
        its nDCG@10 cost); the default ``"float32"`` is exact.
        """
        texts = _check_texts(texts)
        batch_size = _positive_int("batch_size", batch_size)
        k = _positive_int("max_active_dims", max_active_dims) or self.max_active_dims
        device = next(self.parameters()).device
        autocast = _autocast(precision, device)
        if not texts:
            return SparseVectors.empty(self.dim, self.vocab)
        parts, order = [], []
        batches = self.iter_batches(
            texts, batch_size, task=task, show_progress_bar=show_progress_bar
        )
        for rows, features in batches:
            with torch.inference_mode(), autocast:
                dense = self(features, task=task, max_active_dims=k)["sentence_embedding"]
            vectors = _dense_to_vectors(dense, self.vocab)
            parts.append(vectors.top_k_per_row(k) if k is not None else vectors)
            order.append(rows)
        return SparseVectors.concat(parts)[np.argsort(np.concatenate(order))]

    def iter_batches(
        self,
        texts: Sequence[str],
        batch_size: int,
        *,
        task: str | None = None,
        show_progress_bar: bool | None = None,
        desc: str = "Encoding",
    ) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        """``(positions, features)`` of ``texts`` tokenized ``batch_size`` at a time, longest
        first, on the model's device; the model is in eval mode until the iteration ends."""
        batch_size = _positive_int("batch_size", batch_size)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            for start in tqdm(
                range(0, len(texts), batch_size),
                desc=desc,
                unit="batch",
                disable=not show_progress_bar,
            ):
                rows = order[start : start + batch_size]
                features = self.tokenize([texts[i] for i in rows], task=task)
                yield (
                    rows,
                    {
                        key: v.to(device) if isinstance(v, torch.Tensor) else v
                        for key, v in features.items()
                    },
                )
        finally:
            self.train(was_training)

    def encode_query(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        max_active_dims: int | None = None,
        precision: str = "float32",
    ) -> SparseVectors:
        """Encode queries (a Router's ``query`` route)."""
        return self.encode(
            texts, batch_size, show_progress_bar, max_active_dims, task="query", precision=precision
        )

    def encode_document(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        max_active_dims: int | None = None,
        precision: str = "float32",
    ) -> SparseVectors:
        """Encode documents (a Router's ``document`` route)."""
        return self.encode(
            texts,
            batch_size,
            show_progress_bar,
            max_active_dims,
            task="document",
            precision=precision,
        )

    # ------------------------------------------------------------------ inspection
    def decode(
        self, vectors: SparseVectors, top_k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        """(token, weight) pairs of each vector, heaviest first (ties: lower token id first)."""
        top_k = _positive_int("top_k", top_k)
        vocab = vectors.vocab if vectors.vocab is not None else self.vocab
        if vocab is None:
            raise InvalidInputError("these vectors have no vocabulary (CSR latents): cannot decode")
        out = []
        for i in range(vectors.n):
            idx, val = vectors.row(i)
            order = np.lexsort((idx, -val))[:top_k]
            out.append([(vocab[j], float(v)) for j, v in zip(idx[order], val[order], strict=True)])
        return out

    def intersection(self, a: SparseVectors, b: SparseVectors) -> SparseVectors:
        """Elementwise product (why two texts match): ``a`` has one row (broadcast over ``b``) or
        as many rows as ``b``. Only dimensions positive in the product are kept."""
        a.check_compatible(b)
        if a.n not in (1, b.n):
            raise InvalidInputError(f"intersection needs 1 or {b.n} rows in a, got {a.n}")
        left = a[np.zeros(b.n, dtype=np.int64)] if a.n == 1 else a
        product = sp.csr_matrix(left.to_scipy().multiply(b.to_scipy()))
        product.data[product.data < 0] = 0
        return SparseVectors.from_scipy(product, b.vocab if b.vocab is not None else a.vocab)

    def similarity(self, a: SparseVectors, b: SparseVectors, fn: str | None = None) -> np.ndarray:
        """(a.n × b.n) scores: ``"dot"`` or ``"cosine"`` (default: the model's, else dot)."""
        fn = fn or self.similarity_fn_name or "dot"
        scores = a.dot(b)
        if fn == "dot":
            return scores
        if fn != "cosine":
            raise InvalidInputError(f"fn must be 'dot' or 'cosine', got {fn!r}")
        norms_a = np.sqrt(a.to_scipy().multiply(a.to_scipy()).sum(axis=1)).A1
        norms_b = np.sqrt(b.to_scipy().multiply(b.to_scipy()).sum(axis=1)).A1
        denom = np.maximum(norms_a, 1e-12)[:, None] * np.maximum(norms_b, 1e-12)[None, :]
        return (scores / denom).astype(np.float32)

    @staticmethod
    def sparsity(vectors: SparseVectors) -> dict[str, float]:
        """Mean/min/max active dimensions and the sparsity ratio."""
        return vectors.sparsity()

    # ------------------------------------------------------------------ saving
    def save(self, path: str | Path) -> None:
        """Write the model in the sentence-transformers layout (loads in both libraries)."""
        config: dict[str, Any] = {"similarity_fn_name": self.similarity_fn_name}
        if self.max_active_dims is not None:
            config["max_active_dims"] = self.max_active_dims
        save_modules(list(self), Path(path), config)
