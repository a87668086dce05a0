"""Every on-disk format version keeps opening: one committed fixture index per version.

Each ``fixtures/format-v{N}/`` folder is an index written by the sparsearch of format ``N``, with
an ``expected.json`` of what opening it must give (made by ``fixtures/make_format_fixture.py``).
Tests open a copy in ``tmp_path``: the committed fixture is never written to.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparsearch.errors import UnknownIdError
from sparsearch.index import SparseIndex, storage
from sparsearch.search import Filter, SearchParams
from sparsearch.sparse import SparseVectors
from tests.index.brute import brute_force

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GENERATOR = "tests/index/fixtures/make_format_fixture.py"


def _version(folder: Path) -> int:
    return int(folder.name.removeprefix("format-v"))


FOLDERS = sorted(FIXTURES.glob("format-v*"), key=_version)


@pytest.fixture(params=FOLDERS, ids=lambda folder: folder.name)
def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of one committed fixture folder, and its expected.json."""
    folder: Path = request.param
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    expected = json.loads((copy / "expected.json").read_text())
    assert expected["format_version"] == _version(folder), f"{folder}: name and content disagree"
    return copy, expected


def _query(expected: dict[str, Any], query: dict[str, Any]) -> SparseVectors:
    row = dict(zip(query["indices"], query["values"], strict=True))
    return SparseVectors.from_dicts([row], dim=expected["dim"], vocab=expected["vocab"])


def _params(query: dict[str, Any], return_payloads: bool = False) -> SearchParams:
    flt = {"payload": query["payload_filter"]} if query["payload_filter"] else None
    return SearchParams(filter=flt, return_payloads=return_payloads)


def _expected_vectors(expected: dict[str, Any]) -> SparseVectors:
    rows = [dict(zip(v["indices"], v["values"], strict=True)) for v in expected["vectors"]]
    return SparseVectors.from_dicts(rows, dim=expected["dim"], vocab=expected["vocab"])


def test_the_current_format_version_has_a_committed_fixture():
    folder = FIXTURES / f"format-v{storage.FORMAT_VERSION}"
    assert (folder / storage.CURRENT).is_file() and (folder / "expected.json").is_file(), (
        f"no fixture index for on-disk format {storage.FORMAT_VERSION} at {folder}: run "
        f"`.venv/bin/python {GENERATOR}` and commit the new folder (keep the older ones)"
    )


def test_fixture_opens_with_its_ids_vectors_payloads_and_counts(fixture):
    path, expected = fixture
    index = SparseIndex.open(path, verify=True)
    ids = expected["ids"]
    assert index.ids() == ids
    assert len(index) == len(ids)
    assert index.dim == expected["dim"] and index.vocab == tuple(expected["vocab"])
    stats = index.stats()
    assert {key: stats[key] for key in expected["stats"]} == expected["stats"]
    assert stats["vocab_hash"] == expected["vocab_hash"]

    got, want = index.get(ids), _expected_vectors(expected)
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.values, want.values)
    assert got.vocab == tuple(expected["vocab"])
    assert index.get_payloads(ids) == expected["payloads"]
    doc_freq = np.bincount(want.indices, minlength=expected["dim"])
    np.testing.assert_array_equal(index.term_stats().doc_freq, doc_freq)

    for doc_id in expected["deleted_ids"]:
        assert doc_id not in index
        with pytest.raises(UnknownIdError):
            index.get([doc_id])


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
def test_fixture_search_results_equal_expected_json(fixture, mmap):
    path, expected = fixture
    index = SparseIndex.open(path, mmap=mmap, verify=True)
    vectors = _expected_vectors(expected)
    for query in expected["queries"]:
        q, k = _query(expected, query), query["k"]
        hits = index.search(q, k, params=_params(query, return_payloads=True))
        want_ids = [doc for doc, _ in query["hits"]]
        assert hits.ids[0].tolist() == want_ids + [None] * (k - len(want_ids))
        np.testing.assert_allclose(
            hits.scores[0, : len(want_ids)], [s for _, s in query["hits"]], rtol=0, atol=1e-6
        )
        real = [doc for doc in hits.ids[0].tolist() if doc is not None]
        assert hits.payloads is not None
        assert hits.payloads[0, : len(real)].tolist() == index.get_payloads(real)
        # the stored vectors explain the results (brute force over them, same filter)
        flt = Filter(payload=query["payload_filter"])
        allowed = np.array([flt.matches_payload(p) for p in expected["payloads"]])
        ref_ids, ref_scores = brute_force(vectors, expected["ids"], q, k, allowed)
        assert hits.ids.tolist() == ref_ids.tolist()
        np.testing.assert_allclose(hits.scores, ref_scores, rtol=0, atol=1e-6)


