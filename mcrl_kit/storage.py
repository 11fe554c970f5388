"""Atomic writes: a reader (or a resumed run) never sees a half-written file.

Everything is written to a temporary sibling first and moved into place with
``os.replace``, which is atomic on POSIX when both live on one filesystem. A process
killed mid-write leaves at most a ``.<name>.<host>-<pid>.*.tmp`` sibling (or ``.old``
during a folder swap); no reader looks at those, and the next write of the same name
removes the ones whose process is gone (:func:`remove_stale_temps`).

A write that fails — a full disk, a read-only or foreign ``--out``, a quota — is a
:class:`~mcrl_kit.errors.KitError` naming the *final* path (never the temporary) and the
cause, raised after the temporary is removed; the file or folder already at that path
is left as it was. ``torch.save`` reports a full disk as a ``RuntimeError`` without an
errno ("unexpected pos …", "basic_ios::clear: iostream error", …): a probe write into
the temporary then finds the cause (ENOSPC, EDQUOT, EIO …); a RuntimeError whose probe
goes through, and is not torch's writer's, is the block's own and passes unchanged.
``MCRL_FAIL_AT=atomic:<name>`` injects a full disk here (:mod:`mcrl_kit.faults`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import faults
from .errors import KitError


def _umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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

    A failed write (in the block or in the move) raises :class:`~mcrl_kit.errors.KitError`
    naming ``path`` and the cause; ``path`` keeps its previous content, the temporary is removed.
    """
    path = Path(path)
    with _writing(path, None):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
        # mkstemp makes the file 0600 whatever the umask: give it the mode open() would (0644 by default),
        # so results on a shared server stay readable to colleagues
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
    tmp = Path(tmp)
    try:
        with _writing(path, tmp):
            full = faults.full_disk(f"atomic:{path.name}", tmp)  # MCRL_FAIL_AT: every write into tmp fails (ENOSPC)
            yield tmp
            if full:  # the block wrote nothing, so nothing failed: fail as the disk would at the flush
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            faults.point(f"atomic:{path.name}")
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


