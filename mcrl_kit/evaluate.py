"""Full-ranking evaluation: HR@k and NDCG@k over all items, clicks and purchases apart.

The protocol of the SQN lineage (``PROTOCOL.md`` → Evaluation): for **every event** of
every held-out session — the first one included, whose state is all pads — score
**all** items with the recommendation head (seen items are not masked), and find the
logged item's rank. With 0-based rank ``r`` of the logged item::

    HR@k   = mean over events of  [r < k]
    NDCG@k = mean over events of  [r < k] / log2(r + 2)

averaged separately over click events and purchase events. A logged item outside the
top ``max k`` counts as a miss for every k. Never a full sort of the catalogue (45×
slower at 70k items); two ways to find ``r``, the same ranks barring exact ties:

- any ``score_fn``: ``topk`` of the ``[B, n_items]`` logits (``max k`` best items) and
  the logged item's position among them (ties: ``topk``'s order, e.g. popularity's
  equal counts);
- :class:`LinearScores` (``scores = encode(s) Wᵀ + b``, every neural algorithm here):
  ``r`` = the number of items scored strictly above the logged one, counted a
  cache-sized block of items at a time — the logits are never materialised and there
  is no ``topk`` (``benchmarks/eval_ranking.py`` times the two side by side). A tie
  counts in the logged item's favour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data.replay import ReplayBuffer

KS = (5, 10, 20)
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


def linear_ranks(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor,
                 block: int | None = None) -> torch.Tensor:
    """0-based rank of ``target`` under the scores ``h Wᵀ + b``: how many items score strictly higher.

    The logged item's own score is the dot product ``h · w_target + b_target``; a
    matrix product may round that item's score differently by an ulp, so its own
    column is excluded from the count rather than compared with itself.
    """
    n_items = weight.shape[0]
    block = block or (256 if h.device.type == "cpu" else 16_384)
    h, weight = h.float(), weight.float()
    bias = torch.zeros(n_items, device=h.device) if bias is None else bias.float()
    own = (h * weight[target]).sum(1) + bias[target]  # [B]
    count = torch.zeros(h.shape[0], device=h.device)  # float: exact up to 2^24 items
    buf = h.new_empty(h.shape[0], min(block, n_items))  # one buffer reused: no fresh pages per block
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        out = torch.addmm(bias[start:stop], h, weight[start:stop].T, out=buf[:, : stop - start])
        above = out.sub_(own[:, None]).gt_(0)  # 1.0 where an item scores above the logged one
        here = (target >= start) & (target < stop)  # rows whose logged item is in this block
        above[here, target[here] - start] = 0.0  # the logged item itself
        count += above.sum(1)
    return count.long()


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
    Returns an int64 tensor of ``len(buffer)`` ranks (on CPU).
    """
    n = len(buffer)
    ranks = torch.empty(n, dtype=torch.long)
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="evaluate", disable=not progress, leave=False):
        sl = slice(start, min(start + batch_size, n))
        states = buffer.state[sl].to(device, torch.long)
        lengths = buffer.len_state[sl].to(device)
        target = buffer.action[sl].to(device, torch.long)
        if isinstance(score_fn, LinearScores):
            h = score_fn.encode(states, lengths)
            rank = linear_ranks(h, score_fn.weight, score_fn.bias, target, score_fn.block).clamp_(max=max_k)
        else:
            logits = score_fn(states, lengths)
            top = torch.topk(logits, max_k, dim=1, sorted=True).indices
            hit = top == target[:, None]
            # rank = position of the first hit; rows without a hit get max_k
            rank = torch.where(hit.any(1), hit.float().argmax(1), torch.full_like(target, max_k))
        ranks[sl] = rank.cpu()
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
