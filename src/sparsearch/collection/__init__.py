"""Collections: an encoder (and optionally a dense model) bound to an index in one folder."""

from sparsearch.collection.core import Collection
from sparsearch.collection.results import Hit, Point

__all__ = ["Collection", "Hit", "Point"]
