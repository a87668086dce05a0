"""Payload columns and compiled filters: round trips through arrays (and .npy files), the typed
columns, and compiled masks against a plain-Python reference evaluator under random payloads and
random nested filters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.errors import FilterError, IndexCorruptError, InvalidInputError
from sparsearch.index.filtering import check_filter, compile_mask
from sparsearch.index.payload_columns import PayloadColumns
from sparsearch.search import Filter, HasId, IsNull, Match, Range, as_filter

INT64 = (-(2**63), 2**63 - 1)
FIELDS = ["a", "b", "c"]

# ---------------------------------------------------------------------------- the reference


def ref_type(values):
    """The column type of a field's non-null values in one segment (the table of
    payload_columns, written out plainly)."""

    def int64(v):
        return type(v) is int and INT64[0] <= v <= INT64[1]

    if all(v == [] for v in values):
        return "empty"  # nothing to compare (but [] is not null)
    if any(type(v) is list for v in values):
        elements = [e for v in values for e in (v if type(v) is list else [v])]
        if all(type(e) is str for e in elements):
            return "keyword[]"
        return "integer[]" if all(int64(e) for e in elements) else "json"
    for kind, test in (("keyword", str), ("boolean", bool)):
        if all(type(v) is test for v in values):
            return kind
    if all(int64(v) for v in values):
        return "integer"

    def float_ok(v):
        if type(v) is float:
            return not math.isnan(v)
        try:
            return type(v) is int and float(v) == v
        except OverflowError:
            return False

    return "float" if all(float_ok(v) for v in values) else "json"


def ref_clash(cond, column_type):
    if column_type == "empty" or isinstance(cond, IsNull) and column_type != "json":
        return False
    if column_type == "json":
        return True
    if isinstance(cond, Range):
        return column_type not in ("integer", "integer[]", "float")
    if not cond.values:
        return False
    first = cond.values[0]
    if type(first) is bool:
        return column_type != "boolean"
    if type(first) is int:
        return column_type not in ("integer", "integer[]", "float")
    return column_type not in ("keyword", "keyword[]")


def same(element, wanted):
    """Qdrant's equality: no bool equals a number, no string a number; numbers numerically."""
    if (type(element) is bool) != (type(wanted) is bool):
        return False
    if (type(element) is str) != (type(wanted) is str):
        return False
    return element == wanted


def in_range(element, cond):
    if type(element) not in (int, float):
        return False
    return (
        (cond.gt is None or element > cond.gt)
        and (cond.gte is None or element >= cond.gte)
        and (cond.lt is None or element < cond.lt)
        and (cond.lte is None or element <= cond.lte)
    )


def ref_holds(cond, doc_id, payload):
    if isinstance(cond, Filter):
        return (
            all(ref_holds(c, doc_id, payload) for c in cond.must)
            and (not cond.should or any(ref_holds(c, doc_id, payload) for c in cond.should))
            and not any(ref_holds(c, doc_id, payload) for c in cond.must_not)
        )
    if isinstance(cond, HasId):
        return doc_id in cond.ids
    value = None if payload is None else payload.get(cond.key)
    if isinstance(cond, IsNull):
        return value is None
    if value is None:
        return False
    elements = value if type(value) is list else [value]
    if isinstance(cond, Match):
        return any(same(e, w) for e in elements for w in cond.values)
    return any(in_range(e, cond) for e in elements)


def field_conditions(flt):
    for cond in (*flt.must, *flt.should, *flt.must_not):
        if isinstance(cond, Filter):
            yield from field_conditions(cond)
        elif not isinstance(cond, HasId):
            yield cond


def ref_types(payloads):
    """Field -> its reference column type over these payloads."""
    values = {}
    for p in payloads:
        for key, value in (p or {}).items():
            values.setdefault(key, [])
            if value is not None:
                values[key].append(value)
    return {key: ref_type(v) for key, v in values.items()}


# ---------------------------------------------------------------------------- helpers


def ids_mask(first, n):
    """``has_ids`` of a segment whose documents have ids first .. first + n - 1."""
    return lambda ids: np.isin(np.arange(first, first + n), sorted(ids))


