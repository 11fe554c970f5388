"""Offline metrics against the closed loop: does a better NDCG@10 mean more value online?

    .venv/bin/python benchmarks/offline_online.py                       # small, GRU, 1,000 steps, seeds 0 1 2
    .venv/bin/python benchmarks/offline_online.py --scale tiny --steps 200 --seeds 0 1 --sessions 500

Trains (or reuses: runs are cached under ``--out``/runs by their settings, so a killed study
resumes) popularity, recency and supervised, SQN, SA2C (advantage-weighted from half the
steps on) and MCRL over the seeds on the calibrated simulator, at the kit's defaults, then
for every run measures

- offline: test purchase and click NDCG@10 (``metrics.json``);
- online: ``--sessions`` fresh users per run in the closed loop (``mcrl_kit.online``: slates of
  10, the default response), mean per-session reward Σ r_t and purchases — every run meets the
  same users (seed 0);
- for value-based runs, the mean estimated value of the test events and its simulator truth
  (``diagnostics.value_table``: Q-learners against their greedy policy's forced-action value,
  MCRL's V against the users' own).

Prints and writes (``--out``/offline_online.{csv,md}, ``figures/offline_online.png``) the
per-run table (seeds pooled per method), Spearman's ρ with a bootstrap 95 % interval over
runs between offline NDCG@10 and online reward and between the estimated values and their
truths, and the online table (``--table-sessions`` users per policy: the logging behaviour,
popularity, recency and each learned method's seed-0 run, with 95 % intervals). Per-run
results are cached beside (``--out``/cache).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from mcrl_kit import experiments, online, paths
from mcrl_kit.diagnostics import value_table
from mcrl_kit.report import markdown_table
from mcrl_kit.storage import write_json
from mcrl_kit.viz import plots


def measure(study: experiments.Study, method: str, folder: Path, sessions: int, cache: Path) -> dict:
    """One run's offline, online and value figures (cached in ``cache``)."""
    path = cache / f"{folder.name}-{sessions}.json"
    if path.exists():
        return json.loads(path.read_text())
    row = online.offline_online({method: [folder]}, sessions=sessions, device=study.device).iloc[0].to_dict()
    _, algo, data = study.load(folder)
    if algo.value_based:
        values = value_table(algo, data, "test", n_rollouts=16, device=study.device)
        row["mean value"], row["mean truth"] = float(values["value"].mean()), float(values["true_value"].mean())
    write_json(path, row)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="small")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sessions", type=int, default=2000, help="closed-loop users per run (the correlations)")
    ap.add_argument("--table-sessions", type=int, default=10000,
                    help="closed-loop users per policy of the online table (seed-0 runs and the references)")
    ap.add_argument("--backbone", default="gru")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="default: build/offline_online")
    args = ap.parse_args()
    out = Path(args.out) if args.out else paths.build_dir() / "offline_online"
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = experiments.load_data("simulator", scale=args.scale)
    study = experiments.Study(data, backbone=args.backbone, steps=args.steps, seeds=args.seeds, device="cpu",
                              threads=args.threads, out=out)
    trivial = {"popularity": "popularity", "recency": "recency"}
    runs = {label: folders[:1] for label, folders in study.train(trivial).items()}  # seeds do not change them
    # supervised, SQN, SA2C (switching to the advantage-weighted CE halfway, as the notebooks) and MCRL
    runs |= study.train({**experiments.baselines(args.steps), "MCRL": "mcrl"})
    rows = [measure(study, label, Path(f), args.sessions, cache) for label, folders in runs.items() for f in folders]
    table = pd.DataFrame(rows)
    corr = []
    for offline in ("offline purchase NDCG@10", "offline click NDCG@10"):
        r = online.rank_correlation(table[offline], table["online reward"])
        corr.append({"x": offline, "y": "online reward", **r})
    valued = table.dropna(subset=["mean value"]) if "mean value" in table else table.iloc[:0]
    if len(valued) >= 3:
        corr.append({"x": "mean estimated value", "y": "mean true value",
                     **online.rank_correlation(valued["mean value"], valued["mean truth"])})
    corr = pd.DataFrame(corr)
    policies = {label: folders[0] for label, folders in runs.items() if label not in ("popularity", "recency")}
    online_rows = online.online_table(policies, sessions=args.table_sessions)
    pooled = table.groupby("method", sort=False)[[c for c in table if c.startswith(("online", "offline"))]].mean()
    minutes = (time.perf_counter() - started) / 60
    header = (f"Offline vs online on the calibrated simulator `{args.scale}`: {args.backbone.upper()} backbone, "
              f"{args.steps} steps per learned run, seeds {' '.join(map(str, args.seeds))}, {args.sessions} closed-loop "
              f"users per run (slate 10, default response); {len(table)} runs; {minutes:.1f} min on this machine.\n")
    online_header = (f"The online table: {args.table_sessions} closed-loop users per policy (the same users for every "
                     "row), the learned methods' seed-0 runs, mean [95 % interval] per session:\n")
    parts = [header, markdown_table(pooled.reset_index().round(4)), markdown_table(corr.round(3))]
    if len(valued):
        by_method = valued.groupby("method", sort=False)[["mean value", "mean truth"]].agg(["mean", "std"])
        by_method.columns = [f"{a} ({b} over seeds)" for a, b in by_method.columns]
        parts.append(markdown_table(by_method.reset_index().round(4)))
    parts += [online_header, online.format_online(online_rows, markdown=True)]
    text = "\n\n".join(parts)
    print(text)
    table.to_csv(out / "offline_online.csv", index=False)
    (out / "offline_online.md").write_text(text + "\n")
    fig = plots.offline_online_plot(table)
    print(f"figure: {plots.save_figure(fig, 'offline_online')}")


if __name__ == "__main__":
    main()
