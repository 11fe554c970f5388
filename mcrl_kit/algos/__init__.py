"""Algorithms behind one interface (:class:`~mcrl_kit.algos.base.Algo`), by name.

| name        | file            | what it is                                              |
|-------------|-----------------|---------------------------------------------------------|
| popularity  | popularity.py   | rank items by training-set frequency (no learning)      |
| recency     | recency.py      | the session's items, most recent first, then popularity |
| sknn        | knn.py          | session-kNN: cosine neighbours among recent sessions    |
| vsknn       | knn.py          | SKNN with position decay and IDF-weighted matches       |
| supervised  | supervised.py   | cross-entropy over all items (the backbone alone)       |
| reward_ce   | supervised.py   | the control: the CE weighted by the reward, normalised  |
| sqn / sac   | sqn.py          | Xin et al. 2020: CE head + double-Q head                |
| snqn / sa2c | snqn.py         | Xin et al. 2022: + sampled negatives, advantage-weighted |
| cql / iql   | cql.py          | discrete CQL (Kumar 2020); IQL with AWR (Kostrikov 2022) |
| mcrl        | mcrl.py         | Li et al. 2024: value, reward & transition models       |

SNQN, SA2C and MCRL draw their negatives through one interface, ``samplers.py`` (registry
``SAMPLERS``: uniform, popularity, in_batch, unseen; the config field ``sampler``).
"""

from __future__ import annotations

import difflib
import os

from ..config import AlgoConfig, ModelConfig
from ..errors import ConfigError
from .base import Algo
from .cql import CQL, IQL
from .knn import SKNN, VSKNN
from .mcrl import MCRL
from .popularity import Popularity
from .recency import Recency
from .snqn import SA2C, SNQN
from .sqn import SAC, SQN
from .supervised import RewardCE, Supervised

ALGOS: dict[str, type[Algo]] = {cls.name: cls for cls in (Popularity, Recency, SKNN, VSKNN, Supervised, RewardCE, SQN, SAC, SNQN, SA2C, CQL, IQL, MCRL)}


def algo_class(name: str) -> type[Algo]:
    if name not in ALGOS:
        close = difflib.get_close_matches(name, list(ALGOS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError("algorithm", f"unknown name {name!r}{hint}", f"use one of: {', '.join(ALGOS)}")
    return ALGOS[name]


def algo_config(name: str, params: dict | None = None) -> AlgoConfig:
    """The algorithm's config dataclass from a dict (unknown keys refused)."""
    return algo_class(name).Config.from_dict(params or {})


def build_algo(
    name: str, n_items: int, state_len: int, model: ModelConfig, config: AlgoConfig | dict | None = None, seed: int = 0
) -> Algo:
    cls = algo_class(name)
    if not isinstance(config, AlgoConfig):
        config = cls.Config.from_dict(config or {})
    elif not isinstance(config, cls.Config):
        raise ConfigError(
            f"config for {name!r}", f"is a {type(config).__name__}, not a {cls.Config.__name__}",
            f"build it with mcrl_kit.algos.algo_config({name!r}, {{...}})",
        )
    if cls.trainable:
        check_model_fits(n_items, model, config)
    try:
        return cls(n_items, state_len, model, config, seed=seed)
    except (RuntimeError, MemoryError) as err:  # the estimate is a lower bound: the allocator may still refuse
        if not isinstance(err, MemoryError) and not any(s in str(err) for s in _ALLOCATION_FAILED):
            raise
        what, fix = _culprit(n_items, model, config)
        raise ConfigError(what, f"the {name} model's parameters could not be allocated ({_first_line(err)})", fix) from None


#: what torch's allocators say when memory runs out
_ALLOCATION_FAILED = ("can't allocate memory", "not enough memory", "out of memory", "Cannot allocate memory")


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _culprit(n_items: int, model: ModelConfig, config: AlgoConfig) -> tuple[str, str]:
    """(what, fix) for a model too large: ``hidden``, or MCRL's ``mlp_hidden`` when its MLPs dominate."""
    mlp = getattr(config, "mlp_hidden", None)
    h = model.hidden
    if mlp and 3 * h * mlp > (2 * n_items + 1) * h + h * h:
        return f"{type(config).__name__}.mlp_hidden = {mlp:,} (hidden {h:,})", "give a smaller --set mlp_hidden (default 64)"
    return f"ModelConfig.hidden = {h:,} ({n_items:,} items)", "give a smaller --hidden (the reference: 64)"


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (``os.sysconf``); None where it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def min_param_bytes(n_items: int, model: ModelConfig, config: AlgoConfig) -> int:
    """A lower bound of a trainable model's fp32 parameter bytes.

    Every backbone holds an item embedding (``n_items + 1`` rows of ``hidden``) and at
    least one ``hidden × hidden`` layer, and every trainable algorithm an item-sized head;
    MCRL adds MLPs of width ``mlp_hidden`` on ``hidden``-sized inputs. The true count is
    larger (SQN keeps two networks with two heads each; Adam adds two moments per weight).
    """
    h = model.hidden
    floats = (2 * n_items + 1) * h + h * h
    mlp = getattr(config, "mlp_hidden", None)
    if mlp:
        floats += 3 * h * mlp
    return 4 * floats


def check_model_fits(n_items: int, model: ModelConfig, config: AlgoConfig) -> None:
    """Refuse, before allocating anything, a model whose parameters alone exceed physical memory."""
    need, have = min_param_bytes(n_items, model, config), physical_memory()
    if have is None or need <= have:
        return
    what, fix = _culprit(n_items, model, config)
    raise ConfigError(
        what, f"the parameters alone need at least {_gib(need)} of memory, more than this machine's {_gib(have)}", fix
    )


def _gib(n: int) -> str:
    """Bytes in binary units, three significant digits (GiB at least: the machines' scale)."""
    value, unit = n / 2**30, "GiB"
    for bigger in ("TiB", "PiB", "EiB", "ZiB", "YiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.3g} {unit}"


__all__ = ["ALGOS", "Algo", "algo_class", "algo_config", "build_algo", "check_model_fits", "min_param_bytes"]
