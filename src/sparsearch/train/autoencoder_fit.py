"""Fit the sparse-autoencoder head of a CSR model on cached backbone embeddings.

The backbone of a CSR model (everything before its :class:`SparseAutoEncoder`) is frozen here,
so each text goes through it once; the head then trains for many epochs on those embeddings in
seconds, with the CSR losses (:class:`CSRLoss`: reconstruction L(k), L(4k)/8, the auxiliary
dead-latent term, and a ranking loss on the sparse codes of (query, positive) pairs).

Example::

    from sparsearch.models import Normalize, Pooling, SparseAutoEncoder, SparseEncoder, Transformer
    from sparsearch.train import AutoencoderFitSettings, fit_autoencoder

    model = SparseEncoder(modules=[
        Transformer("sentence-transformers/all-MiniLM-L6-v2"), Pooling(384, "mean"), Normalize(),
        SparseAutoEncoder(384, hidden_dim=1536, k=64),
    ])
    history = fit_autoencoder(
        model, corpus_texts, pairs=[(query, positive), ...], settings=AutoencoderFitSettings(epochs=20)
    )
    model.save("csr-model")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from tqdm.auto import tqdm

from sparsearch.errors import ConfigError, DimensionMismatchError, InvalidInputError
from sparsearch.models import SparseAutoEncoder, SparseEncoder
from sparsearch.models.router import call_module
from sparsearch.train.losses.csr import CSRLoss
from sparsearch.train.losses.ranking import SparseMultipleNegativesRankingLoss


def autoencoder_head(model: SparseEncoder) -> SparseAutoEncoder:
    """The model's SparseAutoEncoder, which must be its last top-level module."""
    if not isinstance(model, SparseEncoder):
        raise InvalidInputError(f"expected a SparseEncoder, got {type(model).__name__}")
    head = model[-1]
    if not isinstance(head, SparseAutoEncoder):
        raise ConfigError(
            f"the model's last module is {type(head).__name__}, not a SparseAutoEncoder: "
            "only a CSR model (backbone + SparseAutoEncoder) has a head to fit"
        )
    return head


def _check_texts(name: str, texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"{name} must be a list of strings, got {type(texts).__name__}")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()), None)
    if bad is not None:
        raise InvalidInputError(f"{name}[{bad}] is not a non-empty string: {texts[bad]!r}")
    return list(texts)


