"""What a collection hands back: hits and stored points, as plain dataclasses that turn into
JSON and back, so the embedded :class:`Collection` and the HTTP :class:`Client` return the same."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sparsearch.filters import DocId


@dataclass(frozen=True)
class Hit:
    """One search result: ``explanation`` only when asked for (see ``Collection.search``)."""

    id: DocId
    score: float
    payload: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON types (the payload and explanation are shared, not copied)."""
        return {
            "id": self.id,
            "score": self.score,
            "payload": self.payload,
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        return cls(**data)


@dataclass(frozen=True)
class Point:
    """A stored document: its payload, its text (when the collection keeps texts) and its sparse
    vector as ``{token: weight}`` (``{dimension: weight}`` for CSR latents)."""

    id: DocId
    payload: dict[str, Any] | None
    text: str | None
    vector: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Point:
        return cls(**data)
