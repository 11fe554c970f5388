"""``python -m mcrl_kit <command>`` — the kit's command line.

Every user-fixable problem is a :class:`~mcrl_kit.errors.KitError`: printed as one
paragraph on stderr, exit status 2, no traceback (so is a refusal of the file system: an
``OSError`` names its file). A closed stdout (``python -m mcrl_kit stats DIR | head -1``)
is no error: the command stops quietly with status 141 (128 + SIGPIPE, as a shell reports
a tool killed by SIGPIPE; :data:`BROKEN_PIPE`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import KitError, KitWarning

COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {}


def command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable:
    """Register ``fn`` (which adds one sub-parser) as a command."""
    COMMANDS[fn.__name__.removeprefix("add_").replace("_", "-")] = fn
    return fn


# --- prepare -------------------------------------------------------------------------
@command
def add_prepare(sub: argparse._SubParsersAction) -> None:
    from .data.sources import SOURCES, option_fields, option_flag

    p = sub.add_parser(
        "prepare",
        help="turn a source into the MDP (events, split, stats)",
        description="Prepare a data source: validate, filter by the protocol, re-index, split 80/10/10, "
        "write DIR/{events,items,sessions}.parquet, DIR/config.json and DIR/stats.json, print the statistics.",
    )
    p.add_argument("--source", default="simulator", help=" | ".join(SOURCES))
    p.add_argument(
        "--path", nargs="+", default=[], action="extend", metavar="P",
        help="input file(s): RetailRocket events.csv[.gz]; Yoochoose clicks then buys; one CSV/parquet event log",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the simulator, the Yoochoose sample and the split")
    p.add_argument("--split-seed", type=int, default=None,
                   help="seeds the train/validation/test split alone (default: --seed)")
    p.add_argument("--protocol", default="sqn", choices=("sqn", "time"),
                   help="sqn: the reference's random 80/10/10 session split, every event evaluated; time: sessions "
                        "by end time (train before the 80th percentile, test after the 90th), validation and test "
                        "skipping first events and targets unseen in training (default sqn)")
    # one flag per source option, from the sources' registry (help: the sources that read it, and its default)
    for name, (field, readers) in option_fields().items():
        where = " / ".join(readers) + ": " + field.metadata["help"]
        if name == "columns":
            p.add_argument(option_flag(name), dest=name, action="append", default=[], metavar="KIT=YOURS", help=where)
        else:
            kind = type(field.default) if field.default is not None else int
            defaults = {r: next(f.default for f in dataclasses.fields(SOURCES[r].options) if f.name == name) for r in readers}
            if len(set(defaults.values())) > 1:  # the protocol's filters: each source has its own
                shown = " (default: " + ", ".join(f"{r} {d}" for r, d in defaults.items()) + ")"
            else:
                shown = "" if field.default is None else f" (default {field.default})"
            p.add_argument(option_flag(name), dest=name, type=kind, default=None, help=where + shown)
    p.add_argument("--out", default=None, help="output folder (default: a cache folder under data/cache)")
    p.add_argument("--force", action="store_true", help="rebuild even if OUT already holds this dataset")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_prepare)


def _parse_columns(pairs: Sequence[str]) -> dict[str, str] | None:
    from .data.schema import EVENT_COLUMNS

    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in EVENT_COLUMNS or not value:
            raise KitError(
                f"--column {pair}", "is not KIT=YOURS with KIT one of the kit's columns",
                f"write e.g. --column session_id=user (kit columns: {', '.join(EVENT_COLUMNS)})",
            )
        out[key] = value
    return out


def data_config(args: argparse.Namespace):
    """The :class:`~mcrl_kit.config.DataConfig` a ``prepare`` command line describes (checked, nothing run).

    A source option given on the command line that the chosen source does not read is refused
    here even at its default value (``--scale tiny`` with ``--source retailrocket``): the
    registry can only tell a changed value, the command line a given one.
    """
    from .config import DataConfig, _choice
    from .data.sources import SOURCES, option_fields, option_flag, refuse_ignored

    _choice("--source", args.source, SOURCES)
    options = {}
    for name, (_, readers) in option_fields().items():
        value = _parse_columns(args.columns) if name == "columns" else getattr(args, name)
        if value is None:
            continue
        if args.source not in readers:
            refuse_ignored(args.source, name, value, readers, f"{option_flag(name)} {value}")
        options[name] = value
    return DataConfig.from_dict(source=args.source, paths=tuple(args.path), seed=args.seed, split_seed=args.split_seed,
                                protocol=args.protocol, **options)


def run_prepare(args: argparse.Namespace) -> int:
    from .data import format_stats, prepare

    data = prepare(data_config(args), out=args.out, progress=not args.no_progress, force=args.force)
    print(format_stats(data.stats))
    print(f"prepared data: {data.root}")
    return 0


@command
def add_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="the statistics table of prepared datasets",
                       description="One row per prepared-data folder: sessions, items, clicks, purchases, mean length.")
    p.add_argument("data", nargs="+", help="prepared-data folders")
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(handler=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from .data import load_prepared, stats_frame
    from .data.prepare import readable_stats
    from .report import markdown_table

    frame = readable_stats(stats_frame([load_prepared(d).stats for d in args.data]))
    print(markdown_table(frame) if args.markdown else frame.to_string(index=False))
    return 0


# --- train / evaluate / compare ------------------------------------------------------
#: the sections ``--set section.key=value`` reaches, and what a bare ``--set key=value`` means
SET_SECTIONS = ("algo", "model", "train")


def parse_sets(pairs: Sequence[str]) -> dict[str, dict]:
    """``--set neg=10 --set model.hidden=32 --set train.lr=0.01`` → {"algo": {"neg": 10}, "model": {...}, "train": {...}}.

    Values are JSON where they parse as JSON (numbers, true/false, lists), else strings.
    A bare key is the algorithm's (``--set neg=10`` = ``--set algo.neg=10``). The keys are
    checked by the configs themselves (unknown ones refused with the valid names).
    """
    import json

    out: dict[str, dict] = {section: {} for section in SET_SECTIONS}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, _, name = key.rpartition(".") if "." in key else ("algo", "", key)
        if not sep or not name:
            raise KitError(f"--set {pair}", "is not [SECTION.]KEY=VALUE", "write e.g. --set neg=10 or --set model.hidden=32")
        if section not in SET_SECTIONS:
            raise KitError(f"--set {pair}", f"names the unknown section {section!r}",
                           f"use one of: {', '.join(SET_SECTIONS)} (a bare key is the algorithm's)")
        try:
            out[section][name] = json.loads(value)
        except json.JSONDecodeError:
            out[section][name] = value
    return out


def _default(cls: type, name: str) -> object:
    """A config field's default, for help texts (one definition: the dataclass)."""
    import dataclasses

    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


