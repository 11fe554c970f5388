"""``python benchmarks/bench.py`` (``make bench``): how fast the kit trains and evaluates, measured here.

What it measures (each configuration in a **fresh subprocess**, so that its peak
resident memory is its own):

- **training** of supervised, SQN, SA2C and MCRL with SASRec and GRU4Rec at 26,702 and
  70,852 items, batch 256: steps/s and transitions/s over ``--steps`` timed steps after
  ``--warmup`` ones, each step exactly the training loop's: ``mcrl_kit.train.train_step``
  (learning rate, loss, finiteness check, ``zero_grad(set_to_none)``, backward, Adam,
  target update) on a batch, plus the loop's loss bookkeeping. Two sources: ``synthetic`` (a pool of batches already
  in memory) and ``data`` (the simulator prepared at ``retailrocket`` scale, loaded
  from disk with its three replay buffers, a batch sampled and gathered every step as
  ``train`` does, then 8,192 validation states ranked — so loading, sampling and the
  evaluation's buffers count in the peak memory);
- **evaluation**: full-ranking states/s (encoder, item head, ranks counted block by block:
  ``mcrl_kit.evaluate.linear_ranks``) at both counts;
- **FLOP efficiency**: the machine's own fp32 matmul peak (GFLOP/s of a 2048³ matmul,
  best of 10) and each training step's achieved GFLOP/s as a fraction of it. The
  step's FLOPs are the algorithm's (``FlopCounterMode`` over one step with the plain
  softmax and argmax, SQN's ``Q(s, a)`` read at the actions only); the fused path
  executes ~25 % more (it recomputes the logits) and is still faster, so the fraction
  is of useful work;
- **ablations** (MCRL / SQN / supervised SASRec at 70,852 items): each optimisation
  switched off alone — ``plain``: whole ``[B, n_items]`` products for the softmax, the
  greedy argmax and SQN's ``Q(s, a)``, as the reference computes them; glibc malloc
  instead of tcmalloc; both (the straightforward step) — and the opt-ins: sparse item
  embedding + SparseAdam, ``torch.compile``;
- **a peer**: RecBole 1.2.1's SASRec on the same prepared data, items, batch,
  threads and sizes, timed the same way (``benchmarks/peer_recbole.py``, run in its own
  environment ``.venv-peer``; ``make bench-peer-env`` creates it).

Every case records the machine's load: ``/proc/loadavg`` before it and the CPU time
other processes used while it ran (``foreign_cpu``: busy jiffies of the whole machine
minus the worker's own, in cores; ``steal_cpu``, the part of it the hypervisor took
from this virtual machine for other guests — on a shared host the usual cause of a slow
case). ``--wait-quiet`` waits before each case until the
machine has been idle for a moment, so that numbers are not taken while others run;
a case during which others still took more than ``--max-foreign`` cores is measured
again (``--retries``) and the least disturbed attempt kept.

Output: a table on stdout, ``build/bench/bench.json`` (everything, with the machine
description) and ``build/bench/bench.csv`` (one row per case); the tables are printed
and, with ``--readme``, written into README.md between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` by ``tools/bench_readme.py``.
``--quick`` (small catalogues, a few steps, one worker process) finishes in well under a
minute: the smoke test runs it.

The allocator: glibc's malloc returns every freed buffer above 32 MB to the kernel, so
each step's fresh item-sized tensors page-fault all over again (at 70,852 items the
plain step spends a third of its time there); tcmalloc keeps them. Every worker is
started with tcmalloc preloaded when it is installed (Debian: ``libtcmalloc-minimal4``;
``MCRL_TCMALLOC=/path/lib.so`` names another, ``MCRL_TCMALLOC=0`` turns it off), except
the ``glibc`` variants; ``make bench`` preloads it into this process too.

Only the kit's public API is used: the step is ``mcrl_kit.train.train_step``, the
optimiser ``make_optimizer``, the batches ``sample_batch``, the evaluation
``evaluate_algo``. ``--worker`` is the protocol between this script and its workers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mcrl_kit.storage import atomic_path, write_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench_readme  # noqa: E402  (tools/bench_readme.py: the README tables)

TRAIN_ALGOS = ("supervised", "sqn", "sa2c", "mcrl")
BACKBONES = ("sasrec", "gru")
ITEMS = (26_702, 70_852)
#: time SA2C's own phase (advantage-weighted CE), not its SNQN warm-up
ALGO_PARAMS: dict[str, dict] = {"sa2c": {"switch_step": 0}}
#: what each variant switches relative to the default (fused on, dense Adam, tcmalloc when present)
VARIANTS: dict[str, dict] = {
    "default": {},
    # whole [B, n_items] products everywhere (CE, greedy argmax, SQN's Q(s, a)): as the reference computes
    "plain": {"fused": False},
    "glibc": {"tcmalloc": False},
    "plain+glibc": {"fused": False, "tcmalloc": False},
    "sparse-emb": {"sparse": True},
    "compile": {"compile": True},
}
MARK = "BENCH_RESULT "
TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
    "/usr/lib/libtcmalloc_minimal.so.4",
    "/usr/local/lib/libtcmalloc_minimal.so.4",
)


# --- the allocator ----------------------------------------------------------------------
def tcmalloc_path() -> str | None:
    """tcmalloc's shared library if installed (Debian: ``libtcmalloc-minimal4``), else None.

    ``MCRL_TCMALLOC=/path/to/lib.so`` names another one; ``MCRL_TCMALLOC=0`` turns it off.
    """
    choice = os.environ.get("MCRL_TCMALLOC", "")
    if choice == "0":
        return None
    if choice:
        return choice if os.path.exists(choice) else None
    return next((p for p in TCMALLOC_CANDIDATES if os.path.exists(p)), None)


def tcmalloc_loaded() -> bool:
    try:
        return "tcmalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def _worker_env(tcmalloc: bool) -> dict[str, str]:
    env = dict(os.environ)
    kept = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "tcmalloc" not in p]
    path = tcmalloc_path() if tcmalloc else None
    if path:
        kept.insert(0, path)
    if kept:
        env["LD_PRELOAD"] = ":".join(kept)
    else:
        env.pop("LD_PRELOAD", None)
    env["MCRL_TCMALLOC"] = env.get("MCRL_TCMALLOC", "") if tcmalloc else "0"
    return env


# --- machine load -----------------------------------------------------------------------
def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return float("nan")


def _cpu_seconds() -> tuple[float, float]:
    """(busy, steal): CPU seconds the whole machine has been busy (all cores, steal included)
    and those the hypervisor took from this virtual machine, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    except (OSError, IndexError, ValueError):
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def _busy_seconds() -> float:
    return _cpu_seconds()[0]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_quiet(limit_s: float, cores: float = 0.15, probe_s: float = 2.0) -> float:
    """Wait (at most ``limit_s``) until others use < ``cores`` CPUs over ``probe_s``; return their use."""
    deadline = time.monotonic() + limit_s
    while True:
        b0 = _busy_seconds()
        time.sleep(probe_s)
        used = (_busy_seconds() - b0) / probe_s
        if used < cores or time.monotonic() > deadline:
            return used


