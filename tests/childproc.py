"""A ``python -m mcrl_kit`` subprocess that can pause at a fault point and be killed (``kill -9``).

Shared by the interruption tests and the trust suite: the child is started with
``MCRL_PAUSE_AT=<point>[@N]`` (``mcrl_kit/faults.py``), prints ``MCRL_PAUSED`` on stderr and
sleeps there, so a test can act on the disk while it is paused and then kill it.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest


class Child:
    """``python -m mcrl_kit ARGS`` in a subprocess, stderr read line by line in a thread."""

    def __init__(self, args: list[str], pause: str | None = None):
        env = {k: v for k, v in os.environ.items() if k != "MCRL_PAUSE_AT"}
        if pause:
            env["MCRL_PAUSE_AT"] = pause
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcrl_kit", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_paused(self, timeout: float = 300) -> None:
        self.wait_for("MCRL_PAUSED", timeout)

    def wait_for(self, start: str, timeout: float = 300) -> str:
        """Read stderr until a line starting with ``start`` (returned); fail if the child exits first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                pytest.fail(f"no line {start!r} within {timeout} s")
            if line is None:
                rc = self.proc.wait()
                pytest.fail(f"exited (rc {rc}) before printing {start!r}:\n{''.join(self.stderr)}")
            self.stderr.append(line)
            if line.startswith(start):
                return line

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        """Wait for the exit: (return code, all of stderr)."""
        rc = self.proc.wait(timeout=timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.stderr.append(line)
        return rc, "".join(self.stderr)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)  # kill -9
        self.proc.wait(timeout=60)
        assert self.proc.returncode in (-signal.SIGKILL, 0), self.proc.returncode


