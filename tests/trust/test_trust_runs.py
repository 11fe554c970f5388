"""Trust: no code runs from a run folder, and no user file is lost.

Security: a checkpoint whose pickle would run code (its ``__reduce__`` writes a marker
file) is refused by every command that reads runs — ``evaluate``, ``diagnose``, the
inspector, ``train --resume`` (as ``checkpoint.pt`` and as the ``best-*.pt`` it names) —
and the marker never appears; every file the kit writes loads with ``weights_only=True``;
the run format is recorded; modes follow the umask.

Nothing lost: ``train --out`` into a folder with a user's files is refused unless
``--overwrite`` (which removes only the kit's files); a finished run is not retrained
over; ``prepare`` never deletes files it did not write; two processes on one run or data
folder never mix (a lock, whose killed holder blocks nobody); a resume or a reload on
re-prepared data is refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from childproc import Child

from mcrl_kit.algos import ALGOS
from mcrl_kit.cli import main
from mcrl_kit.config import DataConfig
from mcrl_kit.data import prepare
from mcrl_kit.errors import KitError
from mcrl_kit.runs import RUN_FORMAT, load_run

security = pytest.mark.trust("security")
nothing_lost = pytest.mark.trust("nothing-lost")


def cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, err.getvalue()


def train_args(data, out, *extra: str, steps: int = 4) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--backbone", "gru", "--hidden", "16", "--steps", str(steps),
            "--eval-every", "2", "--batch-size", "32", "--device", "cpu", "--threads", "1", "--no-progress", *extra]


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory) -> Path:
    """A finished SQN run (its checkpoint, best and model files), copied by each test that tampers with it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    rc, err = cli(train_args(tiny_data.root, out, "--algo", "sqn"))
    assert rc == 0, err
    return out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock*"))
    return dst


# --- security ---------------------------------------------------------------------------------
class Payload:
    """Unpickling this object calls ``open(marker, "w")``: the file appears iff the pickle ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path: Path, marker: Path, like: Path | None = None) -> None:
    """Write at ``path`` a torch file that runs code on a full unpickle; with ``like``, the genuine
    file's contents with the payload tucked inside (so every other check would pass)."""
    obj = torch.load(like, weights_only=True) if like is not None else {}
    obj["payload"] = Payload(marker)
    torch.save(obj, path)


@security
@pytest.mark.parametrize("command", ["evaluate", "diagnose"])
def test_evaluate_and_diagnose_refuse_a_model_that_runs_code(finished, tmp_path, command):
    run, marker = copy_run(finished, tmp_path / "run"), tmp_path / "PWNED"
    plant(run / "model.pt", marker, like=run / "model.pt")
    extra = ["--rollouts", "2", "--no-progress"] if command == "diagnose" else []
    rc, err = cli([command, "--run", str(run), "--device", "cpu", *extra])
    assert rc == 2 and "needs full unpickling" in err and "model.pt" in err and "Traceback" not in err
    assert not marker.exists()


@security
def test_inspector_refuses_a_model_that_runs_code(finished, tmp_path):
    from mcrl_kit.viz.inspector import load_runs

    run, marker = copy_run(finished, tmp_path / "run"), tmp_path / "PWNED"
    plant(run / "model.pt", marker, like=run / "model.pt")
    with pytest.raises(KitError, match="needs full unpickling"):
        load_runs({"SQN": run})
    assert not marker.exists()


@security
@pytest.mark.parametrize("victim", ["checkpoint.pt", "best"])
def test_resume_refuses_a_checkpoint_that_runs_code(finished, tiny_data, tmp_path, victim):
    run, marker = copy_run(finished, tmp_path / "run"), tmp_path / "PWNED"
    (run / "metrics.json").unlink()  # an interrupted run: --resume reads its checkpoint
    name = "checkpoint.pt" if victim == "checkpoint.pt" else next(p.name for p in run.glob("best-*.pt"))
    plant(run / name, marker, like=run / name)
    rc, err = cli([*train_args(tiny_data.root, run, "--algo", "sqn"), "--resume"])
    assert rc == 2 and "needs full unpickling" in err and name in err and "Traceback" not in err
    assert not marker.exists()


@security
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_file_an_algorithm_writes_loads_without_unpickling(tiny_data, tmp_path, algo):
    out = tmp_path / "run"
    rc, err = cli(train_args(tiny_data.root, out, "--algo", algo, steps=2))
    assert rc == 0, err
    pt = sorted(out.glob("*.pt"))
    assert {p.name for p in pt} >= {"model.pt"}
    for path in pt:
        torch.load(path, weights_only=True)  # raises on anything but tensors, numbers and containers
    assert json.loads((out / "config.json").read_text())["format"] == RUN_FORMAT


