"""Tables the notebooks explain: the data's shape, a session as an MDP, MCRL's models at work.

Pure functions from prepared data and trained algorithms to DataFrames; the figures
that draw them are in :mod:`mcrl_kit.viz`.

- data: :func:`stats_table`, :func:`session_lengths`, :func:`item_popularity`, :func:`split_table`,
  :data:`PUBLISHED_STATS`;
- the MDP: :func:`example_sessions`, :func:`mdp_table`, :func:`returns_by_gamma`;
- MCRL's auxiliary models: :func:`reward_confusion` (the reward model's confusion
  matrix on logged and negative pairs), :func:`transition_similarity` (how close the
  transition model's prediction lands to where the user went, or stayed);
- overestimation over several runs: :func:`diagnose_runs` (``diagnostics.diagnose_run``
  per run, stacked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .algos import Algo
from .data import PreparedData, stats_frame
from .data.split import SPLITS
from .diagnostics import diagnose_run, mc_returns, summarize
from .errors import ConfigError, DataError
from .train import RunConfig, resolve_device

# --- the data ------------------------------------------------------------------------
#: the statistics published for the protocol's datasets (``PROTOCOL.md``), for comparison
PUBLISHED_STATS = [
    {"dataset": "RetailRocket (published)", "sessions": 195_523, "items": 70_852, "clicks": 1_176_680, "purchases": 57_269},
    {"dataset": "Yoochoose (published)", "sessions": 200_000, "items": 26_702, "clicks": 1_110_965, "purchases": 43_946},
]
for _row in PUBLISHED_STATS:
    _events = _row["clicks"] + _row["purchases"]
    _row["mean_length"] = round(_events / _row["sessions"], 3)
    _row["purchase_ratio"] = round(_row["purchases"] / _events, 4)


def stats_table(datasets: Sequence[PreparedData], published: bool = True) -> pd.DataFrame:
    """The paper-style statistics of each dataset, then (``published``) the protocol's published figures."""
    return stats_frame([d.stats for d in datasets] + (PUBLISHED_STATS if published else []))


def session_lengths(data: PreparedData) -> pd.Series:
    """Events per session (index: session)."""
    return data.events.groupby("session").size().rename("events")


def item_popularity(data: PreparedData) -> pd.Series:
    """Events per item, most popular first (index: item)."""
    return data.events["item"].value_counts().rename("events")


def split_table(data: PreparedData) -> pd.DataFrame:
    """Sessions, events and purchases of each split (the seeded 80/10/10 cut of sessions)."""
    split_of = data.sessions.set_index("session")["split"]
    ev = data.events.assign(split=split_of.reindex(data.events["session"]).to_numpy())
    rows = []
    for name in SPLITS:
        part = ev[ev["split"] == name]
        rows.append(
            {
                "split": name,
                "sessions": int((data.sessions["split"] == name).sum()),
                "events": len(part),
                "purchases": int(part["is_buy"].sum()),
                "purchase ratio": round(float(part["is_buy"].mean()), 4) if len(part) else float("nan"),
            }
        )
    table = pd.DataFrame(rows)
    table["share of sessions"] = (table["sessions"] / table["sessions"].sum()).round(3)
    return table


# --- a session as an MDP -------------------------------------------------------------
def _session_split(data: PreparedData, session: int) -> str:
    found = data.sessions.loc[data.sessions["session"] == session, "split"]
    if found.empty:
        raise DataError(f"session {session}", "is not in the prepared data", f"pick one of 0..{len(data.sessions) - 1}")
    return str(found.iloc[0])