@command
def add_train(sub: argparse._SubParsersAction) -> None:
    from .algos import ALGOS
    from .config import ModelConfig, TrainConfig
    from .models import BACKBONES

    p = sub.add_parser(
        "train", help="train one algorithm on prepared data",
        description="Train, select the best checkpoint on validation, report test. Writes RUN/config.json, "
        "RUN/history.csv, RUN/model.pt, RUN/checkpoint.pt and RUN/metrics.json. Any field of the configs can be "
        "set with --set SECTION.KEY=VALUE (sections: algo, model, train; a bare KEY is the algorithm's).",
    )
    p.add_argument("--data", required=True, help="a prepared-data folder (python -m mcrl_kit prepare --out DIR)")
    p.add_argument("--backbone", default=_default(ModelConfig, "backbone"), help=" | ".join(BACKBONES))
    p.add_argument("--algo", default="supervised", help=" | ".join(ALGOS))
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, help="optimisation steps (default 1000)")
    budget.add_argument("--epochs", type=float, default=None, help="epochs of train rows / batch size steps")
    p.add_argument("--seed", type=int, default=_default(TrainConfig, "seed"))
    p.add_argument("--device", default=_default(TrainConfig, "device"), help="auto | cpu | cuda | cuda:N")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {_default(TrainConfig, 'lr')})")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {_default(TrainConfig, 'batch_size')}")
    p.add_argument("--eval-every", type=int, default=None,
                   help=f"steps between validation runs/checkpoints (default {_default(TrainConfig, 'eval_every')})")
    p.add_argument("--select-metric", default=None,
                   help=f"KIND/METRIC@K with KIND purchase|click, METRIC NDCG|HR, K from the kit's cutoffs "
                        f"(default {_default(TrainConfig, 'select_metric')})")
    p.add_argument("--select-min-support", type=int, default=None,
                   help="the fewest validation events of the selection metric's kind it is chosen on; below, a warning "
                        f"and --select-fallback (default {_default(TrainConfig, 'select_min_support')})")
    p.add_argument("--select-fallback", default=None,
                   help="the metric chosen on when --select-metric lacks support, or `last` (the final weights) "
                        f"(default {_default(TrainConfig, 'select_fallback')})")
    p.add_argument("--hidden", type=int, default=None, help=f"embedding/state size (default {_default(ModelConfig, 'hidden')})")
    p.add_argument("--dropout", type=float, default=None, help=f"backbone dropout (default {_default(ModelConfig, 'dropout')})")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]KEY=VALUE",
                   help="a setting of the algorithm (bare KEY, e.g. --set neg=10), the model (model.KEY) or the loop (train.KEY)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the training step (slow start)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="train into an --out that holds files: the kit's own files there are removed first (yours stay)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="the run folder")
    p.set_defaults(handler=run_train)


