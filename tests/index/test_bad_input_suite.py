"""Over a thousand bad or borderline inputs to `SparseVectors` and every `SparseIndex` call.

The rule, for every case: the call either succeeds with a correct result, or raises a named error
(a :class:`~sparsearch.errors.SparsearchError` subclass) -- never a builtin exception of Python,
numpy, scipy or json, never a crash, never a hang. After a call that raised, the index is exactly
as before: the same ids in the same order, the same vectors (``get``), payloads, search results on
a fixed query set (with payloads, filtered by ids, filtered by a payload field), membership, term
statistics and ``stats()``. An index with a path also reopens to that state, its files are
unchanged and foreign files in its folder (and in the working directory) are untouched.

The cases are explicit tables crossed with the entry points, generated deterministically at import
(``CASES``): the count is exact and every run is the same; a small derandomised hypothesis test adds
random CSR arrays on top. Every case gets its own fixture index, built afresh (or copied from a saved
template for the on-disk ones), and its own scratch folder as the working directory, so no case sees
what another did. The cases that can crash the process or exhaust memory (unchecked arrays reaching
the compiled kernels, huge sizes, an int taken for a file descriptor) run in a forked child under a
memory ceiling and a timeout: a crash or a hang is reported as such. A failure names the case, the
call, and what leaked or what changed.

What a *correct* result is comes from an independent reference here (`Model` and the ``ref_*``
functions), not from the code under test:

* ids are plain ``str`` / ``int``: numpy integers and strings are normalised to them (and come
  back plain, subclasses included); ``bool``, floats and everything else are not ids: a search
  filter may ignore them like unknown ids, ``x in index`` is False for them (it agrees with
  ``get``); an index holding one kind of id may refuse the other kind (typed ids), or accept it;
* CSR arrays are kept exactly: integer arrays must be integer-typed and in range (a float index,
  an int64 that wraps to int32, a string dimension silently coerced is not a correct result);
  weights must be real (booleans count as 0 / 1) and finite in float32; a size or count (``k``,
  ``dim``, ``threads``, ``batch_size``, ``max_segments``) is an integer, not a bool or a float;
* a payload is ``None`` or a mapping with string keys (at every depth) that JSON can encode; it
  comes back as its JSON round trip, in memory and after reopening alike.
"""

from __future__ import annotations

import enum
import faulthandler
import gc
import hashlib
import json
import numbers
import operator
import os
import resource
import select
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsearch.errors import SparsearchError
from sparsearch.index import SparseIndex
from sparsearch.search import Filter, SearchParams, as_filter
from sparsearch.sparse import SparseVectors, load_npz, save_npz
from tests.index.brute import brute_force

DIM = 8
VOCAB = tuple(f"tok{i}" for i in range(DIM))
OTHER_VOCAB = tuple(f"other{i}" for i in range(DIM))
MIN_CASES = 1000
CHILD_TIMEOUT_S = 60.0
MEMORY_HEADROOM = 3 << 30  # bytes of address space a child may take beyond what it inherits
INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()


class _Str(str):
    """A str subclass (a plain str is what comes back)."""


class _Int(int):
    """An int subclass."""


class _Num(enum.IntEnum):
    SEVEN = 7
    NINE = 9


def deep_list(depth: int) -> Any:
    """A list nested ``depth`` deep, built without recursion."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"d": value}
    return value


def circular() -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    return value


# ====================================================================== safe text
def srepr(value: Any, limit: int = 160) -> str:
    """repr that never raises (huge ints, deep nesting) and stays short."""
    try:
        text = repr(value)
    except Exception as err:  # noqa: BLE001 - any repr failure is reported, not raised
        text = f"<{type(value).__name__}: repr raised {type(err).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def describe(err: BaseException) -> str:
    try:
        text = str(err)
    except Exception as inner:  # noqa: BLE001
        text = f"<str() raised {type(inner).__name__}>"
    text = text if len(text) <= 300 else text[:300] + "..."
    return f"{type(err).__module__}.{type(err).__qualname__}: {text}"


# ====================================================================== canonical forms
@dataclass(frozen=True)
class _Key:
    key: Any


_FLAT = {str, int, bool, type(None)}


def _flat_token(x: Any, strict: bool) -> tuple[Any, ...]:
    """What :func:`canon` makes of a plain str, int, bool or None."""
    if x is None:
        return ("none",)
    if type(x) is bool:
        return ("bool", x)
    return (type(x).__name__, type(x).__name__ if strict else "", x)


def canon(value: Any, strict: bool = False) -> tuple[Any, ...]:
    """A comparable token sequence of a JSON-like value, built without recursion.

    NaN equals NaN; ``strict`` tells plain ``str`` / ``int`` from their subclasses (ids must
    come back plain); tuples differ from lists (they do for ``==``).
    """
    out: list[Any] = []
    stack: list[Any] = [value]
    end = object()
    while stack:
        item = stack.pop()
        if item is end:
            out.append("end")
        elif isinstance(item, _Key):
            out.append(("key", canon(item.key, strict)))
        elif item is None:
            out.append(("none",))
        elif isinstance(item, (bool, np.bool_)):
            out.append(("bool", bool(item)))
        elif isinstance(item, (int, np.integer)):
            out.append(("int", type(item).__name__ if strict else "", int(item)))
        elif isinstance(item, (float, np.floating)):
            out.append(("float", "nan" if item != item else float(item)))
        elif isinstance(item, str):
            out.append(("str", type(item).__name__ if strict else "", str(item)))
        elif isinstance(item, (list, tuple, np.ndarray)):
            seq = item.tolist() if isinstance(item, np.ndarray) else item
            out.append((type(item).__name__, len(seq)))
            if all(type(x) in _FLAT for x in seq):  # the common case, without the stack
                out.extend(_flat_token(x, strict) for x in seq)
                out.append("end")
            else:
                stack.append(end)
                stack.extend(reversed(seq))
        elif isinstance(item, Mapping):
            out.append(("dict", len(item)))
            stack.append(end)
            for key, val in reversed(list(item.items())):
                stack.append(val)
                stack.append(_Key(key))
        else:
            out.append(("other", type(item).__name__, srepr(item)))
    return tuple(out)


def bits(values: Iterable[float]) -> tuple[int, ...]:
    return tuple(np.asarray(list(values), np.float32).view(np.uint32).tolist())


def score_key(scores: np.ndarray) -> tuple[Any, ...]:
    return tuple(
        tuple("nan" if x != x else float(x) for x in row) for row in np.asarray(scores).tolist()
    )


# ====================================================================== reference: ids
def ref_id(value: Any) -> Any:
    """The plain id a value stands for, or INVALID."""
    if isinstance(value, (bool, np.bool_)):
        return INVALID
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return INVALID


def ref_ids(value: Any) -> Any:
    """The plain ids of a collection (in iteration order), or INVALID."""
    if isinstance(value, (str, bytes)):
        return INVALID
    try:
        items = list(value)
    except Exception:  # noqa: BLE001 - not iterable
        return INVALID
    out = [ref_id(x) for x in items]
    return INVALID if any(x is INVALID for x in out) else out


# ====================================================================== reference: payloads
def ref_payload(value: Any) -> Any:
    """A payload's JSON round trip, or INVALID (non-str keys anywhere, not JSON-encodable)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return INVALID
    stack: list[Any] = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > 200_000:
            return INVALID
        if isinstance(item, Mapping):
            if not all(isinstance(k, str) for k in item):
                return INVALID
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    try:
        return json.loads(json.dumps(dict(value)))
    except (TypeError, ValueError, RecursionError):
        return INVALID


def matches(payload: Any, cond: Mapping[str, Any] | None) -> bool:
    if not cond:
        return True
    if payload is None:
        return False
    return all(k in payload and payload[k] == v for k, v in cond.items())


# ====================================================================== reference: arrays
def _has_bool_or_str(value: Any, bools: bool = True) -> bool:
    if isinstance(value, (list, tuple)):
        kinds = (bool, np.bool_, str, bytes) if bools else (str, bytes)
        return any(isinstance(x, kinds) for x in value)
    return False


def ref_int_array(value: Any, low: int, high: int) -> Any:
    """The exact ints of a 1-d integer array within [low, high), or INVALID."""
    if _has_bool_or_str(value) or isinstance(value, (str, bytes)):
        return INVALID
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged or otherwise unconvertible
        return INVALID
    if arr.ndim != 1:
        return INVALID
    if arr.dtype.kind in "iu":
        ints = [int(x) for x in arr.tolist()]
    elif arr.dtype.kind == "O":
        items = arr.tolist()
        if any(
            isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) for x in items
        ):
            return INVALID
        ints = [int(x) for x in items]
    elif arr.dtype.kind == "f" and arr.size == 0 and isinstance(value, (list, tuple)):
        ints = []  # np.asarray([]) is float64: an empty list is fine
    else:
        return INVALID
    return ints if all(low <= x < high for x in ints) else INVALID


def _real(x: Any) -> bool:
    """A real number (booleans count as 0 / 1 weights; complex and strings do not)."""
    return isinstance(x, (numbers.Real, Decimal, np.bool_))


def ref_float_array(value: Any) -> Any:
    """Float32 weights (bit patterns) of a 1-d real array, all finite, or INVALID."""
    if _has_bool_or_str(value, bools=False) or isinstance(value, (str, bytes)):
        return INVALID
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        return INVALID
    if arr.ndim != 1:
        return INVALID
    if arr.dtype.kind == "O":
        if not all(_real(x) for x in arr.tolist()):
            return INVALID
        try:
            arr = np.asarray([float(x) for x in arr.tolist()], np.float64)
        except OverflowError:
            return INVALID  # an int beyond any float: infinite in float32
    elif arr.dtype.kind not in "iufb":
        return INVALID
    with np.errstate(all="ignore"):
        f32 = arr.astype(np.float32)
    return bits(f32.tolist()) if np.isfinite(f32).all() else INVALID