def backbone_embeddings(
    model: SparseEncoder,
    texts: Sequence[str],
    *,
    task: str | None = None,
    batch_size: int = 64,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """(len(texts), input_dim) float32: the embeddings the model's SparseAutoEncoder takes as input.

    Texts run through every module before the head (longest first, ``batch_size`` at a time);
    ``task`` picks a Router's route, as in :meth:`SparseEncoder.encode`.
    """
    head = autoencoder_head(model)
    texts = _check_texts("texts", texts)
    out = np.zeros((len(texts), head.input_dim), dtype=np.float32)
    batches = model.iter_batches(
        texts, batch_size, task=task, show_progress_bar=show_progress_bar, desc="Backbone"
    )
    for rows, features in batches:
        with torch.inference_mode():
            for module in list(model)[:-1]:
                features = call_module(module, features, task=task)
        out[rows] = features["sentence_embedding"].float().cpu().numpy()
    return out


@dataclass(frozen=True)
class AutoencoderFitSettings:
    """How the head is fitted: Adam at ``learning_rate`` for ``epochs`` passes over the texts,
    ``batch_size`` texts (and as many pairs, cycled) a step.

    The loss is :class:`CSRLoss` with weight ``beta`` on the auxiliary term and ``ranking_weight``
    (its γ) on :class:`SparseMultipleNegativesRankingLoss` over the pairs' sparse codes, scored by
    ``similarity`` × ``scale``; each query's negatives are the batch's other positives and, with
    ``text_negatives``, the step's texts too. Without pairs only the reconstruction terms are
    trained.
    """

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    ranking_weight: float = 1.0
    scale: float = 20.0
    similarity: str = "cosine"
    beta: float = 0.1
    text_negatives: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        for name in ("learning_rate", "scale"):
            if not 0 < getattr(self, name) < float("inf"):
                raise InvalidInputError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("ranking_weight", "beta"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise InvalidInputError(f"{name} must be >= 0, got {getattr(self, name)!r}")


def _matrix(name: str, values: np.ndarray | torch.Tensor, head: SparseAutoEncoder) -> torch.Tensor:
    """``values`` as a finite float32 (n >= 1, head.input_dim) tensor on the head's device."""
    tensor = torch.as_tensor(values, dtype=torch.float32)
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise InvalidInputError(
            f"{name} must be a non-empty 2-D array, got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[1] != head.input_dim:
        raise DimensionMismatchError(
            f"{name} has {tensor.shape[1]} columns, the autoencoder takes {head.input_dim}"
        )
    if not torch.isfinite(tensor).all():
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return tensor.to(head.encoder.weight.device)


def fit_autoencoder_embeddings(
    head: SparseAutoEncoder,
    embeddings: np.ndarray | torch.Tensor,
    pairs: tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor] | None = None,
    settings: AutoencoderFitSettings | None = None,
    *,
    show_progress_bar: bool | None = None,
) -> list[dict[str, float]]:
    """Train ``head`` in place on its input ``embeddings`` (n, input_dim) and, when given, on
    ``pairs`` = (query embeddings, positive embeddings), row i of one matching row i of the other.

    Returns one dict per epoch: the mean of each loss term and of their sum (``"loss"``).
    """
    if not isinstance(head, SparseAutoEncoder):
        raise InvalidInputError(f"expected a SparseAutoEncoder, got {type(head).__name__}")
    settings = settings if settings is not None else AutoencoderFitSettings()
    texts = _matrix("embeddings", embeddings, head)
    queries = positives = None
    if pairs is not None:
        queries, positives = (
            _matrix("queries", pairs[0], head),
            _matrix("positives", pairs[1], head),
        )
        if len(queries) != len(positives):
            raise InvalidInputError(
                f"{len(queries)} query rows but {len(positives)} positive rows: pairs must match"
            )
    ranking = SparseMultipleNegativesRankingLoss(
        head, scale=settings.scale, similarity=settings.similarity
    )
    loss_fn = CSRLoss(head, ranking, beta=settings.beta, gamma=settings.ranking_weight)
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    size = settings.batch_size
    history: list[dict[str, float]] = []
    was_training = head.training
    head.train()
    try:
        with torch.enable_grad():
            for epoch in tqdm(
                range(settings.epochs), desc="Fitting head", disable=not show_progress_bar
            ):
                text_order = torch.randperm(len(texts), generator=generator)
                pair_order = (
                    torch.randperm(len(queries), generator=generator)
                    if queries is not None
                    else None
                )
                sums: dict[str, float] = {}
                n_steps = -(-len(texts) // size)
                for step in range(n_steps):
                    batch = texts[text_order[step * size : (step + 1) * size]]
                    if queries is None or positives is None or pair_order is None:
                        losses = loss_fn.reconstruction_losses(
                            [head({"sentence_embedding": batch})]
                        )
                    else:
                        start = (step * size) % len(queries)
                        rows = pair_order[start : start + size]
                        columns = [queries[rows], positives[rows]]
                        if settings.text_negatives:
                            columns.append(batch)
                        losses = loss_fn([{"sentence_embedding": c} for c in columns])
                    total = sum(losses.values(), torch.zeros(()))
                    optimizer.zero_grad()
                    total.backward()
                    optimizer.step()
                    for key, value in {**losses, "loss": total}.items():
                        sums[key] = sums.get(key, 0.0) + float(value.detach())
                history.append(
                    {key: value / n_steps for key, value in sums.items()} | {"epoch": epoch + 1}
                )
    finally:
        head.train(was_training)
    return history


def fit_autoencoder(
    model: SparseEncoder,
    texts: Sequence[str],
    pairs: Sequence[tuple[str, str]] | None = None,
    settings: AutoencoderFitSettings | None = None,
    *,
    encode_batch_size: int = 64,
    show_progress_bar: bool | None = None,
) -> list[dict[str, float]]:
    """Fit the SparseAutoEncoder head of a CSR ``model`` in place, its backbone frozen.

    ``texts`` (say, the corpus; no labels needed) and the (query, positive) ``pairs`` go through
    the backbone once (:func:`backbone_embeddings`; queries on the ``"query"`` task, the rest on
    ``"document"``), then :func:`fit_autoencoder_embeddings` trains the head on them. Returns the
    loss history, one dict per epoch.
    """
    head = autoencoder_head(model)
    texts = _check_texts("texts", texts)
    if not texts:
        raise InvalidInputError("texts is empty: the head needs texts to reconstruct")
    settings = settings if settings is not None else AutoencoderFitSettings()
    embed = partial(
        backbone_embeddings,
        model,
        batch_size=encode_batch_size,
        show_progress_bar=show_progress_bar,
    )
    pair_embeddings = None
    if pairs is not None:
        pairs = list(pairs)
        if not pairs or any(not isinstance(p, (tuple, list)) or len(p) != 2 for p in pairs):
            raise InvalidInputError("pairs must be a non-empty list of (query, positive) tuples")
        pair_embeddings = (
            embed([q for q, _ in pairs], task="query"),
            embed([p for _, p in pairs], task="document"),
        )
    return fit_autoencoder_embeddings(
        head,
        embed(texts, task="document"),
        pair_embeddings,
        settings,
        show_progress_bar=show_progress_bar,
    )
