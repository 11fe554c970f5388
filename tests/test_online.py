"""The closed loop: simulated users meet a recommender; the forced-action truth; offline vs online."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import cli

from mcrl_kit.data import closed_loop as cl
from mcrl_kit.data import simulator as sim
from mcrl_kit.errors import ConfigError
from mcrl_kit.online import online_table, rank_correlation, summarize_sessions

WORLD = sim.build_world("small", 0)
SESSIONS = 3000


def successors(states, lengths, k):
    """Recommends the last item's preferred successors (then the item itself): what the users' intent does next."""
    last = np.maximum(states[np.arange(len(states)), lengths - 1], 0)
    return np.concatenate([WORLD.successors[last], np.repeat(last[:, None], k, 1)], 1)[:, :k]


def popularity(states, lengths, k):
    top = np.argsort(-WORLD.popularity, kind="stable")[:k]
    return np.broadcast_to(top, (len(states), k))


def random_items(seed=0):
    rng = np.random.default_rng(seed)
    return lambda states, lengths, k: rng.integers(0, WORLD.n_items, size=(len(states), k))


def run(recommend, sessions=SESSIONS, seed=0, **response):
    return cl.closed_loop(WORLD, sessions, recommend, response=cl.Response(**response), seed=seed)


def test_same_seed_same_sessions_other_seed_other_sessions():
    a, b, c = run(successors, 500), run(successors, 500), run(successors, 500, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert list(a.columns) == ["session", "reward", "return", "purchases", "clicks", "length", "shown", "taken"]


def test_without_attraction_the_loop_reproduces_the_logs():
    """Slates nobody takes (and no leaving) leave the users as the logs have them."""
    loop = run(popularity, attraction=0.0, leave_sensitivity=0.0)
    assert loop["taken"].sum() == 0
    log = sim.simulate("small", sessions=SESSIONS, progress=False).events
    per = log.groupby("session_id").agg(length=("is_buy", "size"), purchases=("is_buy", "sum"))
    for col in ("length", "purchases"):
        a, b = loop[col].to_numpy(float), per[col].to_numpy(float)
        se = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) <= 4 * se, (col, a.mean(), b.mean(), se)
    # and it is exactly the logging behaviour (no recommender) of the same users
    pd.testing.assert_frame_equal(loop[["length", "purchases"]], run(None)[["length", "purchases"]])


def test_the_intents_successors_earn_more_than_popularity():
    """Both policies meet the same users (same seed): the per-session differences are paired."""
    good, pop = run(successors, 20_000), run(popularity, 20_000)
    assert summarize_sessions(good)["taken share"] > summarize_sessions(pop)["taken share"] + 0.05
    # measured (seed 0): reward +0.076 (se 0.031), length +0.24 (se 0.067), purchases +0.035 (se 0.023)
    for col, margin in (("reward", 2), ("length", 3), ("purchases", 1)):
        diff = good[col].to_numpy() - pop[col].to_numpy()
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        assert diff.mean() > margin * se, (col, diff.mean(), se)


def test_ignored_slates_make_users_leave():
    patient = summarize_sessions(run(random_items(), leave_sensitivity=0.0))
    leaving = summarize_sessions(run(random_items(), leave_sensitivity=0.5))
    assert patient["taken share"] < 0.05  # random items rarely fit
    assert leaving["length high"] < patient["length low"], (leaving, patient)
    assert leaving["length"] >= sim.MIN_LENGTH


def test_response_and_sizes_are_checked():
    with pytest.raises(ConfigError, match="attraction"):
        cl.Response(attraction=-1)
    with pytest.raises(ConfigError, match="leave_sensitivity"):
        cl.Response(leave_sensitivity=float("nan"))
    with pytest.raises(ConfigError, match="slate > 0"):
        cl.closed_loop(WORLD, 10, popularity, slate=0)


def test_kit_states_turn_windows_into_right_padded_states():
    window = np.array([[-1, -1, 3, 4, 5], [-1, -1, -1, -1, -1], [1, 2, 3, 4, 5]])
    states, lengths = cl.kit_states(window, 3)
    assert states.tolist() == [[3, 4, 5], [-1, -1, -1], [3, 4, 5]]
    assert lengths.tolist() == [3, 1, 3]
    states, lengths = cl.kit_states(window, 5)
    assert states.tolist()[0] == [3, 4, 5, -1, -1] and lengths.tolist() == [3, 1, 5]


def test_organic_probs_are_the_step_functions_view_distribution():
    """Summed over every item, the view probabilities are 1; and they match the step function's frequencies."""
    rng = np.random.default_rng(0)
    window = np.array([[-1, -1, -1, -1, -1, -1, -1, 5, 9, 5]])
    items = np.arange(WORLD.n_items)[None, :]
    p = cl.organic_probs(WORLD, window, np.array([3]), items)[0]
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    n = 200_000
    w = np.repeat(window, n, 0)
    item, buy, _ = sim._step(WORLD, w, np.zeros(n, bool), np.full(n, 3), np.full(n, 3), np.full(n, -50.0), rng)
    assert not buy.any()  # a propensity of −50 never buys
    freq = np.bincount(item, minlength=WORLD.n_items) / n
    top = np.argsort(-p)[:5]
    np.testing.assert_allclose(freq[top], p[top], atol=0.005)


