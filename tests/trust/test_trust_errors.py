"""Trust suite, clean errors: every failure is one paragraph — exit 2, no traceback, nothing half-written.

Each hostile case runs the command line (in-process ``mcrl_kit.cli.main`` where it can, a real
``python -m mcrl_kit`` where the process matters: an injected full disk, a closed pipe) and checks
the contract of ``mcrl_kit.errors``: status 2, stderr one ``error: … Fix: …`` paragraph naming
the file or field at fault, no ``Traceback``, the output folder not created (or left byte for
byte as it was) and no temporaries beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

import pytest

from mcrl_kit import faults
from mcrl_kit.cli import BROKEN_PIPE, main

CLEAN = pytest.mark.trust("clean-errors")


# --- helpers ------------------------------------------------------------------------------------
def cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, err.getvalue()


def assert_clean(rc: int, err: str, *named: str, alone: bool = True) -> str:
    """Exit 2 and one ``error: … Fix: …`` paragraph naming each of ``named``; return it.

    ``alone``: stderr holds nothing else (in-process runs); otherwise the paragraph is its last line.
    """
    assert rc == 2, (rc, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    if alone:
        assert len(lines) == 1, f"not one paragraph: {err}"
    last = lines[-1]
    assert last.startswith("error: ") and "Fix:" in last, err
    for words in named:
        assert words in last, (words, err)
    return last


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> list[str]:
    """The kit's temporaries (``.<name>.<host>-<pid>.*.tmp|.old``) in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith((".tmp", ".old")))


def train_args(data, out, *extra) -> list[str]:
    budget = [] if "--steps" in extra else ["--steps", "2"]
    return ["train", "--data", data, "--out", out, "--backbone", "gru", "--hidden", "8", "--eval-every", "2",
            "--device", "cpu", "--threads", "1", "--no-progress", *budget, *extra]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MCRL_FAIL_AT", "MCRL_PAUSE_AT")}
    return {**env, "MCRL_TCMALLOC": "0", **extra}


@pytest.fixture
def data_copy(tiny_data, tmp_path) -> Path:
    """A private copy of the tiny prepared folder, to break."""
    root = tmp_path / "data"
    shutil.copytree(tiny_data.root, root)
    return root


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    rc, err = cli(train_args(tiny_data.root, run))
    assert rc == 0, err
    return run


# --- 1. a damaged prepared-data folder ----------------------------------------------------------
def _edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def _drop_column(path: Path, column: str) -> None:
    import pandas as pd

    pd.read_parquet(path).drop(columns=[column]).to_parquet(path, index=False)


BREAK_DATA = {
    # case: (file broken, how, what the message must say)
    "events-not-parquet": ("events.parquet", lambda p: p.write_bytes(b"not a parquet file"), "not a readable parquet"),
    "events-truncated": ("events.parquet", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                         "not a readable parquet"),
    "events-empty-file": ("events.parquet", lambda p: p.write_bytes(b""), "not a readable parquet"),
    "events-missing-column": ("events.parquet", lambda p: _drop_column(p, "item"), "lacks column(s) item"),
    "sessions-not-parquet": ("sessions.parquet", lambda p: p.write_bytes(b"PAR1garbagePAR1"), "not a readable parquet"),
    "items-missing-column": ("items.parquet", lambda p: _drop_column(p, "raw_id"), "lacks column(s) raw_id"),
    "stats-missing-items": ("stats.json", lambda p: _edit_json(p, lambda d: d.pop("items")), "lacks the key(s) 'items'"),
    "stats-wrong-type": ("stats.json", lambda p: _edit_json(p, lambda d: d.update(sessions="many")), "'sessions'"),
    "stats-a-list": ("stats.json", lambda p: p.write_text("[1, 2]"), "not the statistics object"),
    "stats-not-json": ("stats.json", lambda p: p.write_text("{'items': 3"), "not readable JSON"),
    "stats-wrong-count": ("stats.json", lambda p: _edit_json(p, lambda d: d.update(items=7)), "counts 7 items"),
    "config-not-json": ("config.json", lambda p: p.write_text("{not json"), "not readable JSON"),
    "config-not-utf8": ("config.json", lambda p: p.write_bytes(b"\xff\xfe{"), "not readable JSON"),
    "config-unknown-key": ("config.json", lambda p: _edit_json(p, lambda d: d.update(bogus=1)), "unknown key 'bogus'"),
    "config-wrong-type": ("config.json", lambda p: _edit_json(p, lambda d: d.update(seed="zero")), "DataConfig.seed"),
    "config-bad-value": ("config.json", lambda p: _edit_json(p, lambda d: d.update(state_len=-3)), "state_len"),
    "config-an-array": ("config.json", lambda p: p.write_text("[]"), "not the data config object"),
}


