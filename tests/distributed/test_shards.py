"""Shard folders without Ray: the in-process plan (``workers=0``), its vectors, manifest, Parquet
inputs, payloads, ingest into an index and a collection, export's source, resume and damage."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsearch.distributed import ShardSet, encode_corpus, ingest, is_shard_folder
from sparsearch.errors import (
    DuplicateIdError,
    IndexCorruptError,
    InvalidInputError,
    ModelMismatchError,
)
from sparsearch.sparse import SparseVectors
from tests.conftest import real_model
from tests.distributed import DOCS, MODEL, SEQ, assert_same_bits, gather, write_subset

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

SHARD = 40


@pytest.fixture(scope="module")
def model():
    """splade-tiny on one torch thread, like the workers (2 threads crawl on 2 busy cores)."""
    import torch

    from sparsearch.models import SparseEncoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    encoder = SparseEncoder(real_model(MODEL))
    encoder.max_seq_length = SEQ
    yield encoder
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory) -> Path:
    return write_subset(shared_data, tmp_path_factory.mktemp("input") / "corpus.jsonl")


@pytest.fixture(scope="module")
def texts(corpus: Path) -> tuple[list[str], list[str]]:
    from sparsearch.eval.beir import read_jsonl_texts

    return read_jsonl_texts(corpus)


@pytest.fixture(scope="module")
def folder(corpus: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "out"
    encode_corpus(
        MODEL, corpus, out, workers=0, shard_size=SHARD, max_seq_length=SEQ, with_text=True,
        progress=False,
    )  # fmt: skip
    return out


def encode(folder: Path, source: Path, **options) -> ShardSet:
    settings = {"workers": 0, "shard_size": SHARD, "max_seq_length": SEQ, "progress": False}
    return encode_corpus(MODEL, source, folder, **{**settings, **options})


@pytest.fixture(scope="module")
def reference(model, texts) -> SparseVectors:
    """The single-process vectors of the plan: one encode_document per shard's texts."""
    docs = texts[1]
    parts = [model.encode_document(docs[s : s + SHARD]) for s in range(0, DOCS, SHARD)]
    return SparseVectors.concat(parts)


