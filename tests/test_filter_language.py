"""The filter language of sparsearch.search: conditions, the Qdrant-style mapping syntax, its
validation, canonical keys, and the older ``Filter(ids=..., payload=...)`` form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsearch.errors import InvalidInputError
from sparsearch.search import Filter, HasId, IsNull, Match, Range, SearchParams, as_filter

NESTED = {
    "must": [
        {"key": "lang", "match": {"value": "en"}},
        {"key": "year", "range": {"gte": 2020, "lt": 2024.5}},
        {"should": [{"has_id": [3, "a"]}, {"is_null": {"key": "x"}}]},
    ],
    "should": [
        {"key": "tag", "match": {"any": ["b", "a"]}},
        {"key": "ok", "match": {"value": True}},
    ],
    "must_not": [{"key": "n", "match": {"value": 0}}],
}
OBJECTS = Filter(
    must=[
        Range("year", gte=2020, lt=2024.5),
        Filter(should=[IsNull("x"), HasId(["a", 3])]),
        Match("lang", "en"),
    ],
    should=[Match("ok", True), Match("tag", any=["a", "b", "a"])],
    must_not=Match("n", 0),
)


def test_a_mapping_and_objects_make_equal_filters_with_one_key():
    parsed = as_filter(NESTED)
    assert parsed == OBJECTS
    assert parsed.key == OBJECTS.key
    assert hash(parsed) == hash(OBJECTS)
    assert {parsed: 1}[OBJECTS] == 1
    assert as_filter(OBJECTS.to_dict()) == OBJECTS  # to_dict round-trips


def test_order_and_repeats_of_conditions_do_not_change_the_key():
    a, b = Match("x", "1"), Range("y", gt=0)
    assert Filter(must=[a, b]).key == Filter(must=[b, a, b]).key
    assert Filter(should=[]) == Filter() and Filter().to_dict() == {}
    assert Match("t", any=[2, 1, 2]) == Match("t", any=[1, 2])


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (Match("x", 1), Match("x", True)),  # True is not 1 here
        (Match("x", 1), Match("x", "1")),
        (Match("x", 1), Match("y", 1)),
        (HasId([1]), HasId(["1"])),
        (Filter(must=[IsNull("x")]), Filter(must_not=[IsNull("x")])),
        (Filter(must=[IsNull("x")]), IsNull("x")),
        (Range("x", gt=1), Range("x", gte=1)),
    ],
)
def test_different_conditions_differ(one, other):
    assert one != other
    assert Filter(must=[one]).key != Filter(must=[other]).key


def test_numpy_values_are_plain_values():
    assert Match("x", np.int64(3)) == Match("x", 3)
    assert Match("x", np.str_("a")) == Match("x", "a")
    assert Match("x", np.bool_(True)) == Match("x", True)
    assert Range("x", gt=np.float32(1.5)).gt == 1.5
    assert HasId(np.array([1, 2])).ids == frozenset({1, 2})
    assert type(next(iter(HasId(np.array([1])).ids))) is int


def test_the_older_ids_and_payload_keywords_still_work():
    flt = Filter(ids=["a", "b"], payload={"lang": "en"})
    assert flt == Filter(must=[HasId(["b", "a"]), Match("lang", "en")])
    assert flt.ids == frozenset({"a", "b"}) and flt.payload == {"lang": "en"}
    assert flt.matches_payload({"lang": "en", "x": 1})
    assert not flt.matches_payload({"lang": "fr"}) and not flt.matches_payload(None)
    assert Filter().ids is None and Filter().payload == {} and Filter().matches_payload(None)
    assert as_filter({"ids": ["a", "b"], "payload": {"lang": "en"}}) == flt
    assert (
        as_filter(["a", 1]) == Filter(ids=["a", 1]) == as_filter({"must": [{"has_id": [1, "a"]}]})
    )
    assert Filter(ids=[1, 2], must=[HasId([2, 3])]).ids == frozenset({2})
    assert SearchParams(filter={"payload": {"lang": "en"}}).filter == Filter(payload={"lang": "en"})
    assert as_filter(None) is None and as_filter(flt) is flt


@pytest.mark.parametrize(
    "flt",
    [
        Filter(should=[Match("a", 1)]),
        Filter(must_not=[HasId([1])]),
        Filter(must=[Range("a", gt=1)]),
        Filter(must=[Match("a", any=[1])]),
        Filter(must=[Match("a", 1), Match("a", 2)]),
    ],
)
def test_ids_and_payload_refuse_filters_they_cannot_express(flt):
    with pytest.raises(InvalidInputError, match="compile_mask"):
        _ = flt.ids
    with pytest.raises(InvalidInputError, match="compile_mask"):
        flt.matches_payload({"a": 1})


def test_an_empty_any_is_allowed_and_has_no_kind():
    assert Match("x", any=[]).values == () and Match("x", any=[]).kind is None
    assert as_filter({"must": [{"key": "x", "match": {"any": []}}]}) == Filter(
        must=[Match("x", any=())]
    )


def test_infinite_bounds_are_numbers():
    assert Range("x", lt=math.inf).lt == math.inf
    assert Range("x", gt=10**30).gt == 10**30  # integers stay exact


def cond(item):
    return {"must": [item]}


def deep_list(depth):
    out = []
    for _ in range(depth):
        out = [out]
    return out


class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")


DEEP = deep_list(100_000)  # its repr overflows the stack


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"filter": []}, r"unknown filter keys \['filter'\]"),
        (cond({"key": "a"}), "exactly one of 'match' and 'range'"),
        (cond({"key": "a", "match": {"value": 1}, "range": {"gt": 1}}), "exactly one"),
        (cond({"key": "a", "match": {"value": 1}, "x": 1}), r"unknown condition keys \['x'\]"),
        (cond({"key": "a", "match": {"text": "x"}}), r"unknown match keys \['text'\]"),
        (cond({"key": "a", "match": {}}), "needs exactly one of value and any"),
        (cond({"key": "a", "match": {"value": 1, "any": [1]}}), "exactly one of value and any"),
        (cond({"key": "a", "match": {"value": None}}), "use IsNull"),
        (cond({"key": "a", "match": "x"}), "match must be a mapping"),
        (cond({"key": "a", "match": {"value": 1.5}}), "got 1.5 .use a range"),
        (cond({"key": "a", "match": {"value": {"b": 1}}}), "strings, integers or booleans"),
        (cond({"key": "a", "match": {"value": [1]}}), "strings, integers or booleans"),
        (cond({"key": "a", "match": {"any": "abc"}}), "needs a list of values"),
        (cond({"key": "a", "match": {"any": [1, "b"]}}), "mixes integer and keyword"),
        (cond({"key": "a", "match": {"any": [True, 1]}}), "mixes boolean and integer"),
        (cond({"key": "a", "match": {"any": [1.5]}}), "got 1.5"),
        (cond({"key": "a", "range": {}}), "range on 'a' has no bound"),
        (cond({"key": "a", "range": {"gt": None}}), "has no bound"),
        (cond({"key": "a", "range": {"above": 1}}), r"unknown range keys \['above'\]"),
        (cond({"key": "a", "range": {"gt": "1"}}), "bound gt of 'a' must be a number"),
        (cond({"key": "a", "range": {"lte": True}}), "must be a number, got True"),
        (cond({"key": "a", "range": {"gte": math.nan}}), "bound gte of 'a' is NaN"),
        (cond({"key": "", "match": {"value": 1}}), "non-empty string"),
        (cond({"key": 3, "match": {"value": 1}}), "non-empty string, got 3"),
        (cond({"has_id": "abc"}), "collection of ids"),
        (cond({"has_id": np.array(["a", "b"])[0]}), "collection of ids"),
        ({"ids": np.array(7)}, "collection of ids"),
        (cond({"key": "a", "match": {"any": np.array(1)}}), "needs a list of values"),
        ({"must": np.array(1)}, "must must be a list of conditions"),
        (cond({"has_id": 5}), "collection of ids"),
        (cond({"has_id": [1.5]}), "ids are strings or integers"),
        (cond({"has_id": [True]}), "ids are strings or integers"),
        (cond({"is_null": "a"}), "is_null must be a mapping"),
        (cond({"is_null": {}}), "is_null needs a key"),
        (cond({"is_null": {"key": "a", "x": 1}}), r"unknown is_null keys \['x'\]"),
        (cond({"has_id": [1], "is_null": {"key": "a"}}), "unknown condition keys"),
        (cond({"unknown": 1}), r"unknown condition keys \['unknown'\]"),
        (cond(5), "a condition is a Match"),
        ({"must": "abc"}, "must must be a list of conditions"),
        ({"should": 5}, "should must be a list of conditions"),
        ({"payload": [1]}, "payload filter must be a mapping"),
        ({"payload": {"a": 1.5}}, "use a range"),
        ({"payload": {"a": None}}, "use IsNull"),
        ({"must": [{"should": [{"must_not": [{"key": "a", "range": {}}]}]}]}, "no bound"),
        (cond({"has_id": [10**4300]}), "an id: integers in filters have at most 1024 bits"),
        (cond({"key": "a", "match": {"value": -(2**1024)}}), "got an int of 1025 bits"),
        (cond({"key": "a", "match": {"any": [2**1024]}}), "at most 1024 bits"),
        (cond({"key": "a", "range": {"lt": 2**1024}}), "range bound lt of 'a': integers"),
        (cond({"has_id": [DEEP]}), r"ids are strings or integers, got a list \(no repr\)$"),
        (cond({"has_id": [Unprintable()]}), r"got a Unprintable \(no repr\)"),
        (cond({"key": "x" * 100, "match": {"value": 1}, "range": 1}), r"on 'x{76}\.\.\. needs"),
    ],
)
def test_bad_filters_are_named_errors(spec, message):
    with pytest.raises(InvalidInputError, match=message):
        as_filter(spec)


def test_bad_filters_are_caught_where_they_are_built():
    with pytest.raises(InvalidInputError, match="no bound"):
        Range("a")
    with pytest.raises(InvalidInputError, match="use IsNull"):
        Match("a")
    with pytest.raises(InvalidInputError, match="single string"):
        as_filter("abc")
    with pytest.raises(InvalidInputError, match="got int"):
        as_filter(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="must be a list"):
        SearchParams(filter={"must": 1})
