"""The README's data tables: what the history gives away, and the trivial baselines, real samples beside the simulator.

    .venv/bin/python tools/simulator_tables.py [--sessions 20000]

Prints two markdown tables: ``experiments.repeat_table`` (train split; share of purchases and
clicks repeating the last item or the state, with 95 % bootstrap intervals over sessions) and
``experiments.heuristic_table`` (popularity and recency fitted on train, scored on test: HR@5 and
NDCG@10). Rows: the real samples of ``../shared`` (when present) and every simulator scale, each
at most ``--sessions`` sessions (the protocol's 80/10/10 split, seed 0).
"""

from __future__ import annotations

import argparse
import time

from mcrl_kit import experiments
from mcrl_kit.data.simulator import SCALES
from mcrl_kit.report import markdown_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20_000)
    ap.add_argument("--scales", nargs="+", default=list(SCALES))
    args = ap.parse_args()
    t = time.perf_counter()
    datasets = {**experiments.real_samples(), **experiments.simulated(args.scales, args.sessions)}
    print(markdown_table(experiments.repeat_table(datasets)))
    print()
    print(markdown_table(experiments.heuristic_table(datasets).round(3)))
    print(f"\n({time.perf_counter() - t:.0f} s; simulator scales at most {args.sessions:,} sessions)")


if __name__ == "__main__":
    main()
