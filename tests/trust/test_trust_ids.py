"""Trust: huge and odd ids (issue: ids near 2**70 merged visitors, ids in [2**63, 2**64) went negative).

Every source reads ids by one rule (``mcrl_kit/data/sources/_files.py``): a column whose every
value is a plain integer (what ``str(int)`` writes) holds those integers exactly, at any
size, in numeric order; anything else is text and sorts as strings (``events``) or is
refused naming the line (RetailRocket, Yoochoose: their ids are integers). The expected
values below are written with Python ints from the files' text, not with kit code; the
real RetailRocket sample (ids within int64) must come out exactly as plain int64 parsing
gives it, down to the bytes of the prepared files and the metrics of a short run.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mcrl_kit.config import DataConfig
from mcrl_kit.data import load_prepared, prepare
from mcrl_kit.data.prepare import write_prepared
from mcrl_kit.data.schema import EventLog, validate_events
from mcrl_kit.data.simulator import simulate
from mcrl_kit.data.sources import read_events, read_retailrocket, read_yoochoose
from mcrl_kit.errors import DataError
from mcrl_kit.paths import shared_file

pytestmark = pytest.mark.trust("ids")

RR_HEADER = "timestamp,visitorid,event,itemid,transactionid\n"
COLS = ["session_id", "timestamp", "item_id", "is_buy"]
HUGE = 2**70


def shared_file_or_skip(*parts: str):
    """As ``tests/conftest.py``'s helper (a conftest cannot be imported from this folder)."""
    path = shared_file(*parts)
    if path is None:
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (the real-data samples), which is absent here")
    return path


def rr_file(tmp_path, rows, name="events.csv"):
    """A RetailRocket events.csv from (timestamp, visitor, event, item) rows, ids written as given."""
    path = tmp_path / name
    path.write_text(RR_HEADER + "".join(f"{t},{v},{e},{i},\n" for t, v, e, i in rows))
    return path


def rr_config(path, **kw):
    return DataConfig(source="retailrocket", paths=(str(path),), **kw)


def prepared_rr(tmp_path, rows, **kw):
    path = rr_file(tmp_path, rows)
    return prepare(rr_config(path, **kw), out=tmp_path / "prepared", progress=False)


def raw_ids(table: pd.DataFrame) -> list[str]:
    return table["raw_id"].tolist()


# --- RetailRocket ---------------------------------------------------------------------------
def test_retailrocket_visitors_near_2_70_stay_separate_sessions(tmp_path):
    """200 visitors 2**70 + k: as floats they are one number (one session of 600 events)."""
    visitors = [HUGE + k for k in range(200)]
    rows = [(t, v, "view", item) for v in visitors for t, item in ((1, 11), (2, 12), (3, 13))]
    log = read_retailrocket(rr_file(tmp_path, rows[::-1]), rr_config(tmp_path / "events.csv"), progress=False)
    ev = log.events
    assert ev["session_id"].tolist() == [v for v in visitors for _ in range(3)]  # numeric order, exact
    assert all(type(v) is int for v in ev["session_id"])
    assert ev.groupby("session_id").size().eq(3).all() and ev["session_id"].nunique() == 200
    assert log.info["sessions_dropped_short"] == 0

    data = prepare(rr_config(tmp_path / "events.csv"), out=tmp_path / "prepared", progress=False)
    assert data.stats["sessions"] == 200 and data.stats["events"] == 600
    assert raw_ids(data.sessions) == [str(v) for v in visitors]
    assert data.events.groupby("session").size().eq(3).all()


def test_retailrocket_ids_in_2_63_to_2_64_stay_positive_and_ordered(tmp_path):
    """uint64-sized visitor ids once wrapped onto negative int64 (2**63 became -2**63)."""
    visitors = [2**63, 2**63 + 1, 2**63 + 7, 2**64 - 3, 2**64 - 2, 2**64 - 1]  # six: enough for the split
    rows = [(t, v, "view", 10 + t) for v in visitors[::-1] for t in (3, 1, 2)]
    ev = read_retailrocket(rr_file(tmp_path, rows), rr_config(tmp_path / "events.csv"), progress=False).events
    assert ev["session_id"].tolist() == [v for v in visitors for _ in range(3)]
    assert min(ev["session_id"]) > 0 and ev["timestamp"].tolist() == [1, 2, 3] * 6

    data = prepare(rr_config(tmp_path / "events.csv"), out=tmp_path / "prepared", progress=False)
    assert raw_ids(data.sessions) == [str(v) for v in visitors]
    assert not any(r.startswith("-") for r in raw_ids(data.sessions))


