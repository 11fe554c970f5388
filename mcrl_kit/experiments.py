"""Experiments: the few calls a notebook makes to get data and trained runs.

A notebook cell should read like a sentence, so the orchestration lives here:

- :func:`load_data` — a dataset by name (the simulator, the RetailRocket sample in
  ``../shared``, or your own file), prepared once and cached;
- :class:`Study` — one backbone, one training budget, a list of seeds and a folder:
  ``study.train({"SQN": "sqn", "SA2C": ("sa2c", {...})})`` trains each variant for each
  seed (or reuses it), ``study.compare(runs)`` is the results table (``report.compare_runs``),
  ``study.curves(runs)`` the learning curves;
- :func:`baselines`, :func:`overestimation_variants`, :func:`ablation_variants` — the
  variants the notebooks share, defined once so that their runs are shared too.

Runs live in deterministic folders ``OUT/runs/<label>-s<seed>-<hash of the config>``:
a notebook that asks for a run another notebook (or an earlier execution) already
finished reuses it instead of training again; an interrupted one is resumed. The hash
covers everything that changes the result (data, model, algorithm, loop settings) and
leaves out what does not (device, threads, progress bars).
"""

from __future__ import annotations

import dataclasses
import glob
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import paths
from .config import DataConfig, ModelConfig, TrainConfig
from .data import PreparedData, prepare

# the real samples of ../shared/data (RetailRocket 5,000 visitors, session-rec's Yoochoose clicks): named once
from .data.calibrate import RETAILROCKET_SAMPLE, YOOCHOOSE_SAMPLE
from .errors import DataError, KitError, KitWarning
from .report import compare_runs, format_compare, load_run_metrics, run_label, styled_compare
from .runs import RunConfig, content_identity, load_run, run_key
from .storage import read_json_object
from .train import train

DATASETS = ("simulator", "retailrocket-sample", "yoochoose-sample", "auto", "retailrocket", "yoochoose", "events")


# --- data ------------------------------------------------------------------------------
def load_data(
    dataset: str = "simulator",
    *,
    scale: str = "tiny",
    seed: int = 0,
    path: str | Sequence[str] | None = None,
    sessions: int | None = None,
    split_seed: int | None = None,
    protocol: str = "sqn",
    progress: bool = False,
) -> PreparedData:
    """Prepare (or reuse from the cache) a dataset by name.

    - ``simulator``: the embedded synthetic shoppers at ``scale`` (``sessions`` overrides its count);
    - ``retailrocket-sample``: the 5,000-visitor RetailRocket sample in ``../shared``;
    - ``yoochoose-sample``: the session-rec Yoochoose click sample in ``../shared`` (70k clicks, no
      purchases), sessions with ≥ 3 clicks, as an ``events`` log;
    - ``auto``: the sample when ``../shared`` (or ``MCRL_SHARED``) holds it, else the simulator;
    - ``retailrocket`` / ``yoochoose`` / ``events``: your own files in ``path``
      (RetailRocket ``events.csv``; Yoochoose clicks then buys; one CSV/parquet event log).

    ``split_seed`` cuts the same sessions into another train / validation / test split (default: ``seed``);
    ``protocol="time"`` cuts them by end time instead (``mcrl_kit.data.split``).
    """
    if dataset == "auto":
        dataset = "retailrocket-sample" if paths.shared_file(*RETAILROCKET_SAMPLE) else "simulator"
    if dataset == "simulator":
        config = DataConfig(source="simulator", scale=scale, seed=seed, sessions=sessions, split_seed=split_seed,
                            protocol=protocol)
    elif dataset in ("retailrocket-sample", "yoochoose-sample"):
        parts = RETAILROCKET_SAMPLE if dataset == "retailrocket-sample" else YOOCHOOSE_SAMPLE
        sample = paths.shared_file(*parts)
        if sample is None:
            raise DataError(
                f"dataset {dataset!r}", f"needs ../shared/data/{'/'.join(parts)}, which is absent",
                "set MCRL_SHARED to the folder holding it, or use DATASET = 'simulator'",
            )
        if dataset == "yoochoose-sample":
            return _yoochoose_sample(sample, seed, progress, split_seed)
        config = DataConfig(source="retailrocket", paths=(str(sample),), seed=seed, split_seed=split_seed, protocol=protocol)
    elif dataset in ("retailrocket", "yoochoose", "events"):
        if not path:
            raise DataError(
                f"dataset {dataset!r}", "needs your input file(s)",
                "set DATA_PATH (RetailRocket: events.csv; Yoochoose: [clicks, buys]; events: one CSV/parquet)",
            )
        files = (path,) if isinstance(path, str | Path) else tuple(path)
        config = DataConfig(source=dataset, paths=tuple(str(Path(p).expanduser().resolve()) for p in files), seed=seed,
                            split_seed=split_seed, protocol=protocol)
    else:
        raise DataError(f"dataset {dataset!r}", "is not a dataset the notebooks know", f"use one of: {', '.join(DATASETS)}")
    return prepare(config, progress=progress)