def reopened(columns, tmp=None):
    """``columns`` through to_arrays / from_arrays (via .npy files under ``tmp`` if given)."""
    arrays, schema = columns.to_arrays()
    schema = json.loads(json.dumps(schema))
    if tmp is not None:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        arrays = {name: np.load(tmp / f"{name}.npy", mmap_mode="r") for name in arrays}
    return PayloadColumns.from_arrays(arrays, schema, columns.n)


def mask(flt, payloads, first=0):
    columns = PayloadColumns.build(payloads, len(payloads))
    return compile_mask(as_filter(flt), columns, ids_mask(first, len(payloads))).tolist()


def schema_of(*segments):
    schema = {}
    for payloads in segments:
        for name, kind in PayloadColumns.build(payloads, len(payloads)).fields().items():
            schema.setdefault(name, set()).add(kind)
    return schema


# ---------------------------------------------------------------------------- round trips

PAYLOADS = [
    {"z": 1, "a": 1.0, "m": -0.0, "u": "日本語 ✓ \x00", "n": None},
    None,
    {},
    {"nested": {"b": [1, {"c": None}], "a": "x"}, "list": [1, "two", 3.5, None], "t": True},
    {"big": 10**30, "nan": math.nan, "inf": -math.inf, "ints": [1, 2], "tags": ["x"]},
    {"lone": "\ud800 surrogate", "a": 2, "u": ""},
]


def as_text(payloads):
    return json.dumps(payloads)  # key order, 1 vs 1.0, NaN all show in the text


@pytest.mark.parametrize("on_disk", [False, True])
def test_payloads_round_trip_through_arrays(tmp_path, on_disk):
    columns = PayloadColumns.build(PAYLOADS, len(PAYLOADS))
    again = reopened(columns, tmp_path if on_disk else None)
    everything = list(range(len(PAYLOADS)))
    for got in (columns.payloads(everything), again.payloads(np.array(everything))):
        assert as_text(got) == as_text(PAYLOADS)
        assert [type(p["a"]) for p in (got[0], got[5])] == [float, int]
    assert again.payload(1) is None and again.payload(2) == {}
    assert again.payloads([3, 0])[0] == PAYLOADS[3]
    assert again.fields() == columns.fields()
    if on_disk:
        assert isinstance(again.column("a").arrays["values"], np.memmap)
    flt = Filter(must=[Range("a", gte=1)], must_not=[Match("tags", "y")])
    has_ids = ids_mask(0, len(PAYLOADS))
    assert (
        compile_mask(flt, again, has_ids).tolist() == compile_mask(flt, columns, has_ids).tolist()
    )


def test_no_payloads_at_all():
    columns = PayloadColumns.build(None, 3)
    assert columns.payloads([0, 1, 2]) == [None] * 3 and columns.fields() == {}
    assert reopened(columns).payloads([2]) == [None]
    assert compile_mask(Filter(must=[IsNull("x")]), columns, ids_mask(0, 3)).tolist() == [True] * 3
    with pytest.raises(InvalidInputError, match="2 payloads for 3 documents"):
        PayloadColumns.build([None, None], 3)


def test_the_column_types():
    payloads = [
        {"kw": "a", "int": 1, "flt": 1, "bool": True, "kws": ["a", "b"], "ints": [1], "obj": {}},
        {"kw": "b", "int": 2**62, "flt": 2.5, "bool": False, "kws": "c", "ints": 2, "obj": 1},
        {"nul": None, "kws": [], "ints": [], "empties": []},
        {"mixed": 1, "nanf": math.nan, "huge": 2**64 + 1, "big": 2**64, "wide": 2**53 + 1},
        {"mixed": "1", "flts": [1.5], "lists": [["a"]], "bools": [True], "wide_f": 2**53 + 1},
        {"wide_f": 0.5},
    ]
    assert PayloadColumns.build(payloads, 6).fields() == {
        "big": "float",  # 2**64 is beyond int64 but a float64
        "bool": "boolean",
        "bools": "json",
        "flt": "float",
        "flts": "json",
        "huge": "json",
        "int": "integer",
        "ints": "integer[]",
        "kw": "keyword",
        "kws": "keyword[]",
        "lists": "json",
        "mixed": "json",
        "nanf": "json",
        "nul": "empty",
        "empties": "empty",
        "obj": "json",
        "wide": "integer",
        "wide_f": "json",  # 2**53 + 1 is no float64
    }


