"""Atomic writes: a reader (or a resumed run) never sees a half-written file.

Everything is written to a temporary sibling first and moved into place with
``os.replace``, which is atomic on POSIX when both live on one filesystem. A process
killed mid-write leaves at most a ``.<name>.<host>-<pid>.*.tmp`` sibling (or ``.old``
during a folder swap); no reader looks at those, and the next write of the same name
removes the ones whose process is gone (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import faults


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place.

    >>> with atomic_path("out.parquet") as tmp:
    ...     df.to_parquet(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        faults.point(f"atomic:{path.name}")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in stats and configs
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a whole directory in a temporary sibling, then swap it in.

    An existing ``path`` is replaced only after the new one is complete; if the block
    raises (or the process dies), ``path`` is untouched and the temporary is removed
    (or, after a kill, left as an ignorable ``.name.*.tmp`` sibling).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        faults.point(f"atomic_dir:{path.name}")
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            faults.point(f"atomic_dir_swap:{path.name}")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --- temporaries left by killed writers --------------------------------------------------
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()


def _temp_prefix(path: Path) -> str:
    """``.<name>.<host>-<pid>.``: whose temporary it is, so a later write can tell a dead one."""
    return f".{path.name}.{_HOST}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def remove_stale_temps(path: str | os.PathLike, *, folder: bool = False) -> list[Path]:
    """Remove temporaries left by dead processes of this host; return what was removed.

    ``path``'s own temporaries (siblings ``.<name>.<host>-<pid>.*``), or with ``folder``
    every such temporary inside the folder ``path``. Only names made by
    :func:`_temp_prefix` are touched, and only when their process is gone, so a concurrent
    writer's temporary is never removed.
    """
    path = Path(path)
    where, start = (path, ".") if folder else (path.parent, f".{path.name}.")
    marker, removed = f".{_HOST}-", []
    with contextlib.suppress(OSError), os.scandir(where) as entries:
        for entry in entries:
            name = entry.name
            if not name.startswith(start) or not name.endswith((".tmp", ".old")):
                continue
            at = name.rfind(marker)  # the random part after the pid holds no "-" or "."
            if at < 0 or (not folder and at != len(start) - 1):
                continue
            pid = name[at + len(marker):].partition(".")[0]
            if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
                continue
            stale = Path(entry.path)
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
