"""The seeded session split of the reference: shuffle session ids, cut 80 / 10 / 10."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def split_sessions(
    session_ids: np.ndarray, rng: np.random.Generator, fractions: tuple[float, ...] = (0.8, 0.1, 0.1)
) -> dict[str, np.ndarray]:
    """Shuffle the unique session ids with ``rng`` and cut them by ``fractions``.

    Mirrors the reference (``np.random.shuffle`` then ``np.array_split`` at
    ``cumsum(fractions[:-1]) * n``), with an explicit generator instead of the global
    RNG. Returns sorted id arrays per split so that files diff cleanly.
    """
    ids = np.unique(np.asarray(session_ids))
    rng.shuffle(ids)
    cuts = (np.cumsum(fractions[:-1]) * len(ids)).astype(int)
    parts = np.array_split(ids, cuts)
    return {name: np.sort(part) for name, part in zip(SPLITS, parts)}
