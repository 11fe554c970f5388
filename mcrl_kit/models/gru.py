"""GRU4Rec (Hidasi et al., ICLR 2016) as the SQN/SA2C reference runs it.

Follows Xin Xin's TensorFlow code: ``tf.nn.dynamic_rnn(GRUCell(64), emb,
sequence_length=len_state)``, one layer, no dropout; the state is the hidden state
after the last real item. ``pack_padded_sequence`` gives exactly that final state; on
this 2-core CPU (batch 256, L = 10, medians of interleaved runs) it trains ~7-13 % and
evaluates ~20 % faster than running all ``L`` steps and gathering the output at
``lengths - 1`` (it skips the padded steps; more so for short histories). On CUDA it
costs one host sync per call for the lengths.

The empty state (one pad) feeds the pad row's embedding to the cell, as the
reference does: that row is the learned "no history yet" input (``pad_row_used``).

Init as TF's GRUCell: Glorot-uniform over its kernels (which act on [x, h]
concatenated), gate biases 1 ("start by not resetting and not updating"), other biases
0. torch's cell applies the reset gate after the recurrent matmul (cuDNN's form), TF's
before it, and has a second bias vector: a known difference of formulation.

Shapes: ``states`` [B, L], ``lengths`` [B] → ``h`` [B, hidden]. ``dropout`` is
accepted for the common signature and unused (the reference has none).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Backbone


class GRU4Rec(Backbone):
    pad_row_used = True

    def __init__(self, n_items: int, state_len: int = 10, hidden: int = 64, dropout: float = 0.1, sparse: bool = False):
        super().__init__(n_items, state_len, hidden, sparse)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        h = hidden
        with torch.no_grad():
            for w in (self.gru.weight_ih_l0, self.gru.weight_hh_l0):
                # rows [r; z] are TF's gate kernel [in + h, 2h], rows [n] its candidate kernel [in + h, h]
                nn.init.uniform_(w[: 2 * h], -math.sqrt(6 / (2 * h + 2 * h)), math.sqrt(6 / (2 * h + 2 * h)))
                nn.init.uniform_(w[2 * h :], -math.sqrt(6 / (2 * h + h)), math.sqrt(6 / (2 * h + h)))
            self.gru.bias_ih_l0.zero_()
            self.gru.bias_ih_l0[: 2 * h] = 1.0
            self.gru.bias_hh_l0.zero_()

    def encode(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, lengths = states.long(), lengths.long()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.item_embedding(states), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        return self.gru(packed)[1][0]  # the last layer's final state, in the input order