@pytest.mark.parametrize("base", [HUGE, 2**63], ids=["near-2**70", "2**63-to-2**64"])
def test_retailrocket_huge_item_ids_stay_distinct_positive_and_ordered(tmp_path, base):
    items = [base + k for k in (0, 1, 2, 5, 9)]
    rows = [(t, v, "view" if t % 2 else "addtocart", items[(v + t) % 5]) for v in range(1, 11) for t in range(1, 4)]
    data = prepared_rr(tmp_path, rows)
    assert data.stats["items"] == 5
    assert raw_ids(data.items) == [str(i) for i in items]
    # each event names the item it named in the file
    raw_session = np.array([int(r) for r in raw_ids(data.sessions)])[data.events["session"]]
    raw_item = [int(raw_ids(data.items)[i]) for i in data.events["item"]]
    want = sorted(((v, t, i) for t, v, _, i in rows), key=lambda r: (r[0], r[1]))
    assert list(zip(raw_session.tolist(), data.events["timestamp"].tolist(), raw_item)) == want
    # the item filter counts them apart: 5 items of ≥ 3 events, none merged, none dropped
    assert data.stats["source_info"]["items_dropped_rare"] == 0


def test_retailrocket_mix_of_huge_and_small_ids_keeps_numeric_order(tmp_path):
    """Small ids in the first chunk, huge ones later: one numeric order over the whole file."""
    visitors = [-3, 7, 10, 2**53 + 1, 2**63 - 1, 2**63, 10**30, 10**30 + 1]
    items = [-1, 0, 9, 10, 2**53, 2**53 + 1, 2**64, HUGE + 1]
    rows = [(t, v, "view", items[(k + t) % len(items)]) for k, v in enumerate(visitors) for t in range(1, 4)]
    data = prepared_rr(tmp_path, rows, min_item_events=1)
    assert raw_ids(data.sessions) == [str(v) for v in visitors]
    assert raw_ids(data.items) == [str(i) for i in sorted({i for *_, i in rows})]
    # the same file through the events source: the same order (one rule for every source)
    frame = pd.DataFrame(rows, columns=["timestamp", "session_id", "event", "item_id"]).assign(is_buy=0)
    frame.drop(columns="event").astype(str).to_csv(tmp_path / "log.csv", index=False)
    ev = read_events(tmp_path / "log.csv", progress=False).events
    assert list(dict.fromkeys(ev["session_id"])) == visitors
    assert sorted(set(ev["item_id"])) == sorted({i for *_, i in rows}) and ev["item_id"].dtype == object


def test_retailrocket_chunks_of_small_then_huge_ids(tmp_path, monkeypatch):
    """A small-id chunk and a huge-id chunk make one exact column (no int64/object mix-up)."""
    from mcrl_kit.data.sources import _files as sources  # the shared CSV reading holds the chunk size

    monkeypatch.setattr(sources, "CHUNK_ROWS", 4)
    visitors = [5, 6, 2**64 + 5, 2**64 + 6]
    rows = [(t, v, "view", 100 + t) for v in visitors for t in range(1, 4)]
    ev = read_retailrocket(rr_file(tmp_path, rows), rr_config(tmp_path / "events.csv"), progress=False).events
    assert ev["session_id"].tolist() == [v for v in visitors for _ in range(3)]
    assert {type(v) for v in ev["session_id"]} == {int}