def test_opening_reads_no_document():
    columns = PayloadColumns.build([{"a": "x"}, {"a": "y"}], 2)
    arrays, schema = columns.to_arrays()
    arrays["payload_data"] = np.full(arrays["payload_data"].size, 0xFF, np.uint8)  # not UTF-8
    opened = PayloadColumns.from_arrays(arrays, schema, 2)
    assert opened.fields() == {"a": "keyword"}
    with pytest.raises(IndexCorruptError, match="payload of document 0"):
        opened.payload(0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda arrays, schema: arrays.pop("field0_codes"),
        lambda arrays, schema: arrays.update(field0_codes=np.zeros(2, np.int64)),
        lambda arrays, schema: arrays.update(field0_codes=np.zeros(3, np.int32)),
        lambda arrays, schema: arrays.update(payload_offsets=np.zeros(2, np.int64)),
        lambda arrays, schema: schema.update(format=2),
        lambda arrays, schema: schema["fields"]["a"].update(type="integer"),
        lambda arrays, schema: schema.pop("fields"),
    ],
)
def test_damaged_arrays_or_schema_are_corrupt(damage):
    arrays, schema = PayloadColumns.build([{"a": "x"}, {"a": "y"}], 2).to_arrays()
    damage(arrays, schema)
    with pytest.raises(IndexCorruptError):
        PayloadColumns.from_arrays(arrays, schema, 2)


# ---------------------------------------------------------------------------- semantics


def test_match_and_must_not_on_missing_and_null_fields():
    payloads = [{"lang": "en"}, {"lang": None}, {}, None, {"lang": "fr"}]
    assert mask({"must": [{"key": "lang", "match": {"value": "en"}}]}, payloads) == [
        True, False, False, False, False,
    ]  # fmt: skip
    assert mask({"must_not": [{"key": "lang", "match": {"value": "en"}}]}, payloads) == [
        False, True, True, True, True,
    ]  # fmt: skip
    assert mask({"must": [{"is_null": {"key": "lang"}}]}, payloads) == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert mask({"must": [{"key": "gone", "match": {"value": 1}}]}, payloads) == [False] * 5
    assert mask({"must": [{"key": "lang", "match": {"any": []}}]}, payloads) == [False] * 5


def test_ranges_compare_integers_and_floats_exactly():
    ints = [{"n": v} for v in (2, 3, -(2**63), 2**63 - 1)]
    assert mask(Filter(must=[Range("n", gt=2.5)]), ints) == [False, True, False, True]
    assert mask(Filter(must=[Range("n", lt=-(2**63) - 0.5)]), ints) == [False] * 4
    assert mask(Filter(must=[Range("n", gte=2**63)]), ints) == [False] * 4
    assert mask(Filter(must=[Range("n", lte=2**63, gt=-math.inf)]), ints) == [True] * 4
    floats = [{"x": v} for v in (2.0**53, 2.0**53 + 2, 0.5, -0.0)]
    assert mask(Filter(must=[Range("x", gt=2**53 + 1)]), floats) == [False, True, False, False]
    assert mask(Filter(must=[Range("x", gte=2**53 + 1)]), floats) == [False, True, False, False]
    assert mask(Filter(must=[Range("x", lte=2**53 + 1)]), floats) == [True, False, True, True]
    assert mask(Filter(must=[Range("x", lt=2**1024 - 1)]), floats) == [True] * 4
    assert mask(Filter(must=[Range("x", gte=0)]), floats) == [True] * 4


def test_integers_match_floats_numerically_but_never_bools():
    payloads = [{"x": 2.0}, {"x": 2.5}, {"x": 2}]
    assert mask(Filter(must=[Match("x", 2)]), payloads) == [True, False, True]
    assert mask(Filter(must=[Match("x", 2**53 + 1)]), [{"x": 2.0**53}, {"x": 0.5}]) == [False] * 2
    with pytest.raises(FilterError, match="an integer match cannot apply to payload field 'b'"):
        mask(Filter(must=[Match("b", 1)]), [{"b": True}])
    with pytest.raises(FilterError, match="a boolean match cannot apply .* of type integer"):
        mask(Filter(must=[Match("b", True)]), [{"b": 1}])


