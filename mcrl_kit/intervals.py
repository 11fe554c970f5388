"""Paired bootstrap intervals: is a method's difference from a reference row more than resampling noise?

Each run saves its test events' ranks (``RUN/ranks_test.npz``: rank clamped at 20, purchase flag,
session). For a method and a reference, both trained on the same data splits:

1. **paired within a split seed**: the runs of one split share their test events; per event,
   the method's gain (e.g. NDCG@10, averaged over its init seeds) minus the reference's;
2. **resampled by session**: a bootstrap draw takes the split's test sessions with replacement,
   and the difference is the mean over the drawn sessions' events of that kind (purchases or
   clicks) — sessions, not events, are the independent units;
3. **stratified over split seeds**: each split is resampled on its own and the draws are
   averaged over splits, so the interval covers the test sessions' noise of every split.

The point estimate is the mean over splits of the observed difference; the interval is the
2.5–97.5 percentile of the bootstrap draws. An interval excluding 0 says the difference is
larger than this noise — not that it would hold on other data, budgets or tunings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .config import KS
from .errors import ConfigError, DataError
from .report import grouped_runs
from .seeding import numpy_rng

#: the metrics every comparison table names first; the rest are descriptive
PRIMARY = ("purchase NDCG@10", "click NDCG@10")


def load_ranks(run: str | Path, split: str = "test") -> dict[str, np.ndarray]:
    """``{"rank", "is_buy", "session"}`` of a run's saved per-event ranks (no pickles)."""
    path = Path(run) / f"ranks_{split}.npz"
    if not path.is_file():
        raise ConfigError(str(run), f"has no ranks_{split}.npz (trained before per-event ranks were saved)",
                          f"write them with `python -m mcrl_kit evaluate --run {run} --split {split}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in ("rank", "is_buy", "session")}
    except (OSError, ValueError, KeyError) as err:
        raise DataError(str(path), f"is not a ranks file of the kit ({err})",
                        f"write it again with `python -m mcrl_kit evaluate --run {run} --split {split}`") from None
    if not len(out["rank"]) == len(out["is_buy"]) == len(out["session"]):
        raise DataError(str(path), "holds arrays of different lengths",
                        f"write it again with `python -m mcrl_kit evaluate --run {run} --split {split}`")
    return out


def event_gain(rank: np.ndarray, column: str) -> np.ndarray:
    """Per-event HR@k or NDCG@k (``column`` as ``"purchase NDCG@10"``) from 0-based ranks."""
    measure, k = column.split(" ")[1].split("@")
    k = int(k)
    if k not in KS or measure not in ("HR", "NDCG"):
        raise ConfigError(f"metric {column!r}", "is not one of the kit's", f"use KIND HR|NDCG@k with k in {KS}")
    hit = rank < k
    return hit.astype(float) if measure == "HR" else np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)


