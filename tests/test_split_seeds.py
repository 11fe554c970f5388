"""Split seeds: the same sessions cut another way, apart from the seed of the simulator's world; folders
prepared before keep their key and split; compare merges runs over split and init seeds."""

from __future__ import annotations

import warnings

import pytest
from helpers import cli

from mcrl_kit.config import DataConfig, ModelConfig, TrainConfig
from mcrl_kit.data import prepare
from mcrl_kit.data.prepare import cache_key
from mcrl_kit.errors import ConfigError, KitWarning
from mcrl_kit.report import compare_runs
from mcrl_kit.runs import RunConfig
from mcrl_kit.train import train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    base = DataConfig(source="simulator", scale="tiny", seed=0, sessions=300)
    return {s: prepare(DataConfig.from_dict({**base.to_dict(), "split_seed": s}), out=root / f"split{s}", progress=False)
            for s in (None, 0, 1)}


def test_a_split_seed_cuts_the_same_sessions_another_way(splits):
    default, zero, one = splits[None], splits[0], splits[1]
    # the world and its sessions are the seed's: the same events under every split seed
    for col in ("session", "timestamp", "item", "is_buy"):
        assert (one.events[col].to_numpy() == default.events[col].to_numpy()).all()
    assert (zero.sessions["split"].to_numpy() == default.sessions["split"].to_numpy()).all()  # None means seed
    assert zero.fingerprint == default.fingerprint
    assert (one.sessions["split"].to_numpy() != default.sessions["split"].to_numpy()).any()
    assert one.fingerprint != default.fingerprint
    assert one.sessions["split"].value_counts().to_dict() == default.sessions["split"].value_counts().to_dict()


def test_folders_prepared_before_the_field_keep_their_cache_key():
    config = DataConfig(source="simulator", scale="small")
    assert cache_key(config) == cache_key(DataConfig.from_dict({**config.to_dict(), "split_seed": None}))
    assert cache_key(config) != cache_key(DataConfig.from_dict({**config.to_dict(), "split_seed": 0}))


def test_split_seed_is_checked_and_a_prepare_flag(tmp_path):
    with pytest.raises(ConfigError, match="split_seed"):
        DataConfig(split_seed=-1)
    rc, _, err = cli(["prepare", "--scale", "tiny", "--sessions", 200, "--split-seed", 4, "--out", tmp_path / "d",
                      "--no-progress"])
    assert rc == 0, err
    assert '"split_seed": 4' in (tmp_path / "d" / "config.json").read_text()


def test_compare_merges_runs_over_split_and_init_seeds(splits, tmp_path):
    folders = []
    for split_seed, seed in ((0, 0), (1, 0), (1, 1)):
        data = splits[split_seed]
        run = RunConfig(data=str(data.root), model=ModelConfig(backbone="gru", hidden=8), algo="supervised",
                        train=TrainConfig(steps=4, batch_size=32, eval_every=2, seed=seed, device="cpu", progress=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KitWarning)
            folders.append(train(run, tmp_path / f"s{split_seed}-{seed}", data=data).out)
    table = compare_runs(folders)
    assert len(table) == 1 and table["seeds"].iloc[0] == 3
    other = RunConfig(data=str(splits[0].root), model=ModelConfig(backbone="gru", hidden=16), algo="supervised",
                      train=TrainConfig(steps=4, batch_size=32, eval_every=2, device="cpu", progress=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        folders.append(train(other, tmp_path / "wider", data=splits[0]).out)
    assert len(compare_runs(folders)) == 2  # another model is another row
