"""Calibrating the simulator's repeat and purchase structure to real logs.

The simulator's behaviour constants (``Scale.p_repeat``, ``p_revisit``, ``buy_last``,
``buy_earlier``, ``buy_logit``) are fitted so that its logs show the real samples' share of
purchases and clicks that repeat the last item or an item of the state
(:func:`mcrl_kit.data.stats.repeat_stats`) and their purchase share.
:func:`fit_behaviour` does the fit; ``tools/calibrate_simulator.py`` runs it for every
scale and prints the constants that ``simulator.SCALES`` records;
``experiments.repeat_table`` puts each scale's statistics beside the real samples' (README,
notebook 02).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from . import simulator
from .stats import repeat_stats

#: the real samples of ``shared/data`` the targets come from (``paths.shared_file`` finds them)
RETAILROCKET_SAMPLE = ("retailrocket_sample_5k_visitors", "sample_events.csv.gz")
YOOCHOOSE_SAMPLE = ("yoochoose_clicks_100k_session_rec", "yoochoose-clicks-100k_train_full.txt.gz")


def log_events(log) -> pd.DataFrame:
    """A simulator :class:`~mcrl_kit.data.schema.EventLog` as ``repeat_stats`` reads it."""
    ev = log.events
    return pd.DataFrame({"session": ev["session_id"].to_numpy(), "item": ev["item_id"].to_numpy(),
                         "is_buy": ev["is_buy"].to_numpy()})


def yoochoose_sample_events(path: str | Path, min_clicks: int = 3) -> pd.DataFrame:
    """The session-rec Yoochoose click sample (tab-separated ``SessionId, ItemId, Time``), sessions with
    ≥ ``min_clicks`` clicks (the protocol's filter), as ``repeat_stats`` reads it (no purchases)."""
    frame = pd.read_csv(path, sep="\t")
    missing = {"SessionId", "ItemId", "Time"} - set(frame.columns)
    if missing:
        raise DataError(str(path), f"lacks the column(s) {', '.join(sorted(missing))}",
                        "pass the session-rec yoochoose-clicks-100k_*.txt file")
    frame = frame.sort_values(["SessionId", "Time"], kind="stable")
    frame = frame[frame["SessionId"].map(frame["SessionId"].value_counts()) >= min_clicks]
    return pd.DataFrame({"session": frame["SessionId"].to_numpy(), "item": pd.factorize(frame["ItemId"])[0],
                         "is_buy": np.zeros(len(frame), np.int8)})


def measure(world: simulator.World, scale: str, sessions: int, seed: int = 0) -> dict[str, float]:
    """The four repeat shares and the purchase share of ``sessions`` simulated in ``world``."""
    events = log_events(simulator.simulate(scale, seed=seed, sessions=sessions, world=world, progress=False))
    shares = repeat_stats(events, simulator.HISTORY, n_boot=1)["share"].to_dict()
    return {**shares, "purchase share": float(events["is_buy"].mean())}


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def fit_behaviour(
    scale: str, targets: dict[str, float], *, sessions: int = 20_000, rounds: int = 12, seed: int = 0,
) -> dict[str, float]:
    """The behaviour constants of ``scale`` whose logs show ``targets``, by simulation.

    ``targets`` holds the four :data:`~mcrl_kit.data.stats.REPEAT_STATS` shares and the
    ``purchase share``. Each round simulates ``sessions`` sessions in the scale's world
    (its items and intents do not depend on these constants), measures, and moves each
    constant by the gap of the statistic it drives most: ``p_repeat`` by the click = last
    item gap, ``p_revisit`` by the rest of the click-in-state gap (both on the scale of
    clicks after a session's first), ``buy_last`` / ``buy_earlier`` likewise for
    purchases, ``buy_logit`` by the gap in log-odds of the purchase share. The last
    rounds' values are averaged (the measurements are noisy). Returns the constants and
    what the fitted world measures (``measured/…``).
    """
    world = simulator.build_world(scale, seed)
    b = simulator.SCALES[scale]
    params = {"p_repeat": 0.3, "p_revisit": 0.05, "buy_last": 0.75, "buy_earlier": 0.05, "buy_logit": b.buy_logit}
    history = []
    for r in range(rounds):
        world.behaviour = dataclasses.replace(b, **{k: v for k, v in params.items() if k != "buy_logit"})
        world.buy_logit = params["buy_logit"]
        m = measure(world, scale, sessions, seed=seed + r)
        later = 1 - sessions / max(1.0, sessions * simulator.SCALES[scale].mean_length)  # clicks after a first
        cl, cs = "click = last item", "click in state"
        pl, ps = "purchase = last item", "purchase in state"
        params["p_repeat"] += (targets[cl] - m[cl]) / later
        params["p_revisit"] += ((targets[cs] - targets[cl]) - (m[cs] - m[cl])) / later
        params["buy_last"] += targets[pl] - m[pl]
        params["buy_earlier"] += (targets[ps] - targets[pl]) - (m[ps] - m[pl])
        params["buy_logit"] += _logit(targets["purchase share"]) - _logit(m["purchase share"])
        for k in ("p_repeat", "p_revisit", "buy_last", "buy_earlier"):
            params[k] = float(np.clip(params[k], 0.0, 0.98))
        params["p_revisit"] = min(params["p_revisit"], 0.98 - params["p_repeat"])
        params["buy_earlier"] = min(params["buy_earlier"], 1.0 - params["buy_last"])
        history.append(dict(params))
    tail = history[-max(1, rounds // 3):]
    fitted = {k: round(float(np.mean([h[k] for h in tail])), 4) for k in params}
    world.behaviour = dataclasses.replace(b, **{k: v for k, v in fitted.items() if k != "buy_logit"})
    world.buy_logit = fitted["buy_logit"]
    check = measure(world, scale, sessions, seed=seed + rounds)
    return {**fitted, **{f"measured/{k}": round(v, 4) for k, v in check.items()}}
