"""A segment's external ids as flat arrays, with a hash table that opens without per-id work.

Layout (the arrays of :meth:`IdColumn.to_arrays`, by name; :meth:`IdColumn.from_arrays` takes
them back as they are, read-only memmaps included):

* ``int`` columns: ``id_values`` (int64), document ``i``'s id is ``id_values[i]``;
* ``str`` columns: ``id_offsets`` (int64, n + 1 of them, from 0, non-decreasing, ending at the
  size of ``id_bytes``) and ``id_bytes`` (uint8): document ``i``'s id is
  ``id_bytes[id_offsets[i]:id_offsets[i + 1]]`` in UTF-8 (lone surrogates written as
  ``surrogatepass`` writes them, so every ``str`` round-trips);
* both: ``id_table`` (int32, or int64 from 2**31 documents), an open-addressing hash table of
  power-of-two size >= 2n: each slot holds a local ordinal or -1 (empty). An id's probe starts
  at slot ``hash & (size - 1)`` and walks forward (wrapping) to its ordinal or an empty slot.
  The hash of an int is splitmix64 of its value; of a str, FNV-1a 64 of its bytes finished by
  splitmix64's mixer.

Query ids are encoded once per batch (:func:`encode_ids`) and probed against every column; a
probe compares the ids themselves, so equal hashes cost only time. The kernels never read out of
bounds, even on damaged arrays (an index opened without verification): a probe stops after
``size`` slots, and ordinals and offsets are checked before they are read through.
:meth:`IdColumn.validate` checks every invariant in O(n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from sparsearch.errors import DuplicateIdError, IndexCorruptError, InvalidInputError
from sparsearch.index.kernel_types import I32, I64, U8, jit
from sparsearch.search import DocId

U64: TypeAlias = npt.NDArray[np.uint64]
#: the hash table's slots: int32, or int64 in columns of 2**31 ids or more
Table: TypeAlias = I32 | I64
IdKind: TypeAlias = Literal["int", "str"]

_ARRAYS: dict[str, tuple[str, ...]] = {
    "int": ("id_values", "id_table"),
    "str": ("id_offsets", "id_bytes", "id_table"),
}
_DTYPES = {"id_values": np.int64, "id_offsets": np.int64, "id_bytes": np.uint8}
_UTF8 = ("utf-8", "surrogatepass")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_FNV_BASIS = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_S27, _S30, _S31 = np.uint64(27), np.uint64(30), np.uint64(31)


# ---------------------------------------------------------------------------------- kernels
@jit
def _mix(x: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """splitmix64's finaliser: every bit of ``x`` reaches every bit of the result."""
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    mixed: np.uint64 = x ^ (x >> _S31)
    return mixed


@jit
def _splitmix64(values: I64) -> U64:  # pragma: no cover - compiled
    """splitmix64 of each value."""
    out = np.empty(values.size, np.uint64)
    for i in range(values.size):
        out[i] = _mix(np.uint64(values[i]) + _GOLDEN)
    return out


@jit
def _fnv1a64(offsets: I64, data: U8) -> U64:  # pragma: no cover - compiled
    """FNV-1a 64 of each string's bytes, mixed (valid offsets only)."""
    out = np.empty(offsets.size - 1, np.uint64)
    for i in range(out.size):
        h = _FNV_BASIS
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ data[j]) * _FNV_PRIME
        out[i] = _mix(h)
    return out


@jit
def _find_int(
    table: Table, values: I64, h: np.uint64, key: int | np.integer[Any]
) -> int:  # pragma: no cover - compiled
    """The slot holding ``key``'s ordinal, else the empty slot ending its probe, else -1."""
    size = table.size
    if size == 0:
        return -1
    slot: int = np.int64(h & np.uint64(size - 1))  # (numpy's stubs type uint64 math as Any)
    for _ in range(size):
        o = table[slot]
        if o < 0 or (o < values.size and values[o] == key):
            return slot
        slot = (slot + 1) & (size - 1)
    return -1


