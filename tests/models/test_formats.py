"""Saved-format round trips with sentence-transformers: plain SPLADE, inference-free SPLADE, CSR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SparseEncoder as STEncoder
from sentence_transformers.base.modules import Transformer as STTransformer
from sentence_transformers.sentence_transformer.modules import Pooling as STPooling
from sentence_transformers.sparse_encoder.modules import Router as STRouter
from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STAutoEncoder
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as STStatic
from sentence_transformers.sparse_encoder.modules import SpladePooling as STSpladePooling

from sparsearch.models import (
    MLMTransformer,
    Pooling,
    Router,
    SparseAutoEncoder,
    SparseEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)
from tests.conftest import SENTENCES, real_model
from tests.models.conftest import MINILM, SPLADE, assert_same_vectors, st_dense

pytestmark = [pytest.mark.slow, pytest.mark.real_model]


def _texts(scifact_queries, scifact_docs):
    return SENTENCES + ["", "   "] + scifact_queries[:30], scifact_docs[:20]


def _assert_same_model(ours: SparseEncoder, theirs: STEncoder, queries, docs) -> None:
    assert_same_vectors(ours.encode_query(queries), st_dense(theirs, queries, task="query"))
    assert_same_vectors(ours.encode_document(docs), st_dense(theirs, docs))


def test_plain_splade_saved_by_us_loads_in_sentence_transformers(
    splade, tmp_path, scifact_queries, scifact_docs
):
    splade.save(tmp_path / "m")
    assert (tmp_path / "m" / "modules.json").is_file()
    theirs = STEncoder(str(tmp_path / "m"))
    _assert_same_model(splade, theirs, *_texts(scifact_queries, scifact_docs))
    reloaded = SparseEncoder(tmp_path / "m")
    assert reloaded.vocab == splade.vocab and reloaded.max_seq_length == splade.max_seq_length


def _ours_inference_free(idf_json: Path) -> SparseEncoder:
    mlm = MLMTransformer(real_model(SPLADE))
    static = SparseStaticEmbedding.from_json(idf_json, tokenizer=mlm.tokenizer, frozen=True)
    router = Router.for_query_document(
        [static], [mlm, SpladePooling("max", "relu", embedding_dimension=mlm.vocab_size)]
    )
    return SparseEncoder(modules=[router], similarity_fn_name="dot")


def test_inference_free_saved_by_us_loads_in_sentence_transformers(
    tmp_path, scifact_queries, scifact_docs, idf_json
):
    ours = _ours_inference_free(idf_json)
    ours.save(tmp_path / "if")
    theirs = STEncoder(str(tmp_path / "if"))
    assert theirs.similarity_fn_name == "dot"
    queries, docs = _texts(scifact_queries, scifact_docs)
    _assert_same_model(ours, theirs, queries, docs)
    # Queries go through the IDF table only: every weight is the token's IDF.
    q = ours.encode_query(["protein folding"])
    idf = ours[0].sub_modules["query"][0].weight.detach().numpy()
    assert np.allclose(q.values, idf[q.indices]) and q.nnz == 2


def test_inference_free_saved_by_sentence_transformers_loads_in_ours(
    tmp_path, scifact_queries, scifact_docs, idf_json
):
    doc = STTransformer(real_model(SPLADE), transformer_task="fill-mask")
    static = STStatic.from_json(str(idf_json), tokenizer=doc.tokenizer, frozen=False)
    router = STRouter.for_query_document(
        query_modules=[static], document_modules=[doc, STSpladePooling("max")]
    )
    theirs = STEncoder(modules=[router], similarity_fn_name="dot")
    theirs.save(str(tmp_path / "st_if"))
    ours = SparseEncoder(tmp_path / "st_if")
    assert isinstance(ours[0], Router) and ours.similarity_fn_name == "dot"
    assert ours[0].sub_modules["query"][0].weight.requires_grad  # trainable table kept trainable
    _assert_same_model(ours, theirs, *_texts(scifact_queries, scifact_docs))


def _randomize_biases(sae: torch.nn.Module) -> None:
    with torch.no_grad():
        sae.pre_bias.normal_(0, 0.02)
        sae.latent_bias.normal_(0, 0.02)


def _assert_same_codes(ours: SparseEncoder, theirs: STEncoder, texts: list[str], k: int) -> None:
    vectors = ours.encode(texts)
    assert vectors.active_dims().max() <= k and ours.vocab is None
    assert_same_vectors(vectors, st_dense(theirs, texts), atol=1e-5)


@pytest.fixture(scope="module")
def csr_texts(scifact_queries):
    return SENTENCES + scifact_queries[:40]


def test_csr_built_in_sentence_transformers_loads_in_ours(tmp_path, csr_texts):
    torch.manual_seed(0)
    dense = STTransformer(real_model(MINILM))
    sae = STAutoEncoder(input_dim=384, hidden_dim=1536, k=16, k_aux=128)
    _randomize_biases(sae)
    theirs = STEncoder(modules=[dense, STPooling(384, "mean"), sae])
    theirs.save(str(tmp_path / "st_csr"))
    ours = SparseEncoder(tmp_path / "st_csr")
    assert ours.max_active_dims == 16 and ours.dim == 1536
    _assert_same_codes(ours, theirs, csr_texts, 16)


def test_csr_built_in_ours_loads_in_sentence_transformers(tmp_path, csr_texts):
    torch.manual_seed(0)
    sae = SparseAutoEncoder(384, hidden_dim=1024, k=8, k_aux=64, normalize=True)
    _randomize_biases(sae)
    ours = SparseEncoder(modules=[Transformer(real_model(MINILM)), Pooling(384, "mean"), sae])
    ours.save(tmp_path / "csr")
    theirs = STEncoder(str(tmp_path / "csr"))
    assert theirs.max_active_dims == 8
    _assert_same_codes(ours, theirs, csr_texts, 8)
