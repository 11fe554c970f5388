"""SKNN and VSKNN (``mcrl_kit.algos.knn``): hand-computed scores, ranks, saving, end to end.

- SKNN and VSKNN scores on a hand-made world, every number worked out in the comments;
- the sparse ``ranks`` equal the ranks of the dense ``scores`` for every target (the
  hand-made world and the tiny simulator), ties counting against the logged item;
- VSKNN with both switches off is SKNN; a saved-then-loaded model ranks identically;
- ``train --algo sknn`` / ``evaluate`` through the CLI, and SKNN beats popularity.
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
import torch

from mcrl_kit.algos import ALGOS, algo_config, build_algo
from mcrl_kit.algos.knn import SKNN, VSKNN
from mcrl_kit.cli import main
from mcrl_kit.config import ModelConfig
from mcrl_kit.errors import ConfigError
from mcrl_kit.evaluate import _logit_ranks, evaluate
from mcrl_kit.train import score_fn

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the hand-made world ------------------------------------------------------------------------
# 6 items (0..5; 6 is the pad), five training sessions (events in order; the time of the last event):
#   A: 0 1 2   @10      B: 1 3   @20      C: 0 3 4   @30      D: 5 5 5   @40      E: 1 5   @5
# recency: D, C, B, A, E. Event counts (the popularity fallback): 0:2 1:3 2:1 3:2 4:1 5:4.
# Sessions holding each item (for the IDF, S = 5): 0:{A,C} 1:{A,B,E} 2:{A} 3:{B,C} 4:{C} 5:{D,E}.
N, PAD = 6, 6
EVENTS = [("A", [0, 1, 2], 10), ("B", [1, 3], 20), ("C", [0, 3, 4], 30), ("D", [5, 5, 5], 40), ("E", [1, 5], 5)]


def world(cls=SKNN, **params) -> SKNN:
    algo = build_algo(cls.name, N, 4, ModelConfig(), params)
    session, item, time = [], [], []
    for name, items, end in EVENTS:
        session += [name] * len(items)
        item += items
        time += list(range(end - len(items) + 1, end + 1))
    algo.fit_sessions(np.array(session), np.array(item), np.array(time))
    return algo


def state(*items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One state: ``items`` (oldest first), right-padded to L = 4."""
    row = [*items, *[PAD] * (4 - len(items))]
    return torch.tensor([row]), torch.tensor([max(len(items), 1)])


def dense(algo, *items) -> list[float]:
    return algo.scores(*state(*items))[0].tolist()


def all_ranks(algo, states, lengths) -> torch.Tensor:
    """``[B, N]``: the rank of every item as the logged one, by ``ranks`` (one call: each state once per item)."""
    B, n = len(states), algo.n_items
    target = torch.arange(n).repeat(B)
    return algo.ranks(states.repeat_interleave(n, 0), lengths.repeat_interleave(n), target).view(B, n)


def dense_ranks(algo, states, lengths) -> torch.Tensor:
    """The same from the dense ``scores``, as the kit ranks any score matrix (``_logit_ranks``, uncapped)."""
    B, n = len(states), algo.n_items
    scores = algo.scores(states, lengths).repeat_interleave(n, 0)
    return _logit_ranks(scores, torch.arange(n).repeat(B), n).view(B, n)


R2, R3, R6 = math.sqrt(2), math.sqrt(3), math.sqrt(6)


# --- 1. hand-computed scores ----------------------------------------------------------------------
def test_sknn_scores_by_hand():
    # query {0, 1} (|q| = 2). Candidates sharing an item: A (0, 1), B (1), C (0), E (1); the m = 3 most
    # recent are C, B, A (E is the oldest). Cosines |q ∩ n| / (√|q| √|n|):
    #   A = 2 / (√2 √3) = 2/√6 ≈ 0.8165    B = 1 / (√2 √2) = 0.5    C = 1 / (√2 √3) = 1/√6 ≈ 0.4082
    # k = 2 keeps A and B: score(0) = A, score(1) = A + B ≈ 1.3165, score(2) = A, score(3) = B; 4, 5: none,
    # so they come after, by popularity (5 counted 4 times, 4 once): 5 − (4 + 1) = −1, 1 − 5 = −4
    algo = world(k=2, m=3)
    assert dense(algo, 0, 1) == pytest.approx([2 / R6, 2 / R6 + 0.5, 2 / R6, 0.5, -4, -1])
    # m = 2 samples only C and B: score(0) = C, score(1) = B, score(3) = B + C ≈ 0.9082, score(4) = C;
    # 2 and 5 by popularity (counts 1 and 4)
    assert dense(world(k=2, m=2), 0, 1) == pytest.approx([1 / R6, 0.5, -4, 0.5 + 1 / R6, 1 / R6, -1])
    # m = 4 adds E, whose cosine 1 / (√2 √2) = 0.5 ties with B: the more recent (B) is kept at k = 2 …
    assert dense(world(k=2, m=4), 0, 1) == pytest.approx(dense(algo, 0, 1))
    # … and k = 3 keeps both: score(1) = A + B + E ≈ 1.8165, score(5) = E = 0.5 (C, 0.4082, is out)
    assert dense(world(k=3, m=4), 0, 1) == pytest.approx([2 / R6, 2 / R6 + 1.0, 2 / R6, 0.5, -4, 0.5])
    # the order of the query does not matter to SKNN (a set), and a repeat counts once
    assert dense(algo, 1, 0) == dense(algo, 0, 1) == dense(algo, 0, 1, 0, 1)


