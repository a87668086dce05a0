"""A segment's id column whatever its ids: all int, all str, or both (older indexes, mixed use).

:class:`~sparsearch.index.id_column.IdColumn` holds one kind. A segment whose ids mix kinds keeps
them in a str column as tagged text (``"i"`` + decimal for an int, ``"s"`` + the text for a str),
so the two kinds can never collide. :class:`IdQuery` encodes a batch of ids once per form that
the segments searched need.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sparsearch.errors import IndexCorruptError
from sparsearch.index.id_column import EncodedIds, IdColumn, encode_ids
from sparsearch.index.kernel_types import I64
from sparsearch.search import DocId


def _tag(doc_id: DocId) -> str:
    return f"s{doc_id}" if isinstance(doc_id, str) else f"i{doc_id}"


def _untag(text: str) -> DocId:
    if text[:1] == "i":
        return int(text[1:])
    if text[:1] == "s":
        return text[1:]
    raise IndexCorruptError(f"mixed id column: {text[:20]!r} has no kind tag")


class IdQuery:
    """A batch of ids to look up, encoded lazily for plain and for tagged (mixed) columns."""

    def __init__(self, ids: Sequence[DocId]) -> None:
        self.ids = ids
        self._plain: EncodedIds | None = None
        self._tagged: EncodedIds | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def plain(self) -> EncodedIds:
        if self._plain is None:
            self._plain = encode_ids(self.ids)
        return self._plain

    def tagged(self) -> EncodedIds:
        if self._tagged is None:
            self._tagged = encode_ids([_tag(doc_id) for doc_id in self.ids])
        return self._tagged


class MixedIdColumn:
    """Ids of both kinds, as a str :class:`IdColumn` of tagged text."""

    kind = "mixed"

    def __init__(self, column: IdColumn) -> None:
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    @property
    def nbytes(self) -> int:
        return self.column.nbytes

    def to_arrays(self) -> dict[str, np.ndarray]:
        return self.column.to_arrays()

    def validate(self) -> None:
        self.column.validate()

    def lookup(self, encoded: EncodedIds) -> I64:
        """Ordinals of ids encoded by :meth:`IdQuery.tagged`."""
        return self.column.lookup(encoded)

    def decode(self, ordinals: npt.ArrayLike) -> list[DocId]:
        return [_untag(str(text)) for text in self.column.decode(ordinals)]

    def to_list(self) -> list[DocId]:
        return [_untag(str(text)) for text in self.column.to_list()]

    def to_numpy(self) -> np.ndarray:
        out = np.empty(len(self), object)
        out[:] = self.to_list()
        return out


AnyIdColumn = IdColumn | MixedIdColumn


def column_for(ids: Sequence[DocId]) -> AnyIdColumn:
    """The column of a batch's (normalised) ids: plain when they share a kind, else tagged."""
    kinds = {isinstance(doc_id, str) for doc_id in ids}
    if len(kinds) > 1:
        return MixedIdColumn(IdColumn.from_ids([_tag(doc_id) for doc_id in ids]))
    return IdColumn.from_ids(ids)


def column_from_arrays(kind: str, arrays: dict[str, np.ndarray]) -> AnyIdColumn:
    """Reopen a column written by ``to_arrays`` (``kind``: "int", "str" or "mixed")."""
    if kind == "mixed":
        return MixedIdColumn(IdColumn.from_arrays("str", arrays))
    return IdColumn.from_arrays(kind, arrays)


def lookup(column: AnyIdColumn, query: IdQuery) -> I64:
    """Local ordinal of each queried id in ``column`` (-1 where absent)."""
    if isinstance(column, MixedIdColumn):
        return column.lookup(query.tagged())
    return column.lookup(query.plain())
