"""The one shared path: event log → re-indexed ids → seeded split → replay buffers.

Every source (RetailRocket, Yoochoose, any event log, the simulator) yields an
:class:`~mcrl_kit.data.schema.EventLog`; from there the path is identical. The
prepared folder holds:

=====================  ============================================================
``config.json``        the :class:`~mcrl_kit.config.DataConfig` that made it
``events.parquet``     ``session, timestamp, item, is_buy`` (indices, sorted)
``items.parquet``      ``item`` → ``raw_id`` (the item index is the position in the
                       sorted raw ids, as the reference's LabelEncoder)
``sessions.parquet``   ``session`` → ``raw_id`` and ``split`` (train / val / test)
``stats.json``         the statistics table (sessions, items, clicks, purchases, …)
``inputs.json``        path, size and mtime of the input files (an edited file is prepared again)
``extra_*.parquet``    side tables of the source (the simulator's latents)
=====================  ============================================================

The folder is built in a temporary sibling and renamed into place, so an interrupted
``prepare`` never leaves a half-written dataset; the cache (``data/cache``) is keyed by
the source, its input files (size, mtime) and the config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .. import faults, paths
from ..config import DataConfig
from ..errors import DataError
from ..seeding import numpy_rng
from ..storage import atomic_dir, read_json, write_json
from .replay import ReplayBuffer
from .schema import EventLog
from .split import SPLITS, split_sessions

REQUIRED_FILES = ("config.json", "events.parquet", "items.parquet", "sessions.parquet", "stats.json")
#: the input files' path, size and mtime when the folder was written (see :func:`prepare`)
INPUTS_FILE = "inputs.json"


def load_source(config: DataConfig, progress: bool = True, frame: pd.DataFrame | None = None) -> EventLog:
    """Read (or simulate) the configured source as a validated event log."""
    from . import simulator, sources

    if config.source == "simulator":
        return simulator.simulate(config.scale, seed=config.seed, sessions=config.sessions, progress=progress)
    if config.source == "retailrocket":
        return sources.read_retailrocket(config.paths[0], config, progress=progress)
    if config.source == "yoochoose":
        return sources.read_yoochoose(config.paths, config, rng=numpy_rng(config.seed, "yoochoose-sample"), progress=progress)
    if config.source == "events":
        return sources.read_events(frame if frame is not None else config.paths[0], columns=config.columns, progress=progress)
    raise AssertionError(config.source)  # DataConfig.validate refuses other names


def input_files(config: DataConfig) -> list[list]:
    """``[path, size, mtime_ns]`` of each input file: a prepared folder is reused only for the same."""
    files = []
    for p in config.paths:
        path = Path(p).expanduser()
        st = path.stat() if path.exists() else None
        files.append([str(path.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None])
    return files


def cache_key(config: DataConfig) -> str:
    """A folder name for ``config``: source, scale or file stem, and a hash of both."""
    fingerprint = {"config": config.to_dict(), "files": input_files(config)}
    digest = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:10]
    label = config.scale if config.source == "simulator" else Path(config.paths[0]).name.split(".")[0]
    return f"{config.source}-{label}-{digest}"


def prepare(
    config: DataConfig | None = None,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    force: bool = False,
    frame: pd.DataFrame | None = None,
) -> PreparedData:
    """Prepare ``config``'s source into ``out`` (default: the cache) and load it.

    An existing complete folder is reused unless ``force``; ``frame`` passes an
    in-memory event log for ``source="events"``.
    """
    config = config or DataConfig()
    if out is None:
        out = paths.cache_dir() / cache_key(config)
    out = Path(out)
    # the whole folder is replaced: never a file or a folder of something else (`--out ~`)
    if out.exists() and not (out.is_dir() and (is_prepared(out) or not any(out.iterdir()))):
        raise DataError(
            str(out), "exists and is not a prepared-data folder (prepare replaces the whole folder)",
            "choose another --out, or delete it first",
        )
    inputs = input_files(config)
    if not force and frame is None and is_prepared(out):
        existing = load_prepared(out)
        # the same config *and* the same input files (an edited CSV is prepared again)
        stored = read_json(out / INPUTS_FILE) if (out / INPUTS_FILE).exists() else None
        if existing.config == config and stored == inputs:
            return existing
    log = load_source(config, progress=progress, frame=frame)
    write_prepared(log, config, out, inputs=inputs)
    return load_prepared(out)


def is_prepared(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and all((path / f).exists() for f in REQUIRED_FILES)


def encode(log: EventLog, config: DataConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Re-index items and sessions, split sessions; return (events, items, sessions)."""
    ev = log.events
    if len(ev) == 0:
        raise DataError(log.name, "no events are left after filtering", "use a larger input or relax the filters")
    catalogue = np.unique(ev["item_id"].to_numpy()) if log.catalogue is None else np.unique(log.catalogue)
    item = np.searchsorted(catalogue, ev["item_id"].to_numpy())
    if log.catalogue is not None and (
        (item >= len(catalogue)).any() or (catalogue[np.minimum(item, len(catalogue) - 1)] != ev["item_id"].to_numpy()).any()
    ):
        raise DataError(log.name, "an event names an item outside the declared catalogue", "declare every item in the catalogue")
    raw_sessions, session = np.unique(ev["session_id"].to_numpy(), return_inverse=True)
    parts = split_sessions(np.arange(len(raw_sessions)), numpy_rng(config.seed, "split"), config.split)
    split_of = np.empty(len(raw_sessions), dtype=object)
    for name, ids in parts.items():
        split_of[ids] = name
    events = pd.DataFrame(
        {
            "session": session.astype(np.int64),
            "timestamp": ev["timestamp"].to_numpy(np.int64),
            "item": item.astype(np.int64),
            "is_buy": ev["is_buy"].to_numpy(np.int8),
        }
    )
    # validate_events sorted by raw session id; the index order is the same order
    items = pd.DataFrame({"item": np.arange(len(catalogue), dtype=np.int64), "raw_id": catalogue})
    sessions = pd.DataFrame(
        {"session": np.arange(len(raw_sessions), dtype=np.int64), "raw_id": raw_sessions, "split": split_of.astype(str)}
    )
    return events, items, sessions


