"""Data sources → the one event-log schema (``shared/docs/PROTOCOL.md``), by name.

:data:`SOURCES` is the registry ``--source`` / ``DataConfig.source`` names: one module per source,
each with a ``reader(config, *, progress, frame=None) -> EventLog`` that
:func:`mcrl_kit.data.prepare.load_source` calls through :func:`source_reader`.

- ``simulator`` (:mod:`.simulated`) — :func:`mcrl_kit.data.simulator.simulate` at ``config.scale``;
- ``retailrocket`` (:mod:`.retailrocket`) — :func:`read_retailrocket`: Kaggle RetailRocket ``events.csv`` (plain or ``.gz``);
- ``yoochoose`` (:mod:`.yoochoose`) — :func:`read_yoochoose`: RecSys Challenge 2015 ``yoochoose-clicks.dat`` (+ ``-buys.dat``);
- ``events`` (:mod:`.events`) — :func:`read_events`: any event log (DataFrame, CSV or parquet) already in the schema.

Each returns an :class:`~mcrl_kit.data.schema.EventLog`; the shared path
(:mod:`mcrl_kit.data.prepare`) then re-indexes, splits and builds the MDP. Each applies
the protocol's filters exactly and records what every rule dropped in ``info``.

Big files (RetailRocket: 2.7 M rows, Yoochoose clicks: 33 M rows) are read in chunks
of only the needed columns, with a progress bar over the bytes read. The hardened reading
they share (file checks, plain/gzip CSV chunks, the one id rule, error messages) is
:mod:`._files`: every problem a user can cause is a :class:`~mcrl_kit.errors.DataError`
naming the file, the problem and the fix.

A new source: its module with a ``reader``, one line in :data:`SOURCES`, and — when it
reads files — its rule in ``config.PATHS_PER_SOURCE`` (checked by ``DataConfig.validate``).
"""

from __future__ import annotations

from collections.abc import Callable

from ...config import _choice
from ..schema import EventLog
from . import events, retailrocket, simulated, yoochoose
from .events import read_events
from .retailrocket import read_retailrocket
from .yoochoose import read_yoochoose

#: a source's reader: ``reader(config, *, progress, frame=None)`` → the validated event log
Reader = Callable[..., EventLog]

#: every source by name (``--source``), in the order the messages list them
SOURCES: dict[str, Reader] = {
    "simulator": simulated.reader,
    "retailrocket": retailrocket.reader,
    "yoochoose": yoochoose.reader,
    "events": events.reader,
}


def source_reader(name: str) -> Reader:
    """The reader registered as ``name``, or a ConfigError listing the sources (before any work)."""
    _choice("DataConfig.source", name, SOURCES)
    return SOURCES[name]


__all__ = ["SOURCES", "Reader", "read_events", "read_retailrocket", "read_yoochoose", "source_reader"]
