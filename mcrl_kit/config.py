"""Configs are dataclasses: typed, documented, reject unknown keys, round-trip JSON.

The resolved config is saved next to every artifact (prepared data, runs), so any
number the kit shows can be traced back to the settings that produced it.

- :class:`DataConfig` — which source, which protocol, which seed (``prepare``);
- :class:`ModelConfig` — which backbone and its sizes;
- :class:`AlgoConfig` — the MDP settings shared by every algorithm (γ, rewards); each
  algorithm subclasses it in its own file under ``mcrl_kit/algos/``;
- :class:`TrainConfig` — the loop: steps, batch, learning rate, evaluation, device.

Every ``float`` field of every config (and every float in a ``tuple[float, ...]``) must be
finite: NaN and ±inf are refused before ``validate`` runs, so each config family inherits
the check. A field that gives infinity a meaning declares it with
``dataclasses.field(default=…, metadata={"allow_inf": True})`` (NaN is never accepted).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from .errors import ConfigError
from .storage import write_json


@dataclasses.dataclass
class Config:
    """Base: ``from_dict`` refuses unknown keys and names the valid ones."""

    def __post_init__(self) -> None:
        self._check_finite()
        self.validate()

    def _check_finite(self) -> None:
        """Refuse NaN and ±inf in every float field (``metadata={"allow_inf": True}`` admits ±inf)."""
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            if not _holds_float(hints.get(f.name)):
                continue
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            allow_inf = bool(f.metadata.get("allow_inf"))
            for v in values:
                if isinstance(v, float) and (math.isnan(v) or (math.isinf(v) and not allow_inf)):
                    raise ConfigError(
                        f"{type(self).__name__}.{f.name}",
                        f"must be a finite number, got {value!r}",
                        f"give a finite number (the default: {_default_text(f)})",
                    )

    def validate(self) -> None:
        """Override to refuse bad values before any work starts (raise ConfigError)."""

    # --- dict / JSON round trip -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None = None, /, **overrides: Any) -> Self:
        data = {**(data or {}), **overrides}
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in names]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{cls.__name__}",
                f"unknown key {key!r}{hint}",
                f"use one of: {', '.join(sorted(names))}",
            )
        hints = _type_hints(cls)
        kwargs = {k: _coerce(hints[k], v, f"{cls.__name__}.{k}") for k, v in data.items()}
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        return type(self).from_dict({**self.to_dict(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Self:
        return cls.from_dict(json.loads(Path(path).read_text()))


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, resolved once per class (the annotations are strings)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _holds_float(hint: Any) -> bool:
    """True for ``float``, ``float | None`` and ``tuple[float, ...]``."""
    if hint is float:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType, tuple):
        return any(_holds_float(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return False


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "see the config's documentation"


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Turn JSON values back into the declared types (lists → tuples, dicts → configs)."""
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and issubclass(hint, Config):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(where, f"expected a mapping, got {value!r}", "pass a dict of its fields")
        return hint.from_dict(value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, float) and isinstance(value, bool):  # bool is an int subclass: `neg=true` is a mistake
        raise ConfigError(where, f"expected {hint.__name__}, got {value!r}", f"give a {hint.__name__}")
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(where, f"expected {hint.__name__}, got {value!r}", f"give a {hint.__name__}")
    return value


def option(default: Any, help: str) -> Any:
    """A source option's dataclass field: its default and the help its ``prepare`` flag shows."""
    return dataclasses.field(default=default, metadata={"help": help})


