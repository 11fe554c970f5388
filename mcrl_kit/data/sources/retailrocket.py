"""Kaggle RetailRocket ``events.csv`` (plain or ``.gz``) → the event log (``docs/PROTOCOL.md``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import DataConfig, option
from ...errors import DataError
from ..schema import EventLog, validate_events
from ._files import (
    ID_TEXT,
    _check_file,
    _concat_ids,
    _csv_chunks,
    _header,
    _integer_ids,
    _integers,
    _missing_columns,
    options_of,
    session_item_filter,
)

RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid", "transactionid")
RETAILROCKET_EVENTS = ("view", "addtocart", "transaction")
RETAILROCKET_HINT = (
    "RetailRocket is Kaggle's retailrocket/ecommerce-dataset events.csv "
    "(header timestamp,visitorid,event,itemid,transactionid; plain or .gz)"
)


def read_retailrocket(path: str | os.PathLike, config: DataConfig | Options, progress: bool = True) -> EventLog:
    """Kaggle RetailRocket ``events.csv`` → the event log of PROTOCOL.md → RetailRocket.

    1. a session is a visitor; 2. drop every row with a transaction id (all
    ``transaction`` events); 3. keep visitors with ≥ ``config.min_session_events``
    events, *then* items with ≥ ``config.min_item_events`` events — one pass, in that
    order, no re-filtering (as the reference); 4. ``view`` → click (``is_buy`` 0),
    ``addtocart`` → purchase (``is_buy`` 1). Duplicated rows are kept (the reference
    does not dedupe). Extra columns (e.g. a ``datetime`` copy) are ignored.
    """
    config = options_of(Options, config)
    path = _check_file(path, RETAILROCKET_HINT)
    header = _header(path, RETAILROCKET_HINT)
    missing = [c for c in RETAILROCKET_COLUMNS if c not in header]
    if missing:
        raise _missing_columns(path, missing, header, RETAILROCKET_HINT)

    parts, visitors, items, rows_read, tx_dropped = [], [], [], 0, 0
    # all columns, no usecols: with usecols pandas silently ignores rows with surplus fields
    chunks = _csv_chunks(
        path, progress, f"reading {path.name}", RETAILROCKET_HINT, header=0, names=header,
        dtype={"event": "category", "transactionid": "str", "visitorid": ID_TEXT, "itemid": ID_TEXT},
    )
    for chunk in chunks:
        first_line = rows_read + 2  # line 1 is the header
        rows_read += len(chunk)
        _check_events(chunk["event"], path, first_line)
        event = chunk["event"]
        ts = _integers(chunk["timestamp"], path, "timestamp", first_line, RETAILROCKET_HINT)
        visitor = _integer_ids(chunk["visitorid"], path, "visitorid", first_line, RETAILROCKET_HINT)
        item = _integer_ids(chunk["itemid"], path, "itemid", first_line, RETAILROCKET_HINT)
        # step 2: rows with a transaction id are the `transaction` events; drop both ways
        # of spelling it so that a `transaction` row can never become a click
        tx = (chunk["transactionid"].notna() | (event == "transaction")).to_numpy()
        tx_dropped += int(tx.sum())
        keep = ~tx
        visitors.append(visitor[keep])
        items.append(item[keep])
        parts.append(
            pd.DataFrame({"timestamp": ts[keep], "is_buy": (event == "addtocart").to_numpy()[keep].astype(np.int8)})
        )
    if rows_read == 0:
        raise DataError(str(path), "has a header but no rows", f"pass the complete file; {RETAILROCKET_HINT}")
    # ids in one form for the whole file: a chunk of ids beyond int64 makes all of them Python ints
    rest = pd.concat(parts, ignore_index=True)
    ev = pd.DataFrame(
        {"session_id": _concat_ids(visitors), "timestamp": rest["timestamp"], "item_id": _concat_ids(items),
         "is_buy": rest["is_buy"]}
    )

    # step 3: visitors first, then items, each counted once on what is left (no re-filtering)
    ev, dropped = session_item_filter(ev, config.min_session_events, config.min_item_events)
    if len(ev) == 0:
        raise DataError(
            str(path),
            f"no events are left after the protocol's filters ({rows_read:,} rows read, {tx_dropped:,} transaction "
            f"rows dropped, then {dropped['events_dropped_short']:,} events of visitors with < {config.min_session_events} "
            f"events, then {dropped['events_dropped_rare']:,} events of items with < {config.min_item_events} events)",
            "pass the full events.csv (or a bigger sample), or lower --min-session-events / --min-item-events",
        )
    info = {"rows_read": rows_read, "transaction_rows_dropped": tx_dropped, **dropped,
            "duplicate_rows_kept": int(ev.duplicated().sum())}
    return EventLog(validate_events(ev, name=str(path)), name=f"RetailRocket {path.name}", info=info)


def _check_events(event: pd.Series, path: Path, first_line: int) -> None:
    """A DataError for a missing or unknown event name (the protocol knows three)."""
    known = event.isin(RETAILROCKET_EVENTS).to_numpy()
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        if pd.isna(event.iloc[i]):
            problem = f"line {first_line + i} has no event (a row with too few fields?)"
        else:
            unknown = sorted(set(event[~known].dropna().astype(str)))
            problem = (
                f"unknown event name(s) {', '.join(map(repr, unknown[:5]))} (first on line {first_line + i}); "
                f"RetailRocket events are {', '.join(RETAILROCKET_EVENTS)}"
            )
        raise DataError(
            str(path), problem,
            "pass the raw Kaggle events.csv, or map your own events to clicks/purchases and use --source events",
        )


#: input files: the events.csv
PATHS = (1, 1, "one file, events.csv[.gz]")


@dataclasses.dataclass(frozen=True)
class Options:
    """The ``DataConfig`` fields RetailRocket reads: the protocol's two filters."""

    min_session_events: int = option(3, "keep sessions with at least this many events (Yoochoose: clicks)")
    min_item_events: int = option(3, "then keep items with at least this many events (one pass, no re-filtering)")


def reader(config: DataConfig, options: Options, *, progress: bool, frame: pd.DataFrame | None = None) -> EventLog:
    """The registry's entry (``--source retailrocket``): ``config.paths[0]`` is the events.csv."""
    return read_retailrocket(config.paths[0], options, progress=progress)
