"""What every backend shares: target URIs, token names as field keys, export sources, retries,
and the ``sparsearch export`` command's errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsearch import SearchParams, SparseVectors
from sparsearch.backends import (
    Backend,
    as_source,
    export,
    key_token,
    open_backend,
    open_target,
    parse_uri,
    token_key,
)
from sparsearch.backends import uri as uri_module
from sparsearch.backends.tokens import vocabulary_keys
from sparsearch.errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    VocabularyMismatchError,
)
from sparsearch.index import SparseIndex
from tests.cli.helpers import assert_one_line_error, run_cli

# ---------------------------------------------------------------------------- URIs


@pytest.mark.parametrize(
    ("uri", "scheme", "tls", "location", "name", "server"),
    [
        ("qdrant://localhost:6333/docs", "qdrant", False, "localhost:6333", "docs", True),
        ("qdrant:runs/qdrant/docs", "qdrant", False, "runs/qdrant", "docs", False),
        ("qdrant:///abs/dir/docs", "qdrant", False, "/abs/dir", "docs", False),
        ("milvus://out/sci.db/scifact", "milvus", False, "out/sci.db", "scifact", False),
        ("milvus://10.0.0.5:19530/scifact", "milvus", False, "10.0.0.5:19530", "scifact", True),
        ("opensearch+https://search:9200/sci/", "opensearch", True, "search:9200", "sci", True),
        ("elasticsearch://es.local:9200/x", "elasticsearch", False, "es.local:9200", "x", True),
    ],
)
def test_engine_uris_split_into_location_and_name(uri, scheme, tls, location, name, server):
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.tls, parsed.location, parsed.name) == (
        scheme,
        tls,
        location,
        name,
    )
    assert parsed.is_server is server
    assert parsed.require_name() == name


def test_file_uris_keep_the_whole_path_and_query_parameters():
    assert parse_uri("ciff:runs/out.ciff").path == "runs/out.ciff"
    assert parse_uri("anserini:out/vectors/").path == "out/vectors/"
    parsed = parse_uri("bulk:out.ndjson?flavor=elasticsearch&index=sci")
    assert (parsed.path, parsed.params) == (
        "out.ndjson",
        {"flavor": "elasticsearch", "index": "sci"},
    )


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("faiss://x/y", ["not a target URI", "qdrant:", "milvus:", "ciff:"]),
        ("out.ciff", ["not a target URI"]),
        ("qdrant:", ["names no location"]),
        ("QDRANT://h:1/x", ["not a target URI"]),
    ],
)
def test_bad_uris_are_named(uri, words):
    with pytest.raises(InvalidInputError) as err:
        parse_uri(uri)
    for word in words:
        assert word in str(err.value)


def test_an_engine_uri_without_a_name_is_refused():
    with pytest.raises(InvalidInputError, match="name the collection"):
        parse_uri("qdrant://localhost:6333").require_name()


def test_a_missing_client_names_the_extra_to_install(tmp_path, monkeypatch):
    # a target module whose client package is not installed, as on a machine without the extra
    (tmp_path / "target_without_client.py").write_text("import client_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(uri_module.TARGETS, "opensearch", "target_without_client")
    with pytest.raises(ConfigError) as err:
        open_target("opensearch://localhost:9200/docs")
    assert "'client_that_is_not_installed'" in str(err.value)
    assert "pip install 'sparsearch[opensearch]'" in str(err.value)


def test_a_file_format_is_not_a_searchable_backend(tmp_path):
    with pytest.raises(InvalidInputError, match="file format"):
        open_backend(f"bulk:{tmp_path}/out.ndjson")


# ---------------------------------------------------------------------------- token keys


@given(st.text())
def test_token_keys_round_trip_and_never_hold_a_dot(token):
    key = token_key(token)
    assert key_token(key) == token
    assert "." not in key and key != ""


@given(st.lists(st.text(max_size=6), unique=True, max_size=40))
def test_distinct_tokens_get_distinct_keys(tokens):
    keys = [token_key(t) for t in tokens]
    assert len(set(keys)) == len(keys)


def test_keys_keep_case_and_wordpiece_prefixes():
    assert [token_key(t) for t in ["##ing", "ING", "ing", "e.g.", "100%"]] == [
        "##ing",
        "ING",
        "ing",
        "e%2Eg%2E",
        "100%25",
    ]


def test_a_key_not_made_by_token_key_is_refused():
    with pytest.raises(InvalidInputError, match="not a field key"):
        key_token("50%off")


def test_vocabulary_keys_use_dimension_numbers_without_a_vocabulary():
    assert vocabulary_keys(None, 3) == ["0", "1", "2"]
    assert vocabulary_keys(["a.b", "c"], 2) == ["a%2Eb", "c"]
    with pytest.raises(VocabularyMismatchError, match="3 tokens for dim 2"):
        vocabulary_keys(["a", "b", "c"], 2)


# ---------------------------------------------------------------------------- sources


def _index(path=None) -> SparseIndex:
    vectors = SparseVectors.from_dicts(
        [{0: 1.0, 2: 0.5}, {1: 2.0}, {0: 0.25, 3: 1.0}], dim=4, vocab=["a", "b.c", "##d", "E"]
    )
    index = SparseIndex(path)
    index.add(["x", "y", "z"], vectors, [{"lang": "en"}, None, {"lang": "fr", "n": 3}])
    return index


def test_an_index_source_streams_every_live_document_once_in_order():
    index = _index()
    index.delete(["y"])
    source = as_source(index)
    assert (source.dim, tuple(source.vocab), source.count) == (4, ("a", "b.c", "##d", "E"), 2)
    assert source.fields == {"lang": {"keyword"}, "n": {"integer"}}
    batches = list(source.batches(1))
    assert [ids for ids, _, _ in batches] == [["x"], ["z"]]
    assert [payloads for _, _, payloads in batches] == [[{"lang": "en"}], [{"lang": "fr", "n": 3}]]
    assert batches[1][1].to_dicts() == [{"a": 0.25, "E": 1.0}]


def test_a_source_is_one_snapshot_even_while_the_index_changes():
    index = _index()
    source = as_source(index)
    index.delete(["x"])
    assert [ids for ids, _, _ in source.batches(10)] == [["x", "y", "z"]]


def test_sources_refuse_what_they_cannot_read(tmp_path):
    with pytest.raises(InvalidInputError, match="empty: nothing to export"):
        as_source(SparseIndex())
    with pytest.raises(InvalidInputError, match="got list"):
        as_source([1, 2])


def test_an_index_folder_is_a_source(tmp_path):
    _index(tmp_path / "idx").save()
    source = as_source(tmp_path / "idx")
    try:
        assert source.count == 3
    finally:
        source.close()


# ---------------------------------------------------------------------------- retries


class _Flaky(Backend):
    """A backend over our own engine whose writes fail ``failures`` times first (the retry path
    of every real backend runs through this same code in ``Backend``)."""

    retry_delay = 0.001

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.index = SparseIndex()

    def begin(self, dim, vocab, fields):
        pass

    def write(self, ids, vectors, payloads):
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection reset by peer")
        self.index.upsert(ids, vectors, payloads)

    def is_transient(self, err):
        return isinstance(err, ConnectionError)

    def delete(self, ids):
        self.index.delete(ids)

    def count(self):
        return len(self.index)

    def search(self, queries, k=10, *, params=None):
        return self.index.search(queries, k, params=params or SearchParams())


def test_a_transient_failure_is_retried_and_the_batch_lands_once():
    backend = _Flaky(failures=2)
    report = export(_index(), backend, batch_size=2, progress=False)
    assert report.documents == 3 and backend.count() == 3
    assert backend.attempts == 4  # 2 failures + 2 batches
    hits = backend.search(SparseVectors.from_dicts([{0: 1.0}], dim=4), 3)
    assert hits.row(0) == [("x", 1.0), ("z", 0.25)]


def test_retries_give_up_after_the_last_attempt():
    backend = _Flaky(failures=10)
    with pytest.raises(ConnectionResetError):
        backend.upsert(["a"], SparseVectors.from_dicts([{0: 1.0}], dim=4))
    assert backend.attempts == backend.retries + 1 and backend.count() == 0


def test_a_permanent_error_is_not_retried():
    class Refusing(_Flaky):
        def write(self, ids, vectors, payloads):
            self.attempts += 1
            raise BackendError("engine: upsert failed: bad mapping")

    backend = Refusing(failures=0)
    with pytest.raises(BackendError, match="bad mapping"):
        backend.upsert(["a"], SparseVectors.from_dicts([{0: 1.0}], dim=4))
    assert backend.attempts == 1


def test_upsert_checks_its_input_before_writing():
    backend = _Flaky(failures=0)
    vectors = SparseVectors.from_dicts([{0: 1.0}, {1: 1.0}], dim=4)
    with pytest.raises(InvalidInputError, match="1 ids for 2 vectors"):
        backend.upsert(["a"], vectors)
    with pytest.raises(InvalidInputError, match="batch_size"):
        backend.upsert(["a", "b"], vectors, batch_size=0)
    assert backend.attempts == 0
    assert np.isclose(backend.upsert(["a", "b"], vectors, batch_size=1), 2)


# ---------------------------------------------------------------------------- CLI errors


def test_export_cli_names_a_bad_uri_and_a_missing_source(tmp_path, capsys):
    code, err = run_cli(["export", tmp_path, "--to", "faiss://x/y"], capsys)
    assert_one_line_error(code, err, "export", "not a target URI")
    code, err = run_cli(["export", tmp_path / "nope", "--to", f"bulk:{tmp_path}/o.ndjson"], capsys)
    assert_one_line_error(code, err, "export", "nope", "no such index")
