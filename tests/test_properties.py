"""Property tests of the event-log path: any log is either prepared correctly or refused.

Hypothesis draws event logs with the four schema columns in any order (optionally under
other names, mapped with ``columns=`` / ``--column``), extra columns, every representation
a user might hand over — int64, uint64 beyond 2**63, integral and fractional floats,
strings (unicode, blank, ``"NA"``), mixed object columns, NaN/None, datetimes naive and
tz-aware, ISO 8601 strings, booleans — duplicated rows, unsorted timestamps, ties,
length-1 sessions. Each log goes through the ``events`` source twice: as a DataFrame
(``prepare(frame=...)``) and as a CSV file (plain or gzip) through the command line
(``cli.main(["prepare", ...])``).

The expected outcome is computed here, independently of the kit, from the rules the kit
documents (``mcrl_kit/data/schema.py``):

- ids: integer columns stay integers of any size in numeric order (int64, uint64 beyond
  2**63, object columns holding only ints), float columns whose values are all integral
  and below 2**53 become integers, anything else is text; in a CSV an id column is
  integer only when every cell is the canonical decimal of an integer (any size);
  blank ids and missing values (None/NaN; in a CSV also pandas' NA markers such as ``NA``)
  are refused, and so are strings that are not valid Unicode;
- timestamps: one form per column — integers in int64 (kept), finite floats below 2**63
  (integral: kept; fractional: µs, refused if µs overflows int64), datetimes or ISO 8601
  strings within 1677–2262 (ns since 1970); booleans, a mix of numbers and dates/text,
  values outside int64 and unparseable text are refused;
- ``is_buy``: 0/1 as ints, floats, bools, numeric text or ``true``/``false`` in any case;
  anything else is refused.

A valid log must be prepared, and the prepared folder must satisfy invariants checked
here from the input: counts, the item/session index as the position in the sorted raw
ids (a bijection onto 0..N-1), per-session order = a stable sort by time, exact
timestamp values, the split a partition, the replay buffer of every split, clicks +
purchases = events. An invalid log must be refused with a ``KitError`` (CLI: exit 2, one
``error: … Fix: …`` paragraph naming a problem column), with nothing left on disk.

``MCRL_HYPOTHESIS_EXAMPLES`` sets the examples per test (default 150, ~30 s in all);
a long run: ``MCRL_HYPOTHESIS_EXAMPLES=2000 pytest tests/test_properties.py``. The number
of cases tried (accepted / refused) is printed at the end of the module.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import gzip
import io
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from mcrl_kit.cli import main
from mcrl_kit.config import DataConfig
from mcrl_kit.data import load_prepared, prepare
from mcrl_kit.data.prepare import min_sessions
from mcrl_kit.errors import KitError

EXAMPLES = int(os.environ.get("MCRL_HYPOTHESIS_EXAMPLES", "150"))
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
KIT = ("session_id", "timestamp", "item_id", "is_buy")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: what pandas.read_csv reads as a missing value by default (its documented na_values)
NA_MARKERS = {
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
}
STATE_LEN = 10
TRIED: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    line = (
        f"test_properties: {TRIED['frame'] + TRIED['csv']} hostile logs tried ({TRIED['frame']} DataFrame, "
        f"{TRIED['csv']} CSV through the CLI): {TRIED['accepted']} prepared and checked, {TRIED['refused']} refused"
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)


class Invalid(Exception):
    """The model's verdict: the kit must refuse this log; ``columns`` are the culprits."""

    def __init__(self, *columns: str):
        super().__init__(columns)
        self.columns = columns


# --- the model: what the kit must make of each column ---------------------------------------
def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def is_blank(v) -> bool:
    return isinstance(v, str) and v.strip() == ""


