"""What a dataset looks like: its statistics beside the published ones, lengths, popularity, the split.

Pure functions from :class:`~mcrl_kit.data.PreparedData` to pandas objects (notebook 02
draws them with :mod:`mcrl_kit.viz`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .prepare import PreparedData, stats_frame
from .split import SPLITS

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


# --- repeats: how much of the next event the history gives away --------------------------
#: the four shares :func:`repeat_stats` measures, as ``(kind of event, where its item is)``
REPEAT_STATS = ("purchase = last item", "purchase in state", "click = last item", "click in state")


def _repeat_parts(events: pd.DataFrame, state_len: int) -> pd.DataFrame:
    """Per session: how many purchases / clicks there are and how many repeat the last item / the state."""
    session = events["session"].to_numpy()
    item = events["item"].to_numpy().astype(np.int64)
    is_buy = events["is_buy"].to_numpy().astype(bool)
    n = len(item)
    new = np.r_[True, session[1:] != session[:-1]] if n else np.zeros(0, bool)
    step = np.arange(n) - np.maximum.accumulate(np.where(new, np.arange(n), 0))
    last = np.zeros(n, bool)
    in_state = np.zeros(n, bool)
    for k in range(1, state_len + 1):  # the state holds the k-th previous item when step >= k
        has = step >= k
        same = np.zeros(n, bool)
        same[k:] = item[k:] == item[:-k]
        hit = has & same
        if k == 1:
            last = hit
        in_state |= hit
    frame = pd.DataFrame({
        "session": session,
        "purchases": is_buy, "purchase = last item": is_buy & last, "purchase in state": is_buy & in_state,
        "clicks": ~is_buy, "click = last item": ~is_buy & last, "click in state": ~is_buy & in_state,
    })
    return frame.groupby("session", sort=False).sum()


def repeat_stats(
    events: pd.DataFrame, state_len: int = 10, *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """The share of purchases and clicks whose item is the last one of the state, or anywhere in it.

    ``events`` has columns ``session``, ``item``, ``is_buy``, sorted by (session, time) —
    ``PreparedData.split_events(split)``, or any log in that shape. The state is the last
    ``state_len`` items before the event (the replay buffer's); a session's first event has
    an empty state, so it repeats nothing. One row per statistic: the share, the events it
    is over, and a 95 % bootstrap interval over sessions (``n_boot`` resamples, seeded).
    """
    missing = [c for c in ("session", "item", "is_buy") if c not in events.columns]
    if missing:
        raise DataError("repeat_stats events", f"lack the column(s) {', '.join(missing)}",
                        "pass PreparedData.split_events(split) or a frame with session, item, is_buy")
    parts = _repeat_parts(events, state_len)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, max(1, len(parts)), size=(n_boot, len(parts))) if len(parts) else None
    rows = []
    for name in REPEAT_STATS:
        total = "purchases" if name.startswith("purchase") else "clicks"
        num, den = parts[name].to_numpy(np.float64), parts[total].to_numpy(np.float64)
        share = num.sum() / den.sum() if den.sum() else float("nan")
        if draws is not None and den.sum():
            sums = den[draws].sum(1)
            boot = num[draws].sum(1)[sums > 0] / sums[sums > 0]  # a resample without such events has no share
            low, high = np.percentile(boot, [2.5, 97.5]) if len(boot) else (float("nan"), float("nan"))
        else:
            low = high = float("nan")
        rows.append({"statistic": name, "share": share, "low": low, "high": high, "events": int(den.sum())})
    return pd.DataFrame(rows).set_index("statistic")