def ref_dim(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return INVALID
    try:
        dim = operator.index(value)
    except TypeError:
        return INVALID
    return dim if dim > 0 else INVALID


def ref_vocab(value: Any, dim: Any) -> Any:
    """A vocabulary as a tuple of str of length ``dim``, None, or INVALID."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, set, frozenset, Mapping)):
        return INVALID
    try:
        tokens = list(value)
    except Exception:  # noqa: BLE001
        return INVALID
    if not all(isinstance(t, str) for t in tokens):
        return INVALID
    if dim is not None and len(tokens) != dim:
        return INVALID
    return tuple(tokens)


def ref_csr(indptr: Any, indices: Any, values: Any, dim: Any, vocab: Any = None) -> Any:
    """(indptr, indices, value bits, dim, vocab) of valid CSR arguments, or INVALID."""
    d = ref_dim(dim)
    if d is INVALID:
        return INVALID
    ip = ref_int_array(indptr, 0, 2**63)
    ix = ref_int_array(indices, 0, min(d, 2**31))
    vs = ref_float_array(values)
    voc = ref_vocab(vocab, d)
    if INVALID in (ip, ix, vs, voc) or not ip or len(ix) != len(vs):
        return INVALID
    if ip[0] != 0 or ip[-1] != len(ix) or any(b < a for a, b in zip(ip, ip[1:], strict=False)):
        return INVALID
    for a, b in zip(ip, ip[1:], strict=False):
        row = ix[a:b]
        if any(y <= x for x, y in zip(row, row[1:], strict=False)):
            return INVALID
    return ip, ix, vs, d, voc


def sv_rows(vectors: SparseVectors) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each row's (indices, value bits)."""
    out = []
    ip = np.asarray(vectors.indptr).tolist()
    ix = np.asarray(vectors.indices).tolist()
    vs = np.asarray(vectors.values, np.float32)
    for a, b in zip(ip, ip[1:], strict=False):
        out.append((tuple(ix[a:b]), bits(vs[a:b].tolist())))
    return out


def check_csr(got: Any, want: tuple[Any, ...]) -> None:
    """``got`` is a SparseVectors holding exactly the reference CSR ``want``."""
    ip, ix, vs, d, voc = want
    assert isinstance(got, SparseVectors), f"returned {srepr(got)}"
    assert got.indptr.dtype == np.int64 and got.indices.dtype == np.int32, "dtypes"
    assert got.values.dtype == np.float32, "values dtype"
    assert got.indptr.tolist() == ip, f"indptr {srepr(got.indptr.tolist())} != {srepr(ip)}"
    assert got.indices.tolist() == ix, f"indices {srepr(got.indices.tolist())} != {srepr(ix)}"
    assert bits(got.values.tolist()) == vs, f"values {srepr(got.values.tolist())}"
    assert type(got.dim) is int and got.dim == d, f"dim {srepr(got.dim)} != {d}"
    assert got.vocab == voc, f"vocab {srepr(got.vocab)} != {srepr(voc)}"


def rows_to_csr(rows: list[tuple[tuple[int, ...], tuple[int, ...]]], dim: int, vocab: Any) -> Any:
    ip = [0]
    ix: list[int] = []
    vs: list[int] = []
    for indices, vbits in rows:
        ix.extend(indices)
        vs.extend(vbits)
        ip.append(len(ix))
    return ip, ix, tuple(vs), dim, vocab


# ====================================================================== reference: the index
@dataclass(frozen=True)
class Doc:
    id: Any
    indices: tuple[int, ...]
    vbits: tuple[int, ...]
    payload: Any = None


@dataclass(frozen=True)
class Model:
    """What an index should hold: its documents in insertion order, dim, vocab, parameters."""

    dim: int | None
    vocab: tuple[str, ...] | None
    docs: tuple[Doc, ...] = ()
    max_segments: int = 16
    fresh: bool = True  # nothing added yet: the first add fixes dim and vocab

    @property
    def ids(self) -> list[Any]:
        return [d.id for d in self.docs]

    def doc(self, doc_id: Any) -> Doc:
        return next(d for d in self.docs if d.id == doc_id)

    def has(self, doc_id: Any) -> bool:
        return doc_id is not INVALID and any(d.id == doc_id for d in self.docs)

    def added(self, docs: list[Doc], dim: int, vocab: Any) -> Model:
        return Model(
            dim=self.dim if self.dim is not None else dim,
            vocab=self.vocab if self.vocab is not None else (vocab if self.fresh else None),
            docs=self.docs + tuple(docs),
            max_segments=self.max_segments,
            fresh=self.fresh and not docs,
        )

    def upserted(self, docs: list[Doc], dim: int, vocab: Any) -> Model:
        new = {d.id for d in docs}
        kept = replace(self, docs=tuple(d for d in self.docs if d.id not in new))
        return kept.added(docs, dim, vocab)

    def deleted(self, ids: Iterable[Any]) -> Model:
        gone = set(ids)
        return replace(self, docs=tuple(d for d in self.docs if d.id not in gone))


def make_docs(ids: list[Any], vectors: SparseVectors, payloads: Any) -> list[Doc]:
    rows = sv_rows(vectors)
    pays = [None] * len(ids) if payloads is None else [ref_payload(p) for p in payloads]
    return [Doc(i, r[0], r[1], p) for i, r, p in zip(ids, rows, pays, strict=True)]


def model_vectors(model: Model, dim: int) -> tuple[SparseVectors, list[Any]]:
    ip = [0]
    ix: list[int] = []
    vs: list[int] = []
    for d in model.docs:
        ix.extend(d.indices)
        vs.extend(d.vbits)
        ip.append(len(ix))
    values = np.asarray(vs, np.uint32).view(np.float32)
    return SparseVectors(np.array(ip), np.array(ix), values, dim, validate=False), model.ids


# ====================================================================== snapshots
def queries_for(dim: int | None) -> SparseVectors:
    """The fixed query set of a snapshot: single terms, every term, a negative weight, nothing."""
    d = dim or DIM
    rows: list[dict[int, float]] = [{t: 1.0} for t in range(0, min(d, DIM), 3)]
    rows.append({t: 0.5 for t in range(min(d, DIM))})
    rows.append({})
    if d > 5:
        rows.append({1: 1.0, 2: 0.5, 5: -1.0})
    return SparseVectors.from_dicts(rows, dim=d)


@dataclass(frozen=True)
class Setting:
    name: str
    k: int
    params: Callable[[], SearchParams]
    chosen: tuple[Any, ...] | None = None
    cond: Mapping[str, Any] | None = None
    payloads: bool = False


def settings_for(model: Model) -> list[Setting]:
    """The searches of a snapshot: plain with payloads, by ids, by a payload field it holds."""
    chosen = tuple(model.ids[:2] + model.ids[-1:])
    out = [
        Setting(
            "k15+payloads", 15, lambda: SearchParams(return_payloads=True, threads=1), payloads=True
        ),
        Setting(
            "ids", 5, lambda: SearchParams(filter=Filter(ids=chosen), threads=1), chosen=chosen
        ),
    ]
    field = next(
        (
            (key, value)
            for d in model.docs
            if isinstance(d.payload, dict)
            for key, value in d.payload.items()
            if type(value) in (str, int)
        ),
        None,
    )
    if field is not None:
        cond = {field[0]: field[1]}
        out.append(
            Setting(
                "payload-field",
                4,
                lambda: SearchParams(filter={"payload": cond}, threads=1),
                cond=cond,
            )
        )
    return out


def hits_key(hits: Any, k: int, with_payloads: bool) -> tuple[Any, ...]:
    """The comparable content of Hits: the first columns exactly, then the padding."""
    cols = min(k, 32)
    ids, scores = hits.ids, hits.scores
    shape = (tuple(ids.shape), tuple(scores.shape), str(scores.dtype))
    if ids.dtype.kind in "iu":  # an index of int ids may answer with an int64 array, -1 padded
        padding = np.isneginf(scores)
        ids = ids.astype(object)
        ids[padding] = None
    tail_ok = bool(np.equal(ids[:, cols:], None).all() and np.isneginf(scores[:, cols:]).all())
    pays = None
    if with_payloads:
        pays = canon(hits.payloads[:, :cols].tolist()) if hits.payloads is not None else "missing"
    elif hits.payloads is not None:
        pays = "unexpected payloads"
    return (
        shape,
        canon(ids[:, :cols].tolist(), strict=True),
        score_key(scores[:, :cols]),
        tail_ok,
        pays,
    )


def expected_hits(
    model: Model,
    queries: SparseVectors,
    k: int,
    chosen: Iterable[Any] | None = None,
    cond: Mapping[str, Any] | None = None,
    with_payloads: bool = False,
) -> tuple[Any, ...]:
    dim = queries.dim
    docs, ids = model_vectors(model, dim)
    chosen_set = None if chosen is None else {c for c in chosen if c is not INVALID}
    allowed = np.array(
        [
            (chosen_set is None or d.id in chosen_set) and matches(d.payload, cond)
            for d in model.docs
        ],
        bool,
    )
    cols = min(k, 32)
    ref_ids, ref_scores = brute_force(docs, ids, queries, cols, allowed)
    shape = ((queries.n, k), (queries.n, k), "float32")
    pays = None
    if with_payloads:
        by_id = {d.id: d.payload for d in model.docs}
        pays = canon([[None if i is None else by_id[i] for i in row] for row in ref_ids.tolist()])
    return (shape, canon(ref_ids.tolist(), strict=True), score_key(ref_scores), True, pays)


SKIP = "skip"


def grab(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - recorded: a snapshot part that raised
        return ("raised", type(err).__name__)


def stats_key(index: SparseIndex) -> dict[str, Any]:
    stats = dict(index.stats())
    stats["path"] = stats.get("path") is not None
    return stats


def plain_list(ids: Any) -> list[Any]:
    """A list of ids as handed back (an int64 array of int ids counts as plain ints)."""
    return ids.tolist() if isinstance(ids, np.ndarray) else list(ids)


def snapshot(index: SparseIndex, model: Model) -> dict[str, Any]:
    """Everything observable about an index, with the query set of ``model``."""
    queries = queries_for(model.dim)
    snap: dict[str, Any] = {
        "len": grab(lambda: len(index)),
        "ids": grab(lambda: canon(plain_list(index.ids()), strict=True)),
        "contains": grab(lambda: [d in index for d in model.ids]),
        "dim": grab(lambda: index.dim),
        "vocab": grab(lambda: index.vocab),
        "rows": grab(lambda: (lambda g: (g.dim, g.vocab, sv_rows(g)))(index.get(index.ids()))),
        "payloads": grab(lambda: canon(index.get_payloads(index.ids()))),
        "term_stats": grab(lambda: (lambda t: (t.n_docs, t.doc_freq.tolist()))(index.term_stats())),
        "stats": grab(lambda: stats_key(index)),
    }
    for s in settings_for(model):
        snap[f"search:{s.name}"] = grab(
            lambda s=s: hits_key(index.search(queries, s.k, params=s.params()), s.k, s.payloads)
        )
    return snap


def model_snapshot(model: Model) -> dict[str, Any]:
    """What :func:`snapshot` should see for an index holding ``model``."""
    queries = queries_for(model.dim)
    has_dim = model.dim is not None
    snap: dict[str, Any] = {
        "len": len(model.docs),
        "ids": canon(model.ids, strict=True),
        "contains": [True] * len(model.docs),
        "dim": model.dim,
        "vocab": model.vocab,
        "rows": (model.dim, model.vocab, [(d.indices, d.vbits) for d in model.docs])
        if has_dim
        else SKIP,
        "payloads": canon([d.payload for d in model.docs]),
        "term_stats": SKIP,
        "stats": SKIP,
    }
    if has_dim and model.dim <= 1 << 20:
        freq = np.zeros(model.dim, np.int64)
        for d in model.docs:
            freq[list(d.indices)] += 1
        snap["term_stats"] = (len(model.docs), freq.tolist())
    for s in settings_for(model):
        snap[f"search:{s.name}"] = expected_hits(model, queries, s.k, s.chosen, s.cond, s.payloads)
    return snap


def model_stats_ok(got: Any, model: Model) -> bool:
    if not isinstance(got, dict):
        return False
    from sparsearch.sparse import vocab_hash

    try:
        want_hash = vocab_hash(model.vocab)
    except Exception:  # noqa: BLE001
        want_hash = got.get("vocab_hash")
    return (
        got.get("documents") == len(model.docs)
        and got.get("dim") == model.dim
        and got.get("vocab_hash") == want_hash
        and got.get("max_segments") == model.max_segments
    )


def diff_snapshots(
    got: dict[str, Any], want: dict[str, Any], model: Model | None = None
) -> list[str]:
    """The parts that differ (``want`` from the model when ``model`` is given)."""
    out = []
    for key, value in want.items():
        if key == "stats" and model is not None:
            if not model_stats_ok(got.get(key), model):
                out.append(f"stats: {srepr(got.get(key), 300)}")
            continue
        if isinstance(value, str) and value == SKIP:
            continue
        if got.get(key) != value:
            out.append(f"{key}: {first_difference(got.get(key), value)}")
    return out


def first_difference(got: Any, want: Any) -> str:
    """Where two snapshot parts first differ, in a few words."""
    if isinstance(got, (tuple, list)) and isinstance(want, (tuple, list)):
        flat_got, flat_want = list(_flatten(got)), list(_flatten(want))
        for i, (a, b) in enumerate(zip(flat_got, flat_want, strict=False)):
            if a != b:
                return f"at item {i}: got {srepr(a, 100)}, want {srepr(b, 100)}"
        return f"got {len(flat_got)} items, want {len(flat_want)}"
    return f"got {srepr(got)}, want {srepr(want)}"


def _flatten(value: Any) -> Iterator[Any]:
    """Leaves of nested tuples / lists, each with its type tokens kept together."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)) and any(isinstance(x, (tuple, list)) for x in item):
            stack.extend(reversed(item))
        else:
            yield item


# ====================================================================== files
def file_table(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: relative path -> sha256 (folders: 'dir')."""
    table: dict[str, str] = {}
    if not root.exists():
        return table
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        for name in dirs:
            table[str(rel / name)] = "dir"
        for name in files:
            table[str(rel / name)] = hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest()
    return table


def foreign_files(root: Path) -> dict[Path, bytes]:
    """The files named ``FOREIGN*`` under ``root``: nothing may delete or change them."""
    return {p: p.read_bytes() for p in root.rglob("FOREIGN*") if p.is_file()}


def plant_foreign(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "FOREIGN-notes.txt").write_bytes(b"the user's notes, not the index's\n")
    (folder / "extra").mkdir(exist_ok=True)
    (folder / "extra" / "FOREIGN-keep.json").write_bytes(b'{"keep": true}\n')


def table_diff(before: dict[str, str], after: dict[str, str]) -> str:
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"removed {gone[:4]}, added {new[:4]}, changed {changed[:4]}"


# ====================================================================== the fixture indexes
def _weights(seed: int, n: int) -> list[dict[int, float]]:
    rng = np.random.default_rng(seed)
    return [
        {int(t): float(rng.integers(1, 7)) * 0.5 for t in np.flatnonzero(rng.random(DIM) < 0.45)}
        for _ in range(n)
    ]


def vecs(rows: list[dict[Any, float]], vocab: Any = VOCAB) -> SparseVectors:
    return SparseVectors.from_dicts(rows, dim=DIM, vocab=vocab)


NEG_ROWS = _weights(3, 4)
NEG_ROWS[1] = {1: 1.5, 3: -1.0, 6: 0.5}
STR_PLAN: list[tuple[str, Any]] = [
    (
        "add",
        (
            ["a0", "a1", "a2", "a3", "a4"],
            _weights(1, 5),
            [
                {"lang": "en", "n": 0},
                None,
                {"lang": "fr", "n": 2, "tags": ["x", "y"]},
                {"lang": "en", "n": 3},
                {"lang": "en", "n": 4, "nested": {"k": [1, 2.5, None, True]}},
            ],
        ),
    ),
    ("add", (["b0", "b1", "b2", "b3", "b4"], _weights(2, 5), None)),
    (
        "add",
        (["c0", "c1", "c2", "c3"], NEG_ROWS, [{"lang": "en"}, {}, None, {"lang": "fr", "n": 1.5}]),
    ),
    ("delete", ["a1", "b2"]),
    ("upsert", (["a3"], [{0: 2.0, 5: 1.0}], [{"lang": "de", "n": 33}])),
]
INT_PLAN: list[tuple[str, Any]] = [
    ("add", ([0, 1, 2, 7, 3], _weights(4, 5), [{"n": i} for i in range(5)])),
    ("add", ([2**40, 2**63 - 1, 42], _weights(5, 3), None)),
    ("delete", [2]),
]


def apply_plan(
    index: SparseIndex | None, model: Model, plan: list[tuple[str, Any]], vocab: Any
) -> Model:
    """Apply ``plan`` to the model (and to ``index`` unless None: the model alone is pure data)."""
    for op, arg in plan:
        if op == "delete":
            if index is not None:
                index.delete(arg)
            model = model.deleted(arg)
            continue
        ids, rows, payloads = arg
        vectors = vecs(rows, vocab)
        if index is not None:
            getattr(index, op)(ids, vectors, payloads=payloads)
        docs = make_docs(ids, vectors, payloads)
        model = (model.added if op == "add" else model.upserted)(docs, DIM, vocab)
    return model


def build_model(target: str) -> Model:
    """What a fixture index holds, without building it (the cases are generated from it)."""
    kind = target.split("-")[0]
    if kind == "str":
        return apply_plan(None, Model(DIM, VOCAB), STR_PLAN, VOCAB)
    if kind == "int":
        return apply_plan(None, Model(DIM, None), INT_PLAN, None)
    return Model(None, None) if target == "empty" else Model(DIM, VOCAB)


def build(target: str) -> SparseIndex:
    """A fixture index, built afresh."""
    kind = target.split("-")[0]
    if kind == "str":
        index = SparseIndex(vocab=VOCAB)
        apply_plan(index, Model(DIM, VOCAB), STR_PLAN, VOCAB)
    elif kind == "int":
        index = SparseIndex(dim=DIM)
        apply_plan(index, Model(DIM, None), INT_PLAN, None)
    else:
        index = SparseIndex() if target == "empty" else SparseIndex(dim=DIM, vocab=VOCAB)
    return index


TARGETS = ("str-mem", "int-mem", "empty", "empty-dim", "str-disk", "int-disk")
MODELS = {t: build_model(t) for t in TARGETS}


# ====================================================================== cases
@dataclass
class Ctx:
    scratch: Path
    index: Any = None
    model: Model | None = None
    path: Path | None = None
    made: Any = None


@dataclass(frozen=True)
class Case:
    id: str
    call: str
    run: Callable[[Ctx], Any]
    # None: only a named error is right; else checks a result and returns the expected model(s)
    expect: Callable[[Ctx, Any], Any] | None
    target: str | None = None
    setup: Callable[[Path], Any] | None = None
    saves: bool = False  # the call commits the index to its folder
    then_save: bool = False  # save() after the call and reopen: the failure left nothing behind
    reopen: Callable[[Ctx], Path] | None = None  # where a successful call saved to
    readonly_setup: bool = False  # the call must not change what setup made (``made``)
    isolate: bool = False  # may crash or exhaust memory: run in a forked child


CASES: list[Case] = []


def case(cid: str, call: str, run: Callable[[Ctx], Any], expect: Any, **kw: Any) -> None:
    CASES.append(Case(cid, call, run, expect, **kw))


def unchanged(ctx: Ctx, result: Any) -> Any:
    return ctx.model


def returns_none(then: Callable[[Model], Any]) -> Callable[[Ctx, Any], Any]:
    def check(ctx: Ctx, result: Any) -> Any:
        assert result is None, f"returned {srepr(result)} instead of None"
        return then(ctx.model)

    return check


def any_result(ctx: Ctx, result: Any) -> Any:
    return ctx.model


NEW_ROW = [{2: 1.5, 5: 0.5}]
TWO_ROWS = [{1: 1.0, 4: 2.0}, {0: 0.5, 7: 3.0}]


def new_vectors(target: str, n: int) -> SparseVectors:
    """``n`` fresh rows for a target (with the vocab where the target has one)."""
    vocab = None if target.startswith("int") else VOCAB
    rows = [{(j * 3) % DIM: 0.5 * (j % 4 + 1), (j * 5 + 1) % DIM: 1.0} for j in range(n)]
    return vecs([dict(sorted(r.items())) for r in rows], vocab)


def add_expect(target: str, op: str, ids: Any, n: int, payloads: Any = None) -> Any:
    """The oracle of ``op`` (add/upsert) of ``ids`` (raw) with ``n`` new rows, or None."""
    model = MODELS[target]
    norm = ref_ids(ids)
    if norm is INVALID or len(norm) != n or len(set(norm)) != len(norm):
        return None
    if op == "add" and any(model.has(i) for i in norm):
        return None
    pays = None
    if payloads is not None:
        try:
            pays = list(payloads)
        except Exception:  # noqa: BLE001
            return None
        if len(pays) != n or any(p is not None and ref_payload(p) is INVALID for p in pays):
            return None
    vectors = new_vectors(target, n)
    docs = make_docs(norm, vectors, pays)
    vocab = vectors.vocab

    def then(m: Model) -> Any:
        new = (m.added if op == "add" else m.upserted)(docs, DIM, vocab)
        return (new, m) if not docs else new

    return returns_none(then)


def get_expect(target: str, ids: Any) -> Any:
    model = MODELS[target]
    norm = ref_ids(ids)
    if norm is INVALID or not all(model.has(i) for i in norm) or model.dim is None:
        return None

    def check(ctx: Ctx, got: Any) -> Any:
        m = ctx.model
        want = rows_to_csr([(m.doc(i).indices, m.doc(i).vbits) for i in norm], m.dim, m.vocab)
        check_csr(got, want)
        return m

    return check


def payloads_expect(target: str, ids: Any) -> Any:
    model = MODELS[target]
    norm = ref_ids(ids)
    if norm is INVALID or not all(model.has(i) for i in norm):
        return None

    def check(ctx: Ctx, got: Any) -> Any:
        want = [ctx.model.doc(i).payload for i in norm]
        assert isinstance(got, list), f"returned {srepr(got)}"
        assert canon(got) == canon(want), f"payloads {srepr(got)} != {srepr(want)}"
        return ctx.model

    return check


def delete_expect(target: str, ids: Any) -> Any:
    model = MODELS[target]
    norm = ref_ids(ids)
    if norm is INVALID or not all(model.has(i) for i in norm):
        return None
    return returns_none(lambda m: m.deleted(norm))


def contains_expect(target: str, value: Any) -> Any:
    norm = ref_id(value)
    want = norm is not INVALID and MODELS[target].has(norm)

    def check(ctx: Ctx, got: Any) -> Any:
        assert got is want, f"`in` gave {srepr(got)}, want {want}"
        return ctx.model

    return check


def search_expect(
    k: int,
    chosen: Iterable[Any] | None = None,
    cond: Mapping[str, Any] | None = None,
    with_payloads: bool = False,
    queries: Callable[[Model], SparseVectors] | None = None,
) -> Callable[[Ctx, Any], Any]:
    def check(ctx: Ctx, hits: Any) -> Any:
        m = ctx.model
        q = queries(m) if queries else search_queries(m)
        want = expected_hits(m, q, k, chosen, cond, with_payloads)
        got = hits_key(hits, k, with_payloads)
        assert got == want, f"hits differ {first_difference(got, want)}"
        return m

    return check


def search_queries(model: Model) -> SparseVectors:
    return SparseVectors.from_dicts(
        [{0: 1.0, 2: 0.5}, {1: 1.0, 3: 1.0, 5: 2.0}, {4: 0.5, 6: 1.0, 7: 1.0}], dim=model.dim or DIM
    )


# ---------------------------------------------------------------------- pools
def V(label: str, value: Any) -> tuple[str, Callable[[], Any]]:
    """A pool entry whose value is made afresh in the child (generators are single-use)."""
    return label, (lambda: value)


def G(label: str, make: Callable[[], Any]) -> tuple[str, Callable[[], Any]]:
    return label, make


NAN, INF = float("nan"), float("inf")
HUGE_INT = 10**4300  # 4,301 digits: beyond Python's default int <-> str limit

ID_VALUES = [
    V("str-present", "a0"),
    V("int-present", 7),
    V("str-absent", "zz"),
    V("empty-str", ""),
    V("leading-space", " a0"),
    V("unicode", "日本語-é"),
    V("lone-surrogate", "\ud800"),
    V("nul-char", "a\x00b"),
    V("long-str-10k", "x" * 10_000),
    G("np.str_-present", lambda: np.str_("a0")),
    G("str-subclass", lambda: _Str("new-sub")),
    V("zero", 0),
    V("negative", -3),
    V("2**63", 2**63),
    V("2**64+1", 2**64 + 1),
    V("int-4301-digits", HUGE_INT),
    G("np.int64-present", lambda: np.int64(7)),
    G("np.int32", lambda: np.int32(-3)),
    G("np.uint64-max", lambda: np.uint64(2**64 - 1)),
    G("int-subclass", lambda: _Int(11)),
    G("IntEnum-present", lambda: _Num.SEVEN),
    G("IntEnum-absent", lambda: _Num.NINE),
    V("float-1.5", 1.5),
    V("float-integral", 7.0),
    V("nan", NAN),
    V("inf", INF),
    G("np.float64", lambda: np.float64(7.0)),
    V("True", True),
    G("np.bool_", lambda: np.True_),
    V("None", None),
    V("bytes", b"a0"),
    G("bytearray", lambda: bytearray(b"a0")),
    G("np.bytes_", lambda: np.bytes_(b"a0")),
    G("list", lambda: ["a0"]),
    V("tuple", ("a0",)),
    G("set", lambda: {"a0"}),
    G("dict", lambda: {"a0": 1}),
    G("object", object),
    V("complex", 7 + 0j),
    V("Decimal", Decimal(7)),
    G("0-d-array", lambda: np.array(7)),
]


def id_value_cases() -> None:
    both, str_only = ("str-mem", "int-mem"), ("str-mem",)
    calls: list[tuple[str, str, Callable[..., Any], Callable[[str, Any], Any], tuple[str, ...]]] = [
        (
            "add",
            "index.add([{}], <1 row>)",
            lambda c, v, t: c.index.add([v], new_vectors(t, 1)),
            lambda t, v: add_expect(t, "add", [v], 1),
            both,
        ),
        (
            "delete",
            "index.delete([{}])",
            lambda c, v, t: c.index.delete([v]),
            lambda t, v: delete_expect(t, [v]),
            str_only,
        ),
        (
            "get",
            "index.get([{}])",
            lambda c, v, t: c.index.get([v]),
            lambda t, v: get_expect(t, [v]),
            both,
        ),
        (
            "get_payloads",
            "index.get_payloads([{}])",
            lambda c, v, t: c.index.get_payloads([v]),
            lambda t, v: payloads_expect(t, [v]),
            str_only,
        ),
        ("contains", "{} in index", lambda c, v, t: v in c.index, contains_expect, both),
        (
            "search-filter-ids",
            "index.search(<3 queries>, 5, params=SearchParams(filter={{'ids': [{}]}}))",
            lambda c, v, t: c.index.search(
                search_queries(c.model), 5, params=SearchParams(filter={"ids": [v]}, threads=1)
            ),
            lambda t, v: search_expect(5, chosen=[ref_id(v)]),
            str_only,
        ),
    ]
    for label, make in ID_VALUES:
        for op, text, run, expect, targets in calls:
            for target in targets:
                case(
                    f"{op}/id[{label}]@{target}",
                    text.format(label),
                    lambda c, make=make, run=run, t=target: run(c, make(), t),
                    expect(target, make()),
                    target=target,
                )
    # valid ids added, then saved and reopened (ids must survive the disk format)
    for label, make in ID_VALUES:
        value = make()
        if label not in SAVED_IDS:
            continue
        case(
            f"add+save/id[{label}]@str-disk",
            f"index.add([{label}], <1 row>); index.save()",
            lambda c, make=make: c.index.add([make()], new_vectors("str-disk", 1)),
            add_expect("str-disk", "add", [value], 1),
            target="str-disk",
            then_save=True,
        )


ID_COLLECTIONS: list[tuple[str, Callable[[list[Any]], Any]]] = [
    ("list", lambda n: list(n)),
    ("tuple", lambda n: tuple(n)),
    ("generator", lambda n: (x for x in n)),
    ("iterator", lambda n: iter(n)),
    ("dict-keys", lambda n: dict.fromkeys(n, 0)),
    ("set-of-one", lambda n: {n[0]}),
    ("np-array", lambda n: np.array(n)),
    ("np-object-array", lambda n: np.array(n, object)),
    ("np-2d-array", lambda n: np.array([n])),
    ("np-0d-array", lambda n: np.array(n[0])),
    ("single-value", lambda n: n[0]),
    ("bytes", lambda n: b"a0"),
    ("None", lambda n: None),
    ("int", lambda n: 5),
    ("float", lambda n: 1.5),
    ("True", lambda n: True),
    ("list-of-lists", lambda n: [[x] for x in n]),
    ("nested-once", lambda n: [n]),
    ("duplicate", lambda n: [n[0], n[0]]),
    (
        "duplicate-numpy-kind",
        lambda n: [np.str_(n[0]) if isinstance(n[0], str) else np.int64(n[0]), n[0]],
    ),
    ("empty-list", lambda n: []),
    ("with-None", lambda n: [n[0], None]),
    ("with-float", lambda n: [n[0], 1.5]),
    ("mixed-kinds", lambda n: [n[0], 12345 if isinstance(n[0], str) else "mixed"]),
    ("subclass-items", lambda n: [_Str(x) if isinstance(x, str) else _Int(x) for x in n]),
    ("too-many", lambda n: [*n, "extra-1", "extra-2"]),
]


def id_collection_cases() -> None:
    names = {
        "str-mem": (["n1", "n2"], ["a0", "c3"], ["a0", "n1"]),
        "int-mem": ([101, 102], [0, 2**63 - 1], [7, 101]),
    }
    for label, shape in ID_COLLECTIONS:
        for target, (new, present, mixed) in names.items():
            tag = f"[{label}]@{target}"
            for op, ids in (("add", new), ("upsert", mixed)):
                norm = ref_ids(shape(ids))
                nv = 2 if norm is INVALID or label == "too-many" else len(norm)
                case(
                    f"{op}/ids{tag}",
                    f"index.{op}({label} of {srepr(ids)}, <{nv} rows>)",
                    lambda c, shape=shape, ids=ids, op=op, t=target, nv=nv: getattr(c.index, op)(
                        shape(ids), new_vectors(t, nv)
                    ),
                    add_expect(target, op, shape(ids), nv),
                    target=target,
                )
            for op, expect in (
                (("delete", delete_expect), ("get", get_expect), ("get_payloads", payloads_expect))
                if target == "str-mem"
                else ()
            ):
                case(
                    f"{op}/ids{tag}",
                    f"index.{op}({label} of {srepr(present)})",
                    lambda c, shape=shape, op=op, p=present: getattr(c.index, op)(shape(p)),
                    expect(target, shape(present)),
                    target=target,
                )
            try:
                ref = ref_filter(shape(present))
            except Exception:  # noqa: BLE001 - e.g. a 0-d array that cannot be iterated
                ref = INVALID
            case(
                f"search-filter/ids{tag}",
                f"index.search(<3 queries>, 5, params=SearchParams(filter={label} of {srepr(present)}))",
                lambda c, shape=shape, p=present: c.index.search(
                    search_queries(c.model), 5, params=SearchParams(filter=shape(p), threads=1)
                ),
                None if ref is INVALID else search_expect(5, chosen=ref[0], cond=ref[1]),
                target=target,
            )


# ---------------------------------------------------------------------- payloads
PAYLOADS = [
    V("None", None),
    V("empty", {}),
    V("plain", {"lang": "en", "n": 1}),
    V("nan", {"a": NAN}),
    V("inf", {"a": INF}),
    V("minus-zero", {"a": -0.0}),
    V("int-key", {1: "x"}),
    V("None-key", {None: 1}),
    V("tuple-key", {("t",): 1}),
    V("nested-int-key", {"a": {1: "x"}}),
    V("bytes-value", {"a": b"bytes"}),
    V("set-value", {"a": {1, 2}}),
    V("tuple-value", {"a": (1, 2)}),
    G("object-value", lambda: {"a": object()}),
    V("int-4301-digits", {"a": HUGE_INT}),
    V("int-2**64", {"a": 2**64}),
    G("np.int64-value", lambda: {"a": np.int64(1)}),
    G("np.float64-value", lambda: {"a": np.float64(1.5)}),
    G("np.float32-value", lambda: {"a": np.float32(1.5)}),
    G("np.array-value", lambda: {"a": np.array([1, 2])}),
    V("Decimal-value", {"a": Decimal("1.5")}),
    G("deep-list-50", lambda: {"a": deep_list(50)}),
    G("deep-list-5k", lambda: {"a": deep_list(5_000)}),
    G("deep-dict-5k", lambda: deep_dict(5_000)),
    V("surrogate-value", {"a": "\ud800"}),
    V("surrogate-key", {"\ud800": 1}),
    V("empty-key", {"": 1}),
    V("nul-in-key", {"a\x00b": 1}),
    V("long-str-1M", {"a": "x" * 1_000_000}),
    G("circular", circular),
    V("bool-value", {"a": True}),
    G("mappingproxy", lambda: MappingProxyType({"a": 1})),
    G("list-of-pairs", lambda: [("a", 1)]),
    V("str", "payload"),
    V("int", 5),
    V("list", []),
    V("set", frozenset({"a"})),
    G("str-subclass-key", lambda: {_Str("a"): 1}),
    G("intenum-value", lambda: {"a": _Num.SEVEN}),
    V("nested-ok", {"a": {"b": [1, 2.5, None, True, "s"]}}),
    V("unicode", {"日本": "語", "emoji": "🦀"}),
]


# what is saved and reopened too: where the disk format could lose or change something
SAVED_IDS = {
    "empty-str",
    "unicode",
    "lone-surrogate",
    "nul-char",
    "long-str-10k",
    "str-subclass",
    "zero",
    "2**63",
    "2**64+1",
    "int-4301-digits",
    "np.uint64-max",
    "int-subclass",
    "IntEnum-absent",
}
SAVED_PAYLOADS = {
    "None",
    "nan",
    "inf",
    "minus-zero",
    "tuple-value",
    "int-2**64",
    "int-4301-digits",
    "surrogate-key",
    "nul-in-key",
    "str-subclass-key",
    "intenum-value",
    "unicode",
}


def payload_cases() -> None:
    for label, make in PAYLOADS:
        value = make()
        for target, op, ids in (
            ("str-mem", "add", ["p-new"]),
            ("str-mem", "upsert", ["a0"]),
        ):
            case(
                f"{op}/payload[{label}]@{target}",
                f"index.{op}({ids}, <1 row>, payloads=[{label}])",
                lambda c, make=make, op=op, ids=ids, t=target: getattr(c.index, op)(
                    ids, new_vectors(t, 1), payloads=[make()]
                ),
                add_expect(target, op, ids, 1, [value]),
                target=target,
            )
        if label not in SAVED_PAYLOADS:
            continue  # the disk format matters for these; the others fail or pass in memory alike
        case(
            f"add+save/payload[{label}]@str-disk",
            f"index.add(['p-new'], <1 row>, payloads=[{label}]); index.save()",
            lambda c, make=make: c.index.add(
                ["p-new"], new_vectors("str-disk", 1), payloads=[make()]
            ),
            add_expect("str-disk", "add", ["p-new"], 1, [value]),
            target="str-disk",
            then_save=True,
        )


PAYLOAD_ARGS = [
    V("None", None),
    V("two-dicts", [{"a": 1}, None]),
    V("tuple", ({"a": 1}, {"b": 2})),
    G("np-object-array", lambda: np.array([{"a": 1}, {"b": 2}], object)),
    V("empty", []),
    V("too-short", [{"a": 1}]),
    V("too-long", [{"a": 1}, None, None]),
    V("str-of-2", "ab"),
    V("bytes", b"ab"),
    V("dict-of-2", {"a": 1, "b": 2}),
    G("generator", lambda: ({"a": i} for i in range(2))),
    G("iterator", lambda: iter([{"a": 1}, None])),
    V("int", 5),
    V("with-str", [{"a": 1}, "x"]),
    V("with-list", [{"a": 1}, [("a", 1)]]),
    G("same-dict-twice", lambda: (lambda d: [d, d])({"a": 1})),
    G("mappingproxy-items", lambda: [MappingProxyType({"a": 1}), None]),
    G("set-items", lambda: [frozenset(), None]),
]


def payload_arg_cases() -> None:
    for label, make in PAYLOAD_ARGS:
        value = make()
        for op, ids in (("add", ["q1", "q2"]), ("upsert", ["a0", "q2"])):
            case(
                f"{op}/payloads-arg[{label}]@str-mem",
                f"index.{op}({ids}, <2 rows>, payloads={label})",
                lambda c, make=make, op=op, ids=ids: getattr(c.index, op)(
                    ids, new_vectors("str-mem", 2), payloads=make()
                ),
                None
                if value is not None
                and (isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable))
                else add_expect("str-mem", op, ids, 2, value),
                target="str-mem",
            )


def payload_alias_cases() -> None:
    """After a successful add, what the caller does to its objects must not change the index."""

    def nested_payload(c: Ctx) -> None:
        p = {"tags": ["x"], "inner": {"k": 1}}
        c.index.add(["alias"], new_vectors("str-mem", 1), payloads=[p])
        p["tags"].append("changed")
        p["inner"]["k"] = 2
        p["added"] = True

    def vector_arrays(c: Ctx) -> None:
        v = new_vectors("str-mem", 1)
        c.index.add(["alias"], v)
        v.values[:] = 99.0
        v.indices[:] = 0

    def payload_list(c: Ctx) -> None:
        pays: list[Any] = [{"a": 1}]
        c.index.add(["alias"], new_vectors("str-mem", 1), payloads=pays)
        pays[0] = {"a": "changed"}

    for name, fn, pays in (
        ("nested-payload-mutated", nested_payload, [{"tags": ["x"], "inner": {"k": 1}}]),
        ("vector-arrays-mutated", vector_arrays, None),
        ("payload-list-mutated", payload_list, [{"a": 1}]),
    ):
        for target in ("str-mem", "str-disk"):
            case(
                f"alias/{name}@{target}",
                f"index.add(['alias'], ...) then the caller mutates its {name.split('-')[0]} objects",
                lambda c, fn=fn: fn(c),
                add_expect("str-mem", "add", ["alias"], 1, pays),
                target=target,
                saves=False,
            )
        case(
            f"alias+save/{name}@str-disk",
            "index.add(['alias'], ...), the caller mutates its objects, then index.save()",
            lambda c, fn=fn: fn(c),
            add_expect("str-mem", "add", ["alias"], 1, pays),
            target="str-disk",
            then_save=True,
        )


# ---------------------------------------------------------------------- vectors arguments
def _unvalidated(
    ip: Any, ix: Any, vs: Any, dim: Any = DIM, vocab: Any = VOCAB
) -> Callable[[], Any]:
    return lambda: SparseVectors(
        np.asarray(ip), np.asarray(ix), np.asarray(vs), dim, vocab, validate=False
    )


def _mutated(attr: str, value: Callable[[], Any]) -> Callable[[], Any]:
    def make() -> Any:
        v = vecs([{1: 1.0, 4: 2.0}])
        setattr(v, attr, value())
        return v

    return make


def _poked(fn: Callable[[SparseVectors], None]) -> Callable[[], Any]:
    def make() -> Any:
        v = vecs([{1: 1.0, 4: 2.0}])
        fn(v)
        return v

    return make


VECTOR_ARGS = [
    G("valid-vocab", lambda: vecs([{1: 1.0, 4: 2.0}])),
    G("valid-no-vocab", lambda: vecs([{1: 1.0, 4: 2.0}], None)),
    G("dim-7", lambda: SparseVectors.from_dicts([{1: 1.0}], dim=7)),
    G("dim-9", lambda: SparseVectors.from_dicts([{1: 1.0}], dim=9)),
    G("dim-1", lambda: SparseVectors.from_dicts([{0: 1.0}], dim=1)),
    G("dim-2**31-empty", lambda: SparseVectors.empty(2**31)),
    G(
        "dim-10**12-one-row",
        lambda: SparseVectors(np.array([0, 1]), np.array([5]), np.array([1.0]), 10**12),
    ),
    G("other-vocab", lambda: vecs([{1: 1.0}], OTHER_VOCAB)),
    G("surrogate-vocab", lambda: vecs([{1: 1.0}], (*VOCAB[:-1], "\ud800"))),
    G("non-str-vocab", lambda: vecs([{1: 1.0}], tuple(range(DIM)))),
    G("empty-batch", lambda: SparseVectors.empty(DIM, VOCAB)),
    G(
        "explicit-zero",
        lambda: SparseVectors(np.array([0, 2]), np.array([1, 4]), np.array([0.0, 1.0]), DIM, VOCAB),
    ),
    G("negative-weights", lambda: vecs([{1: -1.0, 4: -2.5}])),
    G("subnormal", lambda: vecs([{1: 1e-45, 4: 1.0}])),
    G("float32-max", lambda: vecs([{1: float(np.finfo(np.float32).max)}])),
    G("every-term", lambda: vecs([{t: 0.5 for t in range(DIM)}])),
    G("empty-row", lambda: vecs([{}])),
    G("300-rows", lambda: vecs([{i % DIM: 1.0, (i * 3 + 1) % DIM: 0.5} for i in range(300)])),
    G("unvalidated-index>=dim", _unvalidated([0, 2], [1, DIM], [1.0, 1.0])),
    G("unvalidated-index-2**30", _unvalidated([0, 1], [2**30], [1.0])),
    G("unvalidated-negative-index", _unvalidated([0, 2], [-1, 4], [1.0, 1.0])),
    G("unvalidated-nan", _unvalidated([0, 2], [1, 4], [NAN, 1.0])),
    G("unvalidated-inf", _unvalidated([0, 2], [1, 4], [INF, 1.0])),
    G("unvalidated-unsorted", _unvalidated([0, 2], [4, 1], [1.0, 2.0])),
    G("unvalidated-duplicate-index", _unvalidated([0, 2], [4, 4], [1.0, 2.0])),
    G("unvalidated-indptr-decreasing", _unvalidated([0, 2, 1, 2], [1, 4], [1.0, 2.0])),
    G("unvalidated-indptr-past-nnz", _unvalidated([0, 5], [1, 4], [1.0, 2.0])),
    G("unvalidated-indptr-not-from-0", _unvalidated([1, 2], [1, 4], [1.0, 2.0])),
    G("unvalidated-short-vocab", _unvalidated([0, 1], [1], [1.0], DIM, VOCAB[:3])),
    G("unvalidated-dim-0", _unvalidated([0, 1], [1], [1.0], 0, None)),
    G("mutated-values-float64", _mutated("values", lambda: np.array([1.0, 2.0]))),
    G("mutated-indices-list", _mutated("indices", lambda: [1, 4])),
    G("mutated-indptr-2d", _mutated("indptr", lambda: np.array([[0, 2]]))),
    G("mutated-dim-str", _mutated("dim", lambda: "8")),
    G("mutated-vocab-list", _mutated("vocab", lambda: list(VOCAB))),
    G("poked-nan-weight", _poked(lambda v: v.values.__setitem__(0, np.nan))),
    G("poked-index-out-of-range", _poked(lambda v: v.indices.__setitem__(1, 1000))),
    V("None", None),
    V("list-of-dicts", [{1: 1.0}]),
    G("scipy-csr", lambda: sp.csr_matrix(np.eye(1, DIM, dtype=np.float32))),
    V("str", "tok1"),
]


def ref_vectors_arg(value: Any) -> Any:
    """The CSR content of a SparseVectors argument (its arrays read exactly), or INVALID."""
    if not isinstance(value, SparseVectors):
        return INVALID
    return ref_csr(value.indptr, value.indices, value.values, value.dim, value.vocab)


def vectors_expect(target: str, op: str, value: Any) -> Any:
    model = MODELS[target]
    ref = ref_vectors_arg(value)
    if ref is INVALID:
        return None
    ip, ix, vs, d, voc = ref
    if model.dim is not None and d != model.dim:
        return None
    if voc is not None and model.vocab is not None and voc != model.vocab:
        return None
    n = len(ip) - 1
    if op == "search":
        plain = SparseVectors(
            np.array(ip, np.int64),
            np.array(ix, np.int32),
            np.asarray(vs, np.uint32).view(np.float32),
            d,
            voc,
            validate=False,
        )
        return search_expect(5, queries=lambda m, plain=plain: plain)
    ids = [f"v{i}" for i in range(n)] if not target.startswith("int") else list(range(500, 500 + n))
    rows = [(tuple(ix[a:b]), tuple(vs[a:b])) for a, b in zip(ip, ip[1:], strict=False)]
    docs = [Doc(i, r[0], r[1], None) for i, r in zip(ids, rows, strict=True)]

    def then(m: Model) -> Any:
        new = (m.added if op == "add" else m.upserted)(docs, d, voc)
        return (new, m) if not docs else new

    return returns_none(then)


def vector_arg_cases() -> None:
    for label, make in VECTOR_ARGS:
        value = make()
        n = (
            value.n
            if isinstance(value, SparseVectors) and isinstance(value.indptr, np.ndarray)
            else 1
        )
        n = max(n, 0) if isinstance(n, int) else 1
        risky = label.startswith(("unvalidated", "mutated", "poked", "dim-2**31", "dim-10**12"))
        slow = label in ("mutated-indptr-2d", "mutated-indices-list")  # each compiles a kernel
        slow = slow or label == "mutated-dim-str"
        for target, op in (
            ("str-mem", "add"),
            ("str-mem", "search"),
            ("empty", "add"),
            ("empty-dim", "search"),
        ):
            if slow and (target, op) != ("str-mem", "add"):
                continue
            if op == "search":
                run = lambda c, make=make: c.index.search(make(), 5, params=SearchParams(threads=1))  # noqa: E731
                call = f"index.search({label}, 5)"
            else:
                ids = (
                    [f"v{i}" for i in range(n)]
                    if not target.startswith("int")
                    else list(range(500, 500 + n))
                )
                run = lambda c, make=make, op=op, ids=ids: getattr(c.index, op)(ids, make())  # noqa: E731
                call = f"index.{op}(<{n} ids>, {label})"
            case(
                f"{op}/vectors[{label}]@{target}",
                call,
                run,
                vectors_expect(target, op, value),
                target=target,
                isolate=risky,  # unchecked arrays reach the compiled kernels
            )


# ---------------------------------------------------------------------- search parameters
K_VALUES = [
    V("0", 0),
    V("-1", -1),
    V("-2**63", -(2**63)),
    V("1", 1),
    V("5", 5),
    V("1.5", 1.5),
    V("2.0", 2.0),
    V("True", True),
    V("False", False),
    V("None", None),
    V("str-3", "3"),
    V("list-3", [3]),
    V("complex-3", 3 + 0j),
    V("Decimal-3", Decimal(3)),
    V("nan", NAN),
    V("inf", INF),
    G("np.int64-3", lambda: np.int64(3)),
    G("np.int32-3", lambda: np.int32(3)),
    G("np.int64-0", lambda: np.int64(0)),
    G("np.uint64-max", lambda: np.uint64(2**64 - 1)),
    G("np.float64-3", lambda: np.float64(3.0)),
    G("np.bool_", lambda: np.True_),
    G("0-d-array-3", lambda: np.array(3)),
    G("int-subclass-3", lambda: _Int(3)),
    V("10**6", 10**6),
    V("10**12", 10**12),
    V("2**62", 2**62),
    V("2**63", 2**63),
    V("int-4301-digits", HUGE_INT),
]


def ref_k(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return INVALID
    try:
        k = operator.index(value)
    except TypeError:
        return INVALID
    return k if k >= 1 else INVALID


def k_cases() -> None:
    for label, make in K_VALUES:
        k = ref_k(make())
        for target in ("str-mem", "empty"):
            case(
                f"search/k[{label}]@{target}",
                f"index.search(<3 queries>, k={label})",
                lambda c, make=make: c.index.search(
                    search_queries(c.model), make(), params=SearchParams(threads=1)
                ),
                None if k is INVALID or k > 10**7 else search_expect(k),
                target=target,
                isolate=_big(make()),
            )
        if k is INVALID:
            continue
        case(
            f"search/k[{label}]/no-queries@str-mem",
            f"index.search(<0 queries>, k={label})",
            lambda c, make=make: c.index.search(SparseVectors.empty(DIM), make()),
            search_expect(k, queries=lambda m: SparseVectors.empty(DIM)),
            target="str-mem",
            isolate=_big(make()),
        )


def _big(value: Any) -> bool:
    """An integer large enough that using it as a size may exhaust memory."""
    return isinstance(value, (int, np.integer)) and abs(int(value)) >= 10**6


THREADS = [
    V("None", None),
    V("1", 1),
    V("2", 2),
    V("16", 16),
    V("10**6", 10**6),
    V("2**63", 2**63),
    V("int-4301-digits", HUGE_INT),
    V("0", 0),
    V("-1", -1),
    V("1.5", 1.5),
    V("2.0", 2.0),
    V("True", True),
    V("False", False),
    V("str-2", "2"),
    G("np.int64-2", lambda: np.int64(2)),
    G("np.int64-0", lambda: np.int64(0)),
    G("np.uint64-max", lambda: np.uint64(2**64 - 1)),
    G("np.float64-2", lambda: np.float64(2.0)),
    V("list-2", [2]),
    G("int-subclass-2", lambda: _Int(2)),
    V("nan", NAN),
]


def thread_cases() -> None:
    for label, make in THREADS:
        value = make()
        valid = value is None or ref_k(value) is not INVALID
        for target in ("str-mem",):
            case(
                f"search/threads[{label}]@{target}",
                f"index.search(<3 queries>, 5, params=SearchParams(threads={label}))",
                lambda c, make=make: c.index.search(
                    search_queries(c.model), 5, params=SearchParams(threads=make())
                ),
                search_expect(5) if valid else None,
                target=target,
            )


RETURN_PAYLOADS = [
    V("True", True),
    V("False", False),
    V("1", 1),
    V("0", 0),
    V("str-yes", "yes"),
    V("empty-str", ""),
    V("None", None),
    G("np.True_", lambda: np.True_),
    V("list", [True]),
]


def params_cases() -> None:
    for label, make in (
        V("None", None),
        V("dict", {"threads": 1}),
        G("Filter", lambda: Filter(ids=["a0"])),
        V("str", "threads=1"),
        V("SearchParams-class", SearchParams),
        V("True", True),
    ):
        case(
            f"search/params[{label}]@str-mem",
            f"index.search(<3 queries>, 5, params={label})",
            lambda c, make=make: c.index.search(search_queries(c.model), 5, params=make()),
            search_expect(5) if make() is None else None,
            target="str-mem",
        )


def return_payload_cases() -> None:
    for label, make in RETURN_PAYLOADS:
        value = make()
        for target in ("str-mem",):
            expect = None
            if isinstance(value, (bool, np.bool_)):
                expect = search_expect(5, with_payloads=bool(value))
            case(
                f"search/return_payloads[{label}]@{target}",
                f"index.search(<3 queries>, 5, params=SearchParams(return_payloads={label}))",
                lambda c, make=make: c.index.search(
                    search_queries(c.model),
                    5,
                    params=SearchParams(return_payloads=make(), threads=1),
                ),
                expect,
                target=target,
            )


# ---------------------------------------------------------------------- filters
FILTERS: list[tuple[str, Callable[[], Any]]] = [
    V("None", None),
    V("empty-mapping", {}),
    V("ids-None", {"ids": None}),
    V("ids-empty", {"ids": []}),
    V("ids-known+unknown", {"ids": ["a0", "zz", 7, 99]}),
    V("ids-str", {"ids": "a0"}),
    V("ids-bytes", {"ids": b"a0"}),
    V("ids-int", {"ids": 5}),
    V("ids-float", {"ids": 1.5}),
    V("ids-nested-list", {"ids": [["a0"]]}),
    V("ids-dicts", {"ids": [{"a": 1}]}),
    G("ids-np-array-items", lambda: {"ids": [np.array([1])]}),
    V("ids-float-1.0", {"ids": [1.0]}),
    V("ids-True", {"ids": [True]}),
    V("ids-nan", {"ids": [NAN]}),
    V("ids-huge-int", {"ids": [HUGE_INT, 7]}),
    G("ids-np.int64", lambda: {"ids": [np.int64(7), np.int64(0)]}),
    G("ids-np.str_", lambda: {"ids": [np.str_("a0")]}),
    G("ids-np.bytes_", lambda: {"ids": [np.bytes_(b"a0")]}),
    G("ids-np-2d", lambda: {"ids": np.array([["a0", "a2"]])}),
    G("ids-np-1d", lambda: {"ids": np.array(["a0", "a2"])}),
    G("ids-generator", lambda: {"ids": (x for x in ["a0", 7])}),
    V("ids-range", {"ids": range(10)}),
    V("ids-dict", {"ids": {"a0": 1, 7: 2}}),
    G("ids-20k-unknown", lambda: {"ids": [f"u{i}" for i in range(20_000)]}),
    G("ids-deep-nested", lambda: {"ids": [deep_list(5_000)]}),
    V("payload-None", {"payload": None}),
    V("payload-lang", {"payload": {"lang": "en"}}),
    V("payload-n-2.0", {"payload": {"n": 2.0}}),
    V("payload-tags-list", {"payload": {"tags": ["x", "y"]}}),
    V("payload-tags-tuple", {"payload": {"tags": ("x", "y")}}),
    V("payload-nested", {"payload": {"nested": {"k": [1, 2.5, None, True]}}}),
    V("payload-missing-key", {"payload": {"missing": None}}),
    V("payload-nan", {"payload": {"lang": NAN}}),
    V("payload-int-key", {"payload": {1: "x"}}),
    V("payload-None-key", {"payload": {None: 1}}),
    V("payload-operator", {"payload": {"lang": {"$in": ["en"]}}}),
    V("payload-str", {"payload": "lang"}),
    V("payload-list", {"payload": ["lang"]}),
    V("payload-int", {"payload": 5}),
    G("payload-deep", lambda: {"payload": {"nested": deep_dict(5_000)}}),
    G("payload-unhashable-set", lambda: {"payload": {"lang": {1, 2}}}),
    V("ids+payload", {"ids": ["a0", "a2", 0, 1], "payload": {"lang": "en"}}),
    V("unknown-key", {"idz": []}),
    V("extra-key", {"ids": [], "extra": 1}),
    V("mixed-type-unknown-keys", {("a",): 1, "b": 2}),
    V("int-key-mapping", {1: 2}),
    G("mappingproxy", lambda: MappingProxyType({"ids": ["a0", 7]})),
    V("list", ["a0", 7]),
    V("tuple", ("a0", 7)),
    V("set", {"a0", 7}),
    V("frozenset", frozenset({"a0", 7})),
    G("generator", lambda: (x for x in ["a0", 7])),
    V("str", "a0"),
    V("bytes", b"a0"),
    V("int", 5),
    V("float", 1.5),
    V("True", True),
    G("object", object),
    G("Filter-ids", lambda: Filter(ids=["a0", 7])),
    G("Filter-payload", lambda: Filter(payload={"lang": "en"})),
    G("Filter-both", lambda: Filter(ids=["a2", "a0", 1], payload={"lang": "fr"})),
]


def ref_filter(spec: Any) -> Any:
    """(chosen ids or None, payload conditions) of a filter spec, or INVALID.

    ``chosen`` holds each id item normalised (INVALID for one that is not an id: ignored).
    """
    if spec is None:
        return None, None
    if isinstance(spec, Filter):
        return (None if spec.ids is None else [ref_id(x) for x in spec.ids]), spec.payload or None
    if isinstance(spec, Mapping):
        if set(spec) - {"ids", "payload"}:
            return INVALID
        ids, payload = spec.get("ids"), spec.get("payload")
        if payload is not None and not isinstance(payload, Mapping):
            return INVALID
        if ids is None:
            return None, payload or None
        spec = ids
        if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
            return INVALID
        return [ref_id(x) for x in spec], payload or None
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
        return INVALID
    return [ref_id(x) for x in spec], None


def filter_cases() -> None:
    for label, make in FILTERS:
        try:
            ref = ref_filter(make())
        except Exception:  # noqa: BLE001 - e.g. iterating a nested structure
            ref = INVALID
        for target in ("str-mem", "int-mem"):
            expect = None
            if ref is not INVALID:
                chosen, cond = ref
                expect = search_expect(5, chosen=chosen, cond=cond)
            case(
                f"search/filter[{label}]@{target}",
                f"index.search(<3 queries>, 5, params=SearchParams(filter={label}))",
                lambda c, make=make: c.index.search(
                    search_queries(c.model), 5, params=SearchParams(filter=make(), threads=1)
                ),
                expect,
                target=target,
            )
        case(
            f"as_filter[{label}]",
            f"as_filter({label})",
            lambda c, make=make: as_filter(make()),
            None if ref is INVALID else any_result,
        )
    for label, make in (
        V("ids-str", "a0"),
        V("ids-int", 5),
        V("ids-nested", [["a0"]]),
        G("ids-2d-array", lambda: np.array([[1, 2]])),
        V("ids-None-payload-str", None),
        G("ids-generator", lambda: (x for x in ["a0"])),
    ):
        payload = "lang" if label == "ids-None-payload-str" else None
        value = make()
        ok = value is None and payload is None
        if (
            not ok
            and payload is None
            and not isinstance(value, (str, bytes))
            and isinstance(value, Iterable)
        ):
            ok = all(ref_id(x) is not INVALID for x in list(make()))
        case(
            f"Filter[{label}]",
            f"Filter(ids={label}, payload={payload!r})",
            lambda c, make=make, payload=payload: Filter(ids=make(), payload=payload),
            any_result if ok else None,
        )


# ---------------------------------------------------------------------- other calls
BATCH_SIZES = [
    V("1", 1),
    V("2", 2),
    V("5", 5),
    V("1000", 1000),
    V("10**12", 10**12),
    V("2**63", 2**63),
    V("int-4301-digits", HUGE_INT),
    V("0", 0),
    V("-1", -1),
    V("1.5", 1.5),
    V("2.0", 2.0),
    V("True", True),
    V("None", None),
    V("str-2", "2"),
    G("np.int64-2", lambda: np.int64(2)),
    V("list-2", [2]),
    G("int-subclass-2", lambda: _Int(2)),
]


def iter_expect(size: Any) -> Any:
    n = ref_k(size)
    if n is INVALID:
        return None

    def check(ctx: Ctx, batches: Any) -> Any:
        m = ctx.model
        ids = [i for chunk, _, _ in batches for i in plain_list(chunk)]
        assert canon(ids, strict=True) == canon(m.ids, strict=True), f"ids {srepr(ids)}"
        assert all(len(chunk) <= n for chunk, _, _ in batches), "a batch is larger than asked"
        assert all(len(chunk) == n for chunk, _, _ in batches[:-1]), "a short batch before the last"
        for chunk, got, pays in batches:
            want = rows_to_csr([(m.doc(i).indices, m.doc(i).vbits) for i in chunk], m.dim, m.vocab)
            check_csr(got, want)
            assert canon(pays) == canon([m.doc(i).payload for i in chunk]), "payloads"
        return m

    return check


def misc_cases() -> None:
    for label, make in BATCH_SIZES:
        for target in ("str-mem", "int-mem"):
            case(
                f"iter_batches[{label}]@{target}",
                f"list(index.iter_batches({label}))",
                lambda c, make=make: list(c.index.iter_batches(make())),
                iter_expect(make()),
                target=target,
            )
    for target in TARGETS:
        m = MODELS[target]
        case(
            f"compact@{target}",
            "index.compact()",
            lambda c: c.index.compact(),
            returns_none(lambda m: replace(m)),
            target=target,
        )
        case(
            f"ids@{target}",
            "index.ids()",
            lambda c: c.index.ids(),
            lambda c, got: (
                (
                    canon(plain_list(got), strict=True) == canon(c.model.ids, strict=True)
                    or _fail(f"ids {srepr(got)}")
                )
                and c.model
            ),
            target=target,
        )
        case(
            f"len@{target}",
            "len(index)",
            lambda c: len(c.index),
            lambda c, got: (got == len(c.model.docs) or _fail(f"len {got}")) and c.model,
            target=target,
        )
        case(
            f"repr@{target}",
            "repr(index)",
            lambda c: repr(c.index),
            lambda c, got: (isinstance(got, str) or _fail("repr")) and c.model,
            target=target,
        )
        case(
            f"stats@{target}",
            "index.stats()",
            lambda c: c.index.stats(),
            lambda c, got: (
                (model_stats_ok(got, c.model) or _fail(f"stats {srepr(got)}")) and c.model
            ),
            target=target,
        )
        case(
            f"term_stats@{target}",
            "index.term_stats()",
            lambda c: c.index.term_stats(),
            (lambda c, got: _check_term_stats(c.model, got)) if m.dim is not None else None,
            target=target,
        )
        case(
            f"get-empty-list@{target}",
            "index.get([])",
            lambda c: c.index.get([]),
            get_expect(target, []),
            target=target,
        )
        case(
            f"get_payloads-empty-list@{target}",
            "index.get_payloads([])",
            lambda c: c.index.get_payloads([]),
            payloads_expect(target, []),
            target=target,
        )
        case(
            f"delete-empty-list@{target}",
            "index.delete([])",
            lambda c: c.index.delete([]),
            returns_none(lambda m: m),
            target=target,
        )
        case(
            f"delete-everything@{target}",
            "index.delete(index.ids())",
            lambda c: c.index.delete(c.model.ids),
            returns_none(lambda m: m.deleted(m.ids)),
            target=target,
        )
        case(
            f"delete-everything+compact@{target}",
            "index.delete(index.ids()); index.compact()",
            lambda c: (c.index.delete(c.model.ids), c.index.compact())[1],
            returns_none(lambda m: m.deleted(m.ids)),
            target=target,
        )
        case(
            f"delete-some+unknown@{target}",
            "index.delete([<first id>, 'unknown-x'])",
            lambda c: c.index.delete([*c.model.ids[:1], "unknown-x"]),
            None,
            target=target,
        )
        case(
            f"delete-duplicates@{target}",
            "index.delete([<first id>] * 2)",
            lambda c: c.index.delete(c.model.ids[:1] * 2),
            returns_none(lambda m: m.deleted(m.ids[:1])) if m.docs else returns_none(lambda m: m),
            target=target,
        )
        case(
            f"get-duplicates@{target}",
            "index.get([<first id>] * 3)",
            lambda c: c.index.get(c.model.ids[:1] * 3),
            get_expect(target, m.ids[:1] * 3),
            target=target,
        )
        if m.docs:
            case(
                f"upsert-all-existing@{target}",
                "index.upsert(index.ids(), <n rows>)",
                lambda c, t=target: c.index.upsert(c.model.ids, new_vectors(t, len(c.model.ids))),
                add_expect(target, "upsert", m.ids, len(m.ids)),
                target=target,
            )
            case(
                f"add-all-existing@{target}",
                "index.add(index.ids(), <n rows>)",
                lambda c, t=target: c.index.add(c.model.ids, new_vectors(t, len(c.model.ids))),
                None,
                target=target,
            )


def _fail(message: str) -> bool:
    raise AssertionError(message)


def _check_term_stats(model: Model, got: Any) -> Any:
    freq = np.zeros(model.dim or 0, np.int64)
    for d in model.docs:
        freq[list(d.indices)] += 1
    assert got.n_docs == len(model.docs), f"n_docs {got.n_docs}"
    assert got.doc_freq.tolist() == freq.tolist(), f"doc_freq {got.doc_freq.tolist()}"
    return model


MAX_SEGMENTS = [
    V("1", 1),
    V("2", 2),
    V("16", 16),
    V("0", 0),
    V("-1", -1),
    V("1.5", 1.5),
    V("2.0", 2.0),
    V("True", True),
    V("False", False),
    V("None", None),
    V("str-3", "3"),
    V("2**63", 2**63),
    V("int-4301-digits", HUGE_INT),
    G("np.int64-2", lambda: np.int64(2)),
    V("nan", NAN),
    V("inf", INF),
    V("-inf", -INF),
    V("list-3", [3]),
    G("int-subclass-2", lambda: _Int(2)),
]


def _with_segments(make: Callable[[], Any]) -> Callable[[Ctx], Any]:
    def run(c: Ctx) -> Any:
        index = SparseIndex(max_segments=make())
        for b in range(4):
            index.add([f"m{b}-{i}" for i in range(2)], new_vectors("str-mem", 2))
        return index

    return run


def _segments_expect(value: Any) -> Any:
    limit = ref_k(value)
    if limit is INVALID:
        return None

    def check(ctx: Ctx, index: Any) -> Any:
        stats = index.stats()
        assert stats["max_segments"] == limit and type(stats["max_segments"]) is int, srepr(stats)
        assert stats["segments"] <= limit, f"{stats['segments']} segments > max_segments {limit}"
        want = [f"m{b}-{i}" for b in range(4) for i in range(2)]
        assert index.ids() == want, srepr(index.ids())
        return None

    return check


def constructor_cases() -> None:
    case(
        "SparseIndex(dim=np.int64).add().save()",
        "SparseIndex(dim=np.int64(8)), add a row, save and reopen",
        _numpy_dim_round_trip,
        _numpy_dim_expect,
    )
    for label, make in MAX_SEGMENTS:
        case(
            f"SparseIndex(max_segments)[{label}]",
            f"SparseIndex(max_segments={label}) and 4 adds",
            _with_segments(make),
            _segments_expect(make()),
        )
    dims = [
        V("None", None),
        V("8", 8),
        V("0", 0),
        V("-1", -1),
        V("1.5", 1.5),
        V("8.0", 8.0),
        V("str-8", "8"),
        V("True", True),
        G("np.int64-8", lambda: np.int64(8)),
        V("2**31", 2**31),
        V("2**63", 2**63),
        V("int-4301-digits", HUGE_INT),
        V("nan", NAN),
        V("list-8", [8]),
    ]
    vocabs = [
        V("None", None),
        V("VOCAB", VOCAB),
        V("list", list(VOCAB)),
        V("str-of-8", "abcdefgh"),
        V("bytes-of-8", b"abcdefgh"),
        V("empty", ()),
        V("ints", tuple(range(DIM))),
        V("Nones", (None,) * DIM),
        V("surrogate-token", (*VOCAB[:-1], "\ud800")),
        G("set", lambda: set(VOCAB)),
        G("dict", lambda: dict.fromkeys(VOCAB)),
        G("generator", lambda: (t for t in VOCAB)),
        G("np-array", lambda: np.array(VOCAB)),
        V("duplicates", ("t",) * DIM),
        V("nine-tokens", (*VOCAB, "extra")),
    ]
    combos = [(d, V("None", None)) for d in dims] + [(V("None", None), v) for v in vocabs[1:]]
    combos += [(V("8", 8), v) for v in vocabs[1:6]] + [
        (V("9", 9), vocabs[1]),
        (V("8.0", 8.0), vocabs[1]),
    ]
    for (dlabel, dmake), (vlabel, vmake) in combos:
        d, v = dmake(), vmake()
        want_vocab = ref_vocab(v, None)
        if want_vocab is not INVALID and want_vocab is not None and not want_vocab:
            want_vocab = INVALID  # no tokens: dimension 0
        want_dim: Any
        if d is None:
            want_dim = (
                None
                if want_vocab is None
                else (INVALID if want_vocab is INVALID else len(want_vocab))
            )
        else:
            want_dim = ref_dim(d)
            if want_vocab not in (None, INVALID) and want_dim != len(want_vocab):
                want_dim = INVALID
        ok = want_dim is not INVALID and want_vocab is not INVALID
        case(
            f"SparseIndex(dim={dlabel}, vocab={vlabel})",
            f"SparseIndex(dim={dlabel}, vocab={vlabel}), then add and search one row",
            lambda c, dmake=dmake, vmake=vmake: _construct_and_use(dmake(), vmake()),
            _ctor_expect(want_dim, want_vocab) if ok else None,
        )


def _numpy_dim_round_trip(c: Ctx) -> Any:
    index = SparseIndex(dim=np.int64(DIM))
    index.add(["x"], new_vectors("int-mem", 1))
    index.save(c.scratch / "out")
    return SparseIndex.open(c.scratch / "out")


def _numpy_dim_expect(ctx: Ctx, opened: Any) -> Any:
    assert opened.ids() == ["x"] and opened.dim == DIM and type(opened.dim) is int, srepr(opened)
    return None


def _construct_and_use(dim: Any, vocab: Any) -> Any:
    index = SparseIndex(dim=dim, vocab=vocab)
    d = index.dim or DIM
    if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
        return index  # a dimension no vectors can have: accepting it is the finding
    if d <= 1 << 16:
        row = SparseVectors.from_dicts([{0: 1.0}], dim=d, vocab=index.vocab)
        index.add(["x"], row)
        hits = index.search(row, 2)
        assert hits.ids.tolist() == [["x", None]], "add then search failed to find the document"
    return index


def _ctor_expect(dim: Any, vocab: Any) -> Any:
    def check(ctx: Ctx, index: Any) -> Any:
        assert index.dim == (dim or DIM), f"dim {srepr(index.dim)}"
        assert type(index.dim) is int, f"dim kept as {type(index.dim).__name__}, not int"
        assert index.vocab == vocab, f"vocab {srepr(index.vocab)}"
        return None

    return check


# ---------------------------------------------------------------------- open and save
def _template(target: str) -> Path:
    return WORLD["templates"][target]


def _copy(target: str = "str-disk") -> Callable[[Path], Path]:
    def setup(scratch: Path) -> Path:
        dest = scratch / "copy"
        shutil.copytree(_template(target), dest)
        return dest

    return setup


def _edit(fn: Callable[[Path], None], target: str = "str-disk") -> Callable[[Path], Path]:
    def setup(scratch: Path) -> Path:
        dest = _copy(target)(scratch)
        fn(dest)
        return dest

    return setup


def _current(root: Path) -> tuple[str, dict[str, Any]]:
    pointer = json.loads((root / "CURRENT").read_text().split("\n")[0])
    return pointer["manifest"], json.loads((root / pointer["manifest"]).read_text())


def _recommit(root: Path, manifest: Any, name: str | None = None) -> None:
    """Write ``manifest`` with a CURRENT whose checksums match: only the content is wrong."""
    name = name or _current(root)[0]
    data = json.dumps(manifest).encode()
    (root / name).write_bytes(data)
    pointer = json.dumps({"manifest": name, "sha256": hashlib.sha256(data).hexdigest()})
    check = hashlib.sha256(pointer.encode()).hexdigest()
    (root / "CURRENT").write_text(f"{pointer}\n{check}\n")


def _manifest_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        _, manifest = _current(root)
        result = change(manifest)
        _recommit(root, manifest if result is None else result)

    return fn


def _first(root: Path, pattern: str) -> Path:
    """The first file matching ``pattern`` (alternatives ``|``-separated, for other layouts)."""
    for alternative in pattern.split("|"):
        found = sorted(p for p in root.rglob(alternative) if p.is_file())
        if found:
            return found[0]
    raise AssertionError(f"the index folder holds no {pattern}: the suite needs a new pattern")


def _same_size_garbage(pattern: str) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        path = _first(root, pattern)
        path.write_bytes(b"\xff" * path.stat().st_size)

    return fn


def _mkdir_with(files: dict[str, bytes]) -> Callable[[Path], Path]:
    def setup(scratch: Path) -> Path:
        dest = scratch / "folder"
        dest.mkdir()
        for name, data in files.items():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
        return dest

    return setup


def _tombstone_edit(values: Any) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        path = _first(root, "tombstones/*.npy")
        np.save(path, values)
        _, manifest = _current(root)
        rel = str(path.relative_to(root))
        manifest["files"][rel] = {
            "size": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        _recommit(root, manifest)

    return fn


OPEN_SETUPS: list[tuple[str, Callable[[Path], Any], bool]] = [
    ("valid", _copy(), True),
    ("valid-int", _copy("int-disk"), True),
    ("missing", lambda s: s / "missing", False),
    ("empty-folder", _mkdir_with({}), False),
    ("foreign-files-only", _mkdir_with({"FOREIGN.txt": b"x"}), False),
    ("a-file", lambda s: (s / "FOREIGN-file").write_bytes(b"x") and s / "FOREIGN-file", False),
    ("CURRENT-empty", _edit(lambda r: (r / "CURRENT").write_bytes(b"")), False),
    ("CURRENT-garbage", _edit(lambda r: (r / "CURRENT").write_bytes(b"\xff\xfe garbage")), False),
    (
        "CURRENT-no-check-line",
        _edit(
            lambda r: (r / "CURRENT").write_text(r.joinpath("CURRENT").read_text().split("\n")[0])
        ),
        False,
    ),
    (
        "CURRENT-a-folder",
        _edit(lambda r: ((r / "CURRENT").unlink(), (r / "CURRENT").mkdir())),
        False,
    ),
    ("CURRENT-json-list", _edit(lambda r: _recommit_pointer(r, [1, 2])), False),
    (
        "CURRENT-to-missing-manifest",
        _edit(lambda r: _recommit_pointer(r, {"manifest": "nope.json", "sha256": "0" * 64})),
        False,
    ),
    (
        "CURRENT-to-parent-folder",
        _edit(lambda r: _recommit_pointer(r, {"manifest": "..", "sha256": "0" * 64})),
        False,
    ),
    ("manifest-json-list", _edit(lambda r: _recommit(r, [1, 2, 3])), False),
    ("manifest-json-number", _edit(lambda r: _recommit(r, 5)), False),
    ("manifest-no-files", _edit(_manifest_edit(lambda m: m.pop("files"))), False),
    ("manifest-no-segments", _edit(_manifest_edit(lambda m: m.pop("segments"))), False),
    ("manifest-no-dim", _edit(_manifest_edit(lambda m: m.pop("dim"))), False),
    ("manifest-format-2", _edit(_manifest_edit(lambda m: m.update(format_version=2))), False),
    ("manifest-files-list", _edit(_manifest_edit(lambda m: m.update(files=[]))), False),
    ("manifest-dim-str", _edit(_manifest_edit(lambda m: m.update(dim="8"))), False),
    ("manifest-dim-negative", _edit(_manifest_edit(lambda m: m.update(dim=-1))), False),
    ("manifest-params-empty", _edit(_manifest_edit(lambda m: m.update(params={}))), False),
    ("manifest-next_seq-str", _edit(_manifest_edit(lambda m: m.update(next_seq="x"))), False),
    (
        "manifest-n_docs-wrong",
        _edit(_manifest_edit(lambda m: m["segments"][0].update(n_docs=99))),
        False,
    ),
    (
        "manifest-segment-name-traversal",
        _edit(_manifest_edit(lambda m: m["segments"][0].update(name="../../x"))),
        False,
    ),
    (
        "manifest-vocab-file-missing",
        _edit(_manifest_edit(lambda m: m.update(vocab_file="vocab-missing.json"))),
        False,
    ),
    (
        "manifest-file-outside",
        _edit(
            _manifest_edit(
                lambda m: m["files"].update({"../FOREIGN-out": {"size": 1, "sha256": "0"}})
            )
        ),
        False,
    ),
    (
        "segment-truncated",
        _edit(lambda r: _first(r, "fwd_values.npy").write_bytes(b"\x93NUMPY")),
        False,
    ),
    ("segments-folder-gone", _edit(lambda r: shutil.rmtree(r / "segments")), False),
    ("tombstone-out-of-range", _edit(_tombstone_edit(np.array([10**6]))), False),
    ("tombstone-float", _edit(_tombstone_edit(np.array([0.5]))), False),
    ("tombstone-2d", _edit(_tombstone_edit(np.array([[0]]))), False),
]


def _recommit_pointer(root: Path, pointer_obj: Any) -> None:
    pointer = json.dumps(pointer_obj)
    check = hashlib.sha256(pointer.encode()).hexdigest()
    (root / "CURRENT").write_text(f"{pointer}\n{check}\n")


# damaged files of the same size: caught by the checksums, and with verify=False by the parsers
SAME_SIZE = [
    ("ids", "ids.json|id.id_bytes.npy|id*"),
    ("payloads", "payloads.jsonl|payload.payload_data.npy|payload*"),
    ("vocab", "vocab-*.json"),
    ("fwd_indptr-npy", "fwd_indptr.npy"),
    ("post_docs-npy", "post_docs.npy"),
    ("tombstones-npy", "tombstones/*.npy"),
]


def _open_expect(target: str) -> Callable[[Ctx, Any], Any]:
    def check(ctx: Ctx, index: Any) -> Any:
        model = MODELS[target]
        problems = diff_snapshots(snapshot(index, model), model_snapshot(model), model)
        assert not problems, "opened index differs: " + "; ".join(problems)
        return None

    return check


def open_cases() -> None:
    for label, setup, valid in OPEN_SETUPS:
        target = "int-disk" if label == "valid-int" else "str-disk"
        for verify in (True, False):
            for mmap in (True, False) if label.startswith("valid") else (True,):
                case(
                    f"open[{label}]/verify={verify}/mmap={mmap}",
                    f"SparseIndex.open(<{label}>, mmap={mmap}, verify={verify})",
                    lambda c, verify=verify, mmap=mmap: SparseIndex.open(
                        c.made, mmap=mmap, verify=verify
                    ),
                    _open_expect(target) if valid else None,
                    setup=setup,
                    readonly_setup=True,
                )
        case(
            f"SparseIndex(path)[{label}]",
            f"SparseIndex(<{label}>)",
            lambda c: SparseIndex(c.made),
            _open_expect(target)
            if valid
            else (
                None
                if label.startswith(("CURRENT", "manifest", "segment", "tombstone"))
                else any_result
            ),
            setup=setup,
            readonly_setup=True,
        )
    for mmap, verify in ((None, None), ("yes", "no"), (0, 1)):
        case(
            f"open[valid]/verify={verify!r}/mmap={mmap!r}",
            f"SparseIndex.open(<valid>, mmap={mmap!r}, verify={verify!r})",
            lambda c, mmap=mmap, verify=verify: SparseIndex.open(c.made, mmap=mmap, verify=verify),
            _open_expect("str-disk"),
            setup=_copy(),
            readonly_setup=True,
        )
    for label, pattern in SAME_SIZE:
        for verify in (True, False):
            case(
                f"open[same-size-garbage-{label}]/verify={verify}",
                f"SparseIndex.open(<{pattern} overwritten, same size>, verify={verify})",
                lambda c, verify=verify: SparseIndex.open(c.made, verify=verify),
                None,
                setup=_edit(_same_size_garbage(pattern)),
                readonly_setup=True,
            )
    for label, value in (
        V("int", 5),
        V("None", None),
        V("bytes", b"index"),
        V("empty-str (the working directory)", ""),
        V("nul-in-path", "a\x00b"),
        V("name-too-long", "n" * 300),
        V("list", ["index"]),
    ):
        case(
            f"open[path={label}]",
            f"SparseIndex.open({label})",
            lambda c, value=value: SparseIndex.open(value()),
            None,
        )
        case(
            f"SparseIndex(path={label})",
            f"SparseIndex({label})",
            lambda c, value=value: SparseIndex(value()),
            None if label in ("int", "bytes", "list") else any_result,
        )


def _reopen_at(name: str) -> Callable[[Ctx], Path]:
    return lambda c: c.scratch / name


def save_cases() -> None:
    def into(name: str) -> Callable[[Ctx], Any]:
        return lambda c: c.index.save(c.scratch / name)

    saving = returns_none(lambda m: replace(m))  # a copy: compared with the model, not byte-exact
    for target in ("str-mem", "int-mem", "empty", "empty-dim"):
        case(
            f"save[new-folder]@{target}",
            "index.save(<new folder>)",
            into("out"),
            saving,
            target=target,
            reopen=_reopen_at("out"),
        )
        case(
            f"save[folder-with-foreign-files]@{target}",
            "index.save(<folder holding the user's files>)",
            into("out"),
            saving,
            target=target,
            setup=lambda s: plant_foreign(s / "out"),
            reopen=_reopen_at("out"),
        )
    for target in ("str-disk", "int-disk"):
        case(
            f"save[own-path]@{target}",
            "index.save()",
            lambda c: c.index.save(),
            saving,
            target=target,
            saves=True,
        )
        case(
            f"save[twice]@{target}",
            "index.save(); index.save()",
            lambda c: (c.index.save(), c.index.save())[1],
            saving,
            target=target,
            saves=True,
        )
        case(
            f"save[compact-then-save]@{target}",
            "index.compact(); index.save()",
            lambda c: (c.index.compact(), c.index.save())[1],
            saving,
            target=target,
            saves=True,
        )
        case(
            f"save[elsewhere]@{target}",
            "index.save(<new folder>)",
            into("out"),
            saving,
            target=target,
            reopen=_reopen_at("out"),
        )
    case(
        "save[over-another-index]@str-mem",
        "index.save(<folder holding another index and the user's files>)",
        into("out"),
        saving,
        target="str-mem",
        setup=lambda s: shutil.copytree(_template("int-disk"), s / "out"),
        reopen=_reopen_at("out"),
    )
    for label, value in (
        V("none-in-memory", None),
        V("int", 5),
        V("bytes", b"out"),
        V("list", ["out"]),
        V("nul-in-path", "a\x00b"),
        V("name-too-long", "n" * 300),
    ):
        case(
            f"save[path={label}]@str-mem",
            f"index.save({label})",
            lambda c, value=value: c.index.save(value()),
            None,
            target="str-mem",
        )
    case(
        "save[path=a-file]@str-mem",
        "index.save(<path of an existing file>)",
        lambda c: c.index.save(c.made),
        None,
        target="str-mem",
        setup=lambda s: (s / "FOREIGN-file").write_bytes(b"x") and s / "FOREIGN-file",
    )
    case(
        "save[path=under-a-file]@str-mem",
        "index.save(<file>/sub)",
        lambda c: c.index.save(c.made / "sub"),
        None,
        target="str-mem",
        setup=lambda s: (s / "FOREIGN-file").write_bytes(b"x") and s / "FOREIGN-file",
    )
    case(
        "save[path=empty-str: the working directory]@str-mem",
        "index.save('') with the user's files in the working directory",
        lambda c: c.index.save(""),
        saving,
        target="str-mem",
        reopen=lambda c: c.scratch,
    )
    case(
        "SparseIndex(path=a-file).save()",
        "SparseIndex(<existing file>).save()",
        lambda c: SparseIndex(c.made).save(),
        None,
        setup=lambda s: (s / "FOREIGN-file").write_bytes(b"x") and s / "FOREIGN-file",
    )
    case(
        "SparseIndex(path=foreign-folder).add().save()",
        "SparseIndex(<folder with the user's files>), add a row, save()",
        lambda c: (lambda ix: (ix.add(["x"], new_vectors("str-mem", 1)), ix.save()))(
            SparseIndex(c.made)
        ),
        any_result,
        setup=lambda s: (plant_foreign(s / "folder"), s / "folder")[1],
    )


# failed calls on an index with a path, then save() and reopen: nothing of the failure persists
FAIL_THEN_SAVE: list[tuple[str, Callable[[Ctx], Any]]] = [
    ("add-duplicate", lambda c: c.index.add(["a0"], new_vectors("str-disk", 1))),
    ("add-duplicate-in-batch", lambda c: c.index.add(["n", "n"], new_vectors("str-disk", 2))),
    (
        "add-bad-payload",
        lambda c: c.index.add(["n"], new_vectors("str-disk", 1), payloads=[{"a": object()}]),
    ),
    (
        "add-deep-payload",
        lambda c: c.index.add(
            ["n"], new_vectors("str-disk", 1), payloads=[{"a": deep_list(5_000)}]
        ),
    ),
    ("add-dim-mismatch", lambda c: c.index.add(["n"], SparseVectors.from_dicts([{0: 1.0}], dim=9))),
    ("add-other-vocab", lambda c: c.index.add(["n"], vecs([{0: 1.0}], OTHER_VOCAB))),
    ("add-float-id", lambda c: c.index.add([1.5], new_vectors("str-disk", 1))),
    (
        "upsert-bad-payload",
        lambda c: c.index.upsert(["a0"], new_vectors("str-disk", 1), payloads=[{1: 2}]),
    ),
    ("upsert-unhashable-id", lambda c: c.index.upsert([["a0"]], new_vectors("str-disk", 1))),
    ("delete-unknown", lambda c: c.index.delete(["a0", "unknown"])),
    ("delete-unhashable", lambda c: c.index.delete(["a0", ["x"]])),
    ("add-unvalidated-nan", lambda c: c.index.add(["n"], _unvalidated([0, 1], [1], [NAN])())),
    (
        "add-unvalidated-index>=dim",
        lambda c: c.index.add(["n"], _unvalidated([0, 1], [DIM], [1.0])()),
    ),
]


def fail_then_save_cases() -> None:
    for label, run in FAIL_THEN_SAVE:
        case(
            f"fail-then-save[{label}]@str-disk",
            f"{label}, then index.save() and reopen",
            run,
            None,
            target="str-disk",
            then_save=True,
            isolate="unvalidated" in label,
        )


# ---------------------------------------------------------------------- SparseVectors
GOOD_INDPTR, GOOD_INDICES, GOOD_VALUES = [0, 2, 3], [1, 4, 2], [0.5, 1.5, 2.0]

INDPTRS = [
    V("list", GOOD_INDPTR),
    V("tuple", tuple(GOOD_INDPTR)),
    G("np-int32", lambda: np.array(GOOD_INDPTR, np.int32)),
    G("np-uint8", lambda: np.array(GOOD_INDPTR, np.uint8)),
    G("np-uint64", lambda: np.array(GOOD_INDPTR, np.uint64)),
    G("np-float64", lambda: np.array(GOOD_INDPTR, np.float64)),
    V("float-in-list", [0, 1.5, 3]),
    V("integral-float-in-list", [0, 2, 3.0]),
    V("bool-in-list", [0, True, 3]),
    V("str-items", ["0", "2", "3"]),
    V("not-from-0", [1, 2, 3]),
    V("end-past-nnz", [0, 2, 4]),
    V("end-before-nnz", [0, 2, 2]),
    V("decreasing", [0, 3, 2, 3]),
    V("negative", [0, -1, 3]),
    V("empty", []),
    V("only-0", [0]),
    G("2d", lambda: np.array([GOOD_INDPTR])),
    V("2**63-item", [0, 2**63, 3]),
    G("np-uint64-huge", lambda: np.array([0, 2**64 - 1, 3], np.uint64)),
    V("2**64-item", [0, 2**64, 3]),
    V("None", None),
    V("str", "023"),
    V("bytes", b"\x00\x02\x03"),
    G("set", lambda: {0, 2, 3}),
    G("generator", lambda: (x for x in GOOD_INDPTR)),
    V("nan-item", [0, NAN, 3]),
    G("np.int64-items", lambda: [0, np.int64(2), 3]),
]
INDICES = [
    V("list", GOOD_INDICES),
    G("np-int64", lambda: np.array(GOOD_INDICES, np.int64)),
    G("np-uint16", lambda: np.array(GOOD_INDICES, np.uint16)),
    V("float-1.7", [1.7, 4, 2]),
    V("integral-floats", [1.0, 4.0, 2.0]),
    G("np-int64-2**32+2", lambda: np.array([1, 4, 2**32 + 2], np.int64)),
    G("np-int64-2**31", lambda: np.array([1, 4, 2**31], np.int64)),
    V("list-2**32+2", [1, 4, 2**32 + 2]),
    G("np-uint64-max", lambda: np.array([1, 4, 2**64 - 1], np.uint64)),
    V("2**70", [1, 4, 2**70]),
    V("-2**63", [1, 4, -(2**63)]),
    V("negative", [-1, 4, 2]),
    V("equal-dim", [1, DIM, 2]),
    V("dim-1", [1, DIM - 1, 2]),
    V("unsorted", [4, 1, 2]),
    V("duplicate", [1, 1, 2]),
    V("bool-item", [True, 4, 2]),
    G("np-bool", lambda: np.array([True, False, True])),
    V("str-items", ["1", "4", "2"]),
    V("nan-item", [1, 4, NAN]),
    V("inf-item", [1, 4, INF]),
    G("2d", lambda: np.array([GOOD_INDICES])),
    V("too-short", [1, 4]),
    V("too-long", [1, 4, 2, 3]),
    V("None", None),
    V("None-item", [1, 4, None]),
    V("complex-item", [1, 4, 2 + 0j]),
    G("object-np-ints", lambda: np.array([np.int64(1), np.int64(4), np.int64(2)], object)),
    G("np-int8", lambda: np.array(GOOD_INDICES, np.int8)),
]
VALUES = [
    V("list", GOOD_VALUES),
    G("np-float16", lambda: np.array(GOOD_VALUES, np.float16)),
    G("np-float64", lambda: np.array(GOOD_VALUES, np.float64)),
    V("ints", [1, 2, 3]),
    V("nan", [NAN, 1.5, 2.0]),
    V("inf", [0.5, INF, 2.0]),
    V("-inf", [0.5, -INF, 2.0]),
    V("subnormal", [1e-45, 1.5, 2.0]),
    V("underflow-to-0", [1e-50, 1.5, 2.0]),
    V("overflow-1e39", [1e39, 1.5, 2.0]),
    V("overflow--1e39", [-1e39, 1.5, 2.0]),
    V("float32-max", [3.4e38, 1.5, 2.0]),
    V("explicit-zeros", [0.0, 0.0, 0.0]),
    V("minus-zero", [-0.0, 1.5, 2.0]),
    V("bools", [True, False, True]),
    V("str-items", ["0.5", "1.5", "2"]),
    V("too-short", [0.5, 1.5]),
    G("2d", lambda: np.array([GOOD_VALUES])),
    V("complex", [1 + 1j, 1.5, 2.0]),
    V("complex-zero-imag", [1 + 0j, 1.5, 2.0]),
    V("None", None),
    V("None-item", [0.5, None, 2.0]),
    V("Decimal-items", [Decimal("0.5"), Decimal("1.5"), Decimal(2)]),
    V("Fraction-items", [Fraction(1, 2), Fraction(3, 2), Fraction(2)]),
    V("2**200-item", [2**200, 1.5, 2.0]),
    V("huge-int-item", [HUGE_INT, 1.5, 2.0]),
]
DIMS = [
    V("8", 8),
    V("5", 5),
    V("4 (an index equals it)", 4),
    V("0", 0),
    V("-1", -1),
    V("1.7", 1.7),
    V("8.0", 8.0),
    V("str-8", "8"),
    V("str-abc", "abc"),
    V("None", None),
    V("True", True),
    G("np.int64-8", lambda: np.int64(8)),
    G("np.float64-8", lambda: np.float64(8.0)),
    G("np.uint64-8", lambda: np.uint64(8)),
    G("np.int64--1", lambda: np.int64(-1)),
    V("2**31-1", 2**31 - 1),
    V("2**31", 2**31),
    V("2**63", 2**63),
    V("2**64", 2**64),
    V("10**30", 10**30),
    V("int-4301-digits", HUGE_INT),
    V("nan", NAN),
    V("inf", INF),
    V("list-8", [8]),
    V("complex-8", 8 + 0j),
    V("Decimal-8", Decimal(8)),
    G("int-subclass-8", lambda: _Int(8)),
]
VOCABS = [
    V("tuple", VOCAB),
    V("list", list(VOCAB)),
    V("short", VOCAB[:7]),
    V("long", (*VOCAB, "x")),
    V("str-of-8", "abcdefgh"),
    V("bytes-of-8", b"abcdefgh"),
    G("set", lambda: set(VOCAB)),
    G("dict", lambda: dict.fromkeys(VOCAB)),
    G("generator", lambda: (t for t in VOCAB)),
    G("np-array", lambda: np.array(VOCAB)),
    V("ints", list(range(DIM))),
    V("Nones", [None] * DIM),
    V("surrogate", (*VOCAB[:-1], "\ud800")),
    V("duplicates", ["t"] * DIM),
    V("empty-strings", [""] * DIM),
    V("bytes-tokens", [t.encode() for t in VOCAB]),
    V("empty", ()),
    V("int", 8),
]


def sv_expect(ref: Any) -> Any:
    if ref is INVALID:
        return None

    def check(ctx: Ctx, got: Any) -> Any:
        check_csr(got, ref)
        return None

    return check


def sparse_vectors_constructor_cases() -> None:
    base = {
        "indptr": GOOD_INDPTR,
        "indices": GOOD_INDICES,
        "values": GOOD_VALUES,
        "dim": DIM,
        "vocab": None,
    }
    for field, pool in (
        ("indptr", INDPTRS),
        ("indices", INDICES),
        ("values", VALUES),
        ("dim", DIMS),
        ("vocab", VOCABS),
    ):
        for label, make in pool:

            def args(field: str = field, make: Callable[[], Any] = make) -> dict[str, Any]:
                return {**base, field: make()}

            a = args()
            ref = ref_csr(a["indptr"], a["indices"], a["values"], a["dim"], a["vocab"])
            case(
                f"SparseVectors({field}={label})",
                f"SparseVectors({field}={label}, ...)",
                lambda c, args=args: SparseVectors(**args()),
                sv_expect(ref),
            )
    # validate=False: documented to trust the arrays (any result), but a leak is still a leak
    for label, kwargs in (
        ("dim-str-abc", {"dim": "abc"}),
        ("dim-None", {"dim": None}),
        ("indices-str", {"indices": ["x", "y", "z"]}),
        ("indptr-None", {"indptr": None}),
        ("values-None-item", {"values": [0.5, None, 2.0]}),
        ("indices-2**70", {"indices": [1, 4, 2**70]}),
    ):
        case(
            f"SparseVectors(validate=False, {label})",
            f"SparseVectors({label}, validate=False)",
            lambda c, kwargs=kwargs: SparseVectors(**{**base, **kwargs}, validate=False),
            any_result,
        )


FROM_DICTS: list[tuple[str, Callable[[], Any], Any, Any]] = [
    ("ok", lambda: [{0: 1.0}], DIM, None),
    ("tokens", lambda: [{"tok1": 1.0}], None, VOCAB),
    ("token-without-vocab", lambda: [{"tok1": 1.0}], DIM, None),
    ("unknown-token", lambda: [{"nope": 1.0}], None, VOCAB),
    ("float-key-1.7", lambda: [{1.7: 1.0}], DIM, None),
    ("np.float64-key", lambda: [{np.float64(1.0): 1.0}], DIM, None),
    ("bool-key", lambda: [{True: 1.0}], DIM, None),
    ("negative-key", lambda: [{-1: 1.0}], DIM, None),
    ("key-equal-dim", lambda: [{DIM: 1.0}], DIM, None),
    ("key-2**40", lambda: [{2**40: 1.0}], DIM, None),
    ("key-huge-int", lambda: [{HUGE_INT: 1.0}], DIM, None),
    ("np.int64-key", lambda: [{np.int64(1): 1.0}], DIM, None),
    ("None-key", lambda: [{None: 1.0}], DIM, None),
    ("tuple-key", lambda: [{(1,): 1.0}], DIM, None),
    ("bytes-key", lambda: [{b"tok1": 1.0}], None, VOCAB),
    ("numeric-str-key-no-vocab", lambda: [{"1": 1.0}], DIM, None),
    ("nan-weight", lambda: [{0: NAN}], DIM, None),
    ("inf-weight", lambda: [{0: INF}], DIM, None),
    ("overflow-weight", lambda: [{0: 1e39}], DIM, None),
    ("str-weight-numeric", lambda: [{0: "1.0"}], DIM, None),
    ("str-weight", lambda: [{0: "x"}], DIM, None),
    ("None-weight", lambda: [{0: None}], DIM, None),
    ("bool-weight", lambda: [{0: True}], DIM, None),
    ("complex-weight", lambda: [{0: 1 + 0j}], DIM, None),
    ("Decimal-weight", lambda: [{0: Decimal("1.5")}], DIM, None),
    ("huge-int-weight", lambda: [{0: HUGE_INT}], DIM, None),
    ("np.float32-weight", lambda: [{0: np.float32(1.5)}], DIM, None),
    ("zero-weight", lambda: [{0: 0.0, 1: 1.0}], DIM, None),
    ("minus-zero-weight", lambda: [{0: -0.0}], DIM, None),
    ("subnormal-weight", lambda: [{0: 1e-45}], DIM, None),
    ("index-and-token-same-term", lambda: [{0: 1.0, "tok0": 2.0}], None, VOCAB),
    ("index-and-token-cancel", lambda: [{0: 1.0, "tok0": -1.0}], None, VOCAB),
    ("rows-of-pairs", lambda: [[(0, 1.0)]], DIM, None),
    ("rows-of-str", lambda: ["abc"], DIM, None),
    ("rows-None-item", lambda: [None], DIM, None),
    ("rows-a-dict", lambda: {0: 1.0}, DIM, None),
    ("rows-generator", lambda: ({i: 1.0} for i in range(3)), DIM, None),
    ("rows-empty", lambda: [], DIM, None),
    ("rows-None", lambda: None, DIM, None),
    ("no-dim-no-vocab", lambda: [{0: 1.0}], None, None),
    ("dim-0", lambda: [{}], 0, None),
    ("dim--1", lambda: [{}], -1, None),
    ("dim-1.5", lambda: [{0: 1.0}], 1.5, None),
    ("dim-str", lambda: [{0: 1.0}], "8", None),
    ("dim-2**40", lambda: [{0: 1.0}], 2**40, None),
    ("dim-9-vocab-8", lambda: [{0: 1.0}], 9, VOCAB),
    ("vocab-str", lambda: [{"a": 1.0}], None, "abcdefgh"),
    ("mappingproxy-row", lambda: [MappingProxyType({0: 1.0})], DIM, None),
]


def ref_from_dicts(rows: Any, dim: Any, vocab: Any) -> Any:
    voc = ref_vocab(vocab, None)
    if voc is INVALID:
        return INVALID
    if dim is None:
        if voc is None:
            return INVALID
        dim = len(voc)
    d = ref_dim(dim)
    if d is INVALID or (voc is not None and len(voc) != d) or rows is None:
        return INVALID
    if isinstance(rows, (str, bytes, Mapping)):
        return INVALID
    token_ids = {t: i for i, t in enumerate(voc)} if voc is not None else {}
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            return INVALID
        acc: dict[int, np.float32] = {}
        for key, weight in row.items():
            if isinstance(key, str):
                if key not in token_ids:
                    return INVALID
                j = token_ids[key]
            elif isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
                j = int(key)
                if not 0 <= j < d or j >= 2**31:
                    return INVALID
            else:
                return INVALID
            if not _real(weight):
                return INVALID
            with np.errstate(all="ignore"):
                big = isinstance(weight, int) and abs(weight) >= 2**1000
                w = np.float32(np.inf) if big else np.float32(float(weight))
            if not np.isfinite(w):
                return INVALID
            acc[j] = np.float32(acc.get(j, np.float32(0)) + w)
        kept = sorted((j, w) for j, w in acc.items() if w != 0)
        out.append((tuple(j for j, _ in kept), bits(float(w) for _, w in kept)))
    return rows_to_csr(out, d, voc)


def from_cases() -> None:
    for label, rows, dim, vocab in FROM_DICTS:
        try:
            ref = ref_from_dicts(rows(), dim, vocab)
        except Exception:  # noqa: BLE001
            ref = INVALID
        case(
            f"SparseVectors.from_dicts[{label}]",
            f"SparseVectors.from_dicts({label}, dim={srepr(dim)}, vocab={'VOCAB' if vocab == VOCAB else srepr(vocab)})",
            lambda c, rows=rows, dim=dim, vocab=vocab: SparseVectors.from_dicts(
                rows(), dim=dim, vocab=vocab
            ),
            sv_expect(ref),
        )
    dense_ok = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.5]], np.float32)
    ref_ok = rows_to_csr([((1,), bits([1.5])), ((0, 2), bits([2.0, 0.5]))], 3, None)
    dense_cases: list[tuple[str, Callable[[], Any], Any]] = [
        ("ok", lambda: dense_ok, ref_ok),
        ("list-of-lists", lambda: dense_ok.tolist(), ref_ok),
        ("1-d", lambda: dense_ok[0], rows_to_csr([((1,), bits([1.5]))], 3, None)),
        ("nan", lambda: np.array([[NAN, 1.0]]), INVALID),
        ("inf", lambda: np.array([[INF, 1.0]]), INVALID),
        ("overflow", lambda: np.array([[1e39, 1.0]]), INVALID),
        ("3-d", lambda: np.zeros((1, 2, 3)), INVALID),
        ("0-d", lambda: np.array(1.0), INVALID),
        ("no-columns", lambda: np.zeros((2, 0)), INVALID),
        ("no-rows", lambda: np.zeros((0, 3)), rows_to_csr([], 3, None)),
        ("str-numbers", lambda: np.array([["0", "1.5"]]), INVALID),
        ("str-words", lambda: np.array([["a", "b"]]), INVALID),
        ("object-None", lambda: np.array([[None, 1.0]], object), INVALID),
        ("bool", lambda: np.array([[True, False]]), rows_to_csr([((0,), bits([1.0]))], 2, None)),
        ("complex", lambda: np.array([[1 + 1j, 0]]), INVALID),
        ("ragged", lambda: [[1.0], [1.0, 2.0]], INVALID),
        ("None", lambda: None, INVALID),
    ]
    for label, make, ref in dense_cases:
        case(
            f"SparseVectors.from_dense[{label}]",
            f"SparseVectors.from_dense({label})",
            lambda c, make=make: SparseVectors.from_dense(make()),
            sv_expect(ref),
        )
    coo = sp.coo_matrix(([1.0, 2.0, 0.5], ([0, 0, 1], [1, 1, 2])), shape=(2, 3))
    ref_coo = rows_to_csr([((1,), bits([3.0])), ((2,), bits([0.5]))], 3, None)
    big = sp.csr_matrix(
        (np.array([1.0]), np.array([2**32 + 1], np.int64), np.array([0, 1], np.int64)),
        shape=(1, 2**32 + 8),
    )
    neg_wrap = sp.csr_matrix(
        (np.array([1.0]), np.array([2**31 + 1], np.int64), np.array([0, 1], np.int64)),
        shape=(1, 2**31 + 8),
    )
    scipy_cases: list[tuple[str, Callable[[], Any], Any]] = [
        ("csr", lambda: sp.csr_matrix(dense_ok), ref_ok),
        ("csr_array", lambda: sp.csr_array(dense_ok), ref_ok),
        ("coo-duplicates", lambda: coo, ref_coo),
        ("nan", lambda: sp.csr_matrix(np.array([[NAN, 1.0]])), INVALID),
        ("inf", lambda: sp.csr_matrix(np.array([[INF, 1.0]])), INVALID),
        ("no-columns", lambda: sp.csr_matrix((2, 0)), INVALID),
        ("dense-ndarray", lambda: dense_ok, ref_ok),
        ("list", lambda: dense_ok.tolist(), ref_ok),
        ("str", lambda: "abc", INVALID),
        ("None", lambda: None, INVALID),
        (
            "bool-matrix",
            lambda: sp.csr_matrix(np.array([[True, False]])),
            rows_to_csr([((0,), bits([1.0]))], 2, None),
        ),
        ("index-beyond-int32", lambda: big, INVALID),
        ("index-wraps-negative", lambda: neg_wrap, INVALID),
    ]
    for label, make, ref in scipy_cases:
        case(
            f"SparseVectors.from_scipy[{label}]",
            f"SparseVectors.from_scipy({label})",
            lambda c, make=make: SparseVectors.from_scipy(make()),
            sv_expect(ref),
        )