def run_config(args: argparse.Namespace):
    """The :class:`~mcrl_kit.runs.RunConfig` a ``train`` command line describes (checked, nothing run)."""
    from .config import ModelConfig, TrainConfig
    from .runs import RunConfig

    sets = parse_sets(args.set)
    flags = {
        "train": dict(steps=args.steps, epochs=args.epochs, seed=args.seed, device=args.device, lr=args.lr,
                      batch_size=args.batch_size, eval_every=args.eval_every, select_metric=args.select_metric,
                      select_min_support=args.select_min_support, select_fallback=args.select_fallback,
                      threads=args.threads, compile=args.compile or None, amp=args.amp or None,
                      progress=False if args.no_progress else None),
        "model": dict(backbone=args.backbone, hidden=args.hidden, dropout=args.dropout),
    }
    for section, given in flags.items():  # a --set wins over the flag (or flag default) of the same field
        for key, value in given.items():
            if value is not None:
                sets[section].setdefault(key, value)
    return RunConfig(
        data=str(Path(args.data).expanduser().resolve()),
        model=ModelConfig.from_dict(sets["model"]),
        algo=args.algo,
        algo_params=sets["algo"],
        train=TrainConfig.from_dict(sets["train"]),
    )


def run_train(args: argparse.Namespace) -> int:
    from .train import train

    run = run_config(args)
    if args.resume and args.overwrite:
        raise KitError("--resume and --overwrite", "contradict each other", "give one of them")
    result = train(run, out=args.out, resume=args.resume, overwrite=args.overwrite)
    from .train import distributed

    rank, world = distributed()
    if rank == 0:  # under torchrun every process returns the same metrics: print them once
        print(format_metrics_table({args.out: result.metrics}))
        print(f"run: {args.out}" + (f" ({world} processes)" if world > 1 else ""))
    from .devices import shutdown

    shutdown(world)
    return 0


@command
def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="re-score a saved run", description="Re-score RUN/model.pt on a split.")
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .runs import load_run
    from .storage import write_json
    from .train import evaluate_algo

    run, algo, data = load_run(args.run, args.device)
    metrics = evaluate_algo(algo, data.replay(args.split), run.train, resolve_device(args.device),
                            ranks_to=Path(args.run) / f"ranks_{args.split}.npz")
    write_json(Path(args.run) / f"eval_{args.split}.json", metrics)
    print(format_metrics_table({args.run: {args.split: metrics}}, split=args.split))
    return 0


