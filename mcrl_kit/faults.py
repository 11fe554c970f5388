"""Fault injection for the interruption and failure tests: pause or fail at a named point.

Both are off unless their environment variable is set (read once at import; unset
variables make every :func:`point` and :func:`full_disk` a single comparison).

**Pause** — ``MCRL_PAUSE_AT=NAME`` or ``NAME@N`` pauses the process the N-th time
(default: the first) it reaches point ``NAME``: it prints ``MCRL_PAUSED NAME@N`` on
stderr and sleeps, so the test that started it can send SIGKILL at exactly that moment
(``tests/test_interrupt.py``).

**Fail** — ``MCRL_FAIL_AT=NAME`` or ``NAME@N`` makes the N-th (default: the first)
atomic write through point ``NAME`` meet a full disk: its temporary is backed by
``/dev/full``, so every write into it fails with the OS's own ``ENOSPC`` — ``torch.save``
raises the ``RuntimeError`` it raises on a full disk ("unexpected pos …"), a plain
``write``/``to_parquet`` an ``OSError(ENOSPC)`` (where ``/dev/full`` is missing, those two
errors are raised directly). Only ``atomic:<file name>`` points can fail, e.g.
``MCRL_FAIL_AT=atomic:checkpoint.pt`` (``tests/trust/test_trust_errors.py``): the user
must see one ``error:`` paragraph naming ``RUN/checkpoint.pt``, and the previous
checkpoint must survive.

Points (grep ``faults.point`` / ``faults.full_disk`` for the callers):

- ``atomic:<file name>`` — an atomic write: pause once its temporary is complete, before
  the rename; fail (``MCRL_FAIL_AT``) on its writes;
- ``atomic_dir:<dir name>`` — a folder fully built in its temporary, before the swap;
- ``atomic_dir_swap:<dir name>`` — the old folder moved aside, the new one not yet in place;
- ``prepare:events`` — the prepared folder half written (``events.parquet`` only);
- ``train:step`` — after each optimiser step (``@N`` = the step number, from 1);
- ``train:best`` / ``train:checkpoint`` — right after ``best-*.pt`` / ``checkpoint.pt``;
- ``train:model`` — after ``model.pt``, before ``history.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

_SPEC = os.environ.get("MCRL_PAUSE_AT", "")
_NAME, _, _NTH = _SPEC.rpartition("@") if "@" in _SPEC else (_SPEC, "", "1")
_COUNT = 0


def point(name: str) -> None:
    """Pause here (forever, until killed) if ``MCRL_PAUSE_AT`` names this point and occurrence."""
    global _COUNT
    if not _NAME or name != _NAME:
        return
    _COUNT += 1
    if _COUNT == int(_NTH):
        print(f"MCRL_PAUSED {name}@{_NTH}", file=sys.stderr, flush=True)
        while True:  # the test sends SIGKILL; nothing after this point may run
            time.sleep(60)


def _parse(spec: str) -> tuple[str, int]:
    name, _, nth = spec.rpartition("@") if "@" in spec else (spec, "", "1")
    return name, int(nth) if nth.isdigit() else 1


_FAIL_NAME, _FAIL_NTH = _parse(os.environ.get("MCRL_FAIL_AT", ""))
_FAIL_COUNT = 0
FULL_DEVICE = "/dev/full"


def full_disk(name: str, tmp: Path) -> bool:
    """If ``MCRL_FAIL_AT`` names this point and occurrence, make writes into ``tmp`` fail as on a full disk.

    ``tmp`` (an empty temporary just made) becomes a link to ``/dev/full``; True when it did
    (the caller then fails the write even if the block wrote nothing). Without ``/dev/full``
    the error is raised here: ``OSError(ENOSPC)``, or for a ``.pt`` file the ``RuntimeError``
    ``torch.save`` raises on a full disk.
    """
    global _FAIL_COUNT
    if not _FAIL_NAME or name != _FAIL_NAME:
        return False
    _FAIL_COUNT += 1
    if _FAIL_COUNT != _FAIL_NTH:
        return False
    if os.path.exists(FULL_DEVICE):
        os.unlink(tmp)
        os.symlink(FULL_DEVICE, tmp)
        return True
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(tmp))
    if name.endswith(".pt"):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from full
    raise full
