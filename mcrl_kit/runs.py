"""A run folder: its config, the files the kit owns there, its lock, and the one loader.

A run folder (``train --out RUN``) holds only the files of :data:`RUN_FILES` (and the
lock); everything that reads a run — ``evaluate``, ``diagnose``, ``compare``, the
inspector, ``train --resume`` — goes through the functions here, so the same rules hold
for all of them:

- **Nothing is unpickled.** Checkpoints and weights are read with
  ``torch.load(..., weights_only=True)``: tensors, numbers, strings and containers only.
  A file whose pickle would build any other object (and so could run code) is refused
  (:func:`load_weights`); so is a truncated or garbage one, with a clear message.
- **A run format.** ``config.json`` records :data:`RUN_FORMAT`. Older formats (1: no
  format or data fingerprint recorded; 2: before the Glorot heads and the sound MCRL)
  still load for evaluation and diagnosis — with the settings they were trained with
  filled in (:data:`BEFORE_FORMAT_3`) — but cannot be resumed; a newer format than this
  kit knows is refused.
- **The data it was trained on.** The prepared data's fingerprint
  (:attr:`~mcrl_kit.data.prepare.PreparedData.fingerprint`) is saved in the run;
  a resume on other data is refused. The fingerprint, not the folder's path, names the data
  (:func:`content_identity`, :func:`same_data`): the same events at another path — a clone,
  a cache folder renamed because its source file was touched — are the same data, and a
  run whose recorded folder is gone loads them from the current cache.
- **Nothing lost.** ``train --out`` into a folder that holds anything is refused unless
  it is resumed (``--resume``) or ``--overwrite`` is given; ``--overwrite`` removes only
  the files of :data:`RUN_FILES`, never a user's own.
- **One writer.** A run folder is locked (``RUN/.lock``, the ``filelock`` package) while
  a process trains into it; a second process is refused with the holder's PID. The lock
  is an OS lock (``flock``): a killed holder never blocks anyone.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import torch

from . import paths
from .algos import Algo, algo_config, build_algo
from .config import Config, ModelConfig, TrainConfig
from .data import PreparedData, load_prepared
from .devices import resolve_device
from .errors import ConfigError, DataError, KitError, TrainingError
from .locks import locked
from .models import backbone_class
from .storage import read_json_object, write_json

#: the layout of a run folder; 2 = ``format`` and ``data_fingerprint`` recorded; 3 = the defaults
#: that changed meaning are explicit (Glorot item heads; MCRL's anchor, transition scale, value bound)
RUN_FORMAT = 3
#: settings whose default changed with format 3: a run written before says nothing about them and was
#: trained with these values, so they are filled in when it is loaded (its results stay reproducible)
BEFORE_FORMAT_3 = {"model": {"head_init": "torch"},
                   "mcrl": {"anchor": "none", "transition_scale": "none", "value_bound": "none"}}

#: settings added since run format 3 whose default is exactly what runs written before did: at that default
#: they are left out of a run's identity, so those runs keep their folders (a study reuses them) and resume
ADDED_SETTINGS = {"algo_params": {"sampler": "uniform"},
                  # earlier runs chose on select_metric whatever its support; where it had 50 validation
                  # events or more that is what these defaults do (experiments.ensure_run retrains the others)
                  "train": {"select_min_support": 50, "select_fallback": "click/NDCG@10", "test_metrics": True}}

#: the files the kit writes in a run folder (and so the only ones ``--overwrite`` removes)
RUN_FILES = re.compile(
    r"config\.json|history\.csv|checkpoint\.pt|model\.pt|timing\.csv|metrics\.json|best-\d{8}\.pt"
    r"|eval_(train|val|test)\.json|ranks_(val|test)\.npz|diagnose_(val|test)\.(parquet|json)|\.lock|\.lock\.owner"
)
#: temporaries of the kit's atomic writes (``storage._temp_prefix``)
_TEMP = re.compile(r"\..+\.[0-9a-f]{8}-\d+\..+\.(tmp|old)")


@dataclasses.dataclass
class RunConfig(Config):
    """Everything that defines a run; saved as ``RUN/config.json``."""

    #: a prepared-data folder (``python -m mcrl_kit prepare --out DIR``)
    data: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    algo: str = "supervised"
    #: the algorithm's own config (see its dataclass); unknown keys are refused
    algo_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    #: the prepared data's fingerprint, filled in by ``train`` (empty: not yet trained)
    data_fingerprint: str = ""

    def validate(self) -> None:
        # each name checked by its own registry, and the algorithm's fields resolved, before any work starts
        backbone_class(self.model.backbone)
        self.algo_params = algo_config(self.algo, self.algo_params).to_dict()

    def save(self, path: str | Path) -> Path:
        return write_json(path, {"format": RUN_FORMAT, **self.to_dict()})

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read ``config.json`` of a run; a clear error for a malformed or unknown-format file."""
        path = Path(path)
        raw = read_json_object(path, "restore the run's config.json or train the run again", error=ConfigError)
        if "source" in raw and "model" not in raw:
            raise ConfigError(str(path.parent), "is a prepared-data folder, not a run folder",
                              "pass the --out folder of `train` (the data folder goes to train --data)")
        fmt = raw.pop("format", 1)
        if not isinstance(fmt, int) or fmt > RUN_FORMAT:
            raise ConfigError(str(path), f"has run format {fmt!r}; this mcrl_kit reads formats 1 to {RUN_FORMAT}",
                              "upgrade mcrl_kit to the version that wrote the run")
        if fmt < 3:
            raw["model"] = {**BEFORE_FORMAT_3["model"], **(raw.get("model") or {})}
            if raw.get("algo") in BEFORE_FORMAT_3:
                raw["algo_params"] = {**BEFORE_FORMAT_3[raw["algo"]], **(raw.get("algo_params") or {})}
        try:
            return cls.from_dict(raw)
        except KitError as err:
            raise ConfigError(str(path), f"does not describe a run this kit can build ({err.problem})",
                              "restore the run's config.json or train the run again") from None


