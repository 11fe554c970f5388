"""Configs: unknown keys refused with the valid list, JSON round trip, bad values refused."""

from __future__ import annotations

import pytest

from mcrl_kit.config import AlgoConfig, DataConfig, TrainConfig
from mcrl_kit.errors import ConfigError


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        DataConfig.from_dict({"sorce": "simulator"})
    msg = str(err.value)
    assert "sorce" in msg and "did you mean 'source'" in msg and "scale" in msg and "Fix:" in msg


def test_round_trip(tmp_path):
    cfg = DataConfig(source="simulator", scale="small", seed=3, split=(0.7, 0.2, 0.1))
    cfg.save(tmp_path / "c.json")
    assert DataConfig.load(tmp_path / "c.json") == cfg
    t = TrainConfig(steps=10, lr=0.01)
    assert TrainConfig.from_dict(t.to_dict()) == t


@pytest.mark.parametrize(
    "bad",
    [
        dict(split=(0.5, 0.5)),
        dict(state_len=0),
    ],
)
def test_bad_data_values(bad):
    with pytest.raises(ConfigError):
        DataConfig.from_dict(bad)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (dict(source="retailrocket"), "reads one file"),  # needs a path
        (dict(source="yoochoose", paths=("a", "b", "c")), "reads the clicks file"),
        (dict(source="nope"), "unknown value 'nope'"),
        (dict(scale="huge"), "huge"),
        (dict(source="events", paths=("x",), sample_sessions=5), "only read by the yoochoose source"),
        (dict(source="simulator", min_item_events=5), "the simulator source would ignore it"),
        (dict(source="retailrocket", paths=("x",), sample_sessions=10), "only read by the yoochoose source"),
        (dict(sessions=5, source="yoochoose", paths=("x",)), "only read by the simulator source"),
        (dict(columns={"item_id": "sku"}), "only read by the events source"),
    ],
)
def test_source_options_refused(bad, says):
    """Each source's registry entry checks its files and the options it would ignore, before any work."""
    from mcrl_kit.data.sources import source_options

    with pytest.raises(ConfigError, match=says):
        source_options(DataConfig.from_dict(bad))


def test_source_options_are_the_sources_own():
    from mcrl_kit.data.sources import SOURCES, source_options

    rr = source_options(DataConfig(source="retailrocket", paths=("x",), min_item_events=7))
    assert rr == SOURCES["retailrocket"].options(min_session_events=3, min_item_events=7)
    assert source_options(DataConfig(scale="small", sessions=9)).sessions == 9
    # the protocol's filters: each source's own defaults when none is given
    events = source_options(DataConfig(source="events", paths=("x",)))
    assert (events.min_session_events, events.min_item_events) == (0, 0)
    yoo = source_options(DataConfig(source="yoochoose", paths=("x",)))
    assert (yoo.min_session_events, yoo.min_item_events) == (3, 0)
    rr = source_options(DataConfig(source="retailrocket", paths=("x",)))
    assert (rr.min_session_events, rr.min_item_events) == (3, 3)


@pytest.mark.parametrize(
    "bad",
    [dict(steps=-1), dict(steps=5, epochs=1.0), dict(lr=0), dict(select_metric="purchase/MRR"), dict(device="tpu")],
)
def test_bad_train_values(bad):
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(bad)


def test_types_are_checked_and_coerced():
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0
    assert DataConfig.from_dict({"split": [0.8, 0.1, 0.1]}).split == (0.8, 0.1, 0.1)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"batch_size": "big"})
    with pytest.raises(ConfigError):
        AlgoConfig.from_dict({"gamma": 1.5})


def test_each_registry_checks_its_own_names():
    """config.py imports no registry: the simulator checks scales, the models backbones, RunConfig both kinds."""
    from mcrl_kit.data.simulator import check_scale
    from mcrl_kit.models import backbone_class
    from mcrl_kit.runs import RunConfig

    for check, name in ((check_scale, "huge"), (backbone_class, "transformer")):
        with pytest.raises(ConfigError, match=f"unknown value '{name}'"):
            check(name)
    with pytest.raises(ConfigError, match=r"ModelConfig\.backbone"):
        RunConfig.from_dict({"model": {"backbone": "transformer"}})
    from mcrl_kit.data import prepare
    from mcrl_kit.data.sources import source_reader

    with pytest.raises(ConfigError, match="unknown value 'kaggle'"):
        source_reader("kaggle")
    with pytest.raises(ConfigError, match=r"DataConfig\.scale"):
        prepare(DataConfig(scale="huge"), out="/nonexistent/never-made")
    with pytest.raises(ConfigError, match=r"DataConfig\.source"):
        prepare(DataConfig(source="kaggle", paths=("x.csv",)), out="/nonexistent/never-made")


def test_metric_cutoffs_are_defined_once():
    from mcrl_kit import config, evaluate, report

    assert evaluate.KS is config.KS and report.KS is config.KS
    assert not any("@15" in m for m in config.SELECT_METRICS)
    with pytest.raises(ConfigError, match="NDCG@15"):
        TrainConfig(select_metric="purchase/NDCG@15")
