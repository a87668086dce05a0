"""CIFF export (``ciff:PATH``): the Common Index File Format that PISA and others import.

A CIFF file is a stream of varint-length-delimited protobuf messages (schema: osirrc/ciff
``CommonIndexFileFormat.proto``, package ``io.osirrc.ciff``): one ``Header``, then one
``PostingsList`` per term, then one ``DocRecord`` per document. The message classes are built at
import from a ``FileDescriptorProto`` written here in Python (:data:`SCHEMA`), so the official
protobuf runtime encodes and decodes them and no generated code ties us to a protobuf version.

What this writer chooses, where the format leaves it open:

* **Impacts.** CIFF ``tf`` is an integer: each weight ``w`` becomes ``round(w * scale)`` (ties to
  even, computed in float64; ``scale`` defaults to 100 as Anserini's and PISA's SPLADE pipelines
  use). Postings that round to 0 are dropped; negative weights and impacts beyond int32 are
  refused. The scale is recorded in the header ``description`` (``scale=100.0``), and
  :func:`read_ciff` reads it back.
* **Terms** are the vocabulary's tokens as they are (vectors without a vocabulary use the
  dimension numbers, ``"0"``, ``"1"``, ...), sorted by code point (= UTF-8 byte order, what PISA's
  ``ciff2pisa`` checks for; it re-sorts other orders). Only terms with postings are written.
  Consumers write one term (and one document id) per line, so tokens and ids with line breaks
  are refused, as are vocabularies that repeat a token.
* **Documents** get CIFF docids ``0..n-1`` in export order; ``collection_docid`` is our id as a
  string; ``doclength`` is the sum of the document's impacts (the length of the pseudo-document
  in which each term occurs ``tf`` times). Each id is written once: a repeated id is refused.
* **Payloads** have no place in CIFF and are not written.

Memory: the writer buffers the quantised forward vectors (8 bytes per posting) and inverts them
in :meth:`CiffWriter.finish` (about 40 bytes per posting at the peak), then writes a temporary
file next to the target and renames it into place, so readers never see a partial file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from sparsearch.backends.base import Fields, Payload, Target
from sparsearch.backends.files import destination, temp_sibling, unwritable
from sparsearch.backends.uri import TargetURI
from sparsearch.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    IndexCorruptError,
    InvalidInputError,
    VocabularyMismatchError,
)
from sparsearch.filters import DocId
from sparsearch.index.checks import check_batch
from sparsearch.sparse import SparseVectors

__all__ = [
    "SCALE",
    "SCHEMA",
    "CiffIndex",
    "CiffWriter",
    "DocRecord",
    "Header",
    "Impacts",
    "Posting",
    "PostingsList",
    "check_scale",
    "from_uri",
    "iter_messages",
    "quantize",
    "read_ciff",
]

SCALE = 100.0
"""The default quantisation scale: impact = round(weight * 100)."""

_INT32_MAX = 2**31 - 1

# ----------------------------------------------------------------------------- the schema

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64, "double": _F.TYPE_DOUBLE}
_SCALARS["string"] = _F.TYPE_STRING
_MESSAGES: dict[str, list[tuple[str, int, str]]] = {
    "Header": [
        ("version", 1, "int32"),
        ("num_postings_lists", 2, "int32"),
        ("num_docs", 3, "int32"),
        ("total_postings_lists", 4, "int32"),
        ("total_docs", 5, "int32"),
        ("total_terms_in_collection", 6, "int64"),
        ("average_doclength", 7, "double"),
        ("description", 8, "string"),
    ],
    "Posting": [("docid", 1, "int32"), ("tf", 2, "int32")],
    "PostingsList": [
        ("term", 1, "string"),
        ("df", 2, "int64"),
        ("cf", 3, "int64"),
        ("postings", 4, "repeated Posting"),
    ],
    "DocRecord": [
        ("docid", 1, "int32"),
        ("collection_docid", 2, "string"),
        ("doclength", 3, "int32"),
    ],
}


def _schema() -> descriptor_pb2.FileDescriptorProto:
    """``CommonIndexFileFormat.proto`` as a descriptor (field names, numbers and types)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="CommonIndexFileFormat.proto", package="io.osirrc.ciff", syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind in fields:
            field = message.field.add(name=field_name, number=number, json_name=field_name)
            if kind.startswith("repeated "):
                field.label = _F.LABEL_REPEATED
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".io.osirrc.ciff.{kind.split()[1]}"
            else:
                field.label = _F.LABEL_OPTIONAL
                field.type = _SCALARS[kind]
    return proto


SCHEMA = _schema()
"""The CIFF schema as a ``FileDescriptorProto`` (in a private pool: no clash with other
modules that register ``io.osirrc.ciff``)."""

