"""A segment's payloads as columns: JSON text to hand them back, typed columns to filter on.

Every payload is kept as compact UTF-8 JSON text, decoded only for the documents asked for
(arrays ``payload_offsets`` int64 and ``payload_data`` uint8: document ``i`` is
``data[offsets[i]:offsets[i + 1]]``, empty for no payload). Every top-level field is also a typed
column, chosen by what its non-null values are:

==========  ============================================  ===================================
type        non-null values                               arrays, by role
==========  ============================================  ===================================
keyword     strings                                       codes int32 (-1: missing or null),
                                                          words
integer     integers within int64 (not bools)             present bool, values int64
float       numbers, each exact in float64 (no NaN), not  present, values float64
            all integers within int64
boolean     bools                                         present, values uint8
keyword[]   strings and lists of strings                  present, offsets int64 (n + 1),
                                                          codes (one per element), words
integer[]   integers and lists of integers (int64)        present, offsets, values int64
empty       nothing to compare: only nulls and ``[]``      present
json        anything else: objects, other lists, NaN,     none: not filterable
            mixed types, integers that neither int64
            nor float64 holds exactly
==========  ============================================  ===================================

``words``, the sorted distinct strings that codes number, are two arrays like the text:
``words_offsets`` and ``words_data``. ``present`` marks documents whose field is set and not null;
element ``j`` of a list-valued (``[]``) column belongs to the document ``i`` with
``offsets[i] <= j < offsets[i + 1]``.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sparsearch.errors import IndexCorruptError, InvalidInputError
from sparsearch.index.kernel_types import I64, U8

FORMAT = 1
ROLES: dict[str, tuple[str, ...]] = {
    "keyword": ("codes", "words_offsets", "words_data"),
    "integer": ("present", "values"),
    "float": ("present", "values"),
    "boolean": ("present", "values"),
    "keyword[]": ("present", "offsets", "codes", "words_offsets", "words_data"),
    "integer[]": ("present", "offsets", "values"),
    "empty": ("present",),
    "json": (),
}
"""The arrays of each column type, by role."""
_DTYPES = {
    "codes": np.int32,
    "present": np.bool_,
    "offsets": np.int64,
    "words_offsets": np.int64,
    "words_data": np.uint8,
}
_VALUES = {"integer": np.int64, "float": np.float64, "boolean": np.uint8, "integer[]": np.int64}
_INT64 = np.iinfo(np.int64)
_EXACT = 1 << 53  # every integer up to this size is a float64
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Blobs:
    """Byte strings end to end: item ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""

    offsets: I64
    data: U8

    @classmethod
    def build(cls, items: Sequence[bytes]) -> Blobs:
        offsets = np.zeros(len(items) + 1, np.int64)
        np.cumsum([len(item) for item in items], out=offsets[1:])
        return cls(offsets, np.frombuffer(b"".join(items), np.uint8))

    def __len__(self) -> int:
        return int(self.offsets.size) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes()