@jit
def _find_str(
    table: Table, offsets: I64, data: U8, h: np.uint64, key: U8
) -> int:  # pragma: no cover - compiled
    """The slot holding ``key``'s ordinal, else the empty slot ending its probe, else -1."""
    size = table.size
    if size == 0:
        return -1
    slot: int = np.int64(h & np.uint64(size - 1))  # (numpy's stubs type uint64 math as Any)
    for _ in range(size):
        o = table[slot]
        if o < 0:
            return slot
        if o < offsets.size - 1:
            a, b = offsets[o], offsets[o + 1]
            if 0 <= a and b - a == key.size and b <= data.size:
                j = 0
                while j < key.size and data[a + j] == key[j]:
                    j += 1
                if j == key.size:
                    return slot
        slot = (slot + 1) & (size - 1)
    return -1


@jit
def _fill_ints(table: Table, values: I64, hashes: U64) -> int:  # pragma: no cover - compiled
    """Insert ordinals ``0..n-1`` into an empty table; the first repeated ordinal, else -1."""
    for i in range(values.size):
        slot = _find_int(table, values, hashes[i], values[i])
        if table[slot] >= 0:
            return i
        table[slot] = i
    return -1


@jit
def _fill_strs(table: Table, offsets: I64, data: U8, hashes: U64) -> int:  # pragma: no cover
    """Insert ordinals ``0..n-1`` into an empty table; the first repeated ordinal, else -1."""
    for i in range(hashes.size):
        slot = _find_str(table, offsets, data, hashes[i], data[offsets[i] : offsets[i + 1]])
        if table[slot] >= 0:
            return i
        table[slot] = i
    return -1


@jit
def _lookup_ints(table: Table, values: I64, keys: I64, hashes: U64) -> I64:  # pragma: no cover
    """Each key's ordinal, or -1."""
    out = np.full(keys.size, -1, np.int64)
    for i in range(keys.size):
        slot = _find_int(table, values, hashes[i], keys[i])
        if slot >= 0:
            out[i] = max(table[slot], -1)
    return out


@jit
def _lookup_strs(
    table: Table, offsets: I64, data: U8, key_offsets: I64, key_data: U8, hashes: U64
) -> I64:  # pragma: no cover - compiled
    """Each key's ordinal, or -1."""
    out = np.full(hashes.size, -1, np.int64)
    for i in range(hashes.size):
        key = key_data[key_offsets[i] : key_offsets[i + 1]]
        slot = _find_str(table, offsets, data, hashes[i], key)
        if slot >= 0:
            out[i] = max(table[slot], -1)
    return out


# ---------------------------------------------------------------------------------- encoding
def _hash_ints(values: I64) -> U64:
    """The hashes of int ids (numpy scalars wrap silently too, when numba is off)."""
    with np.errstate(over="ignore"):
        return _splitmix64(values)


def _hash_strs(offsets: I64, data: U8) -> U64:
    """The hashes of str ids (numpy scalars wrap silently too, when numba is off)."""
    with np.errstate(over="ignore"):
        return _fnv1a64(offsets, data)


def _utf8(strs: Sequence[str]) -> tuple[I64, U8]:
    """``(offsets, bytes)`` of strings in UTF-8 (a TypeError if one is not a str)."""
    n = len(strs)
    data = np.frombuffer("\0".join(strs).encode(*_UTF8), np.uint8)
    ends = np.append(np.flatnonzero(data == 0), data.size)
    if ends.size == n:  # the separators are the only zeros: string i ends i separators early
        return np.append(0, ends - np.arange(n)), data[data != 0]
    raw = [s.encode(*_UTF8) for s in strs]  # some strings hold U+0000 (or there are none)
    lengths = np.array(list(map(len, raw)), np.int64)
    return np.append(0, np.cumsum(lengths)), np.frombuffer(b"".join(raw), np.uint8).copy()


def _split(ids: Sequence[Any]) -> tuple[I64, I64, U8, I64, list[int]]:
    """A batch's ``(str positions, str offsets, str bytes, int positions, ints)``.

    Ids must be str or int (numpy integers accepted, bools not).
    """
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError(f"ids must be a sequence of ids, not a single {type(ids).__name__}")
    every, none = np.arange(len(ids), dtype=np.int64), np.empty(0, np.int64)
    try:
        return (every, *_utf8(ids), none, [])
    except TypeError:  # not all str
        pass
    if set(map(type, ids)) <= {int}:
        return (none, *_utf8([]), every, list(ids))
    str_pos: list[int] = []
    strs: list[str] = []
    int_pos: list[int] = []
    ints: list[int] = []
    for i, doc_id in enumerate(ids):
        if isinstance(doc_id, str):
            str_pos.append(i)
            strs.append(doc_id)
        elif isinstance(doc_id, (int, np.integer)) and not isinstance(doc_id, bool):
            int_pos.append(i)
            ints.append(int(doc_id))
        else:
            raise InvalidInputError(f"ids must be str or int, got {doc_id!r}")
    return (np.array(str_pos, np.int64), *_utf8(strs), np.array(int_pos, np.int64), ints)


