"""Same seed and config on CPU → byte-identical ``metrics.json`` and ``history.csv``.

Each algorithm of the SQN lineage and MCRL is trained twice (a few hundred steps on the
``tiny`` simulator) with two backbones; the two run folders must hold the same bytes.
Wall-clock time lives in ``timing.csv``, the one file allowed to differ. A run in a fresh
process (the CLI) must match one in this process, and another seed must differ.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mcrl_kit.config import ModelConfig, TrainConfig
from mcrl_kit.train import RunConfig, train

STEPS, EVAL_EVERY = 200, 100
#: algorithm → settings that bring its later phase inside the short run (SA2C's switch)
ALGOS = {"supervised": {}, "sqn": {}, "sa2c": {"switch_step": 100}, "mcrl": {}}
REPRODUCIBLE = ("metrics.json", "history.csv")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run_config(data, algo: str, backbone: str, seed: int = 0) -> RunConfig:
    return RunConfig(
        data=str(data.root),
        model=ModelConfig(backbone=backbone, hidden=32),
        algo=algo,
        algo_params=ALGOS[algo],
        train=TrainConfig(
            steps=STEPS, batch_size=32, eval_every=EVAL_EVERY, seed=seed, device="cpu", progress=False, threads=1,
        ),
    )


def files(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in REPRODUCIBLE}


@pytest.mark.parametrize("backbone", ["gru", pytest.param("sasrec", marks=pytest.mark.slow)])
@pytest.mark.parametrize("algo", list(ALGOS))
def test_same_seed_same_bytes(tmp_path, tiny_data, algo, backbone, one_thread):
    first = train(run_config(tiny_data, algo, backbone), out=tmp_path / "a", data=tiny_data)
    second = train(run_config(tiny_data, algo, backbone), out=tmp_path / "b", data=tiny_data)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert first.metrics == second.metrics
    assert "seconds" not in (tmp_path / "a" / "history.csv").read_text().splitlines()[0]
    assert (tmp_path / "a" / "timing.csv").exists()
    # the weights too, not just the numbers derived from them
    a, b = torch.load(tmp_path / "a" / "model.pt", weights_only=True), torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_another_seed_differs(tmp_path, tiny_data, one_thread):
    train(run_config(tiny_data, "sqn", "gru", seed=0), out=tmp_path / "s0", data=tiny_data)
    train(run_config(tiny_data, "sqn", "gru", seed=1), out=tmp_path / "s1", data=tiny_data)
    s0, s1 = files(tmp_path / "s0"), files(tmp_path / "s1")
    assert s0["metrics.json"] != s1["metrics.json"] and s0["history.csv"] != s1["history.csv"]


def test_a_fresh_process_gives_the_same_bytes(tmp_path, tiny_data, one_thread):
    """The CLI in a new interpreter (another hash seed, fresh RNG state) = this process."""
    train(run_config(tiny_data, "sqn", "gru"), out=tmp_path / "here", data=tiny_data)
    done = subprocess.run(
        [sys.executable, "-m", "mcrl_kit", "train", "--data", str(tiny_data.root), "--out", str(tmp_path / "there"),
         "--algo", "sqn", "--backbone", "gru", "--hidden", "32", "--steps", str(STEPS), "--batch-size", "32",
         "--eval-every", str(EVAL_EVERY), "--device", "cpu", "--threads", "1", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert files(tmp_path / "here") == files(tmp_path / "there")
