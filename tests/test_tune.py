"""``tune``: the same budget for every method, validation only, cached trial folders; a killed single-worker
study resumes to exactly the uninterrupted one's (parameters, value) list; two workers share one study
without losing, duplicating or overrunning a trial. Tiny data, trials of 10 steps."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import warnings

import pandas as pd
import pytest
from childproc import Child

from mcrl_kit.algos import ALGOS
from mcrl_kit.errors import KitWarning
from mcrl_kit.tune import COMMON_SEARCH, Tuner, completed, search_space

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

STEPS = 10


def tuner(data, algo, out, **kw) -> Tuner:
    return Tuner(data, algo, steps=STEPS, batch_size=32, eval_every=5, out=out, threads=1, **kw)


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)  # tiny's selection falls back to clicks
        return fn(*args)


def test_every_search_space_names_fields_of_its_config():
    for name, cls in ALGOS.items():
        space = search_space(name)
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        assert set(cls.Config.SEARCH) <= fields, name
        assert (set(COMMON_SEARCH) <= set(space)) == cls.trainable, name
    assert search_space("popularity") == {} and search_space("recency") == {}
    assert {"switch_step", "neg"} <= set(search_space("sa2c")) and "alpha" in search_space("cql")


def test_the_same_budget_for_every_method_and_no_more(tiny_data, tmp_path):
    tables = {algo: quiet(tuner(tiny_data, algo, tmp_path).run, 2) for algo in ("supervised", "sa2c", "popularity")}
    for algo in ("supervised", "sa2c"):
        t = tables[algo]
        assert len(t) == 2 and (t["state"] == "COMPLETE").all() and t["steps"].sum() == 2 * STEPS, algo
    assert len(tables["popularity"]) == 1  # nothing to search: one trial
    # asked again, nothing more is trained; extending raises every method by the same trials
    assert len(quiet(tuner(tiny_data, "supervised", tmp_path).run, 2)) == 2
    for algo in ("supervised", "sa2c"):
        assert len(quiet(tuner(tiny_data, algo, tmp_path).run, 3)) == 3
    assert len(quiet(tuner(tiny_data, "popularity", tmp_path).run, 3)) == 1
    csv = pd.read_csv(tmp_path / "sa2c-gru-10steps.csv")  # the third may be pruned: its steps are what it trained
    assert len(csv) == 3 and set(csv["state"]) <= {"COMPLETE", "PRUNED"} and 2 * STEPS < csv["steps"].sum() <= 3 * STEPS


def test_trials_never_read_test(tiny_data, tmp_path):
    table = quiet(tuner(tiny_data, "supervised", tmp_path).run, 2)
    for folder in table["run"]:
        metrics = json.loads((tmp_path / "trials" / "runs" / os.path.basename(folder) / "metrics.json").read_text())
        assert "test" not in metrics and "test" not in metrics["count"]
        assert not (tmp_path / "trials" / "runs" / os.path.basename(folder) / "ranks_test.npz").exists()
        assert "val" in metrics


def tune_args(data, out, trials=3) -> list[str]:
    return ["tune", "--data", str(data.root), "--algo", "sa2c", "--trials", str(trials), "--steps", str(STEPS),
            "--batch-size", "32", "--threads", "1", "--out", str(out)]


def test_a_killed_study_resumes_to_the_uninterrupted_list(tiny_data, tmp_path):
    whole = quiet(tuner(tiny_data, "sa2c", tmp_path / "whole").run, 3)
    # killed inside the second trial (its first checkpoint: the 3rd checkpoint of the study), then resumed
    child = Child(tune_args(tiny_data, tmp_path / "cut"), pause="train:checkpoint@3")
    child.wait_paused()
    child.kill()
    resumed = quiet(tuner(tiny_data, "sa2c", tmp_path / "cut").run, 3)
    assert (resumed["state"] == "FAIL").sum() == 1  # the killed trial, retried with its own parameters
    assert completed(resumed) == completed(whole)


def test_two_workers_share_one_study(tiny_data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "mcrl_kit", *tune_args(tiny_data, tmp_path, trials=4)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    table = tuner(tiny_data, "sa2c", tmp_path).table()
    assert len(table) == 4 and set(table["state"]) <= {"COMPLETE", "PRUNED"}  # none lost, none beyond the budget
    assert table["params"].nunique() == 4 and sorted(table["index"]) == [0, 1, 2, 3]  # none duplicated


def test_pruned_trials_count_in_the_budget_with_the_steps_they_trained(tiny_data, tmp_path):
    import optuna

    always = optuna.pruners.ThresholdPruner(lower=2.0)  # every value is below 2: pruned at the first validation
    table = quiet(Tuner(tiny_data, "supervised", steps=STEPS, batch_size=32, eval_every=5, out=tmp_path, threads=1,
                        pruner=always).run, 2)
    assert len(table) == 2 and (table["state"] == "PRUNED").all() and table["steps"].tolist() == [5, 5]


def test_the_default_search_and_pruner(tiny_data, tmp_path):
    """The learning rate around the reference's (not down where a short budget never moves), TPE guided after a
    few random trials, and no trial pruned at its first validation."""
    from mcrl_kit.tune import COMMON_SEARCH, STARTUP_TRIALS

    lr = COMMON_SEARCH["train.lr"]
    assert lr.log and lr.low <= 0.005 and 0.01 <= lr.high and lr.low >= 1e-3
    assert STARTUP_TRIALS < 10  # a 10-trial budget is not a random search
    study = Tuner(tiny_data, "supervised", steps=40, out=tmp_path).study()
    for _ in range(2):  # two complete trials that scored well at every validation (every steps // 4 = 10)
        done = study.ask()
        for step in (10, 20, 30, 40):
            done.report(0.9, step)
        study.tell(done, 0.9)
    slow = study.ask()
    slow.report(0.01, 10)
    assert not slow.should_prune()  # its first validation: a slow start is no verdict
    slow.report(0.01, 20)
    assert slow.should_prune()  # its second, still below the median: pruned
