"""Full-ranking evaluation: HR@k and NDCG@k over all items, clicks and purchases apart.

The protocol of the SQN lineage (``PROTOCOL.md`` → Evaluation): for **every event** of
every held-out session — the first one included, whose state is all pads — score
**all** items with the recommendation head (seen items are not masked), and find the
logged item's rank. With 0-based rank ``r`` of the logged item::

    HR@k   = mean over events of  [r < k]
    NDCG@k = mean over events of  [r < k] / log2(r + 2)

averaged separately over click events and purchase events. A logged item outside the
top ``max k`` counts as a miss for every k.

**Ties count against the logged item**: ``r`` is the number of *other* items scored
``>=`` it. A model that scores every item alike ranks every logged item last
(``n_items - 1``, a miss), not first; popularity's equal counts tie too, so its HR/NDCG
are the pessimistic end of the range that a tie-break could give. **Non-finite scores
are refused**: NaN/inf in a state's scores (the encoded state, the head's weights or
bias, an overflow of the logged item's score, any logit) raises
:class:`~mcrl_kit.errors.TrainingError` instead of ranking — a NaN compares false with
everything, and would otherwise rank the logged item first.

Never a full sort of the catalogue (45× slower at 70k items); two ways to find ``r``,
the same ranks barring float rounding of near-equal scores:

- any ``score_fn``: the ``[B, n_items]`` logits, checked finite (one sum), then
  ``topk`` of the ``max k + 1`` best scores and how many of them are ``>=`` the logged
  item's (itself among them: fewer than ``max k + 1`` means all of them, else the rank
  is ``max k`` or more);
- :class:`LinearScores` (``scores = encode(s) Wᵀ + b``, every neural algorithm here):
  the head is checked finite once per evaluation, and items with identical rows of
  ``W`` and ``b`` are merged into one column counted as many times (a BLAS may round two
  identical columns of one product differently — it does with MKL on CPU, depending
  on the column's position, the block and the batch —, so these ties are found from
  the weights, not the scores); then ``r`` = ``n_items - 1`` minus the items scored
  strictly below the logged one's ``h · w + b``, counted a cache-sized block of items at
  a time (a NaN is never below: it counts against), with the logged item's own column
  of its block product taken back out. The logits are never materialised and there is
  no ``topk`` (``benchmarks/eval_ranking.py`` times the two side by side).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import KS
from .data.replay import ReplayBuffer
from .errors import TrainingError

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class LinearScores:
    """A score function ``encode(states, lengths) @ weight.T + bias`` whose parts the evaluation may use.

    Calling it gives the full logits (any caller); :func:`target_ranks` instead ranks
    with :func:`linear_ranks`, block by block.
    """

    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    weight: torch.Tensor  # [n_items, d]
    bias: torch.Tensor | None = None  # [n_items]
    #: items per block: small enough that a [batch, block] slice stays in cache (CPU);
    #: on a GPU large blocks keep the kernels few
    block: int | None = None

    def __call__(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return F.linear(self.encode(states, lengths), self.weight, self.bias)


@dataclasses.dataclass(frozen=True)
class DirectRanks:
    """A score function whose algorithm ranks the logged item itself (``Algo.direct_ranks``).

    Calling it gives the full scores (any caller); :func:`target_ranks` calls ``ranks``
    instead, which needs no ``[B, n_items]`` tensor (recency: the state's items and the
    popularity order).
    """

    scores: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ranks: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.scores(states, lengths)


def _not_finite(what: str, problem: str) -> TrainingError:
    return TrainingError(
        what,
        f"{problem} — a diverged or broken model, whose ranks would mean nothing",
        "retrain into a new --out with a lower learning rate (--lr) or other settings, or check that the "
        "checkpoint is the model you meant (a NaN/inf loss during training is refused the same way)",
    )


@dataclasses.dataclass(frozen=True)
class _Head:
    """A linear head prepared for ranking: checked finite, identical item rows merged.

    ``weight``/``bias`` hold one row per distinct ``(w_i, b_i)``; ``row[i]`` is item
    ``i``'s row and ``count[r]`` how many items share row ``r`` (``None``: no two items
    share one, the rows are the items).
    """

    weight: torch.Tensor  # [rows, d] float32
    bias: torch.Tensor  # [rows]
    n_items: int
    row: torch.Tensor | None = None  # [n_items] int64
    count: torch.Tensor | None = None  # [rows] float32


def _prepare_head(weight: torch.Tensor, bias: torch.Tensor | None) -> _Head:
    """Refuse a non-finite head; merge items whose weight row and bias are identical.

    Two items with the same ``(w, b)`` have the same score in exact arithmetic, but a
    BLAS may round their two columns of one product differently: the kernel that
    computes a column depends on its position, on the block width and on the batch
    (measured with MKL on CPU; cuBLAS picks kernels by shape too). So such ties are
    found from the weights, not from the scores. Cost, once per evaluation: two sums
    (finiteness) and a ``unique`` of a key packed from three columns' bits; the exact
    row-wise ``unique`` runs only on the items whose keys collide.
    """
    n_items = weight.shape[0]
    weight = weight.float()
    bias = torch.zeros(n_items, device=weight.device) if bias is None else bias.float()
    if not (bool(torch.isfinite(weight.sum())) and bool(torch.isfinite(bias.sum()))):  # NaN/inf propagate
        finite = torch.isfinite(weight).all(1) & torch.isfinite(bias)
        if not bool(finite.all()):  # (else only the sum overflowed)
            raise _not_finite("evaluation", f"the model's item head is not finite (NaN/inf weight or bias) for "
                                            f"{int((~finite).sum())} of {n_items} items")
    # + 0.0: -0.0 becomes +0.0 (the same score, other bits); the key packs 64 of a row's bits exactly
    first, last, b = ((x + 0.0).view(torch.int32).long() for x in (weight[:, 0], weight[:, -1], bias))
    key = (first ^ b) * 2**32 + (last & 0xFFFFFFFF)
    _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    if len(counts) == n_items:
        return _Head(weight, bias, n_items)
    shared = counts[inverse] > 1  # items whose key another item has: compare their whole rows
    alone, suspects = (~shared).nonzero().squeeze(1), shared.nonzero().squeeze(1)
    rows = torch.cat([weight[suspects], bias[suspects, None]], 1) + 0.0
    unique, which, size = torch.unique(rows.view(torch.int32), dim=0, return_inverse=True, return_counts=True)
    if len(unique) == len(suspects):  # keys alike, rows not
        return _Head(weight, bias, n_items)
    unique = unique.view(torch.float32)
    row = torch.empty(n_items, dtype=torch.long, device=weight.device)
    row[alone] = torch.arange(len(alone), device=weight.device)
    row[suspects] = len(alone) + which
    return _Head(
        torch.cat([weight[alone], unique[:, :-1]]).contiguous(),
        torch.cat([bias[alone], unique[:, -1]]).contiguous(),
        n_items,
        row,
        torch.cat([torch.ones(len(alone), device=weight.device), size.float()]),
    )


def linear_ranks(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor,
                 block: int | None = None) -> torch.Tensor:
    """0-based rank of ``target`` under the scores ``h Wᵀ + b``: how many *other* items score ``>=`` it.

    Ties count against the logged item (all-equal scores give ``n_items - 1``, a miss);
    items with identical rows of ``W`` and ``b`` always tie. Non-finite ``h``, head or
    own score raise :class:`~mcrl_kit.errors.TrainingError`. See the module docstring.
    """
    return _linear_ranks(h, _prepare_head(weight, bias), target, block)


def _linear_ranks(h: torch.Tensor, head: _Head, target: torch.Tensor, block: int | None) -> torch.Tensor:
    n_rows = head.weight.shape[0]
    block = min(block or (256 if h.device.type == "cpu" else 16_384), n_rows)
    h = h.float()
    finite = torch.isfinite(h).all(1)
    if not bool(finite.all()):
        raise _not_finite("evaluation", f"the model's scores are not finite (NaN/inf in the encoded state) for "
                                        f"{int((~finite).sum())} of {len(h)} states of a batch")
    if head.row is not None:
        target = head.row[target]
    weight, bias = head.weight, head.bias
    own = (h * weight[target]).sum(1) + bias[target]  # [B]: h · w_t + b_t
    finite = torch.isfinite(own)
    if not bool(finite.all()):
        raise _not_finite("evaluation", f"the model's scores are not finite (NaN/inf, an overflow) for "
                                        f"{int((~finite).sum())} of {len(h)} states of a batch")
    # rows sorted by their logged item: each block product's own columns are one slice of them
    order = torch.argsort(target)
    sorted_target = target[order]
    edges = torch.searchsorted(sorted_target, torch.arange(0, n_rows + block, block, device=h.device)).tolist()
    own_col_at = sorted_target % block  # the column of each sorted row's logged item in its block
    in_product = torch.empty(h.shape[0], device=h.device)  # that column's score, as the block product has it
    below = torch.zeros(h.shape[0], device=h.device)  # float: exact up to 2^24 items
    buf = h.new_empty(h.shape[0], block)  # one buffer reused: no fresh pages per block
    for k, start in enumerate(range(0, n_rows, block)):
        stop = min(start + block, n_rows)
        out = torch.addmm(bias[start:stop], h, weight[start:stop].T, out=buf[:, : stop - start])
        a, b = edges[k], edges[k + 1]
        if b > a:
            in_product[a:b] = out[order[a:b], own_col_at[a:b]]
        out.lt_(own[:, None])  # 1.0 where an item scores strictly below; NaN is never below: it counts against
        below += out.sum(1) if head.count is None else torch.mv(out, head.count[start:stop])
    # the logged item's own column was compared with its dot-product score: take it back out
    self_below = torch.zeros_like(below)
    self_below[order] = (in_product < own[order]).float()
    if head.count is not None:
        self_below *= head.count[target]  # its whole group of identical rows: all tie with it
    return (head.n_items - 1 - (below - self_below)).long()


def _logit_ranks(logits: torch.Tensor, target: torch.Tensor, max_k: int) -> torch.Tensor:
    """Rank of ``target`` among ``[B, n_items]`` logits: how many other items score ``>=`` it, at most ``max_k``.

    Of the ``max_k + 1`` best scores, ``c`` are ``>=`` the logged item's (itself among
    them). ``c <= max_k``: the next best is below it, so these are all, and the rank is
    ``c - 1``. ``c = max_k + 1``: at least ``max_k`` others tie or beat it: ``max_k``.
    """
    if not bool(torch.isfinite(logits.sum())):  # NaN/inf propagate (an overflowing sum is checked exactly)
        bad = (~torch.isfinite(logits)).any(1)
        if bool(bad.any()):
            raise _not_finite("evaluation", f"the model's scores are not finite (NaN/inf) for {int(bad.sum())} "
                                            f"of {len(logits)} states of a batch")
    best = torch.topk(logits, min(max_k + 1, logits.shape[1]), dim=1, sorted=False).values
    return (best >= logits.gather(1, target[:, None])).sum(1) - 1


@torch.inference_mode()
def target_ranks(
    score_fn: ScoreFn,
    buffer: ReplayBuffer,
    max_k: int = 20,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """0-based rank of each row's logged item among all items, ``max_k`` if outside the top.

    ``score_fn(states [B, L] int64, lengths [B] int64) -> logits [B, n_items]``.
    Returns an int64 tensor of ``len(buffer)`` ranks (on CPU). The rank counts the other
    items scored ``>=`` the logged one (ties against it); non-finite scores raise
    :class:`~mcrl_kit.errors.TrainingError`.
    """
    n = len(buffer)
    ranks = torch.empty(n, dtype=torch.long)
    head = None
    if isinstance(score_fn, LinearScores):  # checked and merged once per evaluation, not per batch
        head = _prepare_head(score_fn.weight.to(device), None if score_fn.bias is None else score_fn.bias.to(device))
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="evaluate", disable=not progress, leave=False):
        sl = slice(start, min(start + batch_size, n))
        states = buffer.state[sl].to(device, torch.long)
        lengths = buffer.len_state[sl].to(device)
        target = buffer.action[sl].to(device, torch.long)
        if head is not None:
            rank = _linear_ranks(score_fn.encode(states, lengths), head, target, score_fn.block)
        elif isinstance(score_fn, DirectRanks):
            rank = score_fn.ranks(states, lengths, target)
        else:
            rank = _logit_ranks(score_fn(states, lengths), target, max_k)
        ranks[sl] = rank.clamp_(max=max_k).cpu()
    return ranks


def metrics_from_ranks(ranks: torch.Tensor, is_buy: torch.Tensor, ks: Sequence[int] = KS) -> dict[str, dict[str, float]]:
    """``{"click": {"HR@5": …, "NDCG@5": …, …}, "purchase": {…}}`` from per-event ranks."""
    ranks = ranks.double()
    out: dict[str, dict[str, float]] = {}
    for kind, mask in (("click", ~is_buy), ("purchase", is_buy)):
        r = ranks[mask]
        row: dict[str, float] = {}
        for k in ks:
            hit = r < k
            row[f"HR@{k}"] = float(hit.double().mean()) if len(r) else float("nan")
            gain = torch.where(hit, 1.0 / torch.log2(r + 2.0), torch.zeros_like(r))
            row[f"NDCG@{k}"] = float(gain.mean()) if len(r) else float("nan")
        out[kind] = row
    out_counts = {"click": int((~is_buy).sum()), "purchase": int(is_buy.sum())}
    out["count"] = out_counts  # type: ignore[assignment]
    return out


def evaluate(
    score_fn: ScoreFn,
    buffer: ReplayBuffer,
    ks: Sequence[int] = KS,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """HR@k and NDCG@k for clicks and purchases of every row of ``buffer``."""
    ranks = target_ranks(score_fn, buffer, max(ks), batch_size, device, progress)
    return metrics_from_ranks(ranks, buffer.is_buy.cpu(), ks)


def flat_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """``{"purchase/NDCG@10": …}`` — the nested metrics flattened for tables and logs."""
    return {
        f"{prefix}{kind}/{name}": value
        for kind in ("purchase", "click")
        if kind in metrics
        for name, value in metrics[kind].items()
    }
