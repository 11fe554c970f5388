"""MCRL: Model-enhanced Contrastive Reinforcement Learning for sequential recommendation.

Li et al., "Model-enhanced Contrastive Reinforcement Learning for Sequential
Recommendation", WSDM 2024 (arXiv 2310.16566). The paper's code is not public; what
it states is marked **[paper]**, the kit's reconstruction where it is silent
**[choice]** — each choice is a config field, so it can be switched off and compared
(``METHOD.md``). Notation: ``h_t = f(s_t)`` the online encoder, ``f̄`` its Polyak
average (the target encoder), ``e_a`` the item embedding, ``K`` negatives ``a⁻``
per transition drawn (by default uniformly; ``sampler``, ``samplers.py``) from the items other than ``a_t``.

Networks (one encoder, one item-sized head — far fewer parameters than SQN's two
networks × two heads):

- policy ``π(a|h) = softmax(W h + b)`` — the recommender **[paper]**;
- value ``V(h)`` — one scalar per state **[paper]**, with a target copy ``V̄``;
- reward model ``R(h, a)`` — logits over {negative, click, purchase} **[paper]**;
- transition model ``T(h, a)`` — the next-state embedding **[paper]**.

Loss, term by term (each a key of the dict ``loss`` returns)::

    value        L_V    = mean (V(h_t) − y)²,   y = r_t + γ (1 − done) V̄(h̄_{t+1})       [choice: TD(0)]
                 (conservative="expectile": |τ_e − 1[y < V]| (y − V)², a lower expectile)
    conservative L_C    = mean [ logsumexp_{a ∈ {a_t} ∪ a⁻} Q̂(h_t, a) − Q̂(h_t, a_t) ]      (cql only)
                        + mean (Q̂(h_t, a_t) − y)²                     (the anchor, cql and expectile)
                 Q̂(h, a) = E_R[r | h, a] + γ V(T̃(h, a)),  T̃ = T rescaled to ‖h‖             [choice: CQL over
                 sampled actions with the model-based action value; R and T detached,
                 so the penalty acts on the value function; with the reward model off, r_t and 0
                 stand in for E_R[r]; with the transition model off, h̄_{t+1} and h̄_t for T(h, a)]
                 Soundness (METHOD.md; the first version is anchor="none", transition_scale="none",
                 value_bound="none"): the anchor ties the logged action's Q̂ to its TD target (else the
                 penalty is minimised by inflating V where T(h, a_t) lands); T̃ puts V's input on the
                 encoder's scale (InfoNCE trains T's direction only); V = v_min + (v_max − v_min) σ(·)
                 keeps every value in the range of discounted returns [min(0, r)/(1−γ), max r/(1−γ)].
    reward       L_R    = CE(R(h_t, a_t), click|purchase) and CE(R(h_t, a⁻), negative),
                 averaged over all B (1 + K) pairs                                         [paper: 3 classes]
    transition   L_T    = InfoNCE with cosine / τ: T(h_t, a_t) must pick h̄_{t+1} and
                 T(h_t, a⁻) must pick h̄_t ("a rejected item leaves the user where they
                 were") among the batch's {h̄_{t+1}} ∪ {h̄_t}                             [choice]
                 (transition="mse": squared distance to the same targets)
    policy       L_π    = mean w_t · (−log π(a_t | h_t)),
                 w_t = r_t + γ (1 − done) V̄(h̄_{t+1})                                    [paper: value weight]
                 (policy_weight="advantage": max(0, w_t − V(h_t)); "none": w_t = 1;
                 plain CE for the first ``warmup_steps``; weights divided by their batch
                 mean when ``normalize_weight`` so the step size does not shrink)        [choice]
    total        L = L_π + λ_V L_V + λ_C L_C + λ_R L_R + λ_T L_T

The reward and transition models are auxiliary tasks: their gradients shape the shared
encoder and item embedding. Targets (``V̄``, ``f̄``) follow the online networks by Polyak
averaging with rate ``target_update`` after every step. Recommendation ranks items by
the policy logits.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AlgoConfig, ModelConfig, Param, _choice, _count
from ..data.replay import Batch
from ..errors import ConfigError
from ..models import build_backbone
from .base import Algo, budget_steps, check_budget_steps, item_cross_entropy, item_head, normalized_weights
from .samplers import SAMPLERS, make_sampler

NEGATIVE, CLICK, PURCHASE = 0, 1, 2


@dataclasses.dataclass
class MCRLConfig(AlgoConfig):
    SEARCH: ClassVar[dict[str, Param]] = {
        "lambda_conservative": Param("float", 0.01, 10.0, log=True), "lambda_reward": Param("float", 0.1, 10.0, log=True),
        "lambda_transition": Param("float", 0.1, 10.0, log=True), "temperature": Param("float", 0.05, 1.0, log=True),
        "neg": Param("int", 1, 50, log=True),
    }
    #: K: negative actions per transition
    neg: int = 10
    #: where the negatives come from: uniform (over the items ≠ a_t) | popularity | in_batch | unseen
    #: (``samplers.py``)
    sampler: str = "uniform"
    #: conservative value learning: cql | expectile | none
    conservative: str = "cql"
    #: transition model loss: infonce | mse | none
    transition: str = "infonce"
    #: reward model on (True) or off
    reward_model: bool = True
    #: policy weight: value (the paper: r + γ V̄(s')) | advantage | none (plain CE)
    policy_weight: str = "value"
    #: divide the policy weights by their batch mean (keeps the CE's step size)
    normalize_weight: bool = True
    #: plain cross-entropy for the first steps, as SA2C's warm-up: a count or a fraction of the budget in (0, 1)
    warmup_steps: int | float = 0
    #: λ_V, λ_C, λ_R, λ_T
    lambda_value: float = 1.0
    lambda_conservative: float = 1.0
    lambda_reward: float = 1.0
    lambda_transition: float = 1.0
    #: τ of the InfoNCE transition loss (cosine similarities are divided by it). 0.5 was
    #: the first kit's choice on validation (a one-change-at-a-time search on the uncalibrated
    #: simulator, since removed); `tune` searches it with MCRL's other knobs (``SEARCH``)
    temperature: float = 0.5
    #: τ_e of the expectile value loss (< 0.5 is conservative)
    expectile: float = 0.3
    #: Polyak rate of the target encoder and value head per step
    target_update: float = 0.01
    #: hidden width of the value, reward and transition MLPs
    mlp_hidden: int = 64
    #: soundness (METHOD.md): how the logged action's model-based value is tied to a return.
    #: ``consistency`` adds (Q̂(h, a_t) − y)² to the conservative term; ``target`` puts the TD
    #: target y in place of Q̂(h, a_t) in the penalty; ``none`` is the first version, whose
    #: penalty is minimised by inflating V wherever T(h, a_t) lands
    anchor: str = "consistency"
    #: the scale V reads T's output on: ``encoder`` rescales T(h, a) to ‖h‖ (InfoNCE trains
    #: only its direction, so its norm is arbitrary); ``none`` (the first version) uses it raw
    transition_scale: str = "encoder"
    #: ``sigmoid`` bounds V by construction to [min(0, r_min), r_max] / (1 − γ), the range of
    #: every discounted return; ``none`` (the first version) leaves it a free linear output
    value_bound: str = "sigmoid"

    def validate(self) -> None:
        super().validate()
        _choice("MCRLConfig.conservative", self.conservative, ("cql", "expectile", "none"))
        _choice("MCRLConfig.transition", self.transition, ("infonce", "mse", "none"))
        _choice("MCRLConfig.policy_weight", self.policy_weight, ("value", "advantage", "none"))
        _choice("MCRLConfig.anchor", self.anchor, ("consistency", "target", "none"))
        _choice("MCRLConfig.transition_scale", self.transition_scale, ("encoder", "none"))
        _choice("MCRLConfig.value_bound", self.value_bound, ("sigmoid", "none"))
        if self.neg < 1:
            raise ConfigError("MCRLConfig.neg", f"must be ≥ 1, got {self.neg}", "give the number of negatives, e.g. 10")
        _choice("MCRLConfig.sampler", self.sampler, SAMPLERS)
        check_budget_steps("MCRLConfig.warmup_steps", self.warmup_steps)
        _count("MCRLConfig.mlp_hidden", self.mlp_hidden, 1, example=", e.g. 64")
        for name in ("lambda_value", "lambda_conservative", "lambda_reward", "lambda_transition"):
            if getattr(self, name) < 0:
                raise ConfigError(f"MCRLConfig.{name}", f"must be ≥ 0, got {getattr(self, name)}", "give e.g. 1.0 (0 turns the term off)")
        if self.temperature <= 0:
            raise ConfigError("MCRLConfig.temperature", f"must be > 0, got {self.temperature}", "give e.g. 0.5")
        if not 0 < self.expectile < 1:
            raise ConfigError("MCRLConfig.expectile", f"must lie in (0, 1), got {self.expectile}", "give e.g. 0.3")
        if not 0 < self.target_update <= 1:
            raise ConfigError("MCRLConfig.target_update", f"must lie in (0, 1], got {self.target_update}", "give e.g. 0.01")


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, out))


class ValueHead(nn.Sequential):
    """``V(h)``: an MLP, squashed into ``[v_min, v_max]`` when bounded (no return lies outside it).

    A ``Sequential`` of the same layers as the first version's, so its weights keep their names.
    """

    def __init__(self, inp: int, hidden: int, bounds: tuple[float, float] | None, start: float = 0.0):
        super().__init__(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.bounds = bounds
        if bounds is not None:  # start near ``start`` (the sigmoid's midpoint would be the range's middle)
            lo, hi = bounds
            frac = min(max((start - lo) / (hi - lo), 1e-3), 1 - 1e-3)
            with torch.no_grad():
                self[-1].bias.fill_(float(torch.logit(torch.tensor(frac))))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        u = super().forward(h)
        if self.bounds is None:
            return u
        lo, hi = self.bounds
        return lo + (hi - lo) * torch.sigmoid(u)


class MCRL(Algo):
    name = "mcrl"
    Config = MCRLConfig
    value_based = True
    value_kind = "v"

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: MCRLConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        self.sampler = make_sampler("MCRLConfig", config.sampler, config.neg, n_items, state_len)
        self.backbone = build_backbone(model, n_items, state_len)
        d, e, m = self.backbone.out_dim, model.hidden, config.mlp_hidden
        self.policy = item_head(d, n_items, model)
        r_min, r_max = min(0.0, config.reward_click, config.reward_buy), max(0.0, config.reward_click, config.reward_buy)
        self.value_range = (r_min / (1 - config.gamma), r_max / (1 - config.gamma))
        # a bounded V starts at the value of clicking forever, r_click / (1 − γ): a typical return
        self.value = ValueHead(d, m, self.value_range if config.value_bound == "sigmoid" else None,
                               start=config.reward_click / (1 - config.gamma))
        self.reward = _mlp(d + e, m, 3)
        self.transition = _mlp(d + e, m, d)
        # targets: a Polyak copy of the encoder and the value head, never trained directly
        self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)

    # --- the pieces ----------------------------------------------------------------------
    def action_embedding(self, actions: torch.Tensor) -> torch.Tensor:
        return self.backbone.item_embedding(actions)

    def expected_reward(self, reward_logits: torch.Tensor) -> torch.Tensor:
        """E_R[r | h, a] = P(click) r_click + P(purchase) r_buy (a negative earns 0)."""
        p = reward_logits.softmax(-1)
        return p[..., CLICK] * self.config.reward_click + p[..., PURCHASE] * self.config.reward_buy

    def on_scale(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """T's output as V reads it: rescaled to the encoder's norm ‖h‖ (``transition_scale="encoder"``,
        with the InfoNCE transition loss, which trains only T's direction), else as it is."""
        if self.config.transition_scale != "encoder" or self.config.transition != "infonce":
            return t
        norm = h.detach().norm(dim=-1, keepdim=True)
        return F.normalize(t, dim=-1) * (norm if t.dim() == 2 else norm[:, None])

    def _pairs(self, h: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """[h, e_a] for actions of shape [B] or [B, K] (h broadcast over K)."""
        e = self.action_embedding(actions)
        if actions.dim() == 2:
            h = h[:, None, :].expand(-1, actions.shape[1], -1)
        return torch.cat([h, e], dim=-1)

    # --- the loss, term by term ------------------------------------------------------------
    def loss(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        B = batch.action.shape[0]
        neg = self.negatives(batch, cfg.neg)  # [B, K], never a_t
        h = self.backbone.encode(batch.state, batch.len_state)  # h_t
        with torch.no_grad():
            # one target pass over [s_t ; s_{t+1}]: h̄_t for the negatives, h̄_{t+1} for bootstraps
            both = self.target_backbone.encode(
                torch.cat([batch.state, batch.next_state]), torch.cat([batch.len_state, batch.len_next_state])
            )
            h_bar, h_bar_next = both[:B], both[B:]
            v_next = self.target_value(h_bar_next).squeeze(-1)
            y = batch.reward + cfg.gamma * (~batch.done).float() * v_next  # the TD target = the value weight
        parts: dict[str, torch.Tensor] = {}
        zero = h.new_zeros(())

        # value: TD(0) regression of V(h_t) on y (a lower expectile when conservative="expectile")
        v = self.value(h).squeeze(-1)
        err = y - v
        if cfg.conservative == "expectile":
            weight = torch.abs(cfg.expectile - (err < 0).float())
            parts["value"] = (weight * err.pow(2)).mean()
        else:
            parts["value"] = err.pow(2).mean()

        # reward model: logged pair → click/purchase, negative pairs → negative
        # a_t and its negatives in one embedding lookup: one item-sized embedding gradient, not two
        pairs = self._pairs(h, torch.cat([batch.action[:, None], neg], 1))  # [B, 1 + K, d + e]
        pos_pairs, neg_pairs = pairs[:, 0], pairs[:, 1:]
        r_pos, r_neg = self.reward(pos_pairs), self.reward(neg_pairs)  # [B, 3], [B, K, 3]
        if cfg.reward_model:
            labels = torch.cat([torch.where(batch.is_buy, PURCHASE, CLICK), neg.new_full((B * cfg.neg,), NEGATIVE)])
            logits = torch.cat([r_pos, r_neg.reshape(-1, 3)])
            parts["reward"] = F.cross_entropy(logits, labels)
        else:
            parts["reward"] = zero

        # transition model: T(h_t, a_t) → h̄_{t+1}; T(h_t, a⁻) → h̄_t
        t_pos, t_neg = self.transition(pos_pairs), self.transition(neg_pairs)  # [B, d], [B, K, d]
        if cfg.transition == "infonce":
            keys = F.normalize(torch.cat([h_bar_next, h_bar]), dim=-1)  # [2B, d]: moved, stayed
            q_pos = F.normalize(t_pos, dim=-1) @ keys.T / cfg.temperature  # [B, 2B]
            q_neg = F.normalize(t_neg, dim=-1) @ keys.T / cfg.temperature  # [B, K, 2B]
            rows = torch.arange(B, device=h.device)
            parts["transition"] = 0.5 * (
                F.cross_entropy(q_pos, rows)
                + F.cross_entropy(q_neg.reshape(B * cfg.neg, -1), (rows + B).repeat_interleave(cfg.neg))
            )
        elif cfg.transition == "mse":
            parts["transition"] = 0.5 * (
                (t_pos - h_bar_next).pow(2).sum(-1).mean() + (t_neg - h_bar[:, None]).pow(2).sum(-1).mean()
            )
        else:
            parts["transition"] = zero

        # conservative value learning: CQL over {a_t} ∪ negatives with Q̂ = E[R] + γ V(T̃(h, a)); the
        # anchor ties Q̂(h, a_t) to the TD target under either conservative mode
        if cfg.conservative != "none":
            # a model switched off is untrained: its training targets stand in for it
            # (reward: r_t for a_t, 0 for a negative; next state: h̄_{t+1} for a_t, h̄_t for a negative)
            if cfg.reward_model:
                r_hat_pos, r_hat_neg = self.expected_reward(r_pos.detach()), self.expected_reward(r_neg.detach())
            else:
                r_hat_pos, r_hat_neg = batch.reward, batch.reward.new_zeros(B, cfg.neg)
            if cfg.transition != "none":
                next_pos, next_neg = self.on_scale(t_pos.detach(), h), self.on_scale(t_neg.detach(), h)
            else:
                next_pos, next_neg = h_bar_next, h_bar[:, None].expand(-1, cfg.neg, -1)
            q_pos = r_hat_pos + cfg.gamma * self.value(next_pos).squeeze(-1)  # [B]
            q_neg = r_hat_neg + cfg.gamma * self.value(next_neg).squeeze(-1)  # [B, K]
            # the anchor: Q̂(h, a_t) must be a return estimate, not free to rise (METHOD.md soundness (1))
            parts["anchor"] = (q_pos - y).pow(2).mean() if cfg.anchor == "consistency" else zero
            if cfg.conservative == "cql":
                # anchor="target": the data action's value is its TD target, so only negatives are pushed
                q_data = y if cfg.anchor == "target" else q_pos
                q_hat = torch.cat([q_data[:, None], q_neg], dim=1)  # [B, 1 + K]
                parts["conservative"] = (torch.logsumexp(q_hat, dim=1) - q_hat[:, 0]).mean()
            else:
                parts["conservative"] = zero
        else:
            parts["conservative"] = parts["anchor"] = zero

        # policy: value-weighted cross-entropy over all items
        ce = item_cross_entropy(self.policy, h, batch.action)
        if step < budget_steps("MCRLConfig.warmup_steps", cfg.warmup_steps, self.total_steps) or cfg.policy_weight == "none":
            w = torch.ones_like(ce)
        elif cfg.policy_weight == "value":
            w = y
        else:  # advantage
            w = (y - v.detach()).clamp(min=0.0)
        if cfg.normalize_weight and cfg.policy_weight != "none":
            w = normalized_weights(w)  # the batch mean → 1, guarded (base.normalized_weights)
        parts["policy"] = (w * ce).mean()
        parts["ce"] = ce.mean().detach()  # logged only: the plain CE, comparable across algorithms
        parts["v_mean"] = v.mean().detach()

        parts["total"] = (
            parts["policy"]
            + cfg.lambda_value * parts["value"]
            + cfg.lambda_conservative * (parts["conservative"] + parts["anchor"])
            + cfg.lambda_reward * parts["reward"]
            + cfg.lambda_transition * parts["transition"]
        )
        return parts

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Polyak: θ̄ ← θ̄ + τ (θ − θ̄) for the target encoder and value head."""
        for target, online in ((self.target_backbone, self.backbone), (self.target_value, self.value)):
            t_params, o_params = list(target.parameters()), list(online.parameters())
            torch._foreach_lerp_(t_params, o_params, self.config.target_update)

    # --- what the evaluation, diagnostics and inspector read ----------------------------
    def ranking_head(self):
        return self.backbone.encode, self.policy

    def values(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """V(s): MCRL's value is per state; the logged action does not enter."""
        return self.value(self.backbone.encode(states, lengths)).squeeze(-1)

    def reward_probs(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """P(negative, click, purchase | s, a) from the reward model, shape [B, 3]."""
        h = self.backbone.encode(states, lengths)
        return self.reward(self._pairs(h, actions)).softmax(-1)

    def model_q(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The model-based action value Q̂(s, a) = E_R[r] + γ V(T(h, a)) for actions [B] or [B, K]."""
        h = self.backbone.encode(states, lengths)
        pairs = self._pairs(h, actions)
        nxt = self.on_scale(self.transition(pairs), h)
        return self.expected_reward(self.reward(pairs)) + self.config.gamma * self.value(nxt).squeeze(-1)

    def predicted_next(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """T(h, a): the transition model's next-state embedding for actions [B] → [B, d] or [B, K] → [B, K, d]."""
        return self.transition(self._pairs(self.backbone.encode(states, lengths), actions))

    def param_counts(self) -> dict[str, int]:
        counts = super().param_counts()
        counts["params_policy_head"] = sum(p.numel() for p in self.policy.parameters())
        counts["params_models"] = sum(
            p.numel() for m in (self.value, self.reward, self.transition) for p in m.parameters()
        )
        # the comparison the paper makes: SQN on the same backbone and catalogue (built on
        # the meta device, so no memory is allocated)
        from .sqn import SQN

        with torch.device("meta"):
            sqn = SQN(self.n_items, self.state_len, self.model_config, SQN.Config(), seed=0)
        counts["params_sqn"] = sqn.param_counts()["params"]
        return counts
