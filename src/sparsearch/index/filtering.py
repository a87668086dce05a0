"""Filters compiled to one boolean mask per segment, over its payload columns.

Each condition is a few vectorised numpy operations over one column (no Python per document), and
``must`` / ``should`` / ``must_not`` combine their masks. The semantics are Qdrant's: a match or a
range on a missing or null field is false (so its ``must_not`` is true); ``is_null`` holds where
the field is missing or null; a list-valued field matches when one of its elements does; integers
and floats compare exactly as numbers. :func:`check_filter` first checks a filter against the
whole index, where a field that some segment lacks is simply null in that segment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping

import numpy as np
import numpy.typing as npt

from sparsearch.errors import FilterError
from sparsearch.index.payload_columns import Column, PayloadColumns, exact_float
from sparsearch.search import Condition, DocId, Filter, HasId, IsNull, Match, Range

Mask = npt.NDArray[np.bool_]
HasIds = Callable[[frozenset[DocId]], Mask]
"""A segment's mask of the documents with one of the given external ids."""

_ACCEPTS = {
    "keyword": {"keyword", "keyword[]"},
    "integer": {"integer", "integer[]", "float"},
    "boolean": {"boolean"},
    "range": {"integer", "integer[]", "float"},
}
"""The column types each kind of match (and a range) applies to."""
_WHAT = {
    "keyword": "a string match",
    "integer": "an integer match",
    "boolean": "a boolean match",
    "range": "a range",
}
_INT64 = np.iinfo(np.int64)
_BEYOND = 1 << 64  # an integer bound past every int64: what an infinite float bound becomes


def check_filter(flt: Filter, schema: Mapping[str, Collection[str]]) -> None:
    """Raise :class:`FilterError` if ``flt`` names a payload field that no segment has, or
    applies a condition that clashes with the field's type in some segment. ``schema``: each
    field's column types across the segments (:meth:`PayloadColumns.fields`)."""
    for cond in _field_conditions(flt):
        types = schema.get(cond.key)
        if types is None:
            known = ", ".join(repr(name) for name in sorted(schema)[:20]) or "none"
            raise FilterError(f"unknown payload field {cond.key!r} (fields: {known})")
        for column_type in sorted(types):
            problem = clash(cond, column_type)
            if problem:
                raise FilterError(problem)


def clash(cond: Match | Range | IsNull, column_type: str) -> str | None:
    """Why ``cond`` cannot apply to a column of ``column_type`` (``None``: it can)."""
    if column_type == "empty":
        return None
    if column_type == "json":
        return (
            f"payload field {cond.key!r} holds objects, nested or mixed lists, or values of "
            "mixed types: it cannot be filtered"
        )
    if isinstance(cond, IsNull):
        return None
    wanted = "range" if isinstance(cond, Range) else cond.kind
    if wanted is None or column_type in _ACCEPTS[wanted]:
        return None
    return f"{_WHAT[wanted]} cannot apply to payload field {cond.key!r} of type {column_type}"


def compile_mask(flt: Filter, columns: PayloadColumns, has_ids: HasIds) -> Mask:
    """The documents of one segment that ``flt`` allows, as a boolean mask of ``columns.n``.

    ``has_ids`` gives the segment's mask of documents with the given ids. Raises
    :class:`FilterError` where a condition clashes with this segment's column type.
    """
    mask = np.ones(columns.n, bool)
    for cond in flt.must:
        mask &= _mask(cond, columns, has_ids)
    if flt.should:
        mask &= np.logical_or.reduce([_mask(cond, columns, has_ids) for cond in flt.should])
    for cond in flt.must_not:
        mask &= ~_mask(cond, columns, has_ids)
    return mask


