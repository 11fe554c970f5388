"""The simulator as a source (``--source simulator``): the model itself lives in :mod:`mcrl_kit.data.simulator`."""

from __future__ import annotations

import pandas as pd

from ...config import DataConfig
from .. import simulator
from ..schema import EventLog


def reader(config: DataConfig, *, progress: bool, frame: pd.DataFrame | None = None) -> EventLog:
    """The registry's entry: ``config.scale``'s sessions (or ``config.sessions``), seeded by ``config.seed``."""
    return simulator.simulate(config.scale, seed=config.seed, sessions=config.sessions, progress=progress)