def is_unicode(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def canonical_int(text: str) -> bool:
    return bool(re.fullmatch(r"-?[0-9]+", text)) and str(int(text)) == text


def id_keys(kind: str, values: list, col: str) -> list:
    """The normalised ids (int or str) of a typed column, or Invalid."""
    if any(is_missing(v) or is_blank(v) or (isinstance(v, str) and not is_unicode(v)) for v in values):
        raise Invalid(col)
    if kind == "int":
        return [int(v) for v in values]
    if kind == "uint":
        return [int(v) for v in values]
    if kind == "float":
        if all(math.isfinite(v) and v % 1 == 0 for v in values) and all(abs(v) < 2**53 for v in values):
            return [int(v) for v in values]
        return [str(float(v)) for v in values]
    if kind == "object" and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return [int(v) for v in values]
    return [str(v) for v in values]  # str / object with text: text


def csv_id_keys(cells: list[str], col: str) -> list:
    if any(c in NA_MARKERS or c.strip() == "" for c in cells):
        raise Invalid(col)
    return [int(c) for c in cells] if all(canonical_int(c) for c in cells) else list(cells)


def numeric_times(values: list, col: str = "timestamp") -> tuple[list, list]:
    """(order keys, exact kit values) for numbers (Python ints and floats), or Invalid."""
    if all(isinstance(v, int) for v in values):
        if any(not INT64_MIN <= v <= INT64_MAX for v in values):
            raise Invalid(col)
        return list(values), list(values)
    f = [float(v) for v in values]
    if not all(math.isfinite(v) for v in f) or max(abs(v) for v in f) >= 2.0**63:
        raise Invalid(col)
    if any(v % 1 != 0 for v in f):
        if max(abs(v) for v in f) * 1e6 >= 2.0**63:
            raise Invalid(col)
        return f, [int(np.round(v * 1_000_000)) for v in f]
    return f, [int(v) for v in f]


def date_times(instants: list[dt.datetime], col: str = "timestamp") -> tuple[list, list]:
    ns = [(d - EPOCH) // dt.timedelta(microseconds=1) * 1000 for d in instants]
    if any(not INT64_MIN < v <= INT64_MAX for v in ns):  # int64 ns holds 1677-09-21 .. 2262-04-11
        raise Invalid(col)
    return ns, ns


def time_keys(tags: list[tuple]) -> tuple[list, list]:
    """Timestamps given as semantic tags ("int"|"float"|"date"|"junk"|"bool"|"missing", value)."""
    kinds = {t for t, _ in tags}
    if kinds & {"missing", "junk", "bool"}:
        raise Invalid("timestamp")
    if kinds == {"date"}:
        return date_times([v for _, v in tags])
    if "date" in kinds:  # numbers and dates mixed
        raise Invalid("timestamp")
    return numeric_times([v for _, v in tags])


FLAG_WORDS = {"true": 1, "false": 0}


def flag_of(v) -> int:
    if is_missing(v):
        raise Invalid("is_buy")
    if isinstance(v, bool | np.bool_):
        return int(v)
    if isinstance(v, str):
        word = v.strip().lower()
        if word in FLAG_WORDS:
            return FLAG_WORDS[word]
        try:
            v = float(word)
        except ValueError:
            raise Invalid("is_buy") from None
    if v in (0, 1):
        return int(v)
    raise Invalid("is_buy")


def csv_flag_of(cell: str) -> int:
    if cell in NA_MARKERS:
        raise Invalid("is_buy")
    return flag_of(cell)


# --- strategies ------------------------------------------------------------------------------
def text(min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


HUGE_INTS = st.sampled_from([INT64_MIN, INT64_MAX, INT64_MAX - 1, INT64_MIN + 1, -1, 0, 1, 2**53 + 1])
ID_VALUES = {
    "int": st.one_of(st.integers(-50, 50), HUGE_INTS, st.integers(INT64_MIN, INT64_MAX)),
    "uint": st.one_of(st.integers(0, 50), st.integers(INT64_MAX - 2, 2**64 - 1)),
    "float": st.one_of(
        st.integers(-(2**53) + 1, 2**53 - 1).map(float), st.integers(-40, 40).map(lambda k: k / 4),
        st.sampled_from([2.0**60, -(2.0**62), 1e16, -0.0]),
    ),
    "str": st.one_of(text(), st.sampled_from(["NA", "null", "nan", "None", "007", "7", " 7", "é", "日本", "a,b", 'q"t'])),
    "object": st.one_of(st.integers(-5, 5), st.integers(INT64_MAX, 2**70), text()),
}
#: values that make an id column invalid, per kind (None is valid in every pandas dtype)
BAD_IDS = {
    "int": st.just(None),
    "uint": st.just(None),
    "float": st.sampled_from([float("nan")]),
    "str": st.sampled_from([None, "", "   ", "\t"]),
    "object": st.sampled_from([None, "", " ", "a\ud800b", float("nan")]),
}
ID_DTYPES = {"int": np.int64, "uint": np.uint64, "float": np.float64, "str": "str", "object": object}

DATETIMES = st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2250, 1, 1))
FAR_DATETIMES = st.sampled_from([dt.datetime(1500, 1, 1), dt.datetime(2300, 6, 1, 12), dt.datetime(1, 1, 1)])
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
JUNK_TIMES = st.sampled_from(["soon", "yesterday", "01/02/2020", "2020-13-45", "  ", "1,5", "12:00", "x"])


@st.composite
def time_value(draw, kind: str, bad: bool) -> tuple[str, object]:
    """One timestamp as a semantic tag and its Python value (rendered later per path)."""
    if kind == "int":
        return ("int", draw(st.one_of(st.integers(-(10**15), 10**15), HUGE_INTS)))
    if kind == "uint":
        return ("int", draw(st.integers(INT64_MAX + 1, 2**64 - 1) if bad else st.integers(0, 10**12)))
    if kind == "float":
        if bad:
            return ("float", draw(st.sampled_from([math.inf, -math.inf, 1e19, -2.0**63 * 1.5, 2.0**63])))
        return ("float", draw(st.one_of(st.integers(-(2**40), 2**40).map(lambda k: k / 8), st.integers(-5, 5).map(float))))
    if kind == "float_int":
        return ("float", draw(st.integers(-(2**62), 2**62).map(float)))
    if kind == "float_big_frac":  # fractions too large for µs in int64: refused
        return ("float", draw(st.sampled_from([1e13 + 0.5, -(2.0**50) - 0.25])))
    if kind in ("datetime", "iso"):
        if bad and kind == "iso" and draw(st.booleans()):
            return ("junk", draw(JUNK_TIMES))
        naive = draw(FAR_DATETIMES if bad else DATETIMES)
        return ("date", naive)
    if kind == "object":  # ints and ISO dates: valid alone, refused together
        return draw(st.one_of(st.tuples(st.just("int"), st.integers(-1000, 1000)), st.tuples(st.just("date"), DATETIMES)))
    if kind == "bool":
        return ("bool", draw(st.booleans()))
    raise AssertionError(kind)


FLAG_VALUES = {
    "int": st.sampled_from([0, 1]),
    "bool": st.booleans(),
    "float": st.sampled_from([0.0, 1.0]),
    "str": st.sampled_from(["0", "1", "0.0", "1.0", "true", "false", "True", "FALSE", " 1", "0 "]),
    "object": st.sampled_from([0, 1, True, False, 1.0, "true", "0"]),
}
BAD_FLAGS = {
    "int": st.sampled_from([2, -1]),
    "bool": st.just(None),
    "float": st.sampled_from([0.5, float("nan"), 2.0]),
    "str": st.sampled_from(["yes", "2", "-1", "0.5", "", "NA", "t"]),
    "object": st.sampled_from([None, "maybe", 3, 0.25]),
}
FLAG_DTYPES = {"int": np.int64, "bool": bool, "float": np.float64, "str": "str", "object": object}


@st.composite
def logs(draw) -> dict:
    """A log as typed columns + what it means: rows of (session, time tag, item, flag) values."""
    n_rows = draw(st.integers(0, 30) | st.just(1))
    n_sessions = draw(st.integers(1, 10))  # fewer than 6 distinct sessions cannot fill the 80/10/10 split: refused
    n_items = draw(st.integers(1, 7))
    kinds = {
        "session_id": draw(st.sampled_from(list(ID_VALUES))),
        "item_id": draw(st.sampled_from(list(ID_VALUES))),
        "timestamp": draw(st.sampled_from(["int", "int", "uint", "float", "float", "float_int", "datetime", "iso", "iso", "object"])),
        "is_buy": draw(st.sampled_from(list(FLAG_VALUES))),
    }
    tz = draw(st.none() | st.just(dt.UTC) | OFFSETS)  # the datetime column's zone (one per column)
    sessions = draw(st.lists(ID_VALUES[kinds["session_id"]], min_size=n_sessions, max_size=n_sessions))
    items = draw(st.lists(ID_VALUES[kinds["item_id"]], min_size=n_items, max_size=n_items))
    n_times = draw(st.integers(1, 6))
    times = [draw(time_value(kinds["timestamp"], bad=False)) for _ in range(n_times)]
    rows = [
        [
            draw(st.sampled_from(sessions)),
            draw(st.sampled_from(times)),
            draw(st.sampled_from(items)),
            draw(FLAG_VALUES[kinds["is_buy"]]),
        ]
        for _ in range(n_rows)
    ]
    if rows and draw(st.booleans()):  # duplicated rows
        for _ in range(draw(st.integers(1, 3))):
            rows.insert(draw(st.integers(0, len(rows))), list(draw(st.sampled_from(rows))))
    # ~40% of logs get a few bad cells
    if rows and draw(st.integers(0, 9)) < 4:
        for _ in range(draw(st.integers(1, 2))):
            r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, 3))
            col = ("session_id", "timestamp", "item_id", "is_buy")[c]
            if col in ("session_id", "item_id"):
                rows[r][c] = draw(BAD_IDS[kinds[col]])
            elif col == "is_buy":
                rows[r][c] = draw(BAD_FLAGS[kinds["is_buy"]])
            elif kinds["timestamp"] == "float" and draw(st.booleans()):
                rows[r][c] = ("missing", None)
            elif kinds["timestamp"] in ("int", "float_int") and draw(st.booleans()):
                rows[r][c] = ("float", 1e19) if kinds["timestamp"] == "float_int" else ("missing", None)
            elif kinds["timestamp"] == "float_int":
                kinds["timestamp"] = "float_big_frac"
                rows[r][c] = draw(time_value("float_big_frac", bad=True))
            else:
                rows[r][c] = draw(time_value(kinds["timestamp"], bad=True))
    names = dict(zip(KIT, KIT))
    if draw(st.booleans()):  # other names, mapped with columns= / --column
        names = dict(zip(KIT, draw(st.lists(column_names(), min_size=4, max_size=4, unique_by=str.strip))))
    extras = draw(st.lists(column_names(), max_size=2, unique_by=str.strip))
    extras = [e for e in extras if e.strip() not in {n.strip() for n in names.values()}]
    order = draw(st.permutations(list(KIT) + extras))
    drop = draw(st.sampled_from(KIT)) if draw(st.integers(0, 19)) == 0 else None  # a missing column
    extra_values = {e: draw(st.lists(text(0, 5) | st.integers(), min_size=len(rows), max_size=len(rows))) for e in extras}
    return dict(kinds=kinds, tz=tz, rows=rows, names=names, order=order, drop=drop, extras=extra_values)


