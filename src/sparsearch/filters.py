"""The filter language of searches: ``must`` / ``should`` / ``must_not`` over ``Match``,
``Range``, ``HasId``, ``IsNull`` and nested filters, built from objects or Qdrant-style mappings.

Engine-neutral (numpy only): the embedded index compiles filters to masks
(:mod:`sparsearch.index.filtering`); a backend translates :meth:`Filter.to_dict`.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from sparsearch.errors import InvalidInputError

DocId = str | int

MatchValue = str | int | bool
"""What a :class:`Match` compares a field with (``bool`` is an ``int`` to Python, not here)."""


@dataclass(frozen=True, eq=False, repr=False)
class _Condition(ABC):
    """What conditions and filters share: equality and hashing by their canonical mapping (so a
    filter built from objects equals the same filter parsed from a mapping), and a repr that
    leaves out what was not given."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The Qdrant-style mapping of this condition, in canonical order."""

    @cached_property
    def _canonical(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Condition) and self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(self._canonical)

    def __repr__(self) -> str:
        given = [(f.name, getattr(self, f.name)) for f in fields(self)]
        shown = ", ".join(f"{name}={value!r}" for name, value in given if value not in (None, ()))
        return f"{type(self).__name__}({shown})"


@dataclass(frozen=True, init=False, eq=False, repr=False)
class Match(_Condition):
    """Payload field ``key`` equals ``value``, or one of ``any`` (an empty ``any`` matches
    nothing). A list-valued field matches when one of its elements does; a missing or null
    field never matches. Values are strings, integers or booleans (``True`` is not ``1``)."""

    key: str
    value: MatchValue | None
    any: tuple[MatchValue, ...] | None

    def __init__(
        self, key: str, value: MatchValue | None = None, any: Iterable[MatchValue] | None = None
    ) -> None:
        key = _field_name(key)
        if (value is None) == (any is None):
            hint = " (to find a missing or null field, use IsNull)" if value is None else ""
            raise InvalidInputError(f"match on {key!r} needs exactly one of value and any{hint}")
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "value", None if value is None else _match_value(value, key))
        object.__setattr__(self, "any", None if any is None else _any_values(any, key))

    @property
    def values(self) -> tuple[MatchValue, ...]:
        """The values a match may equal: ``(value,)`` or ``any``."""
        return (self.value,) if self.value is not None else self.any or ()

    @property
    def kind(self) -> str | None:
        """``"keyword"``, ``"integer"`` or ``"boolean"``: what the values are (``None`` for an
        empty ``any``)."""
        return _value_kind(self.values[0]) if self.values else None

    def to_dict(self) -> dict[str, Any]:
        match = {"value": self.value} if self.any is None else {"any": list(self.any)}
        return {"key": self.key, "match": match}


@dataclass(frozen=True, init=False, eq=False, repr=False)
class Range(_Condition):
    """Numeric payload field ``key`` within the given bounds (at least one). Integers and floats
    compare exactly as numbers (``gt=2.5`` holds for the integer 3); a list-valued field is in
    range when one of its elements is; a missing or null field never is."""

    key: str
    gt: int | float | None
    gte: int | float | None
    lt: int | float | None
    lte: int | float | None

    def __init__(
        self,
        key: str,
        gt: float | None = None,
        gte: float | None = None,
        lt: float | None = None,
        lte: float | None = None,
    ) -> None:
        key = _field_name(key)
        object.__setattr__(self, "key", key)
        bounds = {"gt": gt, "gte": gte, "lt": lt, "lte": lte}
        if all(bound is None for bound in bounds.values()):
            raise InvalidInputError(f"range on {key!r} has no bound; give gt, gte, lt or lte")
        for name, bound in bounds.items():
            object.__setattr__(self, name, _range_bound(bound, name, key))

    def to_dict(self) -> dict[str, Any]:
        bounds = {name: getattr(self, name) for name in ("gt", "gte", "lt", "lte")}
        return {"key": self.key, "range": {k: v for k, v in bounds.items() if v is not None}}


@dataclass(frozen=True, init=False, eq=False, repr=False)
class HasId(_Condition):
    """The document's external id is one of ``ids`` (unknown ids are ignored)."""

    ids: frozenset[DocId]

    def __init__(self, ids: Iterable[DocId]) -> None:
        if not _is_list(ids):
            raise InvalidInputError(
                f"a filter of ids must be a collection of ids, got {short_repr(ids)}"
            )
        object.__setattr__(self, "ids", frozenset(_doc_id(i) for i in ids))

    def to_dict(self) -> dict[str, Any]:
        return {"has_id": sorted(self.ids, key=lambda i: (isinstance(i, str), i))}


