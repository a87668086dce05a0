"""Every loss equals sentence-transformers' implementation of the same loss, value and gradient step."""

from __future__ import annotations

import copy

import pytest
import torch
from sentence_transformers.base.losses.merged_forward import embed_columns as st_embed_columns
from sentence_transformers.sparse_encoder import SparseEncoder as STSparseEncoder
from sentence_transformers.sparse_encoder import losses as st_losses

from sparsearch.train import losses as ours
from tests.conftest import real_model

pytestmark = pytest.mark.real_model  # parity with sentence-transformers on real models

QUERIES = ["what causes rain", "python list sort", "capital of france", "how do vaccines work"]
POSITIVES = [
    "Rain forms when water vapour condenses into droplets heavy enough to fall.",
    "Use list.sort() or sorted() to order a Python list.",
    "Paris is the capital and largest city of France.",
    "Vaccines train the immune system to recognise a pathogen.",
]
NEGATIVES = [
    "Snow is frozen precipitation made of ice crystals.",
    "Java collections can be sorted with Collections.sort.",
    "Lyon is a large city in the south-east of France.",
    "Antibiotics kill bacteria but not viruses.",
]
NEGATIVES_2 = [
    "Clouds are made of tiny water droplets.",
    "A tuple in Python cannot be modified.",
    "Berlin is the capital of Germany.",
    "The immune system protects the body from disease.",
]


@pytest.fixture(scope="module")
def st_model() -> STSparseEncoder:
    model = STSparseEncoder(real_model("rasyosef/splade-tiny"))
    model.max_seq_length = 32
    return model


def _features(model, columns):
    return [model.tokenize(col) for col in columns]


def _embeddings(model, columns):
    with torch.no_grad():
        return [model(f)["sentence_embedding"] for f in _features(model, columns)]


def _total(value):
    return sum(value.values()) if isinstance(value, dict) else value


LABELS_MARGIN = torch.tensor([[1.5, 2.0], [0.3, 0.8], [2.2, 1.0], [0.0, 0.5]])
LABELS_KL = torch.tensor([[9.0, 4.0, 3.0], [5.0, 5.5, 1.0], [8.0, 2.0, 2.5], [6.0, 1.0, 4.0]])
LABELS_STS = torch.tensor([0.9, 0.1, 0.5, 0.5])
LABELS_VECTORS = torch.relu(torch.randn(4, 30522, generator=torch.Generator().manual_seed(0))) * 0.1
#: sentence-transformers losses whose own forward() works (the others only work inside SpladeLoss)
ST_FORWARD = ("splade", "mse")

CASES = {
    "mnrl_hard_negatives": (
        lambda m: st_losses.SparseMultipleNegativesRankingLoss(m),
        lambda m: ours.SparseMultipleNegativesRankingLoss(m),
        [QUERIES, POSITIVES, NEGATIVES, NEGATIVES_2],
        None,
    ),
    "mnrl_scaled_cosine": (
        lambda m: st_losses.SparseMultipleNegativesRankingLoss(
            m, scale=20.0, similarity_fct=_st_cos()
        ),
        lambda m: ours.SparseMultipleNegativesRankingLoss(m, scale=20.0, similarity="cosine"),
        [QUERIES, POSITIVES],
        None,
    ),
    "margin_mse": (
        lambda m: st_losses.SparseMarginMSELoss(m),
        lambda m: ours.SparseMarginMSELoss(m),
        [QUERIES, POSITIVES, NEGATIVES, NEGATIVES_2],
        LABELS_MARGIN,
    ),
    "distill_kl": (
        lambda m: st_losses.SparseDistillKLDivLoss(m),
        lambda m: ours.SparseDistillKLDivLoss(m),
        [QUERIES, POSITIVES, NEGATIVES, NEGATIVES_2],
        LABELS_KL,
    ),
    "mse_to_teacher_vectors": (
        lambda m: st_losses.SparseMSELoss(m),
        lambda m: ours.SparseMSELoss(m),
        [QUERIES, POSITIVES],
        LABELS_VECTORS,
    ),
    "cosent": (
        lambda m: st_losses.SparseCoSENTLoss(m),
        lambda m: ours.SparseCoSENTLoss(m),
        [QUERIES, POSITIVES],
        LABELS_STS,
    ),
    "angle": (
        lambda m: st_losses.SparseAnglELoss(m),
        lambda m: ours.SparseAnglELoss(m),
        [QUERIES, POSITIVES],
        LABELS_STS,
    ),
    "cosine_similarity": (
        lambda m: st_losses.SparseCosineSimilarityLoss(m),
        lambda m: ours.SparseCosineSimilarityLoss(m),
        [QUERIES, POSITIVES],
        LABELS_STS,
    ),
}