def compute_stats(events: pd.DataFrame, sessions: pd.DataFrame, n_items: int, name: str, info: dict | None = None) -> dict:
    """The paper's statistics table for one prepared dataset, plus per-split counts."""
    n_sessions = int(sessions.shape[0])
    buys = int(events["is_buy"].sum())
    stats = {
        "dataset": name,
        "sessions": n_sessions,
        "items": int(n_items),
        "items_seen": int(events["item"].nunique()),
        "events": len(events),
        "clicks": int(len(events) - buys),
        "purchases": buys,
        "mean_length": round(len(events) / max(n_sessions, 1), 3),
        "purchase_ratio": round(buys / max(len(events), 1), 4),
    }
    split_of = sessions.set_index("session")["split"]
    ev_split = split_of.reindex(events["session"]).to_numpy()
    for name_ in SPLITS:
        stats[f"{name_}_sessions"] = int((sessions["split"] == name_).sum())
        stats[f"{name_}_events"] = int((ev_split == name_).sum())
    if info:
        stats["source_info"] = dict(info)
    return stats


def write_prepared(log: EventLog, config: DataConfig, out: str | Path, inputs: list | None = None) -> Path:
    """Encode, split and write ``log`` to ``out`` atomically (temp folder, then rename).

    ``inputs`` (:func:`input_files`, taken before reading them) is saved so that
    :func:`prepare` reuses the folder only for unchanged input files.
    """
    events, items, sessions = encode(log, config)
    stats = compute_stats(events, sessions, len(items), log.name, log.info)
    with atomic_dir(out) as tmp:
        config.save(tmp / "config.json")
        write_json(tmp / INPUTS_FILE, input_files(config) if inputs is None else inputs)
        events.to_parquet(tmp / "events.parquet", index=False)
        faults.point("prepare:events")
        # raw ids may mix ints and strings across sources; parquet needs one type per column
        items.assign(raw_id=items["raw_id"].astype(str)).to_parquet(tmp / "items.parquet", index=False)
        sessions.assign(raw_id=sessions["raw_id"].astype(str)).to_parquet(tmp / "sessions.parquet", index=False)
        for key, table in log.extras.items():
            table.to_parquet(tmp / f"extra_{key}.parquet", index=False)
        write_json(tmp / "stats.json", stats)
    return Path(out)