@command
def add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="a results table over runs",
        description="Rows = runs (seeds of one configuration merged into mean ± std), columns = purchase/click HR/NDCG@5/10/20.",
    )
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--no-merge", action="store_true", help="one row per run, even for seeds of one configuration")
    p.add_argument("--ci", metavar="REFERENCE", default=None,
                   help="add each row's difference from the row labelled REFERENCE (e.g. gru-supervised) in purchase "
                        "and click NDCG@10, with a 95%% paired bootstrap over test sessions, stratified over split seeds")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws for --ci (default 2000)")
    p.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from .report import compare_runs, format_compare

    if args.ci and args.split != "test":
        raise KitError("--ci", "reads the test events' ranks", "drop --split val (intervals are for the test split)")
    if args.bootstrap < 100:
        raise KitError("--bootstrap", f"{args.bootstrap} draws are too few for a 95% interval", "give at least 100, e.g. 2000")
    table = compare_runs(args.runs, split=args.split, merge_seeds=not args.no_merge)
    print(format_compare(table, markdown=args.markdown))
    if args.ci:
        from .intervals import compare_intervals, format_intervals

        intervals = compare_intervals(args.runs, args.ci, n_boot=args.bootstrap)
        print(f"\nDifference from {args.ci} (test; mean over split seeds; 95% paired bootstrap over test sessions, "
              f"{args.bootstrap:,} draws; * the interval excludes 0):\n")
        print(format_intervals(intervals, reference=args.ci))
    return 0


def format_metrics_table(metrics_by_run: dict, split: str = "test") -> str:
    import pandas as pd

    from .report import metrics_row

    rows = [{"run": name, **metrics_row(m[split])} for name, m in metrics_by_run.items()]
    return pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}")


# --- diagnose -----------------------------------------------------------------------
@command
def add_diagnose(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose", help="overestimation: predicted values vs Monte-Carlo (and true) returns",
        description="Per held-out event: the run's value of the logged action (Q) or state (V, MCRL), the discounted "
        "Monte-Carlo return, on the simulator the true expected return, and the bias. Writes "
        "RUN/diagnose_SPLIT.parquet and RUN/diagnose_SPLIT.json and prints the summary.",
    )
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--rollouts", type=int, default=64, help="simulator rollouts per event for the true return")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_diagnose)


