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
   of each primary metric; the support (test clicks and purchases per split seed) under the table, whose
   click columns come first where purchases are scarce (fewer than ``SCARCE`` per split);
4. **online** (simulator data only): each method's first final run recommends to the same fresh simulated
   users (:mod:`mcrl_kit.online`, beside the logging behaviour, popularity and recency) — what its slates
   earn, which offline metrics cannot say.

Everything is cached: a killed study resumes (trials and final runs are run folders), and a second call
with the same settings trains nothing. ``OUT/study.json`` records the settings, the budget per method and
the best parameters; ``OUT/comparison.md`` / ``.csv`` / ``.png`` and ``OUT/intervals.csv`` are the results.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from .algos import algo_class
from .data import PreparedData
from .errors import ConfigError
from .experiments import Study, ensure_run
from .intervals import PRIMARY, format_intervals, paired_bootstrap
from .report import compare_runs, format_compare, grouped_runs, load_run_metrics
from .runs import same_data
from .storage import atomic_path, write_json, write_text
from .tune import Tuner, configured

#: the references the intervals are taken against: the best of these present, and the control
NON_RL = ("popularity", "recency", "sknn", "vsknn", "supervised")
CONTROL = "reward_ce"
#: below this many test purchases per split the table shows its click columns first (purchase metrics then rest on few events)
SCARCE = 100
#: the columns of the Markdown table (the CSV keeps every metric): the primary ones and their HR
SHOWN = ("purchase HR@10", "purchase NDCG@10", "click HR@10", "click NDCG@10")


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
    #: closed-loop users per policy for the online table (simulator data only; 0: no online table)
    online_sessions: int = 2000

    def check(self) -> None:
        for algo in self.algos:
            algo_class(algo)  # unknown names refused before any work
        if not self.split_seeds or not self.seeds:
            raise ConfigError("study", "needs at least one split seed and one init seed", "give e.g. --split-seeds 0 1 2")
        if self.online_sessions < 0:
            raise ConfigError("study --online-sessions", f"is {self.online_sessions}", "give 0 (no online table) or more")


def run_study(datasets: Sequence[PreparedData], plan: StudyPlan, out: str | Path, log: Callable[[str], None] | None = None) -> dict:
    """Tune on ``datasets[0]``, retrain on every dataset (one per split seed) × init seed; write the results.

    Returns ``{"table", "intervals", "best", "budget", "support", "online", "seconds"}`` (frames and dicts; ``online``
    None off the simulator), also written under ``out``. ``log`` (e.g. ``print``) gets a line per trial and final run.
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
                      out=out / "tune", threads=plan.threads, log=log)
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
                started = time.perf_counter()
                finals.append(_final_run(data, algo, best[algo]["params"], seed, plan, out / "final"))
                if log is not None:
                    log(f"final run {len(finals)} of {len(datasets) * len(plan.seeds) * len(plan.algos)}: {algo}, split "
                        f"{_split_seed(data)}, init seed {seed} ({time.perf_counter() - started:.0f} s)")

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
    support = _support(datasets, finals)
    online = _online(out, plan, datasets[0], groups) if plan.online_sessions and datasets[0].config.source == "simulator" else None
    seconds = _seconds(out)
    _write(out, plan, table, intervals, best, budget, datasets, support, online, seconds)
    return {"table": table, "intervals": intervals, "best": best, "budget": budget, "support": support,
            "online": online, "seconds": seconds}


def _support(datasets: Sequence[PreparedData], finals: Sequence[Path]) -> dict[int, dict[str, int]]:
    """Test clicks and purchases per split seed: how many events each metric of the table averages over
    (as the final runs counted them: the time protocol skips some events)."""
    out = {}
    for run in finals:
        config, metrics = load_run_metrics(run)
        if "test" in metrics.get("count", {}):
            for data in datasets:
                if same_data(config, data):
                    out.setdefault(_split_seed(data), {k: int(v) for k, v in metrics["count"]["test"].items()})
    return {seed: out[seed] for seed in (_split_seed(d) for d in datasets) if seed in out}


def _split_seed(data: PreparedData) -> int:
    return data.config.split_seed if data.config.split_seed is not None else data.config.seed


def _online(out: Path, plan: StudyPlan, data: PreparedData, groups) -> pd.DataFrame:
    """The closed-loop table of each method's first final run (cached in ``OUT/online.csv`` with its settings)."""
    from .online import online_table

    runs = {label: next(folder for config, folder in members if same_data(config, data)) for label, members in groups.items()}
    settings = {"sessions": plan.online_sessions, "runs": {k: str(v) for k, v in runs.items()}}
    cache, meta = out / "online.csv", out / "online.json"
    if cache.exists() and meta.exists() and json.loads(meta.read_text(encoding="utf-8")) == settings:
        return pd.read_csv(cache)
    table = online_table(runs, sessions=plan.online_sessions, seed=0)
    with atomic_path(cache) as tmp:
        table.to_csv(tmp, index=False)
    write_json(meta, settings)
    return table