def split_datasets(dataset: str, split_seeds: Sequence[int], *, protocol: str = "sqn", **load: Any) -> list[PreparedData]:
    """One prepared dataset per split seed (``load_data(dataset, split_seed=s, protocol=…, **load)``).

    The ``time`` protocol has one split, by session end time: it gives one dataset whatever the seeds,
    and warns when several were asked for (vary the init seeds for a spread instead).
    """
    if protocol == "time":
        if len(split_seeds) > 1:
            warnings.warn(f"the time protocol has one split (by session end time): split seeds "
                          f"{' '.join(map(str, split_seeds))} give one dataset; vary the init seeds for a spread",
                          KitWarning, stacklevel=2)
        return [load_data(dataset, protocol=protocol, **load)]
    return [load_data(dataset, split_seed=s, protocol=protocol, **load) for s in split_seeds]


def _yoochoose_sample(path: Path, seed: int, progress: bool, split_seed: int | None = None) -> PreparedData:
    """The session-rec click sample (tab-separated, GRU4Rec-preprocessed) as an events log, prepared in the cache;
    the timestamp is the click's position in its session (only the order matters downstream)."""
    from .data.calibrate import yoochoose_sample_events

    events = yoochoose_sample_events(path)  # sessions with ≥ 3 clicks, in time order
    frame = pd.DataFrame({"session_id": events["session"], "timestamp": events.groupby("session").cumcount(),
                          "item_id": events["item"], "is_buy": events["is_buy"]})
    config = DataConfig(source="events", paths=(str(path),), seed=seed, split_seed=split_seed)
    # an in-memory log is prepared afresh each time (a second or two): nothing stale is reused
    name = f"events-yoochoose-sample-{seed}" + ("" if split_seed is None else f"-split{split_seed}")
    return prepare(config, out=paths.cache_dir() / name, frame=frame, progress=progress)


def real_samples(seed: int = 0) -> dict[str, PreparedData]:
    """The real samples of ``../shared`` that are here: ``{"RetailRocket sample": …, "Yoochoose sample": …}``."""
    out = {}
    if paths.shared_file(*RETAILROCKET_SAMPLE):
        out["RetailRocket sample"] = load_data("retailrocket-sample", seed=seed)
    if paths.shared_file(*YOOCHOOSE_SAMPLE):
        out["Yoochoose sample"] = load_data("yoochoose-sample", seed=seed)
    return out


def simulated(scales: Sequence[str], sessions: int | None = None, seed: int = 0) -> dict[str, PreparedData]:
    """``{"simulator SCALE": prepared data}``, each scale at most ``sessions`` sessions (None: its own count)."""
    from .data.simulator import SCALES

    return {f"simulator {s}": load_data("simulator", scale=s, seed=seed,
                                        sessions=None if sessions is None or sessions >= SCALES[s].sessions else sessions)
            for s in scales}


def repeat_table(datasets: Mapping[str, PreparedData], split: str = "train") -> pd.DataFrame:
    """``data.stats.repeat_stats`` of each dataset's ``split``: one row per dataset, each share as
    ``share [95 % interval]`` (``–`` where the dataset has no such events)."""
    from .data.stats import REPEAT_STATS, repeat_stats

    rows = []
    for name, data in datasets.items():
        st = repeat_stats(data.split_events(split), data.config.state_len)
        rows.append({"data": name, **{k: "–" if not st.loc[k, "events"] else
                                      f"{st.loc[k, 'share']:.3f} [{st.loc[k, 'low']:.3f}, {st.loc[k, 'high']:.3f}]"
                                      for k in REPEAT_STATS}})
    return pd.DataFrame(rows)


def fitted_baseline(name: str, data: PreparedData):
    """A non-trainable algorithm (popularity, recency, sknn, vsknn) fitted on ``data``'s train split."""
    from .algos import build_algo

    algo = build_algo(name, data.n_items, data.config.state_len, ModelConfig(), {})
    algo.fit(data.replay("train"), data)
    return algo


def heuristic_table(datasets: Mapping[str, PreparedData], split: str = "test",
                    algos: Sequence[str] = ("popularity", "recency"), metrics: Sequence[str] = ("HR@5", "NDCG@10")) -> pd.DataFrame:
    """The trivial baselines fitted on each dataset's train split, scored on ``split``: one row per (dataset, algorithm)."""
    from .evaluate import evaluate
    from .train import score_fn

    rows = []
    for name, data in datasets.items():
        for algo_name in algos:
            m = evaluate(score_fn(fitted_baseline(algo_name, data), torch.device("cpu")), data.replay(split))
            rows.append({"data": name, "algorithm": algo_name,
                         **{f"{kind} {k}": m[kind][k] for kind in ("purchase", "click") for k in metrics}})
    return pd.DataFrame(rows)