def run_diagnose(args: argparse.Namespace) -> int:
    from .diagnostics import bias_by, diagnose_run

    table, summary = diagnose_run(args.run, args.split, n_rollouts=args.rollouts, device=args.device, progress=not args.no_progress)
    keys = ["events", "mean_value", "mean_mc_return", "mean_bias", "std_bias", "mean_abs_bias", "overestimated_share",
            "mean_true_value", "mean_bias_true"]
    for k in keys:
        if k in summary:
            v = summary[k]
            print(f"{k:>20}: {v:.4f}" if isinstance(v, float) else f"{k:>20}: {v}")
    print("\nbias by step in session:")
    print(bias_by(table, "step").to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwritten: {Path(args.run) / f'diagnose_{args.split}.parquet'} and .json")
    return 0


@command
def add_estimators(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimators", help="d3rlpy-style value checks without a simulator: average value, initial-state value, TD error, FQE",
        description="On a split of a saved run: the average value (mean max_a Q, or mean V for MCRL), the initial-state "
        "value, the mean squared TD error, the logged discounted return, and Fitted Q Evaluation of the run's "
        "recommending head (and, for a Q-learner, of its greedy policy) trained on the train split. A run without value "
        "estimates (popularity, recency, supervised) is refused unless --fqe-only.",
    )
    p.add_argument("--run", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--fqe-steps", type=int, default=2000,
                   help="FQE training steps (default 2000: about a minute per FQE on tiny data, one core; 0 skips FQE)")
    p.add_argument("--fqe-only", action="store_true", help="FQE alone (the one estimator for a run without values)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=run_estimators)


def run_estimators(args: argparse.Namespace) -> int:
    from .evaluators import estimator_report, format_report

    report = estimator_report(args.run, args.split, fqe_steps=args.fqe_steps, fqe_only=args.fqe_only, device=args.device)
    print(format_report(report))
    return 0


@command
def add_bias_table(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bias-table", help="mean value bias over diagnosed runs (seeds merged)",
        description="Reads RUN/diagnose_SPLIT.json of each run (write them with `diagnose`) and prints the mean "
        "predicted value, Monte-Carlo return, bias (and, on the simulator, true value and bias), mean ± std over seeds.",
    )
    p.add_argument("runs", nargs="+")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(handler=run_bias_table)


def run_bias_table(args: argparse.Namespace) -> int:
    from .report import compare_bias, format_bias

    print(format_bias(compare_bias(args.runs, args.split), markdown=args.markdown))
    return 0


# --- tune -----------------------------------------------------------------------------
@command
def add_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="equal-budget tuning on validation (Optuna TPE, seeded; resumable, several workers may join)",
        description="For each --algo, start trials until --trials have been started (a method with nothing to search: "
        "one), each a run folder of --steps steps under OUT/trials scored on validation only; prints the trials and "
        "each method's total training steps. Run it again to resume, or with a larger --trials to extend every method.",
    )
    p.add_argument("--data", required=True, help="a prepared data folder")
    p.add_argument("--algo", nargs="+", required=True, help="the methods to tune")
    p.add_argument("--trials", type=int, default=10, help="trials per method (default 10)")
    p.add_argument("--steps", type=int, default=1000, help="steps per trial (default 1000)")
    p.add_argument("--backbone", default="gru")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="seeds the samplers and every trial's training")
    p.add_argument("--storage", default=None, help="an Optuna storage URL (default: sqlite:///OUT/optuna.db)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="the study folder (trials, optuna.db, one CSV per method)")
    p.set_defaults(handler=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    from .data import load_prepared
    from .tune import Tuner

    data = load_prepared(args.data)
    totals = []
    for algo in args.algo:
        tuner = Tuner(data, algo, steps=args.steps, backbone=args.backbone, batch_size=args.batch_size, seed=args.seed,
                      out=args.out, storage=args.storage, threads=args.threads)
        table = tuner.run(args.trials)
        print(f"{algo}: {len(table)} trials\n{table.drop(columns=['run']).to_string(index=False)}\n")
        done = table[table["state"] != "FAIL"]
        totals.append(f"{algo} {int(done['steps'].sum()):,} steps in {len(done)} trials")
    print("budget: " + "; ".join(totals))
    return 0


# --- study ----------------------------------------------------------------------------
@command
def add_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="tune every method on one budget, retrain the best over split × init seeds, compare",
        description="Tune each --algo (tune: --trials × --steps, validation only) on the first split seed, retrain "
        "its best configuration on every --split-seeds × --seeds, and write OUT/comparison.md, .csv, the figures "
        "and OUT/study.json (with paired bootstrap intervals against the best non-RL baseline and the control). "
        "Cached and resumable: run it again to continue.",
    )
    p.add_argument("--dataset", default="simulator", help="simulator | retailrocket-sample | retailrocket | yoochoose | events")
    p.add_argument("--scale", default="tiny", help="the simulator's scale (default tiny)")
    p.add_argument("--path", nargs="+", default=None, help="your files (retailrocket, yoochoose, events)")
    p.add_argument("--protocol", default="sqn", choices=("sqn", "time"))
    p.add_argument("--algo", nargs="+", required=True)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--split-seeds", type=int, nargs="+", default=None,
                   help="data splits of the final runs (default 0 1 2; the time protocol has one split)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="init seeds of the final runs (default 0)")
    p.add_argument("--backbone", default="gru")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--reuse", default=None, metavar="STUDY_JSON",
                   help="retrain the best configurations of another study (its study.json) instead of tuning here")
    p.add_argument("--online-sessions", type=int, default=2000,
                   help="simulated users per policy in the online table (simulator data only; 0: none; default 2000)")
    p.add_argument("--out", required=True)
    p.set_defaults(handler=run_study_command)


def run_study_command(args: argparse.Namespace) -> int:
    from .experiments import split_datasets
    from .study import StudyPlan, run_study

    split_seeds = args.split_seeds or ([0, 1, 2] if args.protocol == "sqn" else [0])
    plan = StudyPlan(algos=args.algo, trials=args.trials, steps=args.steps,
                     split_seeds=split_seeds if args.protocol == "sqn" else split_seeds[:1], seeds=args.seeds,
                     backbone=args.backbone, batch_size=args.batch_size, n_boot=args.bootstrap, threads=args.threads,
                     reuse=args.reuse, online_sessions=args.online_sessions)
    plan.check()  # before any data is prepared
    datasets = split_datasets(args.dataset, split_seeds, protocol=args.protocol, scale=args.scale, path=args.path)
    run_study(datasets, plan, args.out, log=lambda line: print(line, flush=True))
    print((Path(args.out) / "comparison.md").read_text(encoding="utf-8"))
    return 0


