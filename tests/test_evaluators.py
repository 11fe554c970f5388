"""The d3rlpy-style estimator evaluators (``mcrl_kit.evaluators``) against hand computations.

- average value, initial-state value and TD error of a stub algorithm whose Q (or V) is
  a fixed table, on a hand-made two-session buffer, every number worked out below;
- FQE on a hand-made deterministic MDP converging to the policy's exact value, and its
  determinism for a seed;
- ``estimator_report`` and ``python -m mcrl_kit estimators`` on the tiny SQN and MCRL
  runs, and the refusal of a popularity run (FQE alone still allowed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import cli

from mcrl_kit.algos.base import Algo
from mcrl_kit.config import AlgoConfig, ModelConfig
from mcrl_kit.data.replay import ReplayBuffer, mc_returns
from mcrl_kit.diagnostics import predicted_values
from mcrl_kit.errors import ConfigError
from mcrl_kit.evaluators import (
    average_value,
    estimator_report,
    fqe,
    greedy_policy,
    initial_state_value,
    ranking_policy,
    td_error,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# --- a stub algorithm whose values are a table of the state's last item ----------------
def last_item(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The state's last real item; the empty state's single pad gives the pad id (``n_items``)."""
    return states.long().gather(1, (lengths.long() - 1)[:, None]).squeeze(1)


class TableAlgo(Algo):
    """Q(s, a) = Q_TABLE[last item of s, a] (kind "q") or V(s) = V_TABLE[last item of s] (kind "v")."""

    name = "table"
    value_based = True

    def __init__(self, kind: str, q_table=None, v_table=None):
        super().__init__(3, 2, ModelConfig(backbone="gru", hidden=8), AlgoConfig(gamma=0.5, reward_click=0.2, reward_buy=1.0))
        self.value_kind = kind
        self.q_table = torch.tensor(q_table or [[0.0] * 3] * 4)
        self.v_table = torch.tensor(v_table or [0.0] * 4)

    def q_values(self, states, lengths):
        return self.q_table[last_item(states, lengths)]

    def values(self, states, lengths, actions):
        rows = last_item(states, lengths)
        return self.q_table[rows, actions.long()] if self.value_kind == "q" else self.v_table[rows]


class NoValues(Algo):
    name = "novalues"


# rows of Q: the state's last item 0, 1, 2, then the empty state (pad = 3); columns: actions 0, 1, 2
Q_TABLE = [
    [0.2, 0.4, 0.0],  # last item 0: max 0.4
    [0.6, 0.1, 0.9],  # last item 1: max 0.9
    [0.3, 0.7, 0.2],  # last item 2: max 0.7
    [0.1, 0.5, 0.3],  # empty state: max 0.5
]
V_TABLE = [1.0, 0.2, 0.4, 0.5]  # V of last item 0, 1, 2, empty


@pytest.fixture
def hand_buffer() -> ReplayBuffer:
    # session A: 0 click, 1 purchase, 2 click; session B: 2 click, 0 click (γ = 0.5, rewards 0.2 / 1.0)
    #   row  state  action  reward  done  next state  step
    #   A0   empty  0       0.2     no    0           0
    #   A1   0      1       1.0     no    1           1
    #   A2   1      2       0.2     yes   2           2
    #   B0   empty  2       0.2     no    2           0
    #   B1   2      0       0.2     yes   0           1
    return ReplayBuffer.from_events(
        np.array([5, 5, 5, 8, 8]), np.array([0, 1, 2, 2, 0]), np.array([0, 1, 0, 0, 0]), n_items=3, state_len=2
    )


def test_the_hand_buffer_is_as_described(hand_buffer):
    b = hand_buffer
    assert last_item(b.state, b.len_state).tolist() == [3, 0, 1, 3, 2]
    assert last_item(b.next_state, b.len_next_state).tolist() == [0, 1, 2, 2, 0]
    assert b.done.tolist() == [False, False, True, False, True] and b.step.tolist() == [0, 1, 2, 0, 1]


