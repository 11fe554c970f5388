"""Every method at its documented defaults, on one budget: the README's comparison tables.

    .venv/bin/python benchmarks/comparison.py                       # everything (hours on 2 cores)
    .venv/bin/python benchmarks/comparison.py --part main --shard 0/2 &  # two processes, one core each
    .venv/bin/python benchmarks/comparison.py --part main --shard 1/2
    .venv/bin/python benchmarks/comparison.py --report [--readme]  # tables from the runs done so far

Three parts, each a list of runs cached under ``--out``/runs (default ``benchmarks/results/comparison``):
an interrupted invocation resumes where it stopped (a finished run is reused, a half-trained
one resumed from its checkpoint), so the study can be spread over sessions and processes. The
finished runs' records (config, metrics, history, timing, per-event test ranks: a few kB each)
are committed, their weights (``*.pt``) are not (``.gitignore``): a fresh clone reports the
tables and goes on with the runs left, without retraining the ones done.

- ``main``: the calibrated simulator ``small``, GRU and SASRec, 4,000 steps of batch 256,
  validation every 500 steps (checkpoint selection on purchase NDCG@10, the loop's default),
  seeds 0 1 2: the heuristics (popularity, recency, SKNN, VSKNN — no training, no seed, no
  backbone), supervised, the reward-weighted CE control, SQN, SA2C, CQL, IQL, MCRL (sound)
  and MCRL with each component off;
- ``samplers``: MCRL and SA2C on GRU with each negative sampler × K ∈ {1, 10, 50};
- ``real``: the main list on the RetailRocket sample of ``../shared`` (when present).

Every method runs at its documented defaults — no per-method tuning (issue 16's equal-budget
study replaces this). SA2C switches to its advantage weight halfway (``experiments.baselines``:
its default 15,000 is beyond this budget). ``--report`` prints (and with ``--readme`` writes into
README.md between the ``comparison`` markers) the tables of whatever runs exist, with the seeds
each row holds and the compute the runs took (summed from their timings).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

from mcrl_kit import experiments, paths
from mcrl_kit.algos.samplers import SAMPLERS
from mcrl_kit.intervals import format_intervals, paired_bootstrap
from mcrl_kit.report import compare_runs, load_run_metrics, markdown_table
from mcrl_kit.storage import replace_section
from mcrl_kit.viz.plots import save_figure


@dataclasses.dataclass(frozen=True)
class Plan:
    """The study's budget: the README's by default, ``QUICK`` for the smoke test (tiny, a few steps)."""

    scale: str = "small"
    steps: int = 4000
    batch: int = 256
    eval_every: int = 500
    seeds: tuple[int, ...] = (0, 1, 2)
    backbones: tuple[str, ...] = ("gru", "sasrec")
    sampler_ks: tuple[int, ...] = (1, 10, 50)


QUICK = Plan(scale="tiny", steps=20, batch=64, eval_every=10, seeds=(0,), backbones=("gru",), sampler_ks=(1,))
FIGURE = "comparison-small-purchase-ndcg10"
RESULTS = Path(__file__).resolve().parent / "results" / "comparison"
README_START, README_END = "<!-- comparison:start -->", "<!-- comparison:end -->"

#: no training, no seed (deterministic), no backbone: run once
HEURISTICS = {"popularity": "popularity", "recency": "recency", "SKNN": "sknn", "VSKNN": "vsknn"}


def learned(steps: int) -> dict:
    """The trained methods: the lineage, offline RL outside it, the control, MCRL and its ablations."""
    b = experiments.baselines(steps)
    return {
        "supervised": b["supervised"], "reward-weighted CE": "reward_ce", "SQN": b["SQN"], "SA2C": b["SA2C"],
        "CQL": "cql", "IQL": "iql",
        **experiments.ablation_variants(),
        "MCRL − weight normalisation": ("mcrl", {"normalize_weight": False}),
    }


def sampler_variants(steps: int, ks=(1, 10, 50)) -> dict:
    """MCRL and SA2C × sampler × K; the defaults (uniform, K = 10) are left out of the settings, so that
    those runs are the main part's."""
    out = {}
    for label, (algo, base) in {"MCRL": ("mcrl", {}), "SA2C": experiments.baselines(steps)["SA2C"]}.items():
        for sampler in SAMPLERS:
            for k in ks:
                params = {**base, **({"sampler": sampler} if sampler != "uniform" else {}), **({"neg": k} if k != 10 else {})}
                out[f"{label}, {sampler}, K={k}"] = (algo, params)
    return out


