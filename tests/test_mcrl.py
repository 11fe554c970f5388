"""MCRL term by term on tiny batches with numbers worked out by hand, plus behaviour.

The sub-networks are pinned to constants (zero weights, chosen biases) so every term
of METHOD.md has a closed form: V ≡ c, R ≡ fixed logits, T ≡ fixed vector, π uniform.
"""

from __future__ import annotations

import math

import pytest
import torch

from mcrl_kit.algos import build_algo
from mcrl_kit.config import ModelConfig
from mcrl_kit.data.replay import Batch
from mcrl_kit.errors import ConfigError

N, L, D = 8, 3, 4  # items, state length, hidden
C = 0.5  # the pinned value
GAMMA = 0.5


def _const(seq: torch.nn.Sequential, bias: list[float]) -> None:
    with torch.no_grad():
        for layer in seq:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        seq[-1].bias.copy_(torch.tensor(bias))


def _algo(**params):
    # V unbounded, so a pinned bias is V itself (the bounded V is tested in tests/test_mcrl_soundness.py)
    params = {"neg": 3, "value_bound": "none", **params}
    algo = build_algo("mcrl", N, L, ModelConfig(backbone="gru", hidden=D, dropout=0.0), params, seed=0)
    _const(algo.value, [C])
    _const(algo.target_value, [C])
    _const(algo.reward, [0.0, math.log(2.0), math.log(3.0)])  # p = 1/6, 2/6, 3/6
    _const(algo.transition, [1.0, 0.0, 0.0, 0.0])
    with torch.no_grad():
        algo.policy.weight.zero_()
        algo.policy.bias.zero_()
    # every state encodes to the same vector: all InfoNCE keys coincide
    fixed = lambda s, n: torch.ones(len(s), D)  # noqa: E731
    algo.backbone.encode = fixed
    algo.target_backbone.encode = fixed
    return algo


def _batch():
    pad = torch.full((2, L), N)
    return Batch(
        state=pad, len_state=torch.ones(2, dtype=torch.long), action=torch.tensor([1, 5]),
        is_buy=torch.tensor([False, True]), reward=torch.tensor([0.2, 1.0]),
        next_state=pad, len_next_state=torch.ones(2, dtype=torch.long), done=torch.tensor([False, True]),
    )


def test_value_term_is_td_regression():
    # y = r + γ (1 − done) c = [0.2 + 0.25, 1.0];  L_V = mean (c − y)²
    parts = _algo().loss(_batch(), step=0)
    assert parts["value"].item() == pytest.approx(((0.45 - C) ** 2 + (1.0 - C) ** 2) / 2)


def test_expectile_value_term_weights_by_sign():
    parts = _algo(conservative="expectile", expectile=0.3).loss(_batch(), step=0)
    # err = y − V = [−0.05, +0.5]: weight 1 − τ below, τ above
    assert parts["value"].item() == pytest.approx((0.7 * 0.05**2 + 0.3 * 0.5**2) / 2)
    assert parts["conservative"].item() == 0.0


def test_reward_term_is_three_class_cross_entropy():
    parts = _algo().loss(_batch(), step=0)
    # labels: click, purchase for the logged pairs; negative for 2 × 3 negatives
    expected = (-math.log(2 / 6) - math.log(3 / 6) - 6 * math.log(1 / 6)) / 8
    assert parts["reward"].item() == pytest.approx(expected)
    assert _algo(reward_model=False).loss(_batch(), 0)["reward"].item() == 0.0


def test_conservative_term_is_logsumexp_gap():
    # equal Q̂ for all 1 + K actions → logsumexp − Q̂(a_t) = log(1 + K)
    parts = _algo().loss(_batch(), step=0)
    assert parts["conservative"].item() == pytest.approx(math.log(4))
    assert _algo(conservative="none").loss(_batch(), 0)["conservative"].item() == 0.0


