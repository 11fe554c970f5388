"""``kill -9`` at any moment, then ``--resume`` / rerun → exactly the uninterrupted result.

Every interrupted process here is a real ``python -m mcrl_kit`` subprocess killed with
SIGKILL (no ``finally`` runs, buffers are lost). To kill at a precise moment, the child
is started with ``MCRL_PAUSE_AT=<point>[@N]`` (``mcrl_kit/faults.py``): it prints
``MCRL_PAUSED`` and sleeps at that point, the test inspects the disk *while it is paused*
and then kills it. Some kills land at random moments instead (a seeded delay).

After every kill: no file at a final path is truncated or corrupt (every ``*.pt`` loads,
every JSON/CSV parses, a prepared folder is complete or absent). After the resume: the
run folder holds byte-identical ``metrics.json`` and ``history.csv`` to a run that never
stopped, the files of a finished run and no temporaries. ``INTERRUPTION_POINTS`` counts
the points covered (printed at the end of the module).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from childproc import Child

from mcrl_kit.cli import main
from mcrl_kit.config import DataConfig
from mcrl_kit.data import load_prepared, prepare
from mcrl_kit.data.prepare import is_prepared

STEPS, EVAL_EVERY = 60, 20  # checkpoints at 20, 40, 60
REPRODUCIBLE = ("metrics.json", "history.csv", "ranks_test.npz")
POINTS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def report_points(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and POINTS:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(f"test_interrupt: {len(POINTS)} interruption points killed and recovered: {', '.join(POINTS)}")


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def kill_at(args: list[str], point: str) -> None:
    child = Child(args, pause=point)
    child.wait_paused()
    child.kill()
    POINTS.append(point)


# --- runs ----------------------------------------------------------------------------------------
def train_args(data: Path, out: Path, algo: str = "sqn", extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "train", "--data", str(data), "--out", str(out), "--algo", algo, "--backbone", "gru", "--hidden", "32",
        "--steps", str(STEPS), "--batch-size", "32", "--eval-every", str(EVAL_EVERY), "--device", "cpu",
        "--threads", "1", "--no-progress", "--select-min-support", "1", *extra,  # tiny: 33 validation purchases
    ]


def cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, err.getvalue()


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    """Uninterrupted runs (in this process), one per algorithm, built on first use."""
    runs: dict[str, dict[str, bytes]] = {}
    root = tmp_path_factory.mktemp("reference")

    def get(algo: str = "sqn", extra: tuple[str, ...] = ()) -> dict[str, bytes]:
        key = f"{algo}{extra}"
        if key not in runs:
            out = root / key.replace(" ", "_")
            before = torch.get_num_threads()
            rc, err = cli(train_args(tiny_data.root, out, algo, extra))
            torch.set_num_threads(before)
            assert rc == 0, err
            runs[key] = {name: (out / name).read_bytes() for name in REPRODUCIBLE}
        return runs[key]

    return get


def assert_nothing_corrupt(run: Path) -> None:
    """Every file at a final path is complete: what a resumed run or a reader may open."""
    for path in run.iterdir():
        if path.name.startswith("."):
            continue  # a killed write's temporary: never read
        if path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            pd.read_csv(path)


def assert_resumes_exactly(tiny_data, run: Path, want: dict[str, bytes], algo: str = "sqn", extra=()) -> None:
    assert_nothing_corrupt(run)
    rc, err = cli([*train_args(tiny_data.root, run, algo, extra), "--resume"])
    assert rc == 0, err
    assert {name: (run / name).read_bytes() for name in REPRODUCIBLE} == want
    metrics = json.loads((run / "metrics.json").read_text())
    names = sorted(p.name for p in run.iterdir() if not p.name.startswith(".lock"))  # the run's lock file may stay
    want_names = ["checkpoint.pt", "config.json", "history.csv", "metrics.json", "model.pt", "ranks_test.npz", "timing.csv"]
    assert names == sorted([*want_names, f"best-{metrics['best_step']:08d}.pt"]), "stale or temporary files left"


# --- training: killed at each point of the loop and of its writes --------------------------------
TRAIN_POINTS = [
    "train:step@5",  # before the first checkpoint: the resume starts over
    "train:step@30",  # between checkpoints: resume from step 20, redo 21..30
    "train:best@1",  # best-00000020.pt written, its checkpoint not yet
    "train:checkpoint@1",  # checkpoint 20 written, stale best-* not yet removed
    "train:best@2",  # a newer best written while checkpoint 20 names the older one
    "atomic:best-00000020.pt@1",  # inside the first best-weights write, before its rename
    "train:checkpoint@3",  # the final checkpoint written, nothing of the end yet
    "atomic:model.pt@1",  # inside the model.pt write
    "train:model@1",  # model.pt written, metrics.json not yet
    "atomic:history.csv@1",  # inside the history.csv write
    "atomic:metrics.json@1",  # inside the metrics.json write: the very last moment
]


@pytest.mark.parametrize("point", TRAIN_POINTS)
def test_training_killed_at_a_point_resumes_exactly(tiny_data, reference, tmp_path, point):
    want = reference()
    run = tmp_path / "run"
    kill_at(train_args(tiny_data.root, run), point)
    if point.startswith("train:model") or point.startswith("atomic:"):
        assert not (run / "metrics.json").exists(), "metrics.json must be the last file written"
    if point == "train:model@1":  # a killed run is not silently restarted over
        rc, err = cli(train_args(tiny_data.root, run))
        assert rc == 2 and "already holds a run" in err and "--resume" in err
    if point == "train:checkpoint@1":  # nor resumed with other settings, and refusing touches nothing
        # the refusal takes the killed run's lock (and cleans it up): its files are the lock's, not the run's
        before = {p.name: p.read_bytes() for p in run.iterdir() if not p.name.startswith(".lock")}
        rc, err = cli(train_args(tiny_data.root, run, extra=("--lr", "0.01", "--resume")))
        assert rc == 2 and "different configuration" in err and "Fix:" in err
        assert {p.name: p.read_bytes() for p in run.iterdir() if not p.name.startswith(".lock")} == before
    assert_resumes_exactly(tiny_data, run, want)


def test_killed_inside_the_checkpoint_write_never_exposes_a_partial_checkpoint(tiny_data, reference, tmp_path):
    """Paused between writing checkpoint 40 in full and renaming it: the final path still
    holds the complete checkpoint of step 20; a truncated temporary is never loaded."""
    want, run = reference(), tmp_path / "run"
    child = Child(train_args(tiny_data.root, run), pause="atomic:checkpoint.pt@2")
    child.wait_paused()
    temps = [p for p in run.iterdir() if p.name.startswith(".checkpoint.pt.")]
    assert len(temps) == 1 and temps[0].stat().st_size > 0
    on_disk = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert on_disk["state"]["step"] == 20
    child.kill()
    POINTS.append("atomic:checkpoint.pt@2")
    # make the leftover a truncated file, as if the kill had come mid-write
    temps[0].write_bytes(temps[0].read_bytes()[:1000])
    assert_resumes_exactly(tiny_data, run, want)


def test_killed_twice_then_resumed(tiny_data, reference, tmp_path):
    """Killed, resumed in a new process and killed again, then resumed to the end."""
    want, run = reference(), tmp_path / "run"
    kill_at(train_args(tiny_data.root, run), "train:step@25")
    child = Child(train_args(tiny_data.root, run, extra=("--resume",)), pause="train:step@25")  # its 25th step: step 45
    child.wait_paused()
    child.kill()
    POINTS.append("train:step@25 of a resumed run")
    assert_resumes_exactly(tiny_data, run, want)


@pytest.mark.parametrize(
    ("algo", "extra", "point"),
    [("mcrl", (), "train:step@50"), ("sa2c", ("--set", "switch_step=30"), "train:step@45")],
    ids=["mcrl", "sa2c-after-switch"],
)
def test_other_algorithms_resume_exactly(tiny_data, reference, tmp_path, algo, extra, point):
    """Target networks (MCRL) and SA2C's learning-rate switch survive the resume."""
    want, run = reference(algo, extra), tmp_path / "run"
    kill_at(train_args(tiny_data.root, run, algo, extra), point)
    POINTS[-1] = f"{point} ({algo})"
    assert_resumes_exactly(tiny_data, run, want, algo, extra)