def column_names() -> st.SearchStrategy[str]:
    # no surrounding blanks (the CSV header is stripped), no line breaks, no BOM
    chars = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff")
    return st.text(chars, min_size=1, max_size=6).map(str.strip).filter(bool)


# --- the expected prepared data --------------------------------------------------------------
def expected(log: dict, typed: bool) -> list[tuple]:
    """(session key, time key, kit time, item key, flag) per input row, in input order; or Invalid."""
    if log["drop"] is not None:
        raise Invalid(log["names"][log["drop"]], log["drop"])
    rows = log["rows"]
    if not rows:
        raise Invalid("empty", "rows")
    kinds = log["kinds"]
    problems, out = [], {}
    for c, col in enumerate(KIT):
        values = [r[c] for r in rows]
        try:
            if col in ("session_id", "item_id"):
                out[col] = id_keys(kinds[col], values, col) if typed else csv_id_keys([render_id(v) for v in values], col)
            elif col == "timestamp":
                tags = [typed_time_tag(t, kinds["timestamp"], log["tz"]) if typed else csv_time_tag(t, kinds["timestamp"], log["tz"])
                        for t in values]
                out[col] = time_keys(tags)
            else:
                out[col] = [flag_of(v) for v in values] if typed else [csv_flag_of(render_flag(v)) for v in values]
        except Invalid as err:
            problems += list(err.columns)
    if problems:
        raise Invalid(*problems)
    if len(set(out["session_id"])) < min_sessions(DataConfig().split):  # too few to fill train, val and test
        raise Invalid("split")
    keys, kit_times = out["timestamp"]
    return list(zip(out["session_id"], keys, kit_times, out["item_id"], out["is_buy"]))


