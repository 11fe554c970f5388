"""``python benchmarks/bench.py --quick`` runs end to end and writes well-formed results.

No clock is asserted on: the numbers depend on the machine and its load. What is
checked is that every planned case ran and reported the fields the README table and
the targets read, that the JSON and the CSV agree, and that the allocator and README
plumbing behave (tcmalloc absent → plain malloc; the README section replaced in place),
and that the kit's own command line no longer has a bench nor restarts itself.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/bench.py (it puts tools/ on the path for its README writer)

import bench  # noqa: E402
import bench_readme  # noqa: E402
import comparison  # noqa: E402

TRAIN_FIELDS = ("steps_per_s", "transitions_per_s", "peak_rss_mb", "gflop_step", "gflops_achieved", "peak_fraction")


@pytest.mark.slow
def test_quick_bench_writes_json_and_csv(tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, MCRL_HOME=str(tmp_path))  # --readme must not touch the checkout's README
    env.pop("LD_PRELOAD", None)
    if bench.tcmalloc_path():  # as `make bench` starts it
        env["LD_PRELOAD"] = bench.tcmalloc_path()
    (tmp_path / "README.md").write_text("# kit\n\nintro\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--no-peer", "--threads", "1", "--readme",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "bench.json").read_text())
    results = data["results"]
    kinds = {(r["kind"], r["variant"], r.get("source")) for r in results}
    assert ("train", "default", "synthetic") in kinds and ("train", "default", "data") in kinds
    assert ("eval", "default", None) in kinds
    assert {r["variant"] for r in results} >= {"default", "plain", "glibc", "plain+glibc", "sparse-emb"}
    algos = {r["algo"] for r in results if r["kind"] == "train"}
    assert algos == {"supervised", "sqn", "sa2c", "mcrl"}
    for r in results:
        if r["kind"] == "train":
            for field in TRAIN_FIELDS:
                assert math.isfinite(r[field]) and r[field] > 0, (field, r)
            assert r["transitions_per_s"] == pytest.approx(r["steps_per_s"] * r["batch"])
            # the fused path recomputes nothing it does not report: it executes at most the plain FLOPs + logits
            assert r["gflop_exec"] > 0
        else:
            assert r["states_per_s"] > 0 and r["states"] > 0
        assert r["threads"] == 1
    # MCRL's ratio to SQN is computed wherever both ran
    assert all("vs_sqn" in r for r in results if r["kind"] == "train" and r["variant"] == "default")
    # the allocator each worker really had follows the variant (when tcmalloc is installed)
    if bench.tcmalloc_path():
        assert all(r["tcmalloc"] == ("glibc" not in r["variant"]) for r in results if r["kind"] == "train")
    # the orchestrator's own allocator: tcmalloc when preloaded (as `make bench` does), not otherwise
    assert data["allocator"] == ("tcmalloc" if bench.tcmalloc_path() else "malloc")
    assert data["summary"]["matmul_peak_gflops"] > 0
    assert 0 <= data["loadavg_start"]

    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(results)
    assert float(rows[0]["steps_per_s"]) == pytest.approx(results[0]["steps_per_s"])

    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# kit\n\nintro\n") and "## Performance" in readme
    assert readme.count(bench_readme.README_START) == 1 and readme.count(bench_readme.README_END) == 1
    assert "Reproduce: `python benchmarks/bench.py --quick`" in readme
    assert "| mcrl | sasrec |" in readme


def test_readme_section_is_replaced_in_place(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# kit\n\n## Performance\n\n{bench_readme.README_START}\nold\n{bench_readme.README_END}\n\n## Next\n")
    bench_readme.update_readme(readme, "new table", "make bench")
    text = readme.read_text()
    assert "old" not in text and "new table" in text and text.endswith("## Next\n")
    assert text.count("## Performance") == 1


def test_tcmalloc_switches_and_absence(monkeypatch, tmp_path):
    monkeypatch.setenv("MCRL_TCMALLOC", "0")
    assert bench.tcmalloc_path() is None
    monkeypatch.setenv("MCRL_TCMALLOC", str(tmp_path / "missing.so"))
    assert bench.tcmalloc_path() is None  # a wrong path degrades to malloc, no error
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_text("")
    monkeypatch.setenv("MCRL_TCMALLOC", str(lib))
    assert bench.tcmalloc_path() == str(lib)
    monkeypatch.setenv("LD_PRELOAD", "/x/other.so")
    env = bench._worker_env(tcmalloc=True)
    assert env["LD_PRELOAD"] == f"{lib}:/x/other.so"
    env = bench._worker_env(tcmalloc=False)
    assert env["LD_PRELOAD"] == "/x/other.so" and env["MCRL_TCMALLOC"] == "0"


def test_python_m_mcrl_kit_has_no_bench_and_no_restart():
    # both entry points (`python -m mcrl_kit`, the `mcrl-kit` script) run the same main, in this process
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    code = ("import runpy, sys; sys.argv = ['mcrl_kit', '--help']\n"
            "try:\n    runpy.run_module('mcrl_kit', run_name='__main__')\n"
            "except SystemExit as e:\n    print('EXIT', e.code, 'tcmalloc' in open('/proc/self/maps').read())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("EXIT 0 False")  # not restarted (an exec would not come back here)
    commands = proc.stdout.split("positional arguments:")[1].split("options:")[0]
    assert "prepare" in commands and "bench" not in commands
    proc = subprocess.run([sys.executable, "-m", "mcrl_kit", "bench"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 2 and "invalid choice: 'bench'" in proc.stderr


def test_plan_variants_filter_the_ablations():
    import argparse

    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    args = bench.resolve_defaults(p.parse_args(["--items", "70852", "--algos", "mcrl", "sqn", "--backbones", "sasrec",
                                                "--no-data", "--variants", "plain"]))
    cases = bench.plan(args)
    ablations = [(c["algo"], c["variant"]) for c in cases if c["variant"] != "default"]
    assert ablations == [("mcrl", "plain"), ("sqn", "plain")]
    assert all(not c["fused"] for c in cases if c["variant"] == "plain")
    everything = bench.plan(bench.resolve_defaults(p.parse_args(["--items", "70852", "--algos", "sqn", "--no-data"])))
    assert {c["variant"] for c in everything} == set(bench.VARIANTS)
    with pytest.raises(SystemExit):
        p.parse_args(["--variants", "default"])  # not an ablation


def test_disturbed_cases_are_measured_again(monkeypatch, capsys):
    """A case during which others took CPU is rerun (up to --retries) and the least disturbed attempt kept."""
    import argparse

    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    args = bench.resolve_defaults(p.parse_args(["--items", "2000", "--algos", "mcrl", "--backbones", "gru", "--no-data",
                                                "--no-ablation"]))
    assert args.retries == 2 and args.max_foreign == 0.15
    cases = bench.plan(args)  # one train case, one eval case
    foreign = iter([0.9, 0.4, 0.6, 0.01])  # case 1: three disturbed tries, the second kept; case 2: quiet at once
    seen = []

    def fake_group(group, _args):
        seen.append(group[0]["kind"])
        return [{**c, "steps_per_s": 1.0, "transitions_per_s": 1.0, "peak_rss_mb": 1.0, "states_per_s": 1.0,
                 "loadavg_before": 0.0, "foreign_cpu": next(foreign), "steal_cpu": 0.0} for c in group]

    monkeypatch.setattr(bench, "_run_group", fake_group)
    results = bench.run_cases(cases, args)
    assert seen == ["train", "train", "train", "eval"]
    assert [r["attempts"] for r in results] == [3, 1]
    assert results[0]["foreign_cpu"] == 0.4 and results[0]["foreign_cpu_attempts"] == [0.9, 0.4, 0.6]
    assert "measuring again" in capsys.readouterr().out
    args.retries = 0  # --quick's default: measured once, whatever the load
    foreign = iter([0.9, 0.9])
    assert [r["attempts"] for r in bench.run_cases(cases, args)] == [1, 1]


def test_targets_table_is_computed_from_the_results():
    def train(algo, backbone, source, steps, variant="default", rss=1000.0, gflop=8.0, eval_rate=None):
        r = {"kind": "train", "algo": algo, "backbone": backbone, "source": source, "variant": variant, "items": 70_852,
             "batch": 256, "steps_per_s": steps, "transitions_per_s": steps * 256, "peak_rss_mb": rss, "gflop_step": gflop}
        if eval_rate is not None:
            r["eval_states_per_s"] = eval_rate
        return r

    results = [
        train("mcrl", "sasrec", "synthetic", 5.0, gflop=8.3), train("sqn", "sasrec", "synthetic", 2.0, gflop=10.0),
        train("sqn", "sasrec", "synthetic", 1.0, variant="plain"),
        train("mcrl", "sasrec", "data", 3.0, rss=1500.0, eval_rate=3500.0), train("sqn", "sasrec", "data", 2.0),
        {"kind": "eval", "backbone": "sasrec", "items": 70_852, "states_per_s": 2000.0},
        {"kind": "eval", "backbone": "sasrec", "items": 26_702, "states_per_s": 1.0},  # another catalogue: not a target
    ]
    bench.summarise(results, peak=100.0, peer=None)
    table = bench_readme.targets_table(results, {"transitions_per_s": 100.0, "items": 70_852}, {"peer_ratio": 1.6,
                                                                                     "peer_ours_transitions_per_s": 160.0})
    rows = {line.split(" | ")[0].lstrip("| "): line.rstrip(" |").split(" | ")[-1] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| target")}
    assert rows["MCRL ≥ 4 steps/s"] == "**met in part**"  # 5.0 synthetic, 3.0 data
    assert rows["MCRL ≥ 2× SQN's transitions/s"] == "**met in part**"  # 2.5× synthetic, 1.5× data
    assert rows["… against SQN computed as the reference does (whole Q heads: the `plain` variant)"] == "met"  # 5×
    assert rows["supervised SASRec ≥ 1.5× RecBole's SASRec"] == "met"
    assert rows["evaluation ≥ 3,000 states/s"] == "**met in part**"  # 2,000 synthetic, 3,500 data
    assert rows["MCRL peak RSS < 1.5 GB on prepared data"] == "**not met**"  # 1,500 MiB = 1.57 GB
    assert "1.20× sasrec" in table  # the FLOP bound: 10.0 / 8.3


def test_backbones_bench_runs_on_a_tiny_catalogue():
    """``benchmarks/backbones.py`` (was ``mcrl_kit.models.bench``): every backbone timed, its size reported."""
    import backbones
    import torch

    from mcrl_kit.config import ModelConfig
    from mcrl_kit.models import BACKBONES, build_backbone

    rows = backbones.bench(n_items=50, batch=8, steps=1)
    assert [r["backbone"] for r in rows] == list(BACKBONES)
    assert all(r[col] > 0 for r in rows for col in ("train", "sparse", "eval", "+head"))
    torch.manual_seed(0)
    sizes = [sum(p.numel() for p in build_backbone(ModelConfig(backbone=n), 50, 10).parameters()) for n in BACKBONES]
    assert [r["parameters"] for r in rows] == sizes


@pytest.mark.slow
def test_comparison_study_quick_runs_resumes_and_writes_its_readme_tables(tmp_path):
    """benchmarks/comparison.py on its quick plan: every method and sampler row, reused on a second call."""
    env = dict(os.environ, MCRL_HOME=str(tmp_path), OMP_NUM_THREADS="1")
    (tmp_path / "README.md").write_text("# kit\n\n<!-- comparison:start -->\nold\n<!-- comparison:end -->\n\nafter\n")
    script = [sys.executable, str(ROOT / "benchmarks" / "comparison.py"), "--quick", "--out", str(tmp_path / "cmp")]
    for part in ("main", "samplers"):
        proc = subprocess.run([*script, "--part", part], capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    again = subprocess.run([*script, "--part", "main"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "runs, 16 done before" in again.stdout, again.stdout  # every run reused
    proc = subprocess.run([*script, "--report", "--readme"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    readme = (tmp_path / "README.md").read_text()
    assert "old" not in readme and readme.endswith("after\n")
    for label in [*comparison.HEURISTICS, *comparison.learned(20)]:
        assert f"| {label} |" in readme, label
    for label in comparison.sampler_variants(20, (1,)):
        assert f"| {label} | 1 |" in readme, label
    assert "no per-method tuning" in readme
    n_samplers = len(comparison.sampler_variants(20, (1,)))
    assert "Runs: 16 of 16 planned runs finished" in readme  # how much of each part is done
    assert f"the main table's runs; {n_samplers} of {n_samplers} planned runs finished" in readme
    assert "- MCRL, purchase NDCG@10: best " in readme and "- SA2C, click NDCG@10: best " in readme  # the samplers, read
    # MCRL against the control, with its paired interval (the quick plan's one seed each)
    assert "(gru) " in readme and " against the reward-weighted CE on gru, an interval " in readme


def _ranks_run(folder, ranks, seed):
    """A finished run as ``comparison.pair_rows`` reads it: its config and its test events' ranks (all clicks)."""
    from types import SimpleNamespace

    import torch

    from mcrl_kit.train import save_ranks

    folder.mkdir(parents=True)
    n = len(ranks)
    save_ranks(folder / "ranks_test.npz", torch.tensor(ranks),
               SimpleNamespace(is_buy=torch.zeros(n, dtype=torch.bool), session=torch.arange(n)))
    return ({"data_fingerprint": "split-0", "data": "d", "train": {"seed": seed}}, str(folder))


