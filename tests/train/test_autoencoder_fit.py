"""fit_autoencoder: the CSR head trained on cached backbone embeddings (tiny random backbone)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsearch.errors import ConfigError, DimensionMismatchError, InvalidInputError
from sparsearch.models import Normalize, Pooling, SparseAutoEncoder, SparseEncoder, Transformer
from sparsearch.train import (
    AutoencoderFitSettings,
    backbone_embeddings,
    fit_autoencoder,
    fit_autoencoder_embeddings,
)
from tests.conftest import SENTENCES, TINY_DOCS, TINY_QUERIES

K = 4
DOCS = [f"{title}. {text}" for title, text in TINY_DOCS.values()] + SENTENCES
PAIRS = [(q, DOCS[i]) for i, q in enumerate(TINY_QUERIES)]
FAST = AutoencoderFitSettings(epochs=30, batch_size=8, learning_rate=1e-2)


@pytest.fixture(scope="module")
def _tiny_csr(tiny_model_dir) -> SparseEncoder:
    torch.manual_seed(0)
    return SparseEncoder(
        modules=[
            Transformer(tiny_model_dir),
            Pooling(32, "mean"),
            Normalize(),
            SparseAutoEncoder(32, hidden_dim=64, k=K, k_aux=16),
        ]
    )


@pytest.fixture()
def tiny_csr(_tiny_csr) -> SparseEncoder:
    """Tiny random BERT + mean pooling + L2 norm + a fresh 64-latent top-4 head; a copy."""
    import copy

    return copy.deepcopy(_tiny_csr)


def _reconstruction_error(head: SparseAutoEncoder, x: np.ndarray) -> float:
    """MSE of the top-k reconstruction (the head returns it when gradients are enabled)."""
    head.eval()
    out = head({"sentence_embedding": torch.from_numpy(x)})
    return float(((out["decoded_embedding_k"] - torch.from_numpy(x)) ** 2).mean())


def test_fit_lowers_the_reconstruction_error(tiny_csr):
    x = backbone_embeddings(tiny_csr, DOCS)
    before = _reconstruction_error(tiny_csr[-1], x)
    history = fit_autoencoder(tiny_csr, DOCS, settings=FAST)
    assert [h["epoch"] for h in history] == list(range(1, 31))
    assert history[-1]["reconstruction_loss_k"] < 0.5 * history[0]["reconstruction_loss_k"]
    assert _reconstruction_error(tiny_csr[-1], x) < 0.5 * before


def test_fit_trains_the_head_and_leaves_the_backbone_untouched(tiny_csr):
    before = {name: t.clone() for name, t in tiny_csr.state_dict().items()}
    fit_autoencoder(tiny_csr, DOCS, PAIRS, AutoencoderFitSettings(epochs=2, batch_size=8))
    after = tiny_csr.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("3.") for name in changed)
    assert "3.encoder.weight" in changed


def _positive_ranks(model: SparseEncoder) -> np.ndarray:
    """The rank (0 = first) of each query's positive among DOCS, by cosine of the codes."""
    scores = model.similarity(
        model.encode_query(TINY_QUERIES), model.encode_document(DOCS), "cosine"
    )
    positive = scores[np.arange(len(PAIRS)), np.arange(len(PAIRS))]
    return (scores > positive[:, None]).sum(axis=1)


def test_pairs_train_the_ranking_loss(tiny_csr):
    import copy

    unsupervised = copy.deepcopy(tiny_csr)
    history = fit_autoencoder(tiny_csr, DOCS, PAIRS, FAST)
    fit_autoencoder(unsupervised, DOCS, settings=FAST)
    assert history[-1]["base_loss"] < 0.5 * history[0]["base_loss"]
    ranks, ranks_unsupervised = _positive_ranks(tiny_csr), _positive_ranks(unsupervised)
    assert ranks.mean() < 0.5 * ranks_unsupervised.mean()


def test_without_pairs_no_ranking_term_is_trained(tiny_csr):
    history = fit_autoencoder(tiny_csr, DOCS, settings=AutoencoderFitSettings(epochs=1))
    assert set(history[0]) == {
        "reconstruction_loss_k",
        "reconstruction_loss_4k",
        "reconstruction_loss_aux",
        "loss",
        "epoch",
    }


