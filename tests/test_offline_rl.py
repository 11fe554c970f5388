"""CQL, IQL and the reward-weighted CE control: each loss term against a hand computation.

A 4-item catalogue, a state encoded as a one-hot of its last item (the encoder is stubbed),
heads with fixed weights, and the terms recomputed here from whole ``[B, N]`` products — an
independent path from the kit's fused / row-gathered one.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mcrl_kit.algos import build_algo
from mcrl_kit.config import ModelConfig
from mcrl_kit.data.replay import Batch

N = 4
Q = torch.tensor([[0.1, 0.5, 0.2, 0.0], [0.3, 0.0, 0.4, 0.9], [0.2, 0.2, 0.2, 0.2], [0.0, 0.1, 0.0, 0.6], [0.5, 0.1, 0.3, 0.2]])
CE = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.3, 0.0, 0.0, 0.2]])


def batch() -> Batch:
    """Row 0: s=0 → a=1 (click), s'=1. Row 1: s=2 → a=3 (purchase), s'=3, done."""
    one = torch.ones(2, dtype=torch.long)
    return Batch(state=torch.tensor([[0], [2]]), len_state=one, action=torch.tensor([1, 3]),
                 is_buy=torch.tensor([False, True]), reward=torch.tensor([0.2, 1.0]),
                 next_state=torch.tensor([[1], [3]]), len_next_state=one, done=torch.tensor([False, True]))


def stubbed(name: str, **params):
    algo = build_algo(name, N, 1, ModelConfig(backbone="gru", hidden=N + 1, dropout=0.0), params)
    for net in (algo.net, algo.target):
        net.backbone.encode = lambda states, lengths: F.one_hot(states[:, 0], N + 1).float()
        with torch.no_grad():
            net.q_head.weight.copy_(Q.T)
            net.ce_head.weight.copy_(CE.T)
            net.q_head.bias.zero_()
            net.ce_head.bias.zero_()
    return algo


def test_cql_terms_by_hand():
    parts = stubbed("cql", alpha=0.5).loss(batch(), step=0)
    # y: row 0 bootstraps at s'=1: argmax Q[1] = item 3 (0.9), target Q = 0.9 → y = 0.2 + 0.5·0.9 = 0.65;
    #    row 1 is done → y = 1.0.  Q(s, a_t): Q[0][1] = 0.5, Q[2][3] = 0.2
    td = 0.5 * ((0.5 - 0.65) ** 2 + (0.2 - 1.0) ** 2) / 2
    cql = (torch.logsumexp(Q[0], 0) - 0.5 + torch.logsumexp(Q[2], 0) - 0.2).item() / 2
    ce = (F.cross_entropy(CE[[0, 2]], torch.tensor([1, 3]))).item()
    assert parts["td"].item() == pytest.approx(td, abs=1e-6)
    assert parts["cql"].item() == pytest.approx(cql, abs=1e-6)
    assert parts["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert parts["total"].item() == pytest.approx(ce + td + 0.5 * cql, abs=1e-6)
    # Q[2] is flat (0.2 each): its penalty is log 4 exactly
    assert torch.logsumexp(Q[2], 0).item() - 0.2 == pytest.approx(math.log(4))


def test_cql_ranks_by_the_ce_head_or_by_q():
    cql = stubbed("cql")
    assert cql.ranking_head()[1] is cql.net.ce_head
    by_q = stubbed("cql", rank_by="q")
    assert by_q.ranking_head()[1] is by_q.net.q_head


def test_iql_terms_by_hand():
    algo = stubbed("iql", expectile=0.7, beta=2.0, max_weight=3.0, mlp_hidden=N + 1)
    with torch.no_grad():  # V(h) = one fixed number per state: V = [0.3, 0.4, 0.1, 0.0, 0.0]
        algo.value[0].weight.copy_(torch.eye(N + 1))
        algo.value[0].bias.zero_()
        algo.value[2].weight.copy_(torch.tensor([[0.3, 0.4, 0.1, 0.0, 0.0]]))
        algo.value[2].bias.zero_()
    parts = algo.loss(batch(), step=0)
    # q: y0 = 0.2 + 0.5·V(s'=1) = 0.2 + 0.2 = 0.4, y1 = 1.0 (done); Q = 0.5, 0.2
    q = 0.5 * ((0.5 - 0.4) ** 2 + (0.2 - 1.0) ** 2) / 2
    # value: u = Q̄(s,a_t) − V(s) = 0.5 − 0.3 = 0.2 (≥ 0: weight 0.7), 0.2 − 0.1 = 0.1 (0.7)
    value = (0.7 * 0.2**2 + 0.7 * 0.1**2) / 2
    # policy: w = min(exp(2u), 3) = exp(0.4), exp(0.2)
    ce = F.cross_entropy(CE[[0, 2]], torch.tensor([1, 3]), reduction="none")
    policy = ((math.exp(0.4) * ce[0] + math.exp(0.2) * ce[1]) / 2).item()
    assert parts["q"].item() == pytest.approx(q, abs=1e-6)
    assert parts["value"].item() == pytest.approx(value, abs=1e-6)
    assert parts["policy"].item() == pytest.approx(policy, abs=1e-5)
    assert parts["total"].item() == pytest.approx(q + value + policy, abs=1e-5)


def test_iql_caps_the_advantage_weight():
    algo = stubbed("iql", beta=100.0, max_weight=3.0)
    parts = algo.loss(batch(), step=0)
    assert parts["weight"].item() <= 3.0 + 1e-6


def test_reward_ce_is_normalised_as_mcrl():
    algo = build_algo("reward_ce", N, 1, ModelConfig(backbone="gru", hidden=N + 1, dropout=0.0), {})
    algo.backbone.encode = lambda states, lengths: F.one_hot(states[:, 0], N + 1).float()
    with torch.no_grad():
        algo.head.weight.copy_(CE.T)
        algo.head.bias.zero_()
    parts = algo.loss(batch(), step=0)
    ce = F.cross_entropy(CE[[0, 2]], torch.tensor([1, 3]), reduction="none")
    w = torch.tensor([0.2, 1.0]) / 0.6  # r_t over its batch mean: a purchase weighs 5 clicks here
    assert parts["total"].item() == pytest.approx((w * ce).mean().item(), abs=1e-6)
    assert parts["ce"].item() == pytest.approx(ce.mean().item(), abs=1e-6)
    plain = build_algo("reward_ce", N, 1, ModelConfig(backbone="gru", hidden=N + 1), {"normalize_weight": False})
    plain.backbone.encode, plain.head = algo.backbone.encode, algo.head
    assert plain.loss(batch(), 0)["total"].item() == pytest.approx((torch.tensor([0.2, 1.0]) * ce).mean().item(), abs=1e-6)


@pytest.mark.parametrize("name", ["cql", "iql", "reward_ce"])
def test_trains_evaluates_and_diagnoses_end_to_end(name, tiny_data, tmp_path):
    import numpy as np

    from mcrl_kit.config import TrainConfig
    from mcrl_kit.diagnostics import diagnose_run
    from mcrl_kit.runs import RunConfig
    from mcrl_kit.train import train

    run = RunConfig(data=str(tiny_data.root), model=ModelConfig(backbone="gru", hidden=16), algo=name,
                    train=TrainConfig(steps=6, batch_size=32, eval_every=3, log_every=1, progress=False, device="cpu"))
    result = train(run, out=tmp_path / "run", data=tiny_data)
    losses = result.history[[c for c in result.history.columns if c.startswith("loss/")]]
    assert len(losses) == 6 and np.isfinite(losses.to_numpy()).all()
    assert np.isfinite(result.metrics["test"]["click"]["NDCG@10"])
    if name != "reward_ce":  # Q-learners: judged against their greedy policy's forced-action value
        table, summary = diagnose_run(tmp_path / "run", "test", n_rollouts=2)
        assert np.isfinite(table["true_value"]).all() and "mean_bias_true" in summary