@pytest.mark.parametrize("seed", [1, 2])
def test_training_killed_at_a_random_moment_resumes_exactly(tiny_data, reference, tmp_path, seed):
    want, run = reference(), tmp_path / "run"
    child = Child(train_args(tiny_data.root, run))
    while not (run / "config.json").exists() and child.proc.poll() is None:  # training has begun
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    finished = child.proc.poll() is not None
    child.kill()
    POINTS.append(f"random moment #{seed}" + (" (after the end)" if finished else ""))
    assert_resumes_exactly(tiny_data, run, want)


# --- prepare: killed while writing the folder ----------------------------------------------------
def prepare_args(out: Path, seed: int = 0, sessions: int | None = None) -> list[str]:
    extra = ["--sessions", str(sessions)] if sessions else []
    return ["prepare", "--out", str(out), "--seed", str(seed), "--no-progress", *extra]


@pytest.fixture(scope="module")
def prepared_reference(tmp_path_factory):
    """Uninterrupted prepares (in this process), by (seed, sessions)."""
    root, cache = tmp_path_factory.mktemp("prepared"), {}

    def get(seed: int = 0, sessions: int | None = None) -> dict[str, bytes]:
        if (seed, sessions) not in cache:
            out = root / f"{seed}-{sessions}"
            prepare(DataConfig(seed=seed, sessions=sessions), out=out, progress=False)
            cache[seed, sessions] = folder_bytes(out)
        return cache[seed, sessions]

    return get


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def siblings(out: Path) -> list[str]:
    """What lies beside ``out``; a killed prepare's lock files (``.NAME.lock*``, removed by the next one) aside."""
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name and not p.name.startswith(f".{out.name}.lock"))


