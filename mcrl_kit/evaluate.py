"""Full-ranking evaluation: HR@k and NDCG@k over all items, clicks and purchases apart.

The protocol of the SQN lineage (``PROTOCOL.md`` → Evaluation): for **every event** of
every held-out session — the first one included, whose state is all pads — score
**all** items with the recommendation head (seen items are not masked), and find the
logged item's rank. With 0-based rank ``r`` of the logged item::

    HR@k   = mean over events of  [r < k]
    NDCG@k = mean over events of  [r < k] / log2(r + 2)

averaged separately over click events and purchase events. Ranks come from ``topk``
(``max k`` best items), never a full sort of the catalogue (45× slower at 70k items);
a logged item outside the top ``max k`` counts as a miss for every k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .data.replay import ReplayBuffer

KS = (5, 10, 20)
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
