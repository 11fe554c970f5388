"""Small helpers several test files share (import them; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import io

from mcrl_kit.cli import main


def cli(args: list) -> tuple[int, str, str]:
    """``python -m mcrl_kit ARGS`` in-process: ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()