def _three() -> SparseVectors:
    return SparseVectors.from_dicts([{0: 1.0}, {1: 2.0, 3: 0.5}, {2: 1.5}], dim=4)


THREE_ROWS = sv_rows(_three())


def ref_select(key: Any, n: int = 3) -> Any:
    """The rows a key selects, or INVALID."""
    if isinstance(key, slice):
        try:
            return list(range(n))[key]
        except (TypeError, ValueError):
            return INVALID
    if isinstance(key, (bool, np.bool_)):
        return INVALID
    try:
        i = operator.index(key)
        return [i % n] if -n <= i < n else INVALID
    except TypeError:
        pass
    if not isinstance(key, (list, tuple, np.ndarray, range)):
        return INVALID
    items = key.tolist() if isinstance(key, np.ndarray) else list(key)
    if isinstance(key, np.ndarray) and key.ndim != 1:
        return INVALID
    if items and all(isinstance(x, (bool, np.bool_)) for x in items):
        return [i for i, x in enumerate(items) if x] if len(items) == n else INVALID
    out = []
    for x in items:
        if isinstance(x, (bool, np.bool_)):
            return INVALID
        try:
            i = operator.index(x)
        except TypeError:
            return INVALID
        if not -n <= i < n:
            return INVALID
        out.append(i % n)
    return out


