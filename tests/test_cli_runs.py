"""``train`` / ``evaluate`` / ``compare`` end to end on tiny runs, and what they write.

- a non-finite loss stops training with one paragraph naming the step and the loss
  part (Python API: :class:`TrainingError`; CLI: exit 2, one ``error:`` line, no traceback);
- ``evaluate`` re-scores a finished run to exactly its ``metrics.json``;
- ``metrics.json``'s shape; ``--epochs`` → ``steps_for``; ``--select-metric`` → the
  best checkpoint is the argmax of that validation column;
- ``compare``: seeds merged into ``mean ± std``, ``--no-merge``, ``--markdown``, ``--split``;
- popularity: counts and ranks against hand-made data, and end to end against a hand
  computation of HR/NDCG;
- CUDA (skipped without it): every trained algorithm with and without ``--amp``.

Every run is a few steps of GRU4Rec on the ``tiny`` simulator (300 items), one thread.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mcrl_kit.algos import build_algo
from mcrl_kit.algos.mcrl import MCRL
from mcrl_kit.cli import main
from mcrl_kit.config import DataConfig, ModelConfig, TrainConfig
from mcrl_kit.data import prepare
from mcrl_kit.data.replay import ReplayBuffer
from mcrl_kit.errors import TrainingError
from mcrl_kit.evaluate import evaluate
from mcrl_kit.report import COLUMNS
from mcrl_kit.storage import read_json
from mcrl_kit.train import RunConfig, score_fn, steps_for, train

KINDS, KS = ("click", "purchase"), (5, 10, 20)


def read_metrics(run: Path) -> dict:
    return read_json(Path(run) / "metrics.json")


STEPS, EVAL_EVERY = 20, 10


@pytest.fixture(autouse=True)
def keep_threads():
    """``--threads 1`` sets torch's global thread count: give the next tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def train_args(data, out, *extra) -> list[str]:
    budget = [] if {"--steps", "--epochs"} & set(map(str, extra)) else ["--steps", STEPS]
    return ["train", "--data", data.root, "--out", out, "--backbone", "gru", *budget, "--eval-every", EVAL_EVERY,
            "--device", "cpu", "--no-progress", "--threads", "1", *extra]


def train_cli(data, out, *extra) -> dict:
    rc, stdout, err = cli(train_args(data, out, *extra))
    assert rc == 0, err
    assert f"run: {out}" in stdout
    return read_metrics(out)


@pytest.fixture(scope="module")
def sup_runs(tiny_data, tmp_path_factory):
    """Supervised GRU4Rec, seeds 0 and 1 (one configuration), trained through the CLI."""
    root = tmp_path_factory.mktemp("sup")
    before = torch.get_num_threads()
    folders = []
    for seed in (0, 1):
        out = root / f"s{seed}"
        train_cli(tiny_data, out, "--seed", seed)
        folders.append(out)
    torch.set_num_threads(before)
    return folders


# --- 1. a non-finite loss ----------------------------------------------------------------------
BAD_STEP = 3


@pytest.fixture
def nan_in_conservative(monkeypatch):
    """MCRL's ``conservative`` part (and so the total) becomes NaN at loss step ``BAD_STEP``."""
    calls = []
    original = MCRL.loss

    def loss(self, batch, step):
        calls.append(step)
        parts = original(self, batch, step)
        if step == BAD_STEP:
            parts["conservative"] = parts["conservative"] * float("nan")
            parts["total"] = parts["total"] + parts["conservative"]
        return parts

    monkeypatch.setattr(MCRL, "loss", loss)
    return calls