def test_the_same_seed_gives_the_same_history(tiny_csr):
    import copy

    twin = copy.deepcopy(tiny_csr)
    settings = AutoencoderFitSettings(epochs=3, batch_size=8, seed=5)
    assert fit_autoencoder(tiny_csr, DOCS, PAIRS, settings) == fit_autoencoder(
        twin, DOCS, PAIRS, settings
    )


def test_codes_of_cached_embeddings_are_what_encode_outputs(tiny_csr):
    fit_autoencoder(tiny_csr, DOCS, PAIRS, AutoencoderFitSettings(epochs=3, batch_size=8))
    x = backbone_embeddings(tiny_csr, DOCS, batch_size=5)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)  # Normalize ran
    head = tiny_csr[-1]
    with torch.no_grad():
        cached = head({"sentence_embedding": torch.from_numpy(x)})["sentence_embedding"]
    vectors = tiny_csr.encode(DOCS)
    assert (vectors.active_dims() == K).all()
    np.testing.assert_allclose(vectors.to_scipy().toarray(), cached.numpy(), atol=1e-5)
    assert (tiny_csr.encode(DOCS, max_active_dims=2).active_dims() == 2).all()


@pytest.mark.parametrize("batch_size", [0, True, 2.5])
def test_backbone_embeddings_refuses_a_bad_batch_size(tiny_csr, batch_size):
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        backbone_embeddings(tiny_csr, DOCS, batch_size=batch_size)


def test_a_fitted_model_saves_and_loads(tiny_csr, tmp_path):
    fit_autoencoder(tiny_csr, DOCS, PAIRS, AutoencoderFitSettings(epochs=2, batch_size=8))
    tiny_csr.save(tmp_path / "csr")
    loaded = SparseEncoder(tmp_path / "csr")
    assert [type(m).__name__ for m in loaded] == [type(m).__name__ for m in tiny_csr]
    assert loaded.max_active_dims == K
    original, again = tiny_csr.encode(DOCS), loaded.encode(DOCS)
    np.testing.assert_allclose(again.to_scipy().toarray(), original.to_scipy().toarray())


def test_a_model_without_an_autoencoder_head_is_refused(tiny_splade):
    with pytest.raises(ConfigError, match="not a SparseAutoEncoder"):
        fit_autoencoder(tiny_splade, DOCS)


@pytest.mark.parametrize(
    ("texts", "pairs", "match"),
    [
        ([], None, "texts is empty"),
        ("one text", None, "list of strings"),
        (["fine", ""], None, r"texts\[1\]"),
        (DOCS, [], "non-empty list of \\(query, positive\\)"),
        (DOCS, [("only a query",)], "non-empty list of \\(query, positive\\)"),
    ],
)
def test_bad_texts_or_pairs_are_refused(tiny_csr, texts, pairs, match):
    with pytest.raises(InvalidInputError, match=match):
        fit_autoencoder(tiny_csr, texts, pairs)


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("epochs", 1.5), ("batch_size", True), ("learning_rate", 0.0), ("beta", -1)],
)
def test_bad_settings_are_refused(field, value):
    with pytest.raises(InvalidInputError, match=field):
        AutoencoderFitSettings(**{field: value})


def test_embeddings_of_the_wrong_shape_are_refused():
    head = SparseAutoEncoder(8, hidden_dim=16, k=2)
    x = np.ones((4, 8), dtype=np.float32)
    with pytest.raises(DimensionMismatchError, match="7 columns, the autoencoder takes 8"):
        fit_autoencoder_embeddings(head, np.ones((4, 7)))
    with pytest.raises(InvalidInputError, match="non-empty 2-D"):
        fit_autoencoder_embeddings(head, np.ones((0, 8)))
    with pytest.raises(InvalidInputError, match="NaN"):
        fit_autoencoder_embeddings(head, np.full((4, 8), np.nan))
    with pytest.raises(InvalidInputError, match="3 query rows but 4 positive rows"):
        fit_autoencoder_embeddings(head, x, (x[:3], x))
