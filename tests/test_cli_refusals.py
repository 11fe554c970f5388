"""Bad configs are refused before any work starts; no user error shows a traceback.

``train`` must refuse an unknown key, a negative or non-finite number, K ≥ the catalogue,
an unknown backbone/algorithm/metric/device — exit 2, one ``error: … Fix: …`` paragraph
listing the valid choices, and nothing written: the ``--out`` folder is not created (or,
when it exists, is left byte for byte as it was). Then a sample of hostile invocations
runs as real ``python -m mcrl_kit`` processes: none may print a traceback.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest

from mcrl_kit.cli import main


def cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, err.getvalue()


def train_args(data, out, *extra: str) -> list[str]:
    budget = [] if {"--steps", "--epochs"} & set(extra) else ["--steps", "5"]
    return ["train", "--data", str(data), "--out", str(out), "--backbone", "gru", *budget, "--device", "cpu",
            "--no-progress", *extra]


BAD_TRAIN = {
    # case: (extra arguments, what the message must contain — the valid choices among them)
    "unknown-key": (["--algo", "snqn", "--set", "nope=1"], ["unknown key 'nope'", "use one of:", "neg", "gamma"]),
    "typo-key": (["--algo", "sqn", "--set", "gama=0.9"], ["did you mean 'gamma'", "use one of:"]),
    "negative-steps": (["--steps", "-5"], ["TrainConfig.steps", "-5", "> 0"]),
    "zero-epochs": (["--epochs", "0"], ["TrainConfig.epochs", "> 0"]),
    "infinite-epochs": (["--epochs", "inf"], ["TrainConfig.epochs", "inf"]),
    "nan-lr": (["--lr", "nan"], ["TrainConfig.lr", "nan"]),
    "zero-batch": (["--batch-size", "0"], ["TrainConfig.batch_size"]),
    "zero-hidden": (["--hidden", "0"], ["ModelConfig.hidden"]),
    "negative-seed": (["--seed", "-1"], ["TrainConfig.seed", "non-negative"]),
    "huge-seed": (["--seed", str(10**20)], ["TrainConfig.seed"]),
    "K-equals-catalogue-snqn": (["--algo", "snqn", "--set", "neg=300"], ["K = 300 negatives but only 300 items", "neg < 300"]),
    "K-above-catalogue-sa2c": (["--algo", "sa2c", "--set", "neg=1000"], ["only 300 items", "neg < 300"]),
    "K-equals-catalogue-mcrl": (["--algo", "mcrl", "--set", "neg=300"], ["only 300 items", "neg < 300"]),
    "bool-for-int": (["--algo", "snqn", "--set", "neg=true"], ["expected int"]),
    "unknown-backbone": (["--backbone", "transformer"], ["unknown value 'transformer'", "gru, caser, nextitnet, sasrec"]),
    "unknown-algo": (["--algo", "dqn"], ["unknown name 'dqn'", "supervised", "sqn", "sa2c", "mcrl"]),
    "unknown-metric": (["--select-metric", "purchase/MRR"], ["unknown value 'purchase/MRR'", "purchase/NDCG@10"]),
    "uncomputed-cutoff": (["--select-metric", "purchase/NDCG@15"], ["unknown value 'purchase/NDCG@15'", "purchase/NDCG@20"]),
    "unknown-device": (["--device", "tpu"], ["unknown device 'tpu'", "auto, cpu, cuda or cuda:N"]),
    "bad-cuda-index": (["--device", "cuda:x"], ["unknown device 'cuda:x'"]),
    "mcrl-choice": (["--algo", "mcrl", "--set", "conservative=magic"], ["unknown value 'magic'", "cql, expectile, none"]),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN))
def test_bad_train_config_is_refused_before_any_work(tiny_data, tmp_path, case):
    extra, said = BAD_TRAIN[case]
    parent = tmp_path / "runs"
    parent.mkdir()
    rc, err = cli(train_args(tiny_data.root, parent / "run", *extra))
    assert rc == 2, err
    assert err.startswith("error: ") and "Fix:" in err and "\n" not in err.strip(), err
    for words in said:
        assert words in err, (words, err)
    assert list(parent.iterdir()) == [], "the run folder was created or written"


def test_neg_just_below_the_catalogue_is_accepted(tiny_data, tmp_path):
    """The bound is exact: K = n_items − 1 negatives exist (all items but the logged one)."""
    rc, err = cli(train_args(tiny_data.root, tmp_path / "run", "--algo", "snqn", "--set", "neg=299", "--steps", "2",
                             "--eval-every", "2", "--threads", "1"))
    assert rc == 0, err


def test_refusal_leaves_an_existing_run_folder_untouched(tiny_data, tmp_path):
    run = tmp_path / "run"
    assert cli(train_args(tiny_data.root, run, "--steps", "2", "--eval-every", "2", "--threads", "1"))[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for extra in (["--set", "nope=1"], ["--algo", "snqn", "--set", "neg=300", "--resume"], ["--steps", "3", "--resume"]):
        rc, err = cli(train_args(tiny_data.root, run, *extra))
        assert rc == 2 and "Fix:" in err, err
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before, extra


def test_prepare_never_replaces_a_folder_it_did_not_write(tmp_path):
    """``prepare --out`` replaces the whole folder: a file or a foreign folder is refused."""
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine too")
    for out in (afile, home):
        rc, err = cli(["prepare", "--out", str(out), "--no-progress"])
        assert rc == 2 and "not a prepared-data folder" in err and "Fix:" in err, err
    assert afile.read_text() == "mine" and (home / "thesis.tex").read_text() == "mine too"


def test_train_never_writes_into_a_prepared_data_folder(tiny_data, tmp_path):
    before = {p.name: p.read_bytes() for p in tiny_data.root.iterdir()}
    rc, err = cli(train_args(tiny_data.root, tiny_data.root))
    assert rc == 2 and "prepared-data folder" in err, err
    assert {p.name: p.read_bytes() for p in tiny_data.root.iterdir()} == before


def test_prepare_reuses_a_folder_only_for_unchanged_input(tmp_path):
    """An edited CSV at the same --out is prepared again, not silently served from before."""
    log = tmp_path / "log.csv"
    rows = "session_id,timestamp,item_id,is_buy\n" + "".join(f"{s},1,5,0\n{s},2,6,1\n" for s in range(6))  # 6: 4/1/1
    log.write_text(rows)
    args = ["prepare", "--source", "events", "--path", str(log), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli(args)[0] == 0
    log.write_text(rows + "9,3,7,0\n")
    assert cli(args)[0] == 0
    from mcrl_kit.data import load_prepared

    assert load_prepared(tmp_path / "out").stats["events"] == 13


# --- real processes: no traceback for any of these ------------------------------------------------
def hostile_invocations(tiny, tmp) -> dict[str, list[str]]:
    (tmp / "notes.txt").write_text("x")
    (tmp / "binary.csv").write_bytes(b"\x00\xff" * 64)
    (tmp / "bad.csv").write_text("session_id,timestamp,item_id,is_buy\nu1,2020-01-01,5,0\nu1,17,6,maybe\n")
    return {
        "unknown-flag": ["train", "--data", str(tiny), "--out", str(tmp / "r"), "--stepz", "3"],
        "no-such-command": ["fly"],
        "unknown-key": ["train", "--data", str(tiny), "--out", str(tmp / "r"), "--set", "nope=1", "--no-progress"],
        "K-too-large": ["train", "--data", str(tiny), "--out", str(tmp / "r"), "--algo", "mcrl", "--set", "neg=5000"],
        "infinite-epochs": ["train", "--data", str(tiny), "--out", str(tmp / "r"), "--epochs", "inf"],
        "data-is-a-file": ["train", "--data", str(tmp / "notes.txt"), "--out", str(tmp / "r")],
        "prepare-binary": ["prepare", "--source", "events", "--path", str(tmp / "binary.csv"), "--out", str(tmp / "p")],
        "prepare-bad-values": ["prepare", "--source", "events", "--path", str(tmp / "bad.csv"), "--out", str(tmp / "p")],
        "prepare-over-a-file": ["prepare", "--out", str(tmp / "notes.txt"), "--no-progress"],
        "prepare-negative-seed": ["prepare", "--seed", "-1", "--out", str(tmp / "p")],
        "prepare-unwritable": ["prepare", "--out", "/proc/mcrl-kit-test/p", "--no-progress", "--sessions", "50"],
        "evaluate-nothing": ["evaluate", "--run", str(tmp / "nothing")],
        "compare-data-folder": ["compare", str(tiny)],
    }


#: run as real processes (the interpreter start-up costs ~3 s each); the others in-process
IN_A_PROCESS = ("unknown-flag", "K-too-large", "infinite-epochs", "prepare-bad-values", "prepare-over-a-file",
                "prepare-unwritable", "evaluate-nothing")


def test_hostile_invocations_never_print_a_traceback(tiny_data, tmp_path):
    cases = hostile_invocations(tiny_data.root, tmp_path)
    for name, args in cases.items():
        if name not in IN_A_PROCESS:
            with contextlib.suppress(SystemExit):  # argparse exits 2 by itself
                rc, err = cli(args)
                assert rc == 2 and err.strip().splitlines()[-1].startswith("error: ") and "Fix:" in err, (name, err)
    procs = {  # all at once: the interpreter start-up dominates
        name: subprocess.Popen([sys.executable, "-m", "mcrl_kit", *cases[name]], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for name in IN_A_PROCESS
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert "Traceback" not in err + out, (name, err)
        assert proc.returncode == 2, (name, proc.returncode, err)
        last = err.strip().splitlines()[-1]  # after any progress bar
        assert last.startswith("error: ") or "usage:" in err, (name, err)
        if last.startswith("error: "):
            assert "Fix:" in last, (name, err)
    assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_stats_prints_the_readme_table_and_refuses_a_non_data_folder(tiny_data, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["stats", str(tiny_data.root), "--markdown"]) == 0
    header, _sep, row = out.getvalue().strip().splitlines()
    assert header.split(" | ")[1:5] == ["sessions", "items", "clicks", "purchases"]
    cells = [c.strip() for c in row.strip("|").split("|")]
    s = tiny_data.stats
    assert cells[1:5] == [f"{s['sessions']:,}", f"{s['items']:,}", f"{s['clicks']:,}", f"{s['purchases']:,}"]
    rc, err = cli(["stats", str(tmp_path)])
    assert rc == 2 and "not a complete prepared-data folder" in err and "Traceback" not in err