def test_nan_loss_stops_training_python_api(tiny_data, tmp_path, nan_in_conservative):
    run = RunConfig(
        data=str(tiny_data.root), model=ModelConfig(backbone="gru"), algo="mcrl",
        train=TrainConfig(steps=STEPS, eval_every=2, device="cpu", progress=False, threads=1),
    )
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(run, out=out, data=tiny_data)
    err = info.value
    assert err.what == f"mcrl at step {BAD_STEP + 1}"  # 1-based in the message
    # the non-finite parts are named with their values; the finite ones are not
    assert "the loss is not finite (" in err.problem
    assert "conservative = nan" in err.problem and "total = nan" in err.problem
    for finite in ("policy", "value", "reward", "transition"):
        assert f"{finite} =" not in err.problem
    assert "--lr" in err.fix
    assert nan_in_conservative == list(range(BAD_STEP + 1))  # it stopped at the bad step, nothing after
    # the checkpoint of the last evaluation before it is kept (for --resume); the run is not complete
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["state"]["step"] == 2
    assert not (out / "metrics.json").exists() and not (out / "model.pt").exists()


def test_nan_loss_cli_exits_2_with_one_line(tiny_data, tmp_path, nan_in_conservative):
    rc, _, err = cli(train_args(tiny_data, tmp_path / "run", "--algo", "mcrl"))
    assert rc == 2
    # one paragraph: no traceback, no warning with a source line (tiny's selection warning is one `warning:` line)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: checkpoint selection")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: mcrl at step {BAD_STEP + 1}: the loss is not finite (")
    assert "conservative = nan" in lines[0] and "total = nan" in lines[0] and "Fix:" in lines[0]
    assert "Traceback" not in err


