"""The bench's peer path without RecBole: a fake peer prints what the real one prints.

``bench.run_peer`` runs ``<peer python> benchmarks/peer_recbole.py --data … --batch …``
and parses its ``BENCH_RESULT {json}`` line; ``summarise`` turns it into the kit / peer
ratio the README shows. Here ``--peer-python`` is a shell script that records its
arguments and runs a stand-in for the peer script (it reads the RecBole atomic file the
bench wrote, and reports fixed speeds), so the whole path is checked in a second.
``write_recbole_atomic`` is checked on the tiny simulator data.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench  # benchmarks/bench.py
import bench_readme  # tools/bench_readme.py

FAKE_PEER = r'''
import argparse, json, sys
from pathlib import Path
p = argparse.ArgumentParser()
for name in ("--data", "--batch", "--threads", "--steps", "--warmup"):
    p.add_argument(name, required=True)
args = p.parse_args()
data = Path(args.data)
lines = (data / f"{data.name}.inter").read_text().splitlines()
rows = [line.split("\t") for line in lines[1:]]
print("RecBole says hello on stdout; this line is not a result")
result = {
    "peer": "RecBole 1.2.1 SASRec", "items": len({r[1] for r in rows}), "training_instances": len(rows),
    "batch": int(args.batch), "threads": int(args.threads), "steps": int(args.steps),
    "steps_per_s": 8.0, "transitions_per_s": 8.0 * int(args.batch), "step_ms_median": 125.0,
    "header": lines[0], "warmup": int(args.warmup),
}
print("BENCH_RESULT " + json.dumps(result), flush=True)
sys.exit(int(__import__("os").environ.get("FAKE_PEER_EXIT", "0")))
'''


@pytest.fixture
def fake_peer(tmp_path, tiny_data, monkeypatch):
    """``(args, calls)``: bench arguments whose ``--peer-python`` is the fake, and the data scales asked for."""
    script = tmp_path / "fake_peer.py"
    script.write_text(FAKE_PEER)
    python = tmp_path / "peer-python"
    # $1 is the real peer script: record it, then run the stand-in with the rest
    python.write_text(f'#!/bin/sh\necho "$1" > "{tmp_path}/script_arg"\nshift\nexec "{sys.executable}" "{script}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    calls = []
    monkeypatch.setattr(bench, "_prepared", lambda scale: calls.append(scale) or tiny_data)
    args = argparse.Namespace(peer_python=str(python), scale=None, quick=True, batch=64, threads=1, steps=3, warmup=1,
                              wait_quiet=0.0)
    return args, calls


def test_run_peer_parses_the_fake_result(fake_peer, tmp_path, tiny_data):
    args, calls = fake_peer
    out = tmp_path / "bench"
    result = bench.run_peer(args, out)
    assert calls == ["tiny"]  # --quick: the tiny scale, as the kit's own data cases
    assert result is not None
    # the peer script the bench asked the peer python to run
    peer_script = Path(bench.__file__).resolve().parent.parent / "benchmarks" / "peer_recbole.py"
    assert Path((tmp_path / "script_arg").read_text().strip()) == peer_script
    # the BENCH_RESULT line, parsed, plus what the bench adds
    assert result["peer"] == "RecBole 1.2.1 SASRec"
    assert result["batch"] == 64 and result["threads"] == 1 and result["steps"] == 3 and result["warmup"] == 1
    assert result["steps_per_s"] == 8.0 and result["transitions_per_s"] == 8.0 * 64
    assert result["header"] == "session_id:token\titem_id:token\ttimestamp:float"
    # the peer read the atomic file of the same prepared data
    # (the fake peer counts the items its interactions hold: those the simulator's sessions reached)
    assert result["items"] == tiny_data.events["item"].nunique() and result["training_instances"] == len(tiny_data.events)
    assert "loadavg_before" in result
    cmd = result["command"].split()
    assert cmd[0] == args.peer_python and cmd[cmd.index("--data") + 1] == str(out / "recbole" / "mcrl_data")
    assert cmd[cmd.index("--batch") + 1] == "64" and cmd[cmd.index("--threads") + 1] == "1"


def test_peer_ratio_in_the_summary_and_table(fake_peer, tmp_path):
    args, _ = fake_peer
    peer = bench.run_peer(args, tmp_path / "bench")

    def row(algo, source, tps, items=300):
        return {"kind": "train", "variant": "default", "algo": algo, "backbone": "sasrec", "source": source,
                "items": items, "steps_per_s": tps / 64, "transitions_per_s": tps, "gflop_step": 0.5,
                "batch": 64, "peak_rss_mb": 100.0}

    results = [row("supervised", "synthetic", 9_000.0, 2_000), row("supervised", "data", 1_280.0),
               row("sqn", "data", 640.0)]
    summary = bench.summarise(results, peak=10.0, peer=peer)
    # ours: the supervised SASRec on the prepared data (not the synthetic batches) over the peer's 512/s
    assert summary["peer_ours_transitions_per_s"] == 1_280.0
    assert summary["peer_ratio"] == pytest.approx(1_280.0 / 512.0)
    assert summary["matmul_peak_gflops"] == 10.0
    assert results[1]["vs_sqn"] == pytest.approx(2.0)
    assert results[1]["gflops_achieved"] == pytest.approx(0.5 * 20.0) and results[1]["peak_fraction"] == pytest.approx(1.0)
    meta = {"date": "d", "machine": "m", "torch": "t", "threads": 1, "batch": 64, "steps": 3, "warmup": 1,
            "tcmalloc": False, "loadavg_start": 0.0, "loadavg_max": 0.0, "foreign_cpu_max": 0.0, "summary": summary}
    text = bench_readme.tables(meta, results, peer)
    assert "| RecBole SASRec | 8.00 | 512 |" in text
    assert "| kit supervised SASRec | 20.00 | 1,280 |" in text
    assert "**ratio (kit / RecBole)** | | **2.50×**" in text
    # no peer, or no kit row to compare with: no ratio
    assert "peer_ratio" not in bench.summarise([row("sqn", "data", 640.0)], 10.0, peer)
    assert "peer_ratio" not in bench.summarise(results, 10.0, None)


def test_run_peer_failures_give_none(fake_peer, tmp_path, monkeypatch, capsys):
    args, _ = fake_peer
    monkeypatch.setenv("FAKE_PEER_EXIT", "3")  # printed a result, then failed: not trusted
    assert bench.run_peer(args, tmp_path / "bench") is None
    assert "peer: RecBole run failed" in capsys.readouterr().out
    monkeypatch.delenv("FAKE_PEER_EXIT")
    missing = argparse.Namespace(**{**vars(args), "peer_python": str(tmp_path / "no-such-python")})
    assert bench.run_peer(missing, tmp_path / "bench") is None
    assert "not found" in capsys.readouterr().out


def test_write_recbole_atomic(tiny_data, tmp_path):
    folder = bench.write_recbole_atomic(tiny_data, tmp_path / "recbole")
    assert folder == tmp_path / "recbole" / "mcrl_data"
    inter = folder / "mcrl_data.inter"
    lines = inter.read_text().splitlines()
    assert lines[0] == "session_id:token\titem_id:token\ttimestamp:float"
    rows = [line.split("\t") for line in lines[1:]]
    ev = tiny_data.events
    assert len(rows) == len(ev) and all(len(r) == 3 for r in rows)
    assert [int(r[0]) for r in rows] == ev["session"].tolist()
    assert [int(r[1]) for r in rows] == ev["item"].tolist()
    # the time is the position in the session: 0, 1, 2, … restarting with each session
    prev_session, expected_t = None, 0
    for session, _, t in rows:
        expected_t = expected_t + 1 if session == prev_session else 0
        assert float(t) == expected_t
        prev_session = session
    assert sum(r[2] == "0" for r in rows) == ev["session"].nunique()  # each session's rows are contiguous
    # the whole catalogue as RecBole's item file, items that never occur included
    items = (folder / "mcrl_data.item").read_text().splitlines()
    assert items[0] == "item_id:token" and [int(i) for i in items[1:]] == list(range(tiny_data.n_items))
    assert not list(folder.glob("*.tmp"))  # written through a temporary, renamed into place
    # written once: a second call reuses the file
    before = os.stat(inter).st_mtime_ns
    assert bench.write_recbole_atomic(tiny_data, tmp_path / "recbole") == folder
    assert os.stat(inter).st_mtime_ns == before
