"""RecSys Challenge 2015 ``yoochoose-clicks.dat`` (+ ``-buys.dat``) → the event log (``docs/PROTOCOL.md``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import DataConfig, option
from ...errors import DataError
from ...seeding import numpy_rng
from ..schema import EventLog, validate_events
from ._files import (
    ID_TEXT,
    _check_file,
    _clip,
    _concat_ids,
    _csv_chunks,
    _fields,
    _head,
    _integer_ids,
    _isin,
    _no_missing,
    _occurrences,
    options_of,
)

CLICKS_COLUMNS = ("session_id", "timestamp", "item_id", "category")
BUYS_COLUMNS = ("session_id", "timestamp", "item_id", "price", "quantity")
YOOCHOOSE_HINT = (
    "Yoochoose takes the RecSys Challenge 2015 yoochoose-clicks.dat (session_id,timestamp,item_id,category) "
    "then optionally yoochoose-buys.dat (session_id,timestamp,item_id,price,quantity), no header rows, plain or .gz"
)


def read_yoochoose(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    config: DataConfig | Options,
    rng: np.random.Generator,
    progress: bool = True,
) -> EventLog:
    """RecSys 2015 clicks (+ buys) → the event log of PROTOCOL.md → Yoochoose.

    1. keep click sessions with ≥ ``config.min_session_events`` clicks and sample
       ``config.sample_sessions`` of them uniformly without replacement — exactly
       ``rng.choice(sorted eligible session ids, n, replace=False)``; when fewer exist,
       all are taken (noted in ``info``);
    2. items are indexed from the sampled **clicks** (declared as the ``catalogue``), after dropping the clicks
       of items with < ``config.min_item_events`` of them (default 0: no item filter, as the reference);
    3. keep the buys of sampled sessions; a buy whose item never appears in the
       sampled clicks cannot be encoded and is dropped (counted in ``info``);
    4. clicks ``is_buy`` 0, buys 1, concatenated (clicks first, so a click and a buy at
       the same time keep that order) and sorted by (session, timestamp).

    ``paths`` is (clicks, buys) or just (clicks,) for a clicks-only log. The clicks
    file is read twice — once counting clicks per session (ids only), once keeping the
    rows of sampled sessions — so 33 M clicks never sit in memory at once and only the
    sampled rows' ISO timestamps are parsed.
    """
    config = options_of(Options, config)
    paths = (paths,) if isinstance(paths, str | os.PathLike) else tuple(paths)
    if not 1 <= len(paths) <= 2:
        raise DataError("Yoochoose paths", f"got {len(paths)} files", f"pass the clicks file, then the buys file; {YOOCHOOSE_HINT}")
    clicks_path = _check_file(paths[0], YOOCHOOSE_HINT)
    # check the buys file up front: it should not fail only after minutes of reading clicks
    buys_path = _check_file(paths[1], YOOCHOOSE_HINT) if len(paths) == 2 else None
    _check_headerless(clicks_path, CLICKS_COLUMNS, "yoochoose-clicks.dat", other=BUYS_COLUMNS)
    if buys_path is not None:
        _check_headerless(buys_path, BUYS_COLUMNS, "yoochoose-buys.dat", other=CLICKS_COLUMNS)

    counts, click_rows = _count_click_sessions(clicks_path, progress)
    k = config.min_session_events
    eligible = np.sort(counts.index.to_numpy()[counts.to_numpy() >= k])
    if len(eligible) == 0:
        raise DataError(
            str(clicks_path),
            f"no session has ≥ {k} clicks ({click_rows:,} clicks in {len(counts):,} sessions)",
            "pass the full yoochoose-clicks.dat, or lower DataConfig.min_session_events",
        )
    info: dict[str, int | float | str] = {
        "click_rows_read": click_rows,
        "click_sessions": len(counts),
        "sessions_eligible": len(eligible),
        "sample_requested": config.sample_sessions,
    }
    if config.sample_sessions >= len(eligible):
        sampled = eligible
        if config.sample_sessions > len(eligible):
            info["sample_note"] = (
                f"asked for {config.sample_sessions:,} sessions but only {len(eligible):,} have ≥ {k} clicks: took all"
            )
    else:
        sampled = np.sort(rng.choice(eligible, size=config.sample_sessions, replace=False))
    info["sessions_sampled"] = len(sampled)

    clicks = _sampled_clicks(clicks_path, sampled, progress)
    if config.min_item_events > 1:  # the item filter, on the sampled clicks (its buys follow their items below)
        rare = _occurrences(clicks["item_id"].to_numpy()) < config.min_item_events
        info["items_dropped_rare"] = int(clicks.loc[rare, "item_id"].nunique())
        info["clicks_dropped_rare"] = int(rare.sum())
        clicks = clicks[~rare].reset_index(drop=True)
        if len(clicks) == 0:
            raise DataError(str(clicks_path), f"no click is left after the item filter (items with < "
                            f"{config.min_item_events} clicks dropped)", "lower --min-item-events")
    catalogue = np.unique(clicks["item_id"].to_numpy())
    info["clicks_kept"] = len(clicks)
    parts = [clicks]
    if buys_path is None:
        info["buys_note"] = "no buys file given: a clicks-only log (no purchases)"
    else:
        buys, buy_info = _sampled_buys(buys_path, sampled, counts.index.to_numpy(), clicks_path, progress)
        unknown = ~_isin(buys["item_id"].to_numpy(), catalogue)
        info.update(buy_info)
        info["buys_dropped_unknown_item"] = int(unknown.sum())
        info["buys_kept"] = int((~unknown).sum())
        parts.append(buys[~unknown])
    ev = pd.concat(parts, ignore_index=True)
    name = "Yoochoose " + " + ".join(Path(p).name for p in paths)
    return EventLog(validate_events(ev, name=str(clicks_path)), name=name, catalogue=catalogue, info=info)


def _count_click_sessions(path: Path, progress: bool) -> tuple[pd.Series, int]:
    """Pass 1 over the clicks: clicks per session; checks the ids and that no row is short.

    Only the ids and the last column are parsed (3× faster than all four). Rows with
    surplus fields are caught in pass 2, which reads every column (with ``usecols``
    pandas ignores surplus fields).
    """
    counts, rows = [], 0
    chunks = _csv_chunks(
        path, progress, f"counting sessions in {path.name}", YOOCHOOSE_HINT, header=None, names=list(CLICKS_COLUMNS),
        usecols=["session_id", "item_id", "category"], dtype={"session_id": ID_TEXT, "item_id": ID_TEXT, "category": "str"},
    )
    for chunk in chunks:
        first_line = rows + 1  # no header
        rows += len(chunk)
        _no_missing(chunk["category"], path, first_line, ",".join(CLICKS_COLUMNS))
        session = _integer_ids(chunk["session_id"], path, "session_id", first_line, YOOCHOOSE_HINT)
        _integer_ids(chunk["item_id"], path, "item_id", first_line, YOOCHOOSE_HINT)
        counts.append(pd.Series(session).value_counts(sort=False))
    if rows == 0:
        raise DataError(str(path), "has no rows", f"pass the complete file; {YOOCHOOSE_HINT}")
    if any(c.index.dtype != np.int64 for c in counts):  # ids beyond int64 somewhere: Python ints throughout
        counts = [c.set_axis(pd.Index(c.index.to_numpy().astype(object), dtype=object)) for c in counts]
    # a session may straddle two chunks: add its partial counts up
    return pd.concat(counts).groupby(level=0).sum(), rows


def _sampled_clicks(path: Path, sampled: np.ndarray, progress: bool) -> pd.DataFrame:
    """Pass 2 over the clicks: the rows of sampled sessions, timestamps in Unix ms."""
    sessions, times, items, rows = [], [], [], 0
    for chunk in _csv_chunks(
        path, progress, f"reading sampled sessions of {path.name}", YOOCHOOSE_HINT, header=None,
        names=list(CLICKS_COLUMNS), dtype={"session_id": ID_TEXT, "timestamp": "str", "item_id": ID_TEXT, "category": "str"},
    ):
        first_line = rows + 1
        rows += len(chunk)
        session = _integer_ids(chunk["session_id"], path, "session_id", first_line, YOOCHOOSE_HINT)
        rows_kept = np.flatnonzero(_isin(session, sampled))
        kept = chunk.iloc[rows_kept]
        sessions.append(session[rows_kept])
        times.append(_iso_ms(kept["timestamp"], path, first_line + rows_kept))
        items.append(_integer_ids(kept["item_id"], path, "item_id", first_line, YOOCHOOSE_HINT))
    session_id = _concat_ids(sessions)
    return pd.DataFrame(
        {"session_id": session_id, "timestamp": np.concatenate(times), "item_id": _concat_ids(items),
         "is_buy": np.zeros(len(session_id), dtype=np.int8)}
    )


def _sampled_buys(
    path: Path, sampled: np.ndarray, click_sessions: np.ndarray, clicks_path: Path, progress: bool
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The buys of sampled sessions (``is_buy`` 1); refuses a buys file that matches no clicks."""
    kept_sessions, times, items, sessions, rows = [], [], [], [], 0
    for chunk in _csv_chunks(
        path, progress, f"reading {path.name}", YOOCHOOSE_HINT, header=None, names=list(BUYS_COLUMNS),
        dtype={"session_id": ID_TEXT, "timestamp": "str", "item_id": ID_TEXT, "price": "str", "quantity": "str"},
    ):
        first_line = rows + 1
        rows += len(chunk)
        _no_missing(chunk["quantity"], path, first_line, ",".join(BUYS_COLUMNS))
        session = _integer_ids(chunk["session_id"], path, "session_id", first_line, YOOCHOOSE_HINT)
        item = _integer_ids(chunk["item_id"], path, "item_id", first_line, YOOCHOOSE_HINT)
        sessions.append(np.unique(session))
        rows_kept = np.flatnonzero(_isin(session, sampled))
        kept_sessions.append(session[rows_kept])
        times.append(_iso_ms(chunk["timestamp"].iloc[rows_kept], path, first_line + rows_kept))
        items.append(item[rows_kept])
    if rows == 0:
        raise DataError(str(path), "has no rows", f"pass the complete buys file, or leave it out; {YOOCHOOSE_HINT}")
    buy_sessions = np.unique(_concat_ids(sessions))
    if not _isin(buy_sessions, click_sessions).any():
        raise DataError(
            str(path),
            f"none of its {len(buy_sessions):,} sessions appear in the clicks file {clicks_path.name}",
            "pass the yoochoose-buys.dat of the same download as the clicks (clicks first, then buys), "
            "or leave the buys out for a clicks-only log",
        )
    session_id = _concat_ids(kept_sessions)
    buys = pd.DataFrame(
        {"session_id": session_id, "timestamp": np.concatenate(times), "item_id": _concat_ids(items),
         "is_buy": np.ones(len(session_id), dtype=np.int8)}
    )
    return buys, {"buy_rows_read": rows, "buys_outside_sample": rows - len(buys)}