def test_a_row_cut_short_is_paired_with_the_references_same_seeds_only(tmp_path):
    # the reference misses every click on seed 0 and hits every click on seeds 1 and 2; the row has only seed 0,
    # where it hits: paired over seed 0 the difference is 1 in every draw (against all three seeds it would be 1/3)
    default, setting, heuristic = ("MCRL, uniform, K=10", "gru"), ("MCRL, in_batch, K=1", "gru"), ("recency", "–")
    groups = {
        default: [_ranks_run(tmp_path / f"d{s}", [20] * 4 if s == 0 else [0] * 4, s) for s in (0, 1, 2)],
        setting: [_ranks_run(tmp_path / "s0", [0] * 4, 0)],
        heuristic: [_ranks_run(tmp_path / "h", [0, 0, 20, 20], 0)],  # one run, set against every seed
    }
    out = comparison.pair_rows(groups, {setting: default, default: heuristic, ("absent", "gru"): default},
                               ["click HR@10"]).set_index("label")
    assert list(out.index) == ["MCRL, in_batch, K=1", "MCRL, uniform, K=10"]  # a row without runs is left out
    row = out.loc["MCRL, in_batch, K=1"]
    assert (row["click HR@10 Δ"], row["click HR@10 low"], row["click HR@10 high"]) == (1.0, 1.0, 1.0)
    assert row["seeds"] == 1 and row["reference"] == "MCRL, uniform, K=10"
    assert out.loc["MCRL, uniform, K=10", "click HR@10 Δ"] == pytest.approx(2 / 3 - 0.5)  # seeds averaged per event


