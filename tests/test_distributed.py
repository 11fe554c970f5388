"""Training under ``torchrun`` (DistributedDataParallel, gloo on CPU) equals one process.

Two processes each train on half of the same global batch; DDP averages their gradients,
so with dropout off the run must end where a one-process run of the same global batch
ends. Stated tolerance: every weight within 1e-4 (float summation order differs), every
metric within 1e-4.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow

WEIGHT_TOL = 1e-4
METRIC_TOL = 1e-4


def _train(data: Path, out: Path, nproc: int, *extra: str) -> None:
    args = ["-m", "mcrl_kit", "train", "--data", str(data), "--out", str(out), "--threads", "1", "--no-progress",
            "--batch-size", "64", "--eval-every", "20", *extra]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                "--master_port", str(_free_port())] if nproc > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*launcher, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metric_gap(a: dict, b: dict) -> float:
    return max(abs(a[s][k][m] - b[s][k][m]) for s in ("val", "test") for k in a[s] for m in a[s][k])


def test_two_gloo_processes_match_one(tiny_data, tmp_path):
    common = ("--backbone", "gru", "--algo", "supervised", "--dropout", "0", "--steps", "40")
    _train(tiny_data.root, tmp_path / "one", 1, *common)
    out = _train(tiny_data.root, tmp_path / "two", 2, *common)
    assert out.count("run: ") == 1 and "(2 processes)" in out  # printed once, by rank 0

    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert _metric_gap(one, two) <= METRIC_TOL
    w1 = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    w2 = torch.load(tmp_path / "two" / "model.pt", weights_only=True)
    gap = max((w1[k] - w2[k]).abs().max().item() for k in w1 if torch.is_tensor(w1[k]) and w1[k].is_floating_point())
    assert gap <= WEIGHT_TOL, gap


def test_two_processes_train_value_methods_and_write_once(tiny_data, tmp_path):
    """SQN (the role swap leaves one network idle each step) and MCRL run under DDP; one set of files."""
    for algo in ("sqn", "mcrl"):
        run = tmp_path / algo
        _train(tiny_data.root, run, 2, "--backbone", "gru", "--algo", algo, "--steps", "40")
        names = sorted(p.name for p in run.iterdir())
        best = json.loads((run / "metrics.json").read_text())["best_step"]
        assert names == sorted([f"best-{best:08d}.pt",
                                "checkpoint.pt", "config.json", "history.csv", "metrics.json", "model.pt",
                                "ranks_test.npz", "timing.csv"]), names
        history = (run / "history.csv").read_text().splitlines()
        assert history[0].startswith("step,") and len(history) == 3  # evaluations at steps 20 and 40


def _kill_processes_mentioning(text: str) -> None:
    """SIGKILL every process whose command line contains ``text`` (Linux /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue  # gone already, or not ours to read


def test_two_processes_resume_exactly(tiny_data, tmp_path):
    """A 2-process run killed (-9, whole process group) after its first checkpoint and resumed
    ends with exactly the metrics of one that never stopped (every rank's RNG is restored)."""
    common = ("--backbone", "gru", "--algo", "mcrl", "--steps", "40")
    _train(tiny_data.root, tmp_path / "full", 2, *common)

    cut = tmp_path / "cut"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "mcrl_kit", "train", "--data", str(tiny_data.root), "--out", str(cut), "--threads", "1",
           "--no-progress", "--batch-size", "64", "--eval-every", "20", *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MCRL_PAUSE_AT": "train:checkpoint@1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True)
    try:
        for line in proc.stderr:  # rank 0 announces the pause right after checkpoint.pt
            if "MCRL_PAUSED train:checkpoint@1" in line:
                break
        else:
            pytest.fail("the run ended without reaching its first checkpoint")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # torchrun starts its workers in sessions of their own: the paused rank outlives the
        # launcher's process group, so kill every process working on this run's folder too
        _kill_processes_mentioning(str(cut))
    assert (cut / "checkpoint.pt").exists() and not (cut / "metrics.json").exists()

    _train(tiny_data.root, cut, 2, *common, "--resume")
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed = json.loads((cut / "metrics.json").read_text())
    assert resumed == full


def test_every_algorithm_runs_under_two_processes(tiny_data, tmp_path):
    """The whole registry (and the samplers that read beyond a row) under DDP, in one torchrun launch:
    each run ends with one set of files and finite losses."""
    script = Path(__file__).with_name("ddp_every_algo.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           str(script), str(tiny_data.root), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    from ddp_every_algo import RUNS

    from mcrl_kit.algos import ALGOS

    for name, (algo, _) in RUNS.items():
        cls, run = ALGOS[algo], tmp_path / name
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["algo"] == algo
        names = {p.name for p in run.iterdir()}
        assert {"config.json", "metrics.json", "model.pt", "history.csv"} <= names, (algo, names)
        if cls.trainable:
            history = pd.read_csv(run / "history.csv")
            losses = history[[c for c in history if c.startswith("loss/")]]
            assert len(history) == 4 and np.isfinite(losses.to_numpy()).all(), algo
            assert sum(n.startswith("best-") for n in names) == 1, (algo, names)
