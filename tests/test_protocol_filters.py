"""The protocol's filters are DataConfig fields every file source reads, each with its own default: RetailRocket
3 / 3, Yoochoose 3 / 0, events 0 / 0 (taken as given). Hand-made logs, counts worked out here; folders cached
before keep their keys where the data is the same, and no earlier folder is taken for a filtered request."""

from __future__ import annotations

import contextlib
import io

import pandas as pd
import pytest
from helpers import cli

from mcrl_kit.cli import build_parser
from mcrl_kit.config import DataConfig
from mcrl_kit.data import prepare
from mcrl_kit.data.prepare import cache_key


def event_log(tmp_path):
    """Session s1: 4 events, s2: 2 events, s3: 3 events. Items: a ×4 (s1 ×2, s2, s3), b ×3 (s1, s3, s2), c ×2 (s1, s3)."""
    rows = [("s1", 1, "a", 0), ("s1", 2, "a", 0), ("s1", 3, "b", 0), ("s1", 4, "c", 1),
            ("s2", 1, "a", 0), ("s2", 2, "b", 0),
            ("s3", 1, "a", 0), ("s3", 2, "b", 0), ("s3", 3, "c", 1)]
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["session_id", "timestamp", "item_id", "is_buy"]).to_csv(path, index=False)
    return path


def prepared(tmp_path, name, **filters):
    config = DataConfig(source="events", paths=(str(event_log(tmp_path)),), split=(0.34, 0.33, 0.33), **filters)
    return prepare(config, out=tmp_path / name, progress=False, force=True)


def test_events_are_taken_as_given_by_default(tmp_path):
    data = prepared(tmp_path, "plain")
    assert len(data.events) == 9 and data.n_items == 3 and data.stats["sessions"] == 3


def test_events_filters_sessions_then_items_in_one_pass(tmp_path):
    from mcrl_kit.data.sources import SOURCES, source_options

    config = DataConfig(source="events", paths=(str(event_log(tmp_path)),), min_session_events=3, min_item_events=3)
    log = SOURCES["events"].reader(config, source_options(config), progress=False)
    # sessions ≥ 3: s2 goes (2 events). Then on s1 + s3: a ×3, b ×2, c ×2 → items ≥ 3 keeps only a —
    # counted once on what the session filter left: s1 keeps 2 events, s3 one (now a 1-event session, kept)
    assert log.events["item_id"].tolist() == ["a", "a", "a"]
    assert log.events["session_id"].tolist() == ["s1", "s1", "s3"]
    assert {k: log.info[k] for k in ("sessions_dropped_short", "events_dropped_short", "items_dropped_rare",
                                      "events_dropped_rare")} == {"sessions_dropped_short": 1, "events_dropped_short": 2,
                                                                  "items_dropped_rare": 2, "events_dropped_rare": 4}


def test_a_filter_that_leaves_nothing_says_so(tmp_path):
    rc, _, err = cli(["prepare", "--source", "events", "--path", event_log(tmp_path), "--min-session-events", 9,
                      "--out", tmp_path / "none", "--no-progress"])
    assert rc == 2 and "no events are left after the filters" in err and "--min-session-events" in err
    assert not (tmp_path / "none").exists()


def test_the_prepare_help_states_each_sources_default():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        build_parser().parse_args(["prepare", "--help"])
    text = " ".join(buf.getvalue().split())
    assert "(default: retailrocket 3, yoochoose 3, events 0)" in text
    assert "(default: retailrocket 3, yoochoose 0, events 0)" in text


def test_cache_keys_of_folders_prepared_before_and_no_stale_reuse(tmp_path):
    log = str(event_log(tmp_path))
    # the simulator reads no filter: its key is the one it had when the filters defaulted to 3 everywhere
    sim = DataConfig(source="simulator", scale="small")
    assert cache_key(sim) == cache_key(DataConfig.from_dict({**sim.to_dict(), "min_session_events": None}))
    # RetailRocket's default and an explicit 3 are the same data, so the same folder
    rr = DataConfig(source="retailrocket", paths=(log,))
    assert cache_key(rr) == cache_key(DataConfig(source="retailrocket", paths=(log,), min_session_events=3, min_item_events=3))
    # events: unfiltered and filtered are different folders
    ev = DataConfig(source="events", paths=(log,))
    assert cache_key(ev) != cache_key(DataConfig(source="events", paths=(log,), min_session_events=3, min_item_events=3))
    assert cache_key(ev) == cache_key(DataConfig(source="events", paths=(log,), min_session_events=0, min_item_events=0))
