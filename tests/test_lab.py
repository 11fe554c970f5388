"""Running the notebooks never dirties the tree: ``make lab`` opens copies; progress bars only where watched."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from mcrl_kit import experiments, lab, paths
from mcrl_kit.errors import ConfigError
from mcrl_kit.notebooks import find_notebooks

ROOT = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_workspace_copies_the_series_and_never_touches_the_tracked_notebooks(tmp_path):
    before = _digest(paths.notebooks_dir())
    root, copied, kept = lab.workspace(tmp_path / "lab")
    series = [nb.path.name for nb in find_notebooks().values()]
    assert copied == series and kept == []
    work = root / "notebooks"
    assert sorted(p.name for p in work.iterdir()) == sorted(series)  # no jupytext.toml: a save writes the copy alone
    assert (root / "docs").resolve() == (ROOT / "docs").resolve() or not (ROOT / "docs").exists()

    # the user's work in a copy is kept on the next call; --refresh replaces a named copy, nothing else
    first = work / series[0]
    first.write_text(first.read_text() + " ", encoding="utf-8")
    edited = first.read_bytes()
    _, copied, kept = lab.workspace(tmp_path / "lab")
    assert copied == [] and kept == series and first.read_bytes() == edited
    number = series[0][:2]
    _, copied, kept = lab.workspace(tmp_path / "lab", refresh=[number])
    assert copied == [series[0]] and first.read_bytes() == (paths.notebooks_dir() / series[0]).read_bytes()
    assert _digest(paths.notebooks_dir()) == before


def test_workspace_refuses_unknown_notebooks_and_the_project_folder(tmp_path):
    with pytest.raises(ConfigError, match="names no notebook"):
        lab.workspace(tmp_path / "lab", refresh=["99"])
    with pytest.raises(ConfigError, match="is the project itself"):
        lab.workspace(paths.home())


def test_lab_command_binds_to_localhost_and_the_cli_dry_run(tmp_path):
    cmd = lab.lab_command(tmp_path, port=8899, browser=False)
    assert "--ServerApp.ip=127.0.0.1" in cmd and f"--ServerApp.root_dir={tmp_path}" in cmd and "--no-browser" in cmd
    # the kernel's messages encrypted (CurveZMQ) where pyzmq can: it can here
    assert ("--KernelManager.transport_encryption=auto" in cmd) == lab._has_curve() and lab._has_curve()
    out = subprocess.run([sys.executable, "-m", "mcrl_kit", "lab", "--dir", str(tmp_path / "w"), "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "copied from notebooks/" in out and "127.0.0.1" in out
    assert (tmp_path / "w" / "notebooks").is_dir()


def test_progress_is_auto(monkeypatch):
    for name in experiments.HEADLESS_ENV:
        monkeypatch.delenv(name, raising=False)
    assert experiments.auto_progress() is False  # plain Python (pytest): no kernel watches

    class ZMQInteractiveShell:  # the shell JupyterLab's kernel runs
        pass

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    assert experiments.auto_progress() is True
    monkeypatch.setenv("MCRL_HEADLESS", "1")  # papermill under the kit's runner, make test's nbmake
    assert experiments.auto_progress() is False
    monkeypatch.delenv("MCRL_HEADLESS")
    monkeypatch.setenv("CI", "true")
    assert experiments.auto_progress() is False
