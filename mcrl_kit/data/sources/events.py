"""Any event log (DataFrame, CSV or parquet) already in the schema → the event log."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ...config import DataConfig, option
from ...errors import DataError
from ..schema import EVENT_COLUMNS, EventLog, validate_events
from ._files import (
    _check_file,
    _clip,
    _csv_chunks,
    _header,
    _missing_columns,
    _plain_integers,
    session_item_filter,
)

EVENTS_HINT = (
    "an event log is a CSV (plain or .gz) or parquet file with columns session_id,timestamp,item_id,is_buy "
    "(map other names with --column KIT=YOURS)"
)


def read_events(
    path_or_frame: str | os.PathLike | pd.DataFrame, columns: dict[str, str] | None = None, progress: bool = True
) -> EventLog:
    """Any event log already in the schema: a DataFrame, a CSV (plain/.gz) or a parquet file.

    ``columns`` maps the kit's names (``session_id, timestamp, item_id, is_buy``) to the
    input's; other columns are ignored. No filter is applied: the log is used as given.
    Session/item ids may be integers or strings. A CSV id column is integer only when
    every value is a plain integer (any size, kept exact; see the module docstring), so
    ``"007"`` is not turned into 7: such a column stays text and sorts as strings.
    """
    columns = dict(columns or {})
    unknown = [k for k in columns if k not in EVENT_COLUMNS]
    if unknown:
        raise DataError(
            "columns mapping", f"{unknown[0]!r} is not a kit column",
            f"map kit columns ({', '.join(EVENT_COLUMNS)}) to yours, e.g. {{'session_id': 'user'}}",
        )
    wanted = {kit: columns.get(kit, kit) for kit in EVENT_COLUMNS}  # kit name → input name
    if isinstance(path_or_frame, pd.DataFrame):
        name = "DataFrame"
        _require(name, wanted, list(path_or_frame.columns))
        found = list(path_or_frame.columns)
        duplicated = sorted({str(c) for c in set(wanted.values()) if found.count(c) > 1})
        if duplicated:
            raise DataError(name, f"has duplicated column name(s) {', '.join(duplicated)}", "give every column its own name")
        df = path_or_frame.loc[:, list(wanted.values())].set_axis(list(wanted), axis=1)
        info = {"rows_read": len(df)}
    else:
        path = _check_file(path_or_frame, EVENTS_HINT)
        name = str(path)
        df = _read_parquet(path, wanted) if _is_parquet(path) else _read_events_csv(path, wanted, progress)
        info = {"rows_read": len(df)}
        if len(df) == 0:
            raise DataError(name, "has a header but no rows", f"pass a log with at least one event; {EVENTS_HINT}")
    log_name = "events " + (Path(name).name if name != "DataFrame" else name)
    return EventLog(validate_events(df, name=name), name=log_name, info=info)


def _read_events_csv(path: Path, wanted: dict[str, str], progress: bool) -> pd.DataFrame:
    header = _header(path, EVENTS_HINT)
    _require(str(path), wanted, header)
    # everything as text: a chunk of numeric ids and one of names must not mix types;
    # validate_events then parses timestamps and flags with one rule for the whole log
    parts = []
    for chunk in _csv_chunks(path, progress, f"reading {path.name}", EVENTS_HINT, header=0, names=header, dtype="str"):
        parts.append(chunk.loc[:, list(wanted.values())].set_axis(list(wanted), axis=1))
    df = pd.concat(parts, ignore_index=True)
    for col in ("session_id", "item_id"):
        df[col] = _ids_from_text(df[col])
    flags = df["is_buy"].str.strip().str.lower()
    if flags.isin(["true", "false"]).all():  # a bool column written by pandas
        df["is_buy"] = (flags == "true").astype(np.int8)
    return df


def _read_parquet(path: Path, wanted: dict[str, str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        found = pq.read_schema(path).names
        _require(str(path), wanted, found)
        table = pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    except (pa.ArrowException, OSError) as err:
        raise DataError(str(path), f"is not a readable parquet file ({_clip(str(err))})", f"re-export it; {EVENTS_HINT}") from None
    df = table.to_pandas()
    return df.loc[:, list(wanted.values())].set_axis(list(wanted), axis=1)


def _require(name: str, wanted: dict[str, str], found: Sequence) -> None:
    missing = [f"{theirs}" + (f" (for {kit})" if theirs != kit else "") for kit, theirs in wanted.items() if theirs not in found]
    if missing:
        raise _missing_columns(name, missing, found, EVENTS_HINT)


def _ids_from_text(values: pd.Series) -> pd.Series:
    """Ids read as text → their integers when every value is a plain integer, else the strings."""
    ints = _plain_integers(values)
    return values if ints is None else pd.Series(ints, index=values.index)


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return path.suffix.lower() in (".parquet", ".pq") or fh.read(4) == b"PAR1"


#: input files: one event log
PATHS = (1, 1, "one event log (CSV or parquet)")


@dataclasses.dataclass(frozen=True)
class Options:
    """The ``DataConfig`` fields the events source reads: the column map, and the protocol's filters — off by
    default (the log is taken as it is); ``--min-session-events 3 --min-item-events 3`` applies the SQN protocol's."""

    columns: dict[str, str] | None = option(None, "map a kit column to yours, e.g. --column session_id=user")
    min_session_events: int = option(0, "keep sessions with at least this many events (Yoochoose: clicks)")
    min_item_events: int = option(0, "then keep items with at least this many events (one pass, no re-filtering)")


def reader(config: DataConfig, options: Options, *, progress: bool, frame: pd.DataFrame | None = None) -> EventLog:
    """The registry's entry (``--source events``): ``frame`` when given (``prepare(frame=...)``), else ``config.paths[0]``;
    then the protocol's filters if asked for."""
    log = read_events(frame if frame is not None else config.paths[0], columns=options.columns, progress=progress)
    if options.min_session_events <= 1 and options.min_item_events <= 1:
        return log
    kept, dropped = session_item_filter(log.events, options.min_session_events, options.min_item_events)
    if len(kept) == 0:
        raise DataError(log.name, f"no events are left after the filters (sessions with < {options.min_session_events} "
                        f"events, then items with < {options.min_item_events} events)",
                        "lower --min-session-events / --min-item-events (0: no filter)")
    return dataclasses.replace(log, events=kept.reset_index(drop=True), info={**log.info, **dropped})
