"""The id column: round trips, exact lookups against a dict, merges, and damaged arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsearch.errors import DuplicateIdError, IndexCorruptError, InvalidInputError
from sparsearch.index import id_column
from sparsearch.index.id_column import IdColumn, encode_ids

SETTINGS = settings(max_examples=60, deadline=None)
INT64 = st.integers(-(2**63), 2**63 - 1)
# every code point: astral characters, lone surrogates and U+0000 included
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
LONG = st.text(st.sampled_from("ab€😀"), min_size=200, max_size=2000)
STRS = st.one_of(TEXT, LONG, st.sampled_from(["", "a", "\0", "\ud800", "😀"]))
INTS = st.one_of(INT64, st.sampled_from([0, -1, 2**63 - 1, -(2**63)]))
STR_IDS = st.lists(STRS, max_size=30, unique=True)
INT_IDS = st.lists(INTS, max_size=30, unique=True)
IDS = st.one_of(STR_IDS, INT_IDS)


def check_column(column: IdColumn, ids: list) -> None:
    """``column`` holds ``ids`` (in order) and finds each at its ordinal."""
    column.validate()
    assert len(column) == len(ids)
    assert column.to_list() == ids
    assert column.nbytes == sum(a.nbytes for a in column.to_arrays().values())
    np.testing.assert_array_equal(column.lookup(encode_ids(ids)), np.arange(len(ids)))


def save_and_map(column: IdColumn, folder) -> IdColumn:
    """The column read back from ``.npy`` files as read-only memmaps."""
    folder.mkdir()
    for name, array in column.to_arrays().items():
        np.save(folder / f"{name}.npy", array)
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in folder.glob("*.npy")}
    return IdColumn.from_arrays(column.kind, arrays)


# ---------------------------------------------------------------------------- round trips
@SETTINGS
@given(IDS, st.data())
def test_round_trip(ids, data):
    column = IdColumn.from_ids(ids)
    assert column.kind == ("int" if ids and isinstance(ids[0], int) else "str")
    check_column(column, ids)
    ordinals = data.draw(st.lists(st.integers(0, max(len(ids) - 1, 0)), max_size=10))
    if ids:
        assert column.decode(np.array(ordinals, np.int64)) == [ids[o] for o in ordinals]
    again = IdColumn.from_arrays(column.kind, column.to_arrays())
    check_column(again, ids)


@SETTINGS
@given(st.lists(INTS, min_size=1, max_size=30, unique=True))
def test_int_columns_give_int64_arrays(ids):
    values = IdColumn.from_ids(ids).to_numpy()
    assert values.dtype == np.int64
    assert values.tolist() == ids


def test_str_columns_give_object_arrays():
    values = IdColumn.from_ids(["a", "😀"]).to_numpy()
    assert values.dtype == object and values.tolist() == ["a", "😀"]


@pytest.mark.parametrize(
    "ids",
    [
        ["a", "", "ü", "😀", "\ud800\udc00", "\udc00", "x\0y", "é" * 5000],
        [0, -1, 7, 2**63 - 1, -(2**63)],
        [],
    ],
)
def test_from_memory_mapped_files(tmp_path, ids):
    column = IdColumn.from_ids(ids)
    mapped = save_and_map(column, tmp_path / "ids")
    assert all(isinstance(a, np.memmap) for a in mapped.to_arrays().values())
    assert mapped.kind == column.kind
    check_column(mapped, ids)
    queries = [*ids, "zz", 12345, "ü"[::-1] + "!"]
    np.testing.assert_array_equal(
        mapped.lookup(encode_ids(queries)), column.lookup(encode_ids(queries))
    )


def test_empty_batch_makes_an_empty_str_column():
    column = IdColumn.from_ids([])
    assert (column.kind, len(column), column.to_list(), column.decode([])) == ("str", 0, [], [])
    assert column.lookup(encode_ids(["a", 1])).tolist() == [-1, -1]


def test_numpy_ids_are_accepted():
    column = IdColumn.from_ids([np.int64(3), 4, np.uint8(5)])
    assert column.to_list() == [3, 4, 5]
    assert column.lookup(encode_ids([np.int32(4), 5, np.uint64(3)])).tolist() == [1, 2, 0]
    assert IdColumn.from_ids(np.array(["a", "b"])).to_list() == ["a", "b"]


# ---------------------------------------------------------------------------- refused input
@pytest.mark.parametrize(
    "ids",
    [
        ["a", 1],
        [1, "a"],
        [True],
        [1, False],
        [1.0],
        [None],
        [b"a"],
        "abc",
        b"ab",
        [2**63],
        [-(2**63) - 1],
    ],
)
def test_bad_ids_are_invalid_input(ids):
    with pytest.raises(InvalidInputError):
        IdColumn.from_ids(ids)


@pytest.mark.parametrize(
    "ids", [["a", "b", "a"], [5, 6, 5], ["", ""], ["😀", "\ud83d\ude00", "😀"]]
)
def test_repeated_ids_are_refused(ids):
    with pytest.raises(DuplicateIdError):
        IdColumn.from_ids(ids)


@pytest.mark.parametrize("ids", [[True], [1.5], [None], "ab"])
def test_bad_query_ids_are_invalid_input(ids):
    with pytest.raises(InvalidInputError):
        encode_ids(ids)


# ---------------------------------------------------------------------------- lookups
@SETTINGS
@given(IDS, st.lists(st.one_of(STRS, INTS, st.integers(2**63, 2**80)), max_size=20), st.data())
def test_lookup_equals_a_dict(ids, others, data):
    reference = {(type(x), x): i for i, x in enumerate(ids)}
    present = data.draw(st.lists(st.sampled_from(ids), max_size=20)) if ids else []
    queries = data.draw(st.permutations(present + others))
    got = IdColumn.from_ids(ids).lookup(encode_ids(queries))
    assert got.dtype == np.int64
    assert got.tolist() == [reference.get((type(q), q), -1) for q in queries]


def test_other_kind_finds_nothing():
    strs, ints = IdColumn.from_ids(["1", "2"]), IdColumn.from_ids([1, 2])
    assert strs.lookup(encode_ids([1, 2])).tolist() == [-1, -1]
    assert ints.lookup(encode_ids(["1", "2"])).tolist() == [-1, -1]
    mixed = encode_ids([2, "2", 2**70, "1"])
    assert strs.lookup(mixed).tolist() == [-1, 1, -1, 0]
    assert ints.lookup(mixed).tolist() == [1, -1, -1, -1]


MASK = 2**64 - 1


def mix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def reference_hash(doc_id: int | str) -> int:
    """The module docstring's hashes, in Python integers."""
    if isinstance(doc_id, int):
        return mix((doc_id + 0x9E3779B97F4A7C15) & MASK)
    h = 0xCBF29CE484222325
    for byte in doc_id.encode("utf-8", "surrogatepass"):
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return mix(h)