@dataclass(frozen=True, init=False, eq=False, repr=False)
class IsNull(_Condition):
    """Payload field ``key`` is missing or null (an empty list is neither)."""

    key: str

    def __init__(self, key: str) -> None:
        object.__setattr__(self, "key", _field_name(key))

    def to_dict(self) -> dict[str, Any]:
        return {"is_null": {"key": self.key}}


@dataclass(frozen=True, init=False, eq=False, repr=False)
class Filter(_Condition):
    """Which documents a search may return: every ``must`` condition holds, at least one
    ``should`` condition holds (when any is given), and no ``must_not`` condition holds.

    Conditions are :class:`Match`, :class:`Range`, :class:`HasId`, :class:`IsNull`, a nested
    ``Filter``, or their Qdrant-style mappings (see :func:`as_filter`). The older keywords still
    work: ``ids=`` adds ``HasId(ids)`` and ``payload={field: value}`` one ``Match`` per field to
    ``must``. Filters equal when their conditions do, however they were built; :attr:`key` is a
    canonical string for caches.

    >>> flt = Filter(must=[Match("lang", "en"), Range("year", gte=2020)], must_not=[HasId([7])])
    >>> flt
    Filter(must=(Match(key='lang', value='en'), Range(key='year', gte=2020)), must_not=(HasId(ids=frozenset({7})),))
    >>> flt == as_filter({"must": [{"key": "year", "range": {"gte": 2020}},
    ...                            {"key": "lang", "match": {"value": "en"}}],
    ...                   "must_not": [{"has_id": [7]}]})
    True
    >>> Filter(ids=["a"], payload={"lang": "en"}).to_dict()
    {'must': [{'has_id': ['a']}, {'key': 'lang', 'match': {'value': 'en'}}]}
    """

    must: tuple[Condition, ...]
    should: tuple[Condition, ...]
    must_not: tuple[Condition, ...]

    def __init__(
        self,
        *,
        must: Conditions | None = None,
        should: Conditions | None = None,
        must_not: Conditions | None = None,
        ids: Iterable[DocId] | None = None,
        payload: Mapping[str, MatchValue] | None = None,
    ) -> None:
        legacy: list[Condition] = [] if ids is None else [HasId(ids)]
        if payload is not None:
            if not isinstance(payload, Mapping):
                raise InvalidInputError(
                    f"payload filter must be a mapping, got {type(payload).__name__}"
                )
            legacy.extend(Match(key, value) for key, value in payload.items())
        object.__setattr__(self, "must", (*legacy, *_conditions(must, "must")))
        object.__setattr__(self, "should", _conditions(should, "should"))
        object.__setattr__(self, "must_not", _conditions(must_not, "must_not"))

    @property
    def key(self) -> str:
        """A canonical string: equal filters, and only they, share it."""
        return self._canonical

    def to_dict(self) -> dict[str, Any]:
        groups = {"must": self.must, "should": self.should, "must_not": self.must_not}
        return {
            name: _canonical_list(conditions) for name, conditions in groups.items() if conditions
        }

    @property
    def ids(self) -> frozenset[DocId] | None:
        """The allowed ids of a filter made of ids and payload equalities only (``None``: any
        id). Raises :class:`InvalidInputError` for other filters, which only the compiled
        filter (:mod:`sparsearch.index.filtering`) evaluates."""
        return self._legacy()[0]

    @property
    def payload(self) -> dict[str, MatchValue]:
        """The ``{field: value}`` equalities of a filter made of ids and payload equalities
        only; raises :class:`InvalidInputError` for other filters, like :attr:`ids`."""
        return self._legacy()[1]

    def matches_payload(self, payload: Mapping[str, Any] | None) -> bool:
        """Whether a document's payload holds every :attr:`payload` equality."""
        wanted = self.payload
        if not wanted:
            return True
        if payload is None:
            return False
        return all(key in payload and payload[key] == value for key, value in wanted.items())

    def _legacy(self) -> tuple[frozenset[DocId] | None, dict[str, MatchValue]]:
        id_sets = [cond.ids for cond in self.must if isinstance(cond, HasId)]
        matches = {cond for cond in self.must if isinstance(cond, Match) and cond.any is None}
        payload = {cond.key: cond.values[0] for cond in matches}
        expressible = len(payload) == len(matches) and all(
            isinstance(cond, HasId) or cond in matches for cond in self.must
        )
        if self.should or self.must_not or not expressible:
            raise InvalidInputError(
                "this filter is more than ids and payload equalities; "
                "evaluate it with sparsearch.index.filtering.compile_mask"
            )
        return (frozenset.intersection(*id_sets) if id_sets else None), payload