@security
def test_run_format_old_loads_newer_refused(finished, tiny_data, tmp_path):
    old = copy_run(finished, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    del config["format"], config["data_fingerprint"]  # what runs of format 1 look like
    (old / "config.json").write_text(json.dumps(config))
    run, algo, _ = load_run(old)  # format 1 still loads for evaluation
    assert run.algo == "sqn" and not algo.training
    (old / "metrics.json").unlink()
    rc, err = cli([*train_args(tiny_data.root, old, "--algo", "sqn"), "--resume"])
    assert rc == 2 and "run format 1" in err and "cannot be resumed" in err
    new = copy_run(finished, tmp_path / "new")
    (new / "config.json").write_text(json.dumps({**config, "format": RUN_FORMAT + 1}))
    rc, err = cli(["evaluate", "--run", str(new), "--device", "cpu"])
    assert rc == 2 and f"run format {RUN_FORMAT + 1}" in err and "upgrade mcrl_kit" in err


@security
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_modes_follow_the_umask(tmp_path, umask):
    before = os.umask(umask)
    try:
        data = prepare(DataConfig(source="simulator", scale="tiny", sessions=60, seed=3), out=tmp_path / "data", progress=False)
        rc, err = cli(train_args(data.root, tmp_path / "run", steps=2))
        assert rc == 0, err
    finally:
        os.umask(before)
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o777 & ~umask
    for path in [*(tmp_path / "data").iterdir(), *(tmp_path / "run").glob("*.*")]:
        if not path.name.startswith("."):
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# --- nothing lost -----------------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".lock")}


@pytest.fixture
def users_folder(tmp_path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"my own model")
    (folder / "best-00000100.pt").write_bytes(b"my best")
    (folder / "notes.txt").write_text("last month's notes")
    return folder


@nothing_lost
def test_train_into_a_users_folder_is_refused(tiny_data, users_folder):
    before = snapshot(users_folder)
    rc, err = cli(train_args(tiny_data.root, users_folder))
    assert rc == 2 and "is not empty" in err and "notes.txt" in err and "--overwrite" in err and "--resume" in err
    assert snapshot(users_folder) == before


@nothing_lost
def test_resume_into_a_users_folder_is_refused(tiny_data, users_folder):
    before = snapshot(users_folder)
    rc, err = cli([*train_args(tiny_data.root, users_folder), "--resume"])
    assert rc == 2 and "did not write" in err and "--overwrite" in err
    assert snapshot(users_folder) == before


@nothing_lost
def test_overwrite_removes_only_the_kits_files(tiny_data, users_folder):
    rc, err = cli([*train_args(tiny_data.root, users_folder), "--overwrite"])
    assert rc == 0, err
    assert (users_folder / "notes.txt").read_text() == "last month's notes"
    assert not (users_folder / "best-00000100.pt").exists()  # a kit file name: the manifest's rule
    assert (users_folder / "metrics.json").exists()


@nothing_lost
def test_a_finished_run_is_not_trained_over(finished, tiny_data, tmp_path):
    run = copy_run(finished, tmp_path / "run")
    before = snapshot(run)
    rc, err = cli(train_args(tiny_data.root, run, "--algo", "sqn"))
    assert rc == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert snapshot(run) == before


@nothing_lost
def test_prepare_force_keeps_files_it_did_not_write(tmp_path):
    config = DataConfig(source="simulator", scale="tiny", sessions=60, seed=3)
    data = prepare(config, out=tmp_path / "data", progress=False)
    (data.root / "notes.txt").write_text("mine")
    before = snapshot(data.root)
    rc, err = cli(["prepare", "--scale", "tiny", "--sessions", "60", "--seed", "3", "--out", str(data.root), "--force",
                   "--no-progress"])
    assert rc == 2 and "notes.txt" in err and "did not write" in err
    assert snapshot(data.root) == before
    (data.root / "notes.txt").unlink()
    assert cli(["prepare", "--scale", "tiny", "--sessions", "60", "--seed", "3", "--out", str(data.root), "--force",
                "--no-progress"])[0] == 0


@nothing_lost
def test_two_trainings_on_one_folder_never_mix(tiny_data, tmp_path):
    """The first holds the lock (paused mid-run): the second is refused with its PID; once the
    first is killed (-9) its lock blocks nobody and the run resumes to the end."""
    run = tmp_path / "run"
    first = Child(train_args(tiny_data.root, run, steps=6), pause="train:step@3")
    first.wait_paused()
    rc, err = cli(train_args(tiny_data.root, run, steps=6))
    assert rc == 2 and "is in use" in err and f"process {first.proc.pid}" in err
    rc, err = cli([*train_args(tiny_data.root, run, steps=6), "--resume"])
    assert rc == 2 and "is in use" in err
    first.kill()
    rc, err = cli([*train_args(tiny_data.root, run, steps=6), "--resume"])
    assert rc == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6


@nothing_lost
def test_a_data_folder_prepared_twice_at_once_is_prepared_once(tmp_path):
    """The second ``prepare`` waits for the first (paused half-way, holding the lock) and, once
    the first is killed, prepares the folder itself — never a mix of the two."""
    args = ["prepare", "--scale", "tiny", "--sessions", "80", "--seed", "5", "--out", str(tmp_path / "data"), "--no-progress"]
    first = Child(args, pause="prepare:events")
    first.wait_paused()
    second = Child(args)
    line = second.wait_for("waiting for")  # it found the lock held and waits
    assert f"waiting for process {first.proc.pid}" in line
    time.sleep(1)
    assert second.proc.poll() is None, "the second prepare did not wait for the first"
    first.kill()
    rc, err = second.finish()
    assert rc == 0, err
    fresh = prepare(DataConfig(source="simulator", scale="tiny", sessions=80, seed=5), out=tmp_path / "fresh", progress=False)
    assert prepare(DataConfig(source="simulator", scale="tiny", sessions=80, seed=5), out=tmp_path / "data",
                   progress=False).fingerprint == fresh.fingerprint


@nothing_lost
def test_resume_and_reload_on_reprepared_data_are_refused(tmp_path):
    args = ["prepare", "--scale", "tiny", "--sessions", "80", "--out", str(tmp_path / "data"), "--no-progress"]
    assert cli([*args, "--seed", "1"])[0] == 0
    run = tmp_path / "run"
    child = Child(train_args(tmp_path / "data", run, steps=6), pause="train:checkpoint@1")
    child.wait_paused()
    child.kill()
    finished = tmp_path / "finished"
    assert cli(train_args(tmp_path / "data", finished, steps=2))[0] == 0
    assert cli([*args, "--seed", "2"])[0] == 0  # the folder prepared again, with other sessions
    rc, err = cli([*train_args(tmp_path / "data", run, steps=6), "--resume"])
    assert rc == 2 and "other data" in err and "Traceback" not in err
    rc, err = cli(["evaluate", "--run", str(finished), "--device", "cpu"])
    assert rc == 2 and "other data" in err


@nothing_lost
def test_under_torchrun_an_error_only_rank0_sees_ends_every_rank_cleanly(tiny_data, tmp_path):
    (tmp_path / "out").write_text("a file, not a folder")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logs = tmp_path / "logs"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
         "--log-dir", str(logs), "--redirects", "3", "-m", "mcrl_kit", *train_args(tiny_data.root, tmp_path / "out")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode != 0
    errs = sorted(logs.rglob("stderr.log"))
    assert len(errs) == 2, (proc.stdout, proc.stderr)
    texts = [p.read_text() for p in errs]
    for text in texts:
        assert "Traceback" not in text, text
        assert "exists and is not a folder" in text, text
    last = {t.strip().splitlines()[-1] for t in texts}
    assert len(last) == 1, last  # the same message on both ranks
    assert (tmp_path / "out").read_text() == "a file, not a folder"


# --- clean errors on broken run files ---------------------------------------------------------
clean = pytest.mark.trust("clean-errors")
BROKEN = {
    "truncated": lambda b: b[: len(b) // 2],
    "garbage": lambda b: bytes(range(256)) * 8,
    "empty": lambda b: b"",
}


@clean
@pytest.mark.parametrize("damage", list(BROKEN))
def test_resume_from_a_broken_checkpoint_is_one_clean_error(finished, tiny_data, tmp_path, damage):
    run = copy_run(finished, tmp_path / "run")
    (run / "metrics.json").unlink()
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(BROKEN[damage](ckpt.read_bytes()))
    before = snapshot(run)
    rc, err = cli([*train_args(tiny_data.root, run, "--algo", "sqn"), "--resume"])
    assert rc == 2 and "checkpoint.pt" in err and ("truncated or corrupt" in err) and "Fix:" in err, err
    assert snapshot(run) == before  # nothing rewritten on the refusal


@clean
@pytest.mark.parametrize("damage", list(BROKEN))
def test_evaluate_a_broken_model_is_one_clean_error(finished, tmp_path, damage):
    run = copy_run(finished, tmp_path / "run")
    (run / "model.pt").write_bytes(BROKEN[damage]((run / "model.pt").read_bytes()))
    rc, err = cli(["evaluate", "--run", str(run), "--device", "cpu"])
    assert rc == 2 and "model.pt" in err and "truncated or corrupt" in err and "Traceback" not in err, err


@clean
def test_weights_of_another_model_are_one_clean_error(finished, tiny_data, tmp_path):
    run = copy_run(finished, tmp_path / "run")
    other = tmp_path / "other"
    assert cli(train_args(tiny_data.root, other, "--algo", "supervised", steps=2))[0] == 0
    shutil.copy(other / "model.pt", run / "model.pt")
    rc, err = cli(["evaluate", "--run", str(run), "--device", "cpu"])
    assert rc == 2 and "does not match the run's model" in err, err


@clean
def test_evaluate_on_a_data_folder_says_so(tiny_data):
    rc, err = cli(["evaluate", "--run", str(tiny_data.root), "--device", "cpu"])
    assert rc == 2 and "is a prepared-data folder, not a run folder" in err and "unknown key" not in err, err


@clean
def test_a_malformed_run_config_is_one_clean_error(finished, tmp_path):
    run = copy_run(finished, tmp_path / "run")
    (run / "config.json").write_text("{ not json")
    rc, err = cli(["evaluate", "--run", str(run), "--device", "cpu"])
    assert rc == 2 and "config.json" in err and "not readable JSON" in err, err