@SETTINGS
@given(st.lists(st.one_of(STRS, INTS), max_size=20))
def test_hashes_are_the_documented_ones(ids):
    """Stored tables depend on them: they are part of the file format."""
    encoded = encode_ids(ids)
    assert encoded.int_pos.tolist() == [i for i, x in enumerate(ids) if isinstance(x, int)]
    assert encoded.str_pos.tolist() == [i for i, x in enumerate(ids) if isinstance(x, str)]
    hashes = encoded.int_hashes.tolist() + encoded.str_hashes.tolist()
    ordered = [ids[i] for i in encoded.int_pos.tolist() + encoded.str_pos.tolist()]
    assert hashes == [reference_hash(x) for x in ordered]
    assert reference_hash(0) == 0xE220A8397B1DCDAF  # splitmix64's first output from seed 0


def colliding(kind: str, count: int, size: int) -> list:
    """``count`` ids whose probes all start at slot 0 of a table of ``size`` slots."""
    found: list = []
    candidate = 0
    while len(found) < count:
        batch = [candidate + i for i in range(1000)]
        ids = batch if kind == "int" else [f"id{x}" for x in batch]
        encoded = encode_ids(ids)
        hashes = encoded.int_hashes if kind == "int" else encoded.str_hashes
        found += [x for x, h in zip(ids, hashes.tolist(), strict=True) if h % size == 0]
        candidate += 1000
    return found[:count]