def aware(d: dt.datetime, tz) -> dt.datetime:
    return d.replace(tzinfo=tz or dt.UTC).astimezone(dt.UTC)


def typed_time_tag(tag: tuple, kind: str, tz) -> tuple:
    t, v = tag
    if t == "date":
        return ("date", aware(v, tz if kind == "datetime" else None))
    return tag


def csv_time_tag(tag: tuple, kind: str, tz) -> tuple:
    """What a CSV cell means: its rendering (render_time) read back."""
    t, v = tag
    cell = render_time(tag, kind, tz)
    if cell in NA_MARKERS:
        return ("missing", None)
    if t == "bool":
        return ("junk", cell)  # "True"/"False" text is no timestamp
    if t == "date":
        return ("date", aware(v, tz if kind == "datetime" else None))
    return tag


# --- rendering: typed DataFrame columns and CSV text -----------------------------------------
def render_id(v) -> str:
    if is_missing(v):
        return ""
    return str(v)


def render_flag(v) -> str:
    if is_missing(v):
        return ""
    return str(v)


def render_time(tag: tuple, kind: str, tz) -> str:
    t, v = tag
    if t == "missing":
        return ""
    if t == "date":
        d = v.replace(tzinfo=tz) if kind == "datetime" and tz is not None else v
        if d.tzinfo is None and d.time() == dt.time(0) and d.year % 2:
            return d.date().isoformat()
        s = d.isoformat(sep=" " if d.minute % 2 else "T")
        return s.replace("+00:00", "Z") if d.second % 2 else s
    return str(v)