def test_list_fields_match_when_one_element_does():
    payloads = [{"t": ["a", "b"]}, {"t": "b"}, {"t": []}, {}, {"n": [1, 5]}, {"n": 3}]
    assert mask({"must": [{"key": "t", "match": {"value": "b"}}]}, payloads) == [
        True, True, False, False, False, False,
    ]  # fmt: skip
    assert mask({"must_not": [{"key": "t", "match": {"any": ["a", "z"]}}]}, payloads) == [
        False, True, True, True, True, True,
    ]  # fmt: skip
    assert mask({"must": [{"is_null": {"key": "t"}}]}, payloads) == [
        False, False, False, True, True, True,
    ]  # fmt: skip
    assert mask({"must": [{"key": "n", "range": {"gt": 2, "lt": 4}}]}, payloads) == [
        False, False, False, False, False, True,
    ]  # fmt: skip
    assert mask({"must": [{"key": "n", "range": {"gt": 4}}]}, payloads)[4]  # 5 is in range


def test_ids_and_nesting_combine():
    payloads = [{"k": "a"}, {"k": "b"}, {"k": "a"}, {"k": "c"}]
    flt = {
        "should": [{"has_id": [10, 11]}, {"must": [{"key": "k", "match": {"value": "c"}}]}],
        "must_not": [{"has_id": [11]}],
    }
    assert mask(flt, payloads, first=10) == [True, False, False, True]


def test_check_filter_names_unknown_fields_and_type_clashes():
    schema = schema_of([{"k": "a", "n": 1, "j": {}}], [{"n": 1.5, "b": True, "z": None}])
    check_filter(
        as_filter(
            {"must": [{"key": "n", "range": {"gt": 1}}, {"key": "z", "match": {"value": "q"}}]}
        ),
        schema,
    )
    check_filter(Filter(must=[HasId([1]), Match("n", 1), IsNull("k"), Match("b", any=[])]), schema)
    bad = [
        (Match("nope", 1), "unknown payload field 'nope'"),
        (Match("k", 1), "an integer match cannot apply to payload field 'k' of type keyword"),
        (Match("n", "1"), "a string match cannot apply to payload field 'n' of type float"),
        (Range("k", gt=1), "a range cannot apply to payload field 'k' of type keyword"),
        (Range("b", gt=0), "a range cannot apply .* of type boolean"),
        (Match("b", 1), "an integer match .* of type boolean"),
        (IsNull("j"), "'j' holds objects"),
    ]
    for cond, message in bad:
        with pytest.raises(FilterError, match=message):
            check_filter(Filter(should=[Filter(must_not=[cond])]), schema)


# ---------------------------------------------------------------------------- fuzz

KEYWORDS = st.sampled_from(["", "a", "b", "é", "日本", "a\x00"])
SMALL = st.integers(-3, 3)
WIDE = st.sampled_from([-(2**63), -1, 0, 2**53 + 1, 2**63 - 1])
ODD = [math.nan, 2**63, 10**30, 2**53 + 1, 1.5, -(2**63) - 1]
FLOATS = st.sampled_from([-0.0, 0.5, 2.5, -1.5, 2.0, 1e300, math.inf, -math.inf])
EDGES = st.sampled_from([2**53 + 1, 2**63, -(2**63) - 1, 2**63 - 1, -(2**63)])
NEAR_EDGES = st.sampled_from([2.0**53, 2.0**53 + 2, 2.0**63, -(2.0**63)])  # floats beside EDGES
SCALARS = st.one_of(KEYWORDS, SMALL, WIDE, FLOATS, st.booleans(), st.sampled_from(ODD))
STYLES = {
    "keyword": KEYWORDS,
    "integer": SMALL,
    "wide integer": st.one_of(SMALL, WIDE),
    "float": st.one_of(SMALL, FLOATS, NEAR_EDGES),
    "float edges": st.one_of(SMALL, NEAR_EDGES),
    "odd number": st.one_of(SMALL, FLOATS, st.sampled_from(ODD)),
    "boolean": st.booleans(),
    "keyword[]": st.one_of(st.lists(KEYWORDS, max_size=3), KEYWORDS),
    "integer[]": st.one_of(st.lists(st.one_of(SMALL, WIDE), max_size=3), SMALL),
    "json": st.one_of(
        st.dictionaries(KEYWORDS, SMALL, max_size=2),
        st.lists(SCALARS, max_size=2),
        st.lists(st.lists(SMALL, max_size=1), max_size=1),
    ),
    "mixed": SCALARS,
}