@pytest.mark.parametrize("kind", ["int", "str"])
def test_colliding_probes_stay_exact(kind):
    ids = colliding(kind, 24, 64)  # a table of 64 slots, every probe starting at slot 0
    column = IdColumn.from_ids(ids[:16])
    assert column.to_arrays()["id_table"].size == 32  # so the 16 also share a start at 32 slots
    check_column(column, ids[:16])
    assert column.lookup(encode_ids(ids[16:])).tolist() == [-1] * 8


def test_equal_hashes_compare_the_ids():
    """Keys whose 64-bit hashes are all equal: probes end on the bytes, not the hash."""
    ids = ["a", "b", "", "ab", "ba", "😀"]
    column = IdColumn.from_ids(ids)
    offsets, data = column.to_arrays()["id_offsets"], column.to_arrays()["id_bytes"]
    table = np.full(16, -1, np.int32)
    zeros = np.zeros(len(ids), np.uint64)
    assert id_column._fill_strs(table, offsets, data, zeros) == -1
    assert sorted(table[:6].tolist()) == list(range(6))
    queries = encode_ids([*ids, "c", "abc"])
    got = id_column._lookup_strs(
        table, offsets, data, queries.str_offsets, queries.str_bytes, np.zeros(8, np.uint64)
    )
    assert got.tolist() == [0, 1, 2, 3, 4, 5, -1, -1]
    values = np.array([5, -5, 0, 2**40], np.int64)
    table = np.full(8, -1, np.int64)
    assert id_column._fill_ints(table, values, np.zeros(4, np.uint64)) == -1
    keys = np.array([2**40, 0, 5, 6, -5], np.int64)
    got = id_column._lookup_ints(table, values, keys, np.zeros(5, np.uint64))
    assert got.tolist() == [3, 2, 0, -1, 1]


@pytest.mark.parametrize("ids", [["a", "bb", "ccc"], [1, 2, 3]])
def test_int64_tables_work_alike(ids):
    arrays = IdColumn.from_ids(ids).to_arrays()
    arrays["id_table"] = arrays["id_table"].astype(np.int64)
    check_column(IdColumn.from_arrays("str" if isinstance(ids[0], str) else "int", arrays), ids)


# ---------------------------------------------------------------------------- merges
@SETTINGS
@given(
    st.one_of(st.lists(STR_IDS, min_size=1, max_size=4), st.lists(INT_IDS, min_size=1, max_size=4)),
    st.data(),
)
def test_gather_equals_from_ids(lists, data):
    parts, gathered, seen = [], [], set()
    for ids in lists:
        free = [i for i, x in enumerate(ids) if x not in seen]
        picked = data.draw(st.lists(st.sampled_from(free), unique=True)) if free else []
        seen.update(ids[i] for i in picked)
        parts.append((IdColumn.from_ids(ids), np.array(picked, np.int64)))
        gathered += [ids[i] for i in picked]
    column = IdColumn.gather(parts)
    check_column(column, gathered)
    if gathered:  # else the kind of the first part
        assert column.kind == IdColumn.from_ids(gathered).kind


