"""Recency: the items of the current session, most recent first, then training popularity.

The strongest trivial baseline on real session logs, where users come back to what they
just looked at (on the RetailRocket sample 58 % of clicks and 75 % of purchases repeat
the last item: ``data.stats.repeat_stats``). No learning: the state's distinct items
ranked by their last occurrence in it (the most recent first — distinct items never tie),
then every other item by its training frequency (:class:`~.popularity.Popularity`'s
counts, ties against the logged item as everywhere in the kit).

It is ranked directly (:meth:`ranks`), from the state's ``L`` items and the popularity
order, without the ``[B, n_items]`` scores: a logged item in the state at recency
position ``p`` has rank ``p``; any other has rank = the state's distinct items + the
items outside the state counted at least as often. :meth:`scores` builds the equivalent
scores for the few callers that want them (the inspector).
"""

from __future__ import annotations

import torch

from .popularity import Popularity


class Recency(Popularity):
    name = "recency"

    def _recency(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(is_last, position)`` per state slot: the slot holds its item's last occurrence; how many distinct
        items of the state come after it (0 = the most recent)."""
        L = states.shape[1]
        slot = torch.arange(L, device=states.device)
        valid = (slot[None, :] < lengths[:, None]) & (states < self.n_items)
        same = states[:, :, None] == states[:, None, :]  # [B, L, L]
        later = slot[None, None, :] > slot[None, :, None]
        is_last = valid & ~(same & later & valid[:, None, :]).any(-1)
        position = (is_last[:, None, :] & later).sum(-1)  # distinct items after each slot
        return is_last, position

    def ranks(self, states: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """0-based rank of ``target`` (how many other items rank above or tie with it), no ``[B, N]`` tensor."""
        ge = self._at_least_as_often()
        is_last, position = self._recency(states, lengths)
        hit = is_last & (states == target[:, None])
        in_state = hit.any(1)
        own = torch.where(hit, position, torch.zeros_like(position)).sum(1)
        count = self.counts[target]
        state_counts = self.counts[states.clamp(max=self.n_items - 1)]
        above = (is_last & (state_counts >= count[:, None])).sum(1)  # state items already counted in _ge
        outside = is_last.sum(1) + ge[target] - above
        return torch.where(in_state, own, outside)

    def _at_least_as_often(self) -> torch.Tensor:
        """For each item, how many other items are counted at least as often (ties count against it).
        One sort of the counts per call (≈ 1 ms at 70k items): nothing cached to go stale after a load."""
        order = torch.sort(self.counts).values
        return (len(self.counts) - torch.searchsorted(order, self.counts, right=False) - 1).long()

    def direct_ranks(self):
        return self.ranks

    def scores(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores that rank as :meth:`ranks`: popularity in [0, 1), the state's items above, most recent highest."""
        base = self.counts / (self.counts.max() + 1)
        out = base.expand(states.shape[0], -1).clone()
        is_last, position = self._recency(states, lengths)
        n = is_last.sum(1, keepdim=True)
        bonus = torch.where(is_last, 1.0 + (n - position).float(), torch.zeros_like(position, dtype=out.dtype))
        rows = torch.arange(states.shape[0], device=states.device)[:, None].expand_as(states)
        keep = is_last
        out[rows[keep], states[keep]] = bonus[keep]
        return out
