"""d3rlpy-style estimator evaluators: checks of a run's value estimates that need no simulator.

On real logs there is no simulator to roll forward, so the overestimation study
(``METHOD.md`` → what the kit must show) needs checks computed from the logged
transitions alone. These are the offline-RL library d3rlpy's evaluators, adapted to the
kit's two kinds of value (``Algo.value_kind``):

- **Q-type** (SQN, SAC, SNQN, SA2C: ``q_values(states, lengths)`` gives ``Q(s, ·)`` over
  all items). Their Q bootstraps on ``max_a``, so every figure below is an estimate of
  the *greedy* policy ``argmax_a Q(s, a)``;
- **V-type** (MCRL: ``values(states, lengths, actions)`` gives ``V(s)``, the action
  unused). Its V is a TD(0) estimate of the *logging* (behaviour) policy's value.

The estimators read the run's own values:

- :func:`average_value` — Q-type ``mean_s max_a Q(s, a)``; V-type ``mean_s V(s)``;
- :func:`initial_state_value` — the same over the sessions' first events (``step == 0``);
- :func:`td_error` — Q-type ``mean (Q(s, a_t) − r_t − γ (1 − done) max_a Q(s′, a))²``;
  V-type ``mean (V(s) − r_t − γ (1 − done) V(s′))²``;

and :func:`fqe`, Fitted Q Evaluation (Le, Voloshin & Yue 2019; d3rlpy's ``FQE``): a
fresh Q network fitted by TD to the value of a *given* policy on the training
transitions — meaningful for any policy, value-based run or not. Like for like
(``METHOD.md``): a Q-type run's ``initial_state_value`` is compared with the FQE of its
greedy policy (:func:`greedy_policy`), a V-type run's with the logged Monte-Carlo return
at the first events (the behaviour's value, reported beside them); the FQE of the
recommending head (:func:`ranking_policy`) is the value of what the run recommends —
another quantity, reported beside them. :func:`estimator_report` does all of it for a
saved run (``python -m mcrl_kit estimators --run RUN``).

Cost. The Q-type estimators need ``max_a Q`` and so one ``[batch, n_items]`` product
per batch (``q_values``; ``batch_size × n_items`` floats: 1024 × 70k ≈ 290 MB at the
full catalogue — lower ``batch_size`` there); V-type ones need one encoder pass per
state. FQE computes its policy's action once per training next-state and evaluation
first state before it trains (the ranking head's argmax block by block, without the
``[B, n_items]`` logits; a score function without a linear head, popularity and
recency, or the greedy policy's ``q_values``, materialise it per batch), then reads its
own Q only at single actions (the head's rows), so its training steps cost an encoder
pass on ``s`` and one on ``s′`` and no ``[B, n_items]`` product (Adam still updates
the ``n_items × hidden`` head and embedding each step). At the tiny scale (GRU, one CPU
thread) a step takes about 30 ms: a minute for the default 2000 steps.

FQE is only as good as the logs' support of the evaluated policy: where π's action was
never logged after a state, ``Q_φ(s′, π(s′))`` is the network's extrapolation. Its
``action_match`` (the share of logged next actions that are π's) says how much of the
estimate rests on data; a few per cent, as for a barely trained run, means mostly
extrapolation.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .algos import Algo
from .config import ModelConfig
from .data import PreparedData
from .data.replay import Batch, ReplayBuffer, mc_returns
from .devices import resolve_device
from .errors import ConfigError
from .evaluate import LinearScores
from .fused import linear_argmax
from .models import build_backbone
from .seeding import torch_generator
from .train import sample_batch, score_fn

#: ``policy(states, lengths) -> actions [B]`` (int64): the one action a policy takes in each state
Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: the algorithms that have value estimates (for the messages)
VALUE_BASED = "sqn, sac, snqn, sa2c or mcrl"


# --- helpers ---------------------------------------------------------------------------
@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode (dropout off) for the block, its mode restored after."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _batches(buffer: ReplayBuffer, batch_size: int, device: torch.device, reward_click: float, reward_buy: float
             ) -> Iterator[Batch]:
    """The buffer's rows in order, ``batch_size`` at a time, on ``device``."""
    for lo in range(0, len(buffer), batch_size):
        yield buffer.batch(torch.arange(lo, min(lo + batch_size, len(buffer))), reward_click, reward_buy, device)