GETITEM_KEYS = [
    V("0", 0),
    V("2", 2),
    V("-1", -1),
    V("-3", -3),
    V("3", 3),
    V("-4", -4),
    V("1.5", 1.5),
    V("1.0", 1.0),
    V("str", "a"),
    V("None", None),
    V("bytes", b"x"),
    V("True", True),
    V("list", [0, 2]),
    V("list-repeat", [0, 0]),
    V("list-out-of-range", [3]),
    V("list-float", [1.5]),
    G("np-mask", lambda: np.array([True, False, True])),
    V("list-mask", [True, False, True]),
    V("mask-too-short", [True, False]),
    G("np-mask-too-long", lambda: np.array([True, False, True, True])),
    V("slice-all", slice(None)),
    V("slice-reversed", slice(None, None, -1)),
    V("slice-past-end", slice(1, 100)),
    V("slice-empty", slice(5, 10)),
    V("slice-step-2", slice(0, 3, 2)),
    V("slice-step-0", slice(None, None, 0)),
    V("slice-float", slice(0.5, 2)),
    G("np.int64", lambda: np.int64(1)),
    G("0-d-array", lambda: np.array(1)),
    G("2-d-array", lambda: np.array([[0, 1]])),
    V("empty-list", []),
    G("empty-int-array", lambda: np.array([], np.int64)),
    V("tuple", (0, 1)),
    G("set", lambda: {0, 1}),
    V("range", range(2)),
    V("Ellipsis", ...),
    V("2**63", 2**63),
    V("10**30", 10**30),
    V("list-2**63", [2**63]),
]


