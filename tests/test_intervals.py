"""The paired bootstrap of ``compare --ci``: per-event ranks saved with every run, the interval worked out by
hand on tiny examples, paired within a split and stratified over splits, and the command end to end."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import cli

from mcrl_kit.errors import ConfigError, KitWarning
from mcrl_kit.evaluate import metrics_from_ranks
from mcrl_kit.intervals import event_gain, load_ranks, paired_bootstrap
from mcrl_kit.train import save_ranks

pytestmark = pytest.mark.usefixtures("one_thread")


def ranks_run(folder, ranks, is_buy, session, split_key="split-0"):
    folder.mkdir(parents=True)
    buffer = SimpleNamespace(is_buy=torch.tensor(is_buy), session=torch.tensor(session))
    save_ranks(folder / "ranks_test.npz", torch.tensor(ranks), buffer)
    return ({"data_fingerprint": split_key, "data": "d"}, str(folder))


def test_gains_are_hr_and_ndcg_of_the_rank():
    rank = np.array([0, 1, 9, 10, 20])
    assert event_gain(rank, "click HR@10").tolist() == [1, 1, 1, 0, 0]
    assert np.allclose(event_gain(rank, "purchase NDCG@10"), [1, 1 / np.log2(3), 1 / np.log2(11), 0, 0])
    with pytest.raises(ConfigError, match="is not one of the kit"):
        event_gain(rank, "click MRR@10")


def test_a_constant_difference_has_a_zero_width_interval(tmp_path):
    # every click: the method ranks at 0 (HR@5 = 1), the reference at 20 (a miss): Δ = 1 in every draw
    sessions = [0, 0, 1, 2, 2, 2]
    clicks = [False] * 6
    groups = {"ref": [ranks_run(tmp_path / "r", [20] * 6, clicks, sessions)],
              "m": [ranks_run(tmp_path / "m", [0] * 6, clicks, sessions)]}
    row = paired_bootstrap(groups, "ref", columns=["click HR@5"], n_boot=200).iloc[0]
    assert (row["click HR@5 Δ"], row["click HR@5 low"], row["click HR@5 high"]) == (1.0, 1.0, 1.0)


def test_sessions_are_the_resampled_units_worked_out_by_hand(tmp_path):
    # session A: two clicks the method hits and the reference misses (Δ 1, 1); session B: one click both hit (Δ 0).
    # observed: 2/3. A draw of two sessions is AA (Δ 1), AB or BA (2/3) or BB (0), with odds 1/4, 1/2, 1/4:
    # the 2.5 % percentile is 0, the 97.5 % one 1
    groups = {"ref": [ranks_run(tmp_path / "r", [20, 20, 0], [False] * 3, [7, 7, 9])],
              "m": [ranks_run(tmp_path / "m", [0, 0, 0], [False] * 3, [7, 7, 9])]}
    row = paired_bootstrap(groups, "ref", columns=["click HR@10"], n_boot=4000).iloc[0]
    assert row["click HR@10 Δ"] == pytest.approx(2 / 3)
    assert row["click HR@10 low"] == 0.0 and row["click HR@10 high"] == 1.0
    # purchases and clicks apart: with no purchase the purchase difference is undefined, not 0
    row = paired_bootstrap(groups, "ref", columns=["purchase HR@10"], n_boot=100).iloc[0]
    assert np.isnan(row["purchase HR@10 Δ"])


def test_init_seeds_are_averaged_and_split_seeds_stratified(tmp_path):
    clicks, sessions = [False] * 4, [0, 1, 2, 3]
    groups = {
        "ref": [ranks_run(tmp_path / "r0", [20] * 4, clicks, sessions, "a"), ranks_run(tmp_path / "r1", [20] * 4, clicks, sessions, "b")],
        # split a: two init seeds, hitting 4 and 2 of 4 → mean gain 0.75; split b: one seed hitting 1 of 4 → 0.25
        "m": [ranks_run(tmp_path / "m0", [0, 0, 0, 0], clicks, sessions, "a"), ranks_run(tmp_path / "m1", [0, 0, 20, 20], clicks, sessions, "a"),
              ranks_run(tmp_path / "m2", [0, 20, 20, 20], clicks, sessions, "b")],
    }
    row = paired_bootstrap(groups, "ref", columns=["click HR@5"], n_boot=500).iloc[0]
    assert row["splits"] == 2 and row["click HR@5 Δ"] == pytest.approx((0.75 + 0.25) / 2)
    assert row["click HR@5 low"] <= 0.5 <= row["click HR@5 high"]


def test_refusals(tmp_path):
    groups = {"ref": [ranks_run(tmp_path / "r", [1], [False], [0], "a")], "m": [ranks_run(tmp_path / "m", [1], [False], [0], "b")]}
    with pytest.raises(ConfigError, match="is not a row of the table"):
        paired_bootstrap(groups, "nope")
    with pytest.raises(ConfigError, match="shares no data split"):
        paired_bootstrap(groups, "ref")
    with pytest.raises(ConfigError, match=r"has no ranks_test\.npz.*evaluate --run"):
        load_ranks(tmp_path)


def test_runs_save_ranks_that_give_their_metrics_and_compare_ci_end_to_end(tiny_data, tmp_path):
    runs = []
    for algo in ("popularity", "recency", "supervised"):
        out = tmp_path / algo
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KitWarning)
            rc, _, err = cli(["train", "--data", tiny_data.root, "--algo", algo, "--backbone", "gru", "--hidden", 16,
                              "--steps", 6, "--eval-every", 3, "--batch-size", 32, "--threads", 1, "--no-progress", "--out", out])
        assert rc == 0, err
        runs.append(out)
    r = load_ranks(tmp_path / "recency")
    test = tiny_data.replay("test")
    assert np.array_equal(r["session"], test.session.numpy()) and np.array_equal(r["is_buy"], test.is_buy.numpy())
    got = metrics_from_ranks(torch.from_numpy(r["rank"].astype(np.int64)), torch.from_numpy(r["is_buy"]))
    import json

    metrics = json.loads((tmp_path / "recency" / "metrics.json").read_text())["test"]
    for kind in ("click", "purchase"):
        for name, value in metrics[kind].items():
            assert got[kind][name] == pytest.approx(value, abs=1e-12)

    rc, out, err = cli(["compare", *runs, "--ci", "popularity", "--bootstrap", 300])
    assert rc == 0, err
    assert "Difference from popularity" in out and "recency" in out and "gru-supervised" in out
    rc, _, err = cli(["compare", *runs, "--ci", "populrity"])
    assert rc == 2 and "is not a row of the table" in err


def test_format_intervals_marks_an_interval_excluding_0_and_names_its_count_column():
    import pandas as pd

    from mcrl_kit.intervals import format_intervals

    table = pd.DataFrame({"label": ["a", "b"], "splits": [1, 1], "seeds": [3, 1], "click HR@10 Δ": [0.02, -0.01],
                          "click HR@10 low": [0.01, -0.03], "click HR@10 high": [0.03, 0.01]})
    text = format_intervals(table, ["click HR@10"], "ref", 3, count="seeds")
    assert "| model | seeds | click HR@10 Δ vs ref |" in text
    assert "| a | 3 | +0.020 [+0.010, +0.030]* |" in text and "| b | 1 | -0.010 [-0.030, +0.010] |" in text
    assert "| model | splits |" in format_intervals(table, ["click HR@10"])
