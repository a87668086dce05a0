"""Loss behaviour beyond parity: ℓ0 mask, IDF-aware FLOPS, warm-up, label forms, column checks."""

from __future__ import annotations

import pytest
import torch

from sparsearch.errors import ConfigError
from sparsearch.train import losses


@pytest.fixture()
def vectors() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(6, 10, generator=g))
    x[0] = 0
    x[0, :3] = 1.0  # a sparse row: 3 active dims
    return x


def test_flops_l0_mask_leaves_sparse_rows_out(vectors):
    active = (vectors != 0).sum(1)
    threshold = int(active[0])
    masked = vectors * (active > threshold).float()[:, None]
    got = losses.FlopsLoss(threshold=threshold).compute_loss_from_embeddings(vectors)
    assert got.item() == pytest.approx(float((masked.mean(0) ** 2).sum()), rel=1e-6)
    assert got < losses.FlopsLoss().compute_loss_from_embeddings(vectors)


def test_idf_aware_flops_penalises_rare_tokens_less(vectors):
    idf = torch.linspace(1.0, 10.0, 10)
    got = losses.FlopsLoss(idf=idf).compute_loss_from_embeddings(vectors)
    assert got.item() == pytest.approx(float(((vectors / idf).mean(0) ** 2).sum()), rel=1e-6)
    plain = losses.FlopsLoss(idf=torch.ones(10)).compute_loss_from_embeddings(vectors)
    assert plain.item() == pytest.approx(
        losses.FlopsLoss().compute_loss_from_embeddings(vectors).item()
    )
    rare_only, common_only = torch.zeros(2, 10), torch.zeros(2, 10)
    rare_only[:, 9], common_only[:, 0] = 1.0, 1.0
    flops = losses.FlopsLoss(idf=idf)
    assert flops(rare_only) < flops(common_only)


def test_idf_mapping_needs_the_vocab_and_positive_values():
    with pytest.raises(ConfigError, match="needs the model vocab"):
        losses.FlopsLoss(idf={"a": 1.0})
    flops = losses.FlopsLoss(idf={"a": 2.0, "b": 4.0}, vocab=["a", "b", "zzz"])
    assert flops.inverse_idf.tolist() == [0.5, 0.25, 0.5]  # unknown tokens get the smallest idf
    with pytest.raises(ConfigError, match="positive"):
        losses.FlopsLoss(idf=[1.0, 0.0])


def test_splade_regularizer_weights_warm_up_quadratically():
    loss = losses.SpladeLoss(
        None,
        losses.SparseMultipleNegativesRankingLoss(None),
        document_regularizer_weight=0.4,
        query_regularizer_weight=0.2,
    )
    assert loss.current_document_weight == 0.4  # outside a trainer: full weights
    loss.set_training_progress(0, 30)
    assert loss.current_document_weight == 0.0
    loss.set_training_progress(5, 30)
    assert loss.current_document_weight == pytest.approx(0.4 * 0.25)
    assert loss.current_query_weight == pytest.approx(0.2 * 0.25)
    loss.set_training_progress(10, 30)
    assert loss.current_document_weight == 0.4
    linear = losses.SpladeLoss(
        None, losses.SparseMultipleNegativesRankingLoss(None), 0.4, warmup_schedule="linear"
    )
    linear.set_training_progress(5, 30)
    assert linear.current_document_weight == pytest.approx(0.2)
    assert linear.current_query_weight is None


def test_splade_refuses_what_it_cannot_wrap():
    inner = losses.SparseMultipleNegativesRankingLoss(None)
    with pytest.raises(ConfigError, match="cannot wrap another SpladeLoss"):
        losses.SpladeLoss(None, losses.SpladeLoss(None, inner, 0.1), 0.1)
    with pytest.raises(ConfigError, match="warmup_schedule"):
        losses.SpladeLoss(None, inner, 0.1, warmup_schedule="cosine")


def test_margin_mse_accepts_margins_or_raw_teacher_scores(vectors):
    q, p, n = vectors[:2], vectors[2:4], vectors[4:6]
    scores = torch.tensor([[5.0, 2.0], [3.0, 3.5]])
    margin = losses.SparseMarginMSELoss(None)
    from_scores = margin.compute_loss_from_embeddings([q, p, n], scores)
    from_margins = margin.compute_loss_from_embeddings([q, p, n], scores[:, 0] - scores[:, 1])
    assert from_scores.item() == pytest.approx(from_margins.item())
    with pytest.raises(ConfigError, match="MarginMSE labels"):
        margin.compute_loss_from_embeddings([q, p, n], torch.ones(2, 5))


def test_kl_div_needs_one_teacher_score_per_candidate(vectors):
    kl = losses.SparseDistillKLDivLoss(None)
    with pytest.raises(ConfigError, match="teacher scores of shape"):
        kl.compute_loss_from_embeddings([vectors[:2], vectors[2:4], vectors[4:6]], torch.ones(2, 3))


@pytest.mark.parametrize(
    ("loss", "columns", "labels", "message"),
    [
        (losses.SparseMultipleNegativesRankingLoss(None), 1, False, "takes 2\\+ text columns"),
        (losses.SparseCoSENTLoss(None), 3, True, "takes 2 text columns"),
        (losses.SparseCosineSimilarityLoss(None), 2, False, "needs a 'label' or 'score' column"),
        (losses.SparseDistillKLDivLoss(None), 2, True, "takes 3\\+ text columns"),
    ],
)
def test_losses_refuse_columns_they_cannot_use(loss, columns, labels, message):
    with pytest.raises(ConfigError, match=message):
        loss.check_columns(columns, labels)
    loss.check_columns(max(columns, loss.min_columns) if loss.max_columns is None else 2, True)
