"""The torch API the trainer uses: tokenize + forward give the same dense, differentiable
embeddings as sentence-transformers, and a Router follows ``task``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsearch.models import SparseEncoder, SpladePooling
from tests.conftest import SENTENCES


@pytest.mark.real_model  # parity with sentence-transformers on the real splade-tiny
def test_forward_matches_sentence_transformers_with_gradients(splade, st_splade):
    features = splade.tokenize(SENTENCES)
    out = splade(features)["sentence_embedding"]
    assert out.requires_grad and out.shape == (4, splade.dim)
    expected = st_splade(st_splade.preprocess(SENTENCES))["sentence_embedding"]
    assert torch.allclose(out, expected, atol=1e-5)
    out.sum().backward()
    grad = splade[0].auto_model.get_output_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0
    splade.zero_grad(set_to_none=True)
    with torch.inference_mode():  # the chunked inference path gives the same numbers
        fast = splade(splade.tokenize(SENTENCES))["sentence_embedding"]
    assert torch.allclose(fast, out.detach(), atol=1e-5)


def test_router_follows_the_task(tiny_inference_free):
    model = tiny_inference_free
    static, mlm = model[0].sub_modules["query"][0], model[0].sub_modules["document"][0]
    queries = model(model.tokenize(SENTENCES, task="query"), task="query")["sentence_embedding"]
    queries.sum().backward()
    assert (
        static.weight.grad is not None
        and mlm.auto_model.get_output_embeddings().weight.grad is None
    )
    features = model.tokenize(SENTENCES, task="document")
    assert features["task"] == "document"
    docs = model(features)["sentence_embedding"]  # the task travels in the features
    assert docs.shape == queries.shape
    assert not np.allclose(docs.detach().numpy(), queries.detach().numpy())


@pytest.mark.parametrize("strategy", ["max", "sum"])
@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
def test_chunked_inference_pooling_equals_full_logits(tiny_splade, strategy, activation):
    # chunk_size=7 makes texts straddle chunks; the full-logits path is the reference.
    model = SparseEncoder(
        modules=[tiny_splade[0], SpladePooling(strategy, activation, chunk_size=7)]
    )
    features = model.tokenize(SENTENCES + ["", "a much longer sentence about protein folding"])
    reference = model(dict(features))["sentence_embedding"].detach()  # gradients on: full logits
    with torch.inference_mode():
        fast = model(dict(features))["sentence_embedding"]
    assert torch.allclose(fast, reference, atol=1e-5)