def out_dir(out: str | Path | None = None) -> Path:
    """The notebooks' output folder: ``out``, or ``build/notebooks`` of the project."""
    return Path(out).expanduser().resolve() if out else paths.build_dir() / "notebooks"


# --- runs ------------------------------------------------------------------------------
Variant = str | tuple[str, Mapping[str, Any]]


def run_folder(root: str | Path, run: RunConfig) -> Path:
    """``root/<backbone-algo>-s<seed>-<run_key>``: the same config always lands in the same folder.

    The key hashes the prepared data's path, so where no folder has that name, one of the same label and
    seed whose ``config.json`` is the same run on the same events (``runs.content_identity``) is taken: runs
    committed from another checkout, or trained before the data's cache folder was renamed (its source file
    touched), are found instead of trained again.
    """
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "-", run_label(run.to_dict()).replace(" ", "")).strip("-")
    exact = Path(root) / f"{slug[:60]}-s{run.train.seed}-{run_key(run)}"
    if exact.exists() or not run.data_fingerprint:
        return exact
    want = content_identity(run.to_dict())
    for other in sorted(Path(root).glob(f"{glob.escape(slug[:60])}-s{run.train.seed}-*")):
        try:
            written = read_json_object(other / "config.json", "")
        except KitError:
            continue  # not a run folder (or one being written): never taken
        if content_identity(written) == want:
            return other
    return exact


#: set (to anything) by the kit's papermill runner and ``make test``'s nbmake call: nobody watches those kernels
HEADLESS_ENV = ("CI", "MCRL_HEADLESS")


def auto_progress() -> bool:
    """Progress bars where someone watches them: on in an interactive IPython kernel (JupyterLab), off
    when ``CI`` or ``MCRL_HEADLESS`` is set (headless runs, where tqdm's widget state would only bloat
    the executed notebook) and outside a kernel (scripts ask for bars explicitly)."""
    import os
    import sys

    if any(os.environ.get(name) for name in HEADLESS_ENV):
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def ensure_run(run: RunConfig, root: str | Path, *, data: PreparedData | None = None, on_eval=None) -> Path:
    """Train ``run`` into its folder under ``root`` unless it finished there before; return the folder.

    A folder with ``metrics.json`` is complete (``train`` writes it last) and reused; one
    with only a checkpoint is resumed exactly where it stopped.
    """
    out = run_folder(root, run)
    if not (out / "metrics.json").exists():
        train(run, out, resume=True, data=data, on_eval=on_eval)
    elif _chosen_without_support(out, run):
        train(run, out, overwrite=True, data=data, on_eval=on_eval)
    return out


def _chosen_without_support(out: Path, run: RunConfig) -> bool:
    """A run finished before checkpoint selection looked at its support, whose selection metric had fewer
    validation events than ``select_min_support``: today's rule would have chosen otherwise."""
    _, metrics = load_run_metrics(out)
    if "selection" in metrics or not metrics.get("steps"):
        return False
    kind = run.train.select_metric.split("/")[0]
    return int(metrics.get("count", {}).get("val", {}).get(kind, 0)) < run.train.select_min_support


