"""Real-data sources → the one event-log schema (``shared/docs/PROTOCOL.md``).

- :func:`read_retailrocket` — Kaggle RetailRocket ``events.csv`` (plain or ``.gz``);
- :func:`read_yoochoose` — RecSys Challenge 2015 ``yoochoose-clicks.dat`` (+ ``-buys.dat``);
- :func:`read_events` — any event log (DataFrame, CSV or parquet) already in the schema.

Each returns an :class:`~mcrl_kit.data.schema.EventLog`; the shared path
(:mod:`mcrl_kit.data.prepare`) then re-indexes, splits and builds the MDP. Each applies
the protocol's filters exactly and records what every rule dropped in ``info``.

Big files (RetailRocket: 2.7 M rows, Yoochoose clicks: 33 M rows) are read in chunks
of only the needed columns, with a progress bar over the bytes read. Every problem a
user can cause (missing file, wrong columns, malformed rows, corrupt gzip, nothing left
after filtering, ...) is a :class:`~mcrl_kit.errors.DataError` naming the file, the
problem and the fix; nothing here lets a pandas/gzip traceback through.

Ids are read as text and parsed by one rule for every source (:func:`_plain_integers`):
when every value of a column is a *plain integer* — what ``str(int)`` writes: digits with
an optional leading ``-``, no leading zeros, ``+``, blanks, decimal point or ``-0`` — the
ids are those integers, exactly and at any size (int64 when all fit, else Python ints),
so they keep their numeric order; ids near 2**70 are never rounded together and ids in
[2**63, 2**64) never wrap around. ``"007"`` is no plain integer: the ``events`` source
keeps such a column as text (names sort as strings), RetailRocket and Yoochoose, whose
ids are integers by definition, refuse it naming the line.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from ..config import DataConfig
from ..errors import DataError
from .schema import EVENT_COLUMNS, EventLog, validate_events

#: rows per chunk: ~25 MB of parsed columns, few enough chunks for a smooth progress bar
CHUNK_ROWS = 500_000
#: how id columns are read: the text exactly as written (no type inference, missing → NA),
#: into Arrow strings (4× faster than ``"str"``, which builds a Python object per value)
ID_TEXT = pd.ArrowDtype(pa.string())

RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid", "transactionid")
RETAILROCKET_EVENTS = ("view", "addtocart", "transaction")
RETAILROCKET_HINT = (
    "RetailRocket is Kaggle's retailrocket/ecommerce-dataset events.csv "
    "(header timestamp,visitorid,event,itemid,transactionid; plain or .gz)"
)
CLICKS_COLUMNS = ("session_id", "timestamp", "item_id", "category")
BUYS_COLUMNS = ("session_id", "timestamp", "item_id", "price", "quantity")
YOOCHOOSE_HINT = (
    "Yoochoose takes the RecSys Challenge 2015 yoochoose-clicks.dat (session_id,timestamp,item_id,category) "
    "then optionally yoochoose-buys.dat (session_id,timestamp,item_id,price,quantity), no header rows, plain or .gz"
)
EVENTS_HINT = (
    "an event log is a CSV (plain or .gz) or parquet file with columns session_id,timestamp,item_id,is_buy "
    "(map other names with --column KIT=YOURS)"
)


# --- RetailRocket ----------------------------------------------------------------------
def read_retailrocket(path: str | os.PathLike, config: DataConfig, progress: bool = True) -> EventLog:
    """Kaggle RetailRocket ``events.csv`` → the event log of PROTOCOL.md → RetailRocket.

    1. a session is a visitor; 2. drop every row with a transaction id (all
    ``transaction`` events); 3. keep visitors with ≥ ``config.min_session_events``
    events, *then* items with ≥ ``config.min_item_events`` events — one pass, in that
    order, no re-filtering (as the reference); 4. ``view`` → click (``is_buy`` 0),
    ``addtocart`` → purchase (``is_buy`` 1). Duplicated rows are kept (the reference
    does not dedupe). Extra columns (e.g. a ``datetime`` copy) are ignored.
    """
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
    short = _occurrences(ev["session_id"].to_numpy()) < config.min_session_events
    sessions_dropped = int(ev.loc[short, "session_id"].nunique())
    events_dropped_short = int(short.sum())
    ev = ev[~short]
    rare = _occurrences(ev["item_id"].to_numpy()) < config.min_item_events
    items_dropped = int(ev.loc[rare, "item_id"].nunique())
    events_dropped_rare = int(rare.sum())
    ev = ev[~rare]
    if len(ev) == 0:
        raise DataError(
            str(path),
            f"no events are left after the protocol's filters ({rows_read:,} rows read, {tx_dropped:,} transaction "
            f"rows dropped, then {events_dropped_short:,} events of visitors with < {config.min_session_events} events, "
            f"then {events_dropped_rare:,} events of items with < {config.min_item_events} events)",
            "pass the full events.csv (or a bigger sample), or lower DataConfig.min_session_events / min_item_events",
        )
    info = {
        "rows_read": rows_read,
        "transaction_rows_dropped": tx_dropped,
        "sessions_dropped_short": sessions_dropped,
        "events_dropped_short": events_dropped_short,
        "items_dropped_rare": items_dropped,
        "events_dropped_rare": events_dropped_rare,
        "duplicate_rows_kept": int(ev.duplicated().sum()),
    }
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


# --- Yoochoose -------------------------------------------------------------------------
def read_yoochoose(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    config: DataConfig,
    rng: np.random.Generator,
    progress: bool = True,
) -> EventLog:
    """RecSys 2015 clicks (+ buys) → the event log of PROTOCOL.md → Yoochoose.

    1. keep click sessions with ≥ ``config.min_session_events`` clicks and sample
       ``config.sample_sessions`` of them uniformly without replacement — exactly
       ``rng.choice(sorted eligible session ids, n, replace=False)``; when fewer exist,
       all are taken (noted in ``info``);
    2. items are indexed from the sampled **clicks** (declared as the ``catalogue``);
    3. keep the buys of sampled sessions; a buy whose item never appears in the
       sampled clicks cannot be encoded and is dropped (counted in ``info``);
    4. clicks ``is_buy`` 0, buys 1, concatenated (clicks first, so a click and a buy at
       the same time keep that order) and sorted by (session, timestamp).

    ``paths`` is (clicks, buys) or just (clicks,) for a clicks-only log. The clicks
    file is read twice — once counting clicks per session (ids only), once keeping the
    rows of sampled sessions — so 33 M clicks never sit in memory at once and only the
    sampled rows' ISO timestamps are parsed.
    """
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


# --- any event log ---------------------------------------------------------------------
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


# --- shared file handling ----------------------------------------------------------------
def _check_file(path: str | os.PathLike, hint: str) -> Path:
    """The path as a readable, non-empty file, or a DataError saying what it is instead."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(str(path), "no such file", f"check the path; {hint}")
    if path.is_dir():
        raise DataError(str(path), "is a directory, not a file", f"pass the file inside it; {hint}")
    if path.stat().st_size == 0:
        raise DataError(str(path), "is empty (0 bytes)", f"download or export it again; {hint}")
    if not os.access(path, os.R_OK):
        raise DataError(str(path), "is not readable (permission denied)", "fix its permissions (chmod +r)")
    return path