@pytest.mark.parametrize("batch_size", [1, 2, 1024])  # batches that split the sessions give the same figures
def test_q_type_estimators_by_hand(hand_buffer, batch_size):
    algo = TableAlgo("q", q_table=Q_TABLE)
    # average value: mean over rows of max_a Q(s, a) = (0.5 + 0.4 + 0.9 + 0.5 + 0.7) / 5 = 3.0 / 5
    assert average_value(algo, hand_buffer, batch_size=batch_size) == pytest.approx(0.6, abs=1e-6)
    # initial-state value: rows A0 and B0 (both the empty state): max Q = 0.5
    assert initial_state_value(algo, hand_buffer, batch_size=batch_size) == pytest.approx(0.5, abs=1e-6)
    # TD error (Q(s, a_t) − r − γ (1 − done) max_a Q(s′, a))²:
    #   A0: Q(empty, 0) = 0.1, y = 0.2 + 0.5 · max Q(0) = 0.2 + 0.5 · 0.4 = 0.4   → (−0.30)² = 0.09
    #   A1: Q(0, 1)     = 0.4, y = 1.0 + 0.5 · max Q(1) = 1.0 + 0.5 · 0.9 = 1.45  → (−1.05)² = 1.1025
    #   A2: Q(1, 2)     = 0.9, y = 0.2 (done)                                   → (0.70)²  = 0.49
    #   B0: Q(empty, 2) = 0.3, y = 0.2 + 0.5 · max Q(2) = 0.2 + 0.5 · 0.7 = 0.55  → (−0.25)² = 0.0625
    #   B1: Q(2, 0)     = 0.3, y = 0.2 (done)                                   → (0.10)²  = 0.01
    # mean = 1.755 / 5
    assert td_error(algo, hand_buffer, batch_size=batch_size) == pytest.approx(0.351, abs=1e-6)


@pytest.mark.parametrize("batch_size", [2, 1024])
def test_v_type_estimators_by_hand(hand_buffer, batch_size):
    algo = TableAlgo("v", v_table=V_TABLE)
    # average value: mean V(s) = (0.5 + 1.0 + 0.2 + 0.5 + 0.4) / 5 = 2.6 / 5
    assert average_value(algo, hand_buffer, batch_size=batch_size) == pytest.approx(0.52, abs=1e-6)
    # initial-state value: V(empty) for A0 and B0
    assert initial_state_value(algo, hand_buffer, batch_size=batch_size) == pytest.approx(0.5, abs=1e-6)
    # TD error (V(s) − r − γ (1 − done) V(s′))²:
    #   A0: 0.5 − (0.2 + 0.5 · 1.0) = −0.2 → 0.04     A1: 1.0 − (1.0 + 0.5 · 0.2) = −0.1 → 0.01
    #   A2: 0.2 − 0.2 (done)        =  0   → 0        B0: 0.5 − (0.2 + 0.5 · 0.4) =  0.1 → 0.01
    #   B1: 0.4 − 0.2 (done)        =  0.2 → 0.04     mean = 0.1 / 5
    assert td_error(algo, hand_buffer, batch_size=batch_size) == pytest.approx(0.02, abs=1e-6)


def test_other_gamma_and_rewards_come_from_the_config(hand_buffer):
    algo = TableAlgo("v", v_table=V_TABLE)
    algo.config = AlgoConfig(gamma=0.0, reward_click=0.5, reward_buy=2.0)
    # γ = 0: y = r; errors 0.5−0.5, 1.0−2.0, 0.2−0.5, 0.5−0.5, 0.4−0.5 → (0 + 1 + 0.09 + 0 + 0.01) / 5
    assert td_error(algo, hand_buffer) == pytest.approx(1.1 / 5, abs=1e-6)


def test_no_first_event_gives_nan(hand_buffer):
    later = hand_buffer.subset(hand_buffer.step > 0)
    assert math.isnan(initial_state_value(TableAlgo("q", q_table=Q_TABLE), later))