def _st_cos():
    from sentence_transformers.util import cos_sim

    return cos_sim


def _splade_pair(inner_name: str, **kwargs):
    st_inner, our_inner, columns, labels = CASES[inner_name]
    return (
        lambda m: st_losses.SpladeLoss(m, st_inner(m), **kwargs),
        lambda m: ours.SpladeLoss(m, our_inner(m), **kwargs),
        columns,
        labels,
    )


CASES["splade_mnrl"] = _splade_pair(
    "mnrl_hard_negatives", document_regularizer_weight=3e-3, query_regularizer_weight=5e-3
)
CASES["splade_margin_mse_l0_threshold"] = _splade_pair(
    "margin_mse",
    document_regularizer_weight=0.5,
    query_regularizer_weight=0.1,
    document_regularizer_threshold=60,
    query_regularizer_threshold=10,
)
CASES["splade_doc_only"] = _splade_pair(
    "cosent", document_regularizer_weight=0.2, use_document_regularizer_only=True
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_value_matches_sentence_transformers(st_model, name):
    st_loss_fn, our_loss_fn, columns, labels = CASES[name]
    features = _features(st_model, columns)
    st_model.eval()
    with torch.no_grad():
        expected = st_loss_fn(st_model)(features, labels) if name.startswith(ST_FORWARD) else None
        if expected is None:  # the plain ST sparse losses refuse forward(); use their core
            expected = st_loss_fn(st_model).compute_loss_from_embeddings(
                _embeddings(st_model, columns), labels
            )
        got = our_loss_fn(st_model)(features, labels)
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for key in expected:
            assert got[key].item() == pytest.approx(expected[key].item(), rel=1e-5, abs=1e-6), key
    else:
        assert got.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


def _one_step(model, loss_fn, columns, labels, use_core: bool):
    model.train()
    for module in model.modules():  # no dropout, so both sides compute the same function
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    loss = loss_fn(model)
    features = _features(model, columns)
    if use_core:
        value = loss.compute_loss_from_embeddings(st_embed_columns(model, features), labels)
    else:
        value = loss(features, labels)
    # SGD: Adam divides by |grad|, which blows float noise on gradients that are exactly zero in
    # theory (BERT's attention key bias) up to a full learning-rate step on either side.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _total(value).backward()
    optimizer.step()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize(
    "name", ["mnrl_hard_negatives", "margin_mse", "splade_mnrl", "cosent", "mse_to_teacher_vectors"]
)
def test_one_sgd_step_changes_weights_like_sentence_transformers(st_model, name):
    st_loss_fn, our_loss_fn, columns, labels = CASES[name]
    base = {n: p.detach().clone() for n, p in st_model.named_parameters()}
    st_core = not name.startswith(ST_FORWARD)
    st_params = _one_step(copy.deepcopy(st_model), st_loss_fn, columns, labels, use_core=st_core)
    our_params = _one_step(copy.deepcopy(st_model), our_loss_fn, columns, labels, use_core=False)
    moved = 0
    for key, expected in st_params.items():
        torch.testing.assert_close(our_params[key], expected, rtol=1e-5, atol=1e-5)
        moved += int(not torch.equal(expected, base[key]))
    assert moved > 0  # the step did change the weights


def test_flops_loss_matches_sentence_transformers_with_threshold(st_model):
    embeddings = torch.cat(_embeddings(st_model, [POSITIVES, NEGATIVES]))
    for threshold in (None, 50, 80):
        expected = st_losses.FlopsLoss(st_model, threshold=threshold).compute_loss_from_embeddings(
            embeddings
        )
        got = ours.FlopsLoss(threshold=threshold).compute_loss_from_embeddings(embeddings)
        assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def _strip(name: str) -> str:
    """Parameter name without the wrapper prefix (ST: '0.model.', ours: '0.auto_model.')."""
    return name.split(".", 2)[2]


def test_our_model_and_loss_match_sentence_transformers_end_to_end():
    """Our SparseEncoder + SpladeLoss vs ST's SparseEncoder + SpladeLoss, same weights."""
    from sparsearch.models import SparseEncoder

    st = STSparseEncoder(real_model("rasyosef/splade-tiny"))
    st.max_seq_length = 32
    mine = SparseEncoder(real_model("rasyosef/splade-tiny"))
    mine.max_seq_length = 32
    params = {}
    for model, loss_fn, tokenize in (
        (
            st,
            lambda m: st_losses.SpladeLoss(
                m,
                st_losses.SparseMultipleNegativesRankingLoss(m),
                document_regularizer_weight=3e-3,
                query_regularizer_weight=5e-3,
            ),
            st.tokenize,
        ),
        (
            mine,
            lambda m: ours.SpladeLoss(
                m,
                ours.SparseMultipleNegativesRankingLoss(m),
                document_regularizer_weight=3e-3,
                query_regularizer_weight=5e-3,
            ),
            mine.tokenize,
        ),
    ):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        model.train()
        value = loss_fn(model)([tokenize(c) for c in (QUERIES, POSITIVES, NEGATIVES)], None)
        params[model is st] = ({k: float(v.detach()) for k, v in value.items()}, model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        sum(value.values()).backward()
        optimizer.step()
    (st_values, st_model), (our_values, our_model) = params[True], params[False]
    for key, expected in st_values.items():
        assert our_values[key] == pytest.approx(expected, rel=1e-5, abs=1e-7), key
    theirs = {_strip(n): p for n, p in st_model.named_parameters()}
    for name, param in our_model.named_parameters():
        torch.testing.assert_close(param, theirs[_strip(name)], rtol=1e-5, atol=1e-5)


def test_csr_loss_matches_sentence_transformers():
    from sentence_transformers.base.modules import Transformer as STTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as STPooling
    from sentence_transformers.sparse_encoder.modules import (
        SparseAutoEncoder as STSparseAutoEncoder,
    )

    torch.manual_seed(0)
    backbone = STTransformer(
        real_model("sentence-transformers/all-MiniLM-L6-v2"), max_seq_length=32
    )
    model = STSparseEncoder(
        modules=[
            backbone,
            STPooling(384, "mean"),
            STSparseAutoEncoder(384, hidden_dim=512, k=16, k_aux=64),
        ]
    )
    columns = [QUERIES, POSITIVES, NEGATIVES]
    results = []
    for st_side in (True, False):
        copy_ = copy.deepcopy(model)
        for module in copy_.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        copy_.train()
        if st_side:
            loss = st_losses.CSRLoss(
                copy_, st_losses.SparseMultipleNegativesRankingLoss(copy_), beta=0.1
            )
        else:
            loss = ours.CSRLoss(copy_, ours.SparseMultipleNegativesRankingLoss(copy_), beta=0.1)
        value = loss([copy_.tokenize(c) for c in columns], None)
        optimizer = torch.optim.SGD(copy_.parameters(), lr=0.1)
        sum(value.values()).backward()
        optimizer.step()
        results.append(
            ({k: float(v.detach()) for k, v in value.items()}, dict(copy_.named_parameters()))
        )
    (st_values, st_params), (our_values, our_params) = results
    assert set(our_values) == set(st_values)
    for key, expected in st_values.items():
        assert our_values[key] == pytest.approx(expected, rel=1e-5, abs=1e-7), key
    for name, param in our_params.items():
        torch.testing.assert_close(param, st_params[name], rtol=1e-5, atol=1e-5)
