"""Trust, ranking: a broken model never scores well.

Hostile heads and scores for the full-ranking evaluation (``mcrl_kit/evaluate.py``): ties
count against the logged item (its rank is the number of *other* items scored ``>=`` it),
on the block-wise path of linear heads and on the logits path alike; non-finite scores are
refused with a :class:`~mcrl_kit.errors.TrainingError`, never ranked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcrl_kit.data.replay import ReplayBuffer
from mcrl_kit.errors import TrainingError
from mcrl_kit.evaluate import KS, LinearScores, evaluate, linear_ranks, target_ranks

N_ITEMS, D = 203, 16  # 203: no block size below divides it, the last block is short


def _reference(h, weight, bias, target, tol=1e-4):
    """Bounds on the rank, by hand in float64: items with the logged item's very row always tie
    (count against it); other items count when they score above it, and scores within ``tol``
    of it — a float32 rounding could put them either side — are allowed either way."""
    bias = torch.zeros(len(weight)) if bias is None else bias
    s = h.double() @ weight.double().T + bias.double()
    own = s.gather(1, target[:, None])
    rows = torch.cat([weight, bias[:, None]], 1)
    twin = (rows[target][:, None, :] == rows[None]).all(2)  # [B, n]: identical rows, itself included
    lo = ((s > own + tol) & ~twin).sum(1) + twin.sum(1) - 1
    hi = ((s >= own - tol) & ~twin).sum(1) + twin.sum(1) - 1
    return lo, hi


def _head_with_copies(seed, with_bias, placement, block):
    """A random head in which each logged item's row (and bias) is a copy of another item's row:
    in the same block as the logged item, or in another block."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(N_ITEMS, D, generator=g)
    bias = torch.randn(N_ITEMS, generator=g) if with_bias else None
    used: set[int] = set()
    pairs = []  # (logged item t, the item j whose row t gets)
    for t in torch.randperm(N_ITEMS, generator=g).tolist():
        if placement == "same block":  # t's neighbour inside t's block
            lo = t - t % block
            j = lo + (t - lo + 1) % min(block, N_ITEMS - lo)
        else:  # half the catalogue away: another block for every block size below N_ITEMS / 2
            j = (t + N_ITEMS // 2) % N_ITEMS
        if j != t and not {t, j} & used:
            used |= {t, j}
            pairs.append((t, j))
        if len(pairs) == 24:
            break
    for t, j in pairs:
        weight[t] = weight[j]
        if bias is not None:
            bias[t] = bias[j]
    targets = torch.tensor([t for t, _ in pairs])
    h = torch.randn(96, D, generator=g)
    target = targets[torch.arange(96) % len(targets)]
    return h, weight, bias, target


@pytest.mark.trust("ranking")
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(
    ("block", "placement"),
    [(b, "same block") for b in (2, 7, 64, 256)] + [(b, "other block") for b in (1, 2, 7, 64)],
)
def test_duplicated_head_rows_tie_against_the_logged_item(block, placement, with_bias):
    h, weight, bias, target = _head_with_copies(block, with_bias, placement, block)
    twin = (weight[target][:, None] == weight[None]).all(2).sum(1) - 1
    assert (twin == 1).all()  # the test's premise: every logged item has exactly one copy
    ranks = linear_ranks(h, weight, bias, target, block)
    lo, hi = _reference(h, weight, bias, target)
    assert ((lo <= ranks) & (ranks <= hi)).all()
    assert (lo == hi).float().mean() > 0.95  # the bounds pin almost every rank exactly
    # the logged item placed first, its copy with it: a tie, so rank 1 (HR@1 = 0), never 0
    best = weight[target].clone()
    h_best = best * 100.0  # scores ~100·|w|², far above any other item
    ranks = linear_ranks(h_best, weight, bias, target, block)
    lo, hi = _reference(h_best, weight, bias, target)
    assert ((lo <= ranks) & (ranks <= hi)).all() and (ranks >= twin).all()


@pytest.mark.trust("ranking")
@pytest.mark.parametrize("block", [1, 7, 256])
def test_a_collapsed_head_ranks_every_item_last(block):
    """All items score the same (zero head, a constant bias, every row one copy): each logged
    item ties with all n_items - 1 others — rank n_items - 1, a miss at every k."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(50, D, generator=g)
    target = torch.randint(0, N_ITEMS, (50,), generator=g)
    one_row = torch.randn(1, D, generator=g).expand(N_ITEMS, D).contiguous()
    for weight, bias in (
        (torch.zeros(N_ITEMS, D), None),
        (torch.zeros(N_ITEMS, D), torch.full((N_ITEMS,), 0.3)),
        (one_row, None),
        (one_row, torch.full((N_ITEMS,), -2.0)),
    ):
        assert linear_ranks(h, weight, bias, target, block).tolist() == [N_ITEMS - 1] * 50


def _buffer(actions, buys, n_items):
    n = len(actions)
    return ReplayBuffer.from_events(np.arange(n), np.array(actions), np.array(buys), n_items=n_items, state_len=2)


@pytest.mark.trust("ranking")
def test_a_collapsed_model_scores_zero_through_evaluate():
    buf = _buffer(list(range(40)), [0, 1] * 20, 40)
    constant = LinearScores(lambda s, l: torch.ones(len(s), 4), torch.full((40, 4), 0.25))
    plain = lambda s, l: constant(s, l)  # the same scores through the logits path  # noqa: E731
    for fn in (constant, plain):
        assert target_ranks(fn, buf).tolist() == [20] * 40  # beyond the top 20
        m = evaluate(fn, buf)
        assert all(m[kind][f"{name}@{k}"] == 0 for kind in ("click", "purchase") for name in ("HR", "NDCG") for k in KS)


@pytest.mark.trust("ranking")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_encoded_states_are_refused(bad):
    g = torch.Generator().manual_seed(1)
    weight, h = torch.randn(N_ITEMS, D, generator=g), torch.randn(10, D, generator=g)
    h[3, 5] = bad
    h[7, 0] = bad
    with pytest.raises(TrainingError, match=r"not finite .* for 2 of 10 states") as err:
        linear_ranks(h, weight, None, torch.arange(10), 64)
    assert err.value.what == "evaluation" and "--lr" in err.value.fix


@pytest.mark.trust("ranking")
def test_nan_in_one_weight_row_is_refused():
    """A NaN in one row of the head makes one column NaN — for every state, whichever item is logged."""
    g = torch.Generator().manual_seed(2)
    weight, h = torch.randn(N_ITEMS, D, generator=g), torch.randn(10, D, generator=g)
    weight[150, 3] = math.nan
    with pytest.raises(TrainingError, match=r"head is not finite .* for 1 of 203 items"):
        linear_ranks(h, weight, torch.zeros(N_ITEMS), torch.zeros(10, dtype=torch.long), 64)  # logged: item 0
    buf = _buffer([0, 1, 2, 3], [0, 0, 1, 1], N_ITEMS)
    with pytest.raises(TrainingError, match="head is not finite"):
        evaluate(LinearScores(lambda s, l: torch.randn(len(s), D), weight), buf)


@pytest.mark.trust("ranking")
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_bias_is_refused(bad):
    g = torch.Generator().manual_seed(3)
    weight, h, bias = torch.randn(N_ITEMS, D, generator=g), torch.randn(10, D, generator=g), torch.zeros(N_ITEMS)
    bias[17] = bad
    with pytest.raises(TrainingError, match=r"head is not finite .* for 1 of 203 items"):
        linear_ranks(h, weight, bias, torch.arange(10), 256)


@pytest.mark.trust("ranking")
def test_finite_head_whose_scores_overflow_is_refused():
    h = torch.full((4, D), 1e20)
    weight = torch.full((N_ITEMS, D), 1e20)  # finite, but h · w = 1.6e41 > float32's 3.4e38
    with pytest.raises(TrainingError, match=r"not finite \(NaN/inf, an overflow\) for 4 of 4 states"):
        linear_ranks(h, weight, None, torch.arange(4), 64)


# --- the logits path (any score function: popularity, --amp on CUDA) ----------------------------
def _score_table(table):
    """A score function that gives row ``i`` of ``table`` to the state whose first item is ``i``."""
    table = torch.as_tensor(table, dtype=torch.float32)
    return lambda states, lengths: table[states[:, 0].clamp(max=len(table) - 1)]


@pytest.mark.trust("ranking")
def test_logits_path_counts_ties_against_the_logged_item():
    # 30 items in tied triples: items 3q, 3q+1, 3q+2 all score q. Every event's state is all
    # pads (one event per session), so every row gets the same scores.
    n = 30
    scores = (torch.arange(n) // 3).float()[None]
    logged = [29, 28, 27, 26, 21, 18, 3, 0]
    buf = _buffer(logged, [0] * len(logged), n)
    # by hand: the other items scored >= the logged one — its two twins and every higher triple
    by_hand = [n - 3 * (i // 3) - 1 for i in logged]
    assert by_hand == [2, 2, 2, 5, 8, 11, 26, 29]
    for max_k in (1, 2, 3, 5, 9, 20, n):
        assert target_ranks(_score_table(scores), buf, max_k=max_k).tolist() == [min(r, max_k) for r in by_hand]
    # the linear path agrees on the same scores (a one-column head: exact products)
    lin = LinearScores(lambda s, l: torch.ones(len(s), 1), scores.T.contiguous())
    assert target_ranks(lin, buf, max_k=n).tolist() == by_hand


@pytest.mark.trust("ranking")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_logits_path_refuses_non_finite_scores(bad):
    scores = torch.arange(30.0)[None]
    scores[0, 4] = bad  # not a logged item's score: a NaN elsewhere must not hide
    buf = _buffer([0, 1, 2], [0, 0, 1], 30)
    with pytest.raises(TrainingError, match=r"not finite \(NaN/inf\) for 3 of 3 states"):
        target_ranks(_score_table(scores), buf)


@pytest.mark.trust("ranking")
def test_popularity_with_equal_counts_ranks_ties_against_the_logged_item():
    from mcrl_kit.algos import build_algo
    from mcrl_kit.config import ModelConfig
    from mcrl_kit.train import score_fn

    # train: items 0, 1, 2 twice each, item 3 once; items 4 and 5 never
    train_items = [0, 1, 2, 0, 1, 2, 3]
    train = ReplayBuffer.from_events(np.zeros(7), np.array(train_items), np.zeros(7), n_items=6, state_len=3)
    algo = build_algo("popularity", 6, 3, ModelConfig(), {})
    algo.fit(train)
    counts = np.bincount(train_items, minlength=6)
    held_out = [0, 2, 3, 4, 1, 5]
    buys = [0, 0, 0, 0, 1, 1]
    test = ReplayBuffer.from_events(np.zeros(6), np.array(held_out), np.array(buys), n_items=6, state_len=3)
    fn = score_fn(algo, torch.device("cpu"))
    # by hand: the number of other items counted at least as often as the logged one
    by_hand = [int((counts >= counts[i]).sum()) - 1 for i in held_out]
    assert by_hand == [2, 2, 3, 5, 2, 5]
    assert target_ranks(fn, test, max_k=5).tolist() == by_hand  # 5 = n_items - 1: the full ranks
    m = evaluate(fn, test, ks=(1, 3, 5))
    clicks = [r for r, b in zip(by_hand, buys) if not b]
    assert m["click"]["HR@1"] == 0  # the three most popular items tie: none is a hit at 1
    assert m["click"]["HR@3"] == pytest.approx(sum(r < 3 for r in clicks) / len(clicks))
    assert m["click"]["NDCG@5"] == pytest.approx(sum(1 / math.log2(r + 2) for r in clicks if r < 5) / len(clicks))
    assert m["purchase"]["HR@3"] == pytest.approx(0.5) and m["purchase"]["HR@5"] == pytest.approx(0.5)