def _mask(cond: Condition, columns: PayloadColumns, has_ids: HasIds) -> Mask:
    if isinstance(cond, Filter):
        return compile_mask(cond, columns, has_ids)
    if isinstance(cond, HasId):
        return np.asarray(has_ids(cond.ids), bool)
    column = columns.column(cond.key)
    problem = clash(cond, column.type)
    if problem:
        raise FilterError(problem)
    if isinstance(cond, IsNull):
        return ~column.present
    if column.type == "empty":
        return np.zeros(columns.n, bool)
    hits = _matches(cond, column) if isinstance(cond, Match) else _in_range(cond, column)
    return column.per_document(hits)


def _field_conditions(flt: Filter) -> Iterator[Match | Range | IsNull]:
    for cond in (*flt.must, *flt.should, *flt.must_not):
        if isinstance(cond, Filter):
            yield from _field_conditions(cond)
        elif not isinstance(cond, HasId):
            yield cond


def _matches(cond: Match, column: Column) -> Mask:
    """Which elements of ``column`` equal one of ``cond``'s values."""
    elements = column.elements
    if column.type.startswith("keyword"):
        codes = (column.code(value) for value in cond.values if isinstance(value, str))
        targets: list[int | float] = [code for code in codes if code is not None]
    elif column.type == "float":
        exact = (exact_float(value) for value in cond.values if isinstance(value, int))
        targets = [value for value in exact if value is not None]
    else:  # integer or boolean columns: ints (bools for booleans) after the clash check
        ints = (int(value) for value in cond.values if isinstance(value, int))
        targets = [value for value in ints if _INT64.min <= value <= _INT64.max]
    return np.isin(elements, np.array(targets, elements.dtype))


def _in_range(cond: Range, column: Column) -> Mask:
    """Which elements of a numeric ``column`` lie within ``cond``."""
    values = column.elements
    hits = np.ones(values.shape, bool)
    if values.dtype.kind == "f":
        for op, bound in _float_bounds(cond):
            hits &= op(values, bound)
        return hits
    lo, hi = _int_bounds(cond)
    if lo > hi or lo > _INT64.max or hi < _INT64.min:
        return np.zeros(values.shape, bool)
    if lo > _INT64.min:
        hits &= values >= lo
    if hi < _INT64.max:
        hits &= values <= hi
    return hits


def _int_bounds(cond: Range) -> tuple[int, int]:
    """The least and greatest integers within ``cond`` (beyond int64 where unbounded)."""
    lo, hi = -_BEYOND, _BEYOND
    if cond.gt is not None:
        lo = max(lo, _floor(cond.gt) + 1)
    if cond.gte is not None:
        lo = max(lo, -_floor(-cond.gte))
    if cond.lt is not None:
        hi = min(hi, -_floor(-cond.lt) - 1)
    if cond.lte is not None:
        hi = min(hi, _floor(cond.lte))
    return lo, hi


def _floor(bound: int | float) -> int:
    """The exact floor of ``bound``; past int64 for infinities."""
    if isinstance(bound, int):
        return bound
    if math.isinf(bound):
        return _BEYOND if bound > 0 else -_BEYOND
    return math.floor(bound)


def _float_bounds(cond: Range) -> Iterator[tuple[np.ufunc, float]]:
    """``cond``'s bounds as comparisons with float64s, exact for every float64 value.

    An integer bound that float64 cannot hold becomes its nearest float ``near``: no float lies
    strictly between them, so ``v > b`` is ``v >= near`` when ``near > b`` and ``v > near`` when
    ``near < b`` (and likewise for the upper bounds).
    """
    lower = {"gt": np.greater, "gte": np.greater_equal}
    upper = {"lt": np.less, "lte": np.less_equal}
    for name, op in (*lower.items(), *upper.items()):
        bound = getattr(cond, name)
        if bound is None:
            continue
        near = bound if isinstance(bound, float) else _nearest_float(bound)
        if near == bound:
            yield op, near
        elif name in lower:
            yield (np.greater_equal if near > bound else np.greater), near
        else:
            yield (np.less_equal if near < bound else np.less), near


def _nearest_float(bound: int) -> float:
    try:
        return float(bound)
    except OverflowError:
        return math.inf if bound > 0 else -math.inf