def test_vectors_are_one_encode_per_shard_ids_in_order_manifest_right(
    folder: Path, corpus: Path, model, texts, reference
) -> None:
    from sparsearch.hybrid.cache import model_fingerprint

    ids, docs = texts
    shards = ShardSet(folder)
    got_ids, got, payloads = gather(shards)
    assert got_ids == ids and shards.count == len(ids) == DOCS
    assert payloads == [None] * DOCS and shards.fields() == {}
    # bit for bit: each shard is one encode_document over its rows, whichever process runs it
    assert_same_bits(got, reference)
    # one encode_document over the whole corpus batches other texts together: the same vectors
    # up to float rounding of the matrix products (measured: max |diff| ~ 1e-6)
    whole = model.encode_document(docs, batch_size=32)
    assert np.abs(got.to_dense() - whole.to_dense()).max() < 1e-4
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["complete"] and manifest["fingerprint"] == model_fingerprint(model)
    assert manifest["dim"] == shards.dim == model.dim and shards.vocab == list(model.vocab)
    assert manifest["encoding"] == {
        "side": "document",
        "batch_size": 32,
        "max_active_dims": None,
        "max_seq_length": SEQ,
        "precision": "float32",
        "segments": False,
    }
    assert manifest["input"]["sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert manifest["input"]["rows"] == DOCS and manifest["shard_size"] == SHARD
    ranges = [(s["start"], s["stop"]) for s in manifest["shards"]]
    assert ranges == [(0, 40), (40, 80), (80, 120), (120, 160)]
    table = pq.read_table(folder / "shard-00001.parquet")
    assert str(table.schema.field("indices").type) == "list<element: int32>"
    assert str(table.schema.field("values").type) == "list<element: float>"
    assert table["text"].to_pylist() == docs[40:80]
    meta = json.loads(table.schema.metadata[b"sparsearch.shard"])
    assert meta["fingerprint"] == manifest["fingerprint"] and meta["rows"] == 40


def test_parquet_input_int_ids_payloads_and_text(folder: Path, tmp_path: Path, texts) -> None:
    ids, docs = texts[0][:80], texts[1][:80]  # the first two shards
    rows = [
        {"docid": int(i), "body": t, "lang": "en" if n % 3 else "fr", "year": 2000 + n % 7}
        for n, (i, t) in enumerate(zip(ids, docs, strict=True))
    ]
    source = tmp_path / "docs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=30)  # groups cross shards
    shards = encode(
        tmp_path / "out", source, id_field="docid", text_field="body", title_field=None,
        payload_fields=["lang", "year"], with_text=True,
    )  # fmt: skip
    got_ids, got, payloads = gather(shards)
    assert got_ids == [int(i) for i in ids]  # an int64 id column stays int
    assert_same_bits(got, gather(ShardSet(folder))[1][:80])  # same texts and plan as JSONL
    assert payloads == [{"lang": r["lang"], "year": r["year"]} for r in rows]
    assert shards.fields() == {"lang": {"keyword"}, "year": {"integer"}}
    with_text = ShardSet(tmp_path / "out", with_text=True)
    assert with_text.fields()["text"] == {"keyword"}
    assert [p["text"] for p in gather(with_text)[2]] == docs


def test_ingest_into_an_index_searches_like_one_built_from_the_vectors(
    folder: Path, model, texts, reference, shared_data: Path
) -> None:
    from sparsearch.eval.beir import read_jsonl_texts
    from sparsearch.index import SparseIndex

    _, queries = read_jsonl_texts(shared_data / "scifact" / "queries.jsonl", "queries")
    q = model.encode_query(queries[:50])
    index = SparseIndex()
    assert ingest(folder, index) == DOCS and len(index) == DOCS
    oracle = SparseIndex()
    oracle.add(texts[0], reference)
    got, want = index.search(q, k=10), oracle.search(q, k=10)
    assert got.ids.tolist() == want.ids.tolist()
    assert np.array_equal(got.scores, want.scores)
    with pytest.raises(DuplicateIdError):
        ingest(folder, index)  # every id is there already
    with pytest.raises(InvalidInputError, match="SparseIndex or a Collection"):
        ingest(folder, {})


def test_ingest_into_a_collection_checks_the_fingerprint_both_ways(
    folder: Path, tmp_path: Path, tiny_model_dir: Path, texts, reference
) -> None:
    from sparsearch.collection import Collection

    ids, docs = texts
    with Collection.create(tmp_path / "same", model=real_model(MODEL)) as col:
        assert ingest(folder, col) == DOCS and col.count() == DOCS
        point = col.get([ids[7]])[0]
        assert point.text == docs[7]
        assert point.vector == pytest.approx(reference[7].to_dicts(col.sparse_model.vocab)[0])
    with Collection.create(tmp_path / "other", model=tiny_model_dir) as col:
        with pytest.raises(ModelMismatchError, match="fingerprint"):
            ingest(folder, col)
        assert col.count() == 0
    with Collection.create(tmp_path / "k", model=real_model(MODEL), max_active_dims=16) as col:
        with pytest.raises(InvalidInputError, match="max_active_dims"):
            ingest(folder, col)


def test_export_reads_a_shard_folder(folder: Path) -> None:
    from sparsearch.backends.sources import as_source

    assert is_shard_folder(folder) and not is_shard_folder(folder.parent)
    source = as_source(folder)
    shards = ShardSet(folder)
    assert (source.dim, source.vocab, source.count) == (shards.dim, shards.vocab, DOCS)
    assert source.fields == {}
    batches = list(source.batches(100))
    assert [len(b[0]) for b in batches] == [40] * 4  # batches stay within a shard
    assert_same_bits(SparseVectors.concat([b[1] for b in batches]), gather(shards)[1])


def test_resume_encodes_only_missing_shards(folder: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("shard-*")}
    (out / "shard-00001.parquet").unlink()
    (out / "shard-00003.parquet").unlink()
    (out / ".shard-00003.parquet.123.tmp").write_bytes(b"half a file")  # a killed write
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="incomplete shard folder .2 of 4"):
        ShardSet(out)
    shards = encode(out, corpus, with_text=True)
    assert shards.manifest.runs[-1]["encoded"] == [1, 3]
    assert shards.manifest.runs[-1]["skipped"] == 2
    for path in out.glob("shard-*"):
        mtime, data = before[path.name]
        assert path.read_bytes() == data  # re-encoded shards come out identical
        if path.name not in ("shard-00001.parquet", "shard-00003.parquet"):
            assert path.stat().st_mtime_ns == mtime  # finished shards were left alone
    assert not list(out.glob(".*.tmp"))


