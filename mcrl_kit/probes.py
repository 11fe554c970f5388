"""Probes of MCRL's auxiliary models: what the reward and transition models learned.

- :func:`reward_confusion` — the reward model's confusion matrix on logged pairs (click or
  purchase) and sampled negative pairs;
- :func:`transition_similarity` — how close the transition model's prediction ``T(h_t, a)``
  lands to where the user went (``h̄_{t+1}``) or stayed (``h̄_t``).

Notebook 04 draws them. The value estimates themselves are :mod:`mcrl_kit.diagnostics`'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .algos import Algo
from .data import PreparedData
from .errors import ConfigError

CLASSES = ("negative", "click", "purchase")


def _require_mcrl(algo: Algo, what: str) -> None:
    if not hasattr(algo, "reward_probs"):
        raise ConfigError(f"algorithm {algo.name!r}", f"has no {what}", "pass an MCRL run")


def _batches(data: PreparedData, split: str, batch_size: int):
    buffer = data.replay(split)
    for lo in range(0, len(buffer), batch_size):
        idx = torch.arange(lo, min(lo + batch_size, len(buffer)))
        yield buffer.batch(idx)


@torch.inference_mode()
def reward_confusion(algo: Algo, data: PreparedData, split: str = "test", neg: int | None = None, batch_size: int = 1024) -> pd.DataFrame:
    """Counts of (true class, predicted class) of the reward model over a split.

    Each held-out event gives one logged pair (true class click or purchase) and ``neg``
    (default: the run's K) uniformly sampled negative pairs (true class negative), as in
    training; the prediction is the reward model's most probable class.
    """
    _require_mcrl(algo, "reward model")
    k = neg or algo.config.neg
    device = next(algo.parameters()).device
    counts = np.zeros(9, dtype=np.int64)
    was_training = algo.training
    algo.eval()
    try:
        for b in _batches(data, split, batch_size):
            s, n, a = b.state.to(device), b.len_state.to(device), b.action.to(device)
            negatives = algo.sample_negatives(a, k)
            pred = torch.cat([algo.reward_probs(s, n, a).argmax(-1), algo.reward_probs(s, n, negatives).argmax(-1).reshape(-1)])
            true = torch.cat([torch.where(b.is_buy, 2, 1).to(device), torch.zeros(len(a) * k, dtype=torch.long, device=device)])
            counts += np.bincount((true * 3 + pred).cpu().numpy(), minlength=9)
    finally:
        algo.train(was_training)
    return pd.DataFrame(
        counts.reshape(3, 3),
        index=pd.Index(CLASSES, name="true"),
        columns=pd.Index(CLASSES, name="predicted"),
    )


@torch.inference_mode()
def transition_similarity(
    algo: Algo, data: PreparedData, split: str = "test", neg: int | None = None, batch_size: int = 1024
) -> pd.DataFrame:
    """Cosine similarity of the transition model's prediction with where the user went or stayed.

    One row per (pair, target): ``pair`` is ``logged item`` (``T(h_t, a_t)``) or
    ``negative item`` (``T(h_t, a⁻)``); ``target`` is ``next state`` (the target
    encoder's ``h̄_{t+1}``) or ``current state`` (``h̄_t``). Trained as MCRL's InfoNCE
    asks, logged items land near the next state and negatives near the current one.
    """
    _require_mcrl(algo, "transition model")
    k = neg or algo.config.neg
    device = next(algo.parameters()).device
    frames = []
    was_training = algo.training
    algo.eval()
    try:
        for b in _batches(data, split, batch_size):
            s, n, a = b.state.to(device), b.len_state.to(device), b.action.to(device)
            target_next = algo.target_backbone.encode(b.next_state.to(device), b.len_next_state.to(device))
            target_now = algo.target_backbone.encode(s, n)
            pos = algo.predicted_next(s, n, a)  # [B, d]
            negs = algo.predicted_next(s, n, algo.sample_negatives(a, k))  # [B, K, d]
            for pair, pred in (("logged item", pos), ("negative item", negs)):
                for target, h in (("next state", target_next), ("current state", target_now)):
                    ref = h if pred.dim() == 2 else h[:, None, :]
                    cos = F.cosine_similarity(pred, ref, dim=-1).reshape(-1).float().cpu().numpy()
                    frames.append(pd.DataFrame({"pair": pair, "target": target, "cosine": cos}))
    finally:
        algo.train(was_training)
    return pd.concat(frames, ignore_index=True)


@torch.inference_mode()
def value_probe(algo: Algo, data: PreparedData, split: str = "test", neg: int | None = None,
                batch_size: int = 1024) -> pd.DataFrame:
    """Every value MCRL's loss touches, on a split: one row per kind, with mean, min, max and the share
    of values within 1e-3 of the value range's ends (``algo.value_range``, the range of discounted returns).

    Kinds: ``V(h_t)`` (what the diagnostics read), ``V̄(h̄_t+1)`` (the bootstrap and the policy weight),
    ``V(T(h,a_t))`` and ``V(T(h,a⁻))`` (what the conservative term reads, on T's output as V sees
    it), and ``gap = Q̂(h,a⁻) − Q̂(h,a_t)`` (the penalty's margin; below 0 = the data action wins).
    """
    _require_mcrl(algo, "value model")
    k = neg or algo.config.neg
    device = next(algo.parameters()).device
    lo, hi = algo.value_range
    got: dict[str, list[torch.Tensor]] = {n: [] for n in ("V(h_t)", "V̄(h̄_t+1)", "V(T(h,a_t))", "V(T(h,a⁻))", "gap")}
    was_training = algo.training
    algo.eval()
    try:
        for b in _batches(data, split, batch_size):
            s, n, a = b.state.to(device), b.len_state.to(device), b.action.to(device)
            h = algo.backbone.encode(s, n)
            negatives = algo.sample_negatives(a, k)
            h_next = algo.target_backbone.encode(b.next_state.to(device), b.len_next_state.to(device))
            pos, negs = algo._pairs(h, a), algo._pairs(h, negatives)
            v_pos = algo.value(algo.on_scale(algo.transition(pos), h)).squeeze(-1)
            v_neg = algo.value(algo.on_scale(algo.transition(negs), h)).squeeze(-1)
            q_pos = algo.expected_reward(algo.reward(pos)) + algo.config.gamma * v_pos
            q_neg = algo.expected_reward(algo.reward(negs)) + algo.config.gamma * v_neg
            got["V(h_t)"].append(algo.value(h).squeeze(-1))
            got["V̄(h̄_t+1)"].append(algo.target_value(h_next).squeeze(-1))
            got["V(T(h,a_t))"].append(v_pos)
            got["V(T(h,a⁻))"].append(v_neg.reshape(-1))
            got["gap"].append((q_neg - q_pos[:, None]).reshape(-1))
    finally:
        algo.train(was_training)
    rows = []
    for name, parts in got.items():
        x = torch.cat(parts).double().cpu().numpy()
        at_bound = float(np.mean((x <= lo + 1e-3) | (x >= hi - 1e-3))) if name != "gap" else float("nan")
        rows.append({"value": name, "mean": float(x.mean()), "min": float(x.min()), "max": float(x.max()),
                     "share at a bound": at_bound})
    return pd.DataFrame(rows).set_index("value")
