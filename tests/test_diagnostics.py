"""Overestimation diagnostics (``mcrl_kit.diagnostics``) against hand computations.

- ``mc_returns`` on a hand-made two-session buffer (γ = 0.5, rewards 0.2 / 1.0);
- ``python -m mcrl_kit diagnose`` on tiny SQN (Q of the logged action) and MCRL (V of
  the state) runs: one row per held-out event, ``bias = value − mc_return`` exactly, the
  summary's numbers equal to pandas over the written table, and on the simulator a
  finite true-expected-return column.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mcrl_kit.cli import main
from mcrl_kit.data.replay import ReplayBuffer
from mcrl_kit.diagnostics import mc_returns

COLUMNS = ["session", "step", "item", "is_buy", "reward", "done", "value", "max_q", "mc_return", "bias"]


def cli(args: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_mc_returns_by_hand():
    # session A: click, purchase, click; session B: click, click
    buf = ReplayBuffer.from_events(
        np.array([7, 7, 7, 9, 9]), np.array([1, 2, 3, 1, 4]), np.array([0, 1, 0, 0, 0]), n_items=5, state_len=3
    )
    g = mc_returns(buf, gamma=0.5, reward_click=0.2, reward_buy=1.0)
    a2 = 0.2
    a1 = 1.0 + 0.5 * a2
    a0 = 0.2 + 0.5 * a1
    b1 = 0.2
    b0 = 0.2 + 0.5 * b1  # not + γ·a0: a session's return stops at its last event
    np.testing.assert_allclose(g, [a0, a1, a2, b0, b1], rtol=0, atol=1e-6)
    assert g.tolist() == pytest.approx([0.75, 1.1, 0.2, 0.3, 0.2], abs=1e-6)
    # another γ and other rewards go through
    g0 = mc_returns(buf, gamma=0.0, reward_click=0.5, reward_buy=2.0)
    np.testing.assert_allclose(g0, [0.5, 2.0, 0.5, 0.5, 0.5], atol=1e-6)


def _step_bucket(step: int) -> str:
    return {0: "0", 1: "1", 2: "2", 3: "3-4", 4: "3-4"}.get(step, "5-9" if step < 10 else "10+")


@pytest.mark.parametrize("algo", ["sqn", "mcrl"])
def test_diagnose_cli_writes_table_and_summary(tiny_data, tmp_path, algo):
    run = tmp_path / algo
    rc, _, err = cli(["train", "--data", tiny_data.root, "--out", run, "--algo", algo, "--backbone", "gru",
                      "--steps", 20, "--eval-every", 10, "--device", "cpu", "--no-progress", "--threads", 1])
    assert rc == 0, err
    rc, stdout, err = cli(["diagnose", "--run", run, "--split", "test", "--rollouts", 2, "--no-progress"])
    assert rc == 0, err
    assert "mean_bias" in stdout and "bias by step in session" in stdout
    table = pd.read_parquet(run / "diagnose_test.parquet")
    summary = json.loads((run / "diagnose_test.json").read_text())

    # one row per held-out event, in the replay buffer's order
    buf = tiny_data.replay("test")
    assert len(table) == len(buf) == len(tiny_data.split_events("test"))
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    assert (table["step"].to_numpy() == buf.step.numpy()).all()
    assert (table["item"].to_numpy() == buf.action.numpy()).all()
    assert (table["session"].to_numpy() == tiny_data.split_events("test")["session"].to_numpy()).all()
    np.testing.assert_array_equal(table["mc_return"].to_numpy(), mc_returns(buf, 0.5, 0.2, 1.0))
    assert np.isfinite(table["value"]).all()
    # the bias is exactly prediction − return
    np.testing.assert_array_equal(table["bias"].to_numpy(), table["value"].to_numpy() - table["mc_return"].to_numpy())
    if algo == "sqn":  # Q of the logged action never exceeds the max over items
        assert (table["value"] <= table["max_q"] + 1e-6).all()
    else:  # MCRL's V(s) has no per-item maximum
        assert table["max_q"].isna().all()

    # the simulator's true expected return is there, finite, and its bias exact too
    assert "true_value" in table and "bias_true" in table
    assert np.isfinite(table["true_value"]).all()
    np.testing.assert_array_equal(table["bias_true"].to_numpy(), table["value"].to_numpy() - table["true_value"].to_numpy())

    # the summary equals pandas over the written table
    assert summary["algo"] == algo and summary["split"] == "test" and summary["events"] == len(table)
    bias = table["bias"]
    assert summary["mean_bias"] == pytest.approx(bias.mean(), rel=1e-12, abs=1e-12)
    assert summary["std_bias"] == pytest.approx(bias.std(ddof=1), rel=1e-12)
    assert summary["mean_abs_bias"] == pytest.approx(bias.abs().mean(), rel=1e-12)
    assert summary["mean_value"] == pytest.approx(table["value"].mean(), rel=1e-12)
    assert summary["mean_mc_return"] == pytest.approx(table["mc_return"].mean(), rel=1e-12)
    assert summary["overestimated_share"] == pytest.approx((bias > 0).mean())
    assert summary["mean_true_value"] == pytest.approx(table["true_value"].mean(), rel=1e-12)
    assert summary["mean_bias_true"] == pytest.approx(table["bias_true"].mean(), rel=1e-12, abs=1e-12)
    by_step = table.groupby(table["step"].map(_step_bucket))["bias"].mean()
    assert set(summary["bias_by_step"]) == set(by_step.index)
    for bucket, mean in by_step.items():
        assert summary["bias_by_step"][bucket] == pytest.approx(mean, rel=1e-9, abs=1e-12), bucket
    by_event = table.groupby(np.where(table["is_buy"], "purchase", "click"))["bias"].mean()
    assert set(summary["bias_by_event"]) == {"click", "purchase"}
    for kind, mean in by_event.items():
        assert summary["bias_by_event"][kind] == pytest.approx(mean, rel=1e-9, abs=1e-12), kind
    assert all(math.isfinite(v) for v in summary["bias_by_step"].values())