# --- online ---------------------------------------------------------------------------
@command
def add_online(sub: argparse._SubParsersAction) -> None:
    from .data.closed_loop import Response

    p = sub.add_parser(
        "online", help="the closed loop: a run recommends to fresh simulated users",
        description="N fresh sessions in the run's simulator world; before every event the users see a slate of the "
        "policy's top-k, take an item with a probability set by its fit and leave sooner after ignored slates. "
        "Per-session reward, return, purchases, clicks, length and share of slates taken (mean and 95%% interval), "
        "beside the logging behaviour (no recommender), popularity and recency on the same users. Simulator runs only.",
    )
    p.add_argument("--run", required=True)
    p.add_argument("--slate", type=int, default=10, help="items per slate (default 10)")
    p.add_argument("--sessions", type=int, default=2000, help="fresh sessions per policy (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="the users' seed: every policy meets the same users")
    p.add_argument("--attraction", type=float, default=_default(Response, "attraction"),
                   help=f"weight of an item's fit in the take probability (default {_default(Response, 'attraction')})")
    p.add_argument("--leave-sensitivity", type=float, default=_default(Response, "leave_sensitivity"),
                   help=f"stop-hazard rise per ignored slate (default {_default(Response, 'leave_sensitivity')})")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_online)


def run_online(args: argparse.Namespace) -> int:
    from .data.closed_loop import Response
    from .online import format_online, online_table

    response = Response(attraction=args.attraction, leave_sensitivity=args.leave_sensitivity)
    table = online_table(args.run, slate=args.slate, sessions=args.sessions, seed=args.seed, response=response,
                         device=args.device, progress=not args.no_progress)
    print(format_online(table, markdown=args.markdown))
    return 0


# --- notebooks / demo ---------------------------------------------------------------
@command
def add_notebooks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "notebooks", help="execute the notebook series with papermill",
        description="Execute notebooks/NN_*.ipynb in order with papermill (kernel python3) under a profile, with "
        "parameter overrides. Writes OUT/<name>.ipynb, OUT/<name>.metrics.json, OUT/runs/ and OUT/timings.json.",
    )
    p.add_argument("--only", default=None, metavar="NN,NN", help="notebooks by number, e.g. 03,05 (default: all)")
    p.add_argument("--profile", default="smoke", choices=["smoke", "full"],
                   help="smoke: the committed CI values (default); full: real-size runs")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a declared parameter, e.g. -p STEPS 2000 (values are Python literals or strings)")
    p.add_argument("--out", default=None, help="output folder (default: build/notebooks)")
    p.add_argument("--timeout", type=int, default=None, help="seconds one cell may run (default: 900 smoke, 12 h full)")
    p.add_argument("--update-readme", action="store_true",
                   help="write the measured minutes into README.md's notebook table (run the whole series into a fresh --out)")
    p.add_argument("--site", nargs="?", const="", default=None, metavar="DIR",
                   help="also render the executed notebooks to static HTML (default DIR: build/site)")
    p.set_defaults(handler=run_notebooks_command)


def _notebook_overrides(pairs: Sequence[Sequence[str]]) -> dict:
    from .notebooks import parse_value

    return {name: parse_value(value) for name, value in pairs}


def run_notebooks_command(args: argparse.Namespace) -> int:
    from .notebooks import run_notebooks

    overrides = _notebook_overrides(args.parameter)
    if args.update_readme and (args.only or args.profile != "smoke" or overrides):  # refused before any work
        raise KitError("--update-readme", "needs the whole series in the smoke profile without overrides",
                       "run `python -m mcrl_kit notebooks --out build/nb-timing --update-readme` alone")
    done = run_notebooks(args.only, args.profile, overrides, args.out, cell_timeout=args.timeout)
    _report_notebooks(done, args.update_readme, "python -m mcrl_kit notebooks --out build/nb-timing --update-readme")
    if args.site is not None:
        from .site import render_site

        print(f"site: {render_site(done[0].output.parent, args.site or None)}")
    return 0