_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(SCHEMA)
Header: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("io.osirrc.ciff.Header"))
Posting: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("io.osirrc.ciff.Posting")
)
PostingsList: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("io.osirrc.ciff.PostingsList")
)
DocRecord: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("io.osirrc.ciff.DocRecord")
)

# ----------------------------------------------------------------------------- impacts


class Impacts(NamedTuple):
    """Quantised vectors in CSR form: ``impacts`` are positive int32 (zeros already dropped)."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    impacts: npt.NDArray[np.int32]


def check_scale(scale: Any) -> float:
    """``scale`` (a number, or its text from a URI) as a positive finite float."""
    if isinstance(scale, str):
        try:
            scale = float(scale)
        except ValueError:
            raise InvalidInputError(f"scale must be a positive number, got {scale!r}") from None
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"scale must be a positive number, got {type(scale).__name__}")
    value = float(scale)
    if not np.isfinite(value) or value <= 0:
        raise InvalidInputError(f"scale must be a positive finite number, got {scale!r}")
    return value


def quantize(vectors: SparseVectors, scale: float = SCALE) -> Impacts:
    """Integer impacts ``round(w * scale)`` (ties to even, in float64) of every row; postings
    that round to 0 are dropped. Negative weights and impacts beyond int32 are refused.

    >>> v = SparseVectors.from_dense(np.array([[0.004, 1.25, 0.3]]))
    >>> q = quantize(v, 100)
    >>> q.indices.tolist(), q.impacts.tolist(), q.indptr.tolist()
    ([1, 2], [125, 30], [0, 2])
    """
    scale = check_scale(scale)
    values = vectors.values
    if values.size and float(values.min()) < 0:
        row = int(np.searchsorted(vectors.indptr, int(np.argmin(values)), side="right") - 1)
        raise InvalidInputError(
            f"row {row} has a negative weight ({float(values.min())}): impacts must be >= 0"
        )
    scaled = np.rint(values.astype(np.float64) * scale)
    if scaled.size and scaled.max() > _INT32_MAX:
        raise InvalidInputError(
            f"weight {float(values.max())} x scale {scale} exceeds the int32 impact range"
        )
    keep = scaled > 0
    kept_before = np.zeros(keep.size + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    indptr = kept_before[vectors.indptr]
    return Impacts(indptr, vectors.indices[keep], scaled[keep].astype(np.int32))


def term_names(vocab: Sequence[str] | None, dim: int) -> list[str]:
    """The term string of every dimension: the tokens, or ``"0"``, ``"1"``, ... without a
    vocabulary. Refuses a vocabulary of the wrong size or with a repeated token."""
    if vocab is None:
        return [str(i) for i in range(dim)]
    if len(vocab) != dim:
        raise VocabularyMismatchError(f"a vocabulary of {len(vocab)} tokens for dim {dim}")
    terms = list(vocab)
    if len(set(terms)) != len(terms):
        seen: set[str] = set()
        twice = next(t for t in terms if t in seen or seen.add(t))  # type: ignore[func-returns-value]
        raise VocabularyMismatchError(f"the vocabulary holds the token {twice!r} twice")
    return terms


def _line_safe(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise InvalidInputError(f"{what} {text!r} has a line break, which CIFF consumers refuse")
    return text


def _write_delimited(out: IO[bytes], message: Message) -> None:
    """``message`` prefixed by its varint-encoded size (protobuf's ``writeDelimitedTo``)."""
    body = message.SerializeToString()
    size = len(body)
    prefix = bytearray()
    while size >= 0x80:
        prefix.append((size & 0x7F) | 0x80)
        size >>= 7
    prefix.append(size)
    out.write(bytes(prefix) + body)


class CiffWriter(Target):
    """Writes the exported documents to one ``.ciff`` file (see the module docstring).

    ``scale``: impact = round(weight * scale). ``description``: text for the header (the
    quantisation is appended). ``overwrite``: replace an existing file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scale: Any = SCALE,
        description: str = "",
        overwrite: bool = False,
    ) -> None:
        self.scale = check_scale(scale)
        if not isinstance(description, str):
            raise InvalidInputError(f"description must be a str, got {type(description).__name__}")
        self.description = description
        self.overwrite = overwrite
        self.path = destination(path, overwrite)
        self._terms: list[str] = []
        self._dim = 0
        self._ids: list[str] = []
        self._seen: set[str] = set()
        self._rows: list[Impacts] = []
        self._tmp: IO[bytes] | None = None

    def begin(self, dim: int, vocab: Sequence[str] | None, fields: Fields) -> None:
        """Check the terms and open the temporary file next to the target."""
        self._terms = [_line_safe(t, "token") for t in term_names(vocab, dim)]
        self._dim = dim
        try:
            self._tmp = open(temp_sibling(self.path), "xb")  # noqa: SIM115 - closed in finish/close
        except OSError as err:
            raise unwritable(self.path, err) from None

    def write(self, ids: list[DocId], vectors: SparseVectors, payloads: list[Payload]) -> None:
        """Buffer one batch, quantised (payloads are ignored: CIFF has no place for them)."""
        if self._tmp is None:
            raise InvalidInputError("call begin() before write()")
        if vectors.dim != self._dim:
            raise DimensionMismatchError(f"vectors of dim {vectors.dim}, began with {self._dim}")
        keys = [_line_safe(str(doc_id), "id") for doc_id in check_batch(ids, vectors, payloads)]
        again = next((key for key in keys if key in self._seen), None)
        if again is not None:
            raise DuplicateIdError(f"id {again!r} written twice: CIFF holds each document once")
        rows = quantize(vectors, self.scale)
        self._seen.update(keys)
        self._ids.extend(keys)
        self._rows.append(rows)

    def finish(self) -> None:
        """Invert the buffered vectors, write the file and rename it into place."""
        if self._tmp is None:
            raise InvalidInputError("call begin() before finish()")
        tmp, self._tmp = self._tmp, None
        try:
            with tmp:
                self._write_to(tmp)
                tmp.flush()
                os.fsync(tmp.fileno())
            destination(self.path, self.overwrite)
            os.replace(tmp.name, self.path)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
        self._rows = []

    def close(self) -> None:
        """Drop an unfinished export's temporary file."""
        if self._tmp is not None:
            self._tmp.close()
            Path(self._tmp.name).unlink(missing_ok=True)
            self._tmp = None

    def _write_to(self, out: IO[bytes]) -> None:
        n = len(self._ids)
        lengths = np.zeros(n, np.int64)
        docs, terms, tfs = self._inverted(lengths)
        if lengths.size and lengths.max() > _INT32_MAX:
            raise InvalidInputError("a document's impacts add up beyond int32 (lower the scale)")
        used = np.unique(terms)
        starts = np.searchsorted(terms, used)
        ends = np.searchsorted(terms, used, side="right")
        order = sorted(range(used.size), key=lambda i: self._terms[used[i]])
        total = int(lengths.sum())
        header = Header(
            version=1,
            num_postings_lists=used.size,
            num_docs=n,
            total_postings_lists=used.size,
            total_docs=n,
            total_terms_in_collection=total,
            average_doclength=total / n if n else 0.0,
            description=f"{self.description} [sparsearch: tf = round(weight * scale), "
            f"scale={self.scale!r}; postings that round to 0 dropped; "
            "doclength = sum of impacts]".lstrip(),
        )
        _write_delimited(out, header)
        for i in order:
            doc_ids = docs[starts[i] : ends[i]]
            gaps = np.diff(doc_ids, prepend=0).tolist()
            impacts = tfs[starts[i] : ends[i]]
            postings = PostingsList(
                term=self._terms[used[i]],
                df=len(gaps),
                cf=int(impacts.sum(dtype=np.int64)),
                postings=[
                    {"docid": gap, "tf": tf} for gap, tf in zip(gaps, impacts.tolist(), strict=True)
                ],
            )
            _write_delimited(out, postings)
        for docid, (key, length) in enumerate(zip(self._ids, lengths.tolist(), strict=True)):
            _write_delimited(out, DocRecord(docid=docid, collection_docid=key, doclength=length))

    def _inverted(self, lengths: npt.NDArray[np.int64]) -> tuple[np.ndarray, ...]:
        """(docids, term ids, impacts) of every posting, ordered by term then docid; fills the
        document ``lengths``."""
        doc_parts, term_parts, tf_parts = [], [], []
        first = 0
        for rows in self._rows:
            counts = np.diff(rows.indptr)
            docs = np.repeat(np.arange(first, first + counts.size, dtype=np.int32), counts)
            np.add.at(lengths, docs, rows.impacts)
            doc_parts.append(docs)
            term_parts.append(rows.indices)
            tf_parts.append(rows.impacts)
            first += counts.size
        docs = np.concatenate(doc_parts) if doc_parts else np.zeros(0, np.int32)
        terms = np.concatenate(term_parts) if term_parts else np.zeros(0, np.int32)
        tfs = np.concatenate(tf_parts) if tf_parts else np.zeros(0, np.int32)
        order = np.argsort(terms, kind="stable")  # stable: docids stay ascending per term
        return docs[order], terms[order], tfs[order]


def from_uri(uri: TargetURI, **options: Any) -> CiffWriter:
    """``ciff:PATH[?scale=100&description=...&overwrite=true]`` (``options`` override the
    query)."""
    kinds = {"scale": float, "description": str, "overwrite": bool}
    return CiffWriter(uri.path, **uri.options(options, kinds))


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CiffIndex:
    """A CIFF file read back: its header, terms in file order with their ``df``/``cf``, the
    documents' ids and lengths in docid order, and the postings as forward CSR impacts."""

    header: Any
    terms: list[str]
    df: npt.NDArray[np.int64]
    cf: npt.NDArray[np.int64]
    doc_ids: list[str]
    doclengths: npt.NDArray[np.int64]
    impacts: Impacts

    @property
    def scale(self) -> float | None:
        """The quantisation scale a sparsearch export recorded in the description, if any."""
        found = re.search(r"scale=([0-9.e+-]+)", self.header.description)
        return float(found.group(1)) if found else None

    @property
    def vectors(self) -> SparseVectors:
        """The impacts as :class:`SparseVectors` over the terms (``vocab`` = :attr:`terms`)."""
        rows = self.impacts
        return SparseVectors(
            rows.indptr, rows.indices, rows.impacts.astype(np.float32), len(self.terms), self.terms
        )


def iter_messages(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The messages of a CIFF file in order: the ``Header``, its ``PostingsList`` messages, its
    ``DocRecord`` messages. Raises :class:`IndexCorruptError` on a truncated or bad file."""
    data = Path(path).read_bytes()
    pos = 0

    def take(cls: Any) -> Any:
        nonlocal pos
        size = shift = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise IndexCorruptError(f"{path}: truncated message size at byte {pos}")
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if pos + size > len(data):
            raise IndexCorruptError(f"{path}: a {cls.DESCRIPTOR.name} runs past the end")
        message = cls()
        try:
            message.ParseFromString(data[pos : pos + size])
        except DecodeError as err:
            raise IndexCorruptError(f"{path}: bad {cls.DESCRIPTOR.name} ({err})") from None
        pos += size
        return message

    header = take(Header)
    yield header
    for _ in range(header.num_postings_lists):
        yield take(PostingsList)
    for _ in range(header.num_docs):
        yield take(DocRecord)
    if pos != len(data):
        raise IndexCorruptError(f"{path}: {len(data) - pos} bytes after the last DocRecord")


def read_ciff(path: str | os.PathLike[str]) -> CiffIndex:
    """Read and check a CIFF file: ascending docids within each list (positive gaps), ``df`` and
    ``cf`` matching the postings, doc records in docid order. Raises
    :class:`IndexCorruptError` naming the first violation."""
    messages = iter_messages(path)
    header = next(messages)
    n = header.num_docs
    terms: list[str] = []
    stats: list[tuple[int, int]] = []
    docs, term_ids, tfs = [], [], []
    for t in range(header.num_postings_lists):
        plist = next(messages)
        pairs = np.array([(p.docid, p.tf) for p in plist.postings], np.int64).reshape(-1, 2)
        gaps, impacts = pairs[:, 0], pairs[:, 1]
        doc_ids = np.cumsum(gaps)
        if gaps.size and (gaps[0] < 0 or np.any(gaps[1:] <= 0) or doc_ids[-1] >= n):
            raise IndexCorruptError(f"{path}: term {plist.term!r} has docids out of order/range")
        if plist.df != gaps.size or plist.cf != int(impacts.sum()):
            raise IndexCorruptError(f"{path}: term {plist.term!r}: df/cf disagree with postings")
        terms.append(plist.term)
        stats.append((plist.df, plist.cf))
        docs.append(doc_ids)
        term_ids.append(np.full(gaps.size, t, np.int32))
        tfs.append(impacts)
    doc_keys: list[str] = []
    lengths = np.zeros(n, np.int64)
    for docid, record in enumerate(messages):
        if record.docid != docid:
            raise IndexCorruptError(f"{path}: doc record {docid} says docid {record.docid}")
        doc_keys.append(record.collection_docid)
        lengths[docid] = record.doclength
    all_docs = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    all_terms = np.concatenate(term_ids) if term_ids else np.zeros(0, np.int32)
    all_tfs = np.concatenate(tfs) if tfs else np.zeros(0, np.int64)
    order = np.lexsort((all_terms, all_docs))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(all_docs, minlength=n), out=indptr[1:])
    forward = Impacts(indptr, all_terms[order], all_tfs[order].astype(np.int32))
    df_cf = np.array(stats, np.int64).reshape(-1, 2)
    return CiffIndex(header, terms, df_cf[:, 0], df_cf[:, 1], doc_keys, lengths, forward)
