"""The one training loop, for every algorithm.

Per step (as the reference code): sample a batch of transitions uniformly (without
replacement within the batch), compute the algorithm's named loss parts, one Adam step,
then the algorithm's ``after_step`` (target networks). Every ``eval_every`` steps:
full-ranking evaluation on validation, the best checkpoint kept by ``select_metric``,
and a resumable checkpoint written atomically. At the end the best weights are scored
on validation and test.

A run folder holds:

=====================  ==============================================================
``config.json``        the :class:`RunConfig` (data folder, model, algorithm, loop)
``history.csv``        loss parts every ``log_every`` steps, validation metrics per eval
``checkpoint.pt``      everything needed to resume exactly (weights, optimiser, RNGs)
``best-<step>.pt``     the best weights so far (referenced by the checkpoint)
``model.pt``           the selected (best) weights, at the end
``timing.csv``         wall-clock seconds of training at each evaluation (not reproducible,
                       so kept out of ``history.csv``)
``metrics.json``       ``{"val": …, "test": …, "params": …, "steps": …}``, written last:
                       its presence means the run is complete
=====================  ==============================================================

Every file is written atomically, and the order of the writes makes a ``kill -9`` at any
moment harmless: ``best-<step>.pt`` before the ``checkpoint.pt`` that names it, stale
``best-*`` removed only after, ``metrics.json`` last. Resuming (``--resume``) from
whatever is on disk ends with exactly the metrics of a run that never stopped
(``tests/test_interrupt.py`` kills runs at each of these points).

Determinism: every random draw comes from generators seeded from ``TrainConfig.seed``
(batches, the algorithm's negatives/role swaps, dropout via the global torch RNG), all
saved in the checkpoint — so a resumed run ends with exactly the metrics of one that
never stopped (on CPU).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import faults
from .algos import Algo, algo_config, build_algo
from .config import Config, ModelConfig, TrainConfig
from .data import PreparedData, load_prepared
from .data.replay import ReplayBuffer
from .errors import ConfigError, TrainingError
from .evaluate import LinearScores, evaluate, flat_metrics
from .seeding import seed_everything, torch_generator
from .storage import atomic_path, read_json, remove_stale_temps, write_json


@dataclasses.dataclass
class RunConfig(Config):
    """Everything that defines a run; saved as ``RUN/config.json``."""

    #: a prepared-data folder (``python -m mcrl_kit prepare --out DIR``)
    data: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    algo: str = "supervised"
    #: the algorithm's own config (see its dataclass); unknown keys are refused
    algo_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def validate(self) -> None:
        # resolve (and so check) the algorithm's fields before any work starts
        self.algo_params = algo_config(self.algo, self.algo_params).to_dict()


@dataclasses.dataclass
class TrainResult:
    algo: Algo
    metrics: dict
    history: pd.DataFrame
    out: Path | None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("TrainConfig.device", f"{name!r} asked for but CUDA is not available", "use --device cpu or auto")
    return device


# --- several processes (torchrun) ----------------------------------------------------
def distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless this process was started by ``torchrun``.

    Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1 in the environment) the
    process group is created here on first use: NCCL when CUDA is present, gloo on CPU.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE", "is > 1 but this torch build has no torch.distributed", "run one process")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def _rank_device(device: torch.device, world: int) -> torch.device:
    """One GPU per process under torchrun (``LOCAL_RANK``); the CPU is shared."""
    if world > 1 and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _broadcast(obj: Any, world: int) -> Any:
    """Rank 0's ``obj`` on every rank (a no-op in one process)."""
    if world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sample_batch(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``size`` distinct row indices drawn uniformly from ``range(n)``.

    The reference draws ``replay_buffer.sample(n=256)`` (distinct rows) each step;
    a permutation of a 1.2 M-row buffer per step would cost more than the step, so draw
    with replacement and redraw the (rare) duplicates — the same distribution.
    """
    if size >= n:
        return torch.randperm(n, generator=generator)
    idx = torch.randint(0, n, (size,), generator=generator)
    while True:
        sorted_idx, order = idx.sort()
        dup = torch.zeros(size, dtype=torch.bool)
        dup[order[1:]] = sorted_idx[1:] == sorted_idx[:-1]
        if not dup.any():
            return idx
        idx[dup] = torch.randint(0, n, (int(dup.sum()),), generator=generator)


def steps_for(train: TrainConfig, n_rows: int) -> int:
    if train.steps is not None:
        return int(train.steps)
    return max(1, math.ceil(train.epochs * n_rows / train.batch_size))


class Optimizers:
    """Several optimisers behind the one interface the loop uses (dense Adam + SparseAdam).

    ``param_groups`` is the live list of every group, so setting ``group["lr"]`` reaches all.
    """

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for opt, st in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(st)


def make_optimizer(algo: Algo, lr: float, device: torch.device) -> torch.optim.Optimizer | Optimizers:
    """Adam over every trainable parameter, as the reference.

    Fused Adam: one kernel over all parameters instead of a dozen per tensor. An item embedding built
    with sparse gradients (``ModelConfig.sparse_embedding``) gets ``SparseAdam`` instead:
    it updates only the rows a batch touched — lazy Adam, a different trajectory.
    """
    sparse_ids = {
        id(m.weight) for m in algo.modules() if isinstance(m, torch.nn.Embedding) and m.sparse and m.weight.requires_grad
    }
    params = [p for p in algo.parameters() if p.requires_grad]
    dense = [p for p in params if id(p) not in sparse_ids]
    sparse = [p for p in params if id(p) in sparse_ids]
    adam = torch.optim.Adam(dense, lr=lr, fused=True)
    if not sparse:
        return adam
    return Optimizers(adam, torch.optim.SparseAdam(sparse, lr=lr))


def _check_finite(parts: dict[str, torch.Tensor], step: int, algo: str) -> None:
    total = parts["total"]
    if torch.isfinite(total):
        return
    # detach: float() of a tensor that requires grad warns (a stray source line on the CLI's stderr)
    bad = {k: float(v.detach()) for k, v in parts.items() if not torch.isfinite(v)}
    names = ", ".join(f"{k} = {v}" for k, v in bad.items())
    raise TrainingError(
        f"{algo} at step {step + 1}",  # 1-based, as --steps, history.csv and the checkpoints count
        f"the loss is not finite ({names})",
        "lower the learning rate (--lr), check the data for extreme rewards, or resume from the last "
        "checkpoint with --resume after changing the settings",
    )


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def score_fn(algo: Algo, device: torch.device, amp: bool = False):
    parts = algo.ranking_head()
    if parts is not None and not amp:  # rank block by block, without the [B, n_items] logits
        encode, head = parts
        return LinearScores(encode, head.weight, head.bias)

    def fn(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with _autocast(device, amp):
            return algo.scores(states, lengths).float()

    return fn


def evaluate_algo(algo: Algo, buffer: ReplayBuffer, train: TrainConfig, device: torch.device) -> dict:
    was_training = algo.training
    algo.eval()
    try:
        return evaluate(score_fn(algo, device, train.amp), buffer, batch_size=train.eval_batch_size, device=device)
    finally:
        algo.train(was_training)


def train(
    run: RunConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    data: PreparedData | None = None,
) -> TrainResult:
    """Train ``run`` and return the best model, its metrics and the history.

    ``out`` (optional) receives the run folder; with ``resume`` an existing
    ``checkpoint.pt`` there is continued exactly.
    """
    cfg = run.train
    rank, world = distributed()
    device = _rank_device(resolve_device(cfg.device), world)
    if world > 1:
        if cfg.batch_size % world:
            raise ConfigError("TrainConfig.batch_size", f"{cfg.batch_size} does not split over {world} processes",
                              f"give a batch size divisible by {world} (it is the global batch)")
        if run.model.sparse_embedding:
            raise ConfigError("ModelConfig.sparse_embedding", "is not supported with several processes",
                              "train with dense embeddings under torchrun")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = data if data is not None else load_prepared(run.data)
    out = Path(out) if out is not None else None

    # everything that can refuse the run (K ≥ catalogue, empty splits, a checkpoint of
    # another config) happens before the run folder is created or written
    seed_everything(cfg.seed)
    algo = build_algo(run.algo, data.n_items, data.config.state_len, run.model, run.algo_params, seed=cfg.seed).to(device)
    train_buf = data.replay("train")
    val_buf = data.replay("val")
    data.replay("test")
    if out is not None and rank == 0:  # under torchrun, rank 0 alone owns the run folder
        _prepare_out(out, resume, run)
        run.save(out / "config.json")
    if world > 1:
        dist.barrier()
        # dropout differs per process (as it does per example in one process); the rest,
        # weights and the algorithm's own generator, starts identical on every rank
        torch.manual_seed(cfg.seed * 1_000_003 + rank)

    history: list[dict] = []
    total_steps = steps_for(cfg, len(train_buf)) if algo.trainable else 0
    best_step = total_steps
    if not algo.trainable:
        algo.fit(train_buf)
    else:
        history, best_step = _fit(algo, run, train_buf, val_buf, total_steps, device, out, resume)
    if rank != 0:  # rank 0 evaluates and writes; the others return its metrics
        metrics = _broadcast(None, world)
        return TrainResult(algo=algo, metrics=metrics, history=pd.DataFrame(history), out=out)

    val = evaluate_algo(algo, val_buf, cfg, device)
    test = evaluate_algo(algo, data.replay("test"), cfg, device)
    metrics = {
        "algo": run.algo,
        "backbone": run.model.backbone if algo.trainable else None,
        "val": _strip_counts(val),
        "test": _strip_counts(test),
        "count": {"val": val["count"], "test": test["count"]},
        **algo.param_counts(),
        "steps": total_steps,
        "best_step": int(best_step),
        "select_metric": cfg.select_metric,
    }
    hist = pd.DataFrame(history)
    if out is not None:
        with atomic_path(out / "model.pt") as tmp:
            torch.save(algo.state_dict(), tmp)
        faults.point("train:model")
        with atomic_path(out / "history.csv") as tmp:
            hist.to_csv(tmp, index=False)
        # metrics.json last: its presence means every other file of the run is complete
        write_json(out / "metrics.json", metrics)
    _broadcast(metrics, world)
    return TrainResult(algo=algo, metrics=metrics, history=hist, out=out)


def _strip_counts(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "count"}


def _prepare_out(out: Path, resume: bool, run: RunConfig) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(str(out), "exists and is not a folder", "choose another --out for the run folder")
    if (out / "events.parquet").exists() or (out / "stats.json").exists():  # its config.json would be overwritten
        raise ConfigError(str(out), "is a prepared-data folder, not a run folder", "choose another --out for the run")
    if resume and (out / "checkpoint.pt").exists() and (out / "config.json").exists():
        # config.json is the checkpoint's config (both written by the same run): refuse a
        # different one before overwriting it
        if _resume_key(read_json(out / "config.json")) != _resume_key(run.to_dict()):
            raise TrainingError(
                str(out / "checkpoint.pt"), "was written by a different configuration",
                "resume with the same settings as the interrupted run, or start a new --out",
            )
    if out.exists() and not resume and any(out.iterdir()):
        if (out / "metrics.json").exists() or (out / "checkpoint.pt").exists():
            raise ConfigError(
                str(out), "already holds a run",
                "pass --resume to continue it, or choose another --out (or delete the folder)",
            )
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, folder=True)  # temporaries of a killed run


def _fit(
    algo: Algo,
    run: RunConfig,
    train_buf: ReplayBuffer,
    val_buf: ReplayBuffer,
    total_steps: int,
    device: torch.device,
    out: Path | None,
    resume: bool,
) -> tuple[list[dict], int]:
    """Run the optimisation; return the history and the selected step (best weights loaded).

    Under torchrun every rank draws the same global batch of ``batch_size`` rows from the
    same generator and trains on its slice ``idx[rank::world]``; DistributedDataParallel
    averages the gradients, so one step equals a one-process step on the global batch
    (up to float summation order, the per-rank dropout masks and negatives drawn per
    slice). Rank 0 alone evaluates, selects and writes checkpoints.
    """
    cfg, acfg = run.train, algo.config
    rank, world = distributed()
    optimizer = make_optimizer(algo, cfg.lr, device)
    batches = torch_generator(cfg.seed, "batches")
    metric_key = "val/" + cfg.select_metric
    state = {"step": 0, "best_value": -math.inf, "best_step": -1, "history": []}
    best_weights: dict | None = None

    if resume and out is not None and (out / "checkpoint.pt").exists():
        ckpt = torch.load(out / "checkpoint.pt", map_location=device, weights_only=False)
        if _resume_key(ckpt.get("config", {})) != _resume_key(run.to_dict()):
            raise TrainingError(
                str(out / "checkpoint.pt"), "was written by a different configuration",
                "resume with the same settings as the interrupted run, or start a new --out",
            )
        algo.load_state_dict(ckpt["algo"])
        optimizer.load_state_dict(ckpt["optimizer"])
        batches.set_state(ckpt["batches"])
        ranks_rng = ckpt.get("torch_rng_ranks")
        torch.set_rng_state(ranks_rng[rank] if ranks_rng and len(ranks_rng) == world else ckpt["torch_rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
        state = ckpt["state"]
        if state["best_step"] >= 0 and rank == 0:
            best_weights = torch.load(out / f"best-{state['best_step']:08d}.pt", map_location=device, weights_only=False)
        if rank == 0:
            _remove_stale_best(out, state["best_step"])

    model: torch.nn.Module = algo
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # forward() is the loss; where parameters may sit out a step (SQN's idle network
        # of the role swap) DDP must look for them (Algo.unused_params)
        model = DistributedDataParallel(
            algo, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=type(algo).unused_params,
        )
    step_fn = torch.compile(model) if cfg.compile else model
    history = state["history"]
    # wall-clock seconds live apart from the history, so that history.csv is reproducible
    timing = state.setdefault("timing", [])
    seconds0 = timing[-1]["seconds"] if timing else 0.0
    sums: dict[str, torch.Tensor] = {}
    n_summed = 0
    t0 = time.perf_counter()
    bar = tqdm(total=total_steps, initial=state["step"], desc=f"train {run.algo}", disable=not cfg.progress or rank != 0)
    algo.train()
    for step in range(state["step"], total_steps):
        lr = algo.learning_rate(step, cfg.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = sample_batch(len(train_buf), cfg.batch_size, batches)[rank::world]
        batch = train_buf.batch(idx, acfg.reward_click, acfg.reward_buy, device=device)
        with _autocast(device, cfg.amp):
            parts = step_fn(batch, step)
        _check_finite(parts, step, run.algo)
        optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        optimizer.step()
        algo.after_step(step)
        faults.point("train:step")

        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
        n_summed += 1
        done = step + 1
        bar.update(1)
        row: dict[str, Any] = {}
        if done % cfg.log_every == 0 or done % cfg.eval_every == 0 or done == total_steps:
            if world > 1:  # the logged losses are means over every rank's slice
                names = sorted(sums)
                packed = torch.stack([sums[k] for k in names]) / world
                dist.all_reduce(packed)
                sums = dict(zip(names, packed, strict=True))
            row = {"step": done, "lr": lr, **{f"loss/{k}": float(v) / n_summed for k, v in sums.items()}}
            sums, n_summed = {}, 0
        if rank == 0 and (done % cfg.eval_every == 0 or done == total_steps):
            val = flat_metrics(evaluate_algo(algo, val_buf, cfg, device), "val/")
            row.update(val)
            timing.append({"step": done, "seconds": round(seconds0 + time.perf_counter() - t0, 2)})
            bar.set_postfix({cfg.select_metric: f"{val[metric_key]:.4f}"})
            if val[metric_key] > state["best_value"]:
                state["best_value"], state["best_step"] = val[metric_key], done
                # deepcopy, not tensor.clone(): the state_dict also holds the algorithm's generator state (a dict)
                best_weights = copy.deepcopy(algo.state_dict())
                if out is not None:
                    with atomic_path(out / f"best-{done:08d}.pt") as tmp:
                        torch.save(best_weights, tmp)
                    faults.point("train:best")
        if row:
            history.append(row)
        if out is not None and (done % cfg.eval_every == 0 or done == total_steps):
            state["step"] = done
            ranks_rng = _gather_rng(world)
            if rank == 0:
                _save_checkpoint(out, algo, optimizer, batches, state, run, device, ranks_rng)
                faults.point("train:checkpoint")
                _remove_stale_best(out, state["best_step"])
                with atomic_path(out / "timing.csv") as tmp:
                    pd.DataFrame(timing).to_csv(tmp, index=False)
    bar.close()
    if best_weights is not None:
        algo.load_state_dict(best_weights)
    return history, state["best_step"]


def _resume_key(config: dict) -> dict:
    """The settings a resumed run must share (device, threads and progress bars may change)."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in ("device", "threads", "progress")}
    return {**config, "train": train}


def _gather_rng(world: int) -> list[torch.Tensor] | None:
    """Every rank's dropout RNG state (so a resumed multi-process run continues exactly)."""
    if world == 1:
        return None
    states: list = [None] * world
    dist.all_gather_object(states, torch.get_rng_state())
    return states


def _save_checkpoint(
    out: Path, algo: Algo, optimizer, batches, state: dict, run: RunConfig, device: torch.device,
    ranks_rng: list[torch.Tensor] | None = None,
) -> None:
    ckpt = {
        "torch_rng_ranks": ranks_rng,
        "config": run.to_dict(),
        "algo": algo.state_dict(),
        "optimizer": optimizer.state_dict(),
        "batches": batches.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "state": state,
    }
    with atomic_path(out / "checkpoint.pt") as tmp:
        torch.save(ckpt, tmp)


def _remove_stale_best(out: Path, keep_step: int) -> None:
    for path in out.glob("best-*.pt"):
        if path.name != f"best-{keep_step:08d}.pt":
            path.unlink(missing_ok=True)


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[RunConfig, Algo, PreparedData]:
    """Load a finished run: its config, the selected model (on ``device``) and its data."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(str(run_dir), "is not a run folder (no config.json)", "pass the --out folder of `train`")
    run = RunConfig.load(run_dir / "config.json")
    data = load_prepared(run.data)
    dev = resolve_device(device)
    algo = build_algo(run.algo, data.n_items, data.config.state_len, run.model, run.algo_params, seed=run.train.seed)
    weights = run_dir / "model.pt"
    if not weights.exists():
        raise ConfigError(str(run_dir), "has no model.pt (the run did not finish)", "resume it with `train ... --resume`")
    algo.load_state_dict(torch.load(weights, map_location="cpu", weights_only=False))
    return run, algo.to(dev).eval(), data


def read_metrics(run_dir: str | Path) -> dict:
    return read_json(Path(run_dir) / "metrics.json")
