"""One writer per folder: an OS file lock (the ``filelock`` package) with its holder named.

``train --out RUN`` holds ``RUN/.lock`` while it trains; ``prepare`` holds
``.<name>.lock`` beside the data folder it builds (the folder itself is swapped in
whole). The lock is ``flock``-based, so a holder killed with ``kill -9`` releases it at
once and never blocks anyone; the holder's PID, host and start time sit in a side file
(``<lock>.owner``) for the message a second process gets. Both files are removed when the
lock is released (a killed holder's are removed by the next one).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from .errors import ConfigError
from .storage import read_json, write_json


@contextlib.contextmanager
def locked(lock_path: Path, *, subject: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``lock_path`` for the block; refuse (or, with ``wait``, wait) while another process holds it.

    ``subject`` is the folder the lock protects (named in the messages).
    """
    lock = filelock.FileLock(str(lock_path), is_singleton=False)
    owner = lock_path.with_name(lock_path.name + ".owner")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except filelock.Timeout:
        holder = _owner(owner)
        if not wait:
            raise ConfigError(
                str(subject), f"is in use: {holder} is writing it",
                "wait for that process to finish (or stop it), or choose another folder",
            ) from None
        print(f"waiting for {holder}, which is writing {subject} …", file=sys.stderr, flush=True)
        lock.acquire()
    except OSError as err:  # (after Timeout, an OSError too) a read-only or foreign place: name the user's folder, not the lock file
        raise ConfigError(str(subject), f"cannot be locked for writing ({err.strerror or err})",
                          "choose a folder in a writable place") from None
    try:
        write_json(owner, {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        yield
    finally:
        owner.unlink(missing_ok=True)
        # unlinked while still held, so nothing is left behind; a waiter that locked the old
        # file sees it unlinked and locks afresh (filelock checks st_nlink after flock)
        lock_path.unlink(missing_ok=True)
        lock.release()


def _owner(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        info = read_json(path)
        return f"process {int(info['pid'])} on {info['host']} (since {info['since']})"
    return "another process"
