"""``study``: tune on one budget, retrain over split × init seeds, compare with intervals — cached, so a second
call trains nothing; trials never read test, final runs do."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
from helpers import cli

from mcrl_kit import experiments
from mcrl_kit.errors import ConfigError, KitWarning
from mcrl_kit.study import StudyPlan, run_study

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def splits():
    return [experiments.load_data("simulator", scale="tiny", sessions=400, split_seed=s) for s in (0, 1)]


def test_a_study_tunes_retrains_over_splits_and_compares(splits, tmp_path):
    plan = StudyPlan(algos=["popularity", "supervised", "reward_ce"], trials=2, steps=10, split_seeds=(0, 1), seeds=(0,),
                     batch_size=32, n_boot=200, threads=1, online_sessions=50)
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        result = run_study(splits, plan, tmp_path, log=lines.append)
    assert result["budget"]["supervised"] == result["budget"]["reward_ce"] == {"trials": 2, "steps": 20}
    # a line per trial (5: one for popularity) and per final run (6), so a long study says where it is
    assert sum(": trial " in line for line in lines) == 5 and "supervised-gru-10steps: trial 2 of 2: validation" in "".join(lines)
    assert [line.split(":")[0] for line in lines if line.startswith("final run")] == [f"final run {i} of 6" for i in range(1, 7)]
    assert result["budget"]["popularity"]["trials"] == 1
    table = result["table"].set_index("label")
    assert (table["seeds"] == 2).all() and len(table) == 3  # 2 split seeds × 1 init seed per method
    (reference, intervals), _ = result["intervals"]
    assert reference == max(("popularity", "gru-supervised"), key=lambda lab: result["best"][
        "popularity" if lab == "popularity" else "supervised"]["val"])
    assert (intervals["splits"] == 2).all()
    for name in ("comparison.md", "comparison.csv", "study.json", "comparison-purchase-NDCG10.png", "online.csv",
                 "intervals.csv"):
        assert (tmp_path / name).exists(), name
    # the support per split seed, as the final runs counted it; few purchases put the click columns first
    assert set(result["support"]) == {0, 1}
    for s, data in zip((0, 1), splits):
        events = data.split_events("test")
        assert result["support"][s] == {"click": int((~events["is_buy"].astype(bool)).sum()),
                                        "purchase": int(events["is_buy"].astype(bool).sum())}
    text = (tmp_path / "comparison.md").read_text()
    assert "split 0:" in text and "split 1:" in text
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert header.index("click NDCG@10") < header.index("purchase NDCG@10")  # < 100 test purchases per split
    # the online table: the references and every method's first final run meet the same simulated users
    online = result["online"].set_index("policy")
    assert {"logging (no recommender)", "popularity", "recency", "gru-supervised"} <= set(online.index)
    assert (online["sessions"] == plan.online_sessions).all() and (online["reward"] >= 0).all()
    assert "Online (the closed loop" in text and result["seconds"]["tune"] > 0 and result["seconds"]["final"] > 0
    # trials read validation only; the final runs test
    for metrics in (tmp_path / "tune" / "trials" / "runs").glob("*/metrics.json"):
        assert "test" not in json.loads(metrics.read_text())
    finals = list((tmp_path / "final" / "runs").glob("*/metrics.json"))
    assert len(finals) == 6 and all("test" in json.loads(m.read_text()) for m in finals)
    # everything is cached: a second call trains nothing
    before = {m: m.stat().st_mtime_ns for m in [*tmp_path.rglob("metrics.json"), tmp_path / "online.csv"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        run_study(splits, plan, tmp_path)
    assert {m: m.stat().st_mtime_ns for m in [*tmp_path.rglob("metrics.json"), tmp_path / "online.csv"]} == before


def test_bad_plans_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="unknown name 'sqm'"):
        StudyPlan(algos=["sqm"]).check()
    with pytest.raises(ConfigError, match="at least one split seed"):
        StudyPlan(algos=["supervised"], split_seeds=()).check()
    rc, _, err = cli(["study", "--algo", "supervised", "popularty", "--out", tmp_path / "s"])
    assert rc == 2 and "unknown name 'popularty'" in err and not (tmp_path / "s").exists()


def test_a_study_can_retrain_another_studys_best_configurations(splits, tmp_path):
    """The RetailRocket sample reuses the simulator's best configurations: no tuning there, the same parameters
    retrained, the table saying where they came from; a source that does not fit is refused."""
    plan = StudyPlan(algos=["popularity", "supervised"], trials=2, steps=10, split_seeds=(0,), seeds=(0,),
                     batch_size=32, n_boot=50, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        first = run_study(splits[:1], plan, tmp_path / "a")
        reuse = StudyPlan(algos=["supervised"], trials=2, steps=10, split_seeds=(1,), seeds=(0,), batch_size=32,
                          n_boot=50, threads=1, reuse=tmp_path / "a" / "study.json")
        second = run_study(splits[1:], reuse, tmp_path / "b")
    assert not (tmp_path / "b" / "tune").exists()  # nothing tuned here
    assert second["best"]["supervised"]["params"] == first["best"]["supervised"]["params"]
    assert second["budget"]["supervised"]["reused_from"] == str(tmp_path / "a" / "study.json")
    (final,) = (tmp_path / "b" / "final" / "runs").glob("*/config.json")
    lr = first["best"]["supervised"]["params"]["train.lr"]
    assert json.loads(final.read_text())["train"]["lr"] == pytest.approx(lr)
    assert "reused from" in (tmp_path / "b" / "comparison.md").read_text()

    for bad, match in ((dataclasses.replace(reuse, algos=["reward_ce"]), "tuned no reward_ce"),
                       (dataclasses.replace(reuse, steps=20), "was tuned with steps 10"),
                       (dataclasses.replace(reuse, reuse=tmp_path / "nope.json"), "does not exist")):
        with pytest.raises(ConfigError, match=match):
            run_study(splits[1:], bad, tmp_path / "c")
    assert not (tmp_path / "c" / "final").exists()


def test_the_readme_section_is_computed_from_the_studys_files(splits, tmp_path):
    """tools/study_readme.py: the study's own text and figure, and sentences that agree with its CSV files."""
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("study_readme", experiments.paths.home() / "tools" / "study_readme.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    plan = StudyPlan(algos=["recency", "reward_ce", "mcrl"], trials=1, steps=10, split_seeds=(0, 1), seeds=(0,),
                     batch_size=32, n_boot=100, threads=1, online_sessions=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        run_study(splits, plan, tmp_path / "results" / "small-sqn")
    text = tool.section(tmp_path / "results", tmp_path / "figures")
    folder = tmp_path / "results" / "small-sqn"
    assert (folder / "comparison.md").read_text().strip() in text
    assert (tmp_path / "figures" / "study-small-sqn-purchase-NDCG10.png").exists()
    assert "(not run yet" in text.split("### Calibrated simulator `small`, time protocol")[1]
    table = pd.read_csv(folder / "comparison.csv").set_index("label")
    mcrl = next(label for label in table.index if label.startswith("gru-mcrl"))
    for metric in ("purchase NDCG@10", "click NDCG@10"):
        rank = int((table[metric] > table.loc[mcrl, metric]).sum()) + 1
        assert f"MCRL {table.loc[mcrl, metric]:.3f}, {rank} of 3" in text
    intervals = pd.read_csv(folder / "intervals.csv")
    row = intervals[(intervals["label"] == mcrl) & intervals["reference"].str.contains("reward_ce")].iloc[0]
    assert f"purchase NDCG@10 {row['purchase NDCG@10 Δ']:+.3f} [{row['purchase NDCG@10 low']:+.3f}," in text
    assert "**Online**" in text and "users left alone" in text
    summary = tool.findings(tmp_path / "results")
    verdict = ("above" if row["purchase NDCG@10 low"] > 0 else "below" if row["purchase NDCG@10 high"] < 0
               else "indistinguishable from")
    assert f"against reward_ce MCRL is {verdict} it on purchases" in summary
    rank = int((table["purchase NDCG@10"] > table.loc[mcrl, "purchase NDCG@10"]).sum()) + 1
    assert f"purchase NDCG@10: best {tool.method(table['purchase NDCG@10'].idxmax())}, MCRL {rank} of 3" in summary
