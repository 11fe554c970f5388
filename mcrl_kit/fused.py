"""Item-sized products without item-sized temporaries: fused linear + cross-entropy, chunked argmax.

Every algorithm scores all ``N`` items with a linear head, ``l = h Wᵀ + b`` (``[B, N]``:
72 MB at batch 256 and RetailRocket's 70,852 items). Written plainly,
``F.cross_entropy(head(h), a)`` makes five such tensors per step (logits, log-softmax,
the gradient of each, the one-hot scatter): on a 2-core CPU the step is bound by those
memory passes and by the page faults of every fresh 72 MB buffer, not by arithmetic.

Here one ``[B, N]`` **workspace**, kept from step to step, is filled a cache-sized chunk
of items at a time and reduced while the chunk is still in cache::

    forward   E_c = exp(h W_cᵀ + b_c − shift)   (in place)      s = Σ_c Σ_items E_c
              CE_i = shift_i + log s_i − (w_{a_i}·h_i + b_{a_i})
    backward  with r = g / s  (g: the incoming gradient per row; softmax = E / s):
              ∂h   = r ⊙ Σ_c E_c W_c − g ⊙ w_a
              ∂W_c = E_cᵀ (r ⊙ h),  ∂b_c = E_cᵀ r,  then −g h_i, −g_i added at row a_i

so the per-row scalings land on the small ``[B, d]`` side and the workspace is only
ever written once (the logits, exponentiated in place) and read once. ``shift`` is 0
when every row's sum of exponentials lies in a safe range (checked once per call; the
usual case, saving the row-max pass), else the row maximum over all items, as
``log_softmax`` does. Values and gradients equal ``F.cross_entropy`` to float rounding
(``tests/test_perf_equivalence.py``); the speed is measured by ``benchmarks/bench.py`` (``make bench``).

On CUDA the whole catalogue is one chunk, always shifted by the row maximum (the range
check would cost a host sync), and under autocast the head runs in float32: the
encoder keeps its bf16 speed and the softmax over 70k items its precision.

The workspace is taken from a pool by the forward and handed back by the backward,
so a second cross-entropy built before the first's backward gets its own, and a
graph dropped without backward just frees its buffer. Backward through it twice
(``retain_graph``) is refused. ``use_fused(False)`` switches every caller back to the
plain formulas — whole ``[B, N]`` products, also for SQN's ``Q(s, a)`` reads
(``algos.sqn.q_at``) — for benchmarks, equivalence tests and debugging; so does
``MCRL_FUSED=0``.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F

_ENABLED = os.environ.get("MCRL_FUSED", "1") != "0"

#: floats in one CPU chunk of logits: 2^19 = 2 MiB, about one core's L2 on this class of CPU
CPU_CHUNK_ELEMENTS = 1 << 19
#: the unshifted row sums of exp(l) must land here, else the call redoes them shifted by the
#: row max: above 1e-20 the terms that underflow (< 1e-38 each, < 1e5 of them) weigh < 1e-13
SAFE_SUM = (1e-20, 1e30)

_POOL: dict[tuple[str, torch.dtype], torch.Tensor] = {}


_GATHERED_Q = _ENABLED


def fused_enabled() -> bool:
    return _ENABLED


def gathered_q() -> bool:
    """Whether ``Q(s, a)`` at single actions reads the head's rows (True) or indexes the whole product."""
    return _GATHERED_Q


@contextlib.contextmanager
def use_fused(enabled: bool = True, *, gathered_q: bool | None = None):
    """Within the block, item-sized products take the fused path (True) or the plain one.

    ``gathered_q`` (default: ``enabled``) separately switches how SQN-style ``Q(s, a)``
    reads are made: ``benchmarks/bench.py`` counts an algorithm's FLOPs with the plain
    softmax but gathered reads, and times the reference's computation with neither.
    """
    global _ENABLED, _GATHERED_Q
    before = _ENABLED, _GATHERED_Q
    _ENABLED, _GATHERED_Q = bool(enabled), bool(enabled if gathered_q is None else gathered_q)
    try:
        yield
    finally:
        _ENABLED, _GATHERED_Q = before


def chunk_size(rows: int, n_items: int, device: torch.device) -> int:
    """Items per chunk: the whole catalogue on accelerators, a cache-sized slab on CPU."""
    if device.type != "cpu":
        return n_items
    return max(1, min(n_items, CPU_CHUNK_ELEMENTS // max(rows, 1)))


def _take(numel: int, like: torch.Tensor) -> torch.Tensor:
    buf = _POOL.pop((str(like.device), like.dtype), None)
    if buf is None or buf.numel() < numel:
        buf = torch.empty(numel, device=like.device, dtype=like.dtype)
    return buf


def _give(buf: torch.Tensor) -> None:
    key = (str(buf.device), buf.dtype)
    if key not in _POOL or _POOL[key].numel() < buf.numel():
        _POOL[key] = buf


def _chunks(n_items: int, chunk: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk, n_items)) for start in range(0, n_items, chunk)]


def _logits(out: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, start: int, end: int):
    w = weight[start:end]
    if bias is None:
        return torch.mm(h, w.T, out=out)
    return torch.addmm(bias[start:end], h, w.T, out=out)


