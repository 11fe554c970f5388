"""One conformance test over the registries: every algorithm × every backbone (× every negative sampler
where the algorithm samples) fits a few steps with finite losses, saves and reloads (``weights_only``)
to the same outputs, and resumes exactly after a crash at its first checkpoint; ``compare`` takes every
run and ``diagnose`` diagnoses or refuses clearly. The 2-process run of every algorithm is in
``test_distributed.py``.

Tiny on purpose (a 300-session simulator, hidden 8, 6 steps of batch 16): what is checked is the
contract, not the learning.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest
import torch
from helpers import cli

from mcrl_kit import faults
from mcrl_kit.algos import ALGOS
from mcrl_kit.algos.samplers import SAMPLERS
from mcrl_kit.config import DataConfig, ModelConfig, TrainConfig
from mcrl_kit.data import prepare
from mcrl_kit.models import BACKBONES
from mcrl_kit.runs import RunConfig, load_run
from mcrl_kit.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS, EVAL_EVERY = 6, 3
#: settings a few steps need: SA2C / SAC switch to their weighted CE within the run
PARAMS = {"sac": {"switch_step": 3}, "sa2c": {"switch_step": 3}}
TRAINABLE = [name for name, cls in ALGOS.items() if cls.trainable]
FITTED = [name for name, cls in ALGOS.items() if not cls.trainable]
SAMPLING = [name for name in TRAINABLE if "sampler" in {f.name for f in dataclasses.fields(ALGOS[name].Config)}]


def cases():
    for algo in TRAINABLE:
        for backbone in BACKBONES:
            for sampler in (SAMPLERS if algo in SAMPLING else [None]):
                yield pytest.param(algo, backbone, sampler, id=f"{algo}-{backbone}" + (f"-{sampler}" if sampler else ""))


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return prepare(DataConfig(source="simulator", scale="tiny", seed=0, sessions=300),
                   out=tmp_path_factory.mktemp("mini") / "data", progress=False)


def run_config(data, algo: str, backbone: str = "gru", sampler: str | None = None) -> RunConfig:
    params = {**PARAMS.get(algo, {}), **({"sampler": sampler} if sampler else {})}
    return RunConfig(data=str(data.root), model=ModelConfig(backbone=backbone, hidden=8), algo=algo, algo_params=params,
                     train=TrainConfig(steps=STEPS, batch_size=16, eval_every=EVAL_EVERY, log_every=1, seed=0,
                                       device="cpu", progress=False))


def outputs(algo, data) -> dict[str, torch.Tensor]:
    """What a loaded model answers on validation states: its scores, and its values where it has them."""
    buf = data.replay("val")
    s, n, a = buf.state[:32].long(), buf.len_state[:32], buf.action[:32].long()
    algo.eval()
    with torch.no_grad():
        out = {"scores": algo.scores(s, n)}
        if algo.value_based:
            out["values"] = algo.values(s, n, a)
    return out


class Crash(Exception):
    pass


@pytest.mark.parametrize(("algo", "backbone", "sampler"), list(cases()))
def test_fits_reloads_and_resumes_exactly(algo, backbone, sampler, mini, tmp_path, monkeypatch):
    run = run_config(mini, algo, backbone, sampler)
    full = train(run, tmp_path / "full", data=mini)
    history = pd.read_csv(tmp_path / "full" / "history.csv")
    losses = history[[c for c in history if c.startswith("loss/")]]
    assert len(losses) == STEPS and losses.notna().all().all() and losses.map(math.isfinite).all().all()

    # the weights load as plain tensors (no unpickling) and answer exactly as the trained model did
    torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    _, loaded, _ = load_run(tmp_path / "full")
    expected, got = outputs(full.algo, mini), outputs(loaded, mini)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key

    # a crash right after the first checkpoint, then a resume: the same history, metrics and weights
    real_point = faults.point

    def crash_at_first_checkpoint(name: str) -> None:
        if name == "train:checkpoint":
            raise Crash
        real_point(name)

    monkeypatch.setattr(faults, "point", crash_at_first_checkpoint)
    with pytest.raises(Crash):
        train(run, tmp_path / "cut", data=mini)
    monkeypatch.setattr(faults, "point", real_point)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    train(run, tmp_path / "cut", resume=True, data=mini)
    for name in ("metrics.json", "history.csv", "ranks_test.npz"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    w_full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    w_cut = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)
    assert w_full.keys() == w_cut.keys()
    for key in w_full:
        if torch.is_tensor(w_full[key]):
            assert torch.equal(w_full[key], w_cut[key]), key


@pytest.mark.parametrize("algo", FITTED)
def test_fitted_methods_reload_to_the_same_outputs(algo, mini, tmp_path):
    result = train(run_config(mini, algo), tmp_path / algo, data=mini)
    torch.load(tmp_path / algo / "model.pt", weights_only=True)
    _, loaded, _ = load_run(tmp_path / algo)
    buf = mini.replay("val")
    s, n = buf.state[:32].long(), buf.len_state[:32]
    direct = result.algo.direct_ranks()
    if direct is None:
        assert torch.equal(result.algo.scores(s, n), loaded.scores(s, n))
    else:
        target = buf.action[:32].long()
        assert torch.equal(direct(s, n, target), loaded.direct_ranks()(s, n, target))
    again = train(run_config(mini, algo), tmp_path / f"{algo}-again", data=mini)
    assert (again.out / "metrics.json").read_bytes() == (result.out / "metrics.json").read_bytes()  # deterministic


@pytest.fixture(scope="module")
def every_run(mini, tmp_path_factory):
    """One finished run per algorithm (GRU), trained once for the command tests below."""
    root = tmp_path_factory.mktemp("every")
    return {algo: train(run_config(mini, algo), root / algo, data=mini).out for algo in ALGOS}


def test_compare_takes_a_run_of_every_algorithm(every_run):
    rc, out, err = cli(["compare", *every_run.values()])
    assert rc == 0, err
    for algo in ALGOS:
        assert algo in out


@pytest.mark.parametrize("algo", list(ALGOS))
def test_diagnose_diagnoses_value_methods_and_refuses_the_others_clearly(algo, every_run):
    rc, _, err = cli(["diagnose", "--run", every_run[algo], "--split", "val"])
    if ALGOS[algo].value_based:
        assert rc == 0, err
        summary = json.loads((every_run[algo] / "diagnose_val.json").read_text())
        assert math.isfinite(summary["mean_value"]) and math.isfinite(summary["mean_bias"])
    else:
        assert rc == 2
        assert "has no value estimates to diagnose" in err and err.count("error:") == 1
        assert not (every_run[algo] / "diagnose_val.json").exists()
