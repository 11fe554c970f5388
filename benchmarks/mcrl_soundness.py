"""Is MCRL's value sound? Every value its loss touches, against the simulator's truth, per setting.

    .venv/bin/python benchmarks/mcrl_soundness.py                      # small, GRU, 1,000 steps, seeds 0 1 2
    .venv/bin/python benchmarks/mcrl_soundness.py --scale tiny --steps 300 --seeds 0

Trains (or reuses: cached under ``--out``/runs) MCRL in the first version (``anchor=none,
transition_scale=none, value_bound=none``: the degenerate conservative term review found) and
the sound one (the defaults) with ``conservative`` = cql / expectile / none, then reports on
the test split, mean over seeds (± std):

- ``V(h) − true V``: MCRL's V(s_t) (what the diagnostics read) minus the simulator's true
  value of the users' behaviour from that state (``simulator.true_returns``' ``true_v``);
- ``V(T(h,a_t))``, ``V(T(h,a⁻))``: the values the conservative term reads (``probes.value_probe``)
  and how far they leave the range of discounted returns;
- ``gap``: ``Q̂(h,a⁻) − Q̂(h,a_t)``, the penalty's margin (below 0: the data action wins);
- purchase and click NDCG@10 on test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mcrl_kit import experiments, paths, probes
from mcrl_kit.diagnostics import value_table
from mcrl_kit.report import load_run_metrics, markdown_table

FIRST = {"anchor": "none", "transition_scale": "none", "value_bound": "none"}
SETTINGS = {
    "first version, cql": FIRST,
    "first version, none": {**FIRST, "conservative": "none"},
    "sound, cql": {},
    "sound, expectile": {"conservative": "expectile"},
    "sound, none": {"conservative": "none"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="small")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rollouts", type=int, default=16, help="simulator rollouts per event for the true value")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="default: build/mcrl_soundness")
    ap.add_argument("--table", default=None, help="only print the summary of a CSV this script wrote")
    args = ap.parse_args()
    if args.table:
        print(markdown_table(summary(pd.read_csv(args.table))))
        return
    out = Path(args.out) if args.out else paths.build_dir() / "mcrl_soundness"
    started = time.perf_counter()
    data = experiments.load_data("simulator", scale=args.scale)
    study = experiments.Study(data, backbone="gru", steps=args.steps, seeds=args.seeds, device="cpu",
                              threads=args.threads, out=out)
    runs = study.train({label: ("mcrl", params) for label, params in SETTINGS.items()})
    rows = []
    for label, folders in runs.items():
        for folder in folders:
            _, algo, _ = study.load(folder)
            probe = probes.value_probe(algo, data, "test")
            values = value_table(algo, data, "test", n_rollouts=args.rollouts)
            _, metrics = load_run_metrics(folder, "test")
            row = {"setting": label, "V(h) − true V": float((values["value"] - values["true_value"]).mean())}
            for kind in ("V(T(h,a_t))", "V(T(h,a⁻))", "gap"):
                row[f"{kind} mean"] = probe.loc[kind, "mean"]
            row["V(T(h,a_t)) max"] = probe.loc["V(T(h,a_t))", "max"]
            # bounded V: the largest share of values at a bound (within 1e-3); free V: the share of
            # the four value kinds whose range leaves [0, r_max / (1 − γ)]
            row["share outside [0, r_max/(1−γ)]"] = max(probe.loc[k, "share at a bound"] for k in probe.index[:4]) \
                if algo.config.value_bound == "sigmoid" else float(np.mean(
                    [(probe.loc[k, "min"] < algo.value_range[0]) or (probe.loc[k, "max"] > algo.value_range[1])
                     for k in probe.index[:4]]))
            row["purchase NDCG@10"] = metrics["test"]["purchase"]["NDCG@10"]
            row["click NDCG@10"] = metrics["test"]["click"]["NDCG@10"]
            rows.append(row)
    table = pd.DataFrame(rows)
    minutes = (time.perf_counter() - started) / 60
    print(f"MCRL soundness on the calibrated simulator `{args.scale}`: GRU, {args.steps} steps, seeds "
          f"{' '.join(map(str, args.seeds))}, test split, {args.rollouts} rollouts per event; {minutes:.1f} min.\n")
    print(markdown_table(summary(table)))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "mcrl_soundness.csv", index=False)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Each setting's columns as ``mean ± std`` over seeds (``python benchmarks/mcrl_soundness.py --table CSV``)."""
    grouped = table.drop(columns=["V(T(h,a_t)) max"], errors="ignore").groupby("setting", sort=False)
    mean, std = grouped.mean(), grouped.std()
    return pd.DataFrame({c: [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean[c], std[c])] for c in mean},
                        index=mean.index).reset_index()


if __name__ == "__main__":
    main()
