"""Bad input gets a named error; empty input gives empty output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from sparsearch.errors import DimensionMismatchError, InvalidInputError, ModelLoadError
from sparsearch.models import SparseEncoder
from sparsearch.sparse import SparseVectors


def test_non_string_in_batch_names_its_position(tiny_splade):
    with pytest.raises(InvalidInputError, match="position 2"):
        tiny_splade.encode(["a", "b", 3, "d"])
    with pytest.raises(InvalidInputError):
        tiny_splade.encode(None)


def test_bad_numbers_are_rejected(tiny_splade):
    for kwargs in ({"batch_size": 0}, {"max_active_dims": -1}, {"max_active_dims": 2.5}):
        with pytest.raises(InvalidInputError):
            tiny_splade.encode(["x"], **kwargs)
    with pytest.raises(InvalidInputError):
        tiny_splade.decode(tiny_splade.encode(["x"]), top_k=0)


def test_empty_list_gives_empty_vectors(tiny_splade):
    vectors = tiny_splade.encode_query([])
    assert isinstance(vectors, SparseVectors)
    assert vectors.shape == (0, tiny_splade.dim) and vectors.vocab == tiny_splade.vocab


def test_empty_text_encodes_the_special_tokens_only(tiny_splade):
    # Decision: "" is valid input. SPLADE encodes it like sentence-transformers does, from
    # [CLS] [SEP] alone, so whitespace-only text gives the same vector (to float rounding: the
    # two texts sit in different rows of one matrix multiply, and how BLAS blocks rows depends on
    # the CPU: 6e-7 apart on one machine, 1.8e-6 on another).
    empty, blank, word = tiny_splade.encode(["", "  \n", "protein"])
    assert empty.nnz > 0
    assert np.array_equal(empty.indices, blank.indices)
    np.testing.assert_allclose(empty.to_dense(), blank.to_dense(), atol=1e-5)
    assert not np.array_equal(empty.to_dense(), word.to_dense())


def test_missing_or_malformed_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        SparseEncoder(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="cannot find model"):
        SparseEncoder("nobody/no-such-model")  # not in the offline cache
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="neither modules.json"):
        SparseEncoder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "modules.json").write_text("[{not json")
    with pytest.raises(ModelLoadError, match="malformed JSON"):
        SparseEncoder(bad)
    (bad / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "0_Missing", "type": "x.SpladePooling"}])
    )
    with pytest.raises(ModelLoadError, match="is missing"):
        SparseEncoder(bad)
    (bad / "modules.json").write_text(json.dumps([{"idx": 0, "path": "", "type": "x.Unknown"}]))
    with pytest.raises(ModelLoadError, match="unsupported module type"):
        SparseEncoder(bad)


def test_vocabulary_size_must_match_the_mlm_head(tmp_path, tiny_model_dir):
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    BertForMaskedLM(config).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(
        ModelLoadError, match=f"{len(tokenizer)} tokens but the MLM head outputs 100"
    ):
        SparseEncoder(tmp_path)


def test_incompatible_vectors_are_rejected(tiny_splade):
    ours = tiny_splade.encode(["a b"])
    other = SparseVectors.from_dense(np.ones((1, 7)))
    with pytest.raises(DimensionMismatchError):
        tiny_splade.intersection(ours, other)
    with pytest.raises(DimensionMismatchError):
        tiny_splade.similarity(ours, other)