def test_the_sampler_reading_is_computed_from_its_tables():
    import pandas as pd

    c = "click HR@10"
    t = pd.DataFrame()
    t.attrs.update(means={("MCRL, uniform, K=10", "gru"): {c: 0.5}, ("MCRL, in_batch, K=1", "gru"): {c: 0.7},
                          ("MCRL, unseen, K=50", "gru"): {c: 0.4}, ("MCRL, popularity, K=1", "gru"): {c: 0.55}},
                   seeds={key: 3 for key in [("MCRL, uniform, K=10", "gru"), ("MCRL, in_batch, K=1", "gru"),
                                             ("MCRL, unseen, K=50", "gru"), ("MCRL, popularity, K=1", "gru")]},
                   # mean wall seconds per run (0: no timing recorded, left out of the cost)
                   seconds={("MCRL, uniform, K=10", "gru"): 100.0, ("MCRL, in_batch, K=1", "gru"): 40.0,
                            ("MCRL, unseen, K=50", "gru"): 450.0, ("MCRL, popularity, K=1", "gru"): 0.0})
    assert comparison.sampler_pairs(t) == {k: ("MCRL, uniform, K=10", "gru") for k in [
        ("MCRL, in_batch, K=1", "gru"), ("MCRL, unseen, K=50", "gru"), ("MCRL, popularity, K=1", "gru")]}
    paired = pd.DataFrame({"label": ["MCRL, in_batch, K=1", "MCRL, unseen, K=50", "MCRL, popularity, K=1"],
                           "reference": ["MCRL, uniform, K=10"] * 3,
                           f"{c} low": [0.1, -0.2, -0.02], f"{c} high": [0.3, -0.01, 0.1]})
    text = comparison.sampler_reading(t, [c], paired)
    assert "trained rows: means over 3 seeds" in text
    assert ("- MCRL, click HR@10: best in_batch K=1 0.700, worst unseen K=50 0.400; the default uniform K = 10 "
            "0.500, 3 of 4; against the default, 1 of 3 settings' intervals include 0, above it: in_batch K=1, "
            "below it: unseen K=50.") in text
    assert "- MCRL, cost: a K = 50 run took 4.5× the wall time of a K = 10 run" in text
    assert "SA2C" not in text  # no SA2C rows, no SA2C sentence
