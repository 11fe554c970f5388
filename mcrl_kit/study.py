"""A fair comparison as one command (``python -m mcrl_kit study``): tune every method on one budget, retrain
each best configuration over split × init seeds, and write the table, the intervals and a figure.

1. **tune** (:mod:`mcrl_kit.tune`) every listed method on the first split seed's data: the same trials ×
   steps for each, validation only;
2. **retrain** each method's best configuration on every split seed × init seed (``test_metrics`` on:
   these runs alone read test);
3. **compare**: the runs merged per method (mean ± std over split × init seeds) as Markdown and CSV; each
   method's difference from the best non-RL baseline listed (popularity, recency, SKNN, VSKNN or supervised:
   the one whose best trial scored highest on validation) and from the reward-weighted control when it is
   listed, with paired bootstrap intervals stratified over split seeds (:mod:`mcrl_kit.intervals`); a figure
   of each primary metric.

Everything is cached: a killed study resumes (trials and final runs are run folders), and a second call
with the same settings trains nothing. ``OUT/study.json`` records the settings, the budget per method and
the best parameters; ``OUT/comparison.md`` / ``.csv`` / ``.png`` are the results.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .algos import algo_class
from .data import PreparedData
from .errors import ConfigError
from .experiments import Study, ensure_run
from .intervals import PRIMARY, format_intervals, paired_bootstrap
from .report import compare_runs, format_compare, grouped_runs
from .storage import atomic_path, write_json, write_text
from .tune import Tuner, configured

#: the references the intervals are taken against: the best of these present, and the control
NON_RL = ("popularity", "recency", "sknn", "vsknn", "supervised")
CONTROL = "reward_ce"


@dataclasses.dataclass
class StudyPlan:
    """What ``study`` runs: the methods, the tuning budget and the seeds of the final runs."""

    algos: Sequence[str]
    trials: int = 10
    steps: int = 1000
    split_seeds: Sequence[int] = (0, 1, 2)
    seeds: Sequence[int] = (0,)
    backbone: str = "gru"
    batch_size: int = 256
    n_boot: int = 2000
    threads: int | None = None
    #: another study's ``study.json``: its best configurations are retrained here instead of tuning
    #: again (e.g. the RetailRocket sample reusing the `small` simulator's; the table says so)
    reuse: str | Path | None = None

    def check(self) -> None:
        for algo in self.algos:
            algo_class(algo)  # unknown names refused before any work
        if not self.split_seeds or not self.seeds:
            raise ConfigError("study", "needs at least one split seed and one init seed", "give e.g. --split-seeds 0 1 2")


def run_study(datasets: Sequence[PreparedData], plan: StudyPlan, out: str | Path) -> dict:
    """Tune on ``datasets[0]``, retrain on every dataset (one per split seed) × init seed; write the results.

    Returns ``{"table", "intervals", "best", "budget"}`` (frames and dicts), also written under ``out``.
    """
    plan.check()
    out = Path(out)
    best, budget = {}, {}
    reused = _reused(plan) if plan.reuse else {}
    for algo in plan.algos:
        if algo in reused:
            best[algo], budget[algo] = reused[algo]
            continue
        tuner = Tuner(datasets[0], algo, steps=plan.steps, backbone=plan.backbone, batch_size=plan.batch_size,
                      out=out / "tune", threads=plan.threads)
        trials = tuner.run(plan.trials)
        done = trials[trials["state"] != "FAIL"]
        complete = trials[trials["state"] == "COMPLETE"]
        if complete.empty:
            raise ConfigError(f"tuning {algo}", "ended with no complete trial (every one was pruned or failed)",
                              "give more --trials or more --steps")
        row = complete.loc[complete["value"].idxmax()]
        best[algo] = {"params": json.loads(row["params"]), "val": float(row["value"])}
        budget[algo] = {"trials": len(done), "steps": int(done["steps"].sum())}

    finals: list[Path] = []
    for data in datasets:
        for seed in plan.seeds:
            for algo in plan.algos:
                finals.append(_final_run(data, algo, best[algo]["params"], seed, plan, out / "final"))

    table = compare_runs(finals)
    groups = grouped_runs(finals)
    label_of = {members[0][0]["algo"]: label for label, members in groups.items()}
    present = [a for a in NON_RL if a in label_of]
    intervals = []
    if present and len(groups) > 1:  # chosen on validation (the tuning value), never on test
        reference = max(present, key=lambda a: best[a]["val"])
        intervals.append((label_of[reference], paired_bootstrap(groups, label_of[reference], n_boot=plan.n_boot)))
    if CONTROL in label_of and len(groups) > 1:
        intervals.append((label_of[CONTROL], paired_bootstrap(groups, label_of[CONTROL], n_boot=plan.n_boot)))
    _write(out, plan, table, intervals, best, budget, datasets)
    return {"table": table, "intervals": intervals, "best": best, "budget": budget}


def _reused(plan: StudyPlan) -> dict:
    """``{algo: (best, budget)}`` read from ``plan.reuse``; refused unless it tuned every listed method on
    the same steps, backbone and batch (its configurations would not transfer as stated otherwise)."""
    from .storage import read_json_object

    path = Path(plan.reuse)
    fix = f"give the study.json that `python -m mcrl_kit study` wrote (not {path})"
    if not path.exists():
        raise ConfigError(f"--reuse {path}", "does not exist", fix)
    source = read_json_object(path, fix)
    missing = [a for a in plan.algos if a not in source.get("best", {})]
    if missing:
        raise ConfigError(f"--reuse {path}", f"tuned no {', '.join(missing)}", "tune them there first, or leave them out")
    for key, mine in (("steps", plan.steps), ("backbone", plan.backbone)):
        if source.get(key) != mine:
            raise ConfigError(f"--reuse {path}", f"was tuned with {key} {source.get(key)!r}, this study runs {mine!r}",
                              f"give --{key} {source.get(key)}")
    return {a: ({**source["best"][a], "reused_from": str(path)},
                {**source["budget"][a], "reused_from": str(path)}) for a in plan.algos}


def _final_run(data: PreparedData, algo: str, params: dict, seed: int, plan: StudyPlan, root: Path) -> Path:
    """The best configuration retrained on ``data`` with init ``seed`` (test metrics on)."""
    study = Study(data, backbone=plan.backbone, steps=plan.steps, batch_size=plan.batch_size, device="cpu",
                  threads=plan.threads, out=root)
    return ensure_run(configured(study, algo, params, seed), study.root, data=data)


def _write(out: Path, plan: StudyPlan, table: pd.DataFrame, intervals, best: dict, budget: dict, datasets) -> None:
    protocol = datasets[0].config.protocol
    split = datasets[0].config.split_seed if datasets[0].config.split_seed is not None else datasets[0].config.seed
    where = (f"best configurations reused from `{plan.reuse}` (tuned there, not on this data)" if plan.reuse else
             f"tuned on split seed {split}; budget per method: {plan.trials} trials × {plan.steps:,} steps "
             "(one trial where there is nothing to search)")
    lines = [
        f"Protocol `{protocol}`; {where}; final runs: {len(datasets)} split × {len(plan.seeds)} init seeds, "
        f"{plan.backbone}, test split.",
        "",
        "Budget used: " + "; ".join(f"{a} {b['trials']} trials, {b['steps']:,} steps" for a, b in budget.items()) + ".",
        "",
        format_compare(table, markdown=True),
    ]
    for reference, frame in intervals:
        lines += ["", f"Difference from {reference} (primary metrics {' and '.join(PRIMARY)}; 95 % paired bootstrap over "
                      f"test sessions, stratified over split seeds; * the interval excludes 0):", "",
                  format_intervals(frame, reference=reference)]
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "comparison.md", "\n".join(lines) + "\n")
    with atomic_path(out / "comparison.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_json(out / "study.json", {"algos": list(plan.algos), "trials": plan.trials, "steps": plan.steps,
                                    "reuse": str(plan.reuse) if plan.reuse else None,
                                    "split_seeds": list(plan.split_seeds), "seeds": list(plan.seeds),
                                    "backbone": plan.backbone, "protocol": protocol, "best": best, "budget": budget})
    from .viz.plots import ablation_bars, save_figure

    for metric in PRIMARY:
        save_figure(ablation_bars(table, metric), f"comparison-{metric.replace(' ', '-').replace('@', '')}", out)


__all__ = ["StudyPlan", "run_study"]
