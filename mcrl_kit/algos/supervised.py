"""Supervised next-item prediction: the backbone with a softmax over all items.

``L = CE(head(f(s_t)), a_t) = −log softmax(W h_t + b)[a_t]`` averaged over the batch —
the "GRU4Rec / Caser / NextItNet / SASRec" rows of the SQN-lineage tables. A tuned
supervised model is the baseline every RL variant must beat (``PROTOCOL.md``).

``reward_ce`` is the control every MCRL claim needs (``METHOD.md``): the same CE weighted by
the reward alone, ``L = mean w_t · CE_t`` with ``w_t = r_t`` divided by its batch mean exactly
as MCRL's value weight is (``base.normalized_weights``). It separates "weighting purchases up"
from "learning a value": if MCRL beats supervised but not this, its gain is the weighting.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import AlgoConfig, ModelConfig
from ..data.replay import Batch
from ..models import build_backbone
from .base import Algo, item_cross_entropy, item_head, normalized_weights


@dataclasses.dataclass
class SupervisedConfig(AlgoConfig):
    """No settings beyond the shared MDP ones (unused by the loss)."""


class Supervised(Algo):
    name = "supervised"
    Config = SupervisedConfig

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: SupervisedConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        self.backbone = build_backbone(model, n_items, state_len)
        self.head = item_head(self.backbone.out_dim, n_items, model)

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        h = self.backbone.encode(batch.state, batch.len_state)
        ce = item_cross_entropy(self.head, h, batch.action).mean()
        return {"total": ce, "ce": ce}

    def ranking_head(self):
        return self.backbone.encode, self.head


@dataclasses.dataclass
class RewardCEConfig(AlgoConfig):
    #: divide the weights by their batch mean, as MCRL's ``normalize_weight`` (the control's default)
    normalize_weight: bool = True


class RewardCE(Supervised):
    """The reward-weighted CE control: ``w_t = r_t`` (normalised as MCRL's value weight)."""

    name = "reward_ce"
    Config = RewardCEConfig

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        h = self.backbone.encode(batch.state, batch.len_state)
        ce = item_cross_entropy(self.head, h, batch.action)
        w = batch.reward
        if self.config.normalize_weight:
            w = normalized_weights(w)
        return {"total": (w * ce).mean(), "ce": ce.mean().detach()}
