"""A session as an MDP: the transitions ``(s_t, a_t, r_t, s_{t+1}, done)`` of one session and its returns.

What notebook 01 shows: :func:`example_sessions` picks readable sessions,
:func:`mdp_table` lays one out as transitions with ``γ^t`` and ``G_t``,
:func:`returns_by_gamma` shows how the discount shapes the return.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import DataError
from .prepare import PreparedData
from .replay import mc_returns


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