Condition = Match | Range | HasId | IsNull | Filter
ConditionLike = Condition | Mapping[str, Any]
Conditions = ConditionLike | Iterable[ConditionLike]
FilterLike = Filter | Match | Range | HasId | IsNull | Mapping[str, Any] | Iterable[DocId]
_FILTER_KEYS = ("must", "should", "must_not", "ids", "payload")
_INT_BITS = 1024  # past float64's range


def as_filter(spec: FilterLike | None) -> Filter | None:
    """Accept a :class:`Filter`, one condition (``Match``, ``Range``, ``HasId``, ``IsNull``: the
    filter that must satisfy it), a mapping, or a collection of allowed ids.

    The mapping is Qdrant's syntax (``must`` / ``should`` / ``must_not`` lists of conditions:
    ``{"key": k, "match": {"value": v}}``, ``{"key": k, "match": {"any": [...]}}``,
    ``{"key": k, "range": {"gte": x, ...}}``, ``{"has_id": [...]}``, ``{"is_null": {"key": k}}``
    or a nested mapping of the same kind) and may also hold the older ``ids`` and ``payload``.

    >>> as_filter({"should": [{"key": "lang", "match": {"any": ["fr", "en"]}},
    ...                       {"is_null": {"key": "lang"}}]})
    Filter(should=(Match(key='lang', any=('en', 'fr')), IsNull(key='lang')))
    >>> as_filter({"must": [{"key": "year", "range": {}}]})
    Traceback (most recent call last):
    ...
    sparsearch.errors.InvalidInputError: range on 'year' has no bound; give gt, gte, lt or lte
    """
    if spec is None or isinstance(spec, Filter):
        return spec
    if isinstance(spec, (Match, Range, HasId, IsNull)):
        return Filter(must=(spec,))
    if isinstance(spec, Mapping):
        return _filter_from_mapping(spec)
    if isinstance(spec, (str, bytes)):
        raise InvalidInputError("a filter of ids must be a collection, not a single string")
    if not isinstance(spec, Iterable):
        raise InvalidInputError(
            f"a filter is a Filter, a mapping or a collection of ids, got {type(spec).__name__}"
        )
    return Filter(ids=spec)


def _filter_from_mapping(spec: Mapping[str, Any]) -> Filter:
    unknown = set(spec) - set(_FILTER_KEYS)
    if unknown:
        raise InvalidInputError(
            f"unknown filter keys {_names(unknown)}; use {', '.join(_FILTER_KEYS)}"
        )
    return Filter(**spec)


def _conditions(spec: Conditions | None, group: str) -> tuple[Condition, ...]:
    if spec is None:
        return ()
    if isinstance(spec, (_Condition, Mapping)):
        return (_condition(spec),)
    if not _is_list(spec):
        raise InvalidInputError(f"{group} must be a list of conditions, got {short_repr(spec)}")
    return tuple(_condition(item) for item in spec)


def _condition(spec: object) -> Condition:
    if isinstance(spec, (Match, Range, HasId, IsNull, Filter)):
        return spec
    if not isinstance(spec, Mapping):
        raise InvalidInputError(
            f"a condition is a Match, Range, HasId, IsNull, Filter or a mapping, got {short_repr(spec)}"
        )
    keys = set(spec)
    if "key" in keys:
        unknown = keys - {"key", "match", "range"}
        if unknown:
            raise InvalidInputError(f"unknown condition keys {_names(unknown)}")
        if len(keys) != 2:
            raise InvalidInputError(
                f"a condition on {short_repr(spec['key'])} needs exactly one of 'match' and 'range'"
            )
        if "match" in spec:
            return Match(spec["key"], **_body(spec["match"], "match", ("value", "any")))
        return Range(spec["key"], **_body(spec["range"], "range", ("gt", "gte", "lt", "lte")))
    if keys == {"has_id"}:
        return HasId(spec["has_id"])
    if keys == {"is_null"}:
        body = _body(spec["is_null"], "is_null", ("key",))
        if "key" not in body:
            raise InvalidInputError("is_null needs a key: {'is_null': {'key': field}}")
        return IsNull(body["key"])
    if keys <= set(_FILTER_KEYS):
        return _filter_from_mapping(spec)
    raise InvalidInputError(
        f"unknown condition keys {_names(keys)}: a condition is a 'key' with 'match' or 'range', "
        "'has_id', 'is_null', or a nested filter of 'must', 'should', 'must_not'"
    )


