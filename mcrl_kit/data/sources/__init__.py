"""Data sources → the one event-log schema (``docs/PROTOCOL.md``), by name.

:data:`SOURCES` is the registry ``--source`` / ``DataConfig.source`` names: one module per source,
each with

- ``Options``, a frozen dataclass of the ``DataConfig`` fields it reads (beyond the shared
  ``paths``, ``seed``, ``state_len``, ``split``) with their defaults;
- ``PATHS``, how many input files it reads and what they are;
- ``reader(config, options, *, progress, frame=None) -> EventLog``.

:func:`source_options` checks a config against its source before any work — the number
of files, and every option another source reads but this one would silently ignore is
refused — and :func:`mcrl_kit.data.prepare.load_source` calls the reader with the options.

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

A new source: its module (``Options``, ``PATHS``, ``reader``) and one line in :data:`SOURCES`
(an option no source had before is also a ``DataConfig`` field, with a ``prepare`` flag).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType

from ...config import DataConfig, _choice
from ...errors import ConfigError
from ..schema import EventLog
from . import events, retailrocket, simulated, yoochoose
from .events import read_events
from .retailrocket import read_retailrocket
from .yoochoose import read_yoochoose

#: a source's reader: ``reader(config, options, *, progress, frame=None)`` → the validated event log
Reader = Callable[..., EventLog]


@dataclasses.dataclass(frozen=True)
class Source:
    """One registry entry: the reader, its option dataclass and its input-file rule."""

    reader: Reader
    options: type
    #: the fewest and most input files (``--path``) it reads, and what they are
    paths: tuple[int, int, str]

    @classmethod
    def of(cls, module: ModuleType) -> Source:
        return cls(module.reader, module.Options, module.PATHS)


#: every source by name (``--source``), in the order the messages list them
SOURCES: dict[str, Source] = {
    "simulator": Source.of(simulated),
    "retailrocket": Source.of(retailrocket),
    "yoochoose": Source.of(yoochoose),
    "events": Source.of(events),
}

#: the flag that sets each source option (``prepare``'s, derived from the name but for ``columns``)
_FLAGS = {"columns": "--column"}


def option_flag(name: str) -> str:
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def option_fields() -> dict[str, tuple[dataclasses.Field, list[str]]]:
    """Every source option: its field (default, help) and the sources that read it, in registry order."""
    out: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name, source in SOURCES.items():
        for field in dataclasses.fields(source.options):
            out.setdefault(field.name, (field, []))[1].append(name)
    return out


def source_reader(name: str) -> Reader:
    """The reader registered as ``name``, or a ConfigError listing the sources (before any work)."""
    _choice("DataConfig.source", name, SOURCES)
    return SOURCES[name].reader


def source_options(config: DataConfig):
    """``config``'s source options (its ``Options``), or a ConfigError before any work.

    Refused: an unknown source, the wrong number of input files, and a field another
    source reads set away from its default here, where it would be silently ignored.
    """
    _choice("DataConfig.source", config.source, SOURCES)
    source = SOURCES[config.source]
    low, high, what = source.paths
    if not low <= len(config.paths) <= high:
        given = ", ".join(map(str, config.paths))
        raise ConfigError(
            f"DataConfig.paths (source {config.source!r})",
            f"{len(config.paths)} input file(s) given ({given}) but the {config.source} source "
            + (f"reads {what}" if high else "reads no file (it simulates its sessions)"),
            f"give --path {what}, nothing more" if high else
            "drop --path (or choose --source " + ", ".join(n for n, s in SOURCES.items() if s.paths[1]) + " to read a file)",
        )
    own = {f.name for f in dataclasses.fields(source.options)}
    defaults = {f.name: f.default for f in dataclasses.fields(DataConfig)}
    for name, (_, readers) in option_fields().items():
        if name not in own and getattr(config, name) != defaults[name]:
            refuse_ignored(config.source, name, getattr(config, name), readers, f"DataConfig.{name}")
    # a field left at None takes the source's own default (the protocol's filters differ per source)
    return source.options(**{name: getattr(config, name) for name in own if getattr(config, name) is not None})


def refuse_ignored(source: str, name: str, value: object, readers: list[str], where: str) -> None:
    """The ConfigError for an option ``source`` would silently ignore: the user meant something by it."""
    raise ConfigError(
        f"{where} (source {source!r})",
        f"{value!r} is only read by the {' and '.join(readers)} source; the {source} source would ignore it",
        f"drop {option_flag(name)}, or choose --source {readers[0]}",
    )


__all__ = [
    "SOURCES", "Reader", "Source", "option_fields", "option_flag", "read_events", "read_retailrocket", "read_yoochoose",
    "refuse_ignored", "source_options", "source_reader",
]
