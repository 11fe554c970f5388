"""Orchestration for notebooks: deterministic run folders reused, compare/curves tables, analyses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcrl_kit import diagnostics, experiments, probes
from mcrl_kit.data import episodes, stats
from mcrl_kit.errors import DataError


def test_run_folder_is_deterministic_and_ignores_device(tiny_data, tmp_path):
    study = experiments.Study(tiny_data, steps=30, out=tmp_path)
    a = study.config("mcrl", {"neg": 3}, seed=1)
    b = experiments.Study(tiny_data, steps=30, out=tmp_path, device="cuda", threads=4, progress=True).config("mcrl", {"neg": 3}, seed=1)
    assert experiments.run_folder(study.root, a) == experiments.run_folder(study.root, b)
    name = experiments.run_folder(study.root, a).name
    assert name.startswith("gru-mcrl-neg=3-s1-")
    # what changes a result changes the folder: settings, seed, budget
    others = [study.config("mcrl", {"neg": 4}, seed=1), study.config("mcrl", {"neg": 3}, seed=2),
              experiments.Study(tiny_data, steps=31, out=tmp_path).config("mcrl", {"neg": 3}, seed=1)]
    assert len({experiments.run_folder(study.root, c) for c in [a, *others]}) == 4
    # explicit defaults land where the implicit ones do (the config is resolved first)
    assert experiments.run_key(study.config("mcrl", {"neg": 10})) == experiments.run_key(study.config("mcrl"))


def test_study_reuses_finished_runs(tiny_runs, monkeypatch):
    study, runs = tiny_runs
    assert all((f / "metrics.json").exists() for folders in runs.values() for f in folders)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(experiments, "train", no_training)
    assert study.train({"MCRL": "mcrl", "SQN": "sqn"}) == {"MCRL": runs["MCRL"], "SQN": runs["SQN"]}


def test_compare_and_curves(tiny_runs):
    study, runs = tiny_runs
    table = study.compare(runs)
    assert list(table["label"]) == ["SQN", "MCRL"]
    assert table["seeds"].tolist() == [1, 1]
    assert ((table["purchase NDCG@10"] >= 0) & (table["purchase NDCG@10"] <= 1)).all()
    # MCRL's one item head against SQN's two networks × two heads
    assert table.set_index("label")["params"]["MCRL"] < table.set_index("label")["params"]["SQN"]
    curves = study.curves(runs)
    assert set(curves["label"]) == {"SQN", "MCRL"} and curves["step"].max() == 30
    assert curves.loc[curves["label"] == "MCRL", "loss/conservative"].notna().any()
    summary = experiments.metric_summary(table)
    assert set(summary) == {"SQN", "MCRL"} and summary["MCRL"]["seeds"] == 1


def test_variants_share_definitions():
    b = experiments.baselines(200)
    assert b["SA2C"] == ("sa2c", {"switch_step": 100})
    assert experiments.overestimation_variants(200)["SA2C"] == b["SA2C"]
    assert experiments.overestimation_variants(200)["MCRL − conservative"] == experiments.ablation_variants()["MCRL − conservative"]
    assert experiments.sweep_variants("neg", [1, 5], "K") == {"K = 1": ("mcrl", {"neg": 1}), "K = 5": ("mcrl", {"neg": 5})}


def test_load_data_names(tiny_data):
    with pytest.raises(DataError, match="DATA_PATH"):
        experiments.load_data("retailrocket")
    with pytest.raises(DataError, match="use one of"):
        experiments.load_data("movielens")
    data = experiments.load_data("simulator", scale="tiny")
    assert data.stats["sessions"] == tiny_data.stats["sessions"]


def test_load_data_auto_falls_back_to_the_simulator(monkeypatch, tmp_path):
    monkeypatch.setenv("MCRL_SHARED", str(tmp_path / "absent"))
    assert not experiments.sample_available()
    assert experiments.load_data("auto").config.source == "simulator"
    with pytest.raises(DataError, match="MCRL_SHARED"):
        experiments.load_data("retailrocket-sample")


# --- data tables, episodes, probes ----------------------------------------------------------------------
def test_mdp_table_follows_the_protocol(tiny_data):
    session = episodes.example_sessions(tiny_data, n=1)[0]
    table = episodes.mdp_table(tiny_data, session, gamma=0.5)
    ev = tiny_data.events[tiny_data.events["session"] == session]
    assert table["action a_t"].tolist() == ev["item"].tolist()
    assert (table["event"] == "purchase").any()  # the first example has a purchase
    assert table["state s_t"].iloc[0] == [] and table["done"].tolist() == [False] * (len(table) - 1) + [True]
    # s_{t+1} is the next row's s_t (all histories here are shorter than 10)
    assert table["next state s_t+1"].iloc[:-1].tolist() == table["state s_t"].iloc[1:].tolist()
    r = np.where(ev["is_buy"], 1.0, 0.2)
    expected = [sum(r[k] * 0.5 ** (k - t) for k in range(t, len(r))) for t in range(len(r))]
    np.testing.assert_allclose(table["return G_t"], expected, rtol=1e-6)
    g = episodes.returns_by_gamma(tiny_data, session, gammas=(0.0, 0.9))
    np.testing.assert_allclose(g["G_t (γ=0.0)"], r, rtol=1e-6)


def test_data_tables(tiny_data):
    lengths = stats.session_lengths(tiny_data)
    assert lengths.sum() == len(tiny_data.events) and lengths.min() >= 3
    pop = stats.item_popularity(tiny_data)
    assert pop.is_monotonic_decreasing and pop.sum() == len(tiny_data.events)
    split = stats.split_table(tiny_data)
    assert split["sessions"].sum() == tiny_data.stats["sessions"]
    assert split["share of sessions"].tolist() == [0.8, 0.1, 0.1]
    table = stats.stats_table([tiny_data])
    assert table["dataset"].tolist()[1:] == ["RetailRocket (published)", "Yoochoose (published)"]
    assert table.loc[1, "items"] == 70_852


def test_reward_confusion_and_transition_similarity(tiny_runs, tiny_data):
    study, runs = tiny_runs
    _, mcrl, _ = study.load(runs["MCRL"][0])
    confusion = probes.reward_confusion(mcrl, tiny_data, neg=4)
    test = tiny_data.replay("test")
    # one logged pair and 4 negatives per event; true classes as labelled
    assert confusion.to_numpy().sum() == 5 * len(test)
    assert confusion.loc["negative"].sum() == 4 * len(test)
    assert confusion.loc["purchase"].sum() == int(test.is_buy.sum())
    sims = probes.transition_similarity(mcrl, tiny_data, neg=2)
    counts = sims.groupby(["pair", "target"]).size()
    assert counts[("logged item", "next state")] == len(test) and counts[("negative item", "current state")] == 2 * len(test)
    assert sims["cosine"].between(-1.0001, 1.0001).all()
    _, sqn, _ = study.load(runs["SQN"][0])
    with pytest.raises(Exception, match="MCRL"):
        probes.reward_confusion(sqn, tiny_data)


def test_diagnose_runs_pools_seeds(tiny_runs):
    _, runs = tiny_runs
    values, summary = diagnostics.diagnose_runs({"SQN": runs["SQN"], "MCRL": runs["MCRL"][0]}, n_rollouts=2)
    assert summary["label"].tolist() == ["SQN", "MCRL"]
    assert summary["events"].tolist() == [values["label"].eq("SQN").sum()] * 2
    np.testing.assert_allclose(values["bias"], values["value"] - values["mc_return"])
    assert {"true_value", "bias_true", "seed"} <= set(values.columns)


def test_the_data_fingerprint_is_part_of_a_studys_run_identity(tiny_data, tmp_path):
    """Data prepared again (e.g. by a newer simulator) gets new run folders: old runs are never reused."""
    import dataclasses

    study = experiments.Study(tiny_data, steps=10, out=tmp_path)
    run = study.config("sqn")
    assert run.data_fingerprint == tiny_data.fingerprint
    other = dataclasses.replace(run, data_fingerprint="0" * 64)
    assert experiments.run_folder(tmp_path, run) != experiments.run_folder(tmp_path, other)


def test_a_run_is_found_by_its_data_not_its_path(tiny_data, tmp_path, monkeypatch):
    """The same prepared events at another path (a clone elsewhere; a cache prepared again because its source
    file was touched, which renames the folder) find the finished run — and resume a half-trained one —
    instead of training again; other events, or another setting, do not."""
    import shutil

    from mcrl_kit.config import DataConfig
    from mcrl_kit.data import load_prepared, prepare

    moved = load_prepared(shutil.copytree(tiny_data.root, tmp_path / "elsewhere" / "data"))
    assert moved.root != tiny_data.root and moved.fingerprint == tiny_data.fingerprint
    here, there = (experiments.Study(d, steps=6, eval_every=3, out=tmp_path / "study") for d in (tiny_data, moved))
    [first] = here.train({"SQN": "sqn"})["SQN"]
    run_there = there.config("sqn")
    assert experiments.run_key(run_there) != experiments.run_key(here.config("sqn"))  # the names differ ...
    assert experiments.run_folder(there.root, run_there) == first  # ... the run is the same

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    with monkeypatch.context() as m:
        m.setattr(experiments, "train", no_training)
        assert there.train({"SQN": "sqn"})["SQN"] == [first]
    # another setting, another seed or other events: another folder
    assert experiments.run_folder(there.root, there.config("sqn", {"gamma": 0.9})) != first
    assert experiments.run_folder(there.root, there.config("sqn", seed=1)) != first
    other = prepare(DataConfig(source="simulator", scale="tiny", seed=1), out=tmp_path / "other", progress=False)
    assert experiments.run_folder(there.root, experiments.Study(other, steps=6, eval_every=3).config("sqn")) != first
    # a half-trained run (its checkpoint, no metrics) started on one path resumes on the other
    (first / "metrics.json").unlink()
    assert there.train({"SQN": "sqn"})["SQN"] == [first] and (first / "metrics.json").exists()


def test_a_run_found_by_its_data_loads_and_inspects_where_its_recorded_folder_is_gone(tiny_data, tmp_path, monkeypatch):
    """A run trained on a prepared folder that is gone since (another checkout's cache, a test cache removed)
    loads the same events from the current cache — under the same name, or any name with the same
    fingerprint — and sits in one inspector with a run trained on that cache; other events are refused."""
    import shutil

    from mcrl_kit.config import DataConfig
    from mcrl_kit.data import load_prepared, prepare
    from mcrl_kit.errors import ConfigError, DataError
    from mcrl_kit.runs import load_run, same_data
    from mcrl_kit.viz.inspector import load_runs

    old = load_prepared(shutil.copytree(tiny_data.root, tmp_path / "old-cache" / "simulator-tiny-0123456789"))
    [trained] = experiments.Study(old, steps=4, eval_every=2, out=tmp_path / "study").train({"SQN": "sqn"})["SQN"]
    cache = tmp_path / "cache"
    monkeypatch.setenv("MCRL_CACHE", str(cache))
    current = load_prepared(shutil.copytree(tiny_data.root, cache / "simulator-tiny-9876543210"))  # renamed
    shutil.rmtree(tmp_path / "old-cache")
    config, _, data = load_run(trained)
    assert Path(data.root) == Path(current.root) and same_data(config.to_dict(), current)
    [mcrl] = experiments.Study(current, steps=4, eval_every=2, out=tmp_path / "study").train({"MCRL": "mcrl"})["MCRL"]
    algos, data = load_runs({"SQN": trained, "MCRL": mcrl})
    assert set(algos) == {"SQN", "MCRL"} and data.fingerprint == current.fingerprint
    # other events in the cache do not stand in for the run's
    shutil.rmtree(cache)
    prepare(DataConfig(source="simulator", scale="tiny", seed=1), out=cache / "simulator-tiny-9876543210", progress=False)
    with pytest.raises(DataError, match="is gone, and no prepared folder of the cache holds the run's data"):
        load_run(trained)
    other = load_prepared(cache / "simulator-tiny-9876543210")
    assert not same_data(config.to_dict(), other)
    with pytest.raises(ConfigError, match="was trained on"):
        load_runs({"MCRL": mcrl, "SQN": experiments.Study(other, steps=4, eval_every=2, out=tmp_path / "o").train({"SQN": "sqn"})["SQN"][0]})


def test_runs_whose_data_folder_is_gone_group_by_its_name(tiny_data, tmp_path, monkeypatch):
    """A table merges the seeds of one row by its data's settings; where the recorded folder is gone (runs
    committed from another checkout), by the current cache's folder of that name, else by the name itself."""
    import shutil

    from mcrl_kit.runs import group_key

    monkeypatch.setenv("MCRL_CACHE", str(tmp_path / "cache"))
    study = experiments.Study(tiny_data, steps=4, out=tmp_path)
    here = study.config("sqn", seed=0).to_dict()
    name = "simulator-tiny-0123456789"
    gone = [{**study.config("sqn", seed=s).to_dict(), "data": f"/elsewhere/{i}/cache/{name}"} for i, s in ((1, 1), (2, 2))]
    assert group_key(gone[0]) == group_key(gone[1])  # the same cache folder at two checkouts: one row
    assert group_key({**gone[1], "data": "/elsewhere/2/cache/simulator-tiny-9999999999"}) != group_key(gone[0])
    shutil.copytree(tiny_data.root, tmp_path / "cache" / name)  # the current cache holds that folder: its settings
    assert group_key(gone[0]) == group_key(here) == group_key(gone[1])
