"""The time-based protocol (PROTOCOL.md, the reassessments'): sessions cut by end time, validation and test
skip each session's first event and targets unseen in training, the catalogue unchanged; hand-made logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import cli

from mcrl_kit.config import DataConfig
from mcrl_kit.data import prepare
from mcrl_kit.data.prepare import cache_key
from mcrl_kit.data.split import split_by_time
from mcrl_kit.errors import ConfigError


def test_split_by_time_cuts_at_quantiles_of_session_end():
    ids = np.arange(10)
    end = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 10])  # session i ends at end[i]
    parts = split_by_time(ids, end, (0.6, 0.2, 0.2))
    # the 0.6 and 0.8 quantiles (lower) of 1..10 are 6 and 8: train ends ≤ 6, val 7–8, test 9–10
    assert parts["train"].tolist() == [0, 1, 3, 5, 7, 8]
    assert parts["val"].tolist() == [4, 6]
    assert parts["test"].tolist() == [2, 9]


def log_frame() -> pd.DataFrame:
    """20 sessions of 3 events; session k ends at time 100 k. Items 0–9 in the first 16 sessions; the last four
    sessions also use items 50+ (never in training)."""
    rows = []
    for k in range(20):
        items = [k % 10, (k + 1) % 10, 50 + k if k >= 16 else (k + 2) % 10]
        rows += [(f"s{k:02d}", 100 * k + j, items[j], int(j == 2)) for j in range(3)]
    return pd.DataFrame(rows, columns=["session_id", "timestamp", "item_id", "is_buy"])


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    root = tmp_path_factory.mktemp("timed")
    path = root / "log.csv"
    log_frame().to_csv(path, index=False)
    sqn = prepare(DataConfig(source="events", paths=(str(path),)), out=root / "sqn", progress=False)
    time = prepare(DataConfig(source="events", paths=(str(path),), protocol="time"), out=root / "time", progress=False)
    return sqn, time


def test_sessions_are_cut_by_end_time_and_the_catalogue_is_unchanged(timed):
    sqn, time = timed
    assert time.n_items == sqn.n_items
    ends = time.events.groupby("session")["timestamp"].max()
    split = time.sessions.set_index("session")["split"]
    assert ends[split == "train"].max() < ends[split == "val"].min() <= ends[split == "val"].max() < ends[split == "test"].min()
    assert (split == "train").sum() == 16 and (split == "val").sum() == 2 and (split == "test").sum() == 2


def test_evaluation_skips_first_events_and_targets_unseen_in_training(timed):
    _, time = timed
    train_items = set(time.split_events("train")["item"])
    for split in ("val", "test"):
        buf = time.replay(split)
        # two sessions of three events: the first events go; their third events target new items (50+)
        assert len(buf) == 2 and (buf.step > 0).all()
        assert set(buf.action.tolist()) <= train_items
    assert len(time.replay("train")) == 16 * 3  # training keeps every transition


def test_the_protocol_is_checked_a_prepare_flag_and_keeps_old_keys(tmp_path):
    with pytest.raises(ConfigError, match="protocol"):
        DataConfig(protocol="random")
    sim = DataConfig(source="simulator", scale="small")
    assert cache_key(sim) != cache_key(DataConfig(source="simulator", scale="small", protocol="time"))
    assert cache_key(sim) == cache_key(DataConfig.from_dict({**sim.to_dict(), "protocol": "sqn"}))
    rc, _, err = cli(["prepare", "--scale", "tiny", "--sessions", 300, "--protocol", "time", "--out", tmp_path / "t",
                      "--no-progress"])
    assert rc == 0, err
    assert '"protocol": "time"' in (tmp_path / "t" / "config.json").read_text()


def test_the_time_protocol_has_one_split(tmp_path):
    """No split seed under the time protocol (nothing is drawn): refused in the config, one dataset for a study
    (with a warning when several seeds were asked for), and `study --protocol time` runs its one split."""
    import json
    import warnings

    from mcrl_kit import experiments
    from mcrl_kit.errors import KitWarning

    with pytest.raises(ConfigError, match=r"split_seed.*time protocol"):
        DataConfig(protocol="time", split_seed=1)
    rc, _, err = cli(["prepare", "--scale", "tiny", "--sessions", 200, "--protocol", "time", "--split-seed", 1,
                      "--out", tmp_path / "d"])
    assert rc == 2 and "time protocol" in err and not (tmp_path / "d").exists()
    with pytest.warns(KitWarning, match="one split"):
        (one,) = experiments.split_datasets("simulator", [0, 1, 2], protocol="time", scale="tiny", sessions=200)
    assert one.config.protocol == "time" and one.config.split_seed is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", KitWarning)  # one seed asked: nothing to warn about
        assert len(experiments.split_datasets("simulator", [0], protocol="time", scale="tiny", sessions=200)) == 1
    assert [d.config.split_seed for d in experiments.split_datasets("simulator", [0, 1], scale="tiny", sessions=200)] == [0, 1]
    rc, out, err = cli(["study", "--scale", "tiny", "--protocol", "time", "--algo", "popularity", "recency", "--trials", 1,
                        "--steps", 5, "--online-sessions", 0, "--out", tmp_path / "s"])
    assert rc == 0, err
    study = json.loads((tmp_path / "s" / "study.json").read_text())
    assert study["protocol"] == "time" and study["split_seeds"] == [0] and "1 split × 1 init seeds" in out