def typed_column(col: str, kind: str, values: list, tz) -> pd.Series:
    if col == "timestamp":
        if kind == "datetime":
            return pd.Series([None if t == "missing" else v.replace(tzinfo=tz) if t == "date" else v for t, v in values])
        if kind in ("iso",):
            return pd.Series([render_time(tv, kind, tz) if tv[0] != "missing" else None for tv in values], dtype="str")
        vals = [None if t == "missing" else render_time((t, v), kind, tz) if t == "date" else v for t, v in values]
        if kind in ("int", "uint") and all(v is not None for v in vals):
            return pd.Series(vals, dtype=np.int64 if kind == "int" and all(INT64_MIN <= v <= INT64_MAX for v in vals) else np.uint64)
        if kind.startswith("float"):
            return pd.Series([np.nan if v is None else v for v in vals], dtype=np.float64)
        if kind == "bool":
            return pd.Series(vals, dtype=bool)
        return pd.Series(vals, dtype=object)
    dtypes = ID_DTYPES if col in ("session_id", "item_id") else FLAG_DTYPES
    dtype = dtypes[kind]
    if dtype in (np.int64, np.uint64, bool) and any(is_missing(v) for v in values):
        dtype = object
    if dtype == "str" and any(isinstance(v, float) for v in values):
        dtype = object
    return pd.Series(values, dtype=dtype)


def to_frame(log: dict) -> pd.DataFrame:
    kinds, rows = log["kinds"], log["rows"]
    cols = {}
    for c, col in enumerate(KIT):
        cols[col] = typed_column(col, kinds[col], [r[c] for r in rows], log["tz"])
    data = {}
    for name in log["order"]:
        if name in KIT:
            if name != log["drop"]:
                data[log["names"][name]] = cols[name].reset_index(drop=True)
        else:
            data[name] = pd.Series(log["extras"][name], dtype=object)
    return pd.DataFrame(data) if data else pd.DataFrame(index=range(len(rows)))


