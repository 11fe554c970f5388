"""Time every backbone: ``python benchmarks/backbones.py [--items 70852] [--batch 256]``.

Per backbone, the median milliseconds of one step on random right-padded states
(lengths uniform in 1..L), interleaving the backbones so that load from other
processes hits them alike:

- ``train``: ``encode`` forward + backward (dense gradient of the item embedding);
- ``sparse``: the same with ``sparse=True`` (sparse embedding gradient);
- ``eval``: forward under ``no_grad`` in eval mode;
- ``+head``: ``train`` plus a linear head over all items and its cross-entropy,
  the shape of a supervised step (without the optimiser).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mcrl_kit.config import ModelConfig
from mcrl_kit.models import BACKBONES, build_backbone


def bench(n_items: int = 70_852, batch: int = 256, state_len: int = 10, steps: int = 30, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, state_len + 1, (batch,), generator=g)
    states = torch.randint(0, n_items, (batch, state_len), generator=g)
    states[torch.arange(state_len) >= lengths[:, None]] = n_items
    target = torch.randint(0, n_items, (batch,), generator=g)
    torch.manual_seed(seed)
    models = {
        (name, sparse): build_backbone(ModelConfig(backbone=name), n_items, state_len, sparse=sparse)
        for name in BACKBONES
        for sparse in (False, True)
    }
    heads = {name: torch.nn.Linear(models[name, False].out_dim, n_items) for name in BACKBONES}

    def train(m, head=None):
        m.train().zero_grad(set_to_none=True)
        h = m.encode(states, lengths)
        loss = F.cross_entropy(head(h), target) if head is not None else h.square().mean()
        loss.backward()

    def evaluate(m):
        with torch.no_grad():
            m.eval().encode(states, lengths)

    cases = {}
    for name in BACKBONES:
        dense, sparse = models[name, False], models[name, True]
        cases[name, "train"] = lambda m=dense: train(m)
        cases[name, "sparse"] = lambda m=sparse: train(m)
        cases[name, "eval"] = lambda m=dense: evaluate(m)
        cases[name, "+head"] = lambda m=dense, hd=heads[name]: train(m, hd)
    times = {key: [] for key in cases}
    for step in range(steps + 3):
        for key, run in cases.items():
            start = time.perf_counter()
            run()
            if step >= 3:  # warm-up
                times[key].append(time.perf_counter() - start)
    return [
        {
            "backbone": name,
            "parameters": sum(p.numel() for p in models[name, False].parameters()),
            **{col: round(statistics.median(times[name, col]) * 1e3, 1) for col in ("train", "sparse", "eval", "+head")},
        }
        for name in BACKBONES
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=70_852)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    rows = bench(args.items, args.batch, steps=args.steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.items:,} items (ms)")
    print(f"{'backbone':10} {'parameters':>11} {'train':>7} {'sparse':>7} {'eval':>7} {'+head':>7}")
    for r in rows:
        print(f"{r['backbone']:10} {r['parameters']:>11,} {r['train']:>7} {r['sparse']:>7} {r['eval']:>7} {r['+head']:>7}")


if __name__ == "__main__":
    main()