def sparse_vectors_method_cases() -> None:
    for label, make in GETITEM_KEYS:
        sel = ref_select(make())
        ref = INVALID if sel is INVALID else rows_to_csr([THREE_ROWS[i] for i in sel], 4, None)
        case(
            f"SparseVectors[{label}]",
            f"<3 rows>[{label}]",
            lambda c, make=make: _three()[make()],
            sv_expect(ref),
        )
    for label, make in (
        V("0", 0),
        V("-1", -1),
        V("3", 3),
        V("-4", -4),
        V("1.5", 1.5),
        V("str", "a"),
        V("None", None),
        G("np.int64", lambda: np.int64(1)),
        V("True", True),
    ):
        value = make()
        i = ref_select(value)
        ok = i is not INVALID and not isinstance(value, list)

        def row_check(c: Ctx, got: Any, i: Any = i) -> Any:
            indices, vbits = THREE_ROWS[i[0]]
            assert got[0].tolist() == list(indices) and bits(got[1].tolist()) == vbits, srepr(got)
            return None

        case(
            f"SparseVectors.row[{label}]",
            f"<3 rows>.row({label})",
            lambda c, make=make: _three().row(make()),
            row_check if ok else None,
        )
    for label, make in (
        V("1", 1),
        V("2", 2),
        V("10**20", 10**20),
        V("0", 0),
        V("-1", -1),
        V("1.5", 1.5),
        V("str", "a"),
        V("None", None),
        V("True", True),
        G("np.int64", lambda: np.int64(1)),
        V("nan", NAN),
        V("list", [1]),
    ):
        k = ref_k(make())

        def topk_check(c: Ctx, got: Any, k: Any = k) -> Any:
            want = []
            for indices, vbits in THREE_ROWS:
                vals = np.asarray(vbits, np.uint32).view(np.float32)
                order = sorted(range(len(indices)), key=lambda j: (-vals[j], indices[j]))[:k]
                keep = sorted(order)
                want.append((tuple(indices[j] for j in keep), tuple(vbits[j] for j in keep)))
            check_csr(got, rows_to_csr(want, 4, None))
            return None

        case(
            f"SparseVectors.top_k_per_row[{label}]",
            f"<3 rows>.top_k_per_row({label})",
            lambda c, make=make: _three().top_k_per_row(make()),
            None if k is INVALID else topk_check,
        )
    parts_cases: list[tuple[str, Callable[[], Any], Any]] = [
        ("two", lambda: [_three(), _three()], rows_to_csr(THREE_ROWS * 2, 4, None)),
        ("tuple-of-one", lambda: (_three(),), rows_to_csr(THREE_ROWS, 4, None)),
        ("empty", lambda: [], INVALID),
        ("None", lambda: None, INVALID),
        ("dim-mismatch", lambda: [_three(), SparseVectors.empty(5)], INVALID),
        ("vocab-mismatch", lambda: [vecs([{0: 1.0}]), vecs([{0: 1.0}], OTHER_VOCAB)], INVALID),
        ("with-str", lambda: [_three(), "x"], INVALID),
        ("with-None", lambda: [_three(), None], INVALID),
        ("str", lambda: "ab", INVALID),
        ("generator", lambda: (v for v in [_three()]), INVALID),
        ("dict", lambda: {0: _three()}, INVALID),
    ]
    for label, make, ref in parts_cases:
        expect = sv_expect(ref)
        if label == "generator":
            expect = sv_expect(rows_to_csr(THREE_ROWS, 4, None))  # a generator of parts may work
        case(
            f"SparseVectors.concat[{label}]",
            f"SparseVectors.concat({label})",
            lambda c, make=make: SparseVectors.concat(make()),
            expect,
        )
    for label, make in (
        V("str", "x"),
        V("None", None),
        G("dim-mismatch", lambda: SparseVectors.empty(5)),
        G("ndarray", lambda: np.eye(4, dtype=np.float32)),
    ):
        case(
            f"SparseVectors.dot[{label}]",
            f"<3 rows>.dot({label})",
            lambda c, make=make: _three().dot(make()),
            None,
        )
        case(
            f"SparseVectors.check_compatible[{label}]",
            f"<3 rows>.check_compatible({label})",
            lambda c, make=make: _three().check_compatible(make()),
            None,
        )
    for label, vocab in (
        ("surrogate-token", (*VOCAB[:-1], "\ud800")),
        ("int-tokens", tuple(range(DIM))),
    ):
        case(
            f"SparseVectors.vocab_hash[{label}]",
            f"SparseVectors.empty(8, vocab={label}).vocab_hash()",
            lambda c, vocab=vocab: SparseVectors.empty(DIM, vocab).vocab_hash(),
            None
            if label == "int-tokens"
            else (lambda c, got: (isinstance(got, str) or _fail(srepr(got))) and None),
        )


