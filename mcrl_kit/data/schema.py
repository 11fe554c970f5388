"""The one event-log schema every source yields.

``session_id, timestamp, item_id, is_buy`` — one row per event, sorted by session then
time (stable: events with equal timestamps keep their input order). Session and item
ids may be any hashable scalar (ints, strings); the shared path re-indexes them in the
sorted order of the raw ids. Integer ids keep their numeric order exactly at any size
(int64 when all fit, else Python ints: never rounded, never wrapped around); any other
id column becomes text and sorts as strings.
Timestamps are int64 (any unit, only the order matters); ``is_buy`` is 0/1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..errors import DataError

EVENT_COLUMNS = ("session_id", "timestamp", "item_id", "is_buy")
INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


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
    duplicated = sorted({str(c) for c in df.columns if c in EVENT_COLUMNS and list(df.columns).count(c) > 1})
    if duplicated:
        raise DataError(name, f"has duplicated column name(s) {', '.join(duplicated)}", "give every column its own name")
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
                f"{int(bad.sum())} row(s) have an empty {col} (blank, or a missing-value marker such as NaN, "
                f"None, NA or null; first at row {row})",
                "drop or fill those rows before preparing",
            )
        if out[col].dtype == object:  # only object columns can hold text that is not valid Unicode
            bad = out[col].map(lambda v: isinstance(v, str) and not _is_unicode(v))
            if bad.any():
                raise DataError(
                    name, f"{int(bad.sum())} {col} value(s) are not valid Unicode text (first: {out[col][bad].iloc[0]!r})",
                    "decode the ids properly (lone surrogates cannot be saved)",
                )
    out["timestamp"] = _as_int64(out["timestamp"], name, "timestamp")
    is_buy = out["is_buy"]
    if is_buy.dtype == bool:
        is_buy = is_buy.astype(np.int8)
    if is_buy.dtype == object or pd.api.types.is_string_dtype(is_buy):
        # "true"/"false" in any case (how pandas writes a bool column), like 1/0
        text = is_buy.astype(str).str.strip().str.lower()
        words = text.isin(["true", "false"]).to_numpy()
        if words.any():
            flags = (text == "true").to_numpy().astype(np.int8)
            is_buy = pd.Series(np.where(words, flags, is_buy.to_numpy(dtype=object)), index=is_buy.index)
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


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _normalise_ids(col: pd.Series) -> pd.Series:
    """Integer ids stay integers; anything else becomes a string (one type per column).

    Integers are int64 when every id fits, else Python ints in an object column (e.g.
    uint64 ids beyond 2**63, or an object column of Python ints near 2**70): exact, and
    still in numeric order — wrapping or rounding them would merge distinct ids. An
    object column is integer only when every value is an int (booleans are not); float
    columns are integer when every value is integral and below 2**53 (exact in a float).
    """
    if pd.api.types.is_integer_dtype(col):
        if pd.api.types.is_unsigned_integer_dtype(col) and col.max() > INT64_MAX:
            return _python_ints(col)
        return col.astype(np.int64)
    if pd.api.types.is_float_dtype(col) and np.all(np.mod(col.to_numpy(), 1) == 0):
        if np.all(np.abs(col.to_numpy()) < 2**53):
            return col.astype(np.int64)
    if col.dtype == object and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in col):
        return _python_ints(col)
    return col.astype(str)


def _python_ints(col: pd.Series) -> pd.Series:
    """Integer ids of any size → int64 when all fit, else an object column of Python ints."""
    ints = [int(v) for v in col]
    if INT64_MIN <= min(ints) and max(ints) <= INT64_MAX:
        return pd.Series(np.array(ints, dtype=np.int64), index=col.index)
    return pd.Series(np.array(ints, dtype=object), index=col.index)


def _as_int64(col: pd.Series, name: str, what: str) -> pd.Series:
    """Timestamps → int64 preserving their order exactly, or a DataError.

    One form per column: integers (kept), finite floats (integral ones kept, fractional
    ones in millionths: µs resolution), datetimes or ISO 8601 strings (ns since 1970).
    Refused: booleans, a mix of numbers and text, values outside int64 (which would wrap
    around and reorder events), dates outside 1677–2262 (outside ns int64).
    """
    forms = f"give every {what} in one form: integers (e.g. Unix ms), finite numbers or ISO 8601 dates"
    if pd.api.types.is_bool_dtype(col):
        raise DataError(name, f"{what} is a boolean column", forms)
    if pd.api.types.is_datetime64_any_dtype(col):
        if isinstance(col.dtype, pd.DatetimeTZDtype):  # astype refuses tz-aware → naive: go through UTC
            col = col.dt.tz_convert(None)
        return _datetime_ns(col, name, what)
    numeric = col if pd.api.types.is_integer_dtype(col) else pd.to_numeric(col, errors="coerce")
    if numeric.isna().all():  # no numbers at all: dates
        parsed = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
        if parsed.isna().any():
            bad = col[parsed.isna()]
            raise DataError(
                name, f"{len(bad)} {what} value(s) are neither numbers nor dates (first: {bad.iloc[0]!r}; dates must be ISO 8601)", forms
            )
        return _datetime_ns(parsed.dt.tz_convert(None), name, what)
    if numeric.isna().any():
        text, good = col[numeric.isna()], col[numeric.notna()]
        bad = text[pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601").isna()]
        if len(bad):
            problem = f"{len(bad)} {what} value(s) are neither numbers nor dates (first: {bad.iloc[0]!r}; dates must be ISO 8601)"
        else:
            problem = f"{what} mixes numbers (first: {good.iloc[0]!r}) with {len(text)} date(s) (first: {text.iloc[0]!r})"
        raise DataError(name, problem, forms)
    if pd.api.types.is_bool_dtype(numeric):
        raise DataError(name, f"{what} holds booleans", forms)
    if pd.api.types.is_integer_dtype(numeric):
        if pd.api.types.is_unsigned_integer_dtype(numeric) and numeric.max() > INT64_MAX:
            raise DataError(name, f"{what} {numeric.max()} is beyond the int64 range", f"give {what}s below 2**63")
        return numeric.astype(np.int64)
    values = numeric.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise DataError(name, f"{what} has infinite values", f"drop those rows or fix the {what}s")
    if np.abs(values).max() >= 2.0**63:
        raise DataError(name, f"{what} {float(values[np.argmax(np.abs(values))])!r} is beyond the int64 range", f"give {what}s below 2**63")
    if (values % 1 != 0).any():
        # fractional seconds (e.g. Yoochoose exports): keep the order at µs resolution
        if np.abs(values).max() * 1e6 >= 2.0**63:
            raise DataError(
                name, f"fractional {what}s as large as {float(np.abs(values).max())!r} cannot keep µs resolution in int64",
                f"give integer {what}s (e.g. Unix ms), or fractional seconds",
            )
        return (numeric * 1_000_000).round().astype(np.int64)
    return numeric.astype(np.int64)


def _datetime_ns(col: pd.Series, name: str, what: str) -> pd.Series:
    """Naive datetimes (any unit) → int64 ns since 1970; dates outside ns int64 are refused."""
    try:
        return col.astype("datetime64[ns]").astype(np.int64)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise DataError(
            name, f"{what}s run from {col.min()} to {col.max()}, outside the years 1677–2262 that int64 ns can hold",
            f"fix the {what}s (a wrong century?), or give them as integers",
        ) from None


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