def to_csv(log: dict, path: Path, compress: bool) -> None:
    kinds, rows = log["kinds"], log["rows"]
    header, columns = [], []
    for name in log["order"]:
        if name in KIT:
            if name == log["drop"]:
                continue
            c = KIT.index(name)
            header.append(log["names"][name])
            if name == "timestamp":
                columns.append([render_time(r[c], kinds["timestamp"], log["tz"]) for r in rows])
            elif name == "is_buy":
                columns.append([render_flag(r[c]) for r in rows])
            else:
                columns.append([render_id(r[c]) for r in rows])
        else:
            header.append(name)
            columns.append([str(v) for v in log["extras"][name]])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(zip(*columns) if columns else [])
    data = buf.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)


def mapping(log: dict) -> dict[str, str] | None:
    m = {k: v for k, v in log["names"].items() if k != v}
    return m or None


# --- the checks ------------------------------------------------------------------------------
def check_prepared(out: Path, want: list[tuple]) -> None:
    data = load_prepared(out)
    ev, items, sessions, stats = data.events, data.items, data.sessions, data.stats
    n = len(want)
    sess_keys = sorted({w[0] for w in want})
    item_keys = sorted({w[3] for w in want})
    # counts; clicks + purchases = events
    buys = sum(w[4] for w in want)
    assert (stats["events"], stats["sessions"], stats["items"]) == (n, len(sess_keys), len(item_keys))
    assert (stats["purchases"], stats["clicks"]) == (buys, n - buys)
    assert stats["clicks"] + stats["purchases"] == stats["events"] == len(ev)
    # the re-index is the position in the sorted raw ids: a bijection onto 0..N-1
    assert items["item"].tolist() == list(range(len(item_keys)))
    assert items["raw_id"].tolist() == [str(k) for k in item_keys]
    assert sessions["session"].tolist() == list(range(len(sess_keys)))
    assert sessions["raw_id"].tolist() == [str(k) for k in sess_keys]
    # per session: a stable sort of the input rows by time, exact kit timestamps
    by_session = collections.defaultdict(list)
    for w in want:
        by_session[w[0]].append(w)
    expect = []
    for s, key in enumerate(sess_keys):
        for w in sorted(by_session[key], key=lambda w: w[1]):  # Python's sort is stable
            expect.append((s, w[2], item_keys.index(w[3]), w[4]))
    got = list(zip(ev["session"].tolist(), ev["timestamp"].tolist(), ev["item"].tolist(), ev["is_buy"].tolist()))
    assert got == expect
    assert str(ev["timestamp"].dtype) == "int64"
    # the split: a partition of the sessions, counted in the stats
    assert sessions["split"].isin(["train", "val", "test"]).all()
    per_split = sessions["split"].value_counts().to_dict()
    events_of = {name: [e for e in expect if sessions["split"].iat[e[0]] == name] for name in ("train", "val", "test")}
    for name in ("train", "val", "test"):
        assert stats[f"{name}_sessions"] == per_split.get(name, 0)
        assert stats[f"{name}_events"] == len(events_of[name])
    assert abs(per_split.get("train", 0) - 0.8 * len(sess_keys)) < 1 + 1e-9
    # the replay buffer of every non-empty split, from first principles
    for name, rows in events_of.items():
        if rows:
            check_replay(data.replay(name), rows, len(item_keys))