def jobs(part: str, data: dict, root: Path, threads: int | None, plan: Plan = Plan()) -> list[tuple]:
    """``(part, table label, study, backbone, variant, seed)`` in the order they are run: seed 0 of
    everything first, so that a study cut short already holds one comparable seed of every row."""
    out = []

    def study(name: str, backbone: str) -> experiments.Study:
        return experiments.Study(data[name], backbone=backbone, steps=plan.steps, batch_size=plan.batch,
                                 eval_every=plan.eval_every, seeds=plan.seeds, device="cpu", threads=threads,
                                 out=root / (plan.scale if name == "simulator" else name))  # build/comparison/small/runs

    if part in ("main", "real"):
        name = "simulator" if part == "main" else "retailrocket-sample"
        for label, v in HEURISTICS.items():
            out.append((part, label, study(name, "gru"), "–", v, 0))
        for seed in plan.seeds:
            for backbone in plan.backbones:
                for label, v in learned(plan.steps).items():
                    out.append((part, label, study(name, backbone), backbone, v, seed))
    elif part == "samplers":
        for seed in plan.seeds:
            for label, v in sampler_variants(plan.steps, plan.sampler_ks).items():
                out.append((part, label, study("simulator", "gru"), "gru", v, seed))
    return out


def folder(study: experiments.Study, variant, seed: int) -> Path:
    algo, params = (variant, {}) if isinstance(variant, str) else variant
    return experiments.run_folder(study.root, study.config(algo, params, seed))


def finished(job: tuple) -> bool:
    return (folder(job[2], job[4], job[5]) / "metrics.json").exists()


def progress(todo: list, groups: dict) -> str:
    """``"N of M planned runs finished"`` for a part's jobs and their ``finished_groups``: a table cut short
    says how short."""
    return f"{sum(map(len, groups.values()))} of {len(todo)} planned runs finished"


