"""Checkpoint selection knows its support: a metric over too few validation events warns and falls back
to a declared metric (or the last weights), never silently; the support is in metrics.json; a run or a
checkpoint from before this rule is retrained or refused where the rule would choose otherwise."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from mcrl_kit import experiments, faults
from mcrl_kit.config import ModelConfig, TrainConfig
from mcrl_kit.errors import ConfigError, KitWarning, TrainingError
from mcrl_kit.runs import RunConfig
from mcrl_kit.train import selection, train

pytestmark = pytest.mark.usefixtures("one_thread")


def run_config(data, **train_settings) -> RunConfig:
    settings = {"steps": 12, "batch_size": 64, "eval_every": 3, "seed": 3, "device": "cpu", "progress": False, **train_settings}
    return RunConfig(data=str(data.root), model=ModelConfig(backbone="gru", hidden=16), algo="sqn",
                     train=TrainConfig(**settings))


def trained(data, out, **train_settings):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(run_config(data, **train_settings), out, data=data)
    return result, [w for w in caught if issubclass(w.category, KitWarning)]


def best_of(out, column: str) -> int:
    hist = pd.read_csv(out / "history.csv").dropna(subset=[column])
    return int(hist["step"].iloc[int(np.argmax(hist[column].to_numpy()))])


def test_enough_support_chooses_the_requested_metric_and_records_its_support(tiny_data, tmp_path):
    _, caught = trained(tiny_data, tmp_path / "r", select_min_support=30)  # tiny: 33 validation purchases
    assert not caught
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["selection"] == {"requested": "purchase/NDCG@10", "metric": "purchase/NDCG@10", "min_support": 30,
                              "support": 33, "reason": None}
    assert m["best_step"] == best_of(tmp_path / "r", "val/purchase/NDCG@10")


def test_too_few_events_warn_and_fall_back_to_the_declared_metric(tiny_data, tmp_path):
    _, caught = trained(tiny_data, tmp_path / "r")  # default: 50 events needed, 33 purchases there
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "33 validation purchases" in text and "click/NDCG@10" in text and "1,054 validation clicks" in text
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["select_metric"] == m["selection"]["metric"] == "click/NDCG@10" and m["selection"]["support"] == 1054
    assert m["best_step"] == best_of(tmp_path / "r", "val/click/NDCG@10")


def test_no_supported_metric_keeps_the_last_weights_and_says_so(tiny_data, tmp_path):
    _, caught = trained(tiny_data, tmp_path / "r", select_min_support=5000)
    assert len(caught) == 1 and "last evaluation's weights are kept" in str(caught[0].message)
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["selection"]["metric"] == "last" and m["best_step"] == 12
    _, caught = trained(tiny_data, tmp_path / "r2", select_min_support=30, select_fallback="last", select_metric="purchase/HR@5")
    assert not caught  # the fallback is only used when needed


def test_zero_purchases_never_mean_nan_keeps_the_final_weights_silently(tiny_data, tmp_path):
    """The review's case: no validation purchases (NaN metric) used to keep the last weights without a word."""
    empty = type("Split", (), {"is_buy": torch.zeros(40, dtype=torch.bool)})()
    chosen = selection(TrainConfig(steps=1), empty)
    assert chosen["metric"] == "last" and "0 validation purchases" in chosen["reason"]
    assert "40 validation clicks" in chosen["reason"]
    enough_clicks = type("Split", (), {"is_buy": torch.zeros(60, dtype=torch.bool)})()
    assert selection(TrainConfig(steps=1), enough_clicks)["metric"] == "click/NDCG@10"


def test_bad_selection_settings_are_refused():
    with pytest.raises(ConfigError, match="select_fallback"):
        TrainConfig(steps=1, select_fallback="click/NDCG@11")
    with pytest.raises(ConfigError, match="select_min_support"):
        TrainConfig(steps=1, select_min_support=0)


def test_a_checkpoint_chosen_on_another_metric_is_not_resumed(tiny_data, tmp_path, monkeypatch):
    def crash(name):
        if name == "train:checkpoint":
            raise KeyboardInterrupt

    monkeypatch.setattr(faults, "point", crash)
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        train(run_config(tiny_data), tmp_path / "r", data=tiny_data)
    monkeypatch.undo()
    # as a checkpoint written before selection looked at support: it chose on the requested metric
    path = tmp_path / "r" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state"]["select_metric"]
    torch.save(ckpt, path)
    with pytest.raises(TrainingError, match=r"chose checkpoints on purchase/NDCG@10.*click/NDCG@10 now"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        train(run_config(tiny_data), tmp_path / "r", resume=True, data=tiny_data)


def test_a_study_retrains_an_old_run_chosen_without_support(tiny_data, tmp_path):
    study = experiments.Study(tiny_data, steps=6, batch_size=64, eval_every=3, device="cpu", threads=1, out=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        folder = study.train({"SQN": "sqn"})["SQN"][0]
        metrics = json.loads((folder / "metrics.json").read_text())
        old = {k: v for k, v in metrics.items() if k != "selection"} | {"select_metric": "purchase/NDCG@10"}
        (folder / "metrics.json").write_text(json.dumps(old))  # as written before the rule
        again = study.train({"SQN": "sqn"})["SQN"][0]
    assert again == folder and json.loads((folder / "metrics.json").read_text()) == metrics