# --- the worker: one configuration, measured in its own process ---------------------------
def synthetic_buffer(n_items: int, sessions: int, seed: int = 0):
    import numpy as np

    from mcrl_kit.data.replay import ReplayBuffer

    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 12, sessions)  # mean 7, as the RetailRocket sessions
    session = np.repeat(np.arange(sessions), lengths)
    items = rng.integers(0, n_items, len(session))
    buys = rng.random(len(session)) < 0.05
    return ReplayBuffer.from_events(session, items, buys, n_items=n_items, state_len=10)


def _prepared(scale: str):
    from mcrl_kit.config import DataConfig
    from mcrl_kit.data import prepare

    return prepare(DataConfig(source="simulator", scale=scale, seed=0), progress=False)


def _train_case(case: dict) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mcrl_kit.algos import build_algo
    from mcrl_kit.config import ModelConfig, TrainConfig
    from mcrl_kit.fused import use_fused
    from mcrl_kit.train import evaluate_algo, make_optimizer, sample_batch, train_step

    device = torch.device("cpu")
    rss_start = _peak_rss()
    t0 = time.perf_counter()
    if case["source"] == "data":
        data = _prepared(case["scale"])
        train_buf, val_buf = data.replay("train"), data.replay("val")
        data.replay("test")  # train() builds all three
        n_items = data.n_items
    else:
        n_items = case["items"]
        train_buf = synthetic_buffer(n_items, sessions=4096)
    load_s = time.perf_counter() - t0

    torch.manual_seed(0)
    model = ModelConfig(backbone=case["backbone"], sparse_embedding=case["sparse"])
    algo = build_algo(case["algo"], n_items, 10, model, ALGO_PARAMS.get(case["algo"], {}), seed=0).to(device)
    algo.train()
    optimizer = make_optimizer(algo, 0.005, device)
    loss_fn = torch.compile(algo.loss) if case["compile"] else algo.loss
    acfg, batch_size = algo.config, case["batch"]
    gen = torch.Generator().manual_seed(0)

    def draw():
        return train_buf.batch(sample_batch(len(train_buf), batch_size, gen), acfg.reward_click, acfg.reward_buy)

    pool = [draw() for _ in range(8)] if case["source"] == "synthetic" else None
    sums: dict = {}

    def step(i: int, fn) -> None:
        # the body of train's loop (the one step it runs, and its loss sums), minus logging and evaluation
        batch = pool[i % len(pool)] if pool is not None else draw()
        parts, _ = train_step(algo, fn, optimizer, batch, i, 0.005, device=device, name=case["algo"])
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()

    times = []
    with use_fused(case["fused"]):
        for i in range(case["warmup"] + case["steps"]):
            s = time.perf_counter()
            step(i, loss_fn)
            times.append(time.perf_counter() - s)
    warm, timed = times[: case["warmup"]], times[case["warmup"] :]
    seconds = sum(timed)
    out = {
        "items": n_items,
        "load_s": round(load_s, 2),
        "first_step_s": round(warm[0] if warm else timed[0], 3),
        "steps_per_s": len(timed) / seconds,
        "transitions_per_s": len(timed) * batch_size / seconds,
        "step_ms_median": statistics.median(timed) * 1e3,
        "rows": len(train_buf),
    }
    # FLOPs of one step: the algorithm's (plain softmax and argmax, Q(s, a) read at the
    # actions only) and what the chosen path executes
    for key, fused, gathered in (("gflop_step", False, True), ("gflop_exec", case["fused"], case["fused"])):
        with use_fused(fused, gathered_q=gathered), FlopCounterMode(display=False) as counter:
            step(case["warmup"] + case["steps"], algo.loss)
        out[key] = counter.get_total_flops() / 1e9
    if case["source"] == "data":
        # the evaluation's buffers belong to a training run's peak memory too
        n_eval = min(8192, len(val_buf))
        sub = val_buf.subset(torch.arange(len(val_buf)) < n_eval)
        t = time.perf_counter()
        evaluate_algo(algo, sub, TrainConfig(eval_batch_size=case.get("eval_batch", 1024)), device)
        out["eval_states_per_s"] = n_eval / (time.perf_counter() - t)
    out["rss_start_mb"] = rss_start
    return out