def npz_cases() -> None:
    def roundtrip(ids: Any) -> Callable[[Ctx], Any]:
        def run(c: Ctx) -> Any:
            save_npz(c.scratch / "v.npz", _three(), ids)
            return load_npz(c.scratch / "v.npz")

        return run

    def rt_check(ids: Any) -> Callable[[Ctx, Any], Any]:
        def check(c: Ctx, got: Any) -> Any:
            vectors, loaded = got
            check_csr(vectors, rows_to_csr(THREE_ROWS, 4, None))
            want = None if ids is None else [str(i) for i in ids]
            assert loaded == want, f"ids {srepr(loaded)}"
            return None

        return check

    for label, ids, ok in (
        ("no-ids", None, True),
        ("str-ids", ["a", "b", "c"], True),
        ("int-ids", [1, 2, 3], True),
        ("wrong-count", ["a"], False),
        ("huge-int-id", [HUGE_INT, 1, 2], False),
        ("surrogate-id", ["\ud800", "b", "c"], True),
        ("nul-id", ["a\x00", "b", "c"], True),
        ("str-ids-arg", "abc", False),
    ):
        case(
            f"save_npz+load_npz[{label}]",
            f"save_npz(<file>, <3 rows>, ids={label}); load_npz(<file>)",
            roundtrip(ids),
            rt_check(ids) if ok else None,
        )
    for label, path in (
        ("folder", "."),
        ("nul-in-path", "a\x00b"),
        ("name-too-long", "n" * 300),
    ):
        case(
            f"save_npz[path={label}]",
            f"save_npz({label}, <3 rows>)",
            lambda c, path=path: save_npz(path, _three()),
            None,
        )

    def open_fd(scratch: Path) -> int:
        (scratch / "FOREIGN-open-file.txt").write_bytes(b"the user's open file\n")
        return os.open(scratch / "FOREIGN-open-file.txt", os.O_RDWR)

    # an int is no path: open() takes it for a file descriptor (of whatever the caller has open)
    case(
        "save_npz[path=int (an open descriptor)]",
        "save_npz(<int: the number of an open file descriptor>, <3 rows>)",
        lambda c: save_npz(c.made, _three()),
        None,
        setup=open_fd,
        isolate=True,
    )

    def make_file(
        data: bytes | None = None, arrays: dict[str, Any] | None = None
    ) -> Callable[[Path], Path]:
        def setup(scratch: Path) -> Path:
            path = scratch / "FOREIGN-in.npz"
            if arrays is not None:
                with open(path, "wb") as f:
                    np.savez(f, **arrays)
            elif data is not None:
                path.write_bytes(data)
            return path

        return setup

    good = {
        "indptr": np.array([0, 1]),
        "indices": np.array([1]),
        "values": np.array([1.0], np.float32),
        "dim": np.array(4),
    }
    for label, setup in (
        ("missing", make_file()),
        ("empty-file", make_file(b"")),
        ("text-file", make_file(b"hello")),
        ("zip-magic-only", make_file(b"PK\x03\x04garbage")),
        ("no-dim", make_file(arrays={k: v for k, v in good.items() if k != "dim"})),
        ("dim-str", make_file(arrays={**good, "dim": np.array("abc")})),
        ("dim-float", make_file(arrays={**good, "dim": np.array(4.5)})),
        ("indices-float", make_file(arrays={**good, "indices": np.array([1.7])})),
        ("indices-wrap", make_file(arrays={**good, "indices": np.array([2**32 + 1], np.int64)})),
        ("values-nan", make_file(arrays={**good, "values": np.array([NAN])})),
        ("ids-wrong-count", make_file(arrays={**good, "ids": np.array(["a", "b"])})),
        ("vocab-wrong-length", make_file(arrays={**good, "vocab": np.array(["a"])})),
        ("dim-2d", make_file(arrays={**good, "dim": np.array([4, 4])})),
    ):
        case(
            f"load_npz[{label}]",
            f"load_npz(<{label}>)",
            lambda c: load_npz(c.made),
            None,
            setup=setup,
            readonly_setup=True,
        )
    case("load_npz[folder]", "load_npz(<folder>)", lambda c: load_npz(c.scratch), None)
    case(
        "load_npz[int (an open descriptor)]",
        "load_npz(<int: an open file descriptor>)",
        lambda c: load_npz(c.made),
        None,
        setup=open_fd,
        isolate=True,
    )