def _report_notebooks(done, update: bool, command: str) -> None:
    """Minutes per executed notebook; with ``update``, also into README.md's notebook table."""
    from .notebooks import update_readme

    for e in done:
        print(f"{e.notebook.number}  {e.seconds / 60:5.1f} min  {e.output}")
    if update:
        print(f"updated {update_readme({e.notebook.number: e.seconds for e in done}, command)}")


@command
def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole notebook series on the embedded simulator",
        description="Prepare the simulator, print its statistics, then execute every notebook on it (papermill). "
        "Executed notebooks and metrics go to build/notebooks/, figures to figures/.",
    )
    p.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    p.add_argument("--out", default=None, help="output folder (default: build/notebooks)")
    p.add_argument("--update-readme", action="store_true",
                   help="write each notebook's measured minutes into README.md's notebook table (use a fresh --out)")
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .data import format_stats
    from .experiments import load_data
    from .notebooks import full_parameter, run_notebooks
    from .paths import figures_dir

    if args.update_readme and args.profile != "smoke":  # refused before any work
        raise KitError("--update-readme", "records the CI (smoke) profile's minutes", "drop --profile full")
    scale = full_parameter("02", "SCALE") if args.profile == "full" else "tiny"
    print(format_stats(load_data("simulator", scale=scale).stats), flush=True)
    # every notebook that picks a dataset gets the simulator (01's default would use the RetailRocket sample)
    done = run_notebooks(None, args.profile, {"DATASET": "simulator"}, args.out)
    print(f"\nexecuted notebooks and metrics: {done[0].output.parent}\nfigures: {figures_dir()}")
    _report_notebooks(done, args.update_readme, "make demo DEMO_ARGS=--update-readme")
    return 0


@command
def add_lab(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lab", help="JupyterLab on copies of the notebooks (running never edits the tracked ones)",
        description="Copy the notebook series to a work folder (build/lab/notebooks/ by default; an existing copy "
        "is your work and is kept) and open JupyterLab there, bound to 127.0.0.1. Autosave writes outputs into "
        "the copies, never into notebooks/.",
    )
    p.add_argument("--dir", default=None, help="the work folder (default: build/lab)")
    p.add_argument("--refresh", nargs="+", default=[], metavar="NN", help="replace these copies by the tracked notebooks")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="make the copies and print the command, start nothing")
    p.set_defaults(handler=run_lab)


def run_lab(args: argparse.Namespace) -> int:
    from .lab import open_lab

    return open_lab(args.dir, args.refresh, args.port, browser=not args.no_browser, dry_run=args.dry_run)


# --- entry point ---------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mcrl_kit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # the kit's warnings as one `warning:` line, not a source line
            status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe (`| head`) shows here, not in the interpreter's flush at exit
        return status
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError as err:  # before OSError: a reader that stopped reading is no file-system error
        if not _stdout_closed():
            return _os_error(err)
        _silence_stdout()
        return BROKEN_PIPE
    except OSError as err:  # the file system refused (permissions, disk full, read-only): say so, no traceback
        return _os_error(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Under torchrun, a command that ended on an error still lets its process group go with the others
    (a group left to the interpreter's exit can abort one rank with a C++ terminate)."""
    if "torch.distributed" not in sys.modules:  # never imports torch for a command that did not
        return
    from .devices import shutdown

    try:
        shutdown(int(os.environ.get("WORLD_SIZE", "1")), after_error=True)
    except (RuntimeError, ValueError):
        pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, KitWarning):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=file or sys.stderr)


#: exit status when stdout's reader went away (`… | head`): 128 + SIGPIPE, what the shell reports for a
#: tool killed by SIGPIPE — quiet, yet `set -o pipefail` scripts still see that the output was cut short
BROKEN_PIPE = 141


def _os_error(err: OSError) -> int:
    where = " → ".join(str(f) for f in (err.filename, getattr(err, "filename2", None)) if f is not None)
    print(
        f"error: {where or 'the file system'}: {err.strerror or err}. "
        "Fix: check the path, its permissions and the free disk space",
        file=sys.stderr,
    )
    return 2


def _stdout_closed() -> bool:
    """True when stdout's reader is gone (a pipe whose read end was closed), or stdout has no descriptor."""
    import io
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return True


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit does not fail on the closed pipe again."""
    import io
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    finally:
        os.close(devnull)
