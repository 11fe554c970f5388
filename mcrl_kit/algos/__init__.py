"""Algorithms behind one interface (:class:`~mcrl_kit.algos.base.Algo`), by name.

| name        | file            | what it is                                              |
|-------------|-----------------|---------------------------------------------------------|
| popularity  | popularity.py   | rank items by training-set frequency (no learning)      |
| supervised  | supervised.py   | cross-entropy over all items (the backbone alone)       |
| sqn / sac   | sqn.py          | Xin et al. 2020: CE head + double-Q head                |
| snqn / sa2c | snqn.py         | Xin et al. 2022: + sampled negatives, advantage-weighted |
| mcrl        | mcrl.py         | Li et al. 2024: value, reward & transition models       |
"""

from __future__ import annotations

import difflib

from ..config import AlgoConfig, ModelConfig
from ..errors import ConfigError
from .base import Algo
from .mcrl import MCRL
from .popularity import Popularity
from .snqn import SA2C, SNQN
from .sqn import SAC, SQN
from .supervised import Supervised

ALGOS: dict[str, type[Algo]] = {cls.name: cls for cls in (Popularity, Supervised, SQN, SAC, SNQN, SA2C, MCRL)}


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
    return cls(n_items, state_len, model, config, seed=seed)


__all__ = ["ALGOS", "Algo", "algo_class", "algo_config", "build_algo"]