@dataclass(frozen=True)
class Column:
    """One payload field of a segment of ``n`` documents: its type and arrays by role."""

    type: str
    n: int
    arrays: Mapping[str, np.ndarray]

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        """Per document: the field is set and not null."""
        if "present" in self.arrays:
            present: npt.NDArray[np.bool_] = self.arrays["present"]
            return present
        if "codes" in self.arrays:
            return np.asarray(self.arrays["codes"] >= 0)
        return np.zeros(self.n, bool)

    @property
    def elements(self) -> np.ndarray:
        """The values to compare: per document, or per list element in a ``[]`` column; codes
        for keywords."""
        return self.arrays["codes"] if "codes" in self.arrays else self.arrays["values"]

    def per_document(self, hits: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """The documents with at least one of their :attr:`elements` among ``hits``."""
        if "offsets" not in self.arrays:
            return hits & self.present
        seen = np.concatenate([[0], np.cumsum(hits, dtype=np.int64)])
        offsets = self.arrays["offsets"]
        return np.asarray(seen[offsets[1:]] > seen[offsets[:-1]])

    def code(self, word: str) -> int | None:
        """The code of ``word`` in a keyword column (``None``: no document holds it)."""
        words = Blobs(self.arrays["words_offsets"], self.arrays["words_data"])
        wanted = _utf8(word)
        i = bisect_left(words, wanted)
        return i if i < len(words) and words[i] == wanted else None


class PayloadColumns:
    """A segment's payloads: JSON text per document and a typed :class:`Column` per field."""

    def __init__(self, n: int, text: Blobs, columns: dict[str, Column]) -> None:
        self.n = n
        self.text = text
        self.columns = columns

    @classmethod
    def build(cls, payloads: Sequence[Mapping[str, Any] | None] | None, n: int) -> PayloadColumns:
        """The columns of ``n`` documents' payloads (``None``: no document has one)."""
        payloads = [None] * n if payloads is None else payloads
        if len(payloads) != n:
            raise InvalidInputError(f"{len(payloads)} payloads for {n} documents")
        text = Blobs.build([b"" if p is None else _utf8(_ENCODER.encode(p)) for p in payloads])
        by_field: dict[str, list[tuple[int, Any]]] = {}
        for doc, payload in enumerate(payloads):
            for name, value in (payload or {}).items():
                by_field.setdefault(name, []).append((doc, value))
        return cls(n, text, {name: _column(by_field[name], n) for name in sorted(by_field)})

    def payload(self, local: int) -> dict[str, Any] | None:
        """Document ``local``'s payload (``None`` where it has none)."""
        raw = self.text[local]
        if not raw:
            return None
        try:
            payload = json.loads(raw.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise IndexCorruptError(f"payload of document {local}: unreadable ({err})") from err
        if not isinstance(payload, dict):
            raise IndexCorruptError(f"payload of document {local}: not a JSON object")
        return payload

    def payloads(self, local: Sequence[int] | np.ndarray) -> list[dict[str, Any] | None]:
        """The payloads of documents ``local``, in that order (decoded as one JSON array)."""
        local = np.asarray(local, np.int64)
        offsets, data = self.text.offsets, self.text.data
        pieces = [
            data[start:end].tobytes() or b"null"
            for start, end in zip(offsets[local].tolist(), offsets[local + 1].tolist(), strict=True)
        ]
        try:
            out = json.loads(b"[" + b",".join(pieces) + b"]")
        except (ValueError, RecursionError):
            out = None
        if not isinstance(out, list) or len(out) != local.size:
            return [self.payload(int(i)) for i in local]  # names the unreadable document
        if not all(p is None or isinstance(p, dict) for p in out):
            return [self.payload(int(i)) for i in local]
        return out

    def fields(self) -> dict[str, str]:
        """Each field's column type."""
        return {name: column.type for name, column in self.columns.items()}

    def column(self, name: str) -> Column:
        """Field ``name``'s column; an ``empty`` one where no document has the field."""
        return self.columns.get(name) or Column("empty", self.n, {})

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every array by a file-safe name (``payload_offsets``, ``payload_data``, then
        ``field<i>_<role>``), and the JSON-able schema that :meth:`from_arrays` reads:
        ``{"format": 1, "fields": {name: {"type": type, "arrays": {role: array name}}}}``."""
        arrays: dict[str, np.ndarray] = {
            "payload_offsets": self.text.offsets,
            "payload_data": self.text.data,
        }
        fields: dict[str, Any] = {}
        for i, (name, column) in enumerate(self.columns.items()):
            names = {role: f"field{i}_{role}" for role in column.arrays}
            arrays.update({names[role]: array for role, array in column.arrays.items()})
            fields[name] = {"type": column.type, "arrays": names}
        return arrays, {"format": FORMAT, "fields": fields}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], schema: Mapping[str, Any], n: int
    ) -> PayloadColumns:
        """The columns again from :meth:`to_arrays`' output (arrays may be memory-mapped).
        Checks names, dtypes and per-document lengths; reads no document."""
        try:
            if schema["format"] != FORMAT:
                raise IndexCorruptError(f"payload columns of unknown format {schema['format']!r}")
            offsets = _checked(arrays["payload_offsets"], "payload_offsets", np.int64, n + 1)
            text = Blobs(offsets, _checked(arrays["payload_data"], "payload_data", np.uint8, None))
            columns = {
                name: _column_from(name, spec, arrays, n) for name, spec in schema["fields"].items()
            }
        except (KeyError, TypeError) as err:
            raise IndexCorruptError(f"payload columns: missing or malformed {err}") from err
        return cls(n, text, columns)


def exact_float(value: int) -> float | None:
    """``value`` as a float64 when that is exact, else ``None``."""
    try:
        near = float(value)
    except OverflowError:
        return None
    return near if near == value else None


def _column(items: list[tuple[int, Any]], n: int) -> Column:
    """The column of one field from its (document, value) pairs, documents ascending."""
    docs = [doc for doc, value in items if value is not None]
    values = [value for _, value in items if value is not None]
    kind = _infer(values)
    present = np.zeros(n, bool)
    present[docs] = True
    if kind == "json":
        return Column(kind, n, {})
    if kind == "empty":
        return Column(kind, n, {"present": present})
    if kind.endswith("[]"):
        lists = [value if isinstance(value, list) else [value] for value in values]
        counts = np.zeros(n, np.int64)
        counts[docs] = [len(one) for one in lists]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        elements = _elements(kind, [element for one in lists for element in one])
        return Column(kind, n, {"present": present, "offsets": offsets, **elements})
    elements = _elements(kind, values)
    if kind == "keyword":
        codes = np.full(n, -1, np.int32)
        codes[docs] = elements["codes"]
        return Column(kind, n, {**elements, "codes": codes})
    scattered = np.zeros(n, _VALUES[kind])
    scattered[docs] = elements["values"]
    return Column(kind, n, {"present": present, "values": scattered})


def _infer(values: list[Any]) -> str:
    """The column type of a field's non-null values (see the module's table). Types are JSON's:
    subclasses (``IntEnum``, ...) make a field ``json``."""
    lists = any(type(value) is list for value in values)
    elements = [e for v in values for e in (v if type(v) is list else (v,))] if lists else values
    types = set(map(type, elements))
    suffix = "[]" if lists else ""
    if not types:
        return "empty"
    if types == {str}:
        return "keyword" + suffix
    if types == {int} and _INT64.min <= min(elements) and max(elements) <= _INT64.max:
        return "integer" + suffix
    if lists:
        return "json"
    if types == {bool}:
        return "boolean"
    numbers_exact = types <= {int, float} and all(
        exact_float(e) is not None if type(e) is int else e == e  # NaN != NaN
        for e in elements
        if type(e) is float or not -_EXACT <= e <= _EXACT
    )
    return "float" if numbers_exact else "json"


def _elements(kind: str, values: list[Any]) -> dict[str, np.ndarray]:
    """``values`` as the arrays of ``kind``: codes and words for keywords, else values."""
    if not kind.startswith("keyword"):
        return {"values": np.array(values, _VALUES[kind])}
    words = sorted(set(values), key=_utf8)
    code = {word: i for i, word in enumerate(words)}
    blobs = Blobs.build([_utf8(word) for word in words])
    return {
        "codes": np.array([code[value] for value in values], np.int32),
        "words_offsets": blobs.offsets,
        "words_data": blobs.data,
    }


def _column_from(
    name: str, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray], n: int
) -> Column:
    kind, names = spec["type"], spec["arrays"]
    if kind not in ROLES or set(names) != set(ROLES[kind]):
        raise IndexCorruptError(f"payload column {name!r}: type {kind!r} with arrays {names}")
    per_doc = {"present": n, "offsets": n + 1}
    if not kind.endswith("[]"):
        per_doc.update(codes=n, values=n)
    return Column(
        kind,
        n,
        {
            role: _checked(
                arrays[names[role]],
                names[role],
                _DTYPES.get(role) or _VALUES[kind],
                per_doc.get(role),
            )
            for role in ROLES[kind]
        },
    )


def _checked(array: np.ndarray, name: str, dtype: type[np.generic], size: int | None) -> np.ndarray:
    if array.dtype != dtype or array.ndim != 1 or (size is not None and array.size != size):
        raise IndexCorruptError(
            f"payload array {name}: {array.dtype} of shape {array.shape}, "
            f"expected {np.dtype(dtype)} of length {size if size is not None else 'any'}"
        )
    return array


def _utf8(text: str) -> bytes:
    """UTF-8 that keeps lone surrogates (which JSON text may carry)."""
    return text.encode("utf-8", "surrogatepass")
