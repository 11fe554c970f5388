"""Caser (Tang & Wang, WSDM 2018) as the SQN/SA2C reference runs it.

Follows Xin Xin's TensorFlow code: the state's ``L × hidden`` embedding "image"
(pads masked to zero) goes through

- horizontal convolutions of heights 2, 3, 4 spanning the whole embedding, 16 filters
  each, ReLU, max-pooled over every position (the zero tail included, as there);
- one vertical convolution of height ``L`` and width 1 (a learned weighting of the
  ``L`` positions, applied to every embedding dimension), ReLU → ``hidden`` values;

concatenated and dropped out: ``h`` [B, 3·16 + hidden] (112 for hidden 64).

Caser reads the whole window, so it is not causal; items after ``lengths`` are
masked to zero with the pads, so they still change nothing. It needs ``L ==
state_len``. Init as the reference: truncated N(0, 0.1) weights, biases 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Backbone


class Caser(Backbone):
    causal = False

    def __init__(
        self,
        n_items: int,
        state_len: int = 10,
        hidden: int = 64,
        dropout: float = 0.1,
        sparse: bool = False,
        filters: int = 16,
        heights: tuple[int, ...] = (2, 3, 4),
    ):
        super().__init__(n_items, state_len, hidden, sparse)
        if max(heights) > state_len:
            raise ValueError(f"Caser: filter heights {heights} do not fit a state of {state_len} items")
        # a conv over time with the embedding dimensions as channels is TF's [h, hidden] filter
        self.horizontal = nn.ModuleList(nn.Conv1d(hidden, filters, h) for h in heights)
        self.vertical = nn.Linear(state_len, 1)  # TF's [L, 1] filter: one weight per position
        self.drop = nn.Dropout(dropout)
        self.out_dim = filters * len(heights) + hidden
        for layer in [*self.horizontal, self.vertical]:
            nn.init.trunc_normal_(layer.weight, std=0.1, a=-0.2, b=0.2)
            nn.init.constant_(layer.bias, 0.1)

    def encode(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, lengths = states.long(), lengths.long()
        x = (self.item_embedding(states) * self.real(states, lengths)).transpose(1, 2)  # [B, H, L]
        pooled = [F.relu(conv(x)).amax(-1) for conv in self.horizontal]  # each [B, filters]
        vertical = F.relu(self.vertical(x).squeeze(-1))  # [B, H]
        return self.drop(torch.cat([*pooled, vertical], 1))
