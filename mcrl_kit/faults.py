"""Fault injection for the interruption tests: pause at a named point so a test can ``kill -9``.

Off unless the environment variable ``MCRL_PAUSE_AT`` is set (read once at import; an
unset variable makes every :func:`point` a single comparison). ``MCRL_PAUSE_AT=NAME`` or
``NAME@N`` pauses the process the N-th time (default: the first) it reaches point
``NAME``: it prints ``MCRL_PAUSED NAME@N`` on stderr and sleeps, so the test that
started it can send SIGKILL at exactly that moment (``tests/test_interrupt.py``).

Points (grep ``faults.point`` for the callers):

- ``atomic:<file name>`` — an atomic write whose temporary is complete, before the rename;
- ``atomic_dir:<dir name>`` — a folder fully built in its temporary, before the swap;
- ``atomic_dir_swap:<dir name>`` — the old folder moved aside, the new one not yet in place;
- ``prepare:events`` — the prepared folder half written (``events.parquet`` only);
- ``train:step`` — after each optimiser step (``@N`` = the step number, from 1);
- ``train:best`` / ``train:checkpoint`` — right after ``best-*.pt`` / ``checkpoint.pt``;
- ``train:model`` — after ``model.pt``, before ``history.csv`` and ``metrics.json``.
"""

from __future__ import annotations

import os
import sys
import time

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
