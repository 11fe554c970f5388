"""The one place where randomness is seeded.

Library code never touches global RNGs: every sampler, splitter and the simulator
takes an explicit generator made here (``numpy.random.Generator`` for data work,
``torch.Generator`` for training). :func:`seed_everything` additionally seeds the
global RNGs so that third-party code (dropout, weight init) is reproducible too.
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch globally; return a torch generator for sampling."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - global seed for third-party code only
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return torch_generator(seed)


def numpy_rng(seed: int, *stream: int | str) -> np.random.Generator:
    """An independent NumPy generator for ``seed`` and a named stream.

    Streams keep consumers independent: adding draws to the simulator does not shift
    the split, because each takes ``numpy_rng(seed, "split")`` etc.
    """
    words = [int(seed)] + [_word(s) for s in stream]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def torch_generator(seed: int, *stream: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for ``seed`` and a named stream (see :func:`numpy_rng`)."""
    gen = torch.Generator(device=device)
    derived = np.random.SeedSequence([int(seed)] + [_word(s) for s in stream]).generate_state(1, np.uint64)[0]
    gen.manual_seed(int(derived) & (2**63 - 1))
    return gen


def _word(x: int | str) -> int:
    if isinstance(x, int):
        return x
    # a stable hash (Python's hash() is salted per process)
    return int.from_bytes(hashlib.blake2b(x.encode("utf-8"), digest_size=8).digest(), "little")
