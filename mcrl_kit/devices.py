"""Where a run computes: the device, and the process group under ``torchrun``.

One process by default; under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1) every
process is a rank of one process group (NCCL with CUDA, gloo on CPU). Rank 0 alone owns
the run folder; :func:`on_rank0` runs such rank-0-only work and gives every rank its
outcome, so an error only rank 0 sees (``--out`` is a file, a full disk) ends every rank
with the same clean message instead of leaving the others waiting.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from . import errors
from .errors import ConfigError, KitError

T = TypeVar("T")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("TrainConfig.device", f"{name!r} asked for but CUDA is not available", "use --device cpu or auto")
    return device


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


def shutdown(world: int, *, after_error: bool = False) -> None:
    """End the process group, every rank together (a no-op in one process or without a group).

    The barrier first: a rank that tears its gloo pairs down while another still has work in flight
    on them can be aborted by the C++ runtime at exit ("terminate called without an active exception",
    seen in CI on rank 1 of a finished run, and of a run every rank refused). After an error the
    other ranks may never come (an error only this rank saw), so the barrier there waits a bounded
    time (gloo's monitored barrier) and a failed or timed-out wait is no second error.
    """
    if not (world > 1 and dist.is_available() and dist.is_initialized()):
        return
    if not after_error:
        dist.barrier()
    elif dist.get_backend() == "gloo":
        try:
            dist.monitored_barrier(timeout=timedelta(seconds=ERROR_BARRIER_S), wait_all_ranks=True)
        except RuntimeError:  # a rank that exited already, or never came: nothing left to wait for
            pass
    dist.destroy_process_group()


#: how long a rank that ends on an error waits for the others before it lets its process group go
ERROR_BARRIER_S = 20


def rank_device(device: torch.device, world: int) -> torch.device:
    """One GPU per process under torchrun (``LOCAL_RANK``); the CPU is shared."""
    if world > 1 and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def broadcast(obj: Any, world: int) -> Any:
    """Rank 0's ``obj`` on every rank (a no-op in one process)."""
    if world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_rank0(fn: Callable[[], T], rank: int, world: int) -> T | None:
    """``fn()`` on rank 0; a :class:`KitError` it raises is raised on every rank.

    Returns ``fn``'s result on rank 0 and None elsewhere. In one process this is just
    ``fn()``. Only the error's class name and its three parts cross the process group
    (plain strings: nothing is unpickled into code).
    """
    if world == 1:
        return fn()
    result, failure = None, None
    if rank == 0:
        try:
            result = fn()
        except KitError as err:
            failure = (type(err).__name__, err.what, err.problem, err.fix)
    failure = broadcast(failure, world)
    if failure is not None:
        name, what, problem, fix = failure
        cls = getattr(errors, name, KitError)
        raise (cls if isinstance(cls, type) and issubclass(cls, KitError) else KitError)(what, problem, fix)
    return result
