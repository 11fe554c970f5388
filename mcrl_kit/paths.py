"""Every folder the kit reads or writes, resolved from the package, never from the cwd.

papermill executes a notebook in the caller's directory and nbmake in the notebook's,
so a path relative to the working directory would point somewhere else in each; all
paths come from here. Environment variables override the defaults:

- ``MCRL_HOME``: the project root (default: the checkout this package lives in, or the
  current directory when the kit is installed elsewhere);
- ``MCRL_CACHE``: prepared-data cache (default ``<home>/data/cache``);
- ``MCRL_SHARED``: the read-only real-data samples (default ``<home>/../shared/data``);
- ``MCRL_FIGURES``: where figures are saved (default ``<home>/figures``).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent


def home() -> Path:
    """The project root: holds ``notebooks/``, ``data/``, ``figures/``."""
    env = os.environ.get("MCRL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = _PACKAGE_ROOT.parent
    if (checkout / "notebooks").is_dir():
        return checkout
    return Path.cwd().resolve()


def data_dir() -> Path:
    return home() / "data"


def cache_dir() -> Path:
    env = os.environ.get("MCRL_CACHE")
    return Path(env).expanduser().resolve() if env else data_dir() / "cache"


def runs_dir() -> Path:
    return home() / "runs"


def build_dir() -> Path:
    return home() / "build"


def figures_dir() -> Path:
    """Figures meant for readers; ``MCRL_FIGURES`` redirects them (tests do, to keep ``figures/`` clean)."""
    env = os.environ.get("MCRL_FIGURES")
    return Path(env).expanduser().resolve() if env else home() / "figures"


def notebooks_dir() -> Path:
    return home() / "notebooks"


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout, or ``MCRL_SHARED``; None when absent."""
    env = os.environ.get("MCRL_SHARED")
    path = Path(env).expanduser() if env else home().parent / "shared" / "data"
    return path.resolve() if path.is_dir() else None


def shared_file(*parts: str) -> Path | None:
    """A file under the shared samples, or None when the samples are not available."""
    root = shared_data_dir()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None
