"""One flock(2) per job, in a file beside the database, so that two processes on one database (a second agent
started by mistake, `appliance jobs run` while the agent runs the same job) never run one job at once.

flock belongs to the open file, not the process: two schedulers in one process exclude each other too. The
kernel drops it when the process dies, so a crash never leaves a job locked.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


def lock_path(db_path: str | Path, job: str) -> Path:
    return Path(f"{db_path}-job-{job}.lock")


class JobLock:
    """Non-blocking: a job that is already running elsewhere is skipped, not queued behind it."""

    def __init__(self, db_path: str | Path, job: str) -> None:
        self.path = lock_path(db_path, job)
        self._threads = threading.Lock()
        self._fd: int | None = None

    def acquire(self) -> bool:
        if not self._threads.acquire(blocking=False):
            return False
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        except BaseException:
            self._threads.release()
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._threads.release()
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)   # closing the only descriptor of the open file drops the flock
        self._threads.release()

    def is_free(self) -> bool:
        """Whether nobody holds it right now (taken and dropped again at once)."""
        if self.acquire():
            self.release()
            return True
        return False