def test_conservative_term_without_reward_model_uses_logged_rewards():
    # R off: r_t for a_t and 0 for a negative stand in; V ≡ c everywhere, γ = 0.5
    # → L_C = mean_b [log(e^{r_b + γc} + K e^{γc}) − (r_b + γc)] = mean_b log(1 + K e^{−r_b})
    parts = _algo(reward_model=False).loss(_batch(), step=0)
    expected = (math.log(1 + 3 * math.exp(-0.2)) + math.log(1 + 3 * math.exp(-1.0))) / 2
    assert parts["conservative"].item() == pytest.approx(expected)


@pytest.mark.parametrize("part", ["reward", "transition"])
def test_a_switched_off_model_does_not_enter_the_conservative_term(part):
    # randomly initialised (not pinned) networks: every Q̂(s, a) differs by action
    def conservative(off: bool, perturb: bool) -> float:
        params = {"reward_model": False} if part == "reward" and off else {"transition": "none"} if off else {}
        torch.manual_seed(0)  # the same initial weights in every call
        # unbounded V on raw T: the scramble's effect on the penalty is large enough to see
        params |= {"value_bound": "none", "transition_scale": "none"}
        algo = build_algo("mcrl", N, L, ModelConfig(backbone="gru", hidden=D, dropout=0.0), {"neg": 3, **params}, seed=0)
        if perturb:  # scramble the model in question
            with torch.no_grad():
                for p in getattr(algo, part).parameters():
                    p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 3)
        return algo.loss(_batch(), 0)["conservative"].item()

    # switched off, its (untrained) network must not shape the penalty…
    assert conservative(off=True, perturb=True) == conservative(off=True, perturb=False)
    # …while switched on, the same scramble moves it (the check above can fail)
    assert abs(conservative(off=False, perturb=True) - conservative(off=False, perturb=False)) > 1e-5


def test_conservative_term_prefers_logged_actions():
    algo = _algo()
    # raise the reward model's purchase logit for item 1 only: Q̂(s, 1) grows, the gap shrinks
    e = algo.backbone.item_embedding.weight
    with torch.no_grad():
        e.zero_()
        e[1, 0] = 1.0
        algo.reward[0].weight.zero_()
        algo.reward[0].weight[0, D] = 1.0  # first hidden unit reads e_a[0]
        algo.reward[2].weight.zero_()
        algo.reward[2].weight[2, 0] = 5.0  # purchase logit
    batch = _batch()._replace(action=torch.tensor([1, 1]))
    assert algo.loss(batch, 0)["conservative"].item() < math.log(4)


def test_transition_term_is_infonce_over_moved_and_stayed():
    # identical keys → every query's logits are equal over the 2B candidates → log(2B)
    parts = _algo().loss(_batch(), step=0)
    assert parts["transition"].item() == pytest.approx(math.log(4))
    # mse: T ≡ [1,0,0,0], targets ≡ [1,1,1,1] → squared distance 3 for both parts
    assert _algo(transition="mse").loss(_batch(), 0)["transition"].item() == pytest.approx(3.0)
    assert _algo(transition="none").loss(_batch(), 0)["transition"].item() == 0.0


@pytest.mark.parametrize(
    ("params", "weight"),
    [
        ({"normalize_weight": False}, (0.45 + 1.0) / 2),  # value: mean of y
        ({"normalize_weight": True}, 1.0),  # value, normalised by its batch mean
        ({"policy_weight": "advantage", "normalize_weight": False}, (0.0 + 0.5) / 2),  # max(0, y − V)
        ({"policy_weight": "none"}, 1.0),
        ({"warmup_steps": 5, "normalize_weight": False}, 1.0),  # plain CE during warm-up
    ],
)
def test_policy_term_is_weighted_cross_entropy(params, weight):
    parts = _algo(**params).loss(_batch(), step=0)
    assert parts["policy"].item() == pytest.approx(weight * math.log(N))  # uniform π: CE = log N
    assert parts["ce"].item() == pytest.approx(math.log(N))