def run(todo: list, shard: tuple[int, int]) -> None:
    i, n = shard
    mine = [j for k, j in enumerate(todo) if k % n == i]
    left = [j for j in mine if not finished(j)]
    print(f"shard {i}/{n}: {len(mine)} runs, {len(mine) - len(left)} done before", flush=True)
    for k, (part, label, study, backbone, variant, seed) in enumerate(left, 1):
        t0 = time.perf_counter()
        algo, params = (variant, {}) if isinstance(variant, str) else variant
        experiments.ensure_run(study.config(algo, params, seed), study.root, data=study.data)
        print(f"[{k}/{len(left)}] {part} {label} {backbone} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)


# --- the tables ----------------------------------------------------------------------
MAIN_COLUMNS = ("purchase HR@10", "purchase NDCG@10", "click HR@10", "click NDCG@10")
REAL_COLUMNS = ("click HR@20", "click NDCG@20", "purchase HR@20", "purchase NDCG@20")


def finished_groups(todo: list) -> dict[tuple[str, str], list[tuple[dict, str]]]:
    """The finished runs per table row ``(label, backbone)``, in the jobs' order, as ``intervals.paired_bootstrap``
    takes them: each run's folder is looked up once, and every table, reading and count of a part reads this."""
    out: dict[tuple[str, str], list[tuple[dict, str]]] = {}
    for _, label, study, backbone, variant, seed in todo:
        f = folder(study, variant, seed)
        if (f / "metrics.json").exists():
            out.setdefault((label, backbone), []).append((load_run_metrics(f)[0], str(f)))
    return out


def wall_seconds(run: str | Path) -> float:
    """The wall seconds a run took, from its ``timing.csv`` (0 where it has none)."""
    f = Path(run) / "timing.csv"
    timing = pd.read_csv(f) if f.exists() else pd.DataFrame()
    return float(timing["seconds"].iloc[-1]) if len(timing) else 0.0


def table(groups: dict, columns, split: str = "test", timing: bool = False) -> tuple[pd.DataFrame, float]:
    """One row per (label, backbone) of ``finished_groups``: mean ± std over seeds; and the compute (wall seconds
    summed from the runs' timings) they took. With ``timing``, a ``s / run`` column: the mean wall seconds of the
    row's runs (one core each; compare rows of one table, not machines); ``attrs["seconds"]`` holds them."""
    rows, means, stds, counts, seconds = [], {}, {}, {}, {}
    for key, members in groups.items():
        folders = [f for _, f in members]
        t = compare_runs(folders, split=split).iloc[0]
        row = {"method": key[0], "backbone": key[1], "seeds": int(t["seeds"])}
        for c in columns:
            row[c] = f"{t[c]:.3f}" + (f" ± {t[c + ' std']:.3f}" if t["seeds"] > 1 else "")
        seconds[key] = sum(map(wall_seconds, folders)) / len(folders)
        if timing:
            row["s / run"] = f"{seconds[key]:.0f}"
        rows.append(row)
        means[key] = {c: float(t[c]) for c in columns}
        stds[key] = {c: float(t[c + " std"]) for c in columns}
        counts[key] = int(t["seeds"])
    frame = pd.DataFrame(rows)
    frame.attrs.update(means=means, stds=stds, seeds=counts, seconds=seconds)
    return frame, sum(seconds[key] * len(members) for key, members in groups.items())


def pair_rows(groups: dict, pairs: dict, columns) -> pd.DataFrame:
    """Each ``row → reference`` pair of table rows (keys of ``groups``, both with a finished run): the row's
    difference from the reference per column with its 95 % paired bootstrap interval over test sessions
    (``mcrl_kit.intervals``: the runs share their test events; seeds are averaged per event). A trained
    reference is paired over the seeds the row has finished (a row cut short is not set against seeds it
    lacks); a heuristic reference (backbone ``–``) has one run. Columns as ``paired_bootstrap``'s (``label`` the
    row's), plus ``backbone``, ``reference`` and ``seeds``."""
    frames = []
    for row, ref in pairs.items():
        if row not in groups or ref not in groups:
            continue
        seeds = {config["train"]["seed"] for config, _ in groups[row]}
        same = [(config, f) for config, f in groups[ref] if ref[1] == "–" or config["train"]["seed"] in seeds]
        if same:
            f = paired_bootstrap({"row": groups[row], "reference": same}, "reference", columns)
            frames.append(f.assign(label=row[0], backbone=row[1], reference=ref[0], seeds=len(groups[row])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def interval(d: pd.Series, c: str) -> str:
    """``+0.014 [-0.003, +0.031]``: the difference and its interval."""
    return f"{d[f'{c} Δ']:+.3f} [{d[f'{c} low']:+.3f}, {d[f'{c} high']:+.3f}]"


def excludes_zero(d: pd.Series, c: str) -> bool:
    return bool(d[f"{c} low"] > 0 or d[f"{c} high"] < 0)


INTERVAL_NOTE = ("brackets: the 95 % paired bootstrap interval over test sessions (`mcrl_kit.intervals`); "
                 "it covers the test sessions' noise, not the training noise across seeds, which are averaged per event")


def reading(t: pd.DataFrame, columns, groups: dict | None = None) -> str:
    """What the table says, computed from it (so the sentence cannot disagree with the numbers): per column,
    the best row, the best trained row, where MCRL stands and how it compares with the reward-weighted control
    (with the paired interval of ``pair_rows`` when ``groups``, the table's ``finished_groups``, are given)."""
    means = t.attrs.get("means", {})
    if not means:
        return ""
    control = {key: ("reward-weighted CE", key[1]) for key in means if key[0] == "MCRL"}
    paired = pair_rows(groups, control, columns) if groups else pd.DataFrame()
    paired = paired.set_index(["label", "backbone"]) if len(paired) else paired

    def name(key) -> str:
        return key[0] if key[1] == "–" else f"{key[0]} ({key[1]})"

    lines = []
    for c in columns:
        order = sorted(means, key=lambda k: -means[k][c])
        trained = [k for k in order if k[1] != "–"]
        text = f"- {c}: best {name(order[0])} {means[order[0]][c]:.3f}"
        if trained and trained[0] != order[0]:
            text += f"; best trained {name(trained[0])} {means[trained[0]][c]:.3f}"
        for key in (k for k in order if k[0] == "MCRL"):
            text += f"; {name(key)} {means[key][c]:.3f}, {order.index(key) + 1} of {len(order)}"
            if control[key] in means:
                if key in paired.index:
                    d = paired.loc[key]
                    text += (f" ({interval(d, c)} against the reward-weighted CE on {key[1]}, an interval "
                             f"{'excluding' if excludes_zero(d, c) else 'including'} 0)")
                else:
                    text += f" ({means[key][c] - means[control[key]][c]:+.3f} against the reward-weighted CE on {key[1]})"
        lines.append(text + ".")
    return (f"Read off the table ({seeds_said(t)}{'; ' + INTERVAL_NOTE if len(paired) else ''}):\n\n"
            + "\n".join(lines))


def seeds_said(t: pd.DataFrame) -> str:
    """How many seeds the table's means hold, in words."""
    counts = {n for key, n in t.attrs.get("seeds", {}).items() if key[1] != "–"}  # heuristics: one, deterministic
    if len(counts) == 1 and (n := counts.pop()) > 1:
        return f"trained rows: means over {n} seeds"
    return "means over the seeds finished, which differ between rows, see the `seeds` column: one seed against three is no evidence of a difference"


def sampler_pairs(t: pd.DataFrame) -> dict:
    """Each sampler × K row → its algorithm's default (uniform, K = 10), for ``pair_rows``."""
    means = t.attrs.get("means", {})
    return {key: (f"{key[0].split(', ')[0]}, uniform, K=10", key[1]) for key in means
            if not key[0].endswith("uniform, K=10") and (f"{key[0].split(', ')[0]}, uniform, K=10", key[1]) in means}


def setting(label: str) -> str:
    """``"MCRL, in_batch, K=1"`` → ``"in_batch K=1"``: a sampler row's setting, as the reading names it."""
    return label.split(", ", 1)[-1].replace(", K=", " K=")


def sampler_reading(t: pd.DataFrame, columns, paired: pd.DataFrame | None = None) -> str:
    """Per algorithm and metric: the best sampler × K, where the reference's uniform K = 10 stands, and (with
    ``paired``, ``pair_rows`` against the default) which settings' intervals exclude 0; and (from
    ``attrs["seconds"]``) what a K = 50 run costs against a K = 10 one."""
    means = t.attrs.get("means", {})
    lines = []
    for algo in ("MCRL", "SA2C"):
        rows = {k[0]: v for k, v in means.items() if k[0].startswith(f"{algo}, ")}
        if len(rows) < 2:
            continue
        mine = paired[paired["reference"] == f"{algo}, uniform, K=10"] if paired is not None and len(paired) else []
        for c in columns:
            order = sorted(rows, key=lambda k: -rows[k][c])
            text = f"- {algo}, {c}: best {setting(order[0])} {rows[order[0]][c]:.3f}, worst " \
                   f"{setting(order[-1])} {rows[order[-1]][c]:.3f}"
            default = f"{algo}, uniform, K=10"
            if default in rows:
                text += f"; the default uniform K = 10 {rows[default][c]:.3f}, {order.index(default) + 1} of {len(order)}"
            if len(mine):
                short = mine["label"].map(setting)
                above, below = short[mine[f"{c} low"] > 0].tolist(), short[mine[f"{c} high"] < 0].tolist()
                text += (f"; against the default, {len(mine) - len(above) - len(below)} of {len(mine)} settings' intervals "
                         f"include 0, above it: {', '.join(above) or 'none'}, below it: {', '.join(below) or 'none'}")
            lines.append(text + ".")
        spent = t.attrs.get("seconds", {})
        cost = {k: [v for key, v in spent.items() if key[0].startswith(f"{algo}, ") and key[0].endswith(f"K={k}") and v]
                for k in (10, 50)}
        if all(cost.values()):
            ratio = (sum(cost[50]) / len(cost[50])) / (sum(cost[10]) / len(cost[10]))
            lines.append(f"- {algo}, cost: a K = 50 run took {ratio:.1f}× the wall time of a K = 10 run (means over the "
                         "samplers; one core each on a shared machine, so a rough ratio).")
    if not lines:
        return ""
    return (f"Read off the tables ({seeds_said(t)}{'; intervals: ' + INTERVAL_NOTE.removeprefix('brackets: ') if paired is not None and len(paired) else ''}):\n\n"
            + "\n".join(lines))


def first_run(groups: dict) -> str | None:
    """The first finished run of a part's ``finished_groups`` (None before any)."""
    return next((f for members in groups.values() for _, f in members), None)


def can_show(groups: dict) -> str:
    """What a table over few logged events can and cannot show (from a finished run's counts)."""
    if (f := first_run(groups)) is not None:
        test = load_run_metrics(f)[1]["count"]["test"]
        return (f"**What this can show**: {test['purchase']} test purchases and {test['click']:,} test clicks, so one "
                f"purchase hit moves a purchase metric by {1 / max(test['purchase'], 1):.2f} and one click hit a click "
                f"metric by {1 / max(test['click'], 1):.3f}: the click columns carry what evidence there is; a "
                "purchase difference of a few hundredths is one or two events. It shows how the methods do on real "
                "sessions of this shop at this size, not how they compare at the paper's scale.")
    return ""


def figure(t: pd.DataFrame, metric: str, title: str):
    """The table's ``metric`` as bars (mean ± std over the seeds finished), for the README."""
    from mcrl_kit.viz.plots import ablation_bars

    keys = sorted(t.attrs["means"], key=lambda k: -t.attrs["means"][k][metric])
    frame = pd.DataFrame({
        "label": [k[0] if k[1] == "–" else f"{k[0]} ({k[1]})" for k in keys],
        metric: [t.attrs["means"][k][metric] for k in keys],
        f"{metric} std": [t.attrs["stds"][k][metric] for k in keys],
        "seeds": [t.attrs["seeds"][k] for k in keys],
    })
    return ablation_bars(frame, metric, title)


def support(groups: dict) -> str:
    """How many logged clicks and purchases each split's metrics average over (from a finished run)."""
    if (f := first_run(groups)) is not None:
        c = load_run_metrics(f)[1]["count"]
        return ", ".join(f"{s}: {c[s]['click']:,} clicks, {c[s]['purchase']:,} purchases" for s in ("val", "test"))
    return "no run finished yet"


def report(root: Path, data: dict, threads: int | None, plan: Plan = Plan(), figures: bool = False) -> str:
    """The tables (Markdown); with ``figures``, also the README's figure under ``figures/readme/``."""
    parts = []
    main = jobs("main", data, root, threads, plan)
    done = finished_groups(main)
    t, seconds = table(done, MAIN_COLUMNS)
    parts.append(
        f"**Calibrated simulator `{plan.scale}`**, SQN protocol (a random 80/10/10 session split; support: "
        f"{support(done)}; metrics on test). {plan.steps:,} steps of batch {plan.batch}, "
        f"validation every {plan.eval_every} (checkpoint selection on purchase NDCG@10), seeds "
        f"{' '.join(map(str, plan.seeds))} planned (the `seeds` column: how many have finished; mean ± std over them); "
        "every method at its documented defaults, **no per-method tuning** (SA2C switches at half the budget). "
        f"Runs: {progress(main, done)}, {seconds / 3600:.1f} h of wall time summed over them (one core each, on a machine shared with other work).\n\n" + (markdown_table(t) if len(t) else "(no run yet)")
        + "\n\n" + reading(t, ("purchase NDCG@10", "click NDCG@10"), done)
        + (f"\n\n![purchase NDCG@10 per method](figures/readme/{FIGURE}.png)" if figures and len(t) else "")
    )
    if figures and len(t):
        save_figure(figure(t, "purchase NDCG@10", f"`{plan.scale}` simulator, SQN protocol, test purchases"),
                    FIGURE, paths.home() / "figures" / "readme")
    samp = jobs("samplers", data, root, threads, plan)
    columns = ("purchase NDCG@10", "click NDCG@10")
    done = finished_groups(samp)
    t, seconds = table(done, columns, timing=True)
    paired = pair_rows(done, sampler_pairs(t), columns)
    parts.append(
        f"**Negative samplers** (`{plan.scale}`, SQN protocol, GRU, same budget; the uniform K = 10 rows are the main table's runs; "
        f"{progress(samp, done)}; {seconds / 3600:.1f} h of wall time so far; `s / run`: the mean wall seconds of a row's runs, one core each; MCRL's InfoNCE scores each negative's predicted "
        "next state against the batch's 2B states, so its step grows with K, while SA2C's negatives only index its Q head).\n\n" + (markdown_table(t.drop(columns="backbone")) if len(t) else "(no run yet)")
        + (f"\n\nEach setting against its algorithm's default (uniform, K = 10): the difference and its 95 % paired "
           f"bootstrap interval over test sessions, paired over the seeds the setting has finished, `*` where it excludes 0.\n\n{format_intervals(paired, columns, 'default', 3, count='seeds')}"
           if len(paired) else "")
        + ("\n\n" + sampler_reading(t, columns, paired) if len(t) else "")
    )
    if "retailrocket-sample" in data:
        real = jobs("real", data, root, threads, plan)
        done = finished_groups(real)
        t, seconds = table(done, REAL_COLUMNS)
        parts.append(
            f"**RetailRocket sample** (`../shared`), SQN protocol (support: {support(done)}). The same methods, budget and "
            f"seeds ({progress(real, done)}; {seconds / 3600:.1f} h of wall time so far).\n\n" + (markdown_table(t) if len(t) else "(no run yet)")
            + "\n\n" + reading(t, ("click NDCG@20", "purchase NDCG@20"), done)
            + ("\n\n" + can_show(done) if len(t) else "")
        )
    return "\n\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("main", "samplers", "real", "all"), default="all")
    ap.add_argument("--shard", default="0/1", help="I/N: run every N-th job from the I-th (one process each)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/comparison (committed, less weights)")
    ap.add_argument("--report", action="store_true", help="only print the tables of the runs finished so far")
    ap.add_argument("--readme", action="store_true", help="with --report: write them into README.md")
    ap.add_argument("--quick", action="store_true", help="the smoke test's plan: tiny, 20 steps, one seed, GRU, K = 1")
    args = ap.parse_args()
    plan = QUICK if args.quick else Plan()
    root = Path(args.out) if args.out else RESULTS
    data = {"simulator": experiments.load_data("simulator", scale=plan.scale)}
    if experiments.sample_available():
        data["retailrocket-sample"] = experiments.load_data("retailrocket-sample")
    if args.report:
        text = report(root, data, args.threads, plan, figures=args.readme)
        print(text)
        if args.readme:
            replace_section(paths.home() / "README.md", README_START, README_END,
                            f"{README_START}\n{text}\n{README_END}")
        return
    i, n = (int(x) for x in args.shard.split("/"))
    started = time.perf_counter()
    parts = ("main", "samplers", "real") if args.part == "all" else (args.part,)
    todo = [j for p in parts for j in jobs(p, data, root, args.threads, plan) if p != "real" or "retailrocket-sample" in data]
    run(todo, (i, n))
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