def _is_gzip(path: Path) -> bool:
    # the magic bytes, so a misnamed file still works; a `.gz` without them is reported corrupt
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b" or path.suffix.lower() == ".gz"


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tuple[object, object]]:
    """(raw file, decompressed stream): the raw one's position drives the progress bar."""
    with open(path, "rb") as raw:
        if _is_gzip(path):
            with gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                yield raw, fh
        else:
            yield raw, raw


@contextlib.contextmanager
def _read_errors(path: Path, hint: str) -> Iterator[None]:
    """Turn what pandas, gzip and the OS raise while reading into one DataError naming ``path``."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataError(str(path), "is empty (no data after decompression)", f"download or export it again; {hint}") from None
    except pd.errors.ParserError as err:
        raise DataError(
            str(path), f"has a malformed row ({_clip(str(err))})", f"repair or delete that line; {hint}"
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(
            str(path), f"is not a valid gzip file ({_clip(str(err))})",
            "it is probably truncated or corrupt: download it again (or pass the uncompressed file)",
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(
            str(path), f"is not UTF-8 text (byte {err.start}: {err.reason})",
            f"pass a text CSV (plain or .gz), not a binary file; {hint}",
        ) from None
    except OSError as err:
        raise DataError(str(path), f"could not be read ({_clip(str(err))})", "check the file and its permissions") from None


def _head(path: Path, hint: str, n: int = 2) -> list[str]:
    """The first ``n`` lines of a (possibly gzipped) text file; a DataError when line 1 is blank."""
    with _read_errors(path, hint), _open(path) as (_, fh):
        lines = [fh.readline(1 << 20).decode("utf-8-sig").rstrip("\r\n") for _ in range(n)]
    if not lines[0].strip():
        raise DataError(str(path), "is empty (its first line is blank)", f"download or export it again; {hint}")
    return lines


def _fields(line: str) -> list[str]:
    return next(csv.reader([line]), [])


def _header(path: Path, hint: str) -> list[str]:
    """The column names of line 1, after checking that line 2 has no more fields than them.

    pandas silently turns a first row with one surplus field into an index (or drops the
    field), shifting every column; later surplus fields are ParserErrors.
    """
    line1, line2 = _head(path, hint)
    header = [f.strip() for f in _fields(line1)]
    duplicated = sorted({f for f in header if header.count(f) > 1})
    if duplicated:
        raise DataError(str(path), f"has duplicated column name(s) {', '.join(duplicated)}", "give every column its own name")
    if len(_fields(line2)) > len(header):
        raise DataError(
            str(path), f"line 2 has {len(_fields(line2))} fields but the header names {len(header)} ({_clip(line1)!r})",
            "repair that line or the header (a comma inside a value must be quoted)",
        )
    return header


def _csv_chunks(path: Path, progress: bool, desc: str, hint: str, **read_csv: object) -> Iterator[pd.DataFrame]:
    """Chunks of a CSV (plain or gzip) with a progress bar over the (compressed) bytes read."""
    with (
        _read_errors(path, hint),
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc, disable=not progress, leave=False) as bar,
        _open(path) as (raw, fh),
        # index_col=False: never turn a surplus first field into an index
        pd.read_csv(fh, chunksize=CHUNK_ROWS, encoding="utf-8-sig", index_col=False, **read_csv) as reader,
    ):
        for chunk in reader:
            bar.update(raw.tell() - bar.n)
            yield chunk


#: a plain integer: what ``str(int)`` writes (no leading zeros, "+", blanks, decimal point or "-0")
PLAIN_INTEGER = "^(0|-?[1-9][0-9]*)$"


def _plain(strings: pa.Array) -> np.ndarray:
    """Which ids are plain integers (missing ones are not)."""
    return pc.fill_null(pc.match_substring_regex(strings, PLAIN_INTEGER), False).to_numpy(zero_copy_only=False)


def _plain_integers(values: pd.Series) -> np.ndarray | None:
    """Ids read as text (``str`` or :data:`ID_TEXT`) → their integers when every value is a plain integer, else ``None``.

    int64 when every value fits — exactly what int64 parsing gives — else an object array
    of Python ints: exact at any size (no float rounding, no wrap-around beyond 2**63),
    and numpy/pandas sort, compare and ``np.unique`` them numerically. ``"007"``, ``"+7"``,
    ``" 7"``, ``"7.0"`` and missing values are not plain integers: ``"007"`` and ``"7"``
    would otherwise become one id. Vectorised in Arrow (a match, then a checked cast).
    """
    strings = pa.array(values, type=pa.large_string())
    if not _plain(strings).all():
        return None
    try:
        return pc.cast(strings, pa.int64()).to_numpy(zero_copy_only=False)  # refuses, never wraps, beyond int64
    except pa.ArrowInvalid:
        return np.array([int(v) for v in strings.to_pylist()], dtype=object)


def _integer_ids(values: pd.Series, path: Path, label: str, first_line: int, hint: str) -> np.ndarray:
    """Ids of a source whose ids are integers (:func:`_plain_integers`), or a DataError naming the first bad line."""
    ints = _plain_integers(values)
    if ints is not None:
        return ints
    bad = ~_plain(pa.array(values, type=pa.large_string()))
    i = int(np.flatnonzero(bad)[0])
    raw = values.iloc[i]
    if pd.isna(raw):
        raise DataError(str(path), f"line {first_line + i} has no {label} (a row with too few fields?)", "repair or delete that line")
    number = pd.to_numeric(raw, errors="coerce")
    integral = pd.notna(number) and float(number) % 1 == 0  # "007", "+7", " 7", "7.0", "1e3": an integer, not plainly
    raise DataError(
        str(path),
        f"{label} {str(raw)!r} on line {first_line + i} is not an integer{' written plainly' if integral else ''} "
        f"({int(bad.sum()):,} such row(s) nearby)",
        "ids of this source are integers written plainly (digits with an optional leading '-'; no leading zeros, "
        f"'+', blanks or decimals, so that '007' and '7' are never taken for one id); {hint}",
    )


def _concat_ids(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Id arrays of chunks or files → one: int64 when all are, else Python ints (object) throughout."""
    if all(p.dtype == np.int64 for p in parts):
        return np.concatenate(parts)
    return np.concatenate([p.astype(object) for p in parts])