def _choice(where: str, value: str, choices: typing.Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(where, f"unknown value {value!r}{hint}", f"use one of: {', '.join(choices)}")


def _positive(where: str, value: float | None, allow_none: bool = False, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    # `not value < inf` also refuses NaN (every comparison with NaN is False) and infinity
    if value is None or not value < math.inf or value < 0 or (value == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ConfigError(where, f"must be a finite number {bound}, got {value!r}", f"give a number {bound}")


def _count(where: str, value: int | None, minimum: int = 0, allow_none: bool = False, example: str = "") -> None:
    """An integer count or size: ``value >= minimum`` (0: may be zero; 1: at least one)."""
    if value is None and allow_none:
        return
    if value is None or value < minimum:
        bound = f"≥ {minimum}"
        raise ConfigError(where, f"must be an integer {bound}, got {value!r}", f"give an integer {bound}{example}")


def _seed(where: str, value: int) -> None:
    if not 0 <= value < 2**63:
        raise ConfigError(where, f"must be in [0, 2**63), got {value!r}", "give a non-negative integer seed, e.g. 0")


@dataclasses.dataclass
class DataConfig(Config):
    """How to turn a source into the MDP (``python -m mcrl_kit prepare``).

    Defaults follow ``PROTOCOL.md`` exactly (see the per-field notes). ``source``, ``paths``,
    ``seed``, ``split_seed``, ``state_len``, ``split`` and ``protocol`` are shared; each other field is read by some sources
    only — a source's ``Options`` in ``mcrl_kit.data.sources`` lists its own, and one set
    for a source that ignores it is refused there.
    """

    source: str = "simulator"
    #: input files: RetailRocket ``events.csv[.gz]``; Yoochoose clicks then buys;
    #: an event log (CSV or parquet) for ``events``. Unused for the simulator.
    paths: tuple[str, ...] = ()
    #: simulator size, a name of ``mcrl_kit.data.simulator.SCALES`` (checked there): ``tiny`` (tests, CI
    #: notebooks), ``small``, ``retailrocket``, ``yoochoose``
    scale: str = "tiny"
    #: simulator override of the scale's number of sessions (None = the scale's)
    sessions: int | None = None
    #: simulator popularity drift over session start time (0 = none; 1 = a strong trend)
    drift: float = 0.0
    #: seeds the simulator's world and sessions, the Yoochoose session sample, and the split unless
    #: ``split_seed`` is given
    seed: int = 0
    #: seeds the train / validation / test split alone (None: ``seed``, so folders prepared before keep
    #: their split): the same sessions cut several ways, for results averaged over split seeds
    split_seed: int | None = None
    #: items of history in a state (the reference: 10)
    state_len: int = 10
    #: train / validation / test fractions of sessions (seeded shuffle, then cut; under ``time``: quantiles
    #: of session end times)
    split: tuple[float, ...] = (0.8, 0.1, 0.1)
    #: ``sqn`` (the reference: a random session split, every event evaluated) | ``time`` (by session end
    #: time; validation and test skip each session's first event and targets unseen in training)
    protocol: str = "sqn"
    #: the protocol's filters, read by every file source: sessions with ≥ this many events (Yoochoose: clicks),
    #: then items with ≥ ``min_item_events`` events, one pass. None: the source's own default — RetailRocket
    #: 3 and 3, Yoochoose 3 and 0, events 0 and 0 (a log taken as it is)
    min_session_events: int | None = None
    min_item_events: int | None = None
    #: Yoochoose: sessions sampled uniformly without replacement (the reference: 200,000)
    sample_sessions: int = 200_000
    #: ``events`` source: map the kit's column names to the file's, e.g.
    #: ``{"session_id": "user", "item_id": "sku", "timestamp": "ts", "is_buy": "bought"}``
    columns: dict[str, str] | None = None

    def validate(self) -> None:
        # the source's name, the scale's name, the files and which fields a source reads are the
        # sources' registry's to check (data.sources.source_options, at the start of prepare)
        _positive("DataConfig.sessions", self.sessions, allow_none=True)
        _positive("DataConfig.drift", self.drift, allow_zero=True)
        _positive("DataConfig.state_len", self.state_len)
        _positive("DataConfig.sample_sessions", self.sample_sessions)
        _seed("DataConfig.seed", self.seed)
        _choice("DataConfig.protocol", self.protocol, ("sqn", "time"))
        if self.split_seed is not None:
            _seed("DataConfig.split_seed", self.split_seed)
            if self.protocol == "time":
                raise ConfigError("DataConfig.split_seed", f"is {self.split_seed} under the time protocol, whose one "
                                  "split is by session end time (nothing to draw)",
                                  "leave it out; vary the init seeds for a spread")
        _positive("DataConfig.min_session_events", self.min_session_events, allow_zero=True, allow_none=True)
        _positive("DataConfig.min_item_events", self.min_item_events, allow_zero=True, allow_none=True)
        if len(self.split) != 3 or any(f <= 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise ConfigError(
                "DataConfig.split", f"{self.split!r} is not three positive fractions summing to 1",
                "give e.g. [0.8, 0.1, 0.1]",
            )


@dataclasses.dataclass
class ModelConfig(Config):
    """The sequential encoder (``PROTOCOL.md`` → Backbones)."""

    #: a name of ``mcrl_kit.models.BACKBONES`` (checked there)
    backbone: str = "sasrec"
    #: item-embedding and state size (the reference: 64)
    hidden: int = 64
    #: dropout on embeddings / inside blocks (the reference: 0.1)
    dropout: float = 0.1
    #: sparse item-embedding gradients, updated by ``torch.optim.SparseAdam`` ("lazy Adam":
    #: rows outside the batch keep their moments and do not move) while every other
    #: parameter keeps dense Adam. Faster at 70k items but a different optimiser
    #: trajectory from the reference's dense Adam, so off by default (README → Performance)
    sparse_embedding: bool = False
    #: initialisation of every item-sized head (Q, CE, policy): ``glorot`` (the reference's
    #: Xavier-uniform weights, zero bias: an initial max-Q ≈ 0.2 at 70,852 items) or ``torch``
    #: (PyTorch's default U(±1/√d) for weights *and* bias: ≈ 2.4, the kit's first version)
    head_init: str = "glorot"

    def validate(self) -> None:
        # the backbone's name is checked by its registry (models.backbone_class), not here
        _positive("ModelConfig.hidden", self.hidden)
        _choice("ModelConfig.head_init", self.head_init, ("glorot", "torch"))
        if not 0 <= self.dropout < 1:
            raise ConfigError("ModelConfig.dropout", f"{self.dropout} is not in [0, 1)", "give e.g. 0.1")


@dataclasses.dataclass(frozen=True)
class Param:
    """One dimension of a search space (``python -m mcrl_kit tune``): a float or int range (``log``: sampled on
    a log scale) or a list of ``choices``."""

    kind: str  # "float" | "int" | "choice"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()


@dataclasses.dataclass
class AlgoConfig(Config):
    """MDP settings every algorithm shares; each algorithm subclasses this.

    ``SEARCH`` is the algorithm's own search space for ``tune`` (its fields by name); every trained
    algorithm is also searched over the learning rate and dropout (``tune.COMMON_SEARCH``).
    """

    SEARCH: typing.ClassVar[dict[str, Param]] = {}

    #: discount γ (the reference: 0.5)
    gamma: float = 0.5
    #: reward of a click / a purchase event (the reference: 0.2 / 1.0)
    reward_click: float = 0.2
    reward_buy: float = 1.0

    def validate(self) -> None:
        if not 0 <= self.gamma < 1:
            raise ConfigError(f"{type(self).__name__}.gamma", f"{self.gamma} is not in [0, 1)", "give e.g. 0.5")


#: the metric cutoffs: HR@k and NDCG@k are computed, stored, selected on and shown for these k (defined here only)
KS = (5, 10, 20)
SELECT_METRICS = tuple(f"{kind}/{m}@{k}" for kind in ("purchase", "click") for m in ("NDCG", "HR") for k in KS)


@dataclasses.dataclass
class TrainConfig(Config):
    """The one training loop (``mcrl_kit.train``)."""

    #: optimisation steps; give this or ``epochs`` (an epoch = train rows / batch_size steps)
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 256
    #: Adam learning rate (the reference: 0.005 RetailRocket, 0.01 Yoochoose)
    lr: float = 0.005
    #: evaluate on validation (and write a resumable checkpoint) every this many steps, and at the end
    eval_every: int = 2000
    #: average the loss parts into the history every this many steps
    log_every: int = 100
    #: checkpoint selection on validation
    select_metric: str = "purchase/NDCG@10"
    #: the fewest validation events of ``select_metric``'s kind (purchases or clicks) it is chosen on;
    #: below that, a warning and ``select_fallback`` (a mean over a handful of events picks noise)
    select_min_support: int = 50
    #: the metric chosen on instead when ``select_metric`` lacks support; ``last``: the final weights
    #: (also what happens, with a warning, when the fallback lacks support too)
    select_fallback: str = "click/NDCG@10"
    #: evaluate the selected model on test at the end; off for tuning trials, which must read validation only
    test_metrics: bool = True
    seed: int = 0
    #: auto (CUDA when present) | cpu | cuda | cuda:N
    device: str = "auto"
    #: a tqdm progress bar (off in CI notebooks: its widget state bloats them)
    progress: bool = True
    #: torch.compile the training step (opt-in: ~35 s cold start on CPU)
    compile: bool = False
    #: states scored at once during evaluation
    eval_batch_size: int = 1024
    #: torch threads (None = torch's default)
    threads: int | None = None
    #: bf16 autocast for the training step — CUDA only (on CPU without bf16 units it is 8× slower)
    amp: bool = False

    def validate(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            if self.steps is None:
                self.steps = 1000
            else:
                raise ConfigError("TrainConfig", "both steps and epochs given", "give only one of them")
        _positive("TrainConfig.steps", self.steps, allow_none=True)
        _positive("TrainConfig.epochs", self.epochs, allow_none=True)
        _positive("TrainConfig.batch_size", self.batch_size)
        _positive("TrainConfig.lr", self.lr)
        _positive("TrainConfig.eval_every", self.eval_every)
        _positive("TrainConfig.log_every", self.log_every)
        _positive("TrainConfig.eval_batch_size", self.eval_batch_size)
        _positive("TrainConfig.threads", self.threads, allow_none=True)
        _choice("TrainConfig.select_metric", self.select_metric, SELECT_METRICS)
        _choice("TrainConfig.select_fallback", self.select_fallback, (*SELECT_METRICS, "last"))
        _count("TrainConfig.select_min_support", self.select_min_support, 1, example=", e.g. 50")
        _seed("TrainConfig.seed", self.seed)
        if not (self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ConfigError("TrainConfig.device", f"unknown device {self.device!r}", "use auto, cpu, cuda or cuda:N")