def _require_values(algo: Algo) -> None:
    if not algo.value_based:
        raise ConfigError(
            f"algorithm {algo.name!r}",
            "has no value estimates (average value, initial-state value and TD error read its Q or V)",
            f"estimate a value-based run ({VALUE_BASED}), or use evaluators.fqe for the value of its recommendations",
        )


def _state_value(algo: Algo, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``max_a Q(s, a)`` (Q-type: the greedy policy's value, one [B, n_items] product) or ``V(s)`` (V-type) [B]."""
    if algo.value_kind == "q":
        return algo.q_values(states, lengths).max(1).values.float()
    # V(s) ignores the action; a placeholder keeps the common signature
    return algo.values(states, lengths, torch.zeros_like(lengths)).float()


def _mean(values: list[torch.Tensor]) -> float:
    """The mean of concatenated per-row values (float64); NaN for no rows."""
    joined = torch.cat(values).double() if values else torch.zeros(0, dtype=torch.float64)
    return float(joined.mean()) if len(joined) else math.nan


def initial_rows(buffer: ReplayBuffer) -> ReplayBuffer:
    """The buffer's first events of sessions (``step == 0``: the empty-history state ``s_0``)."""
    return buffer.subset(buffer.step == 0)


# --- the value estimators --------------------------------------------------------------
@torch.inference_mode()
def average_value(algo: Algo, buffer: ReplayBuffer, *, batch_size: int = 1024, device: str | torch.device = "cpu") -> float:
    """Average value estimation (d3rlpy's ``AverageValueEstimationEvaluator``).

    Q-type: ``mean over rows of max_a Q(s_t, a)`` — the value of the greedy policy as
    the run estimates it; an inflated figure is the usual sign of overestimation. V-type:
    ``mean over rows of V(s_t)``.
    """
    _require_values(algo)
    dev = resolve_device(str(device))
    cfg = algo.config
    with _evaluating(algo):
        values = [_state_value(algo, b.state, b.len_state).cpu()
                  for b in _batches(buffer, batch_size, dev, cfg.reward_click, cfg.reward_buy)]
    return _mean(values)


def initial_state_value(algo: Algo, buffer: ReplayBuffer, *, batch_size: int = 1024, device: str | torch.device = "cpu") -> float:
    """Initial-state value estimation (d3rlpy's ``InitialStateValueEstimationEvaluator``).

    Q-type: ``mean over sessions of max_a Q(s_0, a) = Q(s_0, π_greedy(s_0))`` — what the
    run expects its greedy policy to earn over a whole session; V-type: ``mean V(s_0)``,
    the behaviour's expected session return. ``s_0`` = the first event's state
    (``step == 0``, all pads); NaN when the buffer holds no first event.
    """
    return average_value(algo, initial_rows(buffer), batch_size=batch_size, device=device)


@torch.inference_mode()
def td_error(algo: Algo, buffer: ReplayBuffer, *, batch_size: int = 1024, device: str | torch.device = "cpu") -> float:
    """Mean squared TD error (d3rlpy's ``TDErrorEvaluator``), γ and rewards from ``algo.config``.

    Q-type: ``mean (Q(s_t, a_t) − (r_t + γ (1 − done_t) max_a Q(s_{t+1}, a)))²``;
    V-type: ``mean (V(s_t) − (r_t + γ (1 − done_t) V(s_{t+1})))²``.

    Both sides are the run's online estimate: how far it is from its own Bellman
    equation on these transitions (large on held-out data = the values overfit the
    training set). The training targets differ — SQN's double-Q target evaluates the
    argmax with its other network, MCRL's uses its Polyak target V̄ — so this is the
    self-consistency of the estimate the evaluation reads (network 1; the online V).
    """
    _require_values(algo)
    dev = resolve_device(str(device))
    cfg = algo.config
    errors = []
    with _evaluating(algo):
        for b in _batches(buffer, batch_size, dev, cfg.reward_click, cfg.reward_buy):
            value = algo.values(b.state, b.len_state, b.action).float()  # Q(s, a_t) at the row's action only, or V(s)
            y = b.reward + cfg.gamma * (~b.done).float() * _state_value(algo, b.next_state, b.len_next_state)
            errors.append((value - y).pow(2).cpu())
    return _mean(errors)


# --- policies -------------------------------------------------------------------------
def ranking_policy(algo: Algo, device: str | torch.device = "cpu") -> Policy:
    """``π(s) = argmax_a scores(s, a)``: the top item of the run's recommending (ranking) head.

    A linear head (every neural algorithm) is argmaxed block by block
    (``fused.linear_argmax``, no ``[B, n_items]`` logits); other score functions
    (popularity, recency) give their full scores. Ties go to the lowest item id.
    """
    scores = score_fn(algo, resolve_device(str(device)))
    if isinstance(scores, LinearScores):
        return lambda states, lengths: linear_argmax(scores.encode(states, lengths), scores.weight, scores.bias)
    return lambda states, lengths: scores(states, lengths).argmax(-1)


def greedy_policy(algo: Algo) -> Policy:
    """``π(s) = argmax_a Q(s, a)``: the policy a Q-type run's values estimate (one [B, n_items] product)."""
    if not (algo.value_based and algo.value_kind == "q"):
        raise ConfigError(
            f"algorithm {algo.name!r}", "has no per-item action values Q(s, ·), so no greedy policy",
            "use a Q-type run (sqn, sac, snqn or sa2c), or ranking_policy for what the run recommends",
        )
    return lambda states, lengths: algo.q_values(states, lengths).argmax(-1)


@torch.inference_mode()
def policy_actions(algo: Algo, policy: Policy, states: torch.Tensor, lengths: torch.Tensor, *,
                   batch_size: int = 1024, device: str | torch.device = "cpu") -> torch.Tensor:
    """``policy`` at every state, in batches with ``algo`` in eval mode → actions [N] (int64, CPU)."""
    dev = resolve_device(str(device))
    out = []
    with _evaluating(algo):
        for lo in range(0, len(states), batch_size):
            s = states[lo:lo + batch_size].to(dev, torch.long)
            out.append(policy(s, lengths[lo:lo + batch_size].to(dev)).long().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


# --- Fitted Q Evaluation ---------------------------------------------------------------
class FQENet(nn.Module):
    """The FQE network: a backbone of the kit's registry and a linear item head, ``Q(s, a) = w_a · f(s) + b_a``."""

    def __init__(self, model: ModelConfig, n_items: int, state_len: int):
        super().__init__()
        self.backbone = build_backbone(model, n_items, state_len, sparse=False)
        self.head = nn.Linear(self.backbone.out_dim, n_items)

    def q(self, states: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(s, a)`` at one action per row [B]: the head's rows of those actions, no [B, n_items] product."""
        h = self.backbone.encode(states, lengths)
        return (self.head.weight[actions] * h).sum(-1) + self.head.bias[actions]


def fqe(
    algo: Algo,
    data: PreparedData | ReplayBuffer,
    policy: Policy | None = None,
    *,
    split: str = "test",
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    target_every: int = 100,
    model: ModelConfig | None = None,
    seed: int = 0,
    eval_batch_size: int = 1024,
    device: str | torch.device = "cpu",
) -> dict:
    """Fitted Q Evaluation of ``policy`` (default: the run's recommending head, :func:`ranking_policy`).

    A fresh network ``Q_φ`` (``model``: the run's backbone type and hidden size, dropout
    off, so the regression target is a fixed function) is fitted on the *training*
    transitions by TD towards the policy's own Bellman equation::

        y_t  = r_t + γ (1 − done_t) Q_φ̄(s_{t+1}, π(s_{t+1}))       (φ̄: a copy of φ every ``target_every`` steps)
        L    = mean ½ (Q_φ(s_t, a_t) − y_t)²                        (at the logged action; Adam, ``lr``)

    so ``Q_φ → Q^π`` where the logs cover π's actions (elsewhere it extrapolates: see
    ``action_match``). γ and the rewards are ``algo.config``'s. Returned:

    - ``fqe_initial_value``: ``mean over sessions of Q_φ(s_0, π(s_0))`` on ``split`` — the
      estimated expected (discounted) session return of π, the figure FQE exists for;
    - ``fqe_logged_q``: ``mean over rows of Q_φ(s_t, a_t)`` on ``split`` — the value of taking
      the logged action, then following π;
    - ``fqe_loss``: the mean TD loss of the last (up to) 100 steps (has it settled?);
    - ``action_match``: the share of training transitions whose next logged action is
      π's (d3rlpy's ``DiscreteActionMatchEvaluator`` at ``s_{t+1}``): the logs' support
      of π, on which FQE rests.

    ``data`` is a prepared dataset (train on its ``train`` split, evaluate on ``split``)
    or one replay buffer used for both. Deterministic for a ``seed`` on CPU: the network
    is initialised under ``seed``'s own stream (the global RNG forked, so nothing else's
    draws move) and the batches are drawn from another.
    """
    if steps < 1:
        raise ConfigError("fqe steps", f"must be ≥ 1, got {steps}", "give e.g. 2000 (tiny data: a few hundred)")
    if target_every < 1:
        raise ConfigError("fqe target_every", f"must be ≥ 1, got {target_every}", "give e.g. 100")
    dev = resolve_device(str(device))
    cfg = algo.config
    if isinstance(data, ReplayBuffer):
        train_buf = eval_buf = data
    else:
        train_buf, eval_buf = data.replay("train"), data.replay(split)
    policy = policy or ranking_policy(algo, dev)
    # π is fixed: its action at every training next-state and evaluation first state is computed once
    pi_next = policy_actions(algo, policy, train_buf.next_state, train_buf.len_next_state, batch_size=eval_batch_size, device=dev)
    first = initial_rows(eval_buf)
    pi_first = policy_actions(algo, policy, first.state, first.len_state, batch_size=eval_batch_size, device=dev)
    # support: the next logged action is π's (rows i, i+1 of one session; a session's last row has no next)
    cont = ~train_buf.done
    follows = train_buf.action[1:].long() == pi_next[:-1]
    action_match = float(follows[cont[:-1]].double().mean()) if bool(cont[:-1].any()) else math.nan

    model = dataclasses.replace(model or algo.model_config, dropout=0.0, sparse_embedding=False)
    init_seed = int(torch_generator(seed, "fqe", "init").initial_seed())
    with torch.random.fork_rng(devices=[]):  # the CPU RNG only: the network is built on the CPU, then moved
        torch.default_generator.manual_seed(init_seed)
        net = FQENet(model, algo.n_items, algo.state_len)
    net = net.to(dev)
    target = copy.deepcopy(net).requires_grad_(False)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    batches = torch_generator(seed, "fqe", "batches")
    losses: deque[torch.Tensor] = deque(maxlen=100)  # the last steps' losses, for fqe_loss
    net.train()
    for step in range(steps):
        idx = sample_batch(len(train_buf), batch_size, batches)
        b = train_buf.batch(idx, cfg.reward_click, cfg.reward_buy, dev)
        with torch.no_grad():
            y = b.reward + cfg.gamma * (~b.done).float() * target.q(b.next_state, b.len_next_state, pi_next[idx].to(dev))
        loss = 0.5 * (net.q(b.state, b.len_state, b.action) - y).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        if (step + 1) % target_every == 0:
            target.load_state_dict(net.state_dict())
    fqe_loss = float(torch.stack(list(losses)).double().mean())

    net.eval()
    with torch.inference_mode():
        initial = [net.q(s.to(dev, torch.long), n.to(dev), a.to(dev)).float().cpu()
                   for s, n, a in zip(first.state.split(eval_batch_size), first.len_state.split(eval_batch_size),
                                      pi_first.split(eval_batch_size), strict=True)]
        logged = [net.q(b.state, b.len_state, b.action).float().cpu()
                  for b in _batches(eval_buf, eval_batch_size, dev, cfg.reward_click, cfg.reward_buy)]
    return {
        "fqe_initial_value": _mean(initial),
        "fqe_logged_q": _mean(logged),
        "fqe_loss": fqe_loss,
        "action_match": action_match,
        "initial_states": len(first),
        "steps": steps,
    }


# --- a saved run -----------------------------------------------------------------------
#: what each Q-type / V-type figure estimates, and the report's reference for it
ESTIMATES = {
    "q": "the greedy policy argmax_a Q(s, a): compare initial_state_value with fqe_greedy.fqe_initial_value",
    "v": "the logging (behaviour) policy: compare initial_state_value with behaviour_return_initial",
}


def estimator_report(
    run_dir: str | Path,
    split: str = "test",
    *,
    fqe_steps: int = 2000,
    fqe_only: bool = False,
    batch_size: int = 1024,
    device: str = "cpu",
) -> dict:
    """The estimators of a saved run on ``split``, with what each one applies to.

    Value-based runs: :func:`average_value`, :func:`initial_state_value` and
    :func:`td_error`; the logged discounted Monte-Carlo return (``mc_returns``: the
    behaviour policy's value, mean and at first events); :func:`fqe` of the recommending
    head (``fqe``) and, for a Q-type run, of its greedy policy (``fqe_greedy``: the
    like-for-like reference of its Q estimates). ``fqe_steps=0`` skips FQE; the FQE seed
    is the run's. A run without value estimates (popularity, recency, supervised) is
    refused unless ``fqe_only``: FQE of its recommendations is meaningful for any policy.
    ``applies`` names the parts computed and why the others are not.
    """
    from .runs import load_run

    run_dir = Path(run_dir)
    run, algo, data = load_run(run_dir, device)
    if not algo.value_based and not fqe_only:
        raise ConfigError(
            str(run_dir), f"was trained with {run.algo!r}, which has no value estimates (Q or V) to evaluate",
            f"pass a value-based run ({VALUE_BASED}), or --fqe-only (fqe_only=True) for the FQE of its "
            "recommendations alone",
        )
    if fqe_only and fqe_steps < 1:
        raise ConfigError("--fqe-only", f"with --fqe-steps {fqe_steps} leaves nothing to compute", "give --fqe-steps ≥ 1")
    cfg = algo.config
    buffer = data.replay(split)
    kind = algo.value_kind if algo.value_based else None
    report: dict = {"run": str(run_dir), "algo": run.algo, "split": split, "value_kind": kind,
                    "gamma": cfg.gamma, "events": len(buffer), "sessions": len(initial_rows(buffer))}
    applies: dict[str, str] = {}
    if kind and not fqe_only:
        report["average_value"] = average_value(algo, buffer, batch_size=batch_size, device=device)
        report["initial_state_value"] = initial_state_value(algo, buffer, batch_size=batch_size, device=device)
        report["td_error"] = td_error(algo, buffer, batch_size=batch_size, device=device)
        label = "mean max_a Q(s, a)" if kind == "q" else "mean V(s)"
        applies["value estimators"] = f"{label}; they estimate {ESTIMATES[kind]}"
    else:
        applies["value estimators"] = ("not computed: --fqe-only" if kind else
                                       f"not applicable: {run.algo!r} has no value estimates")
    # the behaviour's value from the logs: the reference of a V-type estimate, beside every report
    g = mc_returns(buffer, cfg.gamma, cfg.reward_click, cfg.reward_buy)
    first = (buffer.step == 0).numpy()
    report["behaviour_return"] = float(np.mean(g))
    report["behaviour_return_initial"] = float(np.mean(g[first])) if first.any() else math.nan
    applies["behaviour_return"] = "the logged discounted Monte-Carlo return (the logging policy's value)"
    if fqe_steps > 0:
        common = dict(split=split, steps=fqe_steps, seed=run.train.seed, eval_batch_size=batch_size, device=device)
        report["fqe"] = fqe(algo, data, **common)
        applies["fqe"] = "FQE of the recommending head's top item (what the run recommends)"
        if kind == "q":
            report["fqe_greedy"] = fqe(algo, data, greedy_policy(algo), **common)
            applies["fqe_greedy"] = "FQE of argmax_a Q (the policy the Q estimates are of)"
    else:
        applies["fqe"] = "not computed: fqe_steps = 0"
    report["applies"] = applies
    return report


def format_report(report: dict) -> str:
    """The figures of :func:`estimator_report`, one per line (the ``estimators`` command prints it)."""
    kind = {"q": "Q-type", "v": "V-type", None: "no value estimates"}[report["value_kind"]]
    lines = [f"run: {report['run']} ({report['algo']}, {kind}), split {report['split']}: "
             f"{report['events']} events, {report['sessions']} sessions, gamma {report['gamma']}"]

    def figure(name: str, value) -> None:
        lines.append(f"{name:>28}: {value:.4f}" if isinstance(value, float) else f"{name:>28}: {value}")

    for key in ("average_value", "initial_state_value", "td_error", "behaviour_return", "behaviour_return_initial"):
        if key in report:
            figure(key, report[key])
    for part in ("fqe", "fqe_greedy"):
        for key, value in report.get(part, {}).items():
            figure(f"{part}.{key}", value)
    lines.append("applies:")
    lines += [f"  {part}: {why}" for part, why in report["applies"].items()]
    return "\n".join(lines)


__all__ = [
    "FQENet", "Policy", "average_value", "estimator_report", "format_report", "fqe", "greedy_policy",
    "initial_rows", "initial_state_value", "policy_actions", "ranking_policy", "td_error",
]