@CLEAN
@pytest.mark.parametrize("case", list(BREAK_DATA))
def test_a_damaged_data_folder_is_one_clean_error_in_stats_and_train(data_copy, tmp_path, case):
    name, damage, said = BREAK_DATA[case]
    damage(data_copy / name)
    before = snapshot(data_copy)
    for args in (["stats", data_copy], train_args(data_copy, tmp_path / "run")):
        rc, err = cli(args)
        last = assert_clean(rc, err, str(data_copy / name), said, "--force")
        assert "prepare" in last.split("Fix:")[1]
    assert not (tmp_path / "run").exists(), "train wrote a run folder for data it cannot read"
    assert snapshot(data_copy) == before, "the damaged folder was changed"


@CLEAN
def test_the_suggested_fix_for_a_damaged_folder_repairs_it(data_copy, tiny_data):
    (data_copy / "events.parquet").write_bytes(b"garbage")
    rc, err = cli(["prepare", "--out", data_copy, "--no-progress"])  # without --force: refused, not reused
    last = assert_clean(rc, err, str(data_copy / "events.parquet"))
    command = last.split("Fix:")[1].split("`")[1]
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "mcrl_kit"] and "--force" in argv, command
    assert cli([*argv[3:], "--no-progress"])[0] == 0
    assert cli(["stats", data_copy])[0] == 0
    assert (data_copy / "events.parquet").read_bytes() == (tiny_data.root / "events.parquet").read_bytes()


# --- 2. malformed run files in compare / bias-table ---------------------------------------------
BREAK_RUN = {
    "metrics-not-json": ("metrics.json", "{broken", ["compare"], "not readable JSON"),
    "metrics-a-list": ("metrics.json", "[1, 2, 3]", ["compare"], "not an object"),
    "metrics-test-a-number": ("metrics.json", '{"test": 5}', ["compare"], "no 'test' scores object"),
    "metrics-val-missing": ("metrics.json", '{"test": {}}', ["compare", "--split", "val"], "no 'val' scores object"),
    "metrics-scores-text": ("metrics.json", '{"test": {"purchase": {"HR@5": "high"}}}', ["compare"],
                            "not an object of numbers"),
    "metrics-params-text": ("metrics.json", '{"test": {}, "params": "lots"}', ["compare"], "params is not a number"),
    "config-not-json": ("config.json", "not json at all", ["compare"], "not readable JSON"),
    "config-unknown-algo": ("config.json", '{"algo": "dqn", "model": {"backbone": "gru"}, "train": {}}', ["compare"],
                            "no known algorithm ('dqn'"),
    "config-no-model": ("config.json", '{"algo": "sqn", "train": {}}', ["compare"], "no model.backbone"),
    "diagnose-not-json": ("diagnose_test.json", "{", ["bias-table"], "not readable JSON"),
    "diagnose-a-list": ("diagnose_test.json", "[0.1]", ["bias-table"], "not an object"),
    "diagnose-text-value": ("diagnose_test.json", '{"mean_bias": "big"}', ["bias-table"], "mean_bias is not a number"),
}


@CLEAN
@pytest.mark.parametrize("case", list(BREAK_RUN))
def test_a_malformed_run_file_is_one_clean_error_in_compare_and_bias_table(finished_run, tmp_path, case):
    name, content, command, said = BREAK_RUN[case]
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / name).write_text(content)
    before = snapshot(run)
    rc, err = cli([command[0], run, *command[1:]])
    assert_clean(rc, err, str(run / name), said)
    assert snapshot(run) == before