def _eval_case(case: dict) -> dict:
    import torch

    from mcrl_kit.algos import build_algo
    from mcrl_kit.config import ModelConfig, TrainConfig
    from mcrl_kit.train import evaluate_algo

    device = torch.device("cpu")
    n_items = case["items"]
    buf = synthetic_buffer(n_items, sessions=case["states"] // 7 + 1)
    buf = buf.subset(torch.arange(len(buf)) < case["states"])
    torch.manual_seed(0)
    algo = build_algo(case["algo"], n_items, 10, ModelConfig(backbone=case["backbone"]), ALGO_PARAMS.get(case["algo"], {}))
    cfg = TrainConfig(eval_batch_size=case["eval_batch"])
    evaluate_algo(algo, buf.subset(torch.arange(len(buf)) < case["eval_batch"]), cfg, device)  # warm-up
    # the median of a few passes: one pass is a few seconds, and a host hiccup would be the figure
    rates = []
    for _ in range(case.get("repeats", 3)):
        t = time.perf_counter()
        evaluate_algo(algo, buf, cfg, device)
        rates.append(len(buf) / (time.perf_counter() - t))
    return {"states": len(buf), "states_per_s": statistics.median(rates), "states_per_s_all": [round(r) for r in rates]}


def _peak_rss() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(cases: list[dict]) -> None:
    """Run ``cases`` in this process, printing one ``BENCH_RESULT {json}`` line each."""
    import torch

    for case in cases:
        torch.set_num_threads(case["threads"])
        run = _train_case if case["kind"] == "train" else _eval_case
        result = run(case)
        result.update(peak_rss_mb=_peak_rss(), tcmalloc=tcmalloc_loaded(), threads=torch.get_num_threads())
        print(MARK + json.dumps({**case, **result}), flush=True)


# --- the orchestrator -------------------------------------------------------------------
def matmul_peak(threads: int, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of the best of ``repeats`` fp32 ``n × n @ n × n`` products on ``threads`` threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best / 1e9
    finally:
        torch.set_num_threads(before)


def plan(args: argparse.Namespace) -> list[dict]:
    """Every case of this run, in order."""
    base = {"batch": args.batch, "threads": args.threads, "steps": args.steps, "warmup": args.warmup}
    settings = {"fused": True, "sparse": False, "tcmalloc": True, "compile": False}
    items = args.items or ((2_000,) if args.quick else ITEMS)
    algos, backbones = args.algos or TRAIN_ALGOS, args.backbones or BACKBONES
    scale = args.scale or ("tiny" if args.quick else "retailrocket")
    cases = []

    def add(kind: str, variant: str = "default", **kw) -> None:
        cases.append({"kind": kind, "variant": variant, **base, **settings, **VARIANTS[variant], **kw})

    for n in items:
        for backbone in backbones:
            for algo in algos:
                add("train", algo=algo, backbone=backbone, items=n, source="synthetic")
    if not args.no_data:
        for backbone in backbones[:1] if args.quick else backbones:
            for algo in algos:
                add("train", algo=algo, backbone=backbone, items=None, source="data", scale=scale)
    for n in items:
        for backbone in backbones:
            add("eval", algo="supervised", backbone=backbone, items=n, states=args.eval_states, eval_batch=args.eval_batch)
    if not args.no_ablation:
        n = max(items)
        for algo in [a for a in (("mcrl",) if args.quick else ("mcrl", "sqn", "supervised")) if a in algos]:
            for variant in args.variants or VARIANTS:
                if variant != "default" and (variant != "compile" or not args.quick):
                    add("train", variant, algo=algo, backbone="sasrec", items=n, source="synthetic")
    return cases


def _run_group(group: list[dict], args: argparse.Namespace) -> list[dict]:
    """One fresh worker process over ``group``; its results with the machine's load while it ran."""
    waited = wait_quiet(args.wait_quiet) if args.wait_quiet else None
    (busy0, steal0), load, own0, t0 = _cpu_seconds(), loadavg(), _children_cpu(), time.perf_counter()
    env = _worker_env(group[0]["tcmalloc"])
    proc = subprocess.run(
        [sys.executable, str(HERE / "bench.py"), "--worker", json.dumps(group)],
        env=env, capture_output=True, text=True, check=False,
    )
    wall, (busy1, steal1) = time.perf_counter() - t0, _cpu_seconds()
    foreign = max(0.0, (busy1 - busy0) - (_children_cpu() - own0)) / wall
    steal = max(0.0, steal1 - steal0) / wall  # part of `foreign`: a busy host, not this machine
    lines = [json.loads(line[len(MARK) :]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or len(lines) != len(group):
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"bench worker failed on {group[len(lines)] if len(lines) < len(group) else group}")
    for r in lines:
        r.update(loadavg_before=load, foreign_cpu=round(foreign, 3), steal_cpu=round(steal, 3), quiet_probe=waited)
    return lines


def run_cases(cases: list[dict], args: argparse.Namespace) -> list[dict]:
    """Each case in a fresh worker (``--quick``: one worker for all); collect their results.

    A case during which others took more than ``--max-foreign`` cores (other processes
    or, on a shared host, the hypervisor) is run again, up to ``--retries`` times, and
    the least disturbed attempt is kept (its ``attempts`` and every attempt's
    ``foreign_cpu`` are recorded).
    """
    if args.quick:  # one worker per allocator setting (the preload is fixed at process start)
        groups = [g for g in ([c for c in cases if c["tcmalloc"]], [c for c in cases if not c["tcmalloc"]]) if g]
    else:
        groups = [[c] for c in cases]
    results = []
    for i, group in enumerate(groups, 1):
        attempts = [_run_group(group, args)]
        while attempts[-1][0]["foreign_cpu"] > args.max_foreign and len(attempts) <= args.retries:
            print(f"[{i}/{len(groups)}] others took {attempts[-1][0]['foreign_cpu']:.2f} cores "
                  f"(steal {attempts[-1][0]['steal_cpu']:.2f}) > --max-foreign {args.max_foreign}: measuring again", flush=True)
            attempts.append(_run_group(group, args))
        kept = min(attempts, key=lambda rs: rs[0]["foreign_cpu"])
        for r in kept:
            r.update(attempts=len(attempts), foreign_cpu_attempts=[a[0]["foreign_cpu"] for a in attempts])
            results.append(r)
            print(_progress_line(r, i, len(groups)), flush=True)
    return results


def _progress_line(r: dict, i: int, n: int) -> str:
    what = f"[{i}/{n}] {r['kind']:5} {r['algo']:10} {r['backbone']:6} {r.get('items') or '':>6} {r.get('source', ''):9} {r['variant']:14}"
    if r["kind"] == "train":
        return f"{what} {r['steps_per_s']:7.2f} steps/s {r['transitions_per_s']:8.0f} tr/s  rss {r['peak_rss_mb']:6.0f} MB  load {r['loadavg_before']:.2f}  others {_disturbance(r)}"
    return f"{what} {r['states_per_s']:8.0f} states/s  load {r['loadavg_before']:.2f}  others {_disturbance(r)}"


def _disturbance(r: dict) -> str:
    """`others 0.02` — the cores others took during the kept attempt, and how many attempts it took."""
    return f"{r.get('foreign_cpu', 0):.2f}" + (f" ({r['attempts']} tries)" if r.get("attempts", 1) > 1 else "")


def run_peer(args: argparse.Namespace, out: Path) -> dict | None:
    """RecBole's SASRec on the same prepared data, in ``.venv-peer``; None when that env is absent."""
    python = Path(args.peer_python) if args.peer_python else ROOT / ".venv-peer" / "bin" / "python"
    script = HERE / "peer_recbole.py"
    if not python.exists():
        print(f"peer: {python} not found — create it with `make bench-peer-env` (or bash benchmarks/make_peer_env.sh), then rerun")
        return None
    data = _prepared(args.scale or ("tiny" if args.quick else "retailrocket"))
    atomic = write_recbole_atomic(data, out / "recbole")
    cmd = [
        str(python), str(script), "--data", str(atomic), "--batch", str(args.batch), "--threads", str(args.threads),
        "--steps", str(args.steps), "--warmup", str(args.warmup),
    ]
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    load = loadavg()
    env = _worker_env(tcmalloc=True)  # the same allocator as ours: the comparison is of the code
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [json.loads(line[len(MARK) :]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        print("peer: RecBole run failed (stderr above); continuing without it")
        return None
    result = {**lines[0], "loadavg_before": load, "command": " ".join(cmd)}
    print(f"peer  RecBole SASRec {result['items']:>6} items {result['steps_per_s']:7.2f} steps/s {result['transitions_per_s']:8.0f} tr/s")
    return result


def write_recbole_atomic(data, folder: Path) -> Path:
    """The prepared data as RecBole atomic files in ``folder/<name>/``.

    ``<name>.inter``: the events (session, item, time). ``<name>.item``: every item of
    the catalogue — RecBole builds its vocabulary from the files, and without this one
    it would hold only the items that occur in events (68,255 of the 70,852 at
    ``retailrocket`` scale), a narrower softmax than the kit's.
    """
    name = "mcrl_" + data.root.name.replace("-", "_")
    path = folder / name / f"{name}.inter"
    items = path.with_suffix(".item")
    if not items.exists():
        write_text(items, "item_id:token\n" + "".join(f"{i}\n" for i in range(data.n_items)))
    if not path.exists():
        ev = data.events
        # the time order inside a session is the row order (sorted by session, time); a
        # per-session rank keeps RecBole's stable time sort exactly that order
        frame = ev[["session", "item"]].assign(t=ev.groupby("session").cumcount())
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            f.write("session_id:token\titem_id:token\ttimestamp:float\n")
            frame.to_csv(f, sep="\t", header=False, index=False)
    return path.parent


# --- summary, files (the README tables: tools/bench_readme.py) ------------------------------
def summarise(results: list[dict], peak: float, peer: dict | None) -> dict:
    for r in results:
        if r["kind"] == "train":
            r["gflops_achieved"] = r["gflop_step"] * r["steps_per_s"]
            r["peak_fraction"] = r["gflops_achieved"] / peak
    default = [r for r in results if r["kind"] == "train" and r["variant"] == "default"]

    def find(algo: str, backbone: str, source: str, items) -> dict | None:
        return next(
            (r for r in default if (r["algo"], r["backbone"], r["source"]) == (algo, backbone, source)
             and (items is None or r["items"] == items)), None,
        )

    for r in default:
        sqn = find("sqn", r["backbone"], r["source"], r["items"])
        if sqn is not None:
            r["vs_sqn"] = r["transitions_per_s"] / sqn["transitions_per_s"]
    summary = {"matmul_peak_gflops": peak}
    if peer is not None:
        ours = find("supervised", "sasrec", "data", None)
        if ours is not None:
            summary["peer_ratio"] = ours["transitions_per_s"] / peer["transitions_per_s"]
            summary["peer_ours_transitions_per_s"] = ours["transitions_per_s"]
    return summary


def write_outputs(out: Path, meta: dict, results: list[dict], peer: dict | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps({**meta, "results": results, "peer": peer}, indent=2))
    rows = [*results, *([{"kind": "peer", **peer}] if peer else [])]
    columns = sorted({k for r in rows for k in r})
    first = ["kind", "variant", "algo", "backbone", "items", "source", "steps_per_s", "transitions_per_s", "states_per_s",
             "peak_rss_mb", "gflops_achieved", "peak_fraction", "vs_sqn", "loadavg_before", "foreign_cpu"]
    columns = [c for c in first if c in columns] + [c for c in columns if c not in first]
    with open(out / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in r.items()})


def bench(args: argparse.Namespace) -> dict:
    import torch

    from mcrl_kit import paths

    out = Path(args.out) if args.out else paths.build_dir() / "bench"
    out.mkdir(parents=True, exist_ok=True)
    args.threads = args.threads or torch.get_num_threads()
    report: dict = {}
    if not args.sparse_effect_only:
        report = speed(args, out)
    if args.sparse_effect or args.sparse_effect_only:
        rows = sparse_effect(args)
        (out / "sparse_effect.json").write_text(json.dumps({"scale": args.effect_scale, "epochs": args.effect_epochs, "rows": rows}, indent=2))
        report["sparse_effect"] = rows
    body = bench_readme.readme_body(out)
    print()
    print(body)
    if args.readme:
        command = "python benchmarks/bench.py --quick" if args.quick else "make bench"
        bench_readme.update_readme(paths.home() / "README.md", body, command)
        print(f"README.md: section between {bench_readme.README_START} and {bench_readme.README_END} updated")
    print(f"\nbench: results in {out}/")
    return report


def speed(args: argparse.Namespace, out: Path) -> dict:
    """The throughput, memory, FLOP and peer measurements; writes ``bench.json`` and ``bench.csv``."""
    import torch

    start_load = loadavg()
    print(f"bench: allocator {'tcmalloc' if tcmalloc_loaded() else 'malloc'}; 1-min loadavg {start_load:.2f} at start"
          + ("  (above 0.7: numbers may be disturbed)" if start_load > 0.7 else ""))
    cases = plan(args)
    if not args.no_data or not args.no_peer:
        _prepared(args.scale or ("tiny" if args.quick else "retailrocket"))  # once, before any timing
    peak = matmul_peak(args.threads, n=512 if args.quick else 2048)
    print(f"bench: fp32 matmul peak {peak:.1f} GFLOP/s on {args.threads} threads; {len(cases)} cases")
    results = run_cases(cases, args)
    peer = None if args.no_peer else run_peer(args, out)
    summary = summarise(results, peak, peer)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs ({_cpu_model()})",
        "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
        "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "quick": args.quick,
        "tcmalloc": tcmalloc_path() is not None,
        # this process's own allocator: tcmalloc when preloaded (`make bench`); the workers' is per case
        "allocator": "tcmalloc" if tcmalloc_loaded() else "malloc",
        "loadavg_start": start_load,
        "loadavg_max": max([r["loadavg_before"] for r in results] + [start_load]),
        "loadavg_end": loadavg(),
        "foreign_cpu_max": max((r["foreign_cpu"] for r in results), default=0.0),
        "steal_cpu_max": max((r.get("steal_cpu", 0.0) for r in results), default=0.0),
        "summary": summary,
    }
    write_outputs(out, meta, results, peer)
    return {**meta, "results": results, "peer": peer}


def sparse_effect(args: argparse.Namespace) -> list[dict]:
    """What ``ModelConfig.sparse_embedding`` (SparseAdam on the item embedding) does to the metrics.

    Trains supervised and MCRL SASRec on the simulator's ``small`` scale (3,000 items)
    with dense and sparse embedding updates, for ``--effect-seeds`` seeds, and reports
    the test metrics and the training time of each. Lazy Adam is another optimiser, so
    only a comparison like this one can say whether it may be switched on.
    """
    import torch

    from mcrl_kit.config import ModelConfig, TrainConfig
    from mcrl_kit.train import RunConfig, train

    data = _prepared(args.effect_scale)
    rows = []
    for algo in ("supervised", "mcrl"):
        for seed in range(args.effect_seeds):
            for sparse in (False, True):
                run = RunConfig(
                    data=str(data.root), model=ModelConfig(backbone="sasrec", sparse_embedding=sparse), algo=algo,
                    train=TrainConfig(epochs=args.effect_epochs, seed=seed, eval_every=500, progress=False, device="cpu",
                                      threads=args.threads),
                )
                t = time.perf_counter()
                result = train(run, data=data)
                test = result.metrics["test"]
                rows.append({
                    "algo": algo, "seed": seed, "sparse_embedding": sparse, "seconds": round(time.perf_counter() - t, 1),
                    "steps": result.metrics["steps"], "best_step": result.metrics["best_step"],
                    **{f"{kind}/{m}": test[kind][m] for kind in ("purchase", "click") for m in ("HR@10", "NDCG@10")},
                })
                print(f"sparse-effect {algo:10} seed {seed} sparse={sparse!s:5} "
                      f"purchase NDCG@10 {rows[-1]['purchase/NDCG@10']:.4f} click NDCG@10 {rows[-1]['click/NDCG@10']:.4f} "
                      f"({rows[-1]['seconds']} s)", flush=True)
    torch.set_num_threads(args.threads)
    return rows


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small catalogues, few steps, one worker: < 1 min (the smoke test)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per case (default 30; quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; quick 1)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    p.add_argument("--items", type=int, nargs="+", default=None, help="catalogue sizes (default 26702 70852)")
    p.add_argument("--algos", nargs="+", default=None, choices=TRAIN_ALGOS)
    p.add_argument("--backbones", nargs="+", default=None, choices=BACKBONES)
    p.add_argument("--scale", default=None, help="simulator scale of the data cases (default retailrocket; quick tiny)")
    p.add_argument("--eval-states", type=int, default=None, help="states ranked per evaluation case (default 8192)")
    p.add_argument("--eval-batch", type=int, default=1024)
    p.add_argument("--no-data", action="store_true", help="skip the prepared-data cases")
    p.add_argument("--no-ablation", action="store_true", help="skip the ablations")
    p.add_argument("--variants", nargs="+", default=None, choices=[v for v in VARIANTS if v != "default"],
                   help="only these ablation variants (default: all)")
    p.add_argument("--no-peer", action="store_true", help="skip RecBole")
    p.add_argument("--peer-python", default=None, help="python of the peer env (default .venv-peer/bin/python)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each case wait up to S seconds for other processes to go idle")
    p.add_argument("--max-foreign", type=float, default=0.15, metavar="CORES",
                   help="rerun a case during which others (processes, the hypervisor's steal) took more CPU than this")
    p.add_argument("--retries", type=int, default=None, help="reruns of a disturbed case (default 2; quick 0)")
    p.add_argument("--readme", action="store_true", help="write the tables into README.md (## Performance)")
    p.add_argument("--sparse-effect", action="store_true",
                   help="also train dense vs sparse item-embedding updates on the small scale and compare test metrics")
    p.add_argument("--sparse-effect-only", action="store_true", help="only that comparison (no speed cases)")
    p.add_argument("--effect-scale", default="small", help="simulator scale of the sparse-effect runs")
    p.add_argument("--effect-epochs", type=float, default=10.0)
    p.add_argument("--effect-seeds", type=int, default=2)
    p.add_argument("--out", default=None, help="output folder (default build/bench)")


#: the bench's sizes and counts: (option, smallest value, an example)
_BENCH_BOUNDS = (
    ("steps", 1, "30"), ("warmup", 0, "5"), ("batch", 1, "256"), ("threads", 1, "4"), ("eval_states", 1, "8192"),
    ("eval_batch", 1, "1024"), ("retries", 0, "2"), ("effect_seeds", 1, "2"),
)


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the --quick-dependent defaults and refuse non-positive sizes before any work (ConfigError)."""
    from mcrl_kit.data.simulator import SCALES
    from mcrl_kit.errors import ConfigError

    if args.steps is None:
        args.steps = 3 if args.quick else 30
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    if args.eval_states is None:
        args.eval_states = 2048 if args.quick else 8192
    if args.retries is None:
        args.retries = 0 if args.quick else 2
    for name, low, example in _BENCH_BOUNDS:
        value = getattr(args, name, None)
        if value is not None and value < low:
            option = "--" + name.replace("_", "-")
            raise ConfigError(f"bench {option}", f"must be ≥ {low}, got {value}", f"give e.g. {option} {example}")
    for n in args.items or ():
        if n < 2:  # a negative action needs an item other than the logged one
            raise ConfigError("bench --items", f"every catalogue size must be ≥ 2, got {n}", "give e.g. --items 26702 70852")
    for option, value in (("--wait-quiet", args.wait_quiet), ("--max-foreign", args.max_foreign)):
        if not 0 <= value < float("inf"):
            raise ConfigError(f"bench {option}", f"must be a finite number ≥ 0, got {value}", f"give e.g. {option} 0.15")
    if not 0 < args.effect_epochs < float("inf"):
        raise ConfigError("bench --effect-epochs", f"must be a finite number > 0, got {args.effect_epochs}",
                          "give e.g. --effect-epochs 10")
    for option, value in (("--scale", args.scale), ("--effect-scale", args.effect_scale)):
        if value is not None:
            if value not in SCALES:
                raise ConfigError(f"bench {option}", f"unknown scale {value!r}", f"use one of: {', '.join(SCALES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker(json.loads(argv[1]))
        return 0
    p = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__.splitlines()[0])
    add_arguments(p)
    from mcrl_kit.errors import KitError

    try:
        bench(resolve_defaults(p.parse_args(argv)))
    except KitError as err:  # as the kit's commands: one paragraph on stderr, exit 2
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
