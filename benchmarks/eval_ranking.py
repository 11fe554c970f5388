"""Full-ranking evaluation two ways: the ``[B, n_items]`` logits and ``topk`` against the block-wise count.

    .venv/bin/python benchmarks/eval_ranking.py                 # 70,852 items, SASRec and GRU
    .venv/bin/python benchmarks/eval_ranking.py --items 26702 --states 4096 --repeats 5

For each backbone: a freshly initialised supervised model (the speed does not depend
on training), ``--states`` synthetic states ranked ``--repeats`` times by each method
(``mcrl_kit.evaluate.target_ranks`` with the plain score function → the logits path: the
whole ``[B, n_items]`` product, a finiteness check, ``topk`` of ``max k + 1`` and the
items among them ``>=`` the logged one; with ``LinearScores`` → ``linear_ranks``: the
head checked once, then block products and counts, no logits), the methods interleaved
so that a host hiccup hits both. Both count ties against the logged item. Prints the
median states/s of each, their ratio, and whether the ranks are identical. Run it on a
quiet machine (on a shared one, ``--threads 1`` is the steadier figure); tcmalloc is
not preloaded here (``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4`` does).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench import synthetic_buffer  # benchmarks/bench.py

from mcrl_kit.algos import build_algo
from mcrl_kit.config import ModelConfig
from mcrl_kit.evaluate import LinearScores, target_ranks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=70_852)
    p.add_argument("--states", type=int, default=8192)
    p.add_argument("--batch", type=int, default=1024, help="states per evaluation batch (TrainConfig.eval_batch_size)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--backbones", nargs="+", default=["sasrec", "gru"])
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    buf = synthetic_buffer(args.items, sessions=args.states // 7 + 1)
    buf = buf.subset(torch.arange(len(buf)) < args.states)
    print(f"{args.items:,} items, {len(buf):,} states, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print(f"{'backbone':8} {'logits st/s':>11} {'block st/s':>11} {'speed-up':>9}  same ranks")
    for backbone in args.backbones:
        torch.manual_seed(0)
        algo = build_algo("supervised", args.items, 10, ModelConfig(backbone=backbone), {}).eval()
        blockwise = LinearScores(algo.backbone.encode, algo.head.weight, algo.head.bias)
        methods = {"logits": algo.scores, "block": blockwise}
        rates: dict[str, list[float]] = {name: [] for name in methods}
        ranks = {}
        for fn in methods.values():  # warm-up
            target_ranks(fn, buf.subset(torch.arange(len(buf)) < args.batch), batch_size=args.batch)
        for _ in range(args.repeats):
            for name, fn in methods.items():
                t = time.perf_counter()
                ranks[name] = target_ranks(fn, buf, batch_size=args.batch)
                rates[name].append(len(buf) / (time.perf_counter() - t))
        logits, block = statistics.median(rates["logits"]), statistics.median(rates["block"])
        same = torch.equal(ranks["logits"], ranks["block"])
        print(f"{backbone:8} {logits:11,.0f} {block:11,.0f} {block / logits:8.2f}×  {same}")


if __name__ == "__main__":
    main()
