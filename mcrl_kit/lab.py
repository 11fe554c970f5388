"""JupyterLab on copies of the notebooks: running and autosaving never write into the tracked files.

JupyterLab autosaves a running notebook every two minutes, outputs included; opened in
``notebooks/``, a long notebook (06) is saved with its outputs into the tracked ``.ipynb``, and
``make test`` then fails on "committed notebook has outputs". ``make lab`` (``python -m mcrl_kit lab``)
therefore opens JupyterLab on a work folder, ``build/lab/`` by default:

- ``build/lab/notebooks/NN_name.ipynb``: copies of the series, made once — a copy that exists is the
  user's work and is kept as it is (``--refresh NN`` replaces named copies by the tracked version,
  saying so); no ``jupytext.toml`` there, so a save writes the copy alone, never a paired ``.py``;
- ``build/lab/docs`` and ``build/lab/figures``: links to the project's, so the notebooks' relative
  links (``../docs/METHOD.md``) and figures resolve.

The notebooks find the kit's data and runs through :mod:`mcrl_kit.paths` (the project's folders),
not through their own location, so a copy runs exactly as the tracked notebook does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from . import paths
from .errors import ConfigError
from .notebooks import find_notebooks
from .storage import atomic_path

LINKED = ("docs", "figures")


def workspace(dest: str | Path | None = None, refresh: Iterable[str] = ()) -> tuple[Path, list[str], list[str]]:
    """Make (or top up) the work folder; return ``(folder, copied, kept)`` — notebook file names.

    ``refresh``: notebook numbers (``"06"``) whose copy is replaced by the tracked version.
    """
    root = Path(dest) if dest else paths.build_dir() / "lab"
    series = find_notebooks()
    unknown = sorted(set(refresh) - set(series))
    if unknown:
        raise ConfigError(f"--refresh {' '.join(unknown)}", "names no notebook of the series", f"pick of {' '.join(series)}")
    target = root / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    if (target.resolve() == paths.notebooks_dir().resolve()):
        raise ConfigError(str(root), "is the project itself", "give a work folder outside notebooks/")
    copied, kept = [], []
    for number, nb in series.items():
        copy = target / nb.path.name
        if copy.exists() and number not in refresh:
            kept.append(copy.name)
            continue
        with atomic_path(copy) as tmp:  # never a half-written copy
            shutil.copyfile(nb.path, tmp)
        copied.append(copy.name)
    for name in LINKED:
        link, source = root / name, paths.home() / name
        if source.exists() and not link.exists() and not link.is_symlink():
            try:
                link.symlink_to(os.path.relpath(source, root), target_is_directory=True)
            except OSError:  # no symlinks here (e.g. Windows without developer mode): links stay unresolved
                pass
    return root, copied, kept


def lab_command(root: Path, port: int | None = None, browser: bool = True) -> list[str]:
    """The JupyterLab command line on ``root``: bound to 127.0.0.1 only.

    The kernel's messages to the server are encrypted (CurveZMQ keys the server provisions when the
    kernelspec declares support, as ipykernel's does): code and outputs are not plain text on the
    loopback, and ipykernel's "Kernel is running over TCP without encryption" warning does not apply.
    (IPC sockets would avoid TCP altogether but break on a long runtime path: a socket path is
    limited to ~107 bytes.)
    """
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1"]
    if _has_curve():  # asked for without libsodium in libzmq, the server would refuse to start
        cmd.append("--KernelManager.transport_encryption=auto")
    if port:
        cmd.append(f"--ServerApp.port={port}")
    if not browser:
        cmd.append("--no-browser")
    return cmd


def _has_curve() -> bool:
    try:
        import zmq
    except ImportError:
        return False
    return bool(zmq.has("curve"))


def open_lab(dest: str | Path | None = None, refresh: Iterable[str] = (), port: int | None = None,
             browser: bool = True, dry_run: bool = False) -> int:
    root, copied, kept = workspace(dest, refresh)
    print(f"work folder: {root / 'notebooks'}")
    if copied:
        print(f"  copied from notebooks/: {' '.join(copied)}")
    if kept:
        print(f"  kept (your work; --refresh NN replaces one): {' '.join(kept)}")
    cmd = lab_command(root, port, browser)
    print("$ " + " ".join(cmd), flush=True)
    return 0 if dry_run else subprocess.call(cmd)


__all__ = ["lab_command", "open_lab", "workspace"]
