"""Negative samplers: which items play ``a⁻``, the actions the user did not take.

SNQN, SA2C and MCRL score ``K`` negative actions per transition. Which items those are is
a modelling choice with consequences (a uniformly drawn item from a long catalogue is an
easy negative; a popular one, or one from the same batch, is a harder one), so it is a
setting of its own, ``sampler``, next to ``neg`` (K):

| name       | a⁻ drawn from                                                        |
|------------|----------------------------------------------------------------------|
| uniform    | all items except a_t (the reference)                                 |
| popularity | items ∝ their count of logged actions in the **train** split, ≠ a_t  |
| in_batch   | the logged actions of the batch's other rows, ≠ a_t                  |
| unseen     | the items neither in the state s_t (the last L items) nor a_t         |

Every draw is with replacement among the K, never the logged item, and comes from the
algorithm's own CPU ``torch.Generator`` (saved in its ``state_dict``), so a resumed run
draws the same negatives and CPU and GPU runs draw the same items. The popularity counts
are given by the training loop (``Algo.fit`` on the train split's buffer), never read from
validation or test. The samplers that reject (popularity, in_batch, unseen) redraw a
rejected draw up to ``ROUNDS`` times, then fall back to a uniform draw that obeys the same
exclusions (so a batch of one row, or a catalogue dominated by one item, still works).
Under torchrun a rank's batch is its slice of the global batch, and ``in_batch`` draws from
that slice.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..data.replay import Batch
from ..errors import ConfigError

#: redraws of a rejected negative before the exact (per-row masked) fallback
ROUNDS = 8


def uniform_negatives(actions: torch.Tensor, k: int, n_items: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` items per row, uniform over the ``n_items − 1`` items other than the row's action, ``[B, k]`` on CPU."""
    cpu_actions = actions.detach().to("cpu")
    neg = torch.randint(0, n_items - 1, (len(cpu_actions), k), generator=generator)
    return neg + (neg >= cpu_actions[:, None]).long()  # skip the logged item, keep uniformity