# --- 3. a full disk, a read-only --out --------------------------------------------------------------
@CLEAN
def test_a_full_disk_while_training_names_the_checkpoint_and_keeps_the_previous_one(tiny_data, tmp_path):
    """``torch.save`` meets ENOSPC (injected: the temporary is backed by /dev/full) on the 2nd checkpoint."""
    run = tmp_path / "R"
    proc = subprocess.run(
        [sys.executable, "-m", "mcrl_kit", *train_args(tiny_data.root, run, "--eval-every", "1")],
        env=subprocess_env(MCRL_FAIL_AT="atomic:checkpoint.pt@2"), capture_output=True, text=True, timeout=300,
    )
    last = assert_clean(proc.returncode, proc.stderr, f"{run / 'checkpoint.pt'}: could not be written",
                        "no space left on device", "free space", alone=False)
    assert ".tmp" not in last, "the message names the temporary, not the user's file"
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [last], "one error paragraph"
    assert "Traceback" not in proc.stdout
    assert temporaries(run) == [], "temporaries left in the run folder"
    import torch

    kept = torch.load(run / "checkpoint.pt", weights_only=True)  # the step-1 checkpoint, whole
    assert kept["state"]["step"] == 1


@CLEAN
def test_a_full_disk_while_preparing_names_the_file_under_out_and_keeps_the_old_folder(tiny_data, tmp_path, monkeypatch):
    """A plain write (``stats.json``, through ``write_json`` inside the folder being built) meets ENOSPC."""
    out = tmp_path / "data"
    shutil.copytree(tiny_data.root, out)
    before = snapshot(out)
    monkeypatch.setattr(faults, "_FAIL_NAME", "atomic:stats.json")
    monkeypatch.setattr(faults, "_FAIL_NTH", 1)
    monkeypatch.setattr(faults, "_FAIL_COUNT", 0)
    rc, err = cli(["prepare", "--out", out, "--force", "--no-progress"])
    last = assert_clean(rc, err, f"{out / 'stats.json'}: could not be written", "no space left on device")
    assert ".tmp" not in last
    assert snapshot(out) == before, "the previous prepared folder was changed"
    assert temporaries(tmp_path) == []


def _deny_temporaries(monkeypatch) -> None:
    """The temporaries of the user's files are refused as in a read-only folder (the OSError names the
    temporary, as mkstemp's does). The lock's side file (``.<name>.lock.owner``) is let through: its
    handling is the lock's (``mcrl_kit/locks.py``)."""
    real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp

    def denying(real):
        def make(suffix=None, prefix=None, dir=None, **kw):
            if prefix and ".lock" in prefix:
                return real(suffix=suffix, prefix=prefix, dir=dir, **kw)
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir or "/", f"{prefix}x1y2z3{suffix}"))
        return make

    monkeypatch.setattr(tempfile, "mkstemp", denying(real_mkstemp))
    monkeypatch.setattr(tempfile, "mkdtemp", denying(real_mkdtemp))


@CLEAN
def test_a_read_only_out_names_the_users_path_not_the_temporary(tiny_data, tmp_path, monkeypatch):
    _deny_temporaries(monkeypatch)
    out = tmp_path / "prepared"
    rc, err = cli(["prepare", "--out", out, "--sessions", "50", "--no-progress"])
    last = assert_clean(rc, err, f"{out}: could not be written", "permission denied")
    assert ".tmp" not in last and "x1y2z3" not in last, last
    run = tmp_path / "run"
    rc, err = cli(train_args(tiny_data.root, run))
    last = assert_clean(rc, err, str(run), "permission denied")
    assert ".tmp" not in last and "x1y2z3" not in last, last