def generate() -> list[Case]:
    for fn in (
        id_value_cases,
        id_collection_cases,
        payload_cases,
        payload_arg_cases,
        payload_alias_cases,
        vector_arg_cases,
        k_cases,
        thread_cases,
        return_payload_cases,
        params_cases,
        filter_cases,
        misc_cases,
        constructor_cases,
        open_cases,
        save_cases,
        fail_then_save_cases,
        sparse_vectors_constructor_cases,
        from_cases,
        sparse_vectors_method_cases,
        npz_cases,
    ):
        fn()
    return CASES


generate()


# ====================================================================== the runner
WORLD: dict[str, Any] = {}


def _limit_memory() -> None:
    with open("/proc/self/status") as f:
        size_kb = int(next(line for line in f if line.startswith("VmSize:")).split()[1])
    limit = size_kb * 1024 + MEMORY_HEADROOM
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _as_models(value: Any) -> list[Model] | None:
    if value is None:
        return None
    if isinstance(value, Model):
        return [value]
    return list(value)


def execute(case: Case) -> list[str]:
    """Run one case (in the child) and return what went wrong."""
    scratch = Path(tempfile.mkdtemp(prefix="case-", dir=WORLD["root"]))
    cwd = os.getcwd()
    try:
        return _execute(case, scratch)
    finally:
        os.chdir(cwd)
        shutil.rmtree(scratch, ignore_errors=True)


