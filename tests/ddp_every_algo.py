"""Run by ``test_distributed.test_every_algorithm_runs_under_two_processes`` under torchrun: every
algorithm of the registry trains a few steps on DATA into OUT/<algo> (one launch for all, so the
processes start once)."""

from __future__ import annotations

import sys
from pathlib import Path

from mcrl_kit.algos import ALGOS
from mcrl_kit.config import ModelConfig, TrainConfig
from mcrl_kit.devices import distributed, shutdown
from mcrl_kit.runs import RunConfig
from mcrl_kit.train import train

#: SA2C / SAC switch to their weighted CE within the run
PARAMS = {"sac": {"switch_step": 2}, "sa2c": {"switch_step": 2}}
#: and the samplers that need more than the batch's own slice: counts fitted on every rank, other rows
SAMPLED = {"mcrl-popularity": ("mcrl", {"sampler": "popularity"}), "sa2c-in_batch": ("sa2c", {**PARAMS["sa2c"], "sampler": "in_batch"})}
RUNS = {**{algo: (algo, PARAMS.get(algo, {})) for algo in ALGOS}, **SAMPLED}

if __name__ == "__main__":
    data, out = sys.argv[1], Path(sys.argv[2])
    for name, (algo, params) in RUNS.items():
        run = RunConfig(data=data, model=ModelConfig(backbone="gru", hidden=8), algo=algo, algo_params=params,
                        train=TrainConfig(steps=4, batch_size=16, eval_every=2, log_every=1, seed=0, device="cpu",
                                          threads=1, progress=False))
        train(run, out / name)
    shutdown(distributed()[1])
