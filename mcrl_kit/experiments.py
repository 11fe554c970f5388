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
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from . import paths
from .config import DataConfig, ModelConfig, TrainConfig
from .data import PreparedData, prepare
from .errors import DataError
from .report import compare_runs, format_compare, load_run_metrics, run_label
from .runs import RunConfig, load_run, run_key
from .train import train

#: the RetailRocket sample shipped in ``../shared/data`` (5,000 real visitors)
RETAILROCKET_SAMPLE = ("retailrocket_sample_5k_visitors", "sample_events.csv.gz")
DATASETS = ("simulator", "retailrocket-sample", "auto", "retailrocket", "yoochoose", "events")


# --- data ------------------------------------------------------------------------------
def load_data(
    dataset: str = "simulator",
    *,
    scale: str = "tiny",
    seed: int = 0,
    path: str | Sequence[str] | None = None,
    progress: bool = False,
) -> PreparedData:
    """Prepare (or reuse from the cache) a dataset by name.

    - ``simulator``: the embedded synthetic shoppers at ``scale``;
    - ``retailrocket-sample``: the 5,000-visitor RetailRocket sample in ``../shared``;
    - ``auto``: the sample when ``../shared`` (or ``MCRL_SHARED``) holds it, else the simulator;
    - ``retailrocket`` / ``yoochoose`` / ``events``: your own files in ``path``
      (RetailRocket ``events.csv``; Yoochoose clicks then buys; one CSV/parquet event log).
    """
    if dataset == "auto":
        dataset = "retailrocket-sample" if paths.shared_file(*RETAILROCKET_SAMPLE) else "simulator"
    if dataset == "simulator":
        config = DataConfig(source="simulator", scale=scale, seed=seed)
    elif dataset == "retailrocket-sample":
        sample = paths.shared_file(*RETAILROCKET_SAMPLE)
        if sample is None:
            raise DataError(
                "dataset 'retailrocket-sample'", f"needs ../shared/data/{'/'.join(RETAILROCKET_SAMPLE)}, which is absent",
                "set MCRL_SHARED to the folder holding it, or use DATASET = 'simulator'",
            )
        config = DataConfig(source="retailrocket", paths=(str(sample),), seed=seed)
    elif dataset in ("retailrocket", "yoochoose", "events"):
        if not path:
            raise DataError(
                f"dataset {dataset!r}", "needs your input file(s)",
                "set DATA_PATH (RetailRocket: events.csv; Yoochoose: [clicks, buys]; events: one CSV/parquet)",
            )
        files = (path,) if isinstance(path, str | Path) else tuple(path)
        config = DataConfig(source=dataset, paths=tuple(str(Path(p).expanduser().resolve()) for p in files), seed=seed)
    else:
        raise DataError(f"dataset {dataset!r}", "is not a dataset the notebooks know", f"use one of: {', '.join(DATASETS)}")
    return prepare(config, progress=progress)


def out_dir(out: str | Path | None = None) -> Path:
    """The notebooks' output folder: ``out``, or ``build/notebooks`` of the project."""
    return Path(out).expanduser().resolve() if out else paths.build_dir() / "notebooks"


# --- runs ------------------------------------------------------------------------------
Variant = str | tuple[str, Mapping[str, Any]]


def run_folder(root: str | Path, run: RunConfig) -> Path:
    """``root/<backbone-algo>-s<seed>-<run_key>``: the same config always lands in the same folder."""
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "-", run_label(run.to_dict()).replace(" ", "")).strip("-")
    return Path(root) / f"{slug[:60]}-s{run.train.seed}-{run_key(run)}"


def ensure_run(run: RunConfig, root: str | Path, *, data: PreparedData | None = None) -> Path:
    """Train ``run`` into its folder under ``root`` unless it finished there before; return the folder.

    A folder with ``metrics.json`` is complete (``train`` writes it last) and reused; one
    with only a checkpoint is resumed exactly where it stopped.
    """
    out = run_folder(root, run)
    if not (out / "metrics.json").exists():
        train(run, out, resume=True, data=data)
    return out


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
    progress: bool = False

    @property
    def root(self) -> Path:
        return out_dir(self.out) / "runs"

    def config(self, algo: str, params: Mapping[str, Any] | None = None, seed: int = 0) -> RunConfig:
        eval_every = self.eval_every or max(1, self.steps // 4)
        return RunConfig(
            data=str(self.data.root),
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
    "load_data",
    "metric_summary",
    "out_dir",
    "overestimation_variants",
    "run_folder",
    "run_key",
    "sample_available",
    "sweep_variants",
]