def test_total_is_the_weighted_sum():
    lam = dict(lambda_value=0.5, lambda_conservative=2.0, lambda_reward=0.25, lambda_transition=3.0)
    p = _algo(**lam).loss(_batch(), step=0)
    expected = (
        p["policy"] + 0.5 * p["value"] + 2.0 * (p["conservative"] + p["anchor"]) + 0.25 * p["reward"]
        + 3.0 * p["transition"]
    )
    assert p["total"].item() == pytest.approx(expected.item())


def test_polyak_target_update():
    algo = build_algo("mcrl", N, L, ModelConfig(backbone="gru", hidden=D), {"neg": 2, "target_update": 0.25}, seed=0)
    with torch.no_grad():
        for p in algo.value.parameters():
            p.add_(1.0)
    before = [p.clone() for p in algo.target_value.parameters()]
    algo.after_step(0)
    for b, t, o in zip(before, algo.target_value.parameters(), algo.value.parameters()):
        assert torch.allclose(t, b + 0.25 * (o - b))
    assert not any(p.requires_grad for p in algo.target_backbone.parameters())


def test_config_refusals():
    with pytest.raises(ConfigError, match="cql, expectile, none"):
        build_algo("mcrl", N, L, ModelConfig(backbone="gru"), {"conservative": "strong"})
    with pytest.raises(ConfigError, match="neg"):
        build_algo("mcrl", N, L, ModelConfig(backbone="gru"), {"neg": N})


def test_fewer_parameters_than_sqn():
    model = ModelConfig(backbone="sasrec")
    mcrl = build_algo("mcrl", 500, 10, model, {}).param_counts()
    sqn = build_algo("sqn", 500, 10, model, {}).param_counts()
    assert mcrl["params"] < 0.5 * sqn["params"]
    assert mcrl["params_sqn"] == sqn["params"]


# --- behaviour on the simulator -------------------------------------------------------
def _train(tiny_data, steps=250, **params):
    from mcrl_kit.config import TrainConfig
    from mcrl_kit.train import RunConfig, train

    run = RunConfig(
        data=str(tiny_data.root), model=ModelConfig(backbone="gru"), algo="mcrl", algo_params=params,
        train=TrainConfig(steps=steps, eval_every=steps, progress=False, seed=0),
    )
    return train(run, data=tiny_data)


def _mean_value(algo, data):
    from mcrl_kit.diagnostics import predicted_values

    return predicted_values(algo, data.replay("test"))[0].mean()


def test_conservative_term_lowers_value_estimates(tiny_data):
    plain = _train(tiny_data, conservative="none")
    cql = _train(tiny_data, conservative="cql", lambda_conservative=5.0)
    expectile = _train(tiny_data, conservative="expectile")
    v_plain, v_cql, v_exp = (_mean_value(r.algo, tiny_data) for r in (plain, cql, expectile))
    assert v_cql < v_plain - 0.01
    assert v_exp < v_plain - 0.01


def test_reward_model_separates_logged_from_negative_pairs(tiny_data):
    algo = _train(tiny_data, steps=300).algo.eval()
    buf = tiny_data.replay("test")
    s, n, a = buf.state.long(), buf.len_state, buf.action.long()
    neg = (a + torch.randint(1, tiny_data.n_items, a.shape, generator=torch.Generator().manual_seed(0))) % tiny_data.n_items
    with torch.no_grad():
        p_pos = 1 - algo.reward_probs(s, n, a)[:, 0]  # P(not negative)
        p_neg = 1 - algo.reward_probs(s, n, neg)[:, 0]
    # AUC of "logged vs random pair" by P(interaction): the share of pairs ranked right
    auc = (p_pos[:, None] > p_neg[None, :]).float().mean().item()
    assert auc > 0.8
