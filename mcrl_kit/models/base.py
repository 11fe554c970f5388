"""The interface every backbone implements: ``encode(states, lengths) -> h``.

Shape contract (``PROTOCOL.md`` → MDP and replay buffer):

- ``states``  ``[B, L]`` item ids (int64 or int32), right-padded with ``pad = n_items``;
  ``L ≤ state_len`` (Caser needs exactly ``state_len``);
- ``lengths`` ``[B]``, ``1 ≤ lengths ≤ L``: the number of real items; the empty
  history is a length-1 state whose only item is the pad;
- ``h``       ``[B, out_dim]`` float32: the state the algorithms' heads read.

What every backbone guarantees (``tests/test_models.py`` checks each):

- ``h`` is a function of the first ``lengths`` ids only: whatever sits after them
  (pads or any item) changes nothing;
- the pad embedding is multiplied by zero before use, so the pad row of
  :attr:`Backbone.item_embedding` neither matters nor learns — except in GRU4Rec,
  which feeds it to the cell for the empty state as the reference does (its
  ``pad_row_used`` is True: the row is the learned "no history yet" input).

``item_embedding`` is a plain ``nn.Embedding(n_items + 1, hidden)`` initialised
N(0, 0.01) like the reference's ``state_embeddings``; the algorithms reuse it as the
action embedding. ``sparse=True`` gives it sparse gradients (for ``SparseAdam``).
"""

from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """Base class: holds the item embedding, the sizes and two shared helpers."""

    #: ``h`` at ``lengths - 1`` is computed left to right: a prefix gives the same ``h``
    #: whatever follows it, at any ``L ≤ state_len`` (GRU, NextItNet, SASRec; not Caser)
    causal: bool = True
    #: the empty state's ``h`` is computed from the pad row's embedding (GRU4Rec only)
    pad_row_used: bool = False

    def __init__(self, n_items: int, state_len: int = 10, hidden: int = 64, sparse: bool = False):
        super().__init__()
        self.n_items, self.pad, self.state_len, self.hidden = int(n_items), int(n_items), int(state_len), int(hidden)
        self.out_dim = self.hidden
        self.item_embedding = nn.Embedding(self.n_items + 1, self.hidden, sparse=sparse)
        nn.init.normal_(self.item_embedding.weight, 0.0, 0.01)
        # positions 0..L-1, kept so that masks cost no allocation of their own per step
        self.register_buffer("positions", torch.arange(self.state_len), persistent=False)

    def encode(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` ids and ``[B]`` lengths → ``h`` ``[B, out_dim]`` (see the module docstring)."""
        raise NotImplementedError

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encode(states, lengths)

    # --- helpers shared by the subclasses ------------------------------------------------
    def real(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, L, 1]`` float mask: 1 at real items (inside ``lengths`` and not the pad)."""
        inside = self.positions[: states.shape[1]] < lengths[:, None]
        return (inside & (states != self.pad)).unsqueeze(-1).to(self.item_embedding.weight.dtype)

    @staticmethod
    def last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x[b, lengths[b] - 1]`` for ``x`` ``[B, L, D]`` → ``[B, D]``."""
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.shape[-1])
        return x.gather(1, index).squeeze(1)
