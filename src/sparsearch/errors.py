"""Named errors: each one says which problem occurred, so callers can catch exactly that."""

from __future__ import annotations


class SparsearchError(Exception):
    """Base class of every error raised by sparsearch."""


class InvalidVectorsError(SparsearchError, ValueError):
    """Sparse vectors whose arrays break the CSR contract (unsorted indices, NaN weights, ...)."""


class DimensionMismatchError(SparsearchError, ValueError):
    """Two things that must share a vector dimension do not."""


class VocabularyMismatchError(SparsearchError, ValueError):
    """Vectors made with one vocabulary are used with an index or model that has another."""


class InvalidInputError(SparsearchError, ValueError):
    """Bad user input to an encoder or search call (empty text, a non-string, bad k, ...)."""


class DuplicateIdError(InvalidInputError):
    """An id given twice in one batch, or added while the index (or a dataset) already holds it."""


class ModelLoadError(SparsearchError, OSError):
    """A model folder or hub id that is missing, malformed, or inconsistent."""


class IndexCorruptError(SparsearchError, OSError):
    """An index directory whose files are missing, truncated, or fail their checksums."""


class IndexNotFoundError(SparsearchError, FileNotFoundError):
    """A path that holds no index (no folder, or no committed ``CURRENT`` pointer)."""


class UnknownIdError(SparsearchError, KeyError):
    """An external document id that the index does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else "unknown id"


class ConfigError(SparsearchError, ValueError):
    """A training or CLI configuration that cannot work (unknown column, missing mapping, ...)."""


class IndexLockedError(SparsearchError, OSError):
    """Another writer (in this or another process) holds the index folder's writer lock."""


class WalCorruptError(IndexCorruptError):
    """A write-ahead log record that is damaged before its end (not a torn last write)."""


class FilterError(InvalidInputError):
    """A filter that cannot apply to the index: an unknown payload field, or a condition that
    clashes with the field's type (a string matched against numbers, a range on keywords, ...)."""


class OutOfRangeError(InvalidInputError, IndexError):
    """A row number (or other position) outside the valid range; also an ``IndexError``, so
    the sequence protocol (``for v in vectors``) still stops at the end."""


class ModelMismatchError(SparsearchError, ValueError):
    """A collection opened with a model whose weights differ from the ones that wrote it."""


class CollectionNotFoundError(SparsearchError, FileNotFoundError):
    """A path or name that holds no collection."""


class CollectionExistsError(SparsearchError, FileExistsError):
    """A collection created where one already is."""


class BackendError(SparsearchError, RuntimeError):
    """An external engine (Qdrant, Milvus, OpenSearch, Elasticsearch) refused or failed a request."""


class UnsupportedFilterError(FilterError):
    """A filter uses a condition the target engine cannot express (the message names it)."""
