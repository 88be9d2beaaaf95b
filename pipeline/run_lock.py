"""One run per output directory: an exclusive lock on `<output-dir>/run.lock`.

Two runs on one directory would share one metadata store, one log and one push destination,
and publish the same model twice. The lock is an advisory `flock` on a file that also names its
holder (pid, host, start time): the kernel releases it when the holder's process ends in any
way (exit, crash, kill -9, power loss), so a lock is never stale, and a file that names a
holder whose lock is free tells that the holder died without cleaning up.

What holds where: on a local disk (and NFS v4, whose locks `flock` maps to) for runs on this
host and others; not on object stores (gs://, s3://), which have no locks: on Kubeflow the
backend runs one task per node execution, and concurrent runs of the same pipeline are bounded
by the recurring run's max concurrency (1 by default, docs/kubeflow.md).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
from typing import Any

LOCK_FILE = "run.lock"
_HELD: dict[str, int] = {}  # Lock path -> how many blocks of this process hold it.


class OutputDirLocked(RuntimeError):
    """Another live run holds the output directory."""

    def __init__(self, output_dir: str, holder: dict[str, Any]):
        super().__init__(f"{output_dir} is in use by another run: pid {holder.get('pid', '?')} "
                         f"on {holder.get('host', '?')}, started {holder.get('started', '?')}; "
                         "wait for it to end or choose another --output-dir")
        self.holder = holder


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace")
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return {}


class RunLock:
    """`with RunLock(output_dir):` holds the directory for the block's duration, or raises
    OutputDirLocked naming the live holder. `took_over` names a dead holder whose lock file
    was left behind."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.path = os.path.abspath(os.path.join(output_dir, LOCK_FILE))
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        if self.path in _HELD:  # This process holds it already (console, then the runner).
            _HELD[self.path] += 1
            return self
        os.makedirs(self.output_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputDirLocked(self.output_dir, holder) from None
        left = _read_holder(fd)
        if left:  # Written by a holder that never reached its clean-up.
            self.took_over = left
            logging.getLogger(__name__).warning(
                "taking over %s: its holder, pid %s started %s, is no longer running",
                self.path, left.get("pid"), left.get("started"))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }).encode())
        os.fsync(fd)
        self._fd = fd
        _HELD[self.path] = 1
        return self

    def __exit__(self, *exc_info) -> None:
        _HELD[self.path] -= 1
        if _HELD[self.path] == 0:
            del _HELD[self.path]
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # Empty: released cleanly, nothing to take over.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