def test_gather_edge_cases():
    strs, ints = IdColumn.from_ids(["a", "b"]), IdColumn.from_ids([1, 2])
    # the kind comes from the parts that give ids
    assert IdColumn.gather([(strs, []), (ints, [1])]).to_list() == [2]
    assert IdColumn.gather([(ints, np.array([], np.int64))]).kind == "int"
    with pytest.raises(InvalidInputError):
        IdColumn.gather([(strs, [0]), (ints, [0])])
    with pytest.raises(InvalidInputError):
        IdColumn.gather([])
    with pytest.raises(DuplicateIdError):
        IdColumn.gather([(strs, [0, 1]), (IdColumn.from_ids(["b"]), [0])])
    for bad in ([2], [-1], [0.5]):
        with pytest.raises((IndexError, InvalidInputError)):
            IdColumn.gather([(strs, bad)])


def test_decode_refuses_absent_ordinals():
    column = IdColumn.from_ids(["a", "b"])
    with pytest.raises(IndexError):
        column.decode(np.array([-1]))
    with pytest.raises(IndexError):
        column.decode(np.array([2]))


# ---------------------------------------------------------------------------- damage
def damaged(ids: list, **changes) -> IdColumn:
    """The column of ``ids`` with some arrays replaced (``name=function of the array``)."""
    column = IdColumn.from_ids(ids)
    arrays = column.to_arrays()
    for name, change in changes.items():
        arrays[name] = change(arrays[name].copy())
    return IdColumn.from_arrays(column.kind, arrays)


def assert_safe(column: IdColumn, queries: list) -> None:
    """Lookups end and stay in range, and a hit is the queried id; decoding raises, or works."""
    got = column.lookup(encode_ids(queries))
    assert got.min(initial=-1) >= -1 and got.max(initial=-1) < len(column)
    for q, o in zip(queries, got.tolist(), strict=True):
        if o >= 0:
            assert column.decode([o]) == [q]
    try:
        column.to_list()
    except IndexCorruptError:
        pass


def set_at(i, value):
    def change(a):
        a[i] = value
        return a

    return change


STR_DAMAGE = {
    "offsets not monotone": {"id_offsets": set_at(2, 3)},
    "offsets negative": {"id_offsets": set_at(1, -3)},
    "offsets past the bytes": {"id_offsets": set_at(-1, 10**6)},
    "bytes shorter than the last offset": {"id_bytes": lambda a: a[:-3]},
    "bytes not UTF-8": {"id_bytes": set_at(0, 0xFF)},
    "an id starting inside a character": {"id_offsets": set_at(4, 15)},  # inside "ü"
    "ordinal past n": {"id_table": lambda a: np.where(a == 1, 77, a)},
    "ordinal below -1": {"id_table": lambda a: np.where(a == 1, -9, a)},
    "an ordinal twice": {"id_table": lambda a: np.where(a == 1, 2, a)},
    "ordinals swapped": {"id_table": lambda a: np.where(a == 1, 2, np.where(a == 2, 1, a))},
    "no empty slot": {"id_table": lambda a: np.where(a < 0, 0, a)},
    "table emptied": {"id_table": lambda a: np.full_like(a, -1)},
}
STR_IDS_FIXED = ["alpha", "beta", "gamma", "ü", "😀x", ""]


@pytest.mark.parametrize("damage", STR_DAMAGE.values(), ids=STR_DAMAGE.keys())
def test_damaged_str_columns_are_detected_and_safe(damage):
    column = damaged(STR_IDS_FIXED, **damage)
    with pytest.raises(IndexCorruptError):
        column.validate()
    assert_safe(column, [*STR_IDS_FIXED, "delta", "alph", "gamma!", "\udcff"])


INT_DAMAGE = {
    "ordinal past n": {"id_table": lambda a: np.where(a == 1, 2**31 - 1, a)},
    "ordinals swapped": {"id_table": lambda a: np.where(a == 0, 1, np.where(a == 1, 0, a))},
    "no empty slot": {"id_table": lambda a: np.where(a < 0, 2, a)},
    "a value repeated": {"id_values": set_at(0, 11)},
}