MISSING = object()
ANY_STYLE = {name: sorted(STYLES) for name in FIELDS}
TYPED_STYLES = {  # each field of one kind (but single- or multi-valued, ints or floats)
    "a": ["keyword", "keyword[]"],
    "b": ["integer", "wide integer", "float", "float edges", "integer[]"],
    "c": ["boolean"],
}


def sometimes_missing_or_null(values):
    """A value of ``values`` three times in five, else MISSING or None."""
    return st.tuples(st.integers(0, 4), values).map(
        lambda pick: (MISSING, None, *[pick[1]] * 3)[pick[0]]
    )


@st.composite
def corpora(draw, styles):
    """Payloads of fields ``a``, ``b``, ``c`` (each of a random one of its ``styles``), split
    into 1 to 3 segments."""
    values = {
        name: sometimes_missing_or_null(STYLES[draw(st.sampled_from(choices))])
        for name, choices in styles.items()
    }
    n = draw(st.integers(0, 16))
    payloads = [
        {k: v for k, v in payload.items() if v is not MISSING}
        for payload in draw(st.lists(st.fixed_dictionaries(values), min_size=n, max_size=n))
    ]
    for i in draw(st.sets(st.integers(0, n - 1), max_size=2)) if n else ():
        payloads[i] = None
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=2)))
    bounds = [0, *cuts, n]
    return [(start, payloads[start:end]) for start, end in zip(bounds, bounds[1:], strict=False)]


BOUND = st.one_of(
    st.integers(-4, 4),
    st.sampled_from([2.5, -0.5, 0.0, -0.0, math.inf, -math.inf, 1e300, 2.0**53]),
    EDGES,
)


def any_of(keys, values):
    return st.builds(lambda key, chosen: Match(key, any=chosen), keys, values)


NUMBERS = {
    "integer": [-(2**63), -1, 0, 1, 2, 2**53, 2**53 + 1, 2**63 - 1],
    "float": [-math.inf, -(2.0**63), -1.5, -0.0, 0.5, 2.0, 2.0**53, 2.0**53 + 2, 2.0**63, 1e300],
}


@pytest.mark.parametrize("kind", sorted(NUMBERS))
def test_every_bound_beside_every_number(kind):
    """Each bound and integer match at and beside the numbers held, and past int64 and
    float64, against the reference: every edge of the exact comparisons, not a sample."""
    numbers = NUMBERS[kind]
    columns = PayloadColumns.build([{"x": v} for v in numbers], len(numbers))
    assert columns.fields() == {"x": kind}
    has_ids = ids_mask(0, len(numbers))
    for bound in [*near(numbers), 2**63, -(2**63) - 1, 2**64, 2**1024 - 1, -(2**1024) + 1]:
        for name in ("gt", "gte", "lt", "lte"):
            cond = Range("x", **{name: bound})
            got = compile_mask(Filter(must=[cond]), columns, has_ids).tolist()
            assert got == [in_range(v, cond) for v in numbers], cond
        if type(bound) is int:
            got = compile_mask(Filter(must=[Match("x", bound)]), columns, has_ids).tolist()
            assert got == [same(v, bound) for v in numbers], bound


INTS = st.one_of(SMALL, WIDE)


def numeric(keys, bound=BOUND, ints=INTS):
    """Ranges and integer matches on ``keys``."""
    maybe = st.tuples(st.integers(0, 2), bound).map(lambda pick: None if pick[0] else pick[1])
    bounds = st.tuples(maybe, maybe, maybe, maybe).filter(lambda b: b != (None,) * 4)
    return st.one_of(
        st.builds(lambda key, b: Range(key, *b), keys, bounds),
        st.builds(Match, keys, ints),
        any_of(keys, st.lists(ints, max_size=3)),
    )


def near(numbers):
    """Numbers at and beside ``numbers``: each, its floor and the integers around it, and the
    half after its floor (for a float beyond 2**53, integers that float64 cannot hold)."""
    out = []
    for x in numbers:
        if isinstance(x, float) and math.isinf(x):
            out.append(x)
            continue
        whole = math.floor(x)
        out += [x, whole - 1, whole, whole + 1, whole + 0.5]
    return [x for _, x in dict.fromkeys((type(x), x) for x in out)]  # each once (2 and 2.0 apart)