def rerun_prepare(out: Path, seed: int = 0, sessions: int | None = None) -> None:
    rc, err = cli(prepare_args(out, seed, sessions))
    assert rc == 0, err


def test_prepare_killed_half_way_leaves_no_dataset(prepared_reference, tmp_path):
    out = tmp_path / "cache" / "prepared"
    kill_at(prepare_args(out), "prepare:events")
    assert not out.exists(), "a half-written dataset at the final path"
    assert len(siblings(out)) == 1  # the killed run's temporary folder, ignored by readers
    rerun_prepare(out)
    assert folder_bytes(out) == prepared_reference()
    assert siblings(out) == [], "the stale temporary was not cleaned"


@pytest.mark.parametrize("point", ["atomic_dir:prepared", "atomic_dir_swap:prepared"])
def test_re_prepare_killed_around_the_swap(prepared_reference, tmp_path, point):
    """Replacing an existing dataset (another seed): killed before the swap the old one is
    intact; killed in the middle of it the folder is absent (never half of each)."""
    out = tmp_path / "cache" / "prepared"
    rerun_prepare(out, seed=1)
    old = folder_bytes(out)
    kill_at(prepare_args(out, seed=0), point)
    if point.startswith("atomic_dir:"):
        assert folder_bytes(out) == old and is_prepared(out)
    else:
        assert not out.exists()
    assert len(siblings(out)) >= 1
    rerun_prepare(out, seed=0)
    assert folder_bytes(out) == prepared_reference(seed=0)
    assert load_prepared(out).config.seed == 0
    assert siblings(out) == []


@pytest.mark.parametrize("seed", [1])
def test_prepare_killed_at_a_random_moment(prepared_reference, tmp_path, seed):
    out = tmp_path / "cache" / "prepared"
    child = Child(prepare_args(out, sessions=30_000))
    time.sleep(random.Random(seed).uniform(1.0, 6.0))
    finished = child.proc.poll() is not None
    child.kill()
    POINTS.append(f"prepare at a random moment #{seed}" + (" (after the end)" if finished else ""))
    assert not out.exists() or folder_bytes(out) == prepared_reference(sessions=30_000)
    rerun_prepare(out, sessions=30_000)
    assert folder_bytes(out) == prepared_reference(sessions=30_000)
    assert siblings(out) == []