@dataclasses.dataclass
class Study:
    """One dataset, backbone, budget and list of seeds: train variants, compare them.

    ``variants`` map a label to an algorithm name or ``(name, settings)``, e.g.
    ``{"SQN": "sqn", "MCRL, K=1": ("mcrl", {"neg": 1})}``; runs go to ``OUT/runs``.
    """

    data: PreparedData
    backbone: str = "gru"
    steps: int = 2000
    batch_size: int = 256
    lr: float = 0.005
    #: validation (checkpoint selection) every this many steps; None: four times per run
    eval_every: int | None = None
    seeds: Sequence[int] = (0,)
    device: str = "auto"
    #: torch CPU threads (None: torch's default). 1 is fastest for small models on a shared machine
    threads: int | None = None
    hidden: int = 64
    out: str | Path | None = None
    #: tqdm bars; None: :func:`auto_progress` (on in JupyterLab, off in headless runs)
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = auto_progress()

    @property
    def root(self) -> Path:
        return out_dir(self.out) / "runs"

    def config(self, algo: str, params: Mapping[str, Any] | None = None, seed: int = 0) -> RunConfig:
        eval_every = self.eval_every or max(1, self.steps // 4)
        return RunConfig(
            data=str(self.data.root),
            # the data's fingerprint is part of the run's identity: data prepared again (e.g. by a
            # newer simulator) gets new run folders, never an old run's
            data_fingerprint=self.data.fingerprint,
            model=ModelConfig(backbone=self.backbone, hidden=self.hidden),
            algo=algo,
            algo_params=dict(params or {}),
            train=TrainConfig(
                steps=self.steps, batch_size=self.batch_size, lr=self.lr, eval_every=eval_every,
                log_every=max(1, min(100, eval_every // 2)), seed=seed, device=self.device, threads=self.threads, progress=self.progress,
            ),
        )

    def train(self, variants: Mapping[str, Variant]) -> dict[str, list[Path]]:
        """Every variant × every seed, trained or reused: ``{label: [run folder per seed]}``."""
        jobs = [(label, *_variant(v), seed) for label, v in variants.items() for seed in self.seeds]
        runs: dict[str, list[Path]] = {label: [] for label in variants}
        bar = tqdm(jobs, desc="runs", disable=not self.progress)
        for label, algo, params, seed in bar:
            bar.set_postfix_str(f"{label} seed {seed}")
            runs[label].append(ensure_run(self.config(algo, params, seed), self.root, data=self.data))
        return runs

    def compare(self, runs: Mapping[str, Sequence[Path]], split: str = "test") -> pd.DataFrame:
        """``report.compare_runs`` per label (seeds merged into mean and std), labelled as given."""
        tables = []
        for label, folders in runs.items():
            table = compare_runs(list(folders), split=split)
            tables.append(table.assign(label=label))
        return pd.concat(tables, ignore_index=True)

    def curves(self, runs: Mapping[str, Sequence[Path]]) -> pd.DataFrame:
        """Every run's ``history.csv`` stacked, with ``label`` and ``seed`` columns."""
        frames = []
        for label, folders in runs.items():
            for folder in folders:
                config, _ = load_run_metrics(folder)
                frames.append(pd.read_csv(Path(folder) / "history.csv").assign(label=label, seed=config["train"]["seed"]))
        return pd.concat(frames, ignore_index=True)

    def load(self, folder: str | Path):
        """``(run config, algorithm, data)`` of a finished run, on this study's device."""
        return load_run(folder, self.device)


def _variant(v: Variant) -> tuple[str, dict]:
    if isinstance(v, str):
        return v, {}
    algo, params = v
    return algo, dict(params)


def sample_available() -> bool:
    """Whether the RetailRocket sample of ``../shared`` (or ``MCRL_SHARED``) is here."""
    return paths.shared_file(*RETAILROCKET_SAMPLE) is not None


# --- the variants the notebooks share (one definition, so their run folders are shared) ---
def baselines(steps: int) -> dict[str, Variant]:
    """Supervised, SQN and SA2C. SA2C switches to the advantage-weighted CE halfway
    (the reference switches at 15,000 steps of a much longer run)."""
    return {"supervised": "supervised", "SQN": "sqn", "SA2C": ("sa2c", {"switch_step": steps // 2})}


def overestimation_variants(steps: int) -> dict[str, Variant]:
    """The value learners of the overestimation study: SQN, SA2C, MCRL and MCRL without its conservative term."""
    b = baselines(steps)
    return {"SQN": b["SQN"], "SA2C": b["SA2C"], "MCRL": "mcrl", "MCRL − conservative": ("mcrl", {"conservative": "none"})}


def ablation_variants() -> dict[str, Variant]:
    """MCRL with one component switched off at a time (``METHOD.md``)."""
    return {
        "MCRL": "mcrl",
        "MCRL − reward model": ("mcrl", {"reward_model": False}),
        "MCRL − transition model": ("mcrl", {"transition": "none"}),
        "MCRL − conservative": ("mcrl", {"conservative": "none"}),
        "MCRL − value weight (plain CE)": ("mcrl", {"policy_weight": "none"}),
    }


def sweep_variants(name: str, values: Sequence[Any], label: str | None = None) -> dict[str, Variant]:
    """MCRL with one setting swept: ``{"K = 1": ("mcrl", {"neg": 1}), …}``."""
    return {f"{label or name} = {v}": ("mcrl", {name: v}) for v in values}


def metric_summary(table: pd.DataFrame, columns: Sequence[str] = ("purchase NDCG@10", "click NDCG@10")) -> dict:
    """``{label: {column: mean, column std: std}}`` from a compare table — for the metrics JSON."""
    return {
        row["label"]: {**{c: row[c] for c in columns}, **{f"{c} std": row[f"{c} std"] for c in columns}, "seeds": row["seeds"]}
        for _, row in table.iterrows()
    }


__all__ = [
    "DATASETS",
    "Study",
    "ablation_variants",
    "baselines",
    "ensure_run",
    "format_compare",
    "heuristic_table",
    "load_data",
    "metric_summary",
    "out_dir",
    "overestimation_variants",
    "real_samples",
    "repeat_table",
    "run_folder",
    "run_key",
    "sample_available",
    "simulated",
    "split_datasets",
    "styled_compare",
    "sweep_variants",
]
