"""Real-data sources against independent pandas computations of PROTOCOL.md.

The expectations below are written with plain pandas from the protocol's rules, not with
kit code (the one exception: the Yoochoose sample is drawn by the generator the kit
documents, ``rng.choice(sorted eligible ids, n, replace=False)``, because a seeded
sample can only be checked by drawing it the same way).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mcrl_kit.cli import main
from mcrl_kit.config import DataConfig
from mcrl_kit.data import prepare
from mcrl_kit.data.sources import read_events, read_retailrocket, read_yoochoose
from mcrl_kit.paths import shared_file
from mcrl_kit.seeding import numpy_rng

RR_SAMPLE = ("retailrocket_sample_5k_visitors", "sample_events.csv.gz")
YC_SAMPLE = ("yoochoose_clicks_100k_session_rec", "yoochoose-clicks-100k_train_full.txt.gz")
COLS = ["session_id", "timestamp", "item_id", "is_buy"]


def shared_or_skip(*parts: str):
    path = shared_file(*parts)
    if path is None:
        pytest.skip(f"needs shared/data/{'/'.join(parts)} (the real-data samples), absent here")
    return path


# --- RetailRocket ------------------------------------------------------------------------
def retailrocket_by_hand(raw: pd.DataFrame, min_session: int = 3, min_item: int = 3) -> pd.DataFrame:
    """PROTOCOL.md → RetailRocket, in plain pandas, as the expected event log."""
    ev = raw[raw["transactionid"].isna()]
    ev = ev[ev.groupby("visitorid")["itemid"].transform("size") >= min_session]
    ev = ev[ev.groupby("itemid")["visitorid"].transform("size") >= min_item]
    out = pd.DataFrame(
        {
            "session_id": ev["visitorid"].astype("int64"),
            "timestamp": ev["timestamp"].astype("int64"),
            "item_id": ev["itemid"].astype("int64"),
            "is_buy": (ev["event"] == "addtocart").astype("int8"),
        }
    )
    return out.sort_values(["session_id", "timestamp"], kind="stable").reset_index(drop=True)


@pytest.mark.shared
def test_retailrocket_sample_matches_protocol_and_source_md():
    path = shared_or_skip(*RR_SAMPLE)
    log = read_retailrocket(path, DataConfig(source="retailrocket", paths=(str(path),)), progress=False)
    raw = pd.read_csv(path)
    want = retailrocket_by_hand(raw)
    ev = log.events

    # the same rows, in the same (session, time) order — duplicates included
    pd.testing.assert_frame_equal(ev[COLS], want[COLS])
    # the numbers SOURCE.md quotes
    assert (len(ev), ev["session_id"].nunique(), ev["item_id"].nunique()) == (1_758, 389, 415)
    assert ((ev["is_buy"] == 0).sum(), ev["is_buy"].sum()) == (1_616, 142)
    # per-item counts, and per-item purchases
    pd.testing.assert_series_equal(
        ev.groupby("item_id").size(), want.groupby("item_id").size(), check_names=False
    )
    pd.testing.assert_series_equal(
        ev.groupby("item_id")["is_buy"].sum(), want.groupby("item_id")["is_buy"].sum(), check_names=False
    )
    assert log.info["rows_read"] == len(raw) == 9_385
    assert log.info["transaction_rows_dropped"] == raw["transactionid"].notna().sum() == 46
    assert log.name == "RetailRocket sample_events.csv.gz"


def test_retailrocket_filters_in_order_once(tmp_path):
    """Transactions dropped first; visitors then items, one pass; duplicates kept."""
    rows = [  # timestamp, visitorid, event, itemid, transactionid, datetime (ignored)
        (5, 1, "view", 11, "", "x"), (1, 1, "view", 11, "", "x"), (9, 1, "view", 12, "", "x"),
        (7, 1, "transaction", 12, 900, "x"),  # A: the transaction row does not count
        (1, 2, "addtocart", 11, "", "x"), (2, 2, "view", 12, "", "x"), (2, 2, "view", 12, "", "x"),  # B: a duplicate
        (1, 3, "view", 13, "", "x"), (2, 3, "view", 13, "", "x"), (3, 3, "transaction", 13, 901, "x"),  # C: 2 events
        (1, 4, "view", 12, "", "x"), (2, 4, "view", 14, "", "x"), (3, 4, "view", 14, "", "x"),  # D: item 14 is rare
        (1, 5, "view", 14, "", "x"),  # E: short; counting items first would save item 14
    ]
    raw = pd.DataFrame(rows, columns=["timestamp", "visitorid", "event", "itemid", "transactionid", "datetime"])
    path = tmp_path / "events.csv"
    raw.sample(frac=1, random_state=0).to_csv(path, index=False)  # unsorted, plain CSV, an extra column
    log = read_retailrocket(path, DataConfig(source="retailrocket", paths=(str(path),)), progress=False)
    got = log.events[COLS]
    # D keeps its single surviving event: no re-filtering of visitors after the item filter
    expected = pd.DataFrame(
        [(1, 1, 11, 0), (1, 5, 11, 0), (1, 9, 12, 0), (2, 1, 11, 1), (2, 2, 12, 0), (2, 2, 12, 0), (4, 1, 12, 0)],
        columns=COLS,
    ).astype({"session_id": "int64", "timestamp": "int64", "item_id": "int64", "is_buy": "int8"})
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(got, retailrocket_by_hand(pd.read_csv(path))[COLS])
    assert log.info["transaction_rows_dropped"] == 2
    assert log.info["sessions_dropped_short"] == 2  # C and E
    assert log.info["items_dropped_rare"] == 1  # 14
    assert log.info["duplicate_rows_kept"] == 1

    # the thresholds come from the config
    loose = read_retailrocket(path, DataConfig(source="retailrocket", paths=(str(path),), min_session_events=1,
                                               min_item_events=1), progress=False)
    assert len(loose.events) == len(raw) - 2


# --- Yoochoose ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def yoochoose_clicks(tmp_path_factory):
    """The real session-rec click sample rewritten in the raw yoochoose-clicks.dat format.

    Returns (path of the .dat, the clicks as a frame with Unix-ms timestamps).
    """
    src = shared_or_skip(*YC_SAMPLE)
    raw = pd.read_csv(src, sep="\t")
    ms = (raw["Time"] * 1000).round().astype("int64")
    iso = pd.to_datetime(ms, unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    category = np.where(raw["ItemId"] % 7 == 0, "S", "0")  # the real file mixes "0", "S" and numbers
    path = tmp_path_factory.mktemp("yoochoose") / "yoochoose-clicks.dat"
    pd.DataFrame({"s": raw["SessionId"], "t": iso, "i": raw["ItemId"], "c": category}).to_csv(path, header=False, index=False)
    clicks = pd.DataFrame({"session_id": raw["SessionId"], "timestamp": ms, "item_id": raw["ItemId"]})
    return path, clicks


def sample_by_hand(clicks: pd.DataFrame, n: int, rng: np.random.Generator) -> np.ndarray:
    counts = clicks.groupby("session_id").size()
    eligible = np.sort(counts.index[counts >= 3].to_numpy())
    return eligible if n >= len(eligible) else np.sort(rng.choice(eligible, size=n, replace=False))


def write_buys(path, clicks: pd.DataFrame, sampled: np.ndarray) -> pd.DataFrame:
    """A real-format buys file; returns the buys the protocol keeps (is_buy = 1)."""
    kept = []
    for s in sampled[:3]:  # three good buys: an item the session clicked, after its last click
        own = clicks[clicks["session_id"] == s]
        kept.append((s, int(own["timestamp"].max()) + 1_000, int(own["item_id"].iloc[0])))
    unsampled = np.setdiff1d(clicks["session_id"].unique(), sampled)[0]
    odd = [
        (int(sampled[3]), int(clicks["timestamp"].max()), 1),  # item 1 was never clicked: dropped
        (int(unsampled), int(clicks["timestamp"].max()), int(clicks["item_id"].iloc[0])),  # not sampled: dropped
    ]
    rows = [
        (s, pd.Timestamp(t, unit="ms").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", i, 0, 1)
        for s, t, i in kept + odd
    ]
    pd.DataFrame(rows).to_csv(path, header=False, index=False)
    return pd.DataFrame(kept, columns=["session_id", "timestamp", "item_id"]).assign(is_buy=1)


def expected_log(clicks: pd.DataFrame, sampled: np.ndarray, buys: pd.DataFrame | None) -> pd.DataFrame:
    sampled_clicks = clicks[clicks["session_id"].isin(sampled)].assign(is_buy=0)
    ev = pd.concat([sampled_clicks, buys] if buys is not None else [sampled_clicks], ignore_index=True)
    ev = ev.astype({"session_id": "int64", "timestamp": "int64", "item_id": "int64", "is_buy": "int8"})
    return ev.sort_values(["session_id", "timestamp"], kind="stable").reset_index(drop=True)[COLS]


@pytest.mark.shared
def test_yoochoose_real_clicks_with_buys(yoochoose_clicks, tmp_path):
    clicks_path, clicks = yoochoose_clicks
    sampled = sample_by_hand(clicks, 500, np.random.default_rng(7))
    buys = write_buys(tmp_path / "yoochoose-buys.dat", clicks, sampled)
    config = DataConfig(source="yoochoose", paths=("unused",), sample_sessions=500)
    log = read_yoochoose((clicks_path, tmp_path / "yoochoose-buys.dat"), config, np.random.default_rng(7), progress=False)

    pd.testing.assert_frame_equal(log.events[COLS], expected_log(clicks, sampled, buys))
    np.testing.assert_array_equal(log.catalogue, np.unique(clicks.loc[clicks["session_id"].isin(sampled), "item_id"]))
    counts = clicks.groupby("session_id").size()
    assert log.info["sessions_eligible"] == (counts >= 3).sum()
    assert log.info["click_rows_read"] == len(clicks)
    assert (log.info["buys_kept"], log.info["buys_dropped_unknown_item"], log.info["buys_outside_sample"]) == (3, 1, 1)


@pytest.mark.shared
def test_yoochoose_prepare_is_seeded(yoochoose_clicks, tmp_path):
    clicks_path, clicks = yoochoose_clicks
    seed, n = 3, 800
    # the kit draws the sample from its documented stream: the same seed, the same sessions
    sampled = sample_by_hand(clicks, n, numpy_rng(seed, "yoochoose-sample"))
    buys_path = tmp_path / "yoochoose-buys.dat.gz"
    buys = write_buys(tmp_path / "buys.dat", clicks, sampled)
    buys_path.write_bytes(gzip.compress((tmp_path / "buys.dat").read_bytes()))
    config = DataConfig(source="yoochoose", paths=(str(clicks_path), str(buys_path)), sample_sessions=n, seed=seed)

    data = prepare(config, out=tmp_path / "a", progress=False)
    want = expected_log(clicks, sampled, buys)
    assert data.stats["sessions"] == n
    assert data.stats["items"] == want.loc[want["is_buy"] == 0, "item_id"].nunique()
    assert data.stats["clicks"] == (want["is_buy"] == 0).sum()
    assert data.stats["purchases"] == 3
    np.testing.assert_array_equal(np.sort(data.sessions["raw_id"].astype("int64")), sampled)
    np.testing.assert_array_equal(data.events["timestamp"], want["timestamp"])

    again = prepare(config, out=tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(again.events, data.events)
    other = prepare(config.replace(seed=seed + 1), out=tmp_path / "c", progress=False)
    assert set(other.sessions["raw_id"]) != set(data.sessions["raw_id"])


@pytest.mark.shared
def test_yoochoose_clicks_only_takes_all_when_asked_for_more(yoochoose_clicks, tmp_path):
    clicks_path, clicks = yoochoose_clicks
    gz = tmp_path / "yoochoose-clicks.dat.gz"
    gz.write_bytes(gzip.compress(clicks_path.read_bytes()))
    config = DataConfig(source="yoochoose", paths=(str(gz),), sample_sessions=10**7)
    log = read_yoochoose(gz, config, np.random.default_rng(0), progress=False)
    everything = sample_by_hand(clicks, 10**7, np.random.default_rng(0))
    pd.testing.assert_frame_equal(log.events[COLS], expected_log(clicks, everything, None))
    assert "took all" in log.info["sample_note"]
    assert "clicks-only" in log.info["buys_note"]
    assert log.events["is_buy"].sum() == 0


# --- any event log -----------------------------------------------------------------------
def small_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": ["u2", "u1", "u1", "u2", "u1"],
            "ts": [5, 3, 1, 2, 2],
            "sku": [10, 30, 20, 10, 10],
            "bought": [1, 0, 0, 0, 1],
            "note": ["x"] * 5,  # ignored
        }
    )


EXPECTED_SMALL = pd.DataFrame(
    {"session_id": ["u1", "u1", "u1", "u2", "u2"], "timestamp": [1, 2, 3, 2, 5], "item_id": [20, 10, 30, 10, 10],
     "is_buy": [0, 1, 0, 0, 1]}
).astype({"timestamp": "int64", "item_id": "int64", "is_buy": "int8"})
MAPPING = {"session_id": "user", "timestamp": "ts", "item_id": "sku", "is_buy": "bought"}


def assert_small(log):
    got = log.events[COLS]
    assert got["session_id"].tolist() == EXPECTED_SMALL["session_id"].tolist()
    pd.testing.assert_frame_equal(got.drop(columns="session_id"), EXPECTED_SMALL.drop(columns="session_id"))


def test_events_from_frame_csv_gz_and_parquet(tmp_path):
    frame = small_log()
    assert_small(read_events(frame, columns=MAPPING))
    frame.to_csv(tmp_path / "log.csv", index=False)
    assert_small(read_events(tmp_path / "log.csv", columns=MAPPING, progress=False))
    (tmp_path / "log.csv.gz").write_bytes(gzip.compress((tmp_path / "log.csv").read_bytes()))
    assert_small(read_events(tmp_path / "log.csv.gz", columns=MAPPING, progress=False))
    frame.to_parquet(tmp_path / "log.parquet")
    log = read_events(tmp_path / "log.parquet", columns=MAPPING)
    assert_small(log)
    assert log.name == "events log.parquet"


def test_events_schema_names_string_ids_and_dates(tmp_path):
    frame = pd.DataFrame(
        {
            "session_id": ["007", "007", "7"],  # names, not numbers: "007" and "7" differ
            "timestamp": pd.to_datetime(["2024-01-01T00:00:02Z", "2024-01-01T00:00:01Z", "2024-01-01T00:00:00Z"]),
            "item_id": ["a", "b", "a"],
            "is_buy": [True, False, False],
        }
    )
    from_frame = read_events(frame).events  # tz-aware datetimes, bool flags
    frame.to_csv(tmp_path / "log.csv", index=False)
    from_csv = read_events(tmp_path / "log.csv", progress=False).events
    for ev in (from_frame, from_csv):
        assert ev["session_id"].tolist() == ["007", "007", "7"]
        assert ev["item_id"].tolist() == ["b", "a", "a"]
        assert ev["is_buy"].tolist() == [0, 1, 0]
    np.testing.assert_array_equal(from_frame["timestamp"], from_csv["timestamp"])
    # plain integer ids stay integers
    pd.DataFrame({"session_id": [3, 1], "timestamp": [1, 2], "item_id": [5, 6], "is_buy": [0, 0]}).to_csv(
        tmp_path / "ints.csv", index=False
    )
    ints = read_events(tmp_path / "ints.csv", progress=False).events
    assert ints["session_id"].dtype == np.int64 and ints["session_id"].tolist() == [1, 3]


def test_events_cli_with_column_mapping(tmp_path, capsys):
    # three copies of the two sessions under other names: prepare needs six sessions to fill an 80/10/10 split
    log = pd.concat([small_log().assign(user=lambda f, i=i: f["user"] + f"-{i}") for i in range(3)], ignore_index=True)
    log.to_csv(tmp_path / "log.csv", index=False)
    args = ["prepare", "--source", "events", "--path", str(tmp_path / "log.csv"), "--out", str(tmp_path / "out"),
            "--no-progress"] + [f"--column={k}={v}" for k, v in MAPPING.items()]
    assert main(args) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert (stats["sessions"], stats["items"], stats["clicks"], stats["purchases"]) == (6, 3, 9, 6)


# --- the command line --------------------------------------------------------------------
@pytest.mark.shared
def test_cli_prepare_retailrocket(tmp_path, capsys):
    path = shared_or_skip(*RR_SAMPLE)
    out = tmp_path / "rr"
    assert main(["prepare", "--source", "retailrocket", "--path", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    stats = json.loads((out / "stats.json").read_text())
    for key, value in {"sessions": 389, "items": 415, "clicks": 1_616, "purchases": 142}.items():
        assert type(stats[key]) is int and stats[key] == value
    assert "1,616" in printed and "RetailRocket sample_events.csv.gz" in printed
    assert stats["source_info"]["transaction_rows_dropped"] == 46


@pytest.mark.shared
def test_cli_subprocess(tmp_path):
    path = shared_or_skip(*RR_SAMPLE)
    out = tmp_path / "rr"
    done = subprocess.run(
        [sys.executable, "-m", "mcrl_kit", "prepare", "--source", "retailrocket", "--path", str(path), "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "purchases" in done.stdout and "389" in done.stdout
    assert json.loads((out / "stats.json").read_text())["items"] == 415


@pytest.mark.shared
def test_yoochoose_item_filter_drops_rare_items_of_the_sampled_clicks_and_their_buys(yoochoose_clicks, tmp_path):
    clicks_path, clicks = yoochoose_clicks
    sampled = sample_by_hand(clicks, 500, np.random.default_rng(7))
    buys = write_buys(tmp_path / "yoochoose-buys.dat", clicks, sampled)
    config = DataConfig(source="yoochoose", paths=("unused",), sample_sessions=500, min_item_events=3)
    log = read_yoochoose((clicks_path, tmp_path / "yoochoose-buys.dat"), config, np.random.default_rng(7), progress=False)
    # by hand: among the sampled clicks, items clicked < 3 times go, with their clicks; buys of them follow
    own = clicks[clicks["session_id"].isin(sampled)]
    n = own.groupby("item_id")["item_id"].transform("size")
    kept = own[n >= 3]
    expected_buys = buys[buys["item_id"].isin(kept["item_id"])]
    pd.testing.assert_frame_equal(log.events[COLS], expected_log(kept, sampled, expected_buys))
    assert log.info["items_dropped_rare"] == own.loc[n < 3, "item_id"].nunique()
    assert log.info["clicks_dropped_rare"] == int((n < 3).sum())