def _int64(ints: list[int]) -> I64:
    try:
        return np.array(ints, np.int64)
    except OverflowError:
        raise InvalidInputError("int ids must fit in int64 (-2**63 <= id < 2**63)") from None


@dataclass(frozen=True)
class EncodedIds:
    """A batch of query ids, encoded and hashed once for probing every segment's column.

    ``int_pos`` / ``str_pos`` are the batch positions of its int and str ids (a batch may mix
    them); an int outside int64 is in neither, as no column can hold it.
    """

    n: int
    int_pos: I64
    int_values: I64
    int_hashes: U64
    str_pos: I64
    str_offsets: I64
    str_bytes: U8
    str_hashes: U64

    def __len__(self) -> int:
        return self.n


def encode_ids(ids: Sequence[DocId]) -> EncodedIds:
    """Encode a batch of query ids (``str`` / ``int``; numpy integers accepted, bools not)."""
    str_pos, offsets, data, int_pos, ints = _split(ids)
    try:
        values = np.array(ints, np.int64)
    except OverflowError:  # ids outside int64: in no column
        pairs = zip(int_pos.tolist(), ints, strict=True)
        kept = [(p, v) for p, v in pairs if -(2**63) <= v < 2**63]
        int_pos = np.array([p for p, _ in kept], np.int64)
        values = np.array([v for _, v in kept], np.int64)
    return EncodedIds(
        n=len(ids),
        int_pos=int_pos,
        int_values=values,
        int_hashes=_hash_ints(values),
        str_pos=str_pos,
        str_offsets=offsets,
        str_bytes=data,
        str_hashes=_hash_strs(offsets, data),
    )


# ---------------------------------------------------------------------------------- the column
def _table_size(n: int) -> int:
    """The smallest power of two >= 2n (and >= 2)."""
    return 1 << max(1, (2 * n - 1).bit_length())


def _ordinals(ordinals: npt.ArrayLike, n: int) -> I64:
    """Local ordinals as int64, each in ``0..n-1`` (-1, "absent", is an error here)."""
    out = np.asarray(ordinals)
    if out.ndim != 1 or (out.size and out.dtype.kind not in "iu"):
        raise InvalidInputError(f"local ordinals must be a 1-d integer array, got {out!r}")
    out = out.astype(np.int64, copy=False)
    if out.size and (out.min() < 0 or out.max() >= n):
        raise IndexError(f"local ordinals must lie in 0..{n - 1}")
    return out