def _execute(case: Case, scratch: Path) -> list[str]:
    problems: list[str] = []
    os.chdir(scratch)
    (scratch / "FOREIGN-cwd.txt").write_bytes(b"the user's file in the working directory\n")
    ctx = Ctx(scratch=scratch)
    if case.setup is not None:
        ctx.made = case.setup(scratch)
    made_before = (
        file_table(ctx.made) if case.readonly_setup and isinstance(ctx.made, Path) else None
    )
    target = case.target
    files_before: dict[str, str] | None = None
    baseline = None
    if target is not None:
        ctx.model = MODELS[target]
        baseline = WORLD["baselines"][target]
        if target.endswith("-disk"):
            ctx.path = scratch / "index"
            shutil.copytree(WORLD["templates"][target], ctx.path)
            ctx.index = SparseIndex.open(ctx.path)
            files_before = file_table(ctx.path)
        else:
            ctx.index = build(target)  # afresh: no case sees what another did
    foreign_before = foreign_files(scratch)

    raised: BaseException | None = None
    result: Any = None
    try:
        result = case.run(ctx)
    except SparsearchError as err:
        raised = err
    except BaseException as err:  # noqa: BLE001 - what leaked is the finding
        raised = err
        where = traceback.extract_tb(err.__traceback__)[-1]
        problems.append(
            f"leaked {describe(err)} (raised at {Path(where.filename).name}:{where.lineno})"
        )
    if raised is not None:
        raised.__traceback__ = None  # its frames would keep the call's objects (and locks) alive

    expected: list[Model] | None = None
    if raised is None:
        if case.expect is None:
            problems.append(
                f"accepted (only a named error is right here): returned {srepr(result)}"
            )
        else:
            try:
                expected = _as_models(case.expect(ctx, result))
            except AssertionError as err:
                problems.append(f"wrong result: {srepr(str(err), 600)}")
            except Exception as err:  # noqa: BLE001
                problems.append(f"the result could not be checked: {describe(err)}")

    if target is not None and ctx.index is not None:
        if raised is not None:
            diff = diff_snapshots(snapshot(ctx.index, ctx.model), baseline)
            if diff:
                problems.append("the failed call changed the index: " + "; ".join(diff[:4]))
        elif expected is not None:
            diffs = state_diffs(ctx.index, expected, ctx.model, baseline)
            if all(diffs):
                problems.append(
                    "the index does not hold the right state: " + "; ".join(diffs[0][:4])
                )
        if case.then_save:
            try:
                ctx.index.save()
            except BaseException as err:  # noqa: BLE001
                problems.append(f"save() after the call raised {describe(err)}")
    if ctx.path is not None:
        after = file_table(ctx.path)
        ctx.index = None
        if raised is not None and not case.then_save and after != files_before:
            problems.append(
                "the failed call changed the index's files: "
                + table_diff(files_before or {}, after)
            )
        reopened = grab(lambda: SparseIndex.open(ctx.path))
        if isinstance(reopened, tuple):
            problems.append(f"reopening the index raised {reopened[1]}")
        elif raised is not None or expected is None:
            diff = diff_snapshots(snapshot(reopened, ctx.model), baseline)
            if diff:
                problems.append("reopened, the index differs from before: " + "; ".join(diff[:4]))
        else:
            committed = case.saves or case.then_save
            candidates = ([] if committed else [ctx.model]) + expected
            diffs = state_diffs(reopened, candidates, ctx.model, baseline)
            if all(diffs):
                problems.append(
                    "reopened, the index does not hold the right state: " + "; ".join(diffs[-1][:4])
                )
    if case.reopen is not None and raised is None and expected is not None:
        reopened = grab(lambda: SparseIndex.open(case.reopen(ctx)))
        if isinstance(reopened, tuple):
            problems.append(f"reopening what was saved raised {reopened[1]}")
        else:
            model = expected[0]
            diff = diff_snapshots(snapshot(reopened, model), model_snapshot(model), model)
            if diff:
                problems.append("what was saved reopens differently: " + "; ".join(diff[:4]))
    for path, data in foreign_before.items():
        if not path.is_file():
            problems.append(f"a foreign file was deleted: {path.relative_to(scratch)}")
        elif path.read_bytes() != data:
            problems.append(f"a foreign file was changed: {path.relative_to(scratch)}")
    if made_before is not None and file_table(ctx.made) != made_before:
        problems.append(
            "the call changed the files it was given: "
            + table_diff(made_before, file_table(ctx.made))
        )
    return problems


def state_diffs(
    index: Any, models: list[Model], unchanged: Model, baseline: Any
) -> list[list[str]]:
    """Per candidate model, how the index differs from it (``unchanged``: from the baseline)."""
    return [
        diff_snapshots(snapshot(index, m), baseline)
        if m is unchanged
        else diff_snapshots(snapshot(index, m), model_snapshot(m), m)
        for m in models
    ]


def run_in_child(case: Case) -> list[str]:
    """Fork, run the case there, and return its problems (a crash or a hang is one too)."""
    read_fd, write_fd = os.pipe()
    gc.freeze()  # the child's collector then leaves the inherited objects (and their pages) alone
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        data = b""
        try:
            gc.disable()
            faulthandler.disable()  # a crash is reported by the parent, without a dump
            os.close(read_fd)
            _limit_memory()
            data = json.dumps(execute(case)).encode()
        except BaseException as err:  # noqa: BLE001
            data = json.dumps(
                [f"the harness failed: {describe(err)}\n{traceback.format_exc()[-1500:]}"]
            ).encode()
        finally:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(write_fd, view) :]
            finally:
                os._exit(0)
    os.close(write_fd)
    chunks = []
    deadline = os.times().elapsed + CHILD_TIMEOUT_S
    hung = False
    while True:
        left = deadline - os.times().elapsed
        ready, _, _ = select.select([read_fd], [], [], max(left, 0))
        if not ready:
            hung = True
            os.kill(pid, signal.SIGKILL)
            break
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if hung:
        return [f"hung: no answer within {CHILD_TIMEOUT_S:.0f} s"]
    if os.WIFSIGNALED(status):
        return [f"crashed: the process died of {signal.Signals(os.WTERMSIG(status)).name}"]
    if not chunks:
        return [f"the process exited without a report (status {status})"]
    problems: list[str] = json.loads(b"".join(chunks))
    return problems


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The fixture indexes (in memory and saved with foreign files), and their snapshots."""
    shm = Path("/dev/shm")  # fsync is free on tmpfs: the many saves stay fast
    if shm.is_dir() and os.access(shm, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="sparsearch-bad-input-", dir=shm))
    else:
        root = tmp_path_factory.mktemp("bad-input")
    WORLD.clear()
    WORLD["root"] = root
    WORLD["templates"] = {}
    WORLD["baselines"] = {}
    for target in TARGETS:
        index = build(target)
        if target.endswith("-disk"):
            folder = root / f"template-{target}"
            index.save(folder)
            plant_foreign(folder)
            WORLD["templates"][target] = folder
            index = SparseIndex.open(folder)
        WORLD["baselines"][target] = snapshot(index, MODELS[target])  # also compiles the kernels
    yield WORLD
    shutil.rmtree(root, ignore_errors=True)


# ====================================================================== the tests
def test_there_are_over_a_thousand_distinct_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})[:10]
    assert len(CASES) >= MIN_CASES, len(CASES)


def test_the_fixture_indexes_hold_what_the_reference_says(world: dict[str, Any]) -> None:
    """The oracle itself: each fixture's snapshot is what its model predicts."""
    for target in TARGETS:
        model = MODELS[target]
        diff = diff_snapshots(world["baselines"][target], model_snapshot(model), model)
        assert not diff, (target, diff)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world: dict[str, Any]) -> None:
    problems = run_in_child(case) if case.isolate else execute(case)
    if problems:  # no traceback: the message says it all (and tracebacks of this file are slow)
        pytest.fail(
            f"case {case.id}\n  call: {case.call}\n  " + "\n  ".join(problems), pytrace=False
        )


# ---------------------------------------------------------------------- hypothesis: extra CSR fuzz
_ints = st.one_of(st.integers(-3, 12), st.sampled_from([2**31, 2**32 + 1, -(2**31) - 1]))
_arrays = st.one_of(
    st.lists(_ints, max_size=6),
    st.lists(_ints, max_size=6).map(lambda xs: np.array(xs, dtype=np.int64)),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
    st.lists(st.floats(-1e40, 1e40), max_size=6).map(np.array),
    st.lists(st.booleans(), max_size=6),
)


@settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(indptr=_arrays, indices=_arrays, values=_arrays, dim=st.one_of(_ints, st.floats(-2, 20)))
def test_random_csr_arrays_are_kept_exactly_or_refused_by_name(
    indptr: Any, indices: Any, values: Any, dim: Any
) -> None:
    ref = ref_csr(indptr, indices, values, dim)
    try:
        got = SparseVectors(indptr, indices, values, dim)
    except SparsearchError:
        return
    except Exception as err:  # noqa: BLE001
        pytest.fail(
            f"SparseVectors({indptr!r}, {indices!r}, {values!r}, {dim!r}) leaked {describe(err)}"
        )
    assert ref is not INVALID, (
        f"accepted SparseVectors({indptr!r}, {indices!r}, {values!r}, {dim!r})"
    )
    check_csr(got, ref)
