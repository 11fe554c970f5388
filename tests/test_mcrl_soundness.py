"""MCRL's soundness (METHOD.md) and the reference item-head initialisation.

Measured on `tiny` after 300 steps (batch 128, seed 0), the first version's conservative
term drove V(T(h,a_t)) to a mean of 32.5 (returns ≈ 0.4) while the sound default kept every
value the loss touches inside [0, 2] = [0, r_max/(1−γ)] with none at a bound; cql lowered
V(h) by 0.04 and the gap Q̂(a⁻) − Q̂(a_t) by 0.11 against `none`, expectile lowered V(h) by 0.03
and left the gap where it was (−0.136 vs −0.144: an expectile of V does not separate actions).
"""

from __future__ import annotations

import pytest
import torch

from mcrl_kit import experiments, probes
from mcrl_kit.algos import build_algo
from mcrl_kit.config import ModelConfig
from mcrl_kit.runs import BEFORE_FORMAT_3, RunConfig

STEPS = 300
FIRST = {"anchor": "none", "transition_scale": "none", "value_bound": "none"}


@pytest.fixture(scope="module")
def probed(tiny_data, tmp_path_factory):
    study = experiments.Study(tiny_data, steps=STEPS, batch_size=128, eval_every=STEPS, device="cpu", threads=1,
                              out=tmp_path_factory.mktemp("sound"))
    variants = {"cql": ("mcrl", {}), "expectile": ("mcrl", {"conservative": "expectile"}),
                "none": ("mcrl", {"conservative": "none"}), "first": ("mcrl", FIRST)}
    runs = study.train(variants)
    out = {}
    for label, folders in runs.items():
        _, algo, _ = study.load(folders[0])
        out[label] = (algo, probes.value_probe(algo, tiny_data, "test"))
    return out


def test_every_value_the_loss_touches_stays_a_return(probed):
    algo, probe = probed["cql"]
    lo, hi = algo.value_range
    assert (lo, hi) == (0.0, 2.0)  # rewards 0.2 / 1.0, γ = 0.5
    for kind in ("V(h_t)", "V̄(h̄_t+1)", "V(T(h,a_t))", "V(T(h,a⁻))"):
        assert lo <= probe.loc[kind, "min"] and probe.loc[kind, "max"] <= hi, (kind, probe.loc[kind].to_dict())
        assert probe.loc[kind, "share at a bound"] < 0.01, (kind, probe.loc[kind].to_dict())


def test_the_first_version_stays_selectable_and_degenerate(probed):
    """anchor=none, transition_scale=none, value_bound=none reproduce the review's finding."""
    _, probe = probed["first"]
    assert probe.loc["V(T(h,a_t))", "mean"] > 5.0  # V inflated where T(h, a_t) lands
    assert probe.loc["V(h_t)", "mean"] < 1.0  # ... while V(h), what the diagnostics read, is untouched


def test_the_conservative_terms_lower_what_they_claim(probed):
    none = probed["none"][1]
    cql, expectile = probed["cql"][1], probed["expectile"][1]
    margin = 0.02
    assert cql.loc["V(h_t)", "mean"] < none.loc["V(h_t)", "mean"] - margin
    assert expectile.loc["V(h_t)", "mean"] < none.loc["V(h_t)", "mean"] - margin
    assert cql.loc["gap", "mean"] < none.loc["gap", "mean"] - margin  # the data action wins by more
    # expectile regression lowers V everywhere; it does not separate the actions (measured, not claimed)
    assert abs(expectile.loc["gap", "mean"] - none.loc["gap", "mean"]) < 0.05


def test_runs_written_before_format_3_load_with_their_own_settings(tmp_path):
    import json

    old = {"format": 2, "data": "d", "model": {"backbone": "gru"}, "algo": "mcrl", "algo_params": {"neg": 5},
           "train": {"steps": 10}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    run = RunConfig.load(tmp_path / "config.json")
    assert run.model.head_init == "torch"
    assert {k: run.algo_params[k] for k in BEFORE_FORMAT_3["mcrl"]} == BEFORE_FORMAT_3["mcrl"]
    assert run.algo_params["neg"] == 5
    new = RunConfig.from_dict({k: v for k, v in old.items() if k != "format"})
    assert new.model.head_init == "glorot" and new.algo_params.get("anchor", "consistency") == "consistency"


@pytest.mark.parametrize("algo", ["sqn", "supervised", "mcrl"])
def test_item_heads_start_at_the_references_scale(algo):
    """Glorot weights, zero bias: at 20,000 items the initial max score is ~10× below PyTorch's default."""
    n, states = 20_000, torch.randint(0, 20_000, (64, 10))
    lengths = torch.full((64,), 10)
    scale = {}
    for init in ("glorot", "torch"):
        torch.manual_seed(0)
        model = ModelConfig(backbone="sasrec", hidden=64, head_init=init, dropout=0.0)
        a = build_algo(algo, n, 10, model, {}, seed=0).eval()
        head = a.ranking_head()[1]
        if init == "glorot":
            assert torch.count_nonzero(head.bias) == 0
            bound = (6 / (head.in_features + n)) ** 0.5
            assert head.weight.abs().max() <= bound
        with torch.no_grad():
            q = a.q_values(states, lengths) if algo == "sqn" else a.scores(states, lengths)
        scale[init] = float(q.max(1).values.mean())
    assert scale["glorot"] < 0.35 and scale["torch"] > 1.0, scale
    assert scale["torch"] > 5 * scale["glorot"], scale