def test_an_algorithm_without_values_is_refused(hand_buffer):
    algo = NoValues(3, 2, ModelConfig(), AlgoConfig())
    for estimator in (average_value, initial_state_value, td_error):
        with pytest.raises(ConfigError, match=r"'novalues'.*has no value estimates.*Fix: estimate a value-based run"):
            estimator(algo, hand_buffer)
    with pytest.raises(ConfigError, match="no greedy policy"):
        greedy_policy(algo)
    with pytest.raises(ConfigError, match="no greedy policy"):
        greedy_policy(TableAlgo("v", v_table=V_TABLE))


# --- FQE on a hand-made deterministic MDP ----------------------------------------------
@pytest.fixture
def mdp_buffer() -> ReplayBuffer:
    # items {0, 1}, state = the last item (state_len 1): three states, empty / 0 / 1. Logged sessions:
    #   S1: 1 click, 1 purchase (end)          S2: 0 click, 1 click, 1 purchase (end)
    # so every (state, action) pair logged has one reward and one next state, and ends or not always:
    #   (empty, 1): r 0.2 → state 1      (1, 1): r 1.0, done      (empty, 0): r 0.2 → state 0      (0, 1): r 0.2 → state 1
    return ReplayBuffer.from_events(
        np.array([0, 0, 1, 1, 1]), np.array([1, 1, 0, 1, 1]), np.array([0, 1, 0, 0, 1]), n_items=2, state_len=1
    )


def always_one(states, lengths):
    return torch.ones(len(states), dtype=torch.long, device=states.device)


def zero_first(states, lengths):
    """Item 0 in the empty state, item 1 after anything."""
    return (states[:, 0] != 2).long()  # pad = n_items = 2


FQE_TOL = 5e-3  # what 600 Adam steps at lr 1e-2 reach (observed: ~1e-7) with a wide margin


@pytest.mark.parametrize("policy,initial", [(always_one, 0.7), (zero_first, 0.55)])
def test_fqe_finds_the_exact_value_of_a_deterministic_mdp(mdp_buffer, policy, initial):
    # γ = 0.5, rewards 0.2 / 1.0. Both policies take item 1 after any item:
    #   Q(1, 1) = 1.0 (done);  Q(0, 1) = 0.2 + 0.5 · Q(1, π(1)) = 0.2 + 0.5 · 1.0 = 0.7
    #   Q(empty, 1) = 0.2 + 0.5 · Q(1, 1) = 0.7;  Q(empty, 0) = 0.2 + 0.5 · Q(0, π(0)) = 0.2 + 0.5 · 0.7 = 0.55
    # initial value Q(empty, π(empty)): 0.7 (always 1) or 0.55 (0 first)
    # logged Q: rows (empty,1), (1,1), (empty,0), (0,1), (1,1) → (0.7 + 1.0 + 0.55 + 0.7 + 1.0) / 5 = 0.79
    algo = TableAlgo("q")  # only its config (γ, rewards) and model (GRU, hidden 8) are used: the policy is given
    algo.n_items, algo.state_len = 2, 1
    out = fqe(algo, mdp_buffer, policy, steps=600, lr=1e-2, target_every=50, seed=0)
    assert out["fqe_initial_value"] == pytest.approx(initial, abs=FQE_TOL)
    assert out["fqe_logged_q"] == pytest.approx(0.79, abs=FQE_TOL)
    assert out["initial_states"] == 2 and out["steps"] == 600
    assert out["fqe_loss"] < 1e-4
    # the next logged action is π's in all three non-final rows: (S1 after 1: 1), (S2 after 0: 1), (S2 after 1: 1)
    assert out["action_match"] == 1.0


def test_fqe_refuses_no_steps(mdp_buffer):
    with pytest.raises(ConfigError, match="fqe steps"):
        fqe(TableAlgo("q"), mdp_buffer, always_one, steps=0)


# --- the tiny runs ------------------------------------------------------------------------
def test_fqe_is_deterministic_for_a_seed(tiny_runs):
    study, runs = tiny_runs
    _, algo, data = study.load(runs["SQN"][0])
    global_state = torch.get_rng_state()
    a = fqe(algo, data, steps=25, batch_size=64, seed=3)
    b = fqe(algo, data, steps=25, batch_size=64, seed=3)
    c = fqe(algo, data, steps=25, batch_size=64, seed=4)
    assert a == b
    assert a["fqe_initial_value"] != c["fqe_initial_value"]
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is forked, never moved
    assert all(math.isfinite(v) for v in a.values())


