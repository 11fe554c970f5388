"""How sessions are cut into train / validation / test, per protocol (``DataConfig.protocol``).

- ``sqn`` — the reference's: shuffle session ids with a seeded generator, cut 80 / 10 / 10;
- ``time`` — the later reassessments' (PROTOCOL.md): by when a session ends — train the sessions
  ending before the 80th percentile of session end times, validation up to the 90th, test after —
  so nothing of the future is trained on. Its evaluation also skips, in validation and test,
  each session's first event (nothing to condition on) and events whose target item never
  occurs in training (no method can rank what it never saw); the catalogue is unchanged.
"""

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


PROTOCOLS = ("sqn", "time")


def split_by_time(session_ids: np.ndarray, session_end: np.ndarray, fractions: tuple[float, ...] = (0.8, 0.1, 0.1)
                  ) -> dict[str, np.ndarray]:
    """Sessions by their end time: train ≤ the ``f₀`` quantile of end times < validation ≤ the ``f₀ + f₁``
    quantile < test (ties at a cut go to the earlier split). Returns sorted id arrays per split."""
    ids, end = np.asarray(session_ids), np.asarray(session_end)
    cut_val, cut_test = np.quantile(end, [fractions[0], fractions[0] + fractions[1]], method="lower")
    parts = {"train": ids[end <= cut_val], "val": ids[(end > cut_val) & (end <= cut_test)], "test": ids[end > cut_test]}
    return {name: np.sort(parts[name]) for name in SPLITS}
