"""What a dataset looks like: its statistics beside the published ones, lengths, popularity, the split.

Pure functions from :class:`~mcrl_kit.data.PreparedData` to pandas objects (notebook 02
draws them with :mod:`mcrl_kit.viz`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

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