def _isin(values: np.ndarray, test: np.ndarray) -> np.ndarray:
    """``np.isin`` for id arrays that may be int64 or Python ints (object): both compared as Python ints then."""
    if values.dtype == np.int64 and test.dtype == np.int64:
        return np.isin(values, test)
    return np.isin(values.astype(object), test.astype(object))


def _integers(values: pd.Series, path: Path, label: str, first_line: int, hint: str) -> np.ndarray:
    """Timestamps as int64, or a DataError naming the first line whose value is not an integer."""
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(np.int64)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() | (numbers % 1 != 0)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = values.iloc[i]
        if pd.isna(raw):
            problem, fix = f"line {first_line + i} has no {label} (a row with too few fields?)", "repair or delete that line"
        else:
            problem = f"{label} {str(raw)!r} on line {first_line + i} is not an integer ({int(bad.sum()):,} such row(s) nearby)"
            fix = f"ids and timestamps of this source are integers; {hint}"
        raise DataError(str(path), problem, fix)
    return numbers.to_numpy(np.int64)


def _no_missing(values: pd.Series, path: Path, first_line: int, layout: str) -> None:
    """An empty last column = a row with fewer fields than the format."""
    missing = values.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(
            str(path), f"line {first_line + i} has fewer fields than the {len(layout.split(','))} of {layout}",
            "repair or delete that line",
        )


def _missing_columns(path: Path | str, missing: Sequence[str], found: Sequence, hint: str) -> DataError:
    found_text = ", ".join(map(str, found)) or "none"
    tab = " (the header contains tabs: is the file tab-separated? it must be comma-separated)" if any(
        "\t" in str(f) for f in found
    ) else ""
    return DataError(
        str(path), f"missing column(s) {', '.join(missing)} (found: {_clip(found_text)}){tab}",
        f"rename the columns or pass the right file; {hint}",
    )


def _occurrences(values: np.ndarray) -> np.ndarray:
    """For each element, how often its value occurs in ``values`` (the reference's groupby size)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return counts[inverse]


def _clip(text: str, n: int = 120) -> str:
    """One line, at most ``n`` characters: error messages stay one readable paragraph."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