def check_replay(buf, rows: list[tuple], n_items: int) -> None:
    pad = n_items
    states, lens, nexts, next_lens, dones, actions, buys = [], [], [], [], [], [], []
    for i, (s, _, item, flag) in enumerate(rows):
        start = i
        while start > 0 and rows[start - 1][0] == s:
            start -= 1
        history = [r[2] for r in rows[start:i]]
        before, after = history[-STATE_LEN:], [*history, item][-STATE_LEN:]
        states.append(before + [pad] * (STATE_LEN - len(before)))
        lens.append(max(len(before), 1))
        nexts.append(after + [pad] * (STATE_LEN - len(after)))
        next_lens.append(len(after))
        dones.append(i + 1 == len(rows) or rows[i + 1][0] != s)
        actions.append(item)
        buys.append(bool(flag))
    assert len(buf) == len(rows) and buf.n_items == n_items
    assert buf.state.tolist() == states and buf.len_state.tolist() == lens
    assert buf.next_state.tolist() == nexts and buf.len_next_state.tolist() == next_lens
    assert buf.done.tolist() == dones and buf.action.tolist() == actions and buf.is_buy.tolist() == buys
    assert sum(dones) == len({r[0] for r in rows})


def check_refusal(message: str, culprits: tuple[str, ...], names: dict) -> None:
    assert "Fix:" in message, message
    assert "Traceback" not in message
    words = set(culprits) | {names.get(c, c) for c in culprits if c in names}
    if "empty" in culprits:
        words.add("empty")
    if "rows" in culprits:
        words.add("no rows")
    assert any(w in message for w in words) or "duplicated column" in message, (culprits, message)


def leftovers(parent: Path, out: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != out.name)


def run_frame(log: dict) -> None:
    TRIED["frame"] += 1
    try:
        want = expected(log, typed=True)
    except Invalid as err:
        want, culprits = None, err.columns
    frame = to_frame(log)
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp)
        out = parent / "prepared"
        config = DataConfig(source="events", paths=("<DataFrame>",), columns=mapping(log))
        if want is None:
            with pytest.raises(KitError) as err:
                prepare(config, out=out, frame=frame, progress=False)
            check_refusal(str(err.value), culprits, log["names"])
            assert not out.exists()
            TRIED["refused"] += 1
            event("DataFrame: refused")
        else:
            prepare(config, out=out, frame=frame, progress=False)
            check_prepared(out, want)
            TRIED["accepted"] += 1
            event("DataFrame: prepared")
        assert leftovers(parent, out) == [], "temporaries or partial folders left next to the output"


def run_csv(log: dict, compress: bool) -> None:
    TRIED["csv"] += 1
    try:
        want = expected(log, typed=False)
    except Invalid as err:
        want, culprits = None, err.columns
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / ("log.csv.gz" if compress else "log.csv")
        to_csv(log, src, compress)
        parent = root / "outparent"
        parent.mkdir()
        out = parent / "prepared"
        args = ["prepare", "--source", "events", "--path", str(src), "--out", str(out), "--no-progress"]
        args += [f"--column={k}={v}" for k, v in (mapping(log) or {}).items()]
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = main(args)  # any exception but KitError escapes here and fails the test: no traceback allowed
        err = stderr.getvalue()
        if want is None:
            assert rc == 2, (rc, err, stdout.getvalue(), src.read_bytes()[:500])
            assert err.startswith("error: ") and "\n" not in err.strip(), err
            assert src.name in err, err
            check_refusal(err, culprits, log["names"])
            assert not out.exists()
            TRIED["refused"] += 1
            event("CSV: refused")
        else:
            assert rc == 0, (err, src.read_bytes()[:500])
            check_prepared(out, want)
            TRIED["accepted"] += 1
            event("CSV: prepared")
        assert leftovers(parent, out) == [], "temporaries or partial folders left next to the output"


# --- regression examples: each of these crashed or was silently wrong before the fixes ----------
def fixed(rows, kinds=None, tz=None, names=None, drop=None) -> dict:
    return dict(
        kinds={"session_id": "int", "item_id": "int", "timestamp": "int", "is_buy": "int", **(kinds or {})},
        tz=tz, rows=[list(r) for r in rows], names=names or dict(zip(KIT, KIT)), order=list(KIT), drop=drop, extras={},
    )