@pytest.mark.parametrize("odd", ["007", "+7", "7.0", " 7"])
def test_integer_sources_refuse_ids_not_written_plainly(tmp_path, odd):
    """``"007"`` next to ``"7"``: once silently the same visitor; now refused (the events source keeps it a name)."""
    rows = [(t, v, "view", 10) for v in ("7", odd, "8") for t in range(1, 4)]
    with pytest.raises(DataError) as err:
        read_retailrocket(rr_file(tmp_path, rows), rr_config(tmp_path / "events.csv"), progress=False)
    assert f"visitorid {odd!r} on line 5 is not an integer written plainly" in str(err.value)
    assert "leading zeros" in str(err.value)

    clicks = tmp_path / "yoochoose-clicks.dat"
    clicks.write_text("".join(f"{s},2014-04-07T10:51:0{k}.000Z,{i},0\n" for s, i in (("1", "5"), ("1", odd)) for k in range(3)))
    with pytest.raises(DataError, match=re.escape(f"item_id '{odd}' on line 4 is not an integer written plainly")):
        read_yoochoose(clicks, DataConfig(source="yoochoose", paths=(str(clicks),)), np.random.default_rng(0), progress=False)


# --- Yoochoose ------------------------------------------------------------------------------
def iso(second: int) -> str:
    return f"2014-04-07T10:{second // 60:02d}:{second % 60:02d}.000Z"


