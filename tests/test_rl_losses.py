"""The SQN-lineage losses checked by hand, and the conformance harness every algorithm passes.

The hand-checked tests replace each network's encoder by a lookup (``h`` = one-hot of
the state's first id) and set the heads' weights to written-down tables, so that
``Q(s, a) = Q_TABLE[net][s, a]`` and the CE logits are ``CE_TABLE[net][s]``. Every
expected number below is worked out in the comment next to it from those tables
(γ = 0.5, reward 0.2 click / 1.0 purchase).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcrl_kit.algos import ALGOS, build_algo
from mcrl_kit.config import ModelConfig, TrainConfig
from mcrl_kit.data.replay import Batch, ReplayBuffer
from mcrl_kit.errors import ConfigError
from mcrl_kit.evaluate import flat_metrics
from mcrl_kit.models import BACKBONES
from mcrl_kit.train import RunConfig, make_optimizer, train

N = 6  # items 0..5; id 6 is the pad
LN2, LN6 = math.log(2), math.log(6)

# --- the hand-made world -----------------------------------------------------------------
# Q tables [state id 0..6, item 0..5]; rows not listed are zero. Net A = nets[0], B = nets[1].
Q_A = {
    6: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # argmax 5
    4: [0.2, 0.0, 0.0, -0.2, 0.6, 0.7],  # argmax 5
    3: [1.0, 3.0, 2.0, 0.0, 0.0, 0.0],  # argmax 1
    5: [9.0, 9.0, 9.0, 9.0, 9.0, 9.5],  # only reachable through a done row: must never count
}
Q_B = {
    6: [1.2, 0.0, -0.1, 0.0, 0.0, 0.8],  # argmax 0
    4: [0.0, 0.0, 0.0, 0.0, 2.0, 1.0],  # argmax 4
    3: [5.0, 0.5, 4.0, 0.0, 0.0, 0.0],  # argmax 0
    5: [9.5, 9.0, 9.0, 9.0, 9.0, 9.0],
}
# CE logits: net A all zero (CE = ln 6 everywhere); net B log-probabilities
CE_A: dict[int, list[float]] = {}
CE_B = {
    6: [math.log(p) for p in (0.1, 0.1, 0.5, 0.1, 0.1, 0.1)],  # CE at item 2 = ln 2
    4: [math.log(p) for p in (0.15, 0.15, 0.15, 0.15, 0.25, 0.15)],  # CE at item 4 = ln 4
}
# the two negatives per row the hand tests use
NEG = torch.tensor([[0, 1], [0, 3]])


def table(rows: dict[int, list[float]]) -> torch.Tensor:
    t = torch.zeros(N + 1, N)
    for s, values in rows.items():
        t[s] = torch.tensor(values)
    return t


def hand_batch() -> Batch:
    """Row 0: s=6 → a=2 (click), s'=3, not done. Row 1: s=4 → a=4 (purchase), s'=5, done."""
    one = torch.ones(2, dtype=torch.long)
    return Batch(
        state=torch.tensor([[6], [4]]),
        len_state=one,
        action=torch.tensor([2, 4]),
        is_buy=torch.tensor([False, True]),
        reward=torch.tensor([0.2, 1.0]),
        next_state=torch.tensor([[3], [5]]),
        len_next_state=one,
        done=torch.tensor([False, True]),
    )


def hand_algo(name: str, trained: int, **params):
    """``name`` with the tables above installed, network ``trained`` forced to be the trained one."""
    algo = build_algo(name, N, 1, ModelConfig(backbone="gru", hidden=N + 1, dropout=0.0), params)
    for net, q, ce in zip(algo.nets, (Q_A, Q_B), (CE_A, CE_B)):
        assert net.backbone.out_dim == N + 1
        net.backbone.encode = lambda states, lengths: F.one_hot(states[:, 0], N + 1).float()
        with torch.no_grad():
            net.q_head.weight.copy_(table(q).T)
            net.ce_head.weight.copy_(table(ce).T)
            net.q_head.bias.zero_()
            net.ce_head.bias.zero_()
    algo.draw_trained = lambda: trained
    if hasattr(algo.config, "neg"):
        algo.negatives = lambda batch, k: NEG[:, :k]
    return algo


def close(parts: dict, key: str, expected: float) -> None:
    assert float(parts[key].detach()) == pytest.approx(expected, abs=1e-6), key


# --- double Q-learning (SQN) --------------------------------------------------------------
@pytest.mark.parametrize("trained", [0, 1])
def test_sqn_double_q_target_by_hand(trained):
    parts = hand_algo("sqn", trained).loss(hand_batch(), step=0)
    if trained == 0:
        # row 0: a* = argmax Q_A(3) = 1, valued by B: Q_B(3, 1) = 0.5 → y = 0.2 + 0.5·0.5 = 0.45;
        #        Q_A(6, 2) = 0.3 → ½ (0.45 − 0.3)² = 0.01125
        # row 1: done → y = 1.0 (no bootstrap); Q_A(4, 4) = 0.6 → ½ (1 − 0.6)² = 0.08
        td, ce, q_mean = (0.01125 + 0.08) / 2, LN6, (0.3 + 0.6) / 2
    else:
        # row 0: a* = argmax Q_B(3) = 0, valued by A: Q_A(3, 0) = 1.0 → y = 0.2 + 0.5 = 0.7;
        #        Q_B(6, 2) = −0.1 → ½ (0.7 + 0.1)² = 0.32
        # row 1: y = 1.0; Q_B(4, 4) = 2.0 → ½ (1 − 2)² = 0.5
        # CE of B: −ln 0.5 = ln 2 and −ln 0.25 = 2 ln 2
        td, ce, q_mean = (0.32 + 0.5) / 2, 1.5 * LN2, (-0.1 + 2.0) / 2
    close(parts, "td", td)
    close(parts, "ce", ce)
    close(parts, "total", ce + td)
    close(parts, "q_mean", q_mean)
    assert set(parts) == {"total", "ce", "td", "q_mean"}


def test_network_one_ranks_and_values():
    algo = hand_algo("sqn", 1)
    states, lengths = torch.tensor([[6], [4]]), torch.ones(2, dtype=torch.long)
    # network 1 (A) ranks with its CE head (all-zero logits), not B's
    assert torch.equal(algo.scores(states, lengths), torch.zeros(2, N))
    assert torch.allclose(algo.q_values(states, lengths), torch.tensor([Q_A[6], Q_A[4]]))
    assert torch.allclose(algo.values(states, lengths, torch.tensor([2, 5])), torch.tensor([0.3, 0.7]))


# --- sampled negatives (SNQN) -------------------------------------------------------------
@pytest.mark.parametrize("trained", [0, 1])
def test_snqn_negatives_bootstrap_from_the_current_state(trained):
    parts = hand_algo("snqn", trained, neg=2).loss(hand_batch(), step=0)
    if trained == 0:
        # row 0: y⁻ = 0 + 0.5 · Q_B(6, argmax Q_A(6) = 5) = 0.5 · 0.8 = 0.4;
        #        negatives 0, 1: Q_A(6, ·) = 0.1, 0.2 → ½·0.3² + ½·0.2² = 0.065
        # row 1 (done, but a negative does not end the session): y⁻ = 0.5 · Q_B(4, argmax Q_A(4) = 5) = 0.5;
        #        negatives 0, 3: Q_A(4, ·) = 0.2, −0.2 → ½·0.3² + ½·0.7² = 0.29
        td, td_neg, ce = (0.01125 + 0.08) / 2, (0.065 + 0.29) / 2, LN6
    else:
        # row 0: y⁻ = 0.5 · Q_A(6, argmax Q_B(6) = 0) = 0.05; Q_B(6, 0), Q_B(6, 1) = 1.2, 0
        #        → ½·1.15² + ½·0.05² = 0.6625
        # row 1: y⁻ = 0.5 · Q_A(4, argmax Q_B(4) = 4) = 0.3; Q_B(4, 0), Q_B(4, 3) = 0, 0 → 2 · ½·0.3² = 0.09
        td, td_neg, ce = (0.32 + 0.5) / 2, (0.6625 + 0.09) / 2, 1.5 * LN2
    close(parts, "td", td)  # the positive part is SQN's, unchanged
    close(parts, "td_neg", td_neg)
    close(parts, "ce", ce)
    close(parts, "total", ce + td + td_neg)


# --- SAC: the stop-gradient Q weight after the switch -------------------------------------
@pytest.mark.parametrize("trained", [0, 1])
def test_sac_weights_ce_by_stopgrad_q_after_the_switch(trained):
    algo = hand_algo("sac", trained, switch_step=5)
    before = algo.loss(hand_batch(), step=4)
    close(before, "ce_weighted", float(before["ce"].detach()))  # plain CE before the switch
    close(before, "ce_weight", 1.0)
    after = algo.loss(hand_batch(), step=5)
    if trained == 0:
        weighted, weight = (0.3 * LN6 + 0.6 * LN6) / 2, (0.3 + 0.6) / 2  # Q_A(6, 2), Q_A(4, 4)
    else:
        weighted, weight = (-0.1 * LN2 + 2.0 * 2 * LN2) / 2, (-0.1 + 2.0) / 2  # Q_B(6, 2), Q_B(4, 4)
    close(after, "ce_weighted", weighted)
    close(after, "ce_weight", weight)
    close(after, "total", weighted + float(after["td"].detach()))
    # the weight is a constant: the weighted CE sends no gradient into the Q head
    net = algo.nets[trained]
    grads = torch.autograd.grad(
        after["ce_weighted"], [net.q_head.weight, net.q_head.bias, net.ce_head.weight], allow_unused=True
    )
    assert grads[0] is None and grads[1] is None
    assert grads[2] is not None and grads[2].abs().sum() > 0


# --- SA2C: the clipped advantage and the learning-rate switch -----------------------------
@pytest.mark.parametrize(
    ("trained", "clip", "advantage"),
    [
        # A: Q(s, a_t) minus the mean over {a_t, negatives}:
        #    row 0: 0.3 − (0.3 + 0.1 + 0.2)/3 = 0.1; row 1: 0.6 − (0.6 + 0.2 − 0.2)/3 = 0.4 (both inside)
        (0, 10.0, (0.1, 0.4)),
        # B: row 0: −0.1 − (−0.1 + 1.2 + 0)/3 = −0.4667 → clipped to 0;
        #    row 1: 2.0 − (2.0 + 0 + 0)/3 = 1.3333 (inside [0, 10], clipped to 1 when adv_clip = 1)
        (1, 10.0, (0.0, 4 / 3)),
        (1, 1.0, (0.0, 1.0)),
    ],
)
def test_sa2c_clipped_advantage_by_hand(trained, clip, advantage):
    algo = hand_algo("sa2c", trained, neg=2, switch_step=3, adv_clip=clip)
    ce_rows = (LN6, LN6) if trained == 0 else (LN2, 2 * LN2)
    parts = algo.loss(hand_batch(), step=3)
    close(parts, "ce_weight", sum(advantage) / 2)
    close(parts, "ce_weighted", (advantage[0] * ce_rows[0] + advantage[1] * ce_rows[1]) / 2)
    close(parts, "total", float((parts["ce_weighted"] + parts["td"] + parts["td_neg"]).detach()))
    net = algo.nets[trained]
    grads = torch.autograd.grad(parts["ce_weighted"], [net.q_head.weight, net.q_head.bias], allow_unused=True)
    assert grads == (None, None)  # the advantage is a constant


@pytest.mark.parametrize("trained", [0, 1])
def test_sa2c_is_snqn_before_the_switch(trained):
    sa2c = hand_algo("sa2c", trained, neg=2, switch_step=3).loss(hand_batch(), step=2)
    snqn = hand_algo("snqn", trained, neg=2).loss(hand_batch(), step=2)
    for key in ("total", "ce", "td", "td_neg"):
        close(sa2c, key, float(snqn[key].detach()))
    close(sa2c, "ce_weight", 1.0)


def test_sa2c_learning_rate_switches():
    algo = build_algo("sa2c", 20, 10, ModelConfig(backbone="gru", hidden=8), {"switch_step": 100})
    assert algo.learning_rate(0, 0.005) == 0.005
    assert algo.learning_rate(99, 0.005) == 0.005
    assert algo.learning_rate(100, 0.005) == 0.001
    assert algo.learning_rate(10**6, 0.01) == 0.001
    custom = build_algo("sa2c", 20, 10, ModelConfig(backbone="gru", hidden=8), {"switch_step": 0, "lr_after_switch": 3e-4})
    assert custom.learning_rate(0, 0.005) == 3e-4
    # the others keep the base rate throughout
    for name in ("sqn", "sac", "snqn"):
        assert build_algo(name, 20, 10, ModelConfig(backbone="gru", hidden=8)).learning_rate(10**6, 0.005) == 0.005


# --- negatives: never the logged item, uniform over the rest, seeded, resumable ----------
def snqn(seed: int = 0):
    return build_algo("snqn", N, 10, ModelConfig(backbone="gru", hidden=8), {"neg": 3}, seed=seed)


def test_negatives_skip_the_logged_item_and_are_uniform():
    algo = snqn()
    actions = torch.randint(0, N, (500,), generator=torch.Generator().manual_seed(1))
    neg = algo.sample_negatives(actions, 10)
    assert neg.shape == (500, 10)
    assert (neg != actions[:, None]).all()
    assert neg.min() >= 0 and neg.max() < N
    for a in (0, 2, N - 1):  # the first, a middle and the last item (the shift's edge cases)
        counts = torch.bincount(algo.sample_negatives(torch.full((3000,), a), 4).flatten(), minlength=N)
        assert counts[a] == 0
        others = counts[torch.arange(N) != a].float()
        expected = 3000 * 4 / (N - 1)  # 2400 each; binomial sd ≈ 44
        assert ((others - expected).abs() < 0.08 * expected).all(), counts.tolist()


def test_negatives_are_seeded():
    actions = torch.arange(N).repeat(20)
    assert torch.equal(snqn(seed=3).sample_negatives(actions, 5), snqn(seed=3).sample_negatives(actions, 5))
    assert not torch.equal(snqn(seed=3).sample_negatives(actions, 5), snqn(seed=4).sample_negatives(actions, 5))


def test_generator_state_round_trips_through_state_dict():
    actions = torch.arange(N).repeat(20)
    algo = snqn(seed=3)
    for _ in range(3):  # advance it
        algo.sample_negatives(actions, 5)
        algo.draw_trained()
    buf = io.BytesIO()
    torch.save(algo.state_dict(), buf)
    expected = [(algo.draw_trained(), algo.sample_negatives(actions, 5)) for _ in range(4)]
    resumed = snqn(seed=99)
    buf.seek(0)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    got = [(resumed.draw_trained(), resumed.sample_negatives(actions, 5)) for _ in range(4)]
    assert [r for r, _ in got] == [r for r, _ in expected]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got, expected))


# --- only the trained network learns; the role follows the generator ---------------------
def random_buffer(n_items: int, seed: int = 0, sessions: int = 12, state_len: int = 10) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 14, sessions)
    session = np.repeat(np.arange(sessions), lengths)
    items = rng.integers(0, n_items, len(session))
    buys = rng.random(len(session)) < 0.2
    return ReplayBuffer.from_events(session, items, buys, n_items=n_items, state_len=state_len)


def random_batch(n_items: int, size: int = 8, seed: int = 0) -> Batch:
    buf = random_buffer(n_items, seed)
    idx = torch.randperm(len(buf), generator=torch.Generator().manual_seed(seed))[:size]
    return buf.batch(idx)


def which_has_grads(algo) -> list[bool]:
    return [any(p.grad is not None for p in net.parameters()) for net in algo.nets]


RL_NAMES = ("sqn", "sac", "snqn", "sa2c")


@pytest.mark.parametrize("name", RL_NAMES)
@pytest.mark.parametrize("trained", [0, 1])
def test_only_the_trained_network_gets_gradients_and_moves(name, trained):
    algo = build_algo(name, 12, 10, ModelConfig(backbone="gru", hidden=8), {"switch_step": 0} if name in ("sac", "sa2c") else {})
    algo.draw_trained = lambda: trained
    opt = make_optimizer(algo, 0.01, torch.device("cpu"))
    before = [[p.detach().clone() for p in net.parameters()] for net in algo.nets]
    opt.zero_grad(set_to_none=True)
    algo.loss(random_batch(12), step=1)["total"].backward()
    other = 1 - trained
    assert all(p.grad is not None for p in algo.nets[trained].parameters())
    assert all(p.grad is None for p in algo.nets[other].parameters())
    opt.step()
    assert all(torch.equal(p, b) for p, b in zip(algo.nets[other].parameters(), before[other]))
    assert any(not torch.equal(p, b) for p, b in zip(algo.nets[trained].parameters(), before[trained]))


def role_sequence(algo, steps: int) -> list[int]:
    batch, out = random_batch(12), []
    for step in range(steps):
        algo.zero_grad(set_to_none=True)
        algo.loss(batch, step)["total"].backward()
        grads = which_has_grads(algo)
        assert sum(grads) == 1
        out.append(grads.index(True))
    return out


def test_the_trained_network_follows_the_generator():
    make = lambda seed: build_algo("snqn", 12, 10, ModelConfig(backbone="gru", hidden=8), seed=seed)  # noqa: E731
    first = role_sequence(make(5), 24)
    assert first == role_sequence(make(5), 24)  # the same seed, the same roles
    assert first != role_sequence(make(6), 24)  # another seed, others (2⁻²⁴ chance to collide)
    assert 4 <= sum(first) <= 20  # both networks get trained
    # and a resumed algorithm continues the sequence
    algo = make(5)
    role_sequence(algo, 10)
    state = {k: v for k, v in algo.state_dict().items()}
    rest = role_sequence(algo, 14)
    resumed = make(7)
    resumed.load_state_dict(state)
    assert role_sequence(resumed, 14) == rest


# --- config checks --------------------------------------------------------------------------
def test_configs_refuse_bad_values_with_the_reason():
    model = ModelConfig(backbone="gru", hidden=8)
    with pytest.raises(ConfigError, match="neg"):
        build_algo("snqn", 20, 10, model, {"neg": 0})
    with pytest.raises(ConfigError, match=r"only 10 items"):
        build_algo("sa2c", 10, 10, model, {"neg": 10})
    build_algo("sa2c", 11, 10, model, {"neg": 10})  # 10 items other than a_t: fine
    with pytest.raises(ConfigError, match="adv_clip"):
        build_algo("sa2c", 20, 10, model, {"adv_clip": 0})
    with pytest.raises(ConfigError, match="lr_after_switch"):
        build_algo("sa2c", 20, 10, model, {"lr_after_switch": -1})
    with pytest.raises(ConfigError, match="switch_step"):
        build_algo("sac", 20, 10, model, {"switch_step": -1})
    with pytest.raises(ConfigError, match="unknown key 'neg'"):
        build_algo("sqn", 20, 10, model, {"neg": 3})  # SQN has no negatives


def test_sqn_carries_two_networks_with_two_item_heads():
    n, model = 500, ModelConfig(backbone="sasrec", hidden=16)
    sup = build_algo("supervised", n, 10, model).param_counts()["params"]
    counts = build_algo("sqn", n, 10, model).param_counts()
    head = (16 + 1) * n  # a linear head over all items: weights and biases
    # supervised = backbone + one head; SQN = 2 × (backbone + Q head + CE head)
    assert counts["params"] == 2 * (sup + head)
    assert counts["params_heads"] == 4 * head


# --- the conformance harness: every algorithm, every backbone -----------------------------
CONFORMANCE = [name for name, cls in ALGOS.items() if cls.trainable]  # popularity and recency only count


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("name", CONFORMANCE)
def test_conformance(name, backbone):
    n_items, size = 12, 6
    torch.manual_seed(0)
    algo = build_algo(name, n_items, 10, ModelConfig(backbone=backbone, hidden=16), seed=1)
    batch = random_batch(n_items, size)
    for step in (0, 10**7):  # both sides of any switch
        parts = algo.loss(batch, step)
        assert "total" in parts and len(parts) >= 2
        for key, value in parts.items():
            assert value.dim() == 0 and torch.isfinite(value), (key, value)
        algo.zero_grad(set_to_none=True)
        parts["total"].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in algo.parameters())

    algo.eval()
    with torch.no_grad():
        scores = algo.scores(batch.state, batch.len_state)
        assert scores.shape == (size, n_items) and torch.isfinite(scores).all()
        if algo.value_based:
            values = algo.values(batch.state, batch.len_state, batch.action)
            assert values.shape == (size,) and torch.isfinite(values).all()
            try:
                q = algo.q_values(batch.state, batch.len_state)
            except NotImplementedError:
                q = None
            assert q is None or q.shape == (size, n_items)

    buf = io.BytesIO()
    torch.save(algo.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(123)  # a different init, so only the loaded weights can make the scores agree
    other = build_algo(name, n_items, 10, ModelConfig(backbone=backbone, hidden=16), seed=2)
    other.load_state_dict(torch.load(buf, weights_only=True))
    other.eval()
    with torch.no_grad():
        assert torch.equal(other.scores(batch.state, batch.len_state), scores)


# --- end to end: the training loop, both phases -------------------------------------------
@pytest.mark.parametrize("name", RL_NAMES)
def test_trains_end_to_end_on_the_simulator(name, tiny_data, tmp_path):
    params = {"switch_step": 2} if name in ("sac", "sa2c") else {}
    run = RunConfig(
        data=str(tiny_data.root),
        model=ModelConfig(backbone="gru", hidden=16),
        algo=name,
        algo_params=params,
        train=TrainConfig(steps=4, batch_size=32, eval_every=4, log_every=1, progress=False, device="cpu", lr=0.005),
    )
    result = train(run, out=tmp_path / "run", data=tiny_data)
    hist = result.history
    losses = hist[[c for c in hist.columns if c.startswith("loss/")]]
    assert len(losses) == 4 and np.isfinite(losses.to_numpy()).all()
    assert {"loss/total", "loss/ce", "loss/td"} <= set(hist.columns)
    if name in ("snqn", "sa2c"):
        assert "loss/td_neg" in hist.columns
    if name == "sa2c":
        assert hist["lr"].tolist() == [0.005, 0.005, 0.001, 0.001]
    else:
        assert hist["lr"].tolist() == [0.005] * 4
    assert (tmp_path / "run" / "model.pt").exists()
    assert result.metrics["params"] == sum(p.numel() for p in result.algo.parameters())
    test = flat_metrics(result.metrics["test"])
    assert test and all(0 <= v <= 1 for v in test.values())


# --- schedules given as a fraction of the budget ------------------------------------------
@pytest.mark.parametrize("name", ["sac", "sa2c"])
def test_switch_step_defaults_to_the_reference_or_three_quarters_of_a_shorter_budget(name):
    from mcrl_kit.algos.sqn import switch_at

    model = ModelConfig(backbone="gru", hidden=8)
    algo = build_algo(name, 20, 10, model, {})
    assert switch_at(algo) == 15_000  # outside the loop: the reference's
    algo.plan(4000)
    assert switch_at(algo) == 3000
    algo.plan(100_000)
    assert switch_at(algo) == 15_000
    half = build_algo(name, 20, 10, model, {"switch_step": 0.5})
    half.plan(4000)
    assert switch_at(half) == 2000
    q = torch.ones(3)
    assert torch.equal(half.ce_weight(1999, q, torch.zeros(3, 2)), torch.ones(3))  # before: plain CE
    assert not torch.equal(half.ce_weight(2000, 2 * q, torch.zeros(3, 2)), torch.ones(3))  # from the switch on: weighted
    if name == "sa2c":
        assert half.learning_rate(1999, 0.005) == 0.005 and half.learning_rate(2000, 0.005) == half.config.lr_after_switch


def test_a_run_that_never_switches_warns_and_a_fraction_needs_the_budget():
    from mcrl_kit.errors import KitWarning

    model = ModelConfig(backbone="gru", hidden=8)
    algo = build_algo("sa2c", 20, 10, model, {"switch_step": 500})
    with pytest.warns(KitWarning, match="never switches .* step 500, the budget is 400 steps"):
        algo.plan(400)
    with pytest.raises(ConfigError, match="was not told its budget"):
        build_algo("sa2c", 20, 10, model, {"switch_step": 0.5}).ce_weight(0, torch.ones(2), torch.zeros(2, 1))
    for bad in (1.5, -1, "half"):
        with pytest.raises(ConfigError, match="a fraction of the budget in"):
            build_algo("sa2c", 20, 10, model, {"switch_step": bad})
    with pytest.raises(ConfigError, match="warmup_steps"):
        build_algo("mcrl", 20, 10, model, {"warmup_steps": 2.5})


def test_mcrl_warmup_as_a_fraction_of_the_budget():
    algo = build_algo("mcrl", 20, 4, ModelConfig(backbone="gru", hidden=8, dropout=0.0), {"warmup_steps": 0.5})
    algo.plan(10)
    g = torch.Generator().manual_seed(0)
    states = torch.randint(0, 20, (6, 4), generator=g)
    ones = torch.full((6,), 4)
    batch = Batch(state=states, len_state=ones, action=torch.randint(0, 20, (6,), generator=g),
                  is_buy=torch.tensor([True, False] * 3), reward=torch.tensor([1.0, 0.2] * 3), next_state=states.roll(1, 1),
                  len_next_state=ones, done=torch.zeros(6, dtype=torch.bool))
    # during the warm-up (steps 0–4) the policy term is the plain CE; from step 5 it is weighted
    for step, plain in ((4, True), (5, False)):
        parts = algo.loss(batch, step)
        assert (abs(float((parts["policy"] - parts["ce"]).detach())) < 1e-6) == plain, step