def leaves(strings, numbers, booleans, nullable):
    """Conditions: matches of strings and bools on the keys given for each, ranges and integer
    matches on ``numbers``, is_null on ``nullable``, and ids."""
    return st.one_of(
        st.builds(Match, strings, KEYWORDS),
        any_of(strings, st.lists(KEYWORDS, max_size=3)),
        numeric(numbers),
        st.builds(Match, booleans, st.booleans()),
        any_of(booleans, st.lists(st.booleans(), max_size=2)),
        st.builds(HasId, st.sets(st.integers(0, 18), max_size=6)),
        st.builds(IsNull, nullable),
    )


def nested(conditions):
    def of(children):
        groups = {"must": 3, "should": 3, "must_not": 2}
        lists = {group: st.lists(children, max_size=size) for group, size in groups.items()}
        return st.builds(Filter, **lists)

    return of(st.recursive(conditions, of, max_leaves=6))


def alone(conditions):
    """One condition, or its negation: each condition's mask seen directly."""
    return st.one_of(
        st.builds(lambda cond: Filter(must=[cond]), conditions),
        st.builds(lambda cond: Filter(must_not=[cond]), conditions),
    )


ANY_KEY = st.sampled_from([*FIELDS, "zz"])
TYPED_LEAVES = leaves(st.just("a"), st.just("b"), st.just("c"), ANY_KEY)


def compare_with_the_reference(segments, flt):
    """Per segment, the compiled mask equals the reference (or both see a type clash); over
    the segments, check_filter raises exactly for unknown fields and type clashes."""
    assert as_filter(flt.to_dict()) == flt and as_filter(flt.to_dict()).key == flt.key
    conditions = list(field_conditions(flt))
    schema = {}
    for first, payloads in segments:
        columns = PayloadColumns.build(payloads, len(payloads))
        types = ref_types(payloads)
        assert columns.fields() == types
        for name, kind in types.items():
            schema.setdefault(name, set()).add(kind)
        clashes = any(ref_clash(c, types.get(c.key, "empty")) for c in conditions)
        for opened in (columns, reopened(columns)):
            if clashes:
                with pytest.raises(FilterError):
                    compile_mask(flt, opened, ids_mask(first, len(payloads)))
                continue
            got = compile_mask(flt, opened, ids_mask(first, len(payloads)))
            assert got.dtype == bool and got.shape == (len(payloads),)
            assert got.tolist() == [ref_holds(flt, first + i, p) for i, p in enumerate(payloads)]
    unknown = any(c.key not in schema for c in conditions)
    clash = any(ref_clash(c, kind) for c in conditions for kind in schema.get(c.key, ()))
    if unknown or clash:
        with pytest.raises(FilterError):
            check_filter(flt, schema)
    else:
        check_filter(flt, schema)


@settings(max_examples=100, deadline=None)
@given(corpora(ANY_STYLE), nested(leaves(ANY_KEY, ANY_KEY, ANY_KEY, ANY_KEY)))
def test_compiled_masks_equal_the_reference(segments, flt):
    compare_with_the_reference(segments, flt)


@settings(max_examples=100, deadline=None)
@given(corpora(TYPED_STYLES), nested(TYPED_LEAVES))
def test_well_typed_filters_equal_the_reference(segments, flt):
    compare_with_the_reference(segments, flt)


@pytest.mark.parametrize("style", TYPED_STYLES["b"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_numeric_conditions_equal_the_reference(style, data):
    """One range or integer match on numbers of one style, with bounds at and beside the
    numbers the documents hold, so that every edge is hit."""
    segments = data.draw(corpora({"b": [style]}))
    values = [(p or {}).get("b") for _, payloads in segments for p in payloads]
    elements = [e for v in values for e in (v if isinstance(v, list) else [v])]
    edges = near([e for e in elements if type(e) in (int, float)])
    bound = st.sampled_from(edges) if edges else BOUND
    ints = st.sampled_from([e for e in edges if type(e) is int] or [0])
    compare_with_the_reference(segments, data.draw(alone(numeric(st.just("b"), bound, ints))))


@settings(max_examples=50, deadline=None)
@given(corpora(ANY_STYLE))
def test_payloads_round_trip_under_random_content(segments):
    for _, payloads in segments:
        columns = PayloadColumns.build(payloads, len(payloads))
        assert as_text(reopened(columns).payloads(range(len(payloads)))) == as_text(payloads)