def _body(spec: object, name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"{name} must be a mapping, got {short_repr(spec)}")
    unknown = set(spec) - set(allowed)
    if unknown:
        raise InvalidInputError(f"unknown {name} keys {_names(unknown)}; use {', '.join(allowed)}")
    return dict(spec)


def _canonical_list(conditions: tuple[Condition, ...]) -> list[dict[str, Any]]:
    """Conditions in canonical order, repeats dropped (order and repeats never matter)."""
    unique = {cond._canonical: cond for cond in conditions}
    return [unique[text].to_dict() for text in sorted(unique)]


def _is_list(value: object) -> bool:
    """Whether ``value`` iterates into items: not a string, bytes, or a 0-d array."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return False
    return not (isinstance(value, np.ndarray) and value.ndim == 0)


def _names(keys: Iterable[object]) -> list[str]:
    return sorted(str(key) for key in keys)


def _field_name(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"a payload field is a non-empty string, got {short_repr(key)}")
    return str(key)


def _match_value(value: object, key: str) -> MatchValue:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _filter_int(value, f"match on {key!r}")
    if isinstance(value, str):
        return str(value)
    hint = " (use a range for numbers with fractions)" if isinstance(value, float) else ""
    raise InvalidInputError(
        f"match on {key!r}: values are strings, integers or booleans, got {short_repr(value)}{hint}"
    )


def _any_values(values: Iterable[MatchValue], key: str) -> tuple[MatchValue, ...]:
    if isinstance(values, Mapping) or not _is_list(values):
        raise InvalidInputError(
            f"match any on {key!r} needs a list of values, got {short_repr(values)}"
        )
    checked = [_match_value(value, key) for value in values]
    kinds = {_value_kind(value) for value in checked}
    if len(kinds) > 1:
        raise InvalidInputError(f"match any on {key!r} mixes {' and '.join(sorted(kinds))} values")
    return tuple(sorted(set(checked)))


def _value_kind(value: MatchValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "integer" if isinstance(value, int) else "keyword"


def _range_bound(bound: object, name: str, key: str) -> int | float | None:
    if isinstance(bound, np.generic):
        bound = bound.item()
    if bound is None:
        return None
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise InvalidInputError(
            f"range bound {name} of {key!r} must be a number, got {short_repr(bound)}"
        )
    if isinstance(bound, float) and math.isnan(bound):
        raise InvalidInputError(f"range bound {name} of {key!r} is NaN")
    if isinstance(bound, float):
        return float(bound)
    return _filter_int(bound, f"range bound {name} of {key!r}")


def _doc_id(doc_id: object) -> DocId:
    """An id as plain ``str`` / ``int``, so set membership matches stored ids."""
    if isinstance(doc_id, np.generic):
        doc_id = doc_id.item()
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise InvalidInputError(f"ids are strings or integers, got {short_repr(doc_id)}")
    return str(doc_id) if isinstance(doc_id, str) else _filter_int(doc_id, "an id")


def _filter_int(value: int, where: str) -> int:
    """A plain ``int`` of at most :data:`_INT_BITS` bits: every id, stored value and bound
    that can make a difference (int64, float64) fits, and the canonical key can print it."""
    if value.bit_length() > _INT_BITS:
        raise InvalidInputError(
            f"{where}: integers in filters have at most {_INT_BITS} bits, got {short_repr(value)}"
        )
    return int(value)


def short_repr(value: object) -> str:
    """``value`` for an error message: cut short, and never failing (a deep list, an int too
    long to print or a broken ``__repr__`` have no repr)."""
    if isinstance(value, int) and value.bit_length() > _INT_BITS:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any failure of a user's __repr__
        return f"a {type(value).__name__} (no repr)"
    return text if len(text) <= 80 else text[:77] + "..."
