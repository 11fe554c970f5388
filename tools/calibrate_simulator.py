"""Fit every simulator scale's repeat and purchase constants to its real target; print them.

    python tools/calibrate_simulator.py [--sessions 20000] [--rounds 15]

The targets are ``simulator.TARGETS`` (measured by ``data.stats.repeat_stats`` on the real
samples of ``shared/data``; ``--measure`` re-measures them there). Paste the printed
constants into ``simulator.SCALES``; ``tests/test_simulator.py`` then checks each scale's
statistics against the real samples' 95 % intervals.
"""

from __future__ import annotations

import argparse
import time

from mcrl_kit import experiments, paths
from mcrl_kit.data import calibrate, simulator, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--measure", action="store_true", help="re-measure the targets on the real samples first")
    args = ap.parse_args()
    if args.measure:
        rr = experiments.load_data("retailrocket-sample")
        print("RetailRocket sample, train split:\n", stats.repeat_stats(rr.split_events("train")))
        path = paths.shared_file(*calibrate.YOOCHOOSE_SAMPLE)
        if path is not None:
            print("Yoochoose sample (sessions >= 3 clicks):\n", stats.repeat_stats(calibrate.yoochoose_sample_events(path)))
    for scale, target in simulator.IMITATES.items():
        t = time.perf_counter()
        fit = calibrate.fit_behaviour(scale, simulator.TARGETS[target], sessions=args.sessions, rounds=args.rounds)
        constants = ", ".join(f"{k}={fit[k]}" for k in ("buy_logit", "p_repeat", "p_revisit", "buy_last", "buy_earlier"))
        print(f"{scale} ({target}, {time.perf_counter() - t:.0f} s): {constants}")
        print("    measured:", {k.removeprefix("measured/"): v for k, v in fit.items() if k.startswith("measured/")})


if __name__ == "__main__":
    main()
