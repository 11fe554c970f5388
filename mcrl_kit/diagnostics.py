"""Overestimation diagnostics: predicted values against the returns users produced.

Offline RL from logs overestimates: the logs hold no negative feedback, so nothing
pulls the values of unseen actions down (``METHOD.md`` → the problem). This module
measures it, per held-out event:

- the **predicted value** — ``Q(s_t, a_t)`` of the logged action for the Q-learners
  (SQN, SAC, SNQN, SA2C), ``V(s_t)`` for MCRL — and, where the algorithm has a value
  per item, ``max_a Q(s_t, a)`` (what a greedy bootstrap would use);
- the **discounted Monte-Carlo return** of the logged session from that event,
  ``G_t = Σ_{k≥0} γ^k r_{t+k}`` — a one-sample, unbiased estimate of both ``Q(s_t, a_t)``
  and, under the users' behaviour, ``V(s_t)``;
- on the simulator, the **true expected return** by rolling the simulator forward from
  the logged state (``true_q`` for a Q-value, ``true_v`` for a state value), so the bias
  is measured against the truth, not only against one noisy logged return;
- the **bias**: prediction − MC return (and − truth). Positive = overestimation.

``value_table`` builds the tidy per-event table; ``summarize`` reduces it (mean bias,
its spread, by step in session, by click / purchase); ``diagnose_run`` does both for a
saved run and writes them beside it; ``diagnose_runs`` stacks several runs (seeds pooled
per label). ``mc_returns`` lives with the replay buffer (``data.replay``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .algos import ALGOS, Algo
from .data import PreparedData
from .data.closed_loop import ItemMap, forced_values, recommender
from .data.replay import ReplayBuffer, mc_returns
from .devices import resolve_device
from .errors import ConfigError
from .runs import RunConfig
from .storage import atomic_path, write_json


@torch.inference_mode()
def predicted_values(
    algo: Algo, buffer: ReplayBuffer, batch_size: int = 1024, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """The algorithm's value of each row (Q(s,a_t) or V(s)) and max_a Q(s, a) (NaN if undefined)."""
    if not algo.value_based:
        raise ConfigError(
            f"algorithm {algo.name!r}", "has no value estimates to diagnose",
            f"diagnose a value-based run: {', '.join(n for n, c in ALGOS.items() if c.value_based)}",
        )
    was_training = algo.training
    algo.eval()
    has_q = algo.value_kind == "q"
    values, maxes = [], []
    try:
        for lo in range(0, len(buffer), batch_size):
            sl = slice(lo, lo + batch_size)
            s = buffer.state[sl].to(device, torch.long)
            n = buffer.len_state[sl].to(device)
            a = buffer.action[sl].to(device, torch.long)
            if has_q:
                q = algo.q_values(s, n)
                values.append(q.gather(1, a[:, None]).squeeze(1).float().cpu())
                maxes.append(q.max(1).values.float().cpu())
            else:
                values.append(algo.values(s, n, a).float().cpu())
    finally:
        algo.train(was_training)
    value = torch.cat(values).double().numpy() if values else np.zeros(0)
    vmax = torch.cat(maxes).double().numpy() if maxes else np.full(len(value), np.nan)
    return value, vmax