def test_vsknn_scores_by_hand():
    # query 1 then 0 (len 2). Decay: the p-th of len events weighs p / len → w(1) = 1/2, w(0) = 1.
    # IDF log(S / S_i), S = 5: idf(0) = log(5/2) ≈ 0.9163, idf(1) = log(5/3) ≈ 0.5108.
    # q = (q0, q1) = (0.9163, 0.2554), ‖q‖ = √(0.8396 + 0.0652) ≈ 0.9512. Candidates (m = 3): C, B, A.
    #   A (0, 1; |A| = 3) = (q0 + q1) / (‖q‖ √3) ≈ 1.1717 / 1.6476 ≈ 0.7112
    #   B (1;    |B| = 2) = q1 / (‖q‖ √2)        ≈ 0.2554 / 1.3452 ≈ 0.1899
    #   C (0;    |C| = 3) = q0 / (‖q‖ √3)        ≈ 0.9163 / 1.6476 ≈ 0.5561
    # k = 2 keeps A and C (SKNN keeps A and B: the most recent item, 0, now weighs most):
    #   score(0) = A + C ≈ 1.2673, score(1) = score(2) = A, score(3) = score(4) = C; 5 by popularity: 4 − 5
    q0, q1 = math.log(5 / 2), 0.5 * math.log(5 / 3)
    norm = math.hypot(q0, q1)
    a, c = (q0 + q1) / (norm * R3), q0 / (norm * R3)
    assert (a, c) == pytest.approx((0.7112, 0.5561), abs=1e-4)
    algo = world(VSKNN, k=2, m=3)
    assert dense(algo, 1, 0) == pytest.approx([a + c, a, a, c, c, -1], rel=1e-6)
    # the other order: w(0) = 1/2, w(1) = 1 → q = (0.4581, 0.5108), ‖q‖ ≈ 0.6861:
    #   A ≈ 0.9689 / 1.1884 ≈ 0.8153, B = 0.5108 / (0.6861 √2) ≈ 0.5264, C ≈ 0.4581 / 1.1884 ≈ 0.3855 → A, B
    q0, q1 = 0.5 * math.log(5 / 2), math.log(5 / 3)
    norm = math.hypot(q0, q1)
    a, b = (q0 + q1) / (norm * R3), q1 / (norm * R2)
    assert dense(algo, 0, 1) == pytest.approx([a, a + b, a, b, -4, -1], rel=1e-6)
    # both switches off: SKNN's numbers
    assert dense(world(VSKNN, k=2, m=3, decay=False, idf=False), 1, 0) == dense(world(k=2, m=3), 1, 0)


def test_an_empty_state_ranks_by_popularity():
    # no query, no neighbours: counts 0:2 1:3 2:1 3:2 4:1 5:4, ties against the logged item
    #   5 → 0; 1 → 1 (5); 0, 3 → 3 (5, 1 and each other); 2, 4 → 5 (everything else)
    algo = world()
    assert all_ranks(algo, *state()).tolist() == [[3, 1, 5, 3, 5, 0]]


# --- 2. ranks == the dense scores' ranks, ties against the logged item ---------------------------
def test_ranks_by_hand_ties_count_against_the_target():
    # from the SKNN example: 1 (1.3165) · 0, 2 (0.8165, a tie) · 3 (0.5) · then 5, 4 by popularity
    algo = world(k=2, m=3)
    assert all_ranks(algo, *state(0, 1)).tolist() == [[2, 0, 2, 3, 5, 4]]
    # query {2}: only A holds 2, cosine 1/√3 for 0, 1, 2 (a three-way tie: rank 2 each); then
    # 5 (count 4) → 3; 3 (count 2) → 4; 4 (count 1) → 5
    assert all_ranks(algo, *state(2)).tolist() == [[2, 2, 2, 4, 5, 3]]