def test_rank_correlation_by_hand():
    up = rank_correlation([1, 2, 3, 4, 5], [10, 20, 30, 40, 50], n_boot=200)
    assert up["rho"] == pytest.approx(1.0) and up["n"] == 5
    down = rank_correlation([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], n_boot=200)
    assert down["rho"] == pytest.approx(-1.0)
    # ranks (1, 2, 3, 4) vs (2, 1, 4, 3): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/60 = 0.6
    mixed = rank_correlation([1, 2, 3, 4], [2, 1, 4, 3], n_boot=500, seed=1)
    assert mixed["rho"] == pytest.approx(0.6)
    assert -1 <= mixed["low"] <= mixed["rho"] <= mixed["high"] <= 1
    with pytest.raises(ConfigError, match="≥ 3"):
        rank_correlation([1, 2], [1, 2])


# --- the forced-action truth and the command ---------------------------------------------------
def test_forced_values_follow_the_policy(tiny_data):
    """Staying in the intent (recommend the last item) buys more than scattering (a random item): its
    forced-action values are higher; both stay within [r_t, r_t + γ r_max / (1 − γ)]."""
    world = sim.build_world("tiny", 0)

    def stay(states, lengths, k):
        return np.repeat(np.maximum(states[np.arange(len(states)), lengths - 1], 0)[:, None], k, 1)

    rng = np.random.default_rng(0)

    def scatter(states, lengths, k):
        return rng.integers(0, world.n_items, size=(len(states), k))

    a = cl.forced_values(tiny_data, "test", stay, n_rollouts=16)
    b = cl.forced_values(tiny_data, "test", scatter, n_rollouts=16)
    again = cl.forced_values(tiny_data, "test", stay, n_rollouts=16)
    pd.testing.assert_frame_equal(a, again)
    reward = np.where(tiny_data.split_events("test")["is_buy"].to_numpy() == 1, 1.0, 0.2)
    for t in (a, b):
        v = t["true_forced"].to_numpy()
        assert (v >= reward - 1e-9).all() and (v <= reward + 0.5 * 1.0 / (1 - 0.5) + 1e-9).all()
    assert a["true_forced"].mean() > b["true_forced"].mean() + 0.02


def test_diagnostics_judge_q_learners_by_their_greedy_policy(tiny_runs, tiny_data):
    from mcrl_kit.diagnostics import value_table

    study, runs = tiny_runs
    _, sqn, _ = study.load(runs["SQN"][0])
    table = value_table(sqn, tiny_data, "test", n_rollouts=4)
    assert {"true_value", "true_behaviour", "bias_true"} <= set(table.columns)
    assert not np.allclose(table["true_value"], table["true_behaviour"])  # the greedy policy is not the users'
    _, mcrl, _ = study.load(runs["MCRL"][0])
    table = value_table(mcrl, tiny_data, "test", n_rollouts=4)
    np.testing.assert_array_equal(table["true_value"], table["true_behaviour"])  # V of the logged behaviour


def online_cli(*args) -> tuple[int, str, str]:
    return cli(list(args))


def test_online_command_puts_the_run_beside_the_references(tiny_runs):
    _, runs = tiny_runs
    rc, out, err = online_cli("online", "--run", runs["SQN"][0], "--sessions", 200, "--no-progress")
    assert rc == 0, err
    for row in ("logging (no recommender)", "popularity", "recency", "gru-sqn"):
        assert row in out
    assert "taken share" in out and "[" in out
    table = online_table({"SQN": runs["SQN"][0], "MCRL": runs["MCRL"][0]}, sessions=100, references=False)
    assert table["policy"].tolist() == ["SQN", "MCRL"]


def test_online_refuses_a_run_on_logged_data(tmp_path):
    from mcrl_kit.config import DataConfig
    from mcrl_kit.data import prepare

    frame = pd.DataFrame({"session_id": np.repeat(np.arange(12), 4), "timestamp": np.tile(np.arange(4), 12),
                          "item_id": np.arange(48) % 7, "is_buy": np.tile([0, 0, 0, 1], 12)})
    data = prepare(DataConfig(source="events", paths=("log.csv",)), out=tmp_path / "d", frame=frame, progress=False)
    rc, _, err = online_cli("train", "--data", data.root, "--out", tmp_path / "pop", "--algo", "popularity", "--no-progress")
    assert rc == 0, err
    rc, _, err = online_cli("online", "--run", tmp_path / "pop", "--sessions", 10)
    assert rc != 0 and "the closed loop needs the simulator" in err and "Fix:" in err


def test_organic_probs_follow_the_drift():
    """With drift, a session's first view is drawn from its time bucket's popularity, and so is its fit."""
    world = sim.build_world("tiny", 0, drift=1.0)
    window = np.full((2, sim.HISTORY), -1)
    items = np.arange(world.n_items)[None, :].repeat(2, 0)
    p = cl.organic_probs(world, window, np.zeros(2, int), items, np.array([0, sim.DRIFT_BUCKETS - 1]))
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert not np.allclose(p[0], p[1])  # early and late sessions start on different items
    np.testing.assert_allclose(p[1], world.drift_popularity[-1])
