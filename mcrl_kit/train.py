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
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import faults
from .algos import Algo, build_algo
from .config import KS, TrainConfig
from .data import PreparedData, load_prepared
from .data.replay import ReplayBuffer
from .devices import broadcast, distributed, on_rank0, rank_device, resolve_device
from .errors import ConfigError, KitWarning, TrainingError
from .evaluate import DirectRanks, LinearScores, flat_metrics, metrics_from_ranks, target_ranks
from .runs import (
    RunConfig,
    check_out,
    clear_kit_files,
    load_run,
    load_state,
    load_weights,
    lock,
    resume_key,
)
from .seeding import seed_everything, torch_generator
from .storage import atomic_path, remove_stale_temps, write_json

__all__ = ["RunConfig", "TrainResult", "distributed", "evaluate_algo", "load_run", "make_optimizer", "resolve_device",
           "sample_batch", "score_fn", "steps_for", "train", "train_step"]


@dataclasses.dataclass
class TrainResult:
    algo: Algo
    metrics: dict
    history: pd.DataFrame
    out: Path | None


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
        "train again into a new --out (or with --overwrite) with a lower learning rate (--lr) or other settings, "
        "and check the data for extreme rewards (--resume continues only with the same settings)",
    )


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    algo: Algo,
    step_fn,
    optimizer: torch.optim.Optimizer | Optimizers,
    batch: dict[str, torch.Tensor],
    step: int,
    base_lr: float,
    *,
    device: torch.device | None = None,
    amp: bool = False,
    name: str | None = None,
) -> tuple[dict[str, torch.Tensor], float]:
    """One optimisation step of the training loop; return the loss parts and the learning rate used.

    In order: the step's learning rate (``algo.learning_rate(step, base_lr)``) into every
    parameter group, ``step_fn(batch, step)`` (the algorithm, its DDP wrapper or its
    ``torch.compile``; under bf16 autocast when ``amp`` on CUDA), the finiteness check
    (a :class:`TrainingError` naming ``name``, default ``algo.name``), ``zero_grad``,
    backward, ``optimizer.step()``, ``algo.after_step(step)`` (target networks,
    schedules). ``train``'s loop and ``benchmarks/bench.py`` both run exactly this.
    """
    lr = algo.learning_rate(step, base_lr)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with _autocast(device or torch.device("cpu"), amp):
        parts = step_fn(batch, step)
    _check_finite(parts, step, name or algo.name)
    optimizer.zero_grad(set_to_none=True)
    parts["total"].backward()
    optimizer.step()
    algo.after_step(step)
    return parts, lr


