"""Popularity: rank every item by its frequency in the training transitions.

No learning and no state: the same list for everyone. It is the floor any sequential
model must clear; on the simulator a first-order next-item model already beats it.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import AlgoConfig, ModelConfig
from ..data.replay import ReplayBuffer
from .base import Algo


@dataclasses.dataclass
class PopularityConfig(AlgoConfig):
    #: count purchases as well as clicks (both are interactions with the item)
    count_purchases: bool = True


class Popularity(Algo):
    name = "popularity"
    Config = PopularityConfig
    trainable = False

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: PopularityConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        self.register_buffer("counts", torch.zeros(n_items))

    def fit(self, buffer: ReplayBuffer, data=None) -> None:
        actions = buffer.action.long()
        if not self.config.count_purchases:
            actions = actions[~buffer.is_buy]
        self.counts.copy_(torch.bincount(actions, minlength=self.n_items).float())

    def scores(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # the same scores for every state; items of equal count tie, and ties count against the logged item
        return self.counts.expand(states.shape[0], -1)

    def param_counts(self) -> dict[str, int]:
        return {"params": 0, "params_frozen": 0}