def _exp_logits(h, weight, bias, chunk: int, buffer) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill ``buffer(c, start, end)`` with ``exp(l − shift)`` chunk by chunk; return (row sums, shift)."""
    B, N = h.shape[0], weight.shape[0]
    chunks = _chunks(N, chunk)
    sums = h.new_zeros(B)
    if h.device.type == "cpu":  # optimistic: no shift, then check the range
        for c, (start, end) in enumerate(chunks):
            e = _logits(buffer(c, start, end), h, weight, bias, start, end).exp_()
            sums += e.sum(1)
        if bool(((sums > SAFE_SUM[0]) & (sums < SAFE_SUM[1])).all()):
            return sums, h.new_zeros(B)
        sums.zero_()
    shift = h.new_full((B,), -float("inf"))
    for c, (start, end) in enumerate(chunks):
        torch.maximum(shift, _logits(buffer(c, start, end), h, weight, bias, start, end).amax(1), out=shift)
    for c, (start, end) in enumerate(chunks):
        e = _logits(buffer(c, start, end), h, weight, bias, start, end)
        sums += e.sub_(shift[:, None]).exp_().sum(1)
    return sums, shift


def _target_logit(h, weight, bias, target):
    t = (h * weight[target]).sum(1)
    return t if bias is None else t + bias[target]


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, h, weight, bias, target, chunk):
        B, N = h.shape[0], weight.shape[0]
        ws = _take(B * N, h)
        offsets = {}

        def buffer(c, start, end):
            offsets[c] = (start, end)
            return ws[B * start : B * end].view(B, end - start)  # chunk-major: each chunk contiguous

        sums, shift = _exp_logits(h, weight, bias, chunk, buffer)
        ctx.ws, ctx.chunks = ws, [offsets[c] for c in sorted(offsets)]
        ctx.save_for_backward(h, weight, bias, target, sums)
        return shift + sums.log() - _target_logit(h, weight, bias, target)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        if ctx.ws is None:
            raise RuntimeError(
                "fused cross-entropy: backward through the same graph twice (retain_graph) is not supported; "
                "wrap the step in mcrl_kit.fused.use_fused(False)"
            )
        h, weight, bias, target, sums = ctx.saved_tensors
        ws, ctx.ws = ctx.ws, None
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        B = h.shape[0]
        g = grad.to(h.dtype)
        r = g / sums  # the incoming gradient times the softmax's normaliser, per row
        rh = h * r[:, None]
        acc = torch.zeros_like(h) if need_h else None
        grad_w = torch.empty_like(weight) if need_w else None
        grad_b = torch.empty_like(bias) if need_b else None
        for start, end in ctx.chunks:
            e = ws[B * start : B * end].view(B, end - start)
            if need_h:
                acc.addmm_(e, weight[start:end])
            if need_w:
                torch.mm(e.T, rh, out=grad_w[start:end])
            if need_b:
                torch.mv(e.T, r, out=grad_b[start:end])
        _give(ws)
        # the one-hot part of (softmax − one-hot): −g_i at (i, a_i)
        neg = -g[:, None]
        grad_h = acc * r[:, None] + weight[target] * neg if need_h else None
        if need_w:
            grad_w.index_add_(0, target, h * neg)
        if need_b:
            grad_b.index_add_(0, target, neg.squeeze(1))
        return grad_h, grad_w, grad_b, None, None


def linear_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Per-row ``−log softmax(h Wᵀ + b)[target]``, shape ``[B]``: ``F.cross_entropy`` without its temporaries.

    ``h`` ``[B, d]``, ``weight`` ``[N, d]``, ``bias`` ``[N]`` or None, ``target`` ``[B]``
    (int32 or int64). ``chunk``: items per slab (default :func:`chunk_size`).
    """
    target = target.long()
    if not _ENABLED:
        return F.cross_entropy(F.linear(h, weight, bias), target, reduction="none")
    chunk = int(chunk or chunk_size(h.shape[0], weight.shape[0], h.device))
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (h, weight, bias))
    if needs_grad:
        return _LinearCrossEntropy.apply(h, weight, bias, target, chunk)
    # no backward will come: one chunk-sized buffer, no workspace
    with torch.autocast("cuda", enabled=False) if h.device.type == "cuda" else contextlib.nullcontext():
        h, weight = h.float(), weight.float()
        bias = bias.float() if bias is not None else None
        scratch = h.new_empty(h.shape[0] * min(chunk, weight.shape[0]))
        sums, shift = _exp_logits(
            h, weight, bias, chunk, lambda c, start, end: scratch[: h.shape[0] * (end - start)].view(h.shape[0], end - start)
        )
        return shift + sums.log() - _target_logit(h, weight, bias, target)


@torch.no_grad()
def linear_argmax(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, chunk: int | None = None) -> torch.Tensor:
    """``argmax_a (h Wᵀ + b)[:, a]`` ``[B]`` (int64) chunk by chunk; ties go to the lowest index, as ``argmax``.

    The greedy action of a Q head (double Q-learning's target) without a ``[B, N]`` tensor.
    """
    if not _ENABLED:
        return F.linear(h, weight, bias).argmax(-1)
    B, N = h.shape[0], weight.shape[0]
    chunk = int(chunk or chunk_size(B, N, h.device))
    if chunk >= N:
        return F.linear(h, weight, bias).argmax(-1)
    scratch = h.new_empty(B * chunk)
    best_value = best_index = None
    for start, end in _chunks(N, chunk):
        value, index = _logits(scratch[: B * (end - start)].view(B, end - start), h, weight, bias, start, end).max(1)
        if best_value is None:
            best_value, best_index = value, index
            continue
        # strictly greater: an equal value in a later chunk has a higher index and loses, as in argmax
        better = value > best_value
        best_value = torch.where(better, value, best_value)
        best_index = torch.where(better, index + start, best_index)
    return best_index