def score_fn(algo: Algo, device: torch.device, amp: bool = False):
    direct = algo.direct_ranks()
    if direct is not None:  # the algorithm ranks the logged item itself (recency): no scores at all
        return DirectRanks(algo.scores, direct)
    parts = algo.ranking_head()
    if parts is not None:  # rank block by block, without the [B, n_items] logits
        encode, head = parts
        if amp:  # the encoder under bf16, the ranking in fp32: bf16 logits would tie often, and ties count against
            plain = encode

            def encode(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
                with _autocast(device, amp):
                    return plain(states, lengths)

        return LinearScores(encode, head.weight, head.bias)

    def fn(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with _autocast(device, amp):
            return algo.scores(states, lengths).float()

    return fn


def evaluate_algo(algo: Algo, buffer: ReplayBuffer, train: TrainConfig, device: torch.device, ranks_to: Path | None = None) -> dict:
    """HR/NDCG of ``algo`` on ``buffer``; with ``ranks_to``, the per-event ranks saved there too (``save_ranks``)."""
    was_training = algo.training
    algo.eval()
    try:
        ranks = target_ranks(score_fn(algo, device, train.amp), buffer, max(KS), batch_size=train.eval_batch_size, device=device)
    finally:
        algo.train(was_training)
    if ranks_to is not None:
        save_ranks(ranks_to, ranks, buffer)
    return metrics_from_ranks(ranks, buffer.is_buy.cpu())


def save_ranks(path: Path, ranks: torch.Tensor, buffer: ReplayBuffer) -> None:
    """Per-event ranks (clamped at ``max(KS)`` = a miss), purchase flags and session ids, as ``.npz`` (no pickles):
    what the paired bootstrap of ``compare --ci`` resamples. Written with fixed zip timestamps, so the same
    run writes the same bytes."""
    arrays = {"rank": ranks.numpy().astype(np.int16), "is_buy": buffer.is_buy.cpu().numpy().astype(bool),
              "session": buffer.session.cpu().numpy().astype(np.int64)}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)


def selection(cfg: TrainConfig, val_buf: ReplayBuffer) -> dict:
    """Which validation metric chooses the checkpoint, decided before training from its support.

    ``select_metric`` when validation holds at least ``select_min_support`` events of its kind
    (purchases or clicks); else, with a :class:`~mcrl_kit.errors.KitWarning`, ``select_fallback``
    if that has the support, else the last evaluation's weights (``metric`` = ``"last"``). So a
    metric that is NaN (no such events) or a mean over a handful of them never silently decides.
    """
    support = {"purchase": int(val_buf.is_buy.sum()), "click": int((~val_buf.is_buy).sum())}

    def enough(metric: str) -> bool:
        return metric != "last" and support[metric.split("/")[0]] >= cfg.select_min_support

    def events(metric: str) -> str:
        kind = metric.split("/")[0]
        return f"{support[kind]:,} validation {'purchases' if kind == 'purchase' else 'clicks'}"

    chosen, reason = cfg.select_metric, None
    if not enough(cfg.select_metric):
        if cfg.select_fallback != "last" and enough(cfg.select_fallback):
            chosen = cfg.select_fallback
            reason = (f"{cfg.select_metric} rests on {events(cfg.select_metric)} (fewer than select_min_support = "
                      f"{cfg.select_min_support}): the checkpoint is chosen on {chosen} ({events(chosen)}) instead")
        else:
            chosen = "last"
            also = "" if cfg.select_fallback == "last" else f", and the fallback {cfg.select_fallback} on {events(cfg.select_fallback)}"
            reason = (f"{cfg.select_metric} rests on {events(cfg.select_metric)}{also} (fewer than select_min_support = "
                      f"{cfg.select_min_support}): the last evaluation's weights are kept")
    return {"requested": cfg.select_metric, "metric": chosen, "min_support": cfg.select_min_support,
            "support": support if chosen == "last" else support[chosen.split("/")[0]], "reason": reason}


def train(
    run: RunConfig,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    data: PreparedData | None = None,
    on_eval: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train ``run`` and return the best model, its metrics and the history.

    ``on_eval(step, validation metrics)`` is called after each validation, once its checkpoint is written
    (``tune`` prunes there: an exception it raises ends the run, resumable from that checkpoint).

    ``out`` (optional) receives the run folder; with ``resume`` an existing
    ``checkpoint.pt`` there is continued exactly. A folder that holds anything else is
    refused unless ``overwrite`` (which removes only the kit's own files there).
    """
    cfg = run.train
    rank, world = distributed()
    device = rank_device(resolve_device(cfg.device), world)
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
    if run.data_fingerprint and run.data_fingerprint != data.fingerprint:
        raise ConfigError(
            f"the run's data_fingerprint ({run.data_fingerprint[:12]})", f"is not that of {data.root} ({data.fingerprint[:12]})",
            "train on the data the configuration was made for, or clear data_fingerprint to train on this data",
        )
    run = run.replace(data_fingerprint=data.fingerprint)  # a copy: the caller's config stays as it was

    # everything that can refuse the run (K ≥ catalogue, empty splits, a checkpoint of
    # another config, a folder in use) happens before the run folder is created or written
    seed_everything(cfg.seed)
    algo = build_algo(run.algo, data.n_items, data.config.state_len, run.model, run.algo_params, seed=cfg.seed).to(device)
    train_buf = data.replay("train")
    val_buf = data.replay("val")
    data.replay("test")
    with contextlib.ExitStack() as held:
        if out is not None:  # under torchrun, rank 0 alone owns the run folder; its refusals end every rank
            on_rank0(lambda: _prepare_out(out, run, resume, overwrite, held), rank, world)
        if world > 1:
            # dropout differs per process (as it does per example in one process); the rest,
            # weights and the algorithm's own generator, starts identical on every rank
            torch.manual_seed(cfg.seed * 1_000_003 + rank)
        return _train_held(algo, run, data, train_buf, val_buf, device, out, resume, rank, world, on_eval)


def _train_held(algo, run, data, train_buf, val_buf, device, out, resume, rank, world, on_eval=None) -> TrainResult:
    """The training proper, with the run folder prepared and locked."""
    cfg = run.train
    history: list[dict] = []
    total_steps = steps_for(cfg, len(train_buf)) if algo.trainable else 0
    best_step = total_steps
    algo.fit(train_buf, data)  # a gradient algorithm reads what it needs of the train split (sampler counts)
    algo.plan(total_steps)  # schedules given as a fraction of the budget (SA2C's switch, MCRL's warm-up)
    select = selection(cfg, val_buf) if algo.trainable else None
    if select and select["reason"] and rank == 0:
        warnings.warn(f"checkpoint selection: {select['reason']}", KitWarning, stacklevel=2)
    if algo.trainable:
        history, best_step = _fit(algo, run, train_buf, val_buf, total_steps, device, out, resume, select["metric"], on_eval)
    hist = pd.DataFrame(history)

    def finish() -> dict:  # rank 0 evaluates and writes; the others get its metrics
        val = evaluate_algo(algo, val_buf, cfg, device)
        # a tuning trial (test_metrics off) never scores test: only the retrained best configuration does
        test = evaluate_algo(algo, data.replay("test"), cfg, device, ranks_to=out / "ranks_test.npz" if out is not None else None) \
            if cfg.test_metrics else None
        metrics = {
            "algo": run.algo,
            "backbone": run.model.backbone if algo.trainable else None,
            "val": _strip_counts(val),
            **({"test": _strip_counts(test)} if test else {}),
            "count": {"val": val["count"], **({"test": test["count"]} if test else {})},
            **algo.param_counts(),
            "steps": total_steps,
            "best_step": int(best_step),
            "select_metric": select["metric"] if select else cfg.select_metric,
            **({"selection": select} if select else {}),
        }
        if out is not None:
            with atomic_path(out / "model.pt") as tmp:
                torch.save(algo.state_dict(), tmp)
            faults.point("train:model")
            with atomic_path(out / "history.csv") as tmp:
                hist.to_csv(tmp, index=False)
            # metrics.json last: its presence means every other file of the run is complete
            write_json(out / "metrics.json", metrics)
        return metrics

    metrics = broadcast(on_rank0(finish, rank, world), world)
    return TrainResult(algo=algo, metrics=metrics, history=hist, out=out)


def _strip_counts(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "count"}


def _prepare_out(out: Path, run: RunConfig, resume: bool, overwrite: bool, held: contextlib.ExitStack) -> None:
    """Check ``out`` (nothing written on a refusal), lock it for the rest of the run, then lay it out."""
    locked_now = (out / ".lock").exists()  # a folder some process trains into (or did): "in use" comes first
    if locked_now:
        held.enter_context(lock(out))
    check_out(out, run, resume=resume, overwrite=overwrite)
    if not locked_now:  # locked only after the checks, so a refusal creates no lock file in the folder
        held.enter_context(lock(out))
        check_out(out, run, resume=resume, overwrite=overwrite)  # again, now that no one else can change it
    if overwrite:
        clear_kit_files(out)
    remove_stale_temps(out, folder=True)  # temporaries of a killed run
    run.save(out / "config.json")


def _fit(
    algo: Algo,
    run: RunConfig,
    train_buf: ReplayBuffer,
    val_buf: ReplayBuffer,
    total_steps: int,
    device: torch.device,
    out: Path | None,
    resume: bool,
    select_metric: str | None = None,
    on_eval: Callable[[int, dict], None] | None = None,
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
    select_metric = select_metric or cfg.select_metric  # "last": every evaluation replaces the best
    metric_key = "val/" + select_metric
    state = {"step": 0, "best_value": -math.inf, "best_step": -1, "history": [], "select_metric": select_metric}
    best: dict[str, dict | None] = {"weights": None}  # the best weights so far (rank 0)

    if resume and out is not None and (out / "checkpoint.pt").exists():
        ckpt = load_weights(out / "checkpoint.pt")  # on the CPU: RNG states must stay CPU tensors
        if not isinstance(ckpt, dict) or not {"algo", "optimizer", "batches", "torch_rng", "state"} <= set(ckpt):
            raise TrainingError(str(out / "checkpoint.pt"), "is not a checkpoint of mcrl_kit's training loop",
                                "train again into a new --out (or with --overwrite)")
        if resume_key(ckpt.get("config", {})) != resume_key(run.to_dict()):
            raise TrainingError(
                str(out / "checkpoint.pt"), "was written by a different configuration",
                "resume with the same settings as the interrupted run (only --device, --threads and --no-progress "
                "may change), or start a new --out",
            )
        if ckpt["config"].get("data_fingerprint") != run.data_fingerprint:
            raise TrainingError(
                str(out / "checkpoint.pt"), f"was trained on other data than {run.data} holds now (prepared again since)",
                "resume on the data the run started on, or train again into a new --out",
            )
        load_state(algo, ckpt["algo"], out / "checkpoint.pt")
        optimizer.load_state_dict(ckpt["optimizer"])
        batches.set_state(ckpt["batches"])
        ranks_rng = ckpt.get("torch_rng_ranks")
        torch.set_rng_state(ranks_rng[rank] if ranks_rng and len(ranks_rng) == world else ckpt["torch_rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], device)
        state = ckpt["state"]
        # a checkpoint from before selection looked at support chose on the requested metric
        if state.get("select_metric", cfg.select_metric) != select_metric:
            raise TrainingError(
                str(out / "checkpoint.pt"), f"chose checkpoints on {state.get('select_metric', cfg.select_metric)}, "
                f"but this validation split's support makes it {select_metric} now (see the warning above)",
                "train again into a new --out (or with --overwrite)",
            )
        if state["best_step"] >= 0 and rank == 0:
            best["weights"] = load_weights(out / f"best-{state['best_step']:08d}.pt")
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
        idx = sample_batch(len(train_buf), cfg.batch_size, batches)[rank::world]
        batch = train_buf.batch(idx, acfg.reward_click, acfg.reward_buy, device=device)
        parts, lr = train_step(algo, step_fn, optimizer, batch, step, cfg.lr, device=device, amp=cfg.amp, name=run.algo)
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
        if not (done % cfg.eval_every == 0 or done == total_steps):
            if row:
                history.append(row)
            continue
        ranks_rng = _gather_rng(world) if out is not None else None  # a collective: every rank takes part

        def evaluate_and_save(done=done, row=row, ranks_rng=ranks_rng) -> None:
            """Rank 0: validation, the best weights, the checkpoint (an error here ends every rank cleanly)."""
            val = flat_metrics(evaluate_algo(algo, val_buf, cfg, device), "val/")
            row.update(val)
            timing.append({"step": done, "seconds": round(seconds0 + time.perf_counter() - t0, 2)})
            value = float(done) if select_metric == "last" else val[metric_key]
            if select_metric != "last":
                bar.set_postfix({select_metric: f"{value:.4f}"})
            if value > state["best_value"]:
                state["best_value"], state["best_step"] = value, done
                # deepcopy, not tensor.clone(): the state_dict also holds the algorithm's generator state (a dict)
                best["weights"] = copy.deepcopy(algo.state_dict())
                if out is not None:
                    with atomic_path(out / f"best-{done:08d}.pt") as tmp:
                        torch.save(best["weights"], tmp)
                    faults.point("train:best")
            history.append(row)
            if out is not None:
                state["step"] = done
                _save_checkpoint(out, algo, optimizer, batches, state, run, device, ranks_rng)
                faults.point("train:checkpoint")
                _remove_stale_best(out, state["best_step"])
                with atomic_path(out / "timing.csv") as tmp:
                    pd.DataFrame(timing).to_csv(tmp, index=False)
            if on_eval is not None:
                on_eval(done, val)

        on_rank0(evaluate_and_save, rank, world)
        if rank != 0:
            history.append(row)
    bar.close()
    if best["weights"] is not None:
        algo.load_state_dict(best["weights"])
    return history, state["best_step"]


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