def test_fixture_can_be_updated_saved_and_reopened_in_todays_format(fixture):
    path, expected = fixture
    index = SparseIndex.open(path, verify=True)
    dim, vocab = expected["dim"], expected["vocab"]
    removed, replaced = expected["ids"][0], expected["ids"][-1]
    index.delete([removed])
    index.upsert(
        [replaced, "added", 12345],
        SparseVectors.from_dicts(
            [{0: 1.0, 5: 0.5}, {1: 2.0, 2: 0.25}, {3: 0.75}], dim=dim, vocab=vocab
        ),
        payloads=[{"lang": "en"}, None, {"lang": "fr"}],
    )
    want_ids = [d for d in expected["ids"] if d not in (removed, replaced)]
    want_ids += [replaced, "added", 12345]
    assert index.ids() == want_ids
    index.save()
    assert storage.read_manifest(path)["format_version"] == storage.FORMAT_VERSION

    queries = SparseVectors.from_dicts(
        [dict(zip(q["indices"], q["values"], strict=True)) for q in expected["queries"]]
        + [{0: 1.0, 1: 1.0, 3: 1.0}],
        dim=dim,
        vocab=vocab,
    )
    before = index.search(queries, 7, params=SearchParams(return_payloads=True))
    reopened = SparseIndex.open(path, verify=True)
    assert reopened.ids() == want_ids
    assert reopened.get_payloads(want_ids) == index.get_payloads(want_ids)
    after = reopened.search(queries, 7, params=SearchParams(return_payloads=True))
    assert after.ids.tolist() == before.ids.tolist()
    assert after.payloads.tolist() == before.payloads.tolist()
    np.testing.assert_array_equal(after.scores, before.scores)

    reopened.compact()
    reopened.save()
    compacted = SparseIndex.open(path, verify=True)
    assert compacted.stats()["segments"] == 1 and compacted.stats()["deleted"] == 0
    assert compacted.ids() == want_ids
    again = compacted.search(queries, 7)
    assert again.ids.tolist() == before.ids.tolist()
    np.testing.assert_array_equal(again.scores, before.scores)


def test_sparsearch_upgrade_rewrites_any_fixture_in_todays_format(fixture, capsys):
    from sparsearch.cli import main

    path, expected = fixture
    before = SparseIndex.open(path)
    queries = SparseVectors.concat([_query(expected, query) for query in expected["queries"]])
    want = before.search(queries, 5, params=SearchParams(return_payloads=True))
    assert main(["upgrade", str(path)]) == 0
    assert f"-> {storage.FORMAT_VERSION}" in capsys.readouterr().out
    assert storage.read_manifest(path)["format_version"] == storage.FORMAT_VERSION
    after = SparseIndex.open(path, verify=True)
    assert after.ids() == expected["ids"]
    got = after.search(queries, 5, params=SearchParams(return_payloads=True))
    assert got.ids.tolist() == want.ids.tolist() and got.payloads.tolist() == want.payloads.tolist()
    np.testing.assert_array_equal(got.scores, want.scores)
    names = [meta["name"] for meta in storage.read_manifest(path)["segments"]]
    assert all((path / "segments" / name / "columns.json").is_file() for name in names)
