"""The simulator as a source (``--source simulator``): the model itself lives in :mod:`mcrl_kit.data.simulator`."""

from __future__ import annotations

import dataclasses

import pandas as pd

from ...config import DataConfig, option
from .. import simulator
from ..schema import EventLog

#: input files: none (it simulates its sessions)
PATHS = (0, 0, "no file")


@dataclasses.dataclass(frozen=True)
class Options:
    """The ``DataConfig`` fields the simulator reads (beyond ``seed``, ``state_len``, ``split``)."""

    scale: str = option("tiny", "the simulator's size: " + " | ".join(simulator.SCALES))
    sessions: int | None = option(None, "number of sessions (default: the scale's)")
    drift: float = option(0.0, "popularity drift over session start time (0: none; 1: strong)")

    def __post_init__(self) -> None:
        simulator.check_scale(self.scale)  # the simulator's registry checks its own names


def reader(config: DataConfig, options: Options, *, progress: bool, frame: pd.DataFrame | None = None) -> EventLog:
    """The registry's entry: ``options.scale``'s sessions (or ``options.sessions``), seeded by ``config.seed``."""
    return simulator.simulate(
        options.scale, seed=config.seed, sessions=options.sessions, drift=options.drift, progress=progress
    )
