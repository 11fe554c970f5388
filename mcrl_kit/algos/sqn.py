"""SQN and SAC: a supervised head and a double-Q head on one encoder, twice.

Xin, Karatzoglou, Arapakis, Jose. "Self-Supervised Reinforcement Learning for
Recommender Systems". SIGIR 2020.

A *network* is an encoder ``f`` with two linear heads over all items: the Q head
``Q(s, ·) = W_q f(s) + b_q`` and the self-supervised (CE) head ``W_c f(s) + b_c``. As
the reference code, SQN holds **two whole networks** (own embeddings, own encoders,
both heads) for double Q-learning (van Hasselt, 2010): every step one of them, drawn
at random with the algorithm's generator, is trained (θ) and the other (θ') only
supplies the target::

    a*      = argmax_a Q_θ(s_{t+1}, a)                        (the trained network picks)
    y_t     = r_t + γ (1 − done_t) Q_θ'(s_{t+1}, a*)          (the other evaluates; no gradient)
    L_TD    = ½ (y_t − Q_θ(s_t, a_t))²                        ("td")
    L_CE    = −log softmax(W_c f_θ(s_t))[a_t]                 ("ce")

    SQN     L = mean_batch (L_CE + L_TD)
    SAC     L = mean_batch (w_t L_CE + L_TD),                 ("ce_weighted", mean w_t: "ce_weight")
            w_t = 1 for the first ``switch_step`` steps, then w_t = sg(Q_θ(s_t, a_t))

Items are ranked by the CE head of network 1 (the reference evaluates ``QN_1.output2``);
``values`` / ``q_values`` read network 1's Q head.

Cost per step: one encoder pass per network over ``[s_t ; s_{t+1}]`` (the other's
under ``no_grad``), and only the item-sized products the loss needs — the CE head on
``s_t`` (fused with its softmax, ``mcrl_kit.fused``) and the trained Q head on
``s_{t+1}`` for the argmax (chunked, never a B × n_items tensor); ``Q(s, a)`` at single
actions is read from the head's rows (``q_at``) instead of a B × n_items product.
``mcrl_kit.fused.use_fused(False)`` computes all of them as whole products, the way the
reference does (same values; the bench's ``plain`` variant measures the difference).

As the reference, the targets are computed in training mode (dropout on) and the
other network receives no gradient, so Adam leaves it untouched that step — the
reference's two separate optimisers. One difference: at SAC's switch the reference
moves to a second, fresh Adam; the kit's loop keeps one optimiser, so Adam's moment
estimates carry over the switch.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import ClassVar

import torch
from torch import nn

from ..config import AlgoConfig, ModelConfig, Param
from ..data.replay import Batch
from ..errors import KitWarning
from ..fused import gathered_q, linear_argmax
from ..models import build_backbone
from .base import Algo, budget_steps, check_budget_steps, item_cross_entropy, item_head


@dataclasses.dataclass
class SQNConfig(AlgoConfig):
    """SQN needs only the shared MDP settings: γ (0.5) and the rewards (0.2 click, 1.0 purchase)."""


@dataclasses.dataclass
class SACConfig(SQNConfig):
    SEARCH: ClassVar[dict[str, Param]] = {"switch_step": Param("float", 0.25, 0.9)}  # the switch, as a fraction of the budget
    #: steps of plain ``CE + L_TD`` before the CE is weighted by sg(Q(s, a_t)): a count, a fraction of the
    #: budget in (0, 1), or None: the reference's 15,000, or 3/4 of a shorter budget (``switch_at``)
    switch_step: int | float | None = None

    def validate(self) -> None:
        super().validate()
        check_switch_step(type(self).__name__, self.switch_step)


#: the switch when none is given: the reference's 15,000 steps, or this fraction of a shorter budget
REFERENCE_SWITCH, SWITCH_FRACTION = 15_000, 0.75


def check_switch_step(cls: str, value: int | float | None) -> None:
    check_budget_steps(f"{cls}.switch_step", value, allow_none=True)


def switch_at(algo: Algo) -> int:
    """The step SAC / SA2C switch at: ``switch_step`` resolved against the budget the loop gave."""
    value, total = algo.config.switch_step, algo.total_steps
    if value is None:
        return REFERENCE_SWITCH if total is None else min(REFERENCE_SWITCH, int(SWITCH_FRACTION * total))
    return budget_steps(f"{type(algo.config).__name__}.switch_step", value, total)


def warn_if_never_switching(algo: Algo) -> None:
    """A run whose budget ends before the switch trains the unweighted CE only: say so."""
    at = switch_at(algo)
    if algo.total_steps is not None and at >= algo.total_steps:
        warnings.warn(f"{algo.name} never switches to its weighted CE: switch_step resolves to step {at:,}, the budget "
                      f"is {algo.total_steps:,} steps (give switch_step as a fraction, e.g. 0.75)", KitWarning, stacklevel=3)


# --- the network and the double-Q pieces (snqn.py reuses them) ---------------------------
class QNetwork(nn.Module):
    """One whole network: an encoder with a Q head and a CE head over all items."""

    def __init__(self, model: ModelConfig, n_items: int, state_len: int):
        super().__init__()
        self.backbone = build_backbone(model, n_items, state_len)
        self.q_head = item_head(self.backbone.out_dim, n_items, model)
        self.ce_head = item_head(self.backbone.out_dim, n_items, model)

    def encode(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode(states, lengths)

    def encode_many(self, *inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``f`` of several ``(states, lengths)`` in one encoder pass over their concatenation."""
        states = torch.cat([s for s, _ in inputs])
        lengths = torch.cat([n for _, n in inputs])
        return self.encode(states, lengths).split([len(s) for s, _ in inputs])


