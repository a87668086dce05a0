"""SPLADE pooling: log(1 + relu(logits)) (optionally log1p once more), pooled over tokens."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from sparsearch.errors import ConfigError
from sparsearch.models._base import Module

# The chunked path's tile of logits: real tokens x vocabulary entries (512 x 1024 float32 = 2 MiB,
# small enough to stay in cache between the matrix multiply and the reduction).
_TILE_TOKENS = 512
_TILE_VOCAB = 1024


def _activate(x: torch.Tensor, activation: str, inplace: bool) -> torch.Tensor:
    x = x.relu_().log1p_() if inplace else x.relu().log1p()
    if activation == "log1p_relu":
        x = x.log1p_() if inplace else x.log1p()
    return x


class SpladePooling(Module):
    """Turn MLM logits into one vocabulary-sized vector per text.

    ``pooling_strategy`` is ``"max"`` (SPLADE v2 and later) or ``"sum"`` (SPLADE v1);
    ``activation_function`` is ``"relu"`` (log(1 + relu(x))) or ``"log1p_relu"``
    (log(1 + log(1 + relu(x)))).

    Two input forms: full ``token_embeddings`` logits (training: exactly the sentence-transformers
    computation, gradients included), or ``token_hidden`` + ``mlm_head`` (inference). In the second
    form the logits of real (non-padding) tokens are computed ``chunk_size`` tokens at a time and
    reduced at once; for max pooling the running max is taken on raw logits and the monotone
    activation applied once per text, so batch × length × vocabulary floats never exist.
    """

    config_keys: ClassVar[list[str]] = [
        "pooling_strategy",
        "activation_function",
        "embedding_dimension",
    ]
    st_type: ClassVar[str] = (
        "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling"
    )

    def __init__(
        self,
        pooling_strategy: str = "max",
        activation_function: str = "relu",
        embedding_dimension: int | None = None,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if pooling_strategy not in ("max", "sum"):
            raise ConfigError(f"pooling_strategy must be 'max' or 'sum', got {pooling_strategy!r}")
        if activation_function not in ("relu", "log1p_relu"):
            raise ConfigError(
                f"activation_function must be 'relu' or 'log1p_relu', got {activation_function!r}"
            )
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension
        self.chunk_size = chunk_size

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        mask = features["attention_mask"]
        if "token_hidden" in features:
            pooled = self._pool_chunked(
                features.pop("token_hidden"), mask, features.pop("mlm_head")
            )
        else:
            pooled = self._pool_logits(features["token_embeddings"], mask)
        if self.embedding_dimension is None:
            self.embedding_dimension = int(pooled.shape[1])
        features["sentence_embedding"] = pooled
        return features

    def _pool_logits(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The reference computation on full (batch, length, vocab) logits."""
        x = _activate(
            logits * mask.unsqueeze(-1).to(logits.dtype),
            self.activation_function,
            inplace=not torch.is_grad_enabled(),
        )
        return x.max(dim=1).values if self.pooling_strategy == "max" else x.sum(dim=1)

    def _pool_chunked(self, hidden: torch.Tensor, mask: torch.Tensor, head: Any) -> torch.Tensor:
        """Pool ``head`` logits of the real tokens, one cache-sized tile at a time.

        Tiles are ``_TILE_TOKENS`` real tokens (texts one after another) by ``_TILE_VOCAB``
        vocabulary entries, so each block of logits stays in the CPU cache between the matrix
        multiply that writes it and the reduction that reads it.
        """
        lengths = mask.sum(dim=1).tolist()
        tokens = head.transform(hidden[mask.bool()])  # (real tokens, ·), texts one after another
        is_max = self.pooling_strategy == "max"
        if head.weight is None:  # an unsplittable head: its output is the logits
            weight, bias = None, None
            vocab = int(tokens.shape[-1])
        else:
            weight, bias = head.weight, head.bias
            vocab = int(weight.shape[0])
        out = torch.full(
            (len(lengths), vocab),
            -torch.inf if is_max else 0.0,
            dtype=tokens.dtype,
            device=tokens.device,
        )
        rows = self.chunk_size or _TILE_TOKENS
        cols = vocab if weight is None else _TILE_VOCAB
        bounds = [0]
        for n in lengths:
            bounds.append(bounds[-1] + int(n))
        first_doc = 0
        for start in range(0, tokens.shape[0], rows):
            stop = min(start + rows, tokens.shape[0])
            while bounds[first_doc + 1] <= start:
                first_doc += 1
            spans = []  # (text, first row, end row) of the texts in this chunk, chunk-relative
            doc = first_doc
            while doc < len(lengths) and bounds[doc] < stop:
                a, b = max(bounds[doc], start) - start, min(bounds[doc + 1], stop) - start
                if b > a:
                    spans.append((doc, a, b))
                doc += 1
            chunk = tokens[start:stop]
            for v0 in range(0, vocab, cols):
                v1 = min(v0 + cols, vocab)
                if weight is None:
                    block = chunk
                else:
                    # max pooling adds the bias once per text, below (a constant commutes with max)
                    tile_bias = None if is_max or bias is None else bias[v0:v1]
                    block = F.linear(chunk, weight[v0:v1], tile_bias)
                if not is_max:
                    block = _activate(block, self.activation_function, inplace=True)
                for doc, a, b in spans:
                    target = out[doc, v0:v1]
                    if is_max:
                        torch.maximum(target, block[a:b].amax(dim=0), out=target)
                    else:
                        target += block[a:b].sum(dim=0)
        if is_max:
            if bias is not None:
                out += bias
            out = _activate(out, self.activation_function, inplace=True)
        return out

    def get_embedding_dimension(self) -> int | None:
        return self.embedding_dimension