@dataclasses.dataclass
class PreparedData:
    """A prepared dataset on disk, loaded: events, ids, split, stats, replay buffers."""

    root: Path
    config: DataConfig
    events: pd.DataFrame
    items: pd.DataFrame
    sessions: pd.DataFrame
    stats: dict

    @property
    def n_items(self) -> int:
        return int(self.stats["items"])

    @property
    def pad(self) -> int:
        return self.n_items

    def split_events(self, split: str) -> pd.DataFrame:
        """The events of one split, sorted by (session, time)."""
        if split not in SPLITS:
            raise DataError(f"split {split!r}", "is not a split", f"use one of {', '.join(SPLITS)}")
        ids = self.sessions.loc[self.sessions["split"] == split, "session"].to_numpy()
        return self.events[self.events["session"].isin(ids)].reset_index(drop=True)

    @cached_property
    def _buffers(self) -> dict[str, ReplayBuffer]:
        return {}

    def replay(self, split: str = "train") -> ReplayBuffer:
        """The replay buffer of ``split`` (built once, then cached in memory)."""
        if split not in self._buffers:
            ev = self.split_events(split)
            if len(ev) == 0:
                raise DataError(
                    f"{self.root} ({split} split)", "has no events",
                    "prepare more sessions (the split cuts sessions 80/10/10)",
                )
            self._buffers[split] = ReplayBuffer.from_events(
                ev["session"].to_numpy(), ev["item"].to_numpy(), ev["is_buy"].to_numpy(), self.n_items, self.config.state_len
            )
        return self._buffers[split]

    def extra(self, key: str) -> pd.DataFrame | None:
        path = self.root / f"extra_{key}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def stats_frame(self) -> pd.DataFrame:
        return stats_frame([self.stats])


def load_prepared(path: str | Path) -> PreparedData:
    """Load a folder written by :func:`prepare`; a clear error if it is not one."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(str(root), "no such prepared-data folder", "run `python -m mcrl_kit prepare --out DIR` first")
    missing = [f for f in REQUIRED_FILES if not (root / f).exists()]
    if missing:
        raise DataError(
            str(root), f"is not a complete prepared-data folder (missing {', '.join(missing)})",
            "run `python -m mcrl_kit prepare --out DIR` again",
        )
    return PreparedData(
        root=root,
        config=DataConfig.load(root / "config.json"),
        events=pd.read_parquet(root / "events.parquet"),
        items=pd.read_parquet(root / "items.parquet"),
        sessions=pd.read_parquet(root / "sessions.parquet"),
        stats=read_json(root / "stats.json"),
    )


STATS_COLUMNS = {
    "dataset": "dataset",
    "sessions": "sessions",
    "items": "items",
    "clicks": "clicks",
    "purchases": "purchases",
    "mean_length": "mean length",
    "purchase_ratio": "purchase ratio",
}


def stats_frame(stats: list[dict]) -> pd.DataFrame:
    """The paper-style statistics table (one row per dataset)."""
    return pd.DataFrame([{label: s.get(key) for key, label in STATS_COLUMNS.items()} for s in stats])


def readable_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts with thousands separators (for printing; the numbers stay exact)."""
    frame = frame.copy()
    for col in ("sessions", "items", "clicks", "purchases"):
        frame[col] = frame[col].map(lambda v: f"{v:,}")
    return frame


def format_stats(stats: dict | list[dict]) -> str:
    """The statistics table as aligned text (what ``prepare`` prints)."""
    rows = [stats] if isinstance(stats, dict) else stats
    text = readable_stats(stats_frame(rows)).to_string(index=False)
    splits = "; ".join(
        f"{s['dataset']}: " + ", ".join(f"{k} {s[f'{k}_sessions']:,} sessions / {s[f'{k}_events']:,} events" for k in SPLITS)
        for s in rows
        if "train_sessions" in s
    )
    return text + ("\nsplit — " + splits if splits else "")