@pytest.mark.parametrize("damage", INT_DAMAGE.values(), ids=INT_DAMAGE.keys())
def test_damaged_int_columns_are_detected_and_safe(damage):
    ids = [10, 11, -12, 2**62]
    column = damaged(ids, **damage)
    with pytest.raises(IndexCorruptError):
        column.validate()
    assert_safe(column, [*ids, 0, 13])


@pytest.mark.parametrize(
    "arrays",
    [
        {"id_values": np.zeros(2, np.int64)},  # no table
        {"id_values": np.zeros(2, np.int32), "id_table": np.full(4, -1, np.int32)},
        {"id_values": np.zeros(2, np.int64), "id_table": np.full(4, -1, np.int16)},
        {"id_values": np.zeros((2, 1), np.int64), "id_table": np.full(4, -1, np.int32)},
        {"id_values": np.zeros(4, np.int64)[::2], "id_table": np.full(4, -1, np.int32)},
        {"id_values": np.zeros(2, np.int64), "id_table": np.full(6, -1, np.int32)},
        {"id_values": np.zeros(3, np.int64), "id_table": np.full(4, -1, np.int32)},
        {"id_values": np.zeros(0, np.int64), "id_table": np.full(0, -1, np.int32)},
    ],
)
def test_malformed_arrays_are_refused_at_open(arrays):
    with pytest.raises(IndexCorruptError):
        IdColumn.from_arrays("int", arrays)


def test_malformed_str_arrays_are_refused_at_open():
    table = np.full(2, -1, np.int32)
    with pytest.raises(IndexCorruptError):
        IdColumn.from_arrays(
            "str",
            {
                "id_offsets": np.zeros(0, np.int64),
                "id_bytes": np.zeros(0, np.uint8),
                "id_table": table,
            },
        )
    with pytest.raises(IndexCorruptError):
        IdColumn.from_arrays("bytes", {"id_table": table})


@SETTINGS
@given(IDS, st.sampled_from(["id_values", "id_offsets", "id_bytes", "id_table"]), st.data())
def test_any_damage_is_safe_and_validate_vouches_for_what_passes(ids, name, data):
    column = IdColumn.from_ids(ids)
    arrays = column.to_arrays()
    if name not in arrays or arrays[name].size == 0:
        return
    array = arrays[name] = arrays[name].copy()
    info = np.iinfo(array.dtype)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, array.size - 1))
        small = st.integers(max(info.min, -2), 40)
        array[i] = data.draw(st.one_of(small, st.integers(info.min, info.max)))
    column = IdColumn.from_arrays(column.kind, arrays)
    queries = ids + data.draw(st.lists(STRS if column.kind == "str" else INTS, max_size=5))
    assert_safe(column, queries)
    try:
        column.validate()
    except IndexCorruptError:
        return
    check_column(column, column.to_list())  # what validate passes is self-consistent


# ---------------------------------------------------------------------------- scale
@pytest.mark.numba_only
def test_many_ids_against_a_dict():
    rng = np.random.default_rng(0)
    ids = [f"pkg-{x}-name" for x in rng.choice(10**9, 200_000, replace=False).tolist()]
    column = IdColumn.from_ids(ids)
    column.validate()
    queries = [ids[i] for i in rng.integers(0, len(ids), 5000)] + [f"pkg-{x}" for x in range(5000)]
    reference = {x: i for i, x in enumerate(ids)}
    assert column.lookup(encode_ids(queries)).tolist() == [reference.get(q, -1) for q in queries]
    ints = rng.choice(2**62, 200_000, replace=False) - 2**61
    column = IdColumn.from_ids(ints.tolist())
    column.validate()
    np.testing.assert_array_equal(column.to_numpy(), ints)
    merged = IdColumn.gather(
        [(column, np.arange(0, 200_000, 3)), (column, np.arange(1, 200_000, 3))]
    )
    merged.validate()
    assert merged.to_list() == ints[0::3].tolist() + ints[1::3].tolist()