def test_yoochoose_huge_session_and_item_ids_buys_matched_exactly(tmp_path):
    """Sessions 2**70 + k, items 2**64 + j: floats would merge the sessions and the items."""
    sessions = [HUGE + k for k in range(6)]
    items = [2**64 + j for j in range(4)]
    clicks = [(s, 10 * k + n, items[(k + n) % 3]) for k, s in enumerate(sessions) for n in range(3)]
    clicks.append((HUGE + 100, 999, items[0]))  # one click: never eligible
    (tmp_path / "clicks.dat").write_text("".join(f"{s},{iso(t)},{i},0\n" for s, t, i in clicks))
    buys = [
        (sessions[1], 300, items[(1 + 0) % 3]),  # kept: an item session 1 clicked
        (sessions[2], 301, items[0]),  # kept: a clicked item (any session's)
        (sessions[2], 302, items[3]),  # dropped: 2**64 + 3 was never clicked (2**64 + 2 was)
        (sessions[3] + 2**40, 303, items[0]),  # outside the sample: a session that never clicked
        (HUGE + 100, 304, items[0]),  # outside the sample: only one click
    ]
    (tmp_path / "buys.dat").write_text("".join(f"{s},{iso(t)},{i},12,1\n" for s, t, i in buys))
    config = DataConfig(source="yoochoose", paths=(str(tmp_path / "clicks.dat"), str(tmp_path / "buys.dat")),
                        sample_sessions=10_000)
    log = read_yoochoose(config.paths, config, np.random.default_rng(0), progress=False)

    assert log.info["sessions_eligible"] == 6 and log.info["click_sessions"] == 7
    assert (log.info["buys_kept"], log.info["buys_dropped_unknown_item"], log.info["buys_outside_sample"]) == (2, 1, 2)
    assert log.catalogue.tolist() == items[:3]
    ev = log.events
    kept_buys = buys[:2]
    want = sorted([(s, t, i, 0) for s, t, i in clicks[:-1]] + [(s, t, i, 1) for s, t, i in kept_buys],
                  key=lambda r: (r[0], r[1]))
    got = list(zip(ev["session_id"], ev["timestamp"], ev["item_id"], ev["is_buy"]))
    ms = {t: int(pd.Timestamp(iso(t)).value // 10**6) for *_, t, _ in [(0, *c) for c in clicks + buys]}
    assert got == [(s, ms[t], i, b) for s, t, i, b in want]

    data = prepare(config, out=tmp_path / "prepared", progress=False)
    assert raw_ids(data.sessions) == [str(s) for s in sessions]
    assert raw_ids(data.items) == [str(i) for i in items[:3]]
    assert (data.stats["sessions"], data.stats["purchases"], data.stats["clicks"]) == (6, 2, 18)


# --- integer ids numeric, other ids strings ----------------------------------------------------
def test_only_non_integer_ids_sort_as_strings(tmp_path):
    """Integers in any dtype keep numeric order; a column with any name in it is text."""
    ints = [10, 9, 2**70, -4, 2**64, 7]  # six sessions: enough to fill the 80/10/10 split
    frame = pd.DataFrame({"session_id": pd.Series(ints, dtype=object), "timestamp": [1, 2, 3, 4, 5, 6],
                          "item_id": pd.Series([2**64 - 1, 5, 2**63, 5, 5, 5], dtype=np.uint64), "is_buy": 0})
    ev = read_events(frame).events
    assert ev["session_id"].tolist() == sorted(ints)
    data = prepare(DataConfig(source="events", paths=("<DataFrame>",)), out=tmp_path / "f", frame=frame, progress=False)
    assert raw_ids(data.sessions) == [str(v) for v in sorted(ints)]
    assert raw_ids(data.items) == [str(v) for v in (5, 2**63, 2**64 - 1)]  # was text: '18…' before '5'
    small = read_events(frame.assign(session_id=pd.Series([10, 9, 3, -4, 1, 2], dtype=object))).events
    assert small["session_id"].dtype == np.int64 and small["session_id"].tolist() == [-4, 1, 2, 3, 9, 10]

    names = ["10", "9", str(2**70), "x", "007", "y"]
    log = pd.DataFrame({"session_id": names, "timestamp": range(6), "item_id": ["1", "01", "1", "2", "10", "2"],
                        "is_buy": 0})
    log.to_csv(tmp_path / "names.csv", index=False)
    for source in (tmp_path / "names.csv", log, log.astype({"session_id": object}).assign(
            session_id=[10, 9, 2**70, "x", "007", "y"])):
        got = read_events(source, progress=False).events
        assert got["session_id"].tolist() == sorted(names)  # strings: "007" < "10" < "1180…" < "9" < "x" < "y"
        assert sorted(set(got["item_id"])) == ["01", "1", "10", "2"]
    data = prepare(DataConfig(source="events", paths=(str(tmp_path / "names.csv"),)), out=tmp_path / "p", progress=False)
    assert raw_ids(data.sessions) == sorted(names) and raw_ids(data.items) == ["01", "1", "10", "2"]


# --- the real sample and the simulator: unchanged -------------------------------------------
SHIFT = 2**64  # ids shifted beyond uint64: the order, and so everything but the raw ids, must not change


def int64_reference(path) -> pd.DataFrame:
    """PROTOCOL.md → RetailRocket by hand on plain int64 parsing (the ids as they were read before)."""
    raw = pd.read_csv(path, dtype={"timestamp": np.int64, "visitorid": np.int64, "itemid": np.int64})
    ev = raw[raw["transactionid"].isna()]
    ev = ev[ev.groupby("visitorid")["itemid"].transform("size") >= 3]
    ev = ev[ev.groupby("itemid")["visitorid"].transform("size") >= 3]
    out = pd.DataFrame({"session_id": ev["visitorid"], "timestamp": ev["timestamp"], "item_id": ev["itemid"],
                        "is_buy": (ev["event"] == "addtocart").astype(np.int8)})
    return out.sort_values(["session_id", "timestamp"], kind="stable").reset_index(drop=True)


def shifted(raw: list[str]) -> list[str]:
    return [str(int(r) + SHIFT) for r in raw]


def short_run(data_dir, out) -> tuple[str, bytes]:
    from mcrl_kit.cli import main

    args = ["train", "--data", str(data_dir), "--out", str(out), "--backbone", "gru", "--steps", "6", "--eval-every", "3",
            "--device", "cpu", "--no-progress", "--algo", "supervised"]
    assert main(args) == 0
    return (out / "metrics.json").read_text().replace(str(out), "RUN"), (out / "history.csv").read_bytes()


@pytest.mark.shared
def test_retailrocket_sample_unchanged_and_shifted_beyond_2_64_alike(tmp_path):
    """The sample = plain int64 parsing, byte for byte and run for run; its ids + 2**64 change only the raw ids."""
    path = shared_file_or_skip("retailrocket_sample_5k_visitors", "sample_events.csv.gz")
    config = rr_config(path)
    log = read_retailrocket(path, config, progress=False)
    reference = int64_reference(path)
    pd.testing.assert_frame_equal(log.events, reference, check_exact=True)  # dtypes included: int64 ids
    assert (len(log.events), log.events["session_id"].nunique(), log.events["item_id"].nunique()) == (1_758, 389, 415)

    # the kit's prepared folder = the folder written from the int64 reference, byte for byte
    new = prepare(config, out=tmp_path / "new", progress=False)
    write_prepared(EventLog(validate_events(reference), name=log.name, info=log.info), config, tmp_path / "old")
    old = load_prepared(tmp_path / "old")
    for name in ("events", "items", "sessions"):
        pd.testing.assert_frame_equal(getattr(new, name), getattr(old, name), check_exact=True)
        assert (tmp_path / "new" / f"{name}.parquet").read_bytes() == (tmp_path / "old" / f"{name}.parquet").read_bytes()
    assert raw_ids(new.items) == [str(i) for i in np.unique(reference["item_id"])]
    assert raw_ids(new.sessions) == [str(s) for s in np.unique(reference["session_id"])]
    assert new.stats == old.stats
    # ... and so a short run on it gives the same numbers
    assert short_run(tmp_path / "new", tmp_path / "run_new") == short_run(tmp_path / "old", tmp_path / "run_old")

    # every visitor and item id + 2**64 (beyond uint64; as floats many would merge)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw["visitorid"], raw["itemid"] = shifted(raw["visitorid"]), shifted(raw["itemid"])
    raw.to_csv(tmp_path / "shifted.csv", index=False)
    big = prepare(rr_config(tmp_path / "shifted.csv"), out=tmp_path / "big", progress=False)
    pd.testing.assert_frame_equal(big.events, new.events, check_exact=True)
    assert raw_ids(big.sessions) == shifted(raw_ids(new.sessions))
    assert raw_ids(big.items) == shifted(raw_ids(new.items))
    assert big.sessions["split"].tolist() == new.sessions["split"].tolist()
    assert {k: v for k, v in big.stats.items() if k != "dataset"} == {k: v for k, v in new.stats.items() if k != "dataset"}


def test_simulator_unchanged_and_shifted_beyond_2_64_alike(tmp_path):
    """The simulator's int64 ids prepare as plain int64 gives; the same log with ids + 2**64 encodes alike."""
    config = DataConfig(source="simulator", scale="tiny", seed=0)
    log = simulate("tiny", seed=0, progress=False)
    assert log.events["session_id"].dtype == np.int64 and log.events["item_id"].dtype == np.int64
    pd.testing.assert_frame_equal(validate_events(log.events), log.events, check_exact=True)
    data = prepare(config, out=tmp_path / "sim", progress=False)
    catalogue = np.unique(np.asarray(log.catalogue, dtype=np.int64))
    sessions = np.unique(log.events["session_id"].to_numpy())
    assert raw_ids(data.items) == [str(i) for i in catalogue]
    assert raw_ids(data.sessions) == [str(s) for s in sessions]
    np.testing.assert_array_equal(data.events["item"], np.searchsorted(catalogue, log.events["item_id"].to_numpy()))
    np.testing.assert_array_equal(data.events["session"], np.searchsorted(sessions, log.events["session_id"].to_numpy()))

    # the same log, every id + 2**64 as Python ints (an object column): the same encoded frames
    ev = log.events.copy()
    for col in ("session_id", "item_id"):
        ev[col] = pd.Series([int(v) + SHIFT for v in ev[col]], dtype=object)
    big_catalogue = np.array([int(v) + SHIFT for v in log.catalogue], dtype=object)
    write_prepared(EventLog(validate_events(ev), name=log.name, catalogue=big_catalogue, info=log.info), config, tmp_path / "big")
    big = load_prepared(tmp_path / "big")
    pd.testing.assert_frame_equal(big.events, data.events, check_exact=True)
    assert raw_ids(big.items) == shifted(raw_ids(data.items)) and raw_ids(big.sessions) == shifted(raw_ids(data.sessions))
    assert big.sessions["split"].tolist() == data.sessions["split"].tolist()