def test_ranking_policy_is_the_top_of_the_scores(tiny_runs):
    study, runs = tiny_runs
    _, algo, data = study.load(runs["MCRL"][0])
    buf = data.replay("test")
    s, n = buf.state[:50].long(), buf.len_state[:50]
    with torch.inference_mode():
        assert torch.equal(ranking_policy(algo)(s, n), algo.scores(s, n).argmax(-1))


@pytest.mark.parametrize("label", ["SQN", "MCRL"])
def test_report_on_the_tiny_runs(tiny_runs, label):
    study, runs = tiny_runs
    folder = runs[label][0]
    report = estimator_report(folder, "test", fqe_steps=20)
    _, algo, data = study.load(folder)
    buf = data.replay("test")
    kind = "q" if label == "SQN" else "v"
    assert report["value_kind"] == kind and report["events"] == len(buf)
    # the same figures as the functions, and as the diagnostics' per-row values
    value, vmax = predicted_values(algo, buf)
    per_row = vmax if kind == "q" else value
    assert report["average_value"] == pytest.approx(float(per_row.mean()), abs=1e-5)
    first = buf.step.numpy() == 0
    assert report["initial_state_value"] == pytest.approx(float(per_row[first].mean()), abs=1e-5)
    assert report["td_error"] == pytest.approx(td_error(algo, buf), abs=1e-6) and report["td_error"] >= 0
    g = mc_returns(buf, algo.config.gamma, algo.config.reward_click, algo.config.reward_buy)
    assert report["behaviour_return_initial"] == pytest.approx(float(g[first].mean()), abs=1e-9)
    assert math.isfinite(report["fqe"]["fqe_initial_value"]) and report["fqe"]["steps"] == 20
    assert ("fqe_greedy" in report) == (kind == "q")
    assert set(report["applies"]) >= {"value estimators", "behaviour_return", "fqe"}


@pytest.mark.parametrize("label", ["SQN", "MCRL"])
def test_estimators_cli(tiny_runs, label):
    _, runs = tiny_runs
    rc, out, err = cli(["estimators", "--run", runs[label][0], "--split", "val", "--fqe-steps", 10])
    assert rc == 0, err
    for key in ("average_value", "initial_state_value", "td_error", "behaviour_return_initial", "fqe.fqe_initial_value"):
        assert key in out
    assert ("fqe_greedy.fqe_initial_value" in out) == (label == "SQN")
    assert ("Q-type" if label == "SQN" else "V-type") in out and "split val" in out


def test_a_popularity_run_is_refused_but_fqe_alone_runs(tiny_data, tmp_path):
    run = tmp_path / "pop"
    rc, _, err = cli(["train", "--data", tiny_data.root, "--out", run, "--algo", "popularity", "--no-progress"])
    assert rc == 0, err
    with pytest.raises(ConfigError) as caught:
        estimator_report(run, fqe_steps=5)
    message = str(caught.value)
    assert str(run) in message and "'popularity'" in message and "no value estimates" in message and "--fqe-only" in message
    rc, out, err = cli(["estimators", "--run", run, "--fqe-steps", 5])
    assert rc == 2 and out == "" and err.startswith("error: ") and str(run) in err
    # FQE of its (constant) recommendation is still meaningful
    report = estimator_report(run, fqe_steps=5, fqe_only=True)
    assert "average_value" not in report and report["value_kind"] is None
    assert math.isfinite(report["fqe"]["fqe_initial_value"])
    assert "not applicable" in report["applies"]["value estimators"]
    rc, out, err = cli(["estimators", "--run", run, "--fqe-steps", 5, "--fqe-only"])
    assert rc == 0, err
    assert "fqe.fqe_initial_value" in out and "average_value" not in out and "no value estimates" in out
    with pytest.raises(ConfigError, match="nothing to compute"):
        estimator_report(run, fqe_steps=0, fqe_only=True)