@pytest.mark.parametrize("cls", [SKNN, VSKNN])
def test_ranks_equal_the_dense_scores_ranks_for_every_target(cls):
    algo = world(cls, k=2, m=3)
    rows = [(), (0,), (2,), (5,), (0, 1), (1, 0), (3, 4, 3), (1, 5, 0, 2)]
    states = torch.cat([state(*r)[0] for r in rows])
    lengths = torch.cat([state(*r)[1] for r in rows])
    assert torch.equal(all_ranks(algo, states, lengths), dense_ranks(algo, states, lengths))


@pytest.fixture(scope="module")
def fitted(tiny_data):
    """SKNN and VSKNN fitted on the tiny simulator's train split."""
    out = {}
    for cls in (SKNN, VSKNN):
        algo = build_algo(cls.name, tiny_data.n_items, tiny_data.config.state_len, ModelConfig())
        algo.fit(tiny_data.replay("train"), tiny_data)
        out[cls.name] = algo
    return out


@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_ranks_equal_the_dense_scores_ranks_on_the_simulator(fitted, tiny_data, name):
    algo, val = fitted[name], tiny_data.replay("val")
    states, lengths = val.state[:64].long(), val.len_state[:64]
    assert torch.equal(all_ranks(algo, states, lengths), dense_ranks(algo, states, lengths))


def test_vsknn_with_both_switches_off_is_sknn(fitted, tiny_data):
    plain = build_algo("vsknn", tiny_data.n_items, tiny_data.config.state_len, ModelConfig(), {"decay": False, "idf": False})
    plain.fit(tiny_data.replay("train"), tiny_data)
    val = tiny_data.replay("val")
    states, lengths = val.state[:512].long(), val.len_state[:512]
    assert torch.equal(plain.scores(states, lengths), fitted["sknn"].scores(states, lengths))


# --- 3. saving and loading -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_a_saved_then_loaded_model_ranks_identically(fitted, tiny_data, name):
    algo = fitted[name]
    buf = io.BytesIO()
    torch.save(algo.state_dict(), buf)
    buf.seek(0)
    fresh = build_algo(name, tiny_data.n_items, tiny_data.config.state_len, ModelConfig())
    assert fresh.n_sessions == 0  # sized by the load, not by the constructor
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.n_sessions == algo.n_sessions > 0
    val = tiny_data.replay("val")
    states, lengths, target = val.state.long(), val.len_state, val.action.long()
    assert torch.equal(fresh.ranks(states, lengths, target), algo.ranks(states, lengths, target))


# --- 4. config, registry, end to end --------------------------------------------------------------
def test_registered_and_configs_validated():
    assert ALGOS["sknn"] is SKNN and ALGOS["vsknn"] is VSKNN and not SKNN.trainable
    assert algo_config("vsknn", {"k": 5, "m": 50, "idf": False}).to_dict()["m"] == 50
    for name in ("sknn", "vsknn"):
        for field in ("k", "m"):
            with pytest.raises(ConfigError, match=f"{name.upper()}Config.{field}"):
                algo_config(name, {field: 0})


def cli(args: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    before = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in args])
    finally:
        torch.set_num_threads(before)  # --threads 1 sets torch's global count
    return rc, out.getvalue(), err.getvalue()


def test_train_and_evaluate_sknn_through_the_cli(tiny_data, tmp_path):
    out = tmp_path / "sknn"
    rc, stdout, err = cli(["train", "--data", tiny_data.root, "--out", out, "--algo", "sknn", "--set", "k=50",
                           "--device", "cpu", "--no-progress", "--threads", "1"])
    assert rc == 0, err
    assert f"run: {out}" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == 0 and metrics["steps"] == 0
    for split in ("val", "test"):
        for kind in ("click", "purchase"):
            assert all(math.isfinite(v) and 0 <= v <= 1 for v in metrics[split][kind].values())
    # evaluate loads model.pt (weights_only) into a fresh SKNN and re-scores to the same metrics
    rc, _, err = cli(["evaluate", "--run", out, "--split", "test", "--device", "cpu"])
    assert rc == 0, err
    written = json.loads((out / "eval_test.json").read_text())
    assert {k: written[k] for k in ("click", "purchase")} == metrics["test"]


def test_sknn_beats_popularity_on_clicks(fitted, tiny_data):
    train, val = tiny_data.replay("train"), tiny_data.replay("val")
    popularity = build_algo("popularity", tiny_data.n_items, tiny_data.config.state_len, ModelConfig())
    popularity.fit(train)
    cpu = torch.device("cpu")
    sknn, pop = (evaluate(score_fn(a, cpu), val)["click"]["HR@10"] for a in (fitted["sknn"], popularity))
    assert sknn > pop + 0.2  # ≈ 0.78 against ≈ 0.24
