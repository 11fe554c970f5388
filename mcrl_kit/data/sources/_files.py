"""The hardened file reading every source shares: checks, plain/gzip CSV chunks, ids, errors.

Every problem a user can cause (missing file, wrong columns, malformed rows, corrupt gzip,
...) is a :class:`~mcrl_kit.errors.DataError` naming the file, the problem and the fix;
nothing here lets a pandas/gzip traceback through.

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
import dataclasses
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

from ...errors import DataError

#: rows per chunk: ~25 MB of parsed columns, few enough chunks for a smooth progress bar
CHUNK_ROWS = 500_000
#: how id columns are read: the text exactly as written (no type inference, missing → NA),
#: into Arrow strings (4× faster than ``"str"``, which builds a Python object per value)
ID_TEXT = pd.ArrowDtype(pa.string())


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


def options_of(options_cls: type, config):
    """``config`` as the source's ``Options`` when it is a whole ``DataConfig`` (the readers accept either);
    a field left at None takes the source's own default."""
    if isinstance(config, options_cls):
        return config
    own = {f.name for f in dataclasses.fields(options_cls)}
    return options_cls(**{name: getattr(config, name) for name in own if getattr(config, name) is not None})


def session_item_filter(frame: pd.DataFrame, min_session: int, min_item: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """The protocol's filter: sessions with ≥ ``min_session`` events, *then* items with ≥ ``min_item`` events
    counted on what is left — one pass, no re-filtering. Returns ``(kept rows, what each rule dropped)``."""
    short = _occurrences(frame["session_id"].to_numpy()) < min_session
    info = {"sessions_dropped_short": int(frame.loc[short, "session_id"].nunique()), "events_dropped_short": int(short.sum())}
    frame = frame[~short]
    rare = _occurrences(frame["item_id"].to_numpy()) < min_item
    info |= {"items_dropped_rare": int(frame.loc[rare, "item_id"].nunique()), "events_dropped_rare": int(rare.sum())}
    return frame[~rare], info