def session_sums(diff: np.ndarray, mask: np.ndarray, session: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per test session: the summed per-event difference over the events of ``mask``, and their count."""
    _, codes = np.unique(session, return_inverse=True)
    n = int(codes.max()) + 1 if len(codes) else 0
    return (np.bincount(codes, weights=np.where(mask, diff, 0.0), minlength=n),
            np.bincount(codes, weights=mask.astype(float), minlength=n))


def bootstrap_means(sums: np.ndarray, counts: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` draws of Σ sums / Σ counts over sessions drawn with replacement (chunked: no n_boot × n matrix)."""
    n = len(sums)
    out = np.empty(n_boot)
    for start in range(0, n_boot, 256):
        stop = min(start + 256, n_boot)
        picks = rng.integers(0, n, (stop - start, n))
        s, c = sums[picks].sum(1), counts[picks].sum(1)
        out[start:stop] = np.divide(s, c, out=np.full(len(s), np.nan), where=c > 0)
    return out


def _by_split(folders: Sequence[tuple[dict, str]]) -> dict[str, list[str]]:
    """Runs keyed by their data's fingerprint (one split seed each; the path where none is recorded)."""
    out: dict[str, list[str]] = {}
    for config, folder in folders:
        out.setdefault(config.get("data_fingerprint") or config["data"], []).append(folder)
    return out


def _mean_gains(folders: Sequence[str], column: str, split: str, load=load_ranks) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-event gain averaged over the runs of one split (which must share their events), and the events."""
    gains, events = [], None
    for folder in folders:
        r = load(folder, split)
        if events is None:
            events = r
        elif not (np.array_equal(r["is_buy"], events["is_buy"]) and np.array_equal(r["session"], events["session"])):
            raise DataError(f"{folder}/ranks_{split}.npz", "holds other test events than the runs of its split",
                            "compare runs trained on the same prepared data")
        gains.append(event_gain(r["rank"], column))
    return np.mean(gains, axis=0), events


def paired_bootstrap(
    groups: Mapping[str, Sequence[tuple[dict, str]]],
    reference: str,
    columns: Sequence[str] = PRIMARY,
    n_boot: int = 2000,
    seed: int = 0,
    split: str = "test",
) -> pd.DataFrame:
    """Each group's difference from ``reference`` per column, with its 95 % paired, stratified bootstrap interval.

    ``groups`` maps a row label to its ``(config, run folder)`` pairs (``report.grouped_runs``). Rows:
    ``label``, then per column ``c``: ``c Δ``, ``c low``, ``c high``, and ``splits`` (split seeds paired).
    """
    if reference not in groups:
        raise ConfigError(f"reference {reference!r}", "is not a row of the table",
                          f"use one of: {', '.join(map(repr, groups))}")
    ref = _by_split(groups[reference])
    loaded: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def load(folder: str, which: str) -> dict[str, np.ndarray]:  # each ranks file read once per call
        if (folder, which) not in loaded:
            loaded[(folder, which)] = load_ranks(folder, which)
        return loaded[(folder, which)]

    rows = []
    for label, members in groups.items():
        if label == reference:
            continue
        mine = _by_split(members)
        common = [key for key in mine if key in ref]
        if not common:
            raise ConfigError(label, f"shares no data split with the reference {reference!r}",
                              "train both on the same prepared data (the same split seeds)")
        row: dict = {"label": label, "splits": len(common)}
        for column in columns:
            kind = column.split(" ")[0]
            observed, draws = [], []
            for i, key in enumerate(sorted(common)):
                gain_m, events = _mean_gains(mine[key], column, split, load)
                gain_r, events_r = _mean_gains(ref[key], column, split, load)
                if not np.array_equal(events["session"], events_r["session"]):
                    raise DataError(label, f"was tested on other events than {reference!r} on one split",
                                    "compare runs trained on the same prepared data")
                mask = events["is_buy"] if kind == "purchase" else ~events["is_buy"]
                sums, counts = session_sums(gain_m - gain_r, mask, events["session"])
                observed.append(sums.sum() / counts.sum() if counts.sum() else np.nan)
                # one stream per (column, split): the same draws for every method, so rows are comparable
                draws.append(bootstrap_means(sums, counts, n_boot, numpy_rng(seed, "bootstrap", column, i)))
            mean_draws = np.mean(draws, axis=0)
            row[f"{column} Δ"] = float(np.mean(observed))
            finite = mean_draws[np.isfinite(mean_draws)]  # a draw without an event of the kind has no mean
            low, high = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
            row[f"{column} low"], row[f"{column} high"] = float(low), float(high)
        rows.append(row)
    return pd.DataFrame(rows)


def compare_intervals(runs: Sequence[str | Path], reference: str, columns: Sequence[str] = PRIMARY,
                      n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """``paired_bootstrap`` over run folders grouped as ``compare`` groups them (seeds merged)."""
    return paired_bootstrap(grouped_runs(runs), reference, columns, n_boot, seed)


def format_intervals(table: pd.DataFrame, columns: Sequence[str] = PRIMARY, reference: str = "", digits: int = 4,
                     count: str = "splits") -> str:
    """``Δ [low, high]`` cells, ``*`` where the interval excludes 0; ``count`` names the table's column shown
    after the model (the split seeds paired, by default)."""
    from .report import markdown_table

    shown = pd.DataFrame({"model": table["label"], count: table[count]})
    for c in columns:
        shown[f"{c} Δ vs {reference}" if reference else f"{c} Δ"] = [
            f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]" + ("*" if lo > 0 or hi < 0 else "")
            for d, lo, hi in zip(table[f"{c} Δ"], table[f"{c} low"], table[f"{c} high"])
        ]
    return markdown_table(shown)


__all__ = ["PRIMARY", "compare_intervals", "event_gain", "format_intervals", "load_ranks", "paired_bootstrap"]