def _seconds(out: Path) -> dict[str, float]:
    """Training seconds summed from every trial's and final run's ``timing.csv`` (each run's own wall time, so a
    study resumed over several sessions adds up its parts, and its idle time between them does not count)."""
    total = {"tune": 0.0, "final": 0.0}
    for part in total:
        for timing in (out / part).glob("**/timing.csv"):
            frame = pd.read_csv(timing)
            total[part] += float(frame["seconds"].iloc[-1]) if len(frame) else 0.0
    return total


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


def _write(out: Path, plan: StudyPlan, table: pd.DataFrame, intervals, best: dict, budget: dict, datasets,
           support: dict, online: pd.DataFrame | None, seconds: dict) -> None:
    protocol = datasets[0].config.protocol
    split = _split_seed(datasets[0])
    where = (f"best configurations reused from `{plan.reuse}` (tuned there, not on this data)" if plan.reuse else
             f"tuned on {'its one split' if protocol == 'time' else f'split seed {split}'}; budget per method: "
             f"{plan.trials} trials × {plan.steps:,} steps "
             "(one trial where there is nothing to search)")
    lines = [
        f"Protocol `{protocol}`; {where}; final runs: {len(datasets)} split × {len(plan.seeds)} init seeds, "
        f"{plan.backbone}, test split.",
        "",
        ("Tuning budget used where the configurations were tuned: " if plan.reuse else "Budget used: ")
        + "; ".join(f"{a} {b['trials']} trials, {b['steps']:,} steps" for a, b in budget.items()) + ".",
        "",
        "Support (test events each metric averages over, per split seed): "
        + "; ".join(f"split {s}: {c.get('click', 0):,} clicks, {c.get('purchase', 0):,} purchases" for s, c in support.items())
        + ".",
        "",
        format_compare(_short(table), markdown=True, digits=3, columns=_shown(support)),
        "",
        "Best configurations (chosen on validation; the CSV's labels carry them too): "
        + "; ".join(f"{a}: {_params(b['params'])}" for a, b in best.items() if b["params"]) + ".",
    ]
    for reference, frame in intervals:
        reference = _short_label(reference)
        lines += ["", f"Difference from {reference} (primary metrics {' and '.join(PRIMARY)}; 95 % paired bootstrap over "
                      f"test sessions, stratified over split seeds; * the interval excludes 0):", "",
                  format_intervals(_short(frame), reference=reference, digits=3)]
    if online is not None:
        from .online import format_online

        lines += ["", f"Online (the closed loop, `mcrl_kit/online.py`): each method's first final run recommends a slate of 10 "
                      f"to the same {plan.online_sessions:,} fresh simulated users; per-session mean [95 % interval]:", "",
                  format_online(online.assign(policy=online["policy"].map(_short_label)), markdown=True)]
    lines += ["", f"Training time, each run's own wall time summed over the runs (longer where runs shared a busy "
                  f"machine): tuning {seconds['tune'] / 3600:.2f} h, final runs {seconds['final'] / 3600:.2f} h."]
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "comparison.md", "\n".join(lines) + "\n")
    with atomic_path(out / "comparison.csv") as tmp:
        table.to_csv(tmp, index=False)
    if intervals:
        with atomic_path(out / "intervals.csv") as tmp:
            pd.concat([frame.assign(reference=reference) for reference, frame in intervals]).to_csv(tmp, index=False)
    write_json(out / "study.json", {"algos": list(plan.algos), "trials": plan.trials, "steps": plan.steps,
                                    "reuse": str(plan.reuse) if plan.reuse else None,
                                    "split_seeds": [_split_seed(d) for d in datasets], "seeds": list(plan.seeds),
                                    "backbone": plan.backbone, "protocol": protocol, "best": best, "budget": budget,
                                    "support": {str(k): v for k, v in support.items()}, "seconds": seconds})
    from .viz.plots import ablation_bars, save_figure

    for metric in PRIMARY:
        fig = ablation_bars(_short(table), metric, f"{metric} per method (test, protocol {protocol})")
        save_figure(fig, f"comparison-{metric.replace(' ', '-').replace('@', '')}", out)


def _short_label(label: str) -> str:
    """``gru-mcrl (lr=…, neg=…)`` → ``gru-mcrl``: one configuration per method in a study, its values listed apart."""
    return label.split(" (", 1)[0]


def _short(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(label=frame["label"].map(_short_label))


def _params(params: dict) -> str:
    return ", ".join(f"{k.removeprefix('algo.')}={v:.3g}" if isinstance(v, float) else f"{k.removeprefix('algo.')}={v}"
                     for k, v in sorted(params.items()))


def _shown(support: dict) -> tuple[str, ...]:
    """The table's columns: clicks first where some split holds fewer than ``SCARCE`` test purchases."""
    scarce = any(c.get("purchase", 0) < SCARCE for c in support.values())
    return tuple(sorted(SHOWN, key=lambda c: not c.startswith("click"))) if scarce else SHOWN


__all__ = ["StudyPlan", "run_study"]