def test_diverging_lr_cli_process_exits_2(tiny_data, tmp_path):
    """A real divergence (SQN at lr 1e30), in a real ``python -m mcrl_kit`` process."""
    args = train_args(tiny_data, tmp_path / "run", "--algo", "sqn", "--lr", "1e30")
    env = dict(os.environ, MCRL_TCMALLOC="0")
    proc = subprocess.run([sys.executable, "-m", "mcrl_kit", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("warning: checkpoint selection")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.match(r"error: sqn at step \d+: the loss is not finite \(.*total = (nan|inf)\)\. Fix: ", lines[0]), lines[0]
    assert not (tmp_path / "run" / "metrics.json").exists()


# --- 2. evaluate ---------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["test", "val"])
def test_evaluate_rescores_to_metrics_json(sup_runs, split):
    run = sup_runs[0]
    rc, stdout, err = cli(["evaluate", "--run", run, "--split", split, "--device", "cpu"])
    assert rc == 0, err
    written = json.loads((run / f"eval_{split}.json").read_text())
    metrics = read_metrics(run)
    assert written["count"] == metrics["count"][split]
    assert set(written) - {"count"} == set(metrics[split]) == set(KINDS)
    for kind in KINDS:
        assert set(written[kind]) == set(metrics[split][kind])
        for name, value in metrics[split][kind].items():
            assert written[kind][name] == pytest.approx(value, abs=1e-6), (kind, name)
    assert f"{metrics[split]['purchase']['NDCG@10']:.4f}" in stdout


# --- 3. metrics.json ------------------------------------------------------------------------------
def test_metrics_json_shape(sup_runs, tiny_data):
    m = read_metrics(sup_runs[0])
    for split in ("val", "test"):
        assert set(m[split]) == set(KINDS)
        for kind in KINDS:
            assert set(m[split][kind]) == {f"{x}@{k}" for x in ("HR", "NDCG") for k in KS}
            for k in KS:
                hr, ndcg = m[split][kind][f"HR@{k}"], m[split][kind][f"NDCG@{k}"]
                assert 0 <= ndcg <= hr <= 1, (split, kind, k)
            hrs = [m[split][kind][f"HR@{k}"] for k in KS]
            assert hrs == sorted(hrs)  # HR@k grows with k
        # the counts are the split's click / purchase events
        buf = tiny_data.replay(split)
        assert m["count"][split] == {"click": int((~buf.is_buy).sum()), "purchase": int(buf.is_buy.sum())}
    assert isinstance(m["params"], int) and m["params"] > 0
    assert m["steps"] == STEPS and isinstance(m["steps"], int)
    assert m["algo"] == "supervised" and m["backbone"] == "gru"
    # tiny has 33 validation purchases, below the default support of 50: the declared fallback chose
    assert m["best_step"] in (EVAL_EVERY, STEPS) and m["select_metric"] == "click/NDCG@10"
    assert m["selection"] == {"requested": "purchase/NDCG@10", "metric": "click/NDCG@10", "min_support": 50,
                              "support": int((~tiny_data.replay("val").is_buy).sum()), "reason": m["selection"]["reason"]}
    assert "33 validation purchases" in m["selection"]["reason"]
    # params counts the trainable parameters of the model that was trained
    algo = build_algo("supervised", tiny_data.n_items, tiny_data.config.state_len, ModelConfig(backbone="gru"))
    assert m["params"] == sum(p.numel() for p in algo.parameters() if p.requires_grad)


# --- 4. compare -----------------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_compare_merges_seeds_into_mean_and_std(sup_runs):
    rc, stdout, err = cli(["compare", *sup_runs, "--markdown"])
    assert rc == 0, err
    lines = stdout.strip().splitlines()
    header = _cells(lines[0])
    assert header == ["model", "seeds", "params", *COLUMNS]
    assert set(lines[1].replace("|", "")) == {"-"}  # the Markdown separator row
    assert len(lines) == 3  # one row: the two seeds merged
    row = dict(zip(header, _cells(lines[2]), strict=True))
    assert row["model"] == "gru-supervised" and row["seeds"] == "2"
    tests = [read_metrics(r)["test"] for r in sup_runs]
    assert row["params"] == f"{read_metrics(sup_runs[0])['params']:,}"
    for col in COLUMNS:
        kind, name = col.split(" ")
        values = [t[kind][name] for t in tests]
        mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
        assert row[col] == f"{mean:.4f} ± {std:.4f}", col
    # the seeds really differ, so the ± is not a formality
    assert any(tests[0][k] != tests[1][k] for k in KINDS)


def test_compare_no_merge_and_val_split(sup_runs):
    rc, stdout, _ = cli(["compare", *sup_runs, "--no-merge", "--split", "val"])
    assert rc == 0
    lines = stdout.strip().splitlines()
    assert len(lines) == 3  # header + one row per run
    assert "±" not in stdout and "|" not in stdout  # plain text, single runs
    assert lines[0].split()[:3] == ["model", "seeds", "params"]
    for seed, (line, run) in enumerate(zip(lines[1:], sup_runs, strict=True)):
        val = read_metrics(run)["val"]
        cells = line.split()
        assert cells[:4] == ["gru-supervised", "(seed", f"{seed})", "1"]  # the label names the run's seed
        # the plain table keeps COLUMNS' order: the cells after model/seeds/params
        expected = [f"{val[c.split(' ')[0]][c.split(' ')[1]]:.4f}" for c in COLUMNS]
        assert cells[5:] == expected
    # --split val shows validation numbers, not test ones
    rc, test_out, _ = cli(["compare", *sup_runs, "--no-merge"])
    assert test_out != stdout


# --- 5. popularity ----------------------------------------------------------------------------------
def _popularity(n_items: int, **config):
    return build_algo("popularity", n_items, 3, ModelConfig(), config)


def test_popularity_counts_and_ranks_by_training_frequency():
    # one session: item 2 ×3, item 0 ×2 (one of them bought), item 4 ×1; items 1 and 3 never
    items, buys = [2, 0, 2, 4, 0, 2], [0, 0, 0, 0, 1, 0]
    buf = ReplayBuffer.from_events(np.zeros(len(items)), np.array(items), np.array(buys), n_items=5, state_len=3)
    algo = _popularity(5)
    assert algo.param_counts() == {"params": 0, "params_frozen": 0} and not algo.trainable
    algo.fit(buf)
    assert algo.counts.tolist() == [2, 0, 3, 0, 1]
    scores = algo.scores(buf.state[:4].long(), buf.len_state[:4])
    assert scores.shape == (4, 5) and (scores == algo.counts).all()  # the same list for every state
    assert scores[0].topk(3).indices.tolist() == [2, 0, 4]
    # clicks only: the purchase of item 0 no longer counts
    clicks_only = _popularity(5, count_purchases=False)
    clicks_only.fit(buf)
    assert clicks_only.counts.tolist() == [1, 0, 3, 0, 1]


def test_popularity_metrics_by_hand():
    # train: item 3 ×4, item 1 ×3, item 0 ×2, item 2 ×1 → ranks 3, 1, 0, 2 (item 4 never: last)
    train_items = [3, 1, 3, 0, 1, 3, 2, 0, 1, 3]
    train_buf = ReplayBuffer.from_events(np.zeros(10), np.array(train_items), np.zeros(10), n_items=5, state_len=3)
    algo = _popularity(5)
    algo.fit(train_buf)
    # held-out events: clicks on items 1 (rank 1), 2 (rank 3), 4 (rank 4); a purchase of item 3 (rank 0)
    test_buf = ReplayBuffer.from_events(np.zeros(4), np.array([1, 2, 4, 3]), np.array([0, 0, 0, 1]), n_items=5, state_len=3)
    m = evaluate(score_fn(algo, torch.device("cpu")), test_buf, ks=(1, 2, 4))
    assert m["click"]["HR@1"] == 0 and m["click"]["HR@2"] == pytest.approx(1 / 3) and m["click"]["HR@4"] == pytest.approx(2 / 3)
    assert m["click"]["NDCG@4"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / 3)
    assert m["purchase"]["HR@1"] == 1 and m["purchase"]["NDCG@1"] == 1


N_POP_ITEMS = 25
#: the hand-made catalogue: every session holds item i (i + 1) times, so training counts
#: are (i + 1) × train sessions — all distinct, no ties — and item i's rank is 24 − i
POP_SESSION = [i for i in range(N_POP_ITEMS) for _ in range(i + 1)]


@pytest.fixture(scope="module")
def pop_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pop")
    rows = []
    for s in range(10):  # 10 sessions: the 80/10/10 split cuts 8/1/1
        order = np.random.default_rng(s).permutation(POP_SESSION)
        bought = {0: False, N_POP_ITEMS - 1: False}  # one purchase of the most and of the least popular item
        for t, item in enumerate(order):
            buy = item in bought and not bought[item]
            if buy:
                bought[item] = True
            rows.append({"session_id": 100 + s, "timestamp": t, "item_id": f"sku{item}", "is_buy": int(buy)})
    csv = root / "log.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return prepare(DataConfig(source="events", paths=(str(csv),)), out=root / "data", progress=False)


def _pop_expected() -> dict:
    """HR/NDCG@k of popularity on any held-out session, by hand: item i sits at rank 24 − i."""
    events = [(i, i in (0, N_POP_ITEMS - 1) and n == 0) for i in range(N_POP_ITEMS) for n in range(i + 1)]
    out = {}
    for kind, buy in (("click", False), ("purchase", True)):
        ranks = [N_POP_ITEMS - 1 - i for i, b in events if b == buy]
        out[kind] = {}
        for k in KS:
            out[kind][f"HR@{k}"] = sum(r < k for r in ranks) / len(ranks)
            out[kind][f"NDCG@{k}"] = sum(1 / math.log2(r + 2) for r in ranks if r < k) / len(ranks)
    return out


def test_train_popularity_end_to_end_matches_hand_computation(pop_data, tmp_path):
    assert pop_data.n_items == N_POP_ITEMS
    assert (pop_data.sessions["split"].value_counts().to_dict()) == {"train": 8, "val": 1, "test": 1}
    out = tmp_path / "pop"
    m = train_cli(pop_data, out, "--algo", "popularity")
    # what the code reports for a counted (untrained) baseline
    assert m["params"] == 0 and m["params_frozen"] == 0
    assert m["steps"] == 0 and m["best_step"] == 0 and m["backbone"] is None and m["algo"] == "popularity"
    expected = _pop_expected()
    assert expected["purchase"]["HR@5"] == 0.5 and expected["click"]["HR@20"] < 1  # a non-trivial example
    for split in ("val", "test"):
        for kind in KINDS:
            for name, value in expected[kind].items():
                assert m[split][kind][name] == pytest.approx(value, abs=1e-12), (split, kind, name)
    # the saved counts re-score to the same numbers
    rc, _, err = cli(["evaluate", "--run", out, "--split", "test", "--device", "cpu"])
    assert rc == 0, err
    written = json.loads((out / "eval_test.json").read_text())
    assert {k: written[k] for k in KINDS} == m["test"]


def test_train_popularity_on_the_simulator_is_its_counts(tiny_data, tmp_path):
    m = train_cli(tiny_data, tmp_path / "pop", "--algo", "popularity")
    assert m["params"] == 0 and m["steps"] == 0
    # by hand from the prepared split: ties count against the logged item, so the rank of each
    # test item is the number of other items counted at least as often as it in train
    train_ev = tiny_data.split_events("train")
    counts = np.bincount(train_ev["item"].to_numpy(), minlength=tiny_data.n_items)
    test_ev = tiny_data.split_events("test")
    c = counts[test_ev["item"].to_numpy()]
    above = (counts[None, :] > c[:, None]).sum(1)
    tied = (counts[None, :] == c[:, None]).sum(1) - 1
    assert tied.mean() > 1  # the simulator's counts tie a lot: the rule matters here
    rank = above + tied
    buy = test_ev["is_buy"].to_numpy().astype(bool)
    for kind, mask in (("click", ~buy), ("purchase", buy)):
        for k in KS:
            hit = rank[mask] < k
            assert m["test"][kind][f"HR@{k}"] == pytest.approx(hit.mean(), abs=1e-12), (kind, k)
            ndcg = np.where(hit, 1 / np.log2(rank[mask] + 2.0), 0.0).mean()
            assert m["test"][kind][f"NDCG@{k}"] == pytest.approx(ndcg, abs=1e-12), (kind, k)
    assert m["test"]["click"]["HR@20"] > 20 / tiny_data.n_items  # beats a uniformly random list


# --- 6. --epochs and --select-metric -------------------------------------------------------------
def test_epochs_budget_sets_steps(tiny_data, tmp_path):
    rows = len(tiny_data.replay("train"))
    epochs, batch = 0.3, 128
    expected = math.ceil(epochs * rows / batch)
    assert expected == steps_for(TrainConfig(epochs=epochs, batch_size=batch), rows)
    assert steps_for(TrainConfig(epochs=1e-9, batch_size=batch), rows) == 1  # at least one step
    assert steps_for(TrainConfig(steps=7, batch_size=batch), rows) == 7
    m = train_cli(tiny_data, tmp_path / "run", "--epochs", epochs, "--batch-size", batch)
    assert m["steps"] == expected
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert hist["step"].max() == expected


def test_select_metric_picks_the_argmax_of_that_column(tiny_data, tmp_path):
    chosen = {}
    for metric in ("click/HR@5", "purchase/NDCG@10"):
        out = tmp_path / metric.replace("/", "-")
        # SQN seed 3: its validation curves peak at different steps for these two metrics
        m = train_cli(tiny_data, out, "--algo", "sqn", "--seed", 3, "--steps", 20, "--eval-every", 4, "--select-metric", metric,
                      "--select-min-support", 1)  # tiny: 33 validation purchases
        assert m["select_metric"] == metric
        hist = pd.read_csv(out / "history.csv")
        evals = hist.dropna(subset=[f"val/{metric}"])
        assert evals["step"].tolist() == [4, 8, 12, 16, 20]
        column = evals[f"val/{metric}"].to_numpy()
        best = int(evals["step"].iloc[int(np.argmax(column))])  # argmax: the first of equal maxima
        assert m["best_step"] == best
        # the selected weights are the ones evaluated at that step: val metrics equal the history row
        kind, name = metric.split("/")
        assert m["val"][kind][name] == pytest.approx(column.max(), abs=1e-9)
        row = evals.set_index("step").loc[best]
        for k in KINDS:
            for n, v in m["val"][k].items():
                assert v == pytest.approx(row[f"val/{k}/{n}"], abs=1e-9)
        chosen[metric] = (best, hist)
    # selection never changes training: both runs have the same history ...
    a, b = chosen["click/HR@5"][1], chosen["purchase/NDCG@10"][1]
    pd.testing.assert_frame_equal(a, b)
    # ... and here the two metrics peak at different steps, so a run that ignored
    # --select-metric (kept the default purchase/NDCG@10) would pick another step
    assert chosen["click/HR@5"][0] != chosen["purchase/NDCG@10"][0], (
        "the two validation curves now peak at the same step: choose another seed so that the test can tell them apart"
    )


# --- 7. CUDA ----------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "amp"])
@pytest.mark.parametrize("algo", ["supervised", "sqn", "sa2c", "mcrl"])
def test_cuda_training_with_and_without_amp(tiny_data, tmp_path, algo, amp):
    extra = ["--set", "switch_step=2"] if algo == "sa2c" else []  # SA2C's advantage phase inside 5 steps
    args = ["train", "--data", tiny_data.root, "--out", tmp_path / "run", "--backbone", "sasrec", "--algo", algo,
            "--steps", 5, "--eval-every", 5, "--device", "cuda", "--no-progress", *extra, *(["--amp"] if amp else [])]
    rc, _, err = cli(args)
    assert rc == 0, err
    m = read_metrics(tmp_path / "run")
    assert m["steps"] == 5
    for split in ("val", "test"):
        for kind in KINDS:
            for name, value in m[split][kind].items():
                assert math.isfinite(value) and 0 <= value <= 1, (split, kind, name)
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    losses = hist.filter(like="loss/").to_numpy(dtype=float)
    assert losses.size and np.isfinite(losses).all()


# --- recency ---------------------------------------------------------------------------------
def test_recency_ranks_match_its_scores_and_need_no_item_by_item_tensor():
    """Direct ranks equal the ranks of its materialised scores (ties against the logged item), by hand too."""
    from mcrl_kit.evaluate import _logit_ranks

    n = 8
    algo = build_algo("recency", n, 4, ModelConfig(), {})
    algo.counts.copy_(torch.tensor([5.0, 3, 3, 9, 0, 1, 3, 2]))
    pad = n
    states = torch.tensor([[1, 4, 1, pad], [pad, pad, pad, pad], [7, 6, 5, 0], [2, 2, 2, 2]])
    lengths = torch.tensor([3, 1, 4, 4])
    for target in range(n):
        t = torch.full((4,), target)
        direct = algo.ranks(states, lengths, t)
        assert torch.equal(direct, _logit_ranks(algo.scores(states, lengths), t, n)), target
    # by hand, row 0 (state 1, 4, 1: distinct by last occurrence 1, 4): 1 → 0, 4 → 1,
    # then popularity 3 (9) → 2, 0 (5) → 3, items 2 and 6 (3 each) tie → 5 each
    t = torch.tensor([1, 4, 3, 0, 2, 6])
    got = algo.ranks(states[[0] * 6], lengths[[0] * 6], t)
    assert got.tolist() == [0, 1, 2, 3, 5, 5]


def test_recency_trains_and_beats_popularity_where_sessions_repeat(tiny_data, tmp_path):
    pop = train_cli(tiny_data, tmp_path / "pop", "--algo", "popularity")
    rec = train_cli(tiny_data, tmp_path / "rec", "--algo", "recency")
    assert rec["steps"] == 0 and rec["backbone"] is None and rec["algo"] == "recency"
    assert rec["test"]["click"]["HR@10"] > pop["test"]["click"]["HR@10"] + 0.2
    assert rec["test"]["purchase"]["HR@5"] > 0.6  # purchases repeat what the session viewed