def test_workers_segments_are_attached_and_resumed_like_shards(
    folder: Path, corpus: Path, tmp_path: Path
) -> None:
    from sparsearch.index import SparseIndex

    out = tmp_path / "segments"
    shards = encode(out, corpus, with_text=True, build_segments=True)
    assert sorted(p.name for p in out.glob("*.index")) == [f"shard-{n:05d}.index" for n in range(4)]
    # a shard whose segment is missing (the worker died between the two) is encoded again
    shutil.rmtree(out / "shard-00002.index")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    shards = encode(out, corpus, with_text=True, build_segments=True)
    assert shards.manifest.runs[-1]["encoded"] == [2]

    attached, added = SparseIndex(tmp_path / "attached"), SparseIndex()
    ingest(shards, attached)
    ingest(folder, added)  # the same plan without segments: indexed here, shard by shard
    assert attached.ids() == added.ids() and len(attached.snapshot().segments) == 4
    built = SparseIndex.open(out / "shard-00001.index").snapshot().segments[0]
    assert np.array_equal(attached.snapshot().segments[1].inverted[1], built.inverted[1])
    q = gather(shards)[1][:20]  # documents as queries: every score ties nothing away
    got, want = attached.search(q, k=10), added.search(q, k=10)
    assert got.ids.tolist() == want.ids.tolist() and np.array_equal(got.scores, want.scores)
    with pytest.raises(DuplicateIdError, match="already in the index"):
        ingest(shards, attached)
    assert SparseIndex.open(tmp_path / "attached").ids() == added.ids()  # committed, intact


def test_a_resume_with_another_job_is_refused(
    folder: Path, corpus: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    with pytest.raises(InvalidInputError, match="another encoding"):
        encode(out, corpus, with_text=True, max_active_dims=8)
    with pytest.raises(InvalidInputError, match="another shard_size"):
        encode(out, corpus, with_text=True, shard_size=60)
    changed = tmp_path / "corpus.jsonl"
    changed.write_bytes(corpus.read_bytes().replace(b"the", b"The", 1))
    with pytest.raises(InvalidInputError, match="another input"):
        encode(out, changed, with_text=True)
    with pytest.raises(ModelMismatchError, match="another output folder"):
        encode_corpus(tiny_model_dir, corpus, out, workers=0, shard_size=SHARD, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="holds no manifest.json"):
        encode(tmp_path / "busy", corpus)


def test_damaged_shards_raise_index_corrupt_error(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    path = out / "shard-00002.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(IndexCorruptError, match="shard-00002.parquet: damaged shard"):
        list(ShardSet(out).iter_batches(100))
    flipped = bytearray(data)
    flipped[200] ^= 0xFF  # inside the first data page: its checksum fails
    path.write_bytes(bytes(flipped))
    with pytest.raises(IndexCorruptError, match="shard-00002.parquet"):
        list(ShardSet(out).iter_batches(100))
    path.unlink()
    with pytest.raises(IndexCorruptError, match="shard file missing"):
        list(ShardSet(out).iter_batches(100))
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest.json: unreadable"):
        ShardSet(out)


def test_bad_rows_and_arguments_are_named(corpus: Path, tmp_path: Path) -> None:
    lines = corpus.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines[:50] + [b"{oops\n"] + lines[50:]))
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:51: not JSON"):
        encode(tmp_path / "o1", bad)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(b"".join(lines[:50] + lines[10:11]))  # shard 1 repeats a shard-0 id
    with pytest.raises(DuplicateIdError, match="in shard-00000.parquet and shard-00001.parquet"):
        encode(tmp_path / "o2", twice)
    with pytest.raises(InvalidInputError, match="no such file"):
        encode(tmp_path / "o3", tmp_path / "missing.jsonl")
    with pytest.raises(InvalidInputError, match="workers must be an integer >= 0"):
        encode(tmp_path / "o4", corpus, workers=-1)
    with pytest.raises(InvalidInputError, match="shard_size must be a positive integer"):
        encode(tmp_path / "o5", corpus, shard_size=0)
    with pytest.raises(InvalidInputError, match="side must be"):
        encode(tmp_path / "o6", corpus, side="passage")
    with pytest.raises(InvalidInputError, match="no column 'body'"):
        source = tmp_path / "x.parquet"
        pq.write_table(pa.table({"_id": ["a"], "text": ["b"]}), source)
        encode(tmp_path / "o7", source, text_field="body")
