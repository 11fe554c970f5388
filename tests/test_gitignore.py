"""What git keeps: the benchmarks' run records (a fresh clone resumes a study without retraining), never
their weights or locks; the artifacts of a working copy never."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mcrl_kit import paths

ROOT = paths.home()
pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")

RUN = "benchmarks/results/study/small-sqn/final/runs/gru-mcrl-s0-0123456789"
KEPT = [f"{RUN}/{name}" for name in ("config.json", "metrics.json", "history.csv", "timing.csv", "ranks_test.npz")] + [
    "benchmarks/results/study/small-sqn/comparison.md", "benchmarks/results/study/small-sqn/tune/optuna.db",
    "benchmarks/results/comparison/small/runs/recency-s0-0123456789/metrics.json", "figures/readme/study.png",
]
IGNORED = [f"{RUN}/{name}" for name in ("model.pt", "checkpoint.pt", "best-00001000.pt", ".lock", ".lock.owner")] + [
    "benchmarks/results/study/small-sqn/tune/.optuna.create.lock", "runs/gru-sqn/metrics.json", "build/site/index.html",
    "data/cache/simulator-tiny/events.parquet", "figures/05_value_vs_return.png",
]


def _ignored(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("path", KEPT)
def test_run_records_and_results_are_kept(path):
    assert not _ignored(path)


@pytest.mark.parametrize("path", IGNORED)
def test_weights_locks_and_artifacts_are_ignored(path):
    assert _ignored(path)