@CLEAN
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_out(tiny_data, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        rc, err = cli(train_args(tiny_data.root, parent / "run"))
        last = assert_clean(rc, err, str(parent / "run"))
        assert ".tmp" not in last
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


# --- 4. a closed pipe is no error ---------------------------------------------------------------
@CLEAN
def test_a_closed_stdout_ends_quietly_with_141(tiny_data):
    """``python -m mcrl_kit stats DIR | head -0``: no 'error:', no traceback, no 'Exception ignored'."""
    proc = subprocess.Popen([sys.executable, "-m", "mcrl_kit", "stats", str(tiny_data.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=subprocess_env())
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == BROKEN_PIPE == 141, err
    assert err == "", err


@CLEAN
def test_another_os_error_still_names_its_file(monkeypatch, tmp_path):
    """Only a closed stdout is quiet: any other refusal of the file system names its file (and Fix:)."""
    import mcrl_kit.cli as cli_module

    def refuse(_args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "locked.json"))

    monkeypatch.setattr(cli_module, "run_stats", refuse)
    rc, err = cli(["stats", tmp_path])
    assert_clean(rc, err, str(tmp_path / "locked.json"), "Permission denied")


# --- 5. sizes no machine holds ------------------------------------------------------------------
@CLEAN
@pytest.mark.parametrize("extra, field", [
    (["--hidden", str(10**12)], "ModelConfig.hidden"),
    (["--hidden", str(10**7), "--algo", "sqn"], "ModelConfig.hidden"),
    (["--algo", "mcrl", "--set", f"mlp_hidden={10**11}"], "MCRLConfig.mlp_hidden"),
], ids=["hidden-1e12", "hidden-1e7-sqn", "mlp-hidden-1e11"])
def test_an_absurd_model_size_is_refused_before_allocating(tiny_data, tmp_path, extra, field):
    rc, err = cli(train_args(tiny_data.root, tmp_path / "run", *extra))
    assert_clean(rc, err, field, "of memory, more than this machine's")
    assert not (tmp_path / "run").exists()


def _overcommit_always() -> bool:
    """Linux ``vm.overcommit_memory = 1`` (or unknown): a huge allocation succeeds and the kernel kills later."""
    try:
        return Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1"
    except OSError:
        return True


@CLEAN
@pytest.mark.skipif(_overcommit_always(), reason="needs an allocator that refuses what cannot be backed")
def test_an_allocation_the_estimate_lets_through_is_still_a_clean_error(tiny_data, tmp_path, monkeypatch):
    import mcrl_kit.algos as algos

    monkeypatch.setattr(algos, "physical_memory", lambda: None)  # unknown: the estimate lets everything through
    rc, err = cli(train_args(tiny_data.root, tmp_path / "run", "--hidden", str(10**12)))
    assert_clean(rc, err, "ModelConfig.hidden", "could not be allocated")
    assert not (tmp_path / "run").exists()


# --- 6. every count and every float of every config ----------------------------------------------
BAD_SETTINGS = {
    "mcrl-mlp-hidden-negative": (["--algo", "mcrl", "--set", "mlp_hidden=-1"], "MCRLConfig.mlp_hidden"),
    "mcrl-mlp-hidden-zero": (["--algo", "mcrl", "--set", "mlp_hidden=0"], "MCRLConfig.mlp_hidden"),
    "mcrl-warmup-negative": (["--algo", "mcrl", "--set", "warmup_steps=-5"], "MCRLConfig.warmup_steps"),
    "mcrl-neg-zero": (["--algo", "mcrl", "--set", "neg=0"], "MCRLConfig.neg"),
    "sac-switch-negative": (["--algo", "sac", "--set", "switch_step=-1"], "SACConfig.switch_step"),
    "sa2c-switch-negative": (["--algo", "sa2c", "--set", "switch_step=-1"], "SA2CConfig.switch_step"),
    "reward-buy-nan": (["--set", "reward_buy=NaN"], "SupervisedConfig.reward_buy"),
    "reward-click-inf": (["--algo", "sqn", "--set", "reward_click=Infinity"], "SQNConfig.reward_click"),
    "gamma-nan": (["--algo", "snqn", "--set", "gamma=NaN"], "SNQNConfig.gamma"),
    "temperature-nan": (["--algo", "mcrl", "--set", "temperature=NaN"], "MCRLConfig.temperature"),
    "lambda-nan": (["--algo", "mcrl", "--set", "lambda_value=NaN"], "MCRLConfig.lambda_value"),
    "lambda-minus-inf": (["--algo", "mcrl", "--set", "lambda_reward=-Infinity"], "MCRLConfig.lambda_reward"),
    "expectile-nan": (["--algo", "mcrl", "--set", "expectile=NaN"], "MCRLConfig.expectile"),
    "adv-clip-nan": (["--algo", "sa2c", "--set", "adv_clip=NaN"], "SA2CConfig.adv_clip"),
    "lr-after-switch-nan": (["--algo", "sa2c", "--set", "lr_after_switch=NaN"], "SA2CConfig.lr_after_switch"),
    "dropout-nan": (["--dropout", "nan"], "ModelConfig.dropout"),
}


@CLEAN
@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_negative_count_or_non_finite_setting_is_refused_before_any_work(tiny_data, tmp_path, case):
    extra, field = BAD_SETTINGS[case]
    rc, err = cli(train_args(tiny_data.root, tmp_path / "run", *extra))
    assert_clean(rc, err, field)
    assert not (tmp_path / "run").exists()


def _config_families():
    from mcrl_kit.algos import ALGOS
    from mcrl_kit.config import DataConfig, ModelConfig, TrainConfig

    return [DataConfig, ModelConfig, TrainConfig, *{cls.Config for cls in ALGOS.values()}]


@CLEAN
def test_every_float_field_of_every_config_family_refuses_nan_and_inf():
    from mcrl_kit.config import ConfigError, _holds_float, _type_hints

    checked = 0
    for cls in _config_families():
        hints = _type_hints(cls)
        for f in dataclasses.fields(cls):
            if not _holds_float(hints[f.name]):
                continue
            is_tuple = typing.get_origin(hints[f.name]) is tuple
            for bad in (math.nan, math.inf, -math.inf):
                if bad != bad or not f.metadata.get("allow_inf"):
                    value = [0.8, bad, 0.1] if is_tuple else bad
                    with pytest.raises(ConfigError, match=f"{cls.__name__}.{f.name}"):
                        cls.from_dict({f.name: value})
                    checked += 1
    assert checked >= 3 * 15  # gamma, rewards, lambdas, lr, … in every family


@CLEAN
def test_every_count_field_of_every_algorithm_refuses_a_negative_value():
    from mcrl_kit.config import AlgoConfig, ConfigError, _type_hints

    checked = 0
    for cls in _config_families():
        if not issubclass(cls, AlgoConfig):
            continue
        hints = _type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] is int:
                with pytest.raises(ConfigError, match=f"{cls.__name__}.{f.name}"):
                    cls.from_dict({f.name: -5})
                checked += 1
    assert checked >= 6  # neg ×3, switch_step ×2, warmup_steps, mlp_hidden


# --- 7. bench sizes -----------------------------------------------------------------------------
BAD_BENCH = {
    "batch-zero": (["--batch", "0"], "--batch"),
    "batch-negative": (["--batch", "-8"], "--batch"),
    "steps-zero": (["--steps", "0"], "--steps"),
    "warmup-negative": (["--warmup", "-1"], "--warmup"),
    "threads-zero": (["--threads", "0"], "--threads"),
    "items-zero": (["--items", "2000", "0"], "--items"),
    "eval-states-zero": (["--eval-states", "0"], "--eval-states"),
    "eval-batch-zero": (["--eval-batch", "0"], "--eval-batch"),
    "retries-negative": (["--retries", "-1"], "--retries"),
    "effect-seeds-zero": (["--effect-seeds", "0"], "--effect-seeds"),
    "effect-epochs-nan": (["--effect-epochs", "nan"], "--effect-epochs"),
    "max-foreign-negative": (["--max-foreign", "-1"], "--max-foreign"),
    "unknown-scale": (["--scale", "huge"], "--scale"),
}


def bench_main(args: list[str]) -> tuple[int, str]:
    """``python benchmarks/bench.py ARGS`` in this process: (exit status, stderr)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("mcrl_benchmarks_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = module.main([str(a) for a in args])
    return rc, err.getvalue()


@CLEAN
@pytest.mark.parametrize("case", list(BAD_BENCH))
def test_a_bad_bench_size_is_refused_before_any_work(tmp_path, case):
    extra, option = BAD_BENCH[case]
    rc, err = bench_main(["--quick", "--no-peer", "--out", tmp_path / "bench", *extra])
    assert_clean(rc, err, f"bench {option}")
    assert not (tmp_path / "bench").exists()


# --- 8. options the source would ignore ---------------------------------------------------------
LOG = "session_id,timestamp,item_id,is_buy\n" + "".join(f"{s},{t},{s + t},0\n" for s in range(12) for t in range(3))


@pytest.fixture
def log_files(tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(LOG)
    b.write_text(LOG)
    return a, b


BAD_PREPARE = {
    "simulator-with-path": (["--path", "{a}"], "DataConfig.paths", "simulator source reads no file"),
    "simulator-with-column": (["--column", "session_id=user"], "--column", "only read by the events source"),
    "simulator-with-sample-sessions": (["--sample-sessions", "100"], "--sample-sessions", "only read by the yoochoose source"),
    "retailrocket-two-paths": (["--source", "retailrocket", "--path", "{a}", "{b}"], "DataConfig.paths",
                               "2 input file(s)"),
    "retailrocket-with-column": (["--source", "retailrocket", "--path", "{a}", "--column", "item_id=sku"],
                                 "--column", "only read by the events source"),
    "retailrocket-with-scale": (["--source", "retailrocket", "--path", "{a}", "--scale", "small"], "--scale",
                                "only read by the simulator source"),
    "yoochoose-three-paths": (["--source", "yoochoose", "--path", "{a}", "{b}", "{a}"], "DataConfig.paths",
                              "clicks file, then optionally the buys file"),
    "yoochoose-with-column": (["--source", "yoochoose", "--path", "{a}", "--column", "item_id=sku"],
                              "--column", "the yoochoose source would ignore it"),
    "events-two-paths": (["--source", "events", "--path", "{a}", "{b}"], "DataConfig.paths", "one event log"),
    "events-with-sessions": (["--source", "events", "--path", "{a}", "--sessions", "5"], "--sessions",
                             "only read by the simulator source"),
    "events-with-sample-sessions": (["--source", "events", "--path", "{a}", "--sample-sessions", "5"],
                                    "--sample-sessions", "only read by the yoochoose source"),
    "simulator-with-min-item-events": (["--source", "simulator", "--min-item-events", "5"],
                                       "--min-item-events", "the simulator source would ignore it"),
    "yoochoose-with-default-scale": (["--source", "yoochoose", "--path", "{a}", "--scale", "tiny"], "--scale",
                                     "would ignore it"),
}


@CLEAN
@pytest.mark.parametrize("case", list(BAD_PREPARE))
def test_an_option_the_source_would_ignore_is_refused_before_any_work(log_files, tmp_path, case):
    extra, field, said = BAD_PREPARE[case]
    a, b = log_files
    args = [x.format(a=a, b=b) for x in extra]
    rc, err = cli(["prepare", *args, "--out", tmp_path / "out", "--no-progress"])
    assert_clean(rc, err, field, said)
    assert not (tmp_path / "out").exists()


# --- 9. a split with an empty part --------------------------------------------------------------
def _log(n_sessions: int) -> str:
    return "session_id,timestamp,item_id,is_buy\n" + "".join(
        f"{s},{t},{(s + t) % 7},{int(t == 2)}\n" for s in range(n_sessions) for t in range(3)
    )


@CLEAN
@pytest.mark.parametrize("n, empty", [(1, "train and val"), (2, "val"), (5, "val")])
def test_a_log_too_small_to_split_is_refused_by_prepare(tmp_path, n, empty):
    log = tmp_path / "log.csv"
    log.write_text(_log(n))
    parent = tmp_path / "parent"
    parent.mkdir()
    rc, err = cli(["prepare", "--source", "events", "--path", log, "--out", parent / "out", "--no-progress"])
    assert_clean(rc, err, "log.csv", f"of its {n} session(s) leaves {empty} empty", "train ", "val 0",
                 "at least 6 sessions")
    assert list(parent.iterdir()) == [], "prepare wrote something"


@CLEAN
def test_a_too_small_log_over_an_existing_folder_keeps_the_folder(tiny_data, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(tiny_data.root, out)
    before = snapshot(out)
    log = tmp_path / "log.csv"
    log.write_text(_log(3))
    rc, err = cli(["prepare", "--source", "events", "--path", log, "--out", out, "--force", "--no-progress"])
    assert_clean(rc, err, "log.csv", "empty")
    assert snapshot(out) == before
    assert temporaries(tmp_path) == []


def test_the_smallest_log_prepare_accepts_is_one_train_accepts(tmp_path):
    """The bound is exact and the same as train's: 6 sessions split 4/1/1, and train runs on them."""
    log = tmp_path / "log.csv"
    log.write_text(_log(6))
    data = tmp_path / "data"
    rc, err = cli(["prepare", "--source", "events", "--path", log, "--out", data, "--no-progress"])
    assert rc == 0, err
    stats = json.loads((data / "stats.json").read_text())
    assert (stats["train_sessions"], stats["val_sessions"], stats["test_sessions"]) == (4, 1, 1)
    rc, err = cli(train_args(data, tmp_path / "run"))
    assert rc == 0, err