class IdColumn:
    """The external ids of one segment's documents, by local ordinal, all ``int`` or all ``str``.

    >>> column = IdColumn.from_ids(["a", "b", "ü"])
    >>> column.lookup(encode_ids(["ü", "z", 1])).tolist()
    [2, -1, -1]
    >>> column.decode(np.array([1, 0]))
    ['b', 'a']
    """

    __slots__ = ("kind", "_arrays", "_n")

    def __init__(self, kind: IdKind, arrays: dict[str, np.ndarray]) -> None:
        """Wrap checked arrays; use :meth:`from_ids`, :meth:`from_arrays` or :meth:`gather`."""
        self.kind: IdKind = kind
        self._arrays = arrays
        self._n = arrays["id_values"].size if kind == "int" else arrays["id_offsets"].size - 1

    # ------------------------------------------------------------------ build
    @classmethod
    def from_ids(cls, ids: Sequence[DocId]) -> IdColumn:
        """The column of a batch's ids, all ``int`` (int64) or all ``str``; empty: a str column.

        Raises :class:`InvalidInputError` on mixed kinds, other types or ints outside int64,
        and :class:`DuplicateIdError` on a repeated id.
        """
        str_pos, offsets, data, int_pos, ints = _split(ids)
        if str_pos.size and int_pos.size:
            raise InvalidInputError("a segment's ids must be all str or all int, not both")
        if int_pos.size:
            return cls._build("int", {"id_values": _int64(ints)})
        return cls._build("str", {"id_offsets": offsets, "id_bytes": data})

    @classmethod
    def gather(cls, parts: Sequence[tuple[IdColumn, npt.ArrayLike]]) -> IdColumn:
        """One new column of ``column[ordinals]`` for each part, in order (segment merges).

        The kind is that of the parts that contribute ids (of the first part when none does);
        an id picked twice is a :class:`DuplicateIdError`.
        """
        if not parts:
            raise InvalidInputError("gather needs at least one column")
        picked = [(column, _ordinals(o, len(column))) for column, o in parts]
        giving = [(column, o) for column, o in picked if o.size]
        kinds = {column.kind for column, _ in giving} or {picked[0][0].kind}
        if len(kinds) > 1:
            raise InvalidInputError("cannot gather int and str ids into one column")
        if kinds == {"int"}:
            values = [column._arrays["id_values"][o] for column, o in giving]
            return cls._build(
                "int", {"id_values": np.concatenate([np.empty(0, np.int64), *values])}
            )
        lengths: list[I64] = [np.empty(0, np.int64)]
        chunks: list[U8] = [np.empty(0, np.uint8)]
        for column, o in giving:
            starts, ends = column._spans(o)
            lengths.append(ends - starts)
            # byte k of the part's strings is byte starts[s] + (k - first[s]) of its column
            first = np.cumsum(lengths[-1]) - lengths[-1]
            k = np.arange(first[-1] + lengths[-1][-1], dtype=np.int64)
            chunks.append(column._arrays["id_bytes"][k + np.repeat(starts - first, lengths[-1])])
        offsets = np.append(0, np.cumsum(np.concatenate(lengths)))
        return cls._build("str", {"id_offsets": offsets, "id_bytes": np.concatenate(chunks)})

    @classmethod
    def _build(cls, kind: IdKind, arrays: dict[str, np.ndarray]) -> IdColumn:
        """Add the hash table to fresh key arrays."""
        column = cls(kind, arrays)
        n = len(column)
        table = np.full(_table_size(n), -1, np.int32 if n < 2**31 else np.int64)
        if kind == "int":
            values = arrays["id_values"]
            repeat = _fill_ints(table, values, _hash_ints(values))
        else:
            offsets, data = arrays["id_offsets"], arrays["id_bytes"]
            repeat = _fill_strs(table, offsets, data, _hash_strs(offsets, data))
        if repeat >= 0:
            raise DuplicateIdError(f"id {column.decode(np.array([repeat]))[0]!r} appears twice")
        arrays["id_table"] = table
        return column

    # ------------------------------------------------------------------ storage
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name (what goes to disk); see the module docstring."""
        return dict(self._arrays)

    @classmethod
    def from_arrays(cls, kind: str, arrays: dict[str, np.ndarray]) -> IdColumn:
        """A column over stored arrays, as they are (no copy, no per-id work).

        Checks names, dtypes and sizes (O(1)); :meth:`validate` checks the contents.
        """
        if kind not in _ARRAYS:
            raise IndexCorruptError(f"unknown id column kind {kind!r}")
        names = _ARRAYS[kind]
        missing = [name for name in names if name not in arrays]
        if missing:
            raise IndexCorruptError(f"id column arrays missing: {', '.join(missing)}")
        kept = {name: arrays[name] for name in names}
        for name, array in kept.items():
            dtypes = (np.int32, np.int64) if name == "id_table" else (_DTYPES[name],)
            if array.ndim != 1 or array.dtype not in dtypes or not array.flags.c_contiguous:
                want = " or ".join(np.dtype(d).name for d in dtypes)
                raise IndexCorruptError(
                    f"{name}: {array.ndim}-d {array.dtype}, not contiguous 1-d {want}"
                )
        size = kept["id_table"].size
        column = cls("int" if kind == "int" else "str", kept)
        if column._n < 0 or size & (size - 1) or size < max(2, 2 * column._n):
            raise IndexCorruptError(f"an id table of {size} slots for {column._n} ids")
        return column

    def validate(self) -> None:
        """Check every invariant (O(n), vectorised); raise :class:`IndexCorruptError` if broken."""
        n, table = len(self), self._arrays["id_table"]
        if self.kind == "str":
            offsets, data = self._arrays["id_offsets"], self._arrays["id_bytes"]
            if offsets[0] != 0 or offsets[-1] != data.size or np.any(offsets[1:] < offsets[:-1]):
                raise IndexCorruptError("id offsets must rise from 0 to the size of id_bytes")
            starts = offsets[:-1][offsets[1:] > offsets[:-1]]
            if np.any(data[starts] & 0xC0 == 0x80):  # a string starting inside a character
                raise IndexCorruptError("an id starts inside a UTF-8 character")
            try:
                data.tobytes().decode(*_UTF8)
            except UnicodeDecodeError as err:
                raise IndexCorruptError(f"id bytes are not UTF-8: {err}") from None
        if np.any(table < -1) or np.any(table >= n) or np.count_nonzero(table >= 0) != n:
            raise IndexCorruptError(f"the id table must hold each of the {n} ordinals once")
        if self.kind == "int":
            values = self._arrays["id_values"]
            found = _lookup_ints(table, values, values, _hash_ints(values))
        else:
            offsets, data = self._arrays["id_offsets"], self._arrays["id_bytes"]
            found = _lookup_strs(table, offsets, data, offsets, data, _hash_strs(offsets, data))
        if not np.array_equal(found, np.arange(n)):
            raise IndexCorruptError("the id table does not find every id at its own ordinal")

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes of all the arrays, hash table included."""
        return sum(array.nbytes for array in self._arrays.values())

    def lookup(self, encoded: EncodedIds) -> I64:
        """Each query id's local ordinal, or -1 (ids of the other kind are all -1)."""
        out = np.full(encoded.n, -1, np.int64)
        table = self._arrays["id_table"]
        if self.kind == "int" and encoded.int_pos.size:
            out[encoded.int_pos] = _lookup_ints(
                table, self._arrays["id_values"], encoded.int_values, encoded.int_hashes
            )
        elif self.kind == "str" and encoded.str_pos.size:
            out[encoded.str_pos] = _lookup_strs(
                table,
                self._arrays["id_offsets"],
                self._arrays["id_bytes"],
                encoded.str_offsets,
                encoded.str_bytes,
                encoded.str_hashes,
            )
        return out

    def decode(self, ordinals: npt.ArrayLike) -> list[DocId]:
        """The ids of some local ordinals (the documents a search or get returns)."""
        o = _ordinals(ordinals, len(self))
        if self.kind == "int":
            ints: list[DocId] = self._arrays["id_values"][o].tolist()
            return ints
        return _decode(self._arrays["id_bytes"].data, *self._spans(o))

    def to_list(self) -> list[DocId]:
        """Every id, in ordinal order (exports)."""
        if self.kind == "int":
            ints: list[DocId] = self._arrays["id_values"].tolist()
            return ints
        return _decode(self._arrays["id_bytes"].tobytes(), *self._spans(np.arange(len(self))))

    def to_numpy(self) -> np.ndarray:
        """Every id in a new array: int64 for an int column, object (of str) for a str column."""
        if self.kind == "int":
            return np.array(self._arrays["id_values"])
        out = np.empty(len(self), object)
        out[:] = self.to_list()
        return out

    def _spans(self, ordinals: I64) -> tuple[I64, I64]:
        """``(starts, ends)`` of some strings in ``id_bytes``, checked to lie inside it."""
        offsets = self._arrays["id_offsets"]
        starts, ends = offsets[ordinals], offsets[ordinals + 1]
        if starts.size and (
            starts.min() < 0 or ends.max() > self._arrays["id_bytes"].size or np.any(ends < starts)
        ):
            raise IndexCorruptError("id offsets out of order or past the end of id_bytes")
        return starts, ends


def _decode(buffer: bytes | memoryview, starts: I64, ends: I64) -> list[DocId]:
    """The strings ``buffer[starts[i]:ends[i]]``; bytes not UTF-8 are an IndexCorruptError."""
    try:
        spans = zip(starts.tolist(), ends.tolist(), strict=True)
        return [str(buffer[a:b], *_UTF8) for a, b in spans]
    except UnicodeDecodeError as err:
        raise IndexCorruptError(f"an id is not UTF-8: {err}") from None