# timestamps mixing numbers and dates: IndexError in the error message
MIXED_TIMES = fixed([(1, ("date", dt.datetime(2020, 1, 1)), 5, 0), (1, ("int", 1234567), 6, 1)], {"timestamp": "object"})
# fractional float timestamps beyond µs in int64: all wrapped to -2**63, order lost silently
BIG_FRACTIONS = fixed([(1, ("float", 1e13 + 0.5), 5, 0), (1, ("float", 1e13), 6, 1)], {"timestamp": "float_big_frac"})
# integral float timestamps ≥ 2**63: wrapped silently
HUGE_FLOAT_TIME = fixed([(1, ("float", 1e19), 5, 0), (1, ("float", 2.0), 6, 1)], {"timestamp": "float_int"})
# uint64 timestamps ≥ 2**63: wrapped to negative, reordering events
UINT_TIME = fixed([(1, ("int", 2**63), 5, 0), (1, ("int", 1), 6, 1)], {"timestamp": "uint"})
# uint64 ids ≥ 2**63: wrapped onto negative ids, merging 2**63 with -2**63
UINT_IDS = fixed([(2**63, ("int", 1), 2**64 - 1, 0), (1, ("int", 2), 7, 1)], {"session_id": "uint", "item_id": "uint"})
# dates outside 1677-2262: OutOfBoundsDatetime traceback
FAR_DATES = fixed([(1, ("date", dt.datetime(3000, 1, 1)), 5, 0), (1, ("date", dt.datetime(2020, 1, 1)), 6, 1)], {"timestamp": "iso"})
# a lone surrogate in an id: UnicodeEncodeError while writing parquet
SURROGATE = fixed([("a\ud800", ("int", 1), 5, 0), ("b", ("int", 2), 6, 1)], {"session_id": "object"})
# "true"/"false" flags: accepted in a CSV, refused in a DataFrame
WORD_FLAGS = fixed([(1, ("int", 1), 5, "true"), (1, ("int", 2), 6, "False")], {"is_buy": "str"})
# boolean timestamps: accepted as 0/1
BOOL_TIMES = fixed([(1, ("bool", True), 5, 0), (1, ("bool", False), 6, 1)], {"timestamp": "bool"})
# ids near 2**63 as CSV text: "9223372036854775808" read as uint64 and wrapped onto -2**63
CSV_HUGE_IDS = fixed([(1, ("int", 1), 5, 0), ("9223372036854775808", ("int", 2), 6, 1)], {"session_id": "object"})


@PROFILE
@given(logs())
@example(MIXED_TIMES).via("regression")
@example(BIG_FRACTIONS).via("regression")
@example(HUGE_FLOAT_TIME).via("regression")
@example(UINT_TIME).via("regression")
@example(UINT_IDS).via("regression")
@example(FAR_DATES).via("regression")
@example(SURROGATE).via("regression")
@example(WORD_FLAGS).via("regression")
@example(BOOL_TIMES).via("regression")
def test_dataframe_logs_are_prepared_correctly_or_refused(log):
    run_frame(log)


@PROFILE
@given(logs(), st.booleans())
@example(MIXED_TIMES, False).via("regression")
@example(BIG_FRACTIONS, False).via("regression")
@example(HUGE_FLOAT_TIME, True).via("regression")
@example(UINT_TIME, False).via("regression")
@example(FAR_DATES, False).via("regression")
@example(CSV_HUGE_IDS, False).via("regression")
def test_csv_logs_through_the_cli_are_prepared_correctly_or_refused(log, compress):
    # the CSV path cannot carry surrogates; everything else is rendered as text
    if any(isinstance(v, str) and not is_unicode(v) for r in log["rows"] for v in r if isinstance(v, str)):
        log = {**log, "rows": [[("x" if isinstance(v, str) and not is_unicode(v) else v) for v in r] for r in log["rows"]]}
    run_csv(log, compress)


def test_duplicated_kit_columns_in_a_dataframe_are_refused(tmp_path):
    frame = pd.DataFrame([[1, 2, 3, 0, 4]], columns=["session_id", "timestamp", "item_id", "is_buy", "item_id"])
    with pytest.raises(KitError, match="duplicated column name"):
        prepare(DataConfig(source="events", paths=("<DataFrame>",)), out=tmp_path / "out", frame=frame, progress=False)
    assert list(tmp_path.iterdir()) == []