def run_format(run_dir: str | Path) -> int:
    """The run format recorded in ``RUN/config.json`` (1 when none is recorded)."""
    return read_json_object(Path(run_dir) / "config.json", "restore the run's config.json or train the run again",
                            error=ConfigError).get("format", 1)


# --- reading tensors without unpickling code ---------------------------------------------
def load_weights(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with one clear error per way it can fail."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(str(path), "is missing", "train the run again, or restore the file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        detail = detail.group(1).strip()[:200] if detail else text.splitlines()[0][:200]
        if "Unsupported global" not in text and "Unsupported class" not in text:  # a broken stream, not a foreign object
            raise TrainingError(str(path), f"is truncated or corrupt ({detail})",
                                "train the run again, or resume from an intact checkpoint") from None
        raise TrainingError(
            str(path), "needs full unpickling to load, which can run code; the kit refuses it "
            f"(every file the kit writes loads with weights_only=True; this one asks for: {detail})",
            "use only checkpoints written by mcrl_kit; if you trust this file, convert it yourself to plain tensors",
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError) as err:
        raise TrainingError(
            str(path), f"is truncated or corrupt ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else 'empty'})",
            "train the run again, or resume from an intact checkpoint",
        ) from None


def load_state(module: torch.nn.Module, state: Any, path: Path) -> None:
    """``module.load_state_dict(state)`` with a clear error when the file belongs to another model."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as err:
        raise TrainingError(
            str(path), f"does not match the run's model ({str(err).splitlines()[0][:200]})",
            "keep config.json and the weights of one run together, or train the run again",
        ) from None


# --- the run folder ------------------------------------------------------------------------
def foreign_files(folder: Path) -> list[str]:
    """Names in ``folder`` that the kit did not write (a user's own files)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not (RUN_FILES.fullmatch(p.name) or _TEMP.fullmatch(p.name)))


def kit_files(folder: Path) -> list[Path]:
    """The files of :data:`RUN_FILES` present in ``folder`` (the lock excluded)."""
    return sorted(p for p in folder.iterdir() if RUN_FILES.fullmatch(p.name) and not p.name.startswith(".lock"))


def check_out(out: Path, run: RunConfig, *, resume: bool, overwrite: bool) -> None:
    """Refuse an ``--out`` that would lose something; run before anything is written (and again under the lock)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(str(out), "exists and is not a folder", "choose another --out for the run folder")
    if (out / "events.parquet").exists() or (out / "stats.json").exists():  # its config.json would be overwritten
        raise ConfigError(str(out), "is a prepared-data folder, not a run folder", "choose another --out for the run")
    if not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".lock")]:
        return  # nothing there yet (the lock this process may hold aside)
    if overwrite:
        return
    foreign = foreign_files(out)
    if not resume:
        what = "already holds a run" if (out / "metrics.json").exists() or (out / "checkpoint.pt").exists() else \
            f"is not empty ({', '.join(foreign[:5]) or 'files of an unfinished run'}{' …' if len(foreign) > 5 else ''})"
        raise ConfigError(
            str(out), what,
            "pass --resume to continue the run there, --overwrite to replace the kit's files in it (your own files "
            "stay), or choose another --out",
        )
    if foreign and not (out / "config.json").exists():
        raise ConfigError(
            str(out), f"holds files the kit did not write ({', '.join(foreign[:5])}) and no run to resume",
            "choose another --out, or pass --overwrite to train there anyway (your files stay)",
        )
    if (out / "checkpoint.pt").exists() and (out / "config.json").exists():
        written = RunConfig.load(out / "config.json")
        if run_format(out) < RUN_FORMAT:
            raise TrainingError(
                str(out), f"was written by an older mcrl_kit (run format {run_format(out)}; this kit writes "
                f"{RUN_FORMAT}) and cannot be resumed safely",
                "evaluate it as it is (`evaluate --run`), or train again into a new --out (or with --overwrite)",
            )
        # config.json is the checkpoint's config (both written by the same run): refuse a
        # different one before overwriting it
        if resume_key(written.to_dict()) != resume_key(run.to_dict()):
            raise TrainingError(
                str(out / "checkpoint.pt"), "was written by a different configuration",
                "resume with the same settings as the interrupted run (only --device, --threads and --no-progress "
                "may change), or start a new --out",
            )
        if run.data_fingerprint and written.data_fingerprint != run.data_fingerprint:
            raise TrainingError(
                str(out), f"was trained on other data: {run.data} has fingerprint {run.data_fingerprint[:12]}, the run "
                f"{written.data_fingerprint[:12]} (the folder was prepared again since)",
                "resume on the data the run started on, or train again into a new --out",
            )


def clear_kit_files(out: Path) -> list[Path]:
    """``--overwrite``: remove the kit's own files of ``out`` (never anything else); return them."""
    removed = kit_files(out) if out.is_dir() else []
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


# --- a run's identity: what determines its result ---------------------------------------
#: how a run executes, not what it computes: the only settings a resume may change
EXECUTION = ("device", "threads", "progress")


def run_identity(config: Mapping[str, Any]) -> dict:
    """A run's config (``RunConfig.to_dict()`` or its ``config.json``) less the execution settings.

    The one definition behind every "same run?" question: a resume must match it, a study
    reuses a folder by its hash (:func:`run_key`), a table merges the seeds of one
    (:func:`group_key`).
    """
    cfg = json.loads(json.dumps(dict(config)))  # a deep copy of plain JSON
    cfg.pop("format", None)
    cfg["train"] = {k: v for k, v in cfg.get("train", {}).items() if k not in EXECUTION}
    for section, added in ADDED_SETTINGS.items():
        if isinstance(cfg.get(section), dict):
            cfg[section] = {k: v for k, v in cfg[section].items() if not (k in added and added[k] == v)}
    return cfg


def content_identity(config: Mapping[str, Any]) -> dict:
    """``run_identity`` with the data named by what training sees: where a fingerprint is recorded, the
    prepared folder's path is left out. The same events at another path — a clone elsewhere, a cache
    prepared again because its source file was touched (the cache key holds the file's mtime) — make the
    same run; other events make another one."""
    cfg = run_identity(config)
    if cfg.get("data_fingerprint"):
        cfg.pop("data", None)
    return cfg


def same_data(config: Mapping[str, Any], data: PreparedData) -> bool:
    """Whether a run (its config) was trained on ``data``: the same fingerprint where the run records one
    (wherever either folder lies), else the same prepared folder."""
    if config.get("data_fingerprint"):
        return config["data_fingerprint"] == data.fingerprint
    return Path(str(config.get("data"))).resolve() == Path(data.root).resolve()


def _recorded_or_cached(root: Any) -> tuple[Path, Path]:
    """Where a run's prepared data is looked for: the folder it recorded, then the current cache's folder of
    that name (the same cache key: the same settings and input files, wherever the cache lies)."""
    recorded = Path(str(root))
    return recorded, paths.cache_dir() / recorded.name


def _data_of(run: RunConfig) -> PreparedData:
    """The prepared data ``run`` was trained on: its recorded folder, or — where that folder is gone (a run
    found by its data from another checkout or cache, ``experiments.run_folder``) — a folder of the current
    cache with the same fingerprint, looked for under the same name first."""
    recorded, same_name = _recorded_or_cached(run.data)
    if recorded.exists() or not run.data_fingerprint:
        return load_prepared(recorded)
    source = recorded.name.rsplit("-", 1)[0]  # e.g. retailrocket-sample_events: the folder's name less its key
    for candidate in dict.fromkeys([same_name, *sorted(same_name.parent.glob(f"{glob.escape(source)}-*"))]):  # each once
        try:
            data = load_prepared(candidate)
        except KitError:
            continue
        if data.fingerprint == run.data_fingerprint:
            return data
    raise DataError(run.data, "is gone, and no prepared folder of the cache holds the run's data "
                    f"(fingerprint {run.data_fingerprint[:12]})", "prepare that dataset again (e.g. `prepare` or "
                    "`experiments.load_data`), then load the run")


def resume_key(config: Mapping[str, Any]) -> dict:
    """What a resumed run must share (the data fingerprint is checked on its own, with its own message)."""
    return {k: v for k, v in content_identity(config).items() if k != "data_fingerprint"}


def run_key(run: RunConfig) -> str:
    """A short hash of the run's identity: the same settings always give the same key."""
    return hashlib.sha1(json.dumps(run_identity(run.to_dict()), sort_keys=True).encode()).hexdigest()[:10]


def group_key(config: Mapping[str, Any]) -> str:
    """The identity less the seeds: runs that differ only in their init seed or in their data's split seed
    are one row of a table. The data is named by its prepared folder's settings less ``split_seed`` (the
    folder's path where its config cannot be read); its fingerprint is not part of it, so runs from before
    the fingerprint merge with later ones."""
    cfg = resume_key(config)
    cfg["train"].pop("seed", None)
    cfg["data"] = data_identity(config.get("data"))
    return json.dumps(cfg, sort_keys=True)


def data_identity(root: Any) -> Any:
    """A prepared folder's settings less the split seed (the same sessions cut another way). Where the
    recorded folder is gone (runs from another checkout or an older cache), the current cache's folder of
    the same name is read instead; where neither can be read, the folder's name (its cache key: the same
    name is the same settings and input files, wherever the cache lies)."""
    if root is None:
        return None
    for folder in _recorded_or_cached(root):
        try:
            settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            continue
        if isinstance(settings, dict):
            settings.pop("split_seed", None)
            return settings
    return Path(str(root)).name


def lock(out: Path):
    """Hold ``RUN/.lock`` while training into ``out`` (a second process is refused with the holder's PID)."""
    return locked(out / ".lock", subject=out)


# --- the one loader ----------------------------------------------------------------------
def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[RunConfig, Algo, PreparedData]:
    """Load a finished run: its config, the selected model (on ``device``) and its data.

    Every command that reads a run's weights comes here (``evaluate``, ``diagnose``, the
    inspector, studies), so the rules of this module hold for all of them.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        if (run_dir / "stats.json").exists():
            raise ConfigError(str(run_dir), "is a prepared-data folder, not a run folder",
                              "pass the --out folder of `train` (the data folder goes to train --data)")
        raise ConfigError(str(run_dir), "is not a run folder (no config.json)", "pass the --out folder of `train`")
    run = RunConfig.load(run_dir / "config.json")
    weights = run_dir / "model.pt"
    if not weights.exists():
        raise ConfigError(str(run_dir), "has no model.pt (the run did not finish)", "resume it with `train ... --resume`")
    state = load_weights(weights)  # before the data: a refused file costs nothing else
    data = _data_of(run)
    if run.data_fingerprint and run.data_fingerprint != data.fingerprint:
        raise ConfigError(
            str(run_dir), f"was trained on other data than {run.data} holds now (prepared again since: fingerprint "
            f"{data.fingerprint[:12]}, the run's {run.data_fingerprint[:12]})",
            "prepare the data the run was trained on again, or train the run again",
        )
    dev = resolve_device(device)
    algo = build_algo(run.algo, data.n_items, data.config.state_len, run.model, run.algo_params, seed=run.train.seed)
    load_state(algo, state, weights)
    return run, algo.to(dev).eval(), data