# --- failed writes, told as the user's path and the cause --------------------------------
#: what torch's stream writer says when the file system takes fewer bytes than it wrote
_TORCH_WRITE_FAILED = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")
#: below this many free bytes a write failure without an errno is put down to a full disk
_FULL_BELOW = 64 * 2**20
_CAUSES = {
    errno.ENOSPC: ("no space left on device", "free space on that disk or choose another --out"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota or choose another --out"),
    errno.EROFS: ("read-only file system", "choose another --out on a writable disk"),
    errno.EACCES: ("permission denied", "choose another --out, or make the folder writable for you"),
    errno.EPERM: ("operation not permitted", "choose another --out, or make the folder writable for you"),
    errno.EFBIG: ("file too large for this file system", "choose another --out on a file system that takes large files"),
    errno.ENOENT: ("the folder cannot be created there", "choose another --out in an existing, writable place"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another --out"),
    errno.EIO: ("input/output error (the disk failed)", "check the disk, or choose another --out"),
}


def _errno_of(err: BaseException) -> int | None:
    """The OS error number behind ``err`` (itself, a chained cause, or ``[errno N]`` in pyarrow's text)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    found = re.search(r"\[errno (\d+)\]", str(err), re.IGNORECASE)
    return int(found.group(1)) if found else None


def _free_bytes(folder: Path) -> int | None:
    with contextlib.suppress(OSError):
        st = os.statvfs(folder)
        return st.f_bavail * st.f_frsize
    return None


def _probe_errno(file: Path | None, folder: Path) -> int | None:
    """Write 1 MiB more (to ``file``, else to a new file in ``folder``) to learn the errno a failed write hid.

    ``torch.save`` reports a full disk without the OS error; a plain write of our own right
    after it meets the same refusal (ENOSPC, EDQUOT, EIO …) and says which. None: the probe went through.
    """
    chunk = bytes(2**20)
    try:
        if file is not None and (file.exists() or file.is_symlink()):
            with open(file, "ab") as fh:
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            with tempfile.TemporaryFile(dir=folder) as fh:
                fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as err:
        return err.errno
    return None


def _about_other_file(err: OSError, tmp: Path | None) -> bool:
    """An OSError naming a file outside the temporary (an input read inside the block) is not this write's."""
    named = [f for f in (err.filename, getattr(err, "filename2", None)) if f is not None]
    return bool(named) and tmp is not None and not any(os.fspath(f).startswith(os.fspath(tmp)) for f in named)


def write_error(path: Path, err: BaseException, code: int | None = None, folder: Path | None = None) -> KitError:
    """A :class:`KitError` for a failed write of ``path``: the final path, the cause, the fix.

    The cause is ``code`` or the OS error behind ``err``; where there is none (torch's
    writer after a probe that went through), a nearly full disk is taken for the cause.
    """
    code = code or _errno_of(err)
    if code is None:
        free = _free_bytes(folder or path.parent)
        code = errno.ENOSPC if free is not None and free < _FULL_BELOW else None
    cause, fix = _CAUSES.get(code, (None, "check the disk and the folder's permissions, or choose another --out"))
    if cause is None:
        cause = os.strerror(code).lower() if code else (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return KitError(str(path), f"could not be written: {cause} (what was there before is unchanged)", fix)


@contextlib.contextmanager
def _writing(path: Path, tmp: Path | None, folder: bool = False) -> Iterator[None]:
    """Turn a failed write of (the temporary ``tmp`` of) ``path`` into :func:`write_error`.

    An OSError is a failed write unless it names another file. A RuntimeError is one when
    it is torch's writer's ("unexpected pos", …) or when a probe write into the temporary
    fails too (torch words a full disk several ways, none with an errno); any other
    exception of the block passes unchanged. For a folder being built (``folder``), a file
    inside the temporary — in an OSError or in the KitError of a nested :func:`atomic_path`
    — is named at its place under ``path``.
    """
    try:
        yield
    except KitError as err:
        inner = os.fspath(tmp) + os.sep if folder and tmp is not None else None
        if inner is None or not err.what.startswith(inner):
            raise
        raise KitError(os.path.join(path, err.what[len(inner):]), err.problem, err.fix) from None
    except (OSError, RuntimeError) as err:
        code = None
        if isinstance(err, OSError):
            if _about_other_file(err, tmp):
                raise
        else:
            code = _errno_of(err) or (_probe_errno(None if folder else tmp, tmp if folder else path.parent)
                                      if tmp is not None else None)
            if code is None and not any(s in str(err) for s in _TORCH_WRITE_FAILED):
                raise
        where, named = path, getattr(err, "filename", None) if isinstance(err, OSError) else None
        if folder and tmp is not None and named is not None and os.fspath(named).startswith(os.fspath(tmp) + os.sep):
            where = path / os.path.relpath(os.fspath(named), tmp)
        raise write_error(where, err, code, folder=tmp if folder else path.parent) from None


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def replace_section(path: str | os.PathLike, start: str, end: str, section: str, heading: str = "") -> Path:
    """Put ``section`` (``start`` … ``end`` markers included) over the marked part of a text file, atomically.

    Where the file has no such markers, the section is appended after ``heading``
    (e.g. ``"## Performance\n\n"``). README tables generated by the kit go through here.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip() + ("\n\n" if text else "") + heading + section + "\n"
    return write_text(path, text)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_object(path: str | os.PathLike, fix: str, *, error: type[KitError] = KitError, what: str = "an object") -> dict:
    """The JSON object in ``path``, or ``error`` naming the file: unreadable, not JSON, or not an object.

    The one way the kit reads a JSON file a user may have damaged (a data folder's config or
    stats, a run's config or metrics); ``fix`` is the advice the message ends with.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        text = text.replace(f"'{path}'", "it").replace(str(path), "it")
        raise error(str(path), f"is not readable JSON ({text[:160]}{'…' if len(text) > 160 else ''})", fix) from None
    if not isinstance(obj, dict):
        raise error(str(path), f"holds a JSON {type(obj).__name__}, not {what}", fix)
    return obj


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
    (or, after a kill, left as an ignorable ``.name.*.tmp`` sibling). A failed write
    raises :class:`~mcrl_kit.errors.KitError` naming the file under ``path`` (not the temporary).
    """
    path = Path(path)
    with _writing(path, None):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        with _writing(path, tmp, folder=True):
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700, as mkdir would make it (0755 by default)
            yield tmp
            faults.point(f"atomic_dir:{path.name}")
            old = None
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
                try:
                    os.replace(path, old / path.name)
                except OSError:
                    old.rmdir()
                    raise
                faults.point(f"atomic_dir_swap:{path.name}")
            try:
                os.replace(tmp, path)
            except OSError:
                if old is not None:  # put the previous folder back
                    os.replace(old / path.name, path)
                    old.rmdir()
                raise
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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one owned by another user counts as alive)."""
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
            if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
                continue
            stale = Path(entry.path)
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
