"""Session-kNN at scale: fit on the train split, score every validation state, time both.

    .venv/bin/python benchmarks/knn_speed.py                          # RetailRocket scale, 2 threads
    .venv/bin/python benchmarks/knn_speed.py --scale small --algos sknn vsknn popularity

For each algorithm (``mcrl_kit.algos`` names; non-trainable ones): ``fit(train, data)``,
then the kit's evaluation of the validation split exactly as ``train`` runs it
(``evaluate(score_fn(algo, cpu), data.replay("val"))``: ``DirectRanks`` for the kNN
baselines, no ``[B, n_items]`` scores). Prints the fit and scoring seconds, the states
scored per second and the click / purchase HR@10 and NDCG@10. The data is the simulator
at ``--scale``, prepared (or reused from the cache) by ``mcrl_kit.experiments.load_data``
(about 30 s the first time at RetailRocket scale: 70,852 items, 127,510 validation states).
"""

from __future__ import annotations

import argparse
import time

import torch

from mcrl_kit.algos import build_algo
from mcrl_kit.config import ModelConfig
from mcrl_kit.evaluate import evaluate
from mcrl_kit.experiments import load_data
from mcrl_kit.train import score_fn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="retailrocket", help="simulator scale: tiny | small | retailrocket | yoochoose")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--algos", nargs="+", default=["sknn", "vsknn"])
    p.add_argument("--batch", type=int, default=1024, help="states per evaluation batch (TrainConfig.eval_batch_size)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    t = time.perf_counter()
    data = load_data("simulator", scale=args.scale)
    train, val = data.replay("train"), data.replay("val")
    print(f"simulator {args.scale}: {data.n_items:,} items, {len(train):,} train transitions, {len(val):,} "
          f"validation states ({time.perf_counter() - t:.1f} s to load); {torch.get_num_threads()} threads")
    print(f"{'algo':10} {'fit s':>7} {'score s':>8} {'states/s':>9}  {'click HR@10':>11} {'NDCG@10':>8}  "
          f"{'purchase HR@10':>14} {'NDCG@10':>8}")
    for name in args.algos:
        algo = build_algo(name, data.n_items, data.config.state_len, ModelConfig())
        if algo.trainable:
            raise SystemExit(f"{name} is trained by gradient steps; this benchmark times the fitted baselines")
        t = time.perf_counter()
        algo.fit(train, data)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        metrics = evaluate(score_fn(algo, torch.device("cpu")), val, batch_size=args.batch)
        score_s = time.perf_counter() - t
        click, buy = metrics["click"], metrics["purchase"]
        print(f"{name:10} {fit_s:7.1f} {score_s:8.1f} {len(val) / score_s:9,.0f}  {click['HR@10']:11.4f} "
              f"{click['NDCG@10']:8.4f}  {buy['HR@10']:14.4f} {buy['NDCG@10']:8.4f}", flush=True)


if __name__ == "__main__":
    main()