class Sampler:
    """Draws ``[B, K]`` negative item ids for a batch: ``draw(batch, k, generator)``."""

    name: ClassVar[str]

    def __init__(self, n_items: int):
        self.n_items = int(n_items)

    def fit(self, counts: torch.Tensor) -> None:
        """The train split's count of logged actions per item (only the popularity sampler reads it)."""

    def draw(self, batch: Batch, k: int, generator: torch.Generator) -> torch.Tensor:
        """``[B, k]`` item ids on the batch's device."""
        actions = batch.action.detach().to("cpu")
        return self._draw(actions, batch, k, generator).to(batch.action.device)

    def _draw(self, actions: torch.Tensor, batch: Batch, k: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _reject(self, neg: torch.Tensor, bad, redraw, allowed, generator: torch.Generator) -> torch.Tensor:
        """Redraw the entries ``bad(neg)`` flags with ``redraw(n)`` up to ROUNDS times; any still flagged get a
        uniform draw among ``allowed(rows) -> [r, n_items] bool`` (the exclusions, exactly)."""
        for _ in range(ROUNDS):
            flagged = bad(neg)
            if not flagged.any():
                return neg
            neg[flagged] = redraw(int(flagged.sum()))
        flagged = bad(neg)
        if flagged.any():
            rows = flagged.any(1).nonzero().squeeze(1)
            mask = allowed(rows)  # [r, n_items]: the items a negative of that row may be
            if not mask.any(1).all():
                raise ConfigError(f"sampler {self.name!r}", "found a row with no item it may draw as a negative",
                                  "use a larger catalogue or the uniform sampler")
            fresh = torch.multinomial(mask.float(), neg.shape[1], replacement=True, generator=generator)
            neg[rows] = torch.where(flagged[rows], fresh, neg[rows])
        return neg


class Uniform(Sampler):
    name = "uniform"

    def _draw(self, actions, batch, k, generator):
        return uniform_negatives(actions, k, self.n_items, generator)


def _not_action(actions: torch.Tensor, n_items: int):
    def allowed(rows: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(len(rows), n_items, dtype=torch.bool)
        mask[torch.arange(len(rows)), actions[rows]] = False
        return mask
    return allowed


class Popularity(Sampler):
    name = "popularity"

    def __init__(self, n_items: int):
        super().__init__(n_items)
        self.probs: torch.Tensor | None = None

    def fit(self, counts: torch.Tensor) -> None:
        counts = counts.detach().to("cpu", torch.float64)
        if counts.shape != (self.n_items,) or counts.sum() <= 0:
            raise ConfigError("the popularity sampler's counts", f"must be {self.n_items} non-negative counts with a "
                              "positive sum", "fit the algorithm on the train split's buffer (the training loop does)")
        self.probs = counts / counts.sum()

    def _draw(self, actions, batch, k, generator):
        if self.probs is None:
            raise ConfigError("sampler 'popularity'", "has no item counts (it was not fitted on the train split)",
                              "train through mcrl_kit.train (which calls algo.fit(train buffer)), or call it yourself")
        probs = self.probs

        def redraw(n: int) -> torch.Tensor:
            return torch.multinomial(probs, n, replacement=True, generator=generator)

        def allowed(rows: torch.Tensor) -> torch.Tensor:  # the popular items ≠ a_t; uniform ≠ a_t if none is left
            mask = _not_action(actions, self.n_items)(rows)
            popular = mask & (probs > 0)[None, :]
            return torch.where(popular.any(1, keepdim=True), popular, mask)

        neg = redraw(len(actions) * k).view(len(actions), k)
        return self._reject(neg, lambda n_: n_ == actions[:, None], redraw, allowed, generator)


class InBatch(Sampler):
    name = "in_batch"

    def _draw(self, actions, batch, k, generator):
        b = len(actions)
        if b < 2:  # no other row to draw from: uniform ≠ a_t, the fallback
            return uniform_negatives(actions, k, self.n_items, generator)
        pick = torch.randint(0, b - 1, (b, k), generator=generator)
        pick += (pick >= torch.arange(b)[:, None]).long()  # another row of the batch, uniformly
        neg = actions[pick]

        def redraw(n: int) -> torch.Tensor:  # a rejected entry (the other row logged a_t too): any row's action
            return actions[torch.randint(0, b, (n,), generator=generator)]

        return self._reject(neg, lambda n_: n_ == actions[:, None], redraw, _not_action(actions, self.n_items), generator)


class Unseen(Sampler):
    name = "unseen"

    def _draw(self, actions, batch, k, generator):
        state = batch.state.detach().to("cpu")  # [B, L]; padding is n_items, never a drawn id

        def bad(neg: torch.Tensor) -> torch.Tensor:
            return (neg == actions[:, None]) | (neg[:, :, None] == state[:, None, :]).any(2)

        def redraw(n: int) -> torch.Tensor:
            return torch.randint(0, self.n_items, (n,), generator=generator)

        def allowed(rows: torch.Tensor) -> torch.Tensor:
            mask = _not_action(actions, self.n_items)(rows)
            seen = state[rows]
            valid = seen < self.n_items
            r = torch.arange(len(rows))[:, None].expand_as(seen)
            mask[r[valid], seen[valid]] = False
            return mask

        neg = uniform_negatives(actions, k, self.n_items, generator)
        return self._reject(neg, bad, redraw, allowed, generator)


SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (Uniform, Popularity, InBatch, Unseen)}


def make_sampler(where: str, name: str, k: int, n_items: int, state_len: int) -> Sampler:
    """The sampler ``name`` for ``k`` negatives per transition from ``n_items`` items, checked against the
    catalogue (``where`` names the config for the message)."""
    if name not in SAMPLERS:
        raise ConfigError(f"{where}.sampler", f"unknown value {name!r}", f"use one of: {', '.join(SAMPLERS)}")
    if k >= n_items:  # negatives are drawn from the n_items − 1 items other than a_t
        raise ConfigError(f"{where}.neg", f"K = {k} negatives but only {n_items} items", f"give neg < {n_items}")
    if name == "unseen" and n_items <= state_len + 1:
        raise ConfigError(f"{where}.sampler", f"'unseen' needs more than state_len + 1 = {state_len + 1} items "
                          f"(this catalogue has {n_items})", "use the uniform sampler")
    return SAMPLERS[name](n_items)


def item_counts(actions: torch.Tensor, n_items: int) -> torch.Tensor:
    """Logged actions per item, ``[n_items]`` (the popularity sampler's input)."""
    return torch.bincount(actions.detach().to("cpu").long(), minlength=n_items)[:n_items]