def _iso_ms(values: pd.Series, path: Path, lines: np.ndarray) -> np.ndarray:
    """ISO 8601 times (``2014-04-07T10:51:09.277Z``) → int64 Unix milliseconds."""
    parsed = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = values.iloc[i]
        what = "no timestamp (a row with too few fields?)" if pd.isna(raw) else f"timestamp {str(raw)!r}, not an ISO 8601 time"
        raise DataError(
            str(path), f"line {int(lines[i])} has {what}",
            "Yoochoose times look like 2014-04-07T10:51:09.277Z; pass the raw RecSys 2015 file",
        )
    return parsed.dt.tz_convert(None).astype("datetime64[ms]").to_numpy().astype(np.int64)


def _check_headerless(path: Path, columns: tuple[str, ...], filename: str, other: tuple[str, ...]) -> None:
    """Look at line 1 of a header-less RecSys file: the right field count, no header row."""
    line = _head(path, YOOCHOOSE_HINT, 1)[0]
    fields = _fields(line)
    if len(fields) != len(columns):
        if len(fields) == len(other):
            fix = f"this looks like the other RecSys file ({','.join(other)}): pass the clicks first, then the buys"
        elif "\t" in line:
            fix = f"this file is tab-separated (a preprocessed export such as SessionId/ItemId/Time?): pass the raw {filename}"
        else:
            fix = f"pass the raw {filename}; {YOOCHOOSE_HINT}"
        raise DataError(
            str(path),
            f"line 1 has {len(fields)} comma-separated field(s) ({_clip(line)!r}), expected {len(columns)}: {','.join(columns)}",
            fix,
        )
    if not fields[0].strip().lstrip("-").isdigit():
        raise DataError(
            str(path), f"line 1 starts with {fields[0]!r}, not an integer session id (a header row?)",
            f"the RecSys 2015 files have no header row: delete it; {YOOCHOOSE_HINT}",
        )


#: input files: the clicks, then optionally the buys
PATHS = (1, 2, "the clicks file, then optionally the buys file")


@dataclasses.dataclass(frozen=True)
class Options:
    """The ``DataConfig`` fields Yoochoose reads: the protocol's session filter and sample."""

    min_session_events: int = option(3, "keep sessions with at least this many events (Yoochoose: clicks)")
    sample_sessions: int = option(200_000, "then sample this many sessions uniformly without replacement")
    min_item_events: int = option(0, "then keep items with at least this many events (one pass, no re-filtering)")


def reader(config: DataConfig, options: Options, *, progress: bool, frame: pd.DataFrame | None = None) -> EventLog:
    """The registry's entry (``--source yoochoose``): clicks[, buys], sampled by the seed's ``yoochoose-sample`` stream."""
    return read_yoochoose(config.paths, options, rng=numpy_rng(config.seed, "yoochoose-sample"), progress=progress)
