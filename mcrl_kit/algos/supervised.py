"""Supervised next-item prediction: the backbone with a softmax over all items.

``L = CE(head(f(s_t)), a_t) = −log softmax(W h_t + b)[a_t]`` averaged over the batch —
the "GRU4Rec / Caser / NextItNet / SASRec" rows of the SQN-lineage tables. A tuned
supervised model is the baseline every RL variant must beat (``PROTOCOL.md``).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..config import AlgoConfig, ModelConfig
from ..data.replay import Batch
from ..models import build_backbone
from .base import Algo, item_cross_entropy


@dataclasses.dataclass
class SupervisedConfig(AlgoConfig):
    """No settings beyond the shared MDP ones (unused by the loss)."""


class Supervised(Algo):
    name = "supervised"
    Config = SupervisedConfig

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: SupervisedConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        self.backbone = build_backbone(model, n_items, state_len)
        self.head = nn.Linear(self.backbone.out_dim, n_items)

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        h = self.backbone.encode(batch.state, batch.len_state)
        ce = item_cross_entropy(self.head, h, batch.action).mean()
        return {"total": ce, "ce": ce}

    def ranking_head(self):
        return self.backbone.encode, self.head
