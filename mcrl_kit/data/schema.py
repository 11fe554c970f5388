"""The one event-log schema every source yields.

``session_id, timestamp, item_id, is_buy`` — one row per event, sorted by session then
time (stable: events with equal timestamps keep their input order). Session and item
ids may be any hashable scalar (ints, strings); the shared path re-indexes them.
Timestamps are int64 (any unit, only the order matters); ``is_buy`` is 0/1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..errors import DataError

EVENT_COLUMNS = ("session_id", "timestamp", "item_id", "is_buy")


def validate_events(df: pd.DataFrame, name: str = "event log") -> pd.DataFrame:
    """Check and normalise an event log; return a new, sorted DataFrame.

    Raises :class:`DataError` naming ``name`` (the file or object) for missing columns,
    missing values, non-numeric timestamps, ``is_buy`` outside {0, 1} or an empty log.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(name, f"expected a pandas DataFrame, got {type(df).__name__}", "pass a DataFrame or a file path")
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            name,
            f"missing column(s) {', '.join(missing)} (found: {', '.join(map(str, df.columns)) or 'none'})",
            "rename the columns, or map them with columns={'session_id': ..., 'timestamp': ..., "
            "'item_id': ..., 'is_buy': ...} (CLI: --column session_id=YOUR_NAME)",
        )
    if len(df) == 0:
        raise DataError(name, "the event log is empty", "pass a log with at least one session of events")
    out = df.loc[:, list(EVENT_COLUMNS)].copy()
    for col in EVENT_COLUMNS:
        bad = out[col].isna()
        # pandas 3 reads text as the `str` dtype, not object: check both for blank ids
        if col in ("session_id", "item_id") and (out[col].dtype == object or pd.api.types.is_string_dtype(out[col])):
            bad |= out[col].map(lambda v: isinstance(v, str) and v.strip() == "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                name,
                f"{int(bad.sum())} row(s) have an empty {col} (first at row {row})",
                "drop or fill those rows before preparing",
            )
    out["timestamp"] = _as_int64(out["timestamp"], name, "timestamp")
    is_buy = out["is_buy"]
    if is_buy.dtype == bool:
        is_buy = is_buy.astype(np.int8)
    is_buy = pd.to_numeric(is_buy, errors="coerce")
    if is_buy.isna().any() or not is_buy.isin([0, 1]).all():
        bad = out["is_buy"][is_buy.isna() | ~is_buy.isin([0, 1])]
        raise DataError(
            name,
            f"is_buy must be 0 or 1, found {bad.iloc[0]!r} ({len(bad)} row(s))",
            "encode purchases as 1 and clicks as 0",
        )
    out["is_buy"] = is_buy.astype(np.int8)
    for col in ("session_id", "item_id"):
        out[col] = _normalise_ids(out[col])
    out = out.sort_values(["session_id", "timestamp"], kind="stable").reset_index(drop=True)
    return out


def _normalise_ids(col: pd.Series) -> pd.Series:
    """Integer ids stay integers; anything else becomes a string (one type per column)."""
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    if pd.api.types.is_float_dtype(col) and np.all(np.mod(col.to_numpy(), 1) == 0):
        if np.all(np.abs(col.to_numpy()) < 2**53):
            return col.astype(np.int64)
    return col.astype(str)


def _as_int64(col: pd.Series, name: str, what: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        if isinstance(col.dtype, pd.DatetimeTZDtype):  # astype refuses tz-aware → naive: go through UTC
            col = col.dt.tz_convert(None)
        return col.astype("datetime64[ns]").astype(np.int64)
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.isna().any():
        parsed = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
        if parsed.isna().any():
            bad = col[parsed.isna() & numeric.isna()]
            raise DataError(
                name,
                f"{len(bad)} {what} value(s) are neither numbers nor dates (first: {bad.iloc[0]!r})",
                f"give {what}s as numbers (e.g. Unix ms) or ISO 8601 dates",
            )
        return parsed.dt.tz_convert(None).astype("datetime64[ns]").astype(np.int64)
    if not np.isfinite(numeric.to_numpy(dtype=float)).all():
        raise DataError(name, f"{what} has infinite values", f"drop those rows or fix the {what}s")
    if pd.api.types.is_float_dtype(numeric):
        # fractional seconds (e.g. Yoochoose exports): keep the order at µs resolution
        return (numeric * 1_000_000).round().astype(np.int64) if (numeric % 1 != 0).any() else numeric.astype(np.int64)
    return numeric.astype(np.int64)


@dataclasses.dataclass
class EventLog:
    """What every source returns: a validated log plus what the shared path needs.

    - ``events``: the four schema columns, validated and sorted (:func:`validate_events`);
    - ``name``: names the input in messages and tables (e.g. ``RetailRocket events.csv``);
    - ``catalogue``: raw ids of the full item catalogue when the source knows it (the
      simulator); items are then indexed over it, so never-seen items stay rankable.
      ``None`` = the items present in the log (the reference's LabelEncoder);
    - ``extras``: side tables saved with the prepared data (e.g. the simulator's
      per-session latents, used to roll sessions forward for true returns);
    - ``info``: counts to report (rows read, rows dropped by each rule).
    """

    events: pd.DataFrame
    name: str
    catalogue: np.ndarray | None = None
    extras: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    info: dict[str, int | float | str] = dataclasses.field(default_factory=dict)
