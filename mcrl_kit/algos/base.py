"""The one small interface every algorithm implements.

An algorithm is an ``nn.Module`` holding its networks and whatever randomness it needs
(a ``torch.Generator`` saved in its ``state_dict``, so a resumed run draws the same
negatives and role swaps). The training loop only ever calls:

- ``loss(batch, step) -> {"total": …, <named parts>: …}`` — every term of the paper's
  loss under its own name, so each is logged and plotted;
- ``ranking_head() -> (encode, head)`` — the recommendation logits are ``head(encode(s))``
  (the evaluation ranks with both parts, never materialising the logits); an algorithm
  without such a head (popularity) returns None and overrides
  ``scores(states, lengths) -> [B, n_items]`` instead;
- ``learning_rate(step, base)`` — for schedules such as SA2C's switch;
- ``after_step(step)`` — target-network updates.

Value-based algorithms also expose ``values(states, lengths, actions)`` (the value the
algorithm assigns to the logged action: Q(s, a) for the Q-learners, V(s) for MCRL) and
optionally ``q_values(states, lengths)`` over all items, for the overestimation
diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from ..config import AlgoConfig, ModelConfig
from ..data.prepare import PreparedData
from ..data.replay import Batch, ReplayBuffer
from ..errors import ConfigError
from ..fused import linear_cross_entropy
from ..seeding import torch_generator
from .samplers import Sampler, item_counts, uniform_negatives


class Algo(nn.Module):
    name: ClassVar[str]
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    #: False for algorithms fitted by counting (popularity): the loop skips gradient steps
    trainable: ClassVar[bool] = True
    #: True when ``values`` is defined (the overestimation diagnostics use it)
    value_based: ClassVar[bool] = False
    #: what ``values`` estimates: "q" = Q(s, a_t) of the logged action (with ``q_values``
    #: over all items), "v" = V(s) of the state
    value_kind: ClassVar[str] = "q"
    #: True when a step may leave some trainable parameters without a gradient (SQN's
    #: role swap trains one network per step): DistributedDataParallel must then look
    unused_params: ClassVar[bool] = False
    #: the negative sampler (``samplers.py``) of the algorithms that draw negatives; None otherwise
    sampler: Sampler | None = None
    #: the training budget in steps, which the loop gives (``plan``) before the first step; None outside it
    total_steps: int | None = None

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: AlgoConfig, seed: int = 0):
        super().__init__()
        self.n_items, self.state_len = int(n_items), int(state_len)
        self.model_config, self.config = model, config
        # the algorithm's own randomness (negatives, role swaps), independent of batch sampling
        self.generator = torch_generator(seed, "algo", self.name)

    # --- what every algorithm provides ---------------------------------------------------
    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def scores(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The ranking head on the encoding; an algorithm without one (popularity) overrides this."""
        parts = self.ranking_head()
        if parts is None:
            raise NotImplementedError(f"{self.name} defines neither scores nor ranking_head")
        encode, head = parts
        return head(encode(states, lengths))

    def forward(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """The loss: DistributedDataParallel hooks its gradient averaging on ``forward``."""
        return self.loss(batch, step)

    # --- optional hooks ------------------------------------------------------------------
    def ranking_head(self) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], nn.Linear] | None:
        """``(encode, head)`` when ``scores(s) == head(encode(s))``; None otherwise (popularity)."""
        return None

    def direct_ranks(self) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None:
        """``ranks(states, lengths, target) → rank`` when the algorithm ranks the logged item itself,
        without ``[B, n_items]`` scores (recency); None otherwise."""
        return None

    def values(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no value estimates")

    def q_values(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no per-item action values")

    def learning_rate(self, step: int, base: float) -> float:
        return base

    def plan(self, total_steps: int) -> None:
        """The loop gives the budget before the first step: schedules given as a fraction of it (SA2C's
        switch, MCRL's warm-up) resolve against it (:func:`budget_steps`)."""
        self.total_steps = int(total_steps)

    def after_step(self, step: int) -> None:
        """Called after each optimiser step (target networks, schedules)."""

    def fit(self, buffer: ReplayBuffer, data: PreparedData | None = None) -> None:
        """What an algorithm reads off the training split before (or instead of) gradient steps; the loop
        calls it for every algorithm with the train split's transitions ``buffer``.

        Non-gradient methods (popularity, recency, kNN) are fitted here; ``data`` is the prepared dataset
        the transitions come from (its train split's events, timestamps included, for methods that need
        whole sessions). A gradient algorithm gives its negative sampler the train split's item counts
        (what the popularity sampler draws by) and otherwise ignores it."""
        if self.sampler is not None:
            self.sampler.fit(item_counts(buffer.action, self.n_items))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters (what the paper's tables count) and frozen ones (targets)."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"params": trainable, "params_frozen": frozen}

    # --- helpers for subclasses ----------------------------------------------------------
    def negatives(self, batch: Batch, k: int) -> torch.Tensor:
        """``[B, k]`` negative actions for the batch from the algorithm's sampler (``config.sampler``)."""
        if self.sampler is None:
            raise NotImplementedError(f"{self.name} draws no negatives")
        return self.sampler.draw(batch, k, self.generator)

    def sample_negatives(self, actions: torch.Tensor, k: int) -> torch.Tensor:
        """``k`` items per row drawn uniformly from all items except the row's action (whatever the
        training sampler): the probes' negatives, comparable across samplers.

        As the reference: with replacement among the k, never the logged item. Drawn on
        the CPU generator (so CPU and GPU runs draw the same items), then moved.
        """
        return uniform_negatives(actions, k, self.n_items, self.generator).to(actions.device)

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def check_budget_steps(where: str, value: int | float | None, allow_none: bool = False) -> None:
    """A schedule point given as steps (an integer ≥ 0) or as a fraction of the budget, 0 < f < 1."""
    if value is None and allow_none:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and (
        0 < value < 1 or (value >= 0 and float(value).is_integer()))
    if not ok:
        raise ConfigError(where, f"must be a step count (an integer ≥ 0) or a fraction of the budget in (0, 1), got {value!r}",
                          "give e.g. 15000 or 0.75")


def budget_steps(where: str, value: int | float, total: int | None) -> int:
    """``value`` in steps: itself when a count, ``round(value × total)`` when a fraction of the budget."""
    if 0 < value < 1:
        if total is None:
            raise ConfigError(where, f"is a fraction of the budget ({value}) but the algorithm was not told its budget",
                              "train through mcrl_kit.train, or call algo.plan(total_steps) first")
        return round(value * total)
    return int(value)


def item_head(in_dim: int, n_items: int, model: ModelConfig) -> nn.Linear:
    """An item-sized linear head (scores for every item), initialised as ``model.head_init`` says.

    ``glorot`` is the reference's (TF's ``glorot_uniform`` kernel, zero bias): weights
    U(±√(6 / (d + N))), so at 70,852 items the initial scores are ~30× smaller than under
    PyTorch's default U(±1/√d) — which matters for the first double-Q targets, whose rewards
    are 0.2 and 1.0, and for the bias diagnostics early in training.
    """
    head = nn.Linear(in_dim, n_items)
    if model.head_init == "glorot":
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)
    return head


def normalized_weights(w: torch.Tensor) -> torch.Tensor:
    """``w / mean(w)`` over the batch, so a weighted CE keeps the plain CE's step size. The division
    rescales every weight alike: the ratio between two weights is the weight's own (5 for the control's
    rewards 0.2 / 1.0; about 3 for MCRL's ``r + γV̄(s')`` when V̄ is near 0.4). Guarded: a mean ≤ 1e-6 (all-zero advantages, or
    non-positive rewards) leaves ``w`` as it is rather than dividing by ~0. MCRL's value weight and
    the reward-weighted CE control share it, so the control is normalised exactly as MCRL."""
    mean = w.mean()
    return torch.where(mean > 1e-6, w / mean.clamp(min=1e-6), w)


def item_cross_entropy(head: nn.Linear, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy ``-log softmax(head(h))[target]`` over all items, shape [B].

    Every algorithm's item-sized softmax goes through here, so the one optimised
    implementation serves all of them: :func:`mcrl_kit.fused.linear_cross_entropy`
    makes the logits a cache-sized chunk at a time and never keeps the ``[B, n_items]``
    tensor (same values and gradients; ``mcrl_kit.fused.use_fused(False)`` gives the
    plain ``F.cross_entropy(head(h), target)``).
    """
    return linear_cross_entropy(h, head.weight, head.bias, target)
