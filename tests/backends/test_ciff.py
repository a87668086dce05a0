"""CIFF export: the wire format on a hand-checked case, SciFact written and read back with the
protobuf schema, the quantisation, and the errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sparsearch import SparseVectors
from sparsearch.backends import export
from sparsearch.backends.ciff import (
    CiffWriter,
    Header,
    iter_messages,
    quantize,
    read_ciff,
)
from sparsearch.backends.sources import Source
from sparsearch.errors import (
    DuplicateIdError,
    IndexCorruptError,
    InvalidInputError,
    VocabularyMismatchError,
)
from tests.backends.conftest import exact_top

TINY_VOCAB = ["b", "a", "a.b", "c"]
TINY = np.array(
    [
        [0.5, 0.0, 1.0, 0.004],  # d0: b=50, a.b=100; c rounds to 0 and is dropped
        [0.0, 0.0, 0.0, 0.0],  # d1: empty
        [0.25, 2.0, 0.01, 0.0],  # d2: b=25, a=200, a.b=1
    ],
    dtype=np.float32,
)


def _write(path: Path, ids: list, vectors: SparseVectors, **options) -> Path:
    writer = CiffWriter(path, **options)
    writer.begin(vectors.dim, vectors.vocab, {})
    writer.write(ids, vectors, [None] * len(ids))
    writer.finish()
    return path


def test_tiny_case_has_the_expected_bytes(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(TINY, vocab=TINY_VOCAB)
    path = _write(tmp_path / "tiny.ciff", ["d0", "d1", "d2"], vectors, description="tiny")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not tempfile's private 0600
    data = path.read_bytes()
    assert data[0] >= 0x80 > data[1]  # the header is 128..16383 bytes: a two-byte varint
    header_size = (data[0] & 0x7F) | data[1] << 7
    header = Header.FromString(data[2 : 2 + header_size])
    assert (header.version, header.num_postings_lists, header.num_docs) == (1, 3, 3)
    assert (header.total_postings_lists, header.total_docs) == (3, 3)
    assert header.total_terms_in_collection == 376 and header.average_doclength == 376 / 3
    assert header.description.startswith("tiny [") and "scale=100.0;" in header.description
    # Every message: a varint size, then fields as (field << 3 | wire type) tags. proto3 leaves
    # out zero values, so a posting whose docid gap is 0 has only its tf.
    expected = bytes.fromhex(
        # PostingsList "a": df 1, cf 200, posting {docid gap 2, tf 200}
        "0f 0a0161 1001 18c801 2205 0802 10c801"
        # PostingsList "a.b": df 2, cf 101, postings {gap 0, tf 100} {gap 2, tf 1}
        "13 0a03612e62 1002 1865 2202 1064 2204 0802 1001"
        # PostingsList "b": df 2, cf 75, postings {gap 0, tf 50} {gap 2, tf 25}
        "11 0a0162 1002 184b 2202 1032 2204 0802 1019"
        # DocRecords: docid, collection_docid, doclength (sum of impacts)
        "07 12026430 189601"  # docid 0 (left out), "d0", 150
        "06 0801 12026431"  # docid 1, "d1", length 0 (left out)
        "09 0802 12026432 18e201"  # docid 2, "d2", 226
    )
    assert data[2 + header_size :] == expected

    index = read_ciff(path)
    assert index.terms == ["a", "a.b", "b"] and index.doc_ids == ["d0", "d1", "d2"]
    assert index.df.tolist() == [1, 2, 2] and index.cf.tolist() == [200, 101, 75]
    assert index.doclengths.tolist() == [150, 0, 226] and index.scale == 100.0
    assert index.vectors.to_dicts() == [
        {"a.b": 100.0, "b": 50.0},
        {},
        {"a": 200.0, "a.b": 1.0, "b": 25.0},
    ]


def test_quantize_rounds_half_to_even_and_drops_zeros() -> None:
    vectors = SparseVectors.from_dense(np.array([[0.125, 0.375, 0.0049, 3.0]]))
    rows = quantize(vectors, 4)  # exact binary fractions: 0.5 -> 0, 1.5 -> 2, 0.0196 -> 0
    assert rows.indices.tolist() == [1, 3] and rows.impacts.tolist() == [2, 12]
    assert rows.indptr.tolist() == [0, 2]


@pytest.fixture(scope="module")
def scifact_ciff(scifact_index, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ciff") / "sci.ciff"
    report = export(scifact_index, f"ciff:{path}", progress=False)
    assert report.documents == 5183
    return path


def expected_impacts(docs: SparseVectors, scale: float = 100.0) -> sp.csr_matrix:
    """Our stored vectors, quantised here independently: round(w * scale) per weight."""
    impacts = np.array([round(float(w) * scale) for w in docs.values.tolist()], np.float64)
    matrix = sp.csr_matrix(
        (impacts, docs.indices, docs.indptr), shape=(docs.n, docs.dim), copy=True
    )
    matrix.eliminate_zeros()  # in place: hence the copy of the session fixture's arrays
    return matrix


def _read_back(index, vocab: list[str]) -> sp.csr_matrix:
    """The read-back impacts with their columns mapped from CIFF terms to our vocabulary."""
    column = {token: i for i, token in enumerate(vocab)}
    to_vocab = np.array([column[term] for term in index.terms], np.int64)
    rows = index.impacts
    return sp.csr_matrix(
        (rows.impacts.astype(np.float64), to_vocab[rows.indices], rows.indptr),
        shape=(len(index.doc_ids), len(vocab)),
    )


def test_scifact_postings_are_well_formed(scifact_ciff: Path, scifact_encoded) -> None:
    messages = iter_messages(scifact_ciff)
    header = next(messages)
    assert header.num_docs == header.total_docs == 5183
    lists = [next(messages) for _ in range(header.num_postings_lists)]
    records = list(messages)
    terms = [plist.term for plist in lists]
    assert terms == sorted(terms) and len(set(terms)) == len(terms)
    assert [term.encode() for term in terms] == sorted(term.encode() for term in terms)
    for plist in lists:
        gaps = np.array([p.docid for p in plist.postings])
        tfs = np.array([p.tf for p in plist.postings])
        assert gaps[0] >= 0 and np.all(gaps[1:] > 0), plist.term  # ascending docids
        assert plist.df == len(gaps) and plist.cf == tfs.sum() and np.all(tfs > 0)
    assert [r.docid for r in records] == list(range(5183))
    assert [r.collection_docid for r in records] == scifact_encoded.doc_ids
    lengths = np.array([r.doclength for r in records])
    assert header.total_terms_in_collection == lengths.sum()
    assert header.average_doclength == pytest.approx(lengths.sum() / 5183)
    used = np.unique(scifact_encoded.docs.indices[scifact_encoded.docs.values >= 0.005])
    assert header.num_postings_lists == header.total_postings_lists == used.size


def test_scifact_impacts_are_our_weights_quantised(scifact_ciff: Path, scifact_encoded) -> None:
    index = read_ciff(scifact_ciff)
    want = expected_impacts(scifact_encoded.docs)
    got = _read_back(index, list(scifact_encoded.docs.vocab))
    assert got.nnz == want.nnz and (got != want).nnz == 0
    assert index.doclengths.tolist() == want.sum(axis=1).A1.astype(np.int64).tolist()
    dropped = scifact_encoded.docs.nnz - want.nnz  # weights below 0.005
    assert 0 < dropped < 0.05 * scifact_encoded.docs.nnz


def test_scifact_quantised_top10_recall(scifact_ciff: Path, scifact_encoded, scifact_index) -> None:
    """Dot products over the read-back impacts (float queries, impacts / scale) against our
    exact top-10: quantisation loses a little (recall@10 measured 0.99; see the report)."""
    index = read_ciff(scifact_ciff)
    docs = _read_back(index, list(scifact_encoded.docs.vocab)) / index.scale
    queries = scifact_encoded.queries.to_scipy().astype(np.float64)
    scores = (queries @ docs.T).toarray()
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    want = exact_top(scifact_index, scifact_encoded.queries, 10)
    recall = np.mean(
        [
            len({index.doc_ids[d] for d in row} & set(exact)) / 10
            for row, exact in zip(top, want, strict=True)
        ]
    )
    print(f"CIFF scale=100 recall@10 vs exact: {recall:.4f}")
    assert 0.95 <= recall < 1.0


def test_scale_and_description_from_the_uri(tmp_path: Path, scifact_encoded) -> None:
    docs = scifact_encoded.docs[:50]
    ids = scifact_encoded.doc_ids[:50]
    source = Source(docs.dim, docs.vocab, {}, 50, lambda size: iter([(ids, docs, [None] * 50)]))
    path = tmp_path / "s.ciff"
    export(source, f"ciff:{path}?scale=1000&description=splade-tiny", progress=False)
    index = read_ciff(path)
    assert index.scale == 1000.0 and index.header.description.startswith("splade-tiny [")
    want = expected_impacts(docs, 1000.0)
    assert (_read_back(index, list(docs.vocab)) != want).nnz == 0


def test_vectors_without_vocab_use_dimension_numbers(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(TINY)
    index = read_ciff(_write(tmp_path / "n.ciff", [7, 8, 9], vectors))
    assert index.terms == ["0", "1", "2"]  # "3" only had a weight that rounds to 0
    assert index.doc_ids == ["7", "8", "9"]


def test_existing_target_is_refused_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "t.ciff"
    path.write_bytes(b"old")
    vectors = SparseVectors.from_dense(TINY, vocab=TINY_VOCAB)
    with pytest.raises(InvalidInputError, match="exists; pass overwrite=True"):
        CiffWriter(path)
    _write(path, ["x", "y", "z"], vectors, overwrite=True)
    assert read_ciff(path).doc_ids == ["x", "y", "z"]


def test_unwritable_targets_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InvalidInputError, match="is not a folder"):
        CiffWriter(tmp_path / "file" / "x.ciff")
    writer = CiffWriter("/proc/sparsearch-test.ciff")  # /proc takes no new files, even root's
    with pytest.raises(InvalidInputError, match="cannot write /proc/sparsearch-test.ciff"):
        writer.begin(4, TINY_VOCAB, {})


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), "abc", True, None])
def test_bad_scale_is_refused(tmp_path: Path, scale) -> None:
    with pytest.raises(InvalidInputError, match="scale must be a positive"):
        CiffWriter(tmp_path / "s.ciff", scale=scale)


def test_bad_vectors_and_ids_are_refused(tmp_path: Path) -> None:
    writer = CiffWriter(tmp_path / "bad.ciff")
    with pytest.raises(VocabularyMismatchError, match="'a' twice"):
        writer.begin(3, ["a", "b", "a"], {})
    with pytest.raises(InvalidInputError, match="line break"):
        writer.begin(2, ["a", "b\nc"], {})
    writer.begin(4, TINY_VOCAB, {})
    negative = SparseVectors.from_dense(-TINY[:1], vocab=TINY_VOCAB)
    with pytest.raises(InvalidInputError, match="negative weight"):
        writer.write(["n"], negative, [None])
    huge = SparseVectors.from_dense(TINY[:1] * 1e8, vocab=TINY_VOCAB)
    with pytest.raises(InvalidInputError, match="int32"):
        writer.write(["h"], huge, [None])
    vectors = SparseVectors.from_dense(TINY[:1], vocab=TINY_VOCAB)
    writer.write(["d0"], vectors, [None])
    with pytest.raises(DuplicateIdError, match="'d0' written twice"):
        writer.write(["d0"], vectors, [None])
    with pytest.raises(InvalidInputError, match="line break"):
        writer.write(["a\nb"], vectors, [None])
    writer.close()
    assert list(tmp_path.iterdir()) == []  # close() removed the unfinished temporary file


def test_failed_export_keeps_the_previous_file(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(TINY, vocab=TINY_VOCAB)
    path = _write(tmp_path / "keep.ciff", ["d0", "d1", "d2"], vectors)
    before = path.read_bytes()

    def batches(size: int):
        yield ["x0", "x1", "x2"], vectors, [None] * 3
        raise RuntimeError("source failed mid-export")

    source = Source(4, TINY_VOCAB, {}, 6, batches)
    with pytest.raises(RuntimeError, match="mid-export"):
        export(source, f"ciff:{path}", overwrite=True, progress=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ciff"]


def test_corrupt_files_are_named(tmp_path: Path) -> None:
    vectors = SparseVectors.from_dense(TINY, vocab=TINY_VOCAB)
    data = _write(tmp_path / "c.ciff", ["d0", "d1", "d2"], vectors).read_bytes()
    (tmp_path / "cut.ciff").write_bytes(data[:-3])
    with pytest.raises(IndexCorruptError, match="runs past the end"):
        read_ciff(tmp_path / "cut.ciff")
    (tmp_path / "extra.ciff").write_bytes(data + b"\x00")
    with pytest.raises(IndexCorruptError, match="1 bytes after the last DocRecord"):
        read_ciff(tmp_path / "extra.ciff")


def _pisa_collection(ciff: Path, folder: Path) -> None:
    """PISA's canonical uncompressed collection from the CIFF's messages, as pyciff's
    ``ciff_to_pisa`` makes it: ``inv.docs`` / ``inv.freqs`` / ``inv.sizes`` (sequences of
    little-endian u32 prefixed by their length), and the term and document lexicons."""
    from pyterrier_pisa import _pisathon

    def sequence(out, values) -> None:
        out.write(np.uint32(len(values)).tobytes() + np.asarray(values, "<u4").tobytes())

    messages = iter_messages(ciff)
    header = next(messages)
    folder.mkdir()
    terms = []
    with open(folder / "inv.docs", "wb") as docs, open(folder / "inv.freqs", "wb") as freqs:
        sequence(docs, [header.num_docs])
        for _ in range(header.num_postings_lists):
            plist = next(messages)
            sequence(docs, np.cumsum([p.docid for p in plist.postings]))
            sequence(freqs, [p.tf for p in plist.postings])
            terms.append(plist.term)
    records = list(messages)
    with open(folder / "inv.sizes", "wb") as sizes:
        sequence(sizes, [r.doclength for r in records])
    names = [r.collection_docid for r in records]
    for name, lexicon, lines in (("terms", "termlex", terms), ("documents", "doclex", names)):
        (folder / f"fwd.{name}").write_text("".join(line + "\n" for line in lines))
        _pisathon.build_binlex(str(folder / f"fwd.{name}"), str(folder / f"fwd.{lexicon}"))
    meta = {"type": "sparse_index", "format": "pisa", "stemmer": "none"}
    (folder / "pt_meta.json").write_text(json.dumps(meta))


def test_pisa_searches_our_ciff(scifact_ciff: Path, scifact_encoded, tmp_path: Path) -> None:
    """PISA (pyterrier-pisa) indexes the CIFF's postings and answers the 300 SciFact queries with
    the top-10 of the dot product over the CIFF impacts (PISA scales query weights by 100 and
    truncates them to ints), modulo exact score ties at the 10th place."""
    import pandas as pd
    from pyterrier_pisa import PisaIndex

    _pisa_collection(scifact_ciff, tmp_path / "pisa")
    pisa = PisaIndex(str(tmp_path / "pisa"), stemmer="none", stops="none")
    assert pisa.num_docs() == 5183
    queries = scifact_encoded.queries.to_dicts()
    frame = pd.DataFrame({"qid": [str(i) for i in range(300)], "query_toks": queries})
    search = pisa.quantized(num_results=10, query_algorithm="maxscore", toks_scale=100.0)
    results = search.transform(frame)
    index = read_ciff(scifact_ciff)
    docs = index.impacts
    impacts = sp.csr_matrix((docs.impacts, docs.indices, docs.indptr)).astype(np.float64)
    position = {doc_id: i for i, doc_id in enumerate(index.doc_ids)}
    column = {term: i for i, term in enumerate(index.terms)}
    for qid, query in enumerate(queries):
        weights = np.zeros(len(index.terms))
        for token, weight in query.items():
            if token in column:  # a token no document has is no PISA term either
                weights[column[token]] = int(weight * 100)
        scores = impacts @ weights
        got = results[results.qid == str(qid)].sort_values("rank")
        got_scores = scores[[position[doc_id] for doc_id in got.docno]]
        want_scores = -np.sort(-scores)[:10]
        assert np.array_equal(got_scores, want_scores), qid  # same scores, rank by rank
        above = set(np.flatnonzero(scores > want_scores[-1]).tolist())
        assert above <= {position[doc_id] for doc_id in got.docno}, qid  # same ids above ties
        assert np.allclose(got.score, got_scores), qid
