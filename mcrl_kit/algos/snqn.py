"""SNQN and SA2C: SQN with sampled negative actions, then an advantage-weighted CE.

Xin, Karatzoglou, Arapakis, Jose. "Supervised Advantage Actor-Critic for Recommender
Systems". WSDM 2022.

The two networks, the role draw and the double-Q target are SQN's (``sqn.py``). SNQN
adds ``K`` negative actions ``a⁻`` per transition, drawn by default uniformly from the
items other than ``a_t`` (``sampler``: ``samplers.py``). A negative earns reward 0 and leaves the user where they were, so its
target bootstraps from the **current** state, with no ``done`` mask (the session did
not move, so it did not end either)::

    y_t     = r_t + γ (1 − done_t) Q_θ'(s_{t+1}, argmax_a Q_θ(s_{t+1}, a))
    y⁻_t    = 0   + γ Q_θ'(s_t, argmax_a Q_θ(s_t, a))                 (both without gradient)
    L_TD    = ½ (y_t − Q_θ(s_t, a_t))²                                 ("td")
    L_TD⁻   = Σ_{a⁻} ½ (y⁻_t − Q_θ(s_t, a⁻))²                          ("td_neg")
    L_CE    = −log softmax(W_c f_θ(s_t))[a_t]                          ("ce")

    SNQN    L = mean_batch (L_CE + L_TD + L_TD⁻)
    SA2C    L = mean_batch (w_t L_CE + L_TD + L_TD⁻)                   ("ce_weighted", mean w_t: "ce_weight")
            w_t = 1 for the first ``switch_step`` steps, then the clipped advantage
            w_t = clip(sg(Q_θ(s_t, a_t) − mean_{a ∈ {a_t} ∪ a⁻} Q_θ(s_t, a)), 0, adv_clip)
            and the learning rate becomes ``lr_after_switch``.

The mean over ``{a_t} ∪ a⁻`` is a sampled estimate of the state value, so ``w_t`` is an
advantage; clipping at 0 drops the CE of actions the critic ranks below average.

Cost per step: one encoder pass per network over ``[s_t ; s_{t+1}]`` (the other's under
``no_grad``), one ``[2B, n_items]`` Q product of the trained network for both argmaxes
(chunked: never held whole),
the CE head on ``s_t``; Q at the logged and negative actions is read from the head's rows.

As in ``sqn.py``: at SA2C's switch the reference moves to a second, fresh Adam; the
kit's loop keeps one optimiser and only changes its learning rate.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ..config import ModelConfig, Param, _choice
from ..data.replay import Batch
from ..errors import ConfigError
from .base import item_cross_entropy
from .samplers import SAMPLERS, make_sampler
from .sqn import (
    SQN,
    SQNConfig,
    ce_parts,
    check_switch_step,
    double_q_target,
    greedy,
    q_at,
    switch_at,
    warn_if_never_switching,
)


@dataclasses.dataclass
class SNQNConfig(SQNConfig):
    SEARCH: ClassVar[dict[str, Param]] = {"neg": Param("int", 1, 50, log=True)}
    #: K: negative actions per transition (the reference: 10)
    neg: int = 10
    #: where the negatives come from: uniform (over the items ≠ a_t, the reference) | popularity |
    #: in_batch | unseen (``samplers.py``)
    sampler: str = "uniform"

    def validate(self) -> None:
        super().validate()
        if self.neg < 1:
            raise ConfigError(
                f"{type(self).__name__}.neg", f"must be ≥ 1, got {self.neg}",
                "give the number of negatives per transition, e.g. 10 (or use sqn for none)",
            )
        _choice(f"{type(self).__name__}.sampler", self.sampler, SAMPLERS)


@dataclasses.dataclass
class SA2CConfig(SNQNConfig):
    SEARCH: ClassVar[dict[str, Param]] = {"neg": Param("int", 1, 50, log=True), "switch_step": Param("float", 0.25, 0.9)}
    #: SNQN steps before the CE is weighted by the advantage: a count, a fraction of the budget in (0, 1),
    #: or None: the reference's 15,000, or 3/4 of a shorter budget (``sqn.switch_at``)
    switch_step: int | float | None = None
    #: the advantage weight is clipped to [0, adv_clip] (the reference: 10)
    adv_clip: float = 10.0
    #: Adam's learning rate from ``switch_step`` on (the reference: 0.001)
    lr_after_switch: float = 0.001

    def validate(self) -> None:
        super().validate()
        check_switch_step(type(self).__name__, self.switch_step)
        if self.adv_clip <= 0:
            raise ConfigError("SA2CConfig.adv_clip", f"must be > 0, got {self.adv_clip}", "give e.g. 10")
        if self.lr_after_switch <= 0:
            raise ConfigError("SA2CConfig.lr_after_switch", f"must be > 0, got {self.lr_after_switch}", "give e.g. 0.001")


class SNQN(SQN):
    name = "snqn"
    Config = SNQNConfig

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: SNQNConfig, seed: int = 0):
        sampler = make_sampler(type(config).__name__, config.sampler, config.neg, n_items, state_len)
        super().__init__(n_items, state_len, model, config, seed)
        self.sampler = sampler

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        i = self.draw_trained()
        trained, other = self.nets[i], self.nets[1 - i]
        neg = self.negatives(batch, cfg.neg)  # [B, K], never a_t
        now, after = (batch.state, batch.len_state), (batch.next_state, batch.len_next_state)
        h, h_next = trained.encode_many(now, after)
        with torch.no_grad():
            h_other, h_other_next = other.encode_many(now, after)
            # the trained network picks a* at s_t and s_{t+1} in one item-sized (chunked) product
            a_pick, a_pick_next = greedy(trained.q_head, torch.cat([h, h_next])).split(len(h))
            y = double_q_target(batch.reward, cfg.gamma * (~batch.done).float(), a_pick_next, other.q_head, h_other_next)
            # a negative: reward 0, the user stays at s_t (no done mask: the session did not end)
            zero_reward, gamma = torch.zeros_like(batch.reward), torch.full_like(batch.reward, cfg.gamma)
            y_neg = double_q_target(zero_reward, gamma, a_pick, other.q_head, h_other)
        q = q_at(trained.q_head, h, batch.action)  # Q_θ(s_t, a_t)       [B]
        q_neg = q_at(trained.q_head, h, neg)  # Q_θ(s_t, a⁻)            [B, K]
        td = 0.5 * (y - q).pow(2)
        td_neg = (0.5 * (y_neg[:, None] - q_neg).pow(2)).sum(1)
        ce = item_cross_entropy(trained.ce_head, h, batch.action)

        ce_term, parts = ce_parts(ce, self.ce_weight(step, q, q_neg))
        parts["td"], parts["td_neg"] = td.mean(), td_neg.mean()
        parts["total"] = ce_term + parts["td"] + parts["td_neg"]
        parts["q_mean"] = q.mean().detach()  # logged only: the overestimation curve
        return parts


def clipped_advantage(q_pos: torch.Tensor, q_neg: torch.Tensor, clip: float) -> torch.Tensor:
    """``clip(sg(Q(s, a_t) − mean_{a ∈ {a_t} ∪ a⁻} Q(s, a)), 0, clip)`` per row, ``[B]``."""
    q_pos, q_neg = q_pos.detach(), q_neg.detach()
    mean = (q_pos + q_neg.sum(1)) / (1 + q_neg.shape[1])
    return (q_pos - mean).clamp(0.0, clip)


class SA2C(SNQN):
    """SNQN, then the CE weighted by the clipped advantage at a lower learning rate."""

    name = "sa2c"
    Config = SA2CConfig

    def plan(self, total_steps: int) -> None:
        super().plan(total_steps)
        warn_if_never_switching(self)

    def ce_weight(self, step: int, q_pos: torch.Tensor, q_neg: torch.Tensor | None) -> torch.Tensor:
        if step < switch_at(self):
            return torch.ones_like(q_pos)
        return clipped_advantage(q_pos, q_neg, self.config.adv_clip)

    def learning_rate(self, step: int, base: float) -> float:
        return base if step < switch_at(self) else self.config.lr_after_switch
