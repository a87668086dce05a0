"""The writer lock of an index folder: one writer at a time, across threads and processes.

An exclusive ``flock`` on ``<index>/LOCK``. Locks taken through different open files conflict
even inside one process, so two handles on one folder are two writers. The operating system
drops the lock when the process dies, so a crashed writer never leaves the folder locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from sparsearch.errors import IndexLockedError, InvalidInputError

LOCK = "LOCK"


class WriterLock:
    """Hold ``root/LOCK`` exclusively; :class:`IndexLockedError` if another writer has it."""

    def __init__(self, root: Path, timeout: float = 0.0) -> None:
        self._fd: int | None = None
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.path = root / LOCK
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileExistsError, NotADirectoryError) as err:
            raise InvalidInputError(
                f"{root}: not a folder an index can be written to ({err})"
            ) from err
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self._fd)
                    self._fd = None
                    raise IndexLockedError(
                        f"{root} is locked by another writer (wait with lock_timeout=, or open "
                        "a read-only handle and refresh() it)"
                    ) from None
                time.sleep(0.01)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()
