"""What every numba kernel shares: the array types of its signature and its compile options.

Typing: numba ships inline types, and ``nb.njit(...)`` returns a ``Dispatcher`` that keeps the
decorated function's signature, so mypy checks every call of a kernel against its annotations
(numba itself ignores them: it infers types from the arguments of each call). Arrays whose dtype
depends on the segment (``post_docs``: ``int32``, or ``uint16`` in segments of at most 2**16
documents) are typed as the union of their dtypes.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numba as nb
import numpy as np
import numpy.typing as npt

F32: TypeAlias = npt.NDArray[np.float32]
I64: TypeAlias = npt.NDArray[np.int64]
I32: TypeAlias = npt.NDArray[np.int32]
U32: TypeAlias = npt.NDArray[np.uint32]
U16: TypeAlias = npt.NDArray[np.uint16]
U8: TypeAlias = npt.NDArray[np.uint8]
#: posting ordinals: int32, or uint16 in segments of at most 2**16 documents
Ordinals: TypeAlias = npt.NDArray[np.int32] | npt.NDArray[np.uint16]
#: a score as the kernels see it: a Python float or a numpy float32 element
Score: TypeAlias = float | np.floating[Any]

#: the kernels release the GIL and cache their machine code on disk. numba checks a cached
#: kernel against its own file only: a kernel and the kernels it calls must share a file, and a
#: change to a constant imported from another module needs ``__pycache__`` cleared.
jit = nb.njit(nogil=True, cache=True)
