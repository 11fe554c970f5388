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
``inputs.json``        the data format, the simulator version and path, size, mtime of the input files
                       (an edited file, a newer simulator or format: prepared again)
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
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import faults, paths
from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..locks import locked
from ..seeding import numpy_rng
from ..storage import atomic_dir, read_json, read_json_object, write_json
from . import simulator
from .replay import ReplayBuffer
from .schema import EventLog
from .split import SPLITS, split_by_time, split_sessions

REQUIRED_FILES = ("config.json", "events.parquet", "items.parquet", "sessions.parquet", "stats.json")
#: the input files' path, size and mtime when the folder was written (see :func:`prepare`)
INPUTS_FILE = "inputs.json"


def load_source(config: DataConfig, progress: bool = True, frame: pd.DataFrame | None = None) -> EventLog:
    """Read (or simulate) the configured source as a validated event log (its reader in ``data.sources.SOURCES``)."""
    from .sources import source_options, source_reader

    return source_reader(config.source)(config, source_options(config), progress=progress, frame=frame)


#: bump when what ``prepare`` writes changes: it enters every cache key and ``inputs.json``,
#: so folders written by an older kit are prepared again, never reused
DATA_FORMAT = 2


def input_files(config: DataConfig) -> dict:
    """What a prepared folder is reused for: the kit's data format, the simulator's version (it
    generates the data) and ``[path, size, mtime_ns]`` of each input file."""
    files = []
    for p in config.paths:
        path = Path(p).expanduser()
        st = path.stat() if path.exists() else None
        files.append([str(path.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None])
    made_by = {"format": DATA_FORMAT}
    if config.source == "simulator":
        made_by["simulator"] = simulator.SIMULATOR_VERSION
    return {**made_by, "files": files}


#: DataConfig fields added after folders were cached, at the default that does what those folders did:
#: left out of the cache key there, so the folders (and the runs that name them) are found again
ADDED_FIELDS = {"split_seed": None, "protocol": "sqn"}


#: the protocol's filters: every folder cached before they were per-source had them hashed at 3
FILTERS, FILTERS_BEFORE = ("min_session_events", "min_item_events"), 3
#: sources whose filters changed meaning when they became per-source (Yoochoose gained the item filter, events
#: both, default 0): their keys carry this mark, so no folder cached before is taken for a filtered request
FILTERS_CHANGED = ("yoochoose", "events")


def cache_key(config: DataConfig) -> str:
    """A folder name for ``config``: source, scale or file stem, and a hash of both."""
    from .sources import source_options

    settings = {k: v for k, v in config.to_dict().items() if not (k in ADDED_FIELDS and ADDED_FIELDS[k] == v)}
    applied = dataclasses.asdict(source_options(config))  # the filters the source applies (its defaults resolved)
    for name in FILTERS:  # hashed as applied, or as before for a source that reads none (the simulator)
        settings[name] = applied.get(name, FILTERS_BEFORE)
    if config.source in FILTERS_CHANGED:
        settings["filters"] = "per-source"
    fingerprint = {"config": settings, "files": input_files(config)}
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
    from .sources import source_options

    source_options(config)  # the sources' registry checks the source, its files and its options, before any work
    if out is None:
        out = paths.cache_dir() / cache_key(config)
    out = Path(out)
    _check_replaceable(out)  # before the lock: a refusal leaves nothing behind
    # one writer per data folder (the folder itself is swapped in whole, so the lock sits beside it);
    # a second process waits, then finds the folder made and reuses it
    with locked(out.parent / f".{out.name}.lock", subject=out, wait=True):
        _check_replaceable(out)
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


#: the files ``prepare`` writes in a data folder: the only ones it replaces
DATA_FILES = re.compile(r"config\.json|events\.parquet|items\.parquet|sessions\.parquet|stats\.json|inputs\.json|extra_\w+\.parquet")


def _check_replaceable(out: Path) -> None:
    """``prepare`` replaces the whole folder: only an empty one or one holding nothing but its own files."""
    if out.exists() and not (out.is_dir() and (is_prepared(out) or not any(out.iterdir()))):
        raise DataError(
            str(out), "exists and is not a prepared-data folder (prepare replaces the whole folder)",
            "choose another --out, or delete it first",
        )
    foreign = sorted(p.name for p in out.iterdir() if not DATA_FILES.fullmatch(p.name)) if out.is_dir() else []
    if foreign:
        raise DataError(
            str(out), f"holds files prepare did not write ({', '.join(foreign[:5])}{' …' if len(foreign) > 5 else ''}), "
            "which replacing the folder would delete",
            "move them out of the folder, or choose another --out",
        )


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
    if config.protocol == "time":  # by when each session ends (the timestamps are the log's)
        end = pd.Series(ev["timestamp"].to_numpy(np.int64)).groupby(session).max().to_numpy()
        parts = split_by_time(np.arange(len(raw_sessions)), end, config.split)
    else:
        split_seed = config.seed if config.split_seed is None else config.split_seed
        parts = split_sessions(np.arange(len(raw_sessions)), numpy_rng(split_seed, "split"), config.split)
    _check_splits(log.name, {name: len(ids) for name, ids in parts.items()}, config.split)
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


def min_sessions(fractions: tuple[float, ...]) -> int:
    """The fewest sessions whose split (:func:`split_sessions`'s cuts) leaves every part non-empty."""
    for n in range(len(fractions), 100_000):
        cuts = (np.cumsum(fractions[:-1]) * n).astype(int)
        if (np.diff(np.concatenate([[0], cuts, [n]])) > 0).all():
            return n
    raise AssertionError(fractions)  # DataConfig.validate keeps every fraction > 0


def _check_splits(name: str, counts: dict[str, int], fractions: tuple[float, ...]) -> None:
    """Refuse a split with an empty part: ``train`` needs all three (fitting, selection, the test score)."""
    empty = [s for s in SPLITS if counts[s] == 0]
    if not empty:
        return
    n = sum(counts.values())
    shown = ", ".join(f"{s} {counts[s]}" for s in SPLITS)
    raise DataError(
        name,
        f"the {'/'.join(f'{f:g}' for f in fractions)} split of its {n} session(s) leaves {' and '.join(empty)} empty "
        f"({shown} sessions) and training needs sessions in every split; nothing was written",
        f"give at least {min_sessions(fractions)} sessions (many more for meaningful scores)",
    )


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


def write_prepared(log: EventLog, config: DataConfig, out: str | Path, inputs: dict | None = None) -> Path:
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

    @cached_property
    def fingerprint(self) -> str:
        """A hash of what training sees: every event (session, time, item, purchase), the split, the
        catalogue size and the state length. A run records it; a resume on other data is refused."""
        h = hashlib.sha256()
        h.update(json.dumps([self.n_items, self.config.state_len]).encode())
        for col in ("session", "timestamp", "item", "is_buy"):
            h.update(np.ascontiguousarray(self.events[col].to_numpy(np.int64)).tobytes())
        h.update(np.ascontiguousarray(self.sessions["session"].to_numpy(np.int64)).tobytes())
        h.update("\n".join(self.sessions["split"].astype(str)).encode())
        return h.hexdigest()

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
            buffer = ReplayBuffer.from_events(
                ev["session"].to_numpy(), ev["item"].to_numpy(), ev["is_buy"].to_numpy(), self.n_items, self.config.state_len
            )
            if self.config.protocol == "time" and split != "train":
                # the time protocol evaluates neither a session's first event nor a target unseen in training
                seen = torch.zeros(self.n_items, dtype=torch.bool)
                seen[torch.from_numpy(self.split_events("train")["item"].to_numpy(np.int64, copy=True))] = True
                keep = (buffer.step > 0) & seen[buffer.action.long()]
                if not keep.any():
                    raise DataError(f"{self.root} ({split} split)", "has no event left to evaluate under the time protocol "
                                    "(first events and targets unseen in training are skipped)", "prepare more sessions")
                buffer = buffer.subset(keep)
            self._buffers[split] = buffer
        return self._buffers[split]

    def extra(self, key: str) -> pd.DataFrame | None:
        path = self.root / f"extra_{key}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def stats_frame(self) -> pd.DataFrame:
        return stats_frame([self.stats])


def load_prepared(path: str | Path) -> PreparedData:
    """Load a folder written by :func:`prepare`; a :class:`DataError` naming the file if it is not one.

    Every file is checked as it is read — ``config.json`` a valid :class:`DataConfig`, each
    parquet readable with its columns, ``stats.json`` an object with its counts, the item and
    session indices within the tables — so a corrupt or hand-edited folder is one clear error
    (prepare it again with ``--force``), never a traceback later in ``train`` or ``stats``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(str(root), "no such prepared-data folder", "run `python -m mcrl_kit prepare --out DIR` first")
    missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if missing:
        raise DataError(
            str(root), f"is not a complete prepared-data folder (missing {', '.join(missing)})",
            f"delete it and run `python -m mcrl_kit prepare --out {root}` again (with the options that made it)",
        )
    config = _load_config(root)
    fix = _reprepare_fix(root, config)
    events = _load_table(root, "events.parquet", ("session", "timestamp", "item", "is_buy"), fix)
    items = _load_table(root, "items.parquet", ("item", "raw_id"), fix)
    sessions = _load_table(root, "sessions.parquet", ("session", "raw_id", "split"), fix)
    stats = _load_stats(root, fix)
    _check_consistent(root, events, items, sessions, stats, fix)
    return PreparedData(root=root, config=config, events=events, items=items, sessions=sessions, stats=stats)


#: the statistics every reader of ``stats.json`` uses, and their JSON types
STATS_KEYS: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "sessions": (int,), "items": (int,), "events": (int,), "clicks": (int,), "purchases": (int,),
    "mean_length": (int, float), "purchase_ratio": (int, float),
}


def _reprepare_fix(root: Path, config: DataConfig | None) -> str:
    """The command that writes ``root`` again (from its config.json when that is readable)."""
    if config is None:
        return f"prepare it again: `python -m mcrl_kit prepare --out {root} --force` with the options that made it"
    from .sources import SOURCES, option_flag

    args = [f"--source {config.source}", *(f"--path {p}" for p in config.paths)]
    source = SOURCES.get(config.source)
    for field in dataclasses.fields(source.options) if source else ():
        value = getattr(config, field.name)
        if field.name == "columns":
            args += [f"{option_flag(field.name)} {k}={v}" for k, v in (value or {}).items()]
        elif value is not None:
            args.append(f"{option_flag(field.name)} {value}")
    args.append(f"--seed {config.seed}")
    if config.split_seed is not None:
        args.append(f"--split-seed {config.split_seed}")
    if config.protocol != "sqn":
        args.append(f"--protocol {config.protocol}")
    return f"prepare it again: `python -m mcrl_kit prepare {' '.join(args)} --out {root} --force`"


def _load_config(root: Path) -> DataConfig:
    path = root / "config.json"
    fix = _reprepare_fix(root, None)
    data = read_json_object(path, fix, error=DataError, what="the data config object")
    try:
        return DataConfig.from_dict(data)
    except ConfigError as err:
        raise DataError(str(path), f"is not a valid data config ({err.what}: {err.problem})", fix) from None
    except (TypeError, ValueError, AttributeError) as err:
        raise DataError(str(path), f"is not a valid data config ({_reason(err)})", fix) from None


def _load_table(root: Path, name: str, columns: tuple[str, ...], fix: str) -> pd.DataFrame:
    path = root / name
    try:
        table = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many kinds for a damaged file: all mean the same here
        raise DataError(str(path), f"is not a readable parquet file ({_reason(err, path)})", fix) from None
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise DataError(
            str(path), f"lacks column(s) {', '.join(absent)} (found: {', '.join(map(str, table.columns)) or 'none'})", fix
        )
    numeric = [c for c in columns if c not in ("raw_id", "split") and not pd.api.types.is_integer_dtype(table[c])]
    if numeric:
        raise DataError(str(path), f"column(s) {', '.join(numeric)} do not hold integers", fix)
    return table


def _load_stats(root: Path, fix: str) -> dict:
    path = root / "stats.json"
    stats = read_json_object(path, fix, error=DataError, what="the statistics object")
    absent = [k for k in STATS_KEYS if k not in stats]
    if absent:
        raise DataError(str(path), f"lacks the key(s) {', '.join(map(repr, absent))}", fix)
    split_keys = [f"{s}_{kind}" for s in SPLITS for kind in ("sessions", "events")]
    expected = {**STATS_KEYS, **({k: (int,) for k in split_keys} if "train_sessions" in stats else {})}
    wrong = [k for k, types in expected.items() if isinstance(stats.get(k), bool) or not isinstance(stats.get(k), types)]
    if wrong:
        k = wrong[0]
        want = " or ".join(t.__name__ for t in expected[k])
        raise DataError(str(path), f"key {k!r} holds {stats.get(k)!r}, not a {want}", fix)
    return stats


def _check_consistent(root: Path, events: pd.DataFrame, items: pd.DataFrame, sessions: pd.DataFrame, stats: dict,
                      fix: str) -> None:
    """The indices of events.parquet fall within items/sessions, whose sizes stats.json counts."""
    if stats["items"] != len(items):
        raise DataError(str(root / "stats.json"), f"counts {stats['items']} items but items.parquet holds {len(items)}", fix)
    if len(events) and not (0 <= events["item"].min() and events["item"].max() < len(items)):
        raise DataError(str(root / "events.parquet"), f"names items outside 0 … {len(items) - 1} (items.parquet)", fix)
    if len(events) and not (0 <= events["session"].min() and events["session"].max() < len(sessions)):
        raise DataError(str(root / "events.parquet"), f"names sessions outside 0 … {len(sessions) - 1} (sessions.parquet)", fix)
    unknown = sorted(set(sessions["split"].astype(str)) - set(SPLITS))
    if unknown:
        raise DataError(str(root / "sessions.parquet"), f"names unknown split(s) {', '.join(unknown[:3])}", fix)


def _reason(err: BaseException, path: Path | None = None) -> str:
    """The first line of an exception's text, short, without the path we already name."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if path is not None:
        text = text.replace(f"'{path}'", "it").replace(str(path), "it")
    return text[:160] + ("…" if len(text) > 160 else "")


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
