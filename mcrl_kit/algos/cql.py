"""Discrete CQL and IQL: offline RL outside the SQN lineage, on the kit's backbones and loop.

**CQL** (Kumar, Zhou, Tucker, Levine, NeurIPS 2020), discrete over the whole catalogue, with a
CE head as SQN has (BorealisAI/sasrec-ccql does the same for SASRec)::

    y       = r_t + γ (1 − done) Q̄(s_{t+1}, argmax_a Q(s_{t+1}, a))     (double DQN: Q picks, Q̄ evaluates)
    td      = ½ (Q(s_t, a_t) − y)²
    cql     = logsumexp_a Q(s_t, a) − Q(s_t, a_t)                        (over all items: the fused CE of
                                                                          the Q head, no [B, N] tensor)
    ce      = −log softmax(W_c f(s_t))[a_t]
    L       = mean (ce + td + α · cql)

Items are ranked by the CE head (``rank_by="ce"``, as SQN) or by Q (``rank_by="q"``).

**IQL** (Kostrikov, Nair, Levine, ICLR 2022), with advantage-weighted regression (AWR) as the
policy extraction — the closest published relative of MCRL's value-weighted policy::

    q       = ½ (Q(s_t, a_t) − (r_t + γ (1 − done) V(s_{t+1})))²        (V(s') without gradient)
    value   = |τ − 1[u < 0]| u²,  u = Q̄(s_t, a_t) − V(s_t)              (expectile τ: V → an upper
                                                                          expectile of Q at the data action)
    policy  = mean w_t · CE_t,   w_t = min(exp(β (Q̄(s_t, a_t) − V(s_t))), w_max)   (no gradient in w)
    L       = q + value + policy

Ranking: the policy (CE) head. Both keep a Polyak target ``Q̄`` of the whole network
(``target_update`` per step). ``values`` reads Q(s, a_t) (network 0's Q head).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar

import torch
from torch import nn

from ..config import AlgoConfig, ModelConfig, Param, _choice, _count
from ..data.replay import Batch
from ..errors import ConfigError
from .base import Algo, item_cross_entropy
from .sqn import QNetwork, greedy, q_at


def _rate(where: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ConfigError(where, f"must lie in (0, 1], got {value}", "give e.g. 0.01")


@dataclasses.dataclass
class CQLConfig(AlgoConfig):
    SEARCH: ClassVar[dict[str, Param]] = {"alpha": Param("float", 0.01, 10.0, log=True)}
    #: α: weight of the conservative penalty logsumexp_a Q − Q(a_t)
    alpha: float = 1.0
    #: what ranks items: the CE head (as SQN) or the Q head
    rank_by: str = "ce"
    #: Polyak rate of the target network per step
    target_update: float = 0.01

    def validate(self) -> None:
        super().validate()
        if self.alpha < 0:
            raise ConfigError("CQLConfig.alpha", f"must be ≥ 0, got {self.alpha}", "give e.g. 1.0 (0: no penalty)")
        _choice("CQLConfig.rank_by", self.rank_by, ("ce", "q"))
        _rate("CQLConfig.target_update", self.target_update)


class _TargetNetwork(Algo):
    """One QNetwork and its Polyak target (what CQL and IQL share)."""

    value_based = True

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: AlgoConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        self.net = QNetwork(model, n_items, state_len)
        self.target = copy.deepcopy(self.net).requires_grad_(False)

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Polyak: θ̄ ← θ̄ + τ (θ − θ̄)."""
        torch._foreach_lerp_(list(self.target.parameters()), list(self.net.parameters()), self.config.target_update)

    def q_values(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net.q_head(self.net.encode(states, lengths))

    def values(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return q_at(self.net.q_head, self.net.encode(states, lengths), actions)


class CQL(_TargetNetwork):
    name = "cql"
    Config = CQLConfig

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        h = self.net.encode(batch.state, batch.len_state)
        with torch.no_grad():
            a_star = greedy(self.net.q_head, self.net.encode(batch.next_state, batch.len_next_state))
            h_bar_next = self.target.encode(batch.next_state, batch.len_next_state)
            y = batch.reward + cfg.gamma * (~batch.done).float() * q_at(self.target.q_head, h_bar_next, a_star)
        q = q_at(self.net.q_head, h, batch.action)
        parts = {
            "td": (0.5 * (q - y).pow(2)).mean(),
            # logsumexp_a Q(s, a) − Q(s, a_t) is the CE of the Q head's scores at the logged item
            "cql": item_cross_entropy(self.net.q_head, h, batch.action).mean(),
            "ce": item_cross_entropy(self.net.ce_head, h, batch.action).mean(),
        }
        parts["total"] = parts["ce"] + parts["td"] + cfg.alpha * parts["cql"]
        parts["q_mean"] = q.mean().detach()
        return parts

    def ranking_head(self):
        return self.net.encode, (self.net.ce_head if self.config.rank_by == "ce" else self.net.q_head)


@dataclasses.dataclass
class IQLConfig(AlgoConfig):
    SEARCH: ClassVar[dict[str, Param]] = {"expectile": Param("float", 0.5, 0.95), "beta": Param("float", 0.3, 10.0, log=True)}
    #: τ of the expectile regression of V on Q(s, a_t) (> 0.5: an upper expectile, IQL's ≈ 0.7)
    expectile: float = 0.7
    #: β: inverse temperature of the advantage weight exp(β A)
    beta: float = 3.0
    #: w_max: the advantage weight's cap
    max_weight: float = 100.0
    #: Polyak rate of the target network per step
    target_update: float = 0.01
    #: hidden width of the value MLP
    mlp_hidden: int = 64

    def validate(self) -> None:
        super().validate()
        if not 0 < self.expectile < 1:
            raise ConfigError("IQLConfig.expectile", f"must lie in (0, 1), got {self.expectile}", "give e.g. 0.7")
        if self.beta < 0 or self.max_weight <= 0:
            raise ConfigError("IQLConfig.beta / max_weight", f"need β ≥ 0 and w_max > 0 (got {self.beta}, {self.max_weight})",
                              "give e.g. beta=3.0, max_weight=100")
        _rate("IQLConfig.target_update", self.target_update)
        _count("IQLConfig.mlp_hidden", self.mlp_hidden, 1, example=", e.g. 64")


class IQL(_TargetNetwork):
    name = "iql"
    Config = IQLConfig

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: IQLConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        d = self.net.backbone.out_dim
        self.value = nn.Sequential(nn.Linear(d, config.mlp_hidden), nn.ReLU(), nn.Linear(config.mlp_hidden, 1))

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        h = self.net.encode(batch.state, batch.len_state)
        with torch.no_grad():
            v_next = self.value(self.net.encode(batch.next_state, batch.len_next_state)).squeeze(-1)
            y = batch.reward + cfg.gamma * (~batch.done).float() * v_next
            q_bar = q_at(self.target.q_head, self.target.encode(batch.state, batch.len_state), batch.action)
        q = q_at(self.net.q_head, h, batch.action)
        v = self.value(h).squeeze(-1)
        u = q_bar - v
        advantage = u.detach()
        w = torch.exp(cfg.beta * advantage).clamp(max=cfg.max_weight)
        ce = item_cross_entropy(self.net.ce_head, h, batch.action)
        parts = {
            "q": (0.5 * (q - y).pow(2)).mean(),
            "value": (torch.abs(cfg.expectile - (u < 0).float()) * u.pow(2)).mean(),
            "policy": (w * ce).mean(),
            "ce": ce.mean().detach(),
            "weight": w.mean().detach(),
        }
        parts["total"] = parts["q"] + parts["value"] + parts["policy"]
        parts["q_mean"] = q.mean().detach()
        return parts

    def ranking_head(self):
        return self.net.encode, self.net.ce_head
