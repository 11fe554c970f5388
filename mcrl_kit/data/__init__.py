"""Data: sources → the one event-log schema → split → the MDP replay buffer."""

from .prepare import PreparedData, format_stats, load_prepared, prepare, stats_frame
from .replay import Batch, ReplayBuffer
from .schema import EVENT_COLUMNS, EventLog, validate_events

__all__ = [
    "EVENT_COLUMNS",
    "Batch",
    "EventLog",
    "PreparedData",
    "ReplayBuffer",
    "format_stats",
    "load_prepared",
    "prepare",
    "stats_frame",
    "validate_events",
]
