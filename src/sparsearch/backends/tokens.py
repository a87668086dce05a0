"""Token names as field keys, for engines that key sparse vectors by token (OpenSearch,
Elasticsearch, Anserini, CIFF).

Those engines read a ``.`` in a key as an object path (``rank_features``/``sparse_vector``
reject it), and some reject an empty key. :func:`token_key` escapes what they can't take, with a
reversible code (``%`` -> ``%25``, ``.`` -> ``%2E``, the empty token -> ``%_``), so every token of
a vocabulary gets a distinct key and :func:`key_token` turns a key back into its token. Case and
WordPiece's ``##`` prefix are kept: keys are case-sensitive in these engines, and ``##ing`` and
``ing`` are different tokens.

>>> token_key("u.s."), key_token(token_key("u.s."))
('u%2Es%2E', 'u.s.')
>>> token_key("##ing"), token_key(""), key_token("%_")
('##ing', '%_', '')
"""

from __future__ import annotations

from collections.abc import Sequence

from sparsearch.errors import InvalidInputError, VocabularyMismatchError

_ESCAPES = {"%": "%25", ".": "%2E"}
_EMPTY = "%_"


def token_key(token: str) -> str:
    """The field key of ``token`` (reversible; see the module docstring)."""
    if token == "":
        return _EMPTY
    if "%" not in token and "." not in token:
        return token
    return "".join(_ESCAPES.get(char, char) for char in token)


def key_token(key: str) -> str:
    """The token a key was made from (the inverse of :func:`token_key`)."""
    if key == _EMPTY:
        return ""
    if "%" not in key:
        return key
    out = []
    i = 0
    while i < len(key):
        if key[i] == "%":
            code = key[i : i + 3]
            token = {escaped: char for char, escaped in _ESCAPES.items()}.get(code)
            if token is None:
                raise InvalidInputError(f"{key!r} is not a field key made by token_key")
            out.append(token)
            i += 3
        else:
            out.append(key[i])
            i += 1
    return "".join(out)


def vocabulary_keys(vocab: Sequence[str] | None, dim: int) -> list[str]:
    """The field key of every dimension: escaped token names when the vectors carry a vocabulary,
    else the dimension numbers as strings ("0", "1", ...)."""
    if vocab is None:
        return [str(i) for i in range(dim)]
    if len(vocab) != dim:
        raise VocabularyMismatchError(f"a vocabulary of {len(vocab)} tokens for dim {dim}")
    return [token_key(token) for token in vocab]