def q_at(head: nn.Linear, h: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``Q(s, a) = w_a · h + b_a`` for actions ``[B]`` or ``[B, K]`` → ``[B]`` or ``[B, K]``.

    Reads only the rows of the actions asked for: the same value (and gradient) as
    indexing ``head(h)``, without the B × n_items product. Under
    ``mcrl_kit.fused.use_fused(False)`` it indexes the whole product instead, as the
    reference does (equivalence tests; the bench's ``plain`` variant).
    """
    if not gathered_q():
        q = head(h)  # [B, n_items]
        return q.gather(1, actions) if actions.dim() == 2 else q.gather(1, actions[:, None]).squeeze(1)
    w, b = head.weight[actions], head.bias[actions]
    if actions.dim() == 2:
        h = h[:, None, :]
    return (w * h).sum(-1) + b


def greedy(head: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """``argmax_a Q(s, a)`` over all items ``[B]``: ``head(h).argmax(-1)``, chunk by chunk
    (``mcrl_kit.fused.linear_argmax``: no B × n_items tensor, the same actions)."""
    return linear_argmax(h.detach(), head.weight.detach(), head.bias.detach())


@torch.no_grad()
def double_q_target(
    reward: torch.Tensor, discount: torch.Tensor, a_star: torch.Tensor, other_head: nn.Linear, h_other: torch.Tensor
) -> torch.Tensor:
    """``y = r + discount · Q_other(s, a*)`` with ``a* = argmax_a Q_trained(s, a)`` (trfl's ``double_qlearning`` target).

    ``a_star`` ``[B]``: the trained network's greedy action at the bootstrap state
    (:func:`greedy`: it picks the action); ``h_other``: the other network's encoding of
    the same state (it evaluates the action). ``discount`` ``[B]`` is γ, times
    ``(1 − done)`` where the episode may end.
    """
    return reward + discount * q_at(other_head, h_other, a_star)


def ce_parts(ce: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The CE term of the total and the parts to log, from the per-row CE ``[B]``.

    Plain (``weight`` None): the term is ``ce = mean CE``. Weighted: the term is
    ``ce_weighted = mean(w · CE)``; ``ce`` (unweighted, detached) and ``ce_weight``
    (mean w) are logged only — so every algorithm's ``ce`` curve compares, and the keys
    stay the same on both sides of a switch.
    """
    if weight is None:
        return ce.mean(), {"ce": ce.mean()}
    weighted = (weight * ce).mean()
    return weighted, {"ce": ce.mean().detach(), "ce_weighted": weighted, "ce_weight": weight.mean().detach()}


# --- the algorithms ----------------------------------------------------------------------
class SQN(Algo):
    name = "sqn"
    Config = SQNConfig
    value_based = True
    unused_params = True  # the role swap trains one of the two networks per step

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: SQNConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        # two whole networks: nets[0] is "QN_1" (ranks items), nets[1] is "QN_2"
        self.nets = nn.ModuleList([QNetwork(model, n_items, state_len) for _ in range(2)])

    def draw_trained(self) -> int:
        """Index of the network trained this step (the other supplies the targets)."""
        return int(torch.randint(0, 2, (), generator=self.generator))

    def ce_weight(self, step: int, q_pos: torch.Tensor, q_neg: torch.Tensor | None) -> torch.Tensor | None:
        """Per-row weight of the CE term, or None for the plain CE (SQN, SNQN)."""
        return None

    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        i = self.draw_trained()
        trained, other = self.nets[i], self.nets[1 - i]
        h, h_next = trained.encode_many((batch.state, batch.len_state), (batch.next_state, batch.len_next_state))
        with torch.no_grad():
            h_other_next = other.encode(batch.next_state, batch.len_next_state)
            # y = r + γ (1 − done) Q_θ'(s', argmax_a Q_θ(s', a)): no bootstrap past the session's end
            discount = self.config.gamma * (~batch.done).float()
            y = double_q_target(batch.reward, discount, greedy(trained.q_head, h_next), other.q_head, h_other_next)
        q = q_at(trained.q_head, h, batch.action)  # Q_θ(s_t, a_t)
        td = 0.5 * (y - q).pow(2)
        ce = item_cross_entropy(trained.ce_head, h, batch.action)

        ce_term, parts = ce_parts(ce, self.ce_weight(step, q, None))
        parts["td"] = td.mean()
        parts["total"] = ce_term + parts["td"]
        parts["q_mean"] = q.mean().detach()  # logged only: the overestimation curve
        return parts

    # --- what the evaluation and diagnostics read (network 1, as the reference) ----------
    def ranking_head(self):
        return self.nets[0].encode, self.nets[0].ce_head

    def q_values(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        net = self.nets[0]
        return net.q_head(net.encode(states, lengths))

    def values(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        net = self.nets[0]
        return q_at(net.q_head, net.encode(states, lengths), actions)

    def param_counts(self) -> dict[str, int]:
        counts = super().param_counts()
        # the paper's point: two networks × two item-sized heads
        counts["params_heads"] = sum(
            p.numel() for net in self.nets for head in (net.q_head, net.ce_head) for p in head.parameters()
        )
        return counts


class SAC(SQN):
    """SQN, then the CE weighted by the (stop-gradient) Q of the logged action."""

    name = "sac"
    Config = SACConfig

    def plan(self, total_steps: int) -> None:
        super().plan(total_steps)
        warn_if_never_switching(self)

    def ce_weight(self, step: int, q_pos: torch.Tensor, q_neg: torch.Tensor | None) -> torch.Tensor:
        if step < switch_at(self):
            return torch.ones_like(q_pos)
        return q_pos.detach()  # sg(Q(s_t, a_t)): the actor's weight, no gradient into Q
