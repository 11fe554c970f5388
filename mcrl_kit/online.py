"""The closed loop: a trained run recommends to fresh simulated users, and what that earns.

Offline metrics (HR@k, NDCG@k on logged sessions) say how well a model predicts what logged
users did; the **online return** says what its recommendations are worth to users who
respond to them (:mod:`mcrl_kit.data.closed_loop`: a slate before every event, taken with a
probability set by its fit, ignored slates make users leave sooner).

- :func:`online_table` — a run's policy (its ranking head's top-k) against the reference
  rows: the logging behaviour (no recommender), popularity and recency, on the same users
  (same seed): per-session reward (Σ r_t: what a session earns, the online value), return
  (Σ γ^t r_t), purchases, clicks, length and the share of slates taken, each with its mean
  and 95 % interval;
- :func:`offline_online` — per run, its offline NDCG@10 beside its online reward;
- :func:`rank_correlation` — Spearman's ρ with a bootstrap interval (offline vs online over
  runs: ``benchmarks/offline_online.py``);
- ``python -m mcrl_kit online --run RUN`` prints the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .algos import Algo
from .data import PreparedData
from .data import simulator as sim
from .data.closed_loop import ItemMap, Recommend, Response, closed_loop, recommender
from .errors import ConfigError
from .experiments import fitted_baseline
from .report import run_label
from .runs import RunConfig, load_run
from .storage import read_json_object

#: the per-session quantities of the online table, in its column order
QUANTITIES = ("reward", "return", "purchases", "clicks", "length", "taken share")


def policy(algo: Algo, data: PreparedData, device: str | torch.device = "cpu") -> Recommend:
    """The algorithm's recommendations: the top-k of its ranking scores (``Algo.scores``), in simulator ids."""
    algo.eval()
    return recommender(algo.scores, ItemMap.of(data), device=str(device))


def reference_policies(data: PreparedData) -> dict[str, Recommend]:
    """Popularity and recency fitted on ``data``'s train split (the trivial baselines as recommenders)."""
    return {name: policy(fitted_baseline(name, data), data) for name in ("popularity", "recency")}


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and a normal 95 % interval over independent sessions."""
    mean = float(np.mean(x))
    half = 1.96 * float(np.std(x, ddof=1)) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return mean, mean - half, mean + half


def summarize_sessions(per_session: pd.DataFrame) -> dict[str, float]:
    """Means and 95 % intervals of one closed-loop run's per-session table."""
    frame = per_session.assign(**{"taken share": per_session["taken"] / per_session["shown"].clip(lower=1)})
    out: dict[str, float] = {"sessions": len(frame)}
    for q in QUANTITIES:
        mean, low, high = _interval(frame[q].to_numpy(np.float64))
        out[q], out[f"{q} low"], out[f"{q} high"] = mean, low, high
    return out


def online_table(
    runs: Mapping[str, str | Path] | str | Path,
    *,
    slate: int = 10,
    sessions: int = 2_000,
    seed: int = 0,
    response: Response | None = None,
    references: bool = True,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """One row per policy: the runs' (label → run folder) and, with ``references``, the logging behaviour,
    popularity and recency, all meeting the same ``sessions`` users of the first run's world.

    The return uses the first run's γ and rewards; runs must share one prepared dataset.
    """
    if isinstance(runs, str | Path):
        runs = {None: runs}
    loaded = [(label, *load_run(folder, device)) for label, folder in runs.items()]
    if not loaded:
        raise ConfigError("online_table", "got no run", "pass a run folder")
    _, first_algo, data = loaded[0][1:]
    for _, config, _, d in loaded[1:]:
        if d.fingerprint != data.fingerprint:
            raise ConfigError(f"run {config.data}", "was trained on other data than the first run",
                              "compare runs of one prepared dataset")
    world = sim.data_world(data, "the closed loop")
    cfg = first_algo.config
    response = response or Response()
    policies: dict[str, Recommend | None] = {}
    if references:
        policies["logging (no recommender)"] = None
        policies.update(reference_policies(data))
    for label, config, algo, _ in loaded:
        policies[label or run_label(config.to_dict())] = policy(algo, data, device)
    rows = []
    for name, recommend in policies.items():
        per_session = closed_loop(
            world, sessions, recommend, slate=slate, response=response, state_len=data.config.state_len,
            gamma=cfg.gamma, reward_click=cfg.reward_click, reward_buy=cfg.reward_buy, seed=seed, progress=progress,
        )
        rows.append({"policy": name, **summarize_sessions(per_session)})
    return pd.DataFrame(rows)


def offline_online(
    runs: Mapping[str, Sequence[str | Path]], *, sessions: int = 2_000, seed: int = 0, response: Response | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """One row per run (``{method: [run folders]}``): its offline test NDCG@10 (purchase, click) beside its
    online reward, purchases and taken share (every run meets the same ``sessions`` users)."""
    rows = []
    for method, folders in runs.items():
        for folder in folders:
            metrics = read_json_object(Path(folder) / "metrics.json", "train it again")["test"]
            config = RunConfig.load(Path(folder) / "config.json")
            table = online_table({method: folder}, sessions=sessions, seed=seed, response=response, references=False,
                                 device=device)
            rows.append({
                "method": method, "seed": config.train.seed, "run": str(folder),
                "offline purchase NDCG@10": metrics["purchase"]["NDCG@10"], "offline click NDCG@10": metrics["click"]["NDCG@10"],
                **{f"online {q}": float(table.loc[0, q]) for q in ("reward", "purchases", "taken share")},
            })
    return pd.DataFrame(rows)


def format_online(table: pd.DataFrame, markdown: bool = False, digits: int = 3) -> str:
    """The online table as text: each quantity as ``mean [low, high]``."""
    from .report import markdown_table

    shown = pd.DataFrame({"policy": table["policy"]})
    for q in QUANTITIES:
        shown[q] = [f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
                    for m, lo, hi in zip(table[q], table[f"{q} low"], table[f"{q} high"])]
    return markdown_table(shown) if markdown else shown.to_string(index=False)


def rank_correlation(x, y, *, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Spearman's ρ of ``x`` and ``y`` with a 95 % bootstrap interval (pairs resampled; ties get mean ranks)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y) or len(x) < 3:
        raise ConfigError("rank_correlation", f"needs two equally long series of ≥ 3 values (got {len(x)}, {len(y)})",
                          "pass one value per run for both")

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
        if ra.std() == 0 or rb.std() == 0:
            return float("nan")
        return float(np.corrcoef(ra, rb)[0, 1])

    rng = np.random.default_rng(seed)
    boots = np.array([rho(x[i], y[i]) for i in rng.integers(0, len(x), size=(n_boot, len(x)))])
    boots = boots[np.isfinite(boots)]
    low, high = np.percentile(boots, [2.5, 97.5]) if len(boots) else (float("nan"), float("nan"))
    return {"rho": rho(x, y), "low": float(low), "high": float(high), "n": len(x)}