def example_sessions(data: PreparedData, split: str = "train", n: int = 2, min_length: int = 3, max_length: int = 10) -> list[int]:
    """``n`` readable sessions of ``split``: the first with a purchase, then ones without (deterministic)."""
    ev = data.split_events(split)
    per = ev.groupby("session").agg(length=("item", "size"), buys=("is_buy", "sum"))
    fits = per[(per["length"] >= min_length) & (per["length"] <= max_length)]
    if fits.empty:
        fits = per
    with_buy = fits.index[fits["buys"] > 0].tolist()
    without = fits.index[fits["buys"] == 0].tolist()
    picked = with_buy[:1] + without[: max(0, n - len(with_buy[:1]))]
    picked += [s for s in with_buy[1:] if len(picked) < n]
    return [int(s) for s in picked[:n]]


def _session_rows(data: PreparedData, session: int, split: str | None = None):
    """``(split, replay rows of the session)`` — rows align with ``data.split_events(split)``."""
    split = split or _session_split(data, session)
    buffer = data.replay(split)
    mask = torch.from_numpy(data.split_events(split)["session"].to_numpy() == session)
    if not bool(mask.any()):
        raise DataError(f"session {session}", f"is not in the {split} split", "pick a session of that split")
    return split, buffer.subset(mask)


def mdp_table(
    data: PreparedData, session: int, gamma: float = 0.5, reward_click: float = 0.2, reward_buy: float = 1.0
) -> pd.DataFrame:
    """One session, one row per transition ``(s_t, a_t, r_t, s_{t+1}, done)``, with γ^t and the return.

    States list the real items only (the buffer right-pads them with ``pad = n_items``);
    ``return G_t = r_t + γ G_{t+1}`` is the discounted reward from ``t`` to the session's end.
    """
    _, rows = _session_rows(data, session)
    pad = rows.pad

    def items(states: torch.Tensor) -> list[list[int]]:
        return [[int(i) for i in row if i != pad] for row in states.tolist()]

    reward = rows.reward(reward_click, reward_buy).numpy().astype(float)
    step = rows.step.numpy()
    return pd.DataFrame(
        {
            "t": step,
            "state s_t": items(rows.state),
            "action a_t": rows.action.numpy().astype(int),
            "event": np.where(rows.is_buy.numpy(), "purchase", "click"),
            "reward r_t": reward,
            "next state s_t+1": items(rows.next_state),
            "done": rows.done.numpy(),
            "γ^t": gamma ** step.astype(float),
            "return G_t": mc_returns(rows, gamma, reward_click, reward_buy),
        }
    )


def returns_by_gamma(data: PreparedData, session: int, gammas: Sequence[float] = (0.0, 0.5, 0.9)) -> pd.DataFrame:
    """The return ``G_t`` of every step of a session under several discounts."""
    _, rows = _session_rows(data, session)
    table = pd.DataFrame({"t": rows.step.numpy(), "reward": rows.reward().numpy().astype(float)})
    for g in gammas:
        table[f"G_t (γ={g})"] = mc_returns(rows, g)
    return table


# --- MCRL's auxiliary models ---------------------------------------------------------
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


# --- overestimation over several runs ------------------------------------------------
def diagnose_runs(
    runs: Mapping[str, str | Path | Sequence[str | Path]], split: str = "test", *, n_rollouts: int = 64, device: str = "cpu"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``diagnostics.diagnose_run`` for each run of each label (seeds pooled).

    Returns the stacked per-event value tables (with ``label`` and ``seed``) and one
    ``diagnostics.summarize`` row per label.
    """
    device = str(resolve_device(device))
    tables, rows = [], []
    for label, folders in runs.items():
        folders = [folders] if isinstance(folders, str | Path) else list(folders)
        per_label = []
        for folder in folders:
            table, summary = diagnose_run(folder, split, n_rollouts=n_rollouts, device=device)
            per_label.append(table.assign(label=label, seed=RunConfig.load(Path(folder) / "config.json").train.seed))
        pooled = pd.concat(per_label, ignore_index=True)
        tables.append(pooled)
        flat = {k: v for k, v in summarize(pooled).items() if not isinstance(v, dict)}
        rows.append({"label": label, "algo": summary["algo"], "seeds": len(folders), **flat})
    return pd.concat(tables, ignore_index=True), pd.DataFrame(rows)