def value_table(
    algo: Algo,
    data: PreparedData,
    split: str = "test",
    *,
    true_returns: bool | None = None,
    n_rollouts: int = 64,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per held-out event: session, step, item, reward, value, max_q, MC return, bias.

    ``true_returns`` (default: when the data come from the simulator) adds ``true_value``
    — the simulator's truth for what the estimate estimates — and ``bias_true``:

    - a Q-learner (SQN, SAC, SNQN, SA2C) estimates ``Q(s_t, a_t)`` of its own greedy policy
      (its target is ``r + γ max_a Q(s′, a)``): the truth is the *forced-action value*
      (``data.closed_loop.forced_values``: after ``a_t`` the items consumed are the Q head's
      argmax, purchases and stops by the simulator's rules);
    - MCRL's ``V(s_t)`` is trained on the logged transitions (a behaviour value): the truth
      is the users' own ``V`` (``simulator.true_returns``' ``true_v``).

    ``true_behaviour`` is the behaviour-policy value for both (``true_q`` / ``true_v``).
    """
    cfg = algo.config
    buffer = data.replay(split)
    value, vmax = predicted_values(algo, buffer, batch_size, device)
    g = mc_returns(buffer, cfg.gamma, cfg.reward_click, cfg.reward_buy)
    ev = data.split_events(split)
    table = pd.DataFrame(
        {
            "session": ev["session"].to_numpy(),
            "step": buffer.step.numpy(),
            "item": buffer.action.numpy().astype(np.int64),
            "is_buy": buffer.is_buy.numpy(),
            "reward": buffer.reward(cfg.reward_click, cfg.reward_buy).numpy().astype(np.float64),
            "done": buffer.done.numpy(),
            "value": value,
            "max_q": vmax,
            "mc_return": g,
            "bias": value - g,
        }
    )
    if true_returns is None:
        true_returns = data.config.source == "simulator"
    if true_returns:
        from .data.simulator import true_returns as simulate_returns

        truth = simulate_returns(
            data, split, gamma=cfg.gamma, reward_click=cfg.reward_click, reward_buy=cfg.reward_buy,
            n_rollouts=n_rollouts, seed=seed, progress=progress,
        )
        table["true_behaviour"] = (truth["true_q"] if algo.value_kind == "q" else truth["true_v"]).to_numpy()
        if algo.value_kind == "q":
            greedy = recommender(algo.q_values, ItemMap.of(data), batch_size=batch_size, device=str(device))
            was_training = algo.training
            algo.eval()
            try:
                forced = forced_values(
                    data, split, greedy, gamma=cfg.gamma, reward_click=cfg.reward_click, reward_buy=cfg.reward_buy,
                    n_rollouts=n_rollouts, seed=seed, progress=progress,
                )
            finally:
                algo.train(was_training)
            table["true_value"] = forced["true_forced"].to_numpy()
        else:
            table["true_value"] = table["true_behaviour"]
        table["bias_true"] = table["value"] - table["true_value"]
    return table


STEP_BUCKETS = (0, 1, 2, 3, 5, 10, np.inf)


def _step_bucket(step: pd.Series) -> pd.Series:
    labels = ["0", "1", "2", "3-4", "5-9", "10+"]
    return pd.cut(step, bins=[-0.5, 0.5, 1.5, 2.5, 4.5, 9.5, np.inf], labels=labels)


def summarize(table: pd.DataFrame) -> dict:
    """Mean bias and its spread, overall and by step in session and by event type."""
    out: dict = {
        "events": len(table),
        "mean_value": float(table["value"].mean()),
        "mean_mc_return": float(table["mc_return"].mean()),
        "mean_bias": float(table["bias"].mean()),
        "std_bias": float(table["bias"].std(ddof=1)),
        "mean_abs_bias": float(table["bias"].abs().mean()),
        "overestimated_share": float((table["bias"] > 0).mean()),
        "corr_value_return": float(np.corrcoef(table["value"], table["mc_return"])[0, 1]) if len(table) > 1 else float("nan"),
    }
    if table["max_q"].notna().any():
        out["mean_max_q"] = float(table["max_q"].mean())
    if "true_value" in table:
        out["mean_true_value"] = float(table["true_value"].mean())
        out["mean_bias_true"] = float(table["bias_true"].mean())
        out["std_bias_true"] = float(table["bias_true"].std(ddof=1))
    by_step = bias_by(table, "step")
    out["bias_by_step"] = by_step.set_index("group")["mean_bias"].to_dict()
    by_type = bias_by(table, "event")
    out["bias_by_event"] = by_type.set_index("group")["mean_bias"].to_dict()
    return out


def bias_by(table: pd.DataFrame, by: str = "step") -> pd.DataFrame:
    """Bias grouped by ``step`` (bucketed position in session) or ``event`` (click/purchase)."""
    if by == "step":
        key = _step_bucket(table["step"])
    elif by == "event":
        key = np.where(table["is_buy"], "purchase", "click")
    else:
        raise ConfigError("bias_by", f"unknown grouping {by!r}", "use 'step' or 'event'")
    cols = {"mean_bias": ("bias", "mean"), "std_bias": ("bias", "std"), "events": ("bias", "size"),
            "mean_value": ("value", "mean"), "mean_mc_return": ("mc_return", "mean")}
    if "bias_true" in table:
        cols["mean_bias_true"] = ("bias_true", "mean")
        cols["mean_true_value"] = ("true_value", "mean")
    grouped = table.assign(group=key).groupby("group", observed=True, sort=True).agg(**cols)
    return grouped.reset_index()


def diagnose_run(
    run_dir: str | Path, split: str = "test", *, n_rollouts: int = 64, device: str = "cpu", progress: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Value table and summary of a saved run, written as ``RUN/diagnose_<split>.{parquet,json}``."""
    from .runs import load_run

    run_dir = Path(run_dir)
    run, algo, data = load_run(run_dir, device)
    table = value_table(algo, data, split, n_rollouts=n_rollouts, device=device, progress=progress, seed=run.train.seed)
    summary = {"run": str(run_dir), "algo": run.algo, "split": split, **summarize(table)}
    with atomic_path(run_dir / f"diagnose_{split}.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    write_json(run_dir / f"diagnose_{split}.json", summary)
    return table, summary


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
