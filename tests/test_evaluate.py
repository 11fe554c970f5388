"""Full-ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcrl_kit.data.replay import ReplayBuffer
from mcrl_kit.evaluate import evaluate, flat_metrics, metrics_from_ranks, target_ranks


def _buffer(actions, buys, n_items, one_session=False):
    n = len(actions)
    session = np.zeros(n) if one_session else np.arange(n)
    return ReplayBuffer.from_events(session, np.array(actions), np.array(buys), n_items=n_items, state_len=2)


def test_hand_computed_hr_and_ndcg():
    # 30 items; the score of item i is fixed per row so the rank of the target is known
    n_items = 30
    # targets placed at ranks 0, 4, 5, 19, 25 (clicks) and 1, 9 (purchases)
    ranks_wanted = [0, 4, 5, 19, 25, 1, 9]
    buys = [0, 0, 0, 0, 0, 1, 1]
    actions = [3, 7, 11, 2, 29, 0, 5]
    buf = _buffer(actions, buys, n_items, one_session=True)  # distinct states identify rows
    order = {}
    for row, (a, r) in enumerate(zip(actions, ranks_wanted)):
        others = [i for i in range(n_items) if i != a]
        order[row] = [*others[:r], a, *others[r:]]
    row_of = {tuple(buf.state[i].tolist()): i for i in range(len(actions))}

    def score(states, lengths):
        out = torch.zeros(len(states), n_items)
        for j, s in enumerate(states.tolist()):
            for pos, item in enumerate(order[row_of[tuple(s)]]):
                out[j, item] = n_items - pos
        return out

    ranks = target_ranks(score, buf, max_k=20, batch_size=3)
    assert ranks.tolist() == [0, 4, 5, 19, 20, 1, 9]  # rank 25 is outside top-20 → 20
    m = evaluate(score, buf, batch_size=4)
    g = lambda r: 1 / math.log2(r + 2)  # noqa: E731
    assert m["click"]["HR@5"] == pytest.approx(2 / 5)
    assert m["click"]["HR@10"] == pytest.approx(3 / 5)
    assert m["click"]["HR@20"] == pytest.approx(4 / 5)
    assert m["click"]["NDCG@5"] == pytest.approx((g(0) + g(4)) / 5)
    assert m["click"]["NDCG@10"] == pytest.approx((g(0) + g(4) + g(5)) / 5)
    assert m["click"]["NDCG@20"] == pytest.approx((g(0) + g(4) + g(5) + g(19)) / 5)
    assert m["purchase"]["HR@5"] == pytest.approx(1 / 2)
    assert m["purchase"]["HR@10"] == pytest.approx(1.0)
    assert m["purchase"]["NDCG@10"] == pytest.approx((g(1) + g(9)) / 2)
    assert m["count"] == {"click": 5, "purchase": 2}
    flat = flat_metrics(m, "val/")
    assert flat["val/purchase/HR@10"] == pytest.approx(1.0)


def test_metrics_from_ranks_edges():
    m = metrics_from_ranks(torch.tensor([0, 20]), torch.tensor([False, False]), ks=(1, 20))
    assert m["click"]["HR@1"] == 0.5 and m["click"]["NDCG@1"] == 0.5
    assert m["click"]["HR@20"] == 0.5
    assert math.isnan(m["purchase"]["HR@1"])  # no purchases → undefined, not 0


def test_batching_does_not_change_results():
    torch.manual_seed(0)
    w = torch.randn(12, 50)
    buf = _buffer(list(np.random.default_rng(0).integers(0, 50, 200)), [0, 1] * 100, 50)

    def score(states, lengths):
        return torch.nn.functional.one_hot(states[:, 0], 51)[:, :12].float() @ w

    a = evaluate(score, buf, batch_size=7)
    b = evaluate(score, buf, batch_size=1000)
    assert a == b


# --- the block-wise ranking of linear heads (LinearScores) against topk --------------------
@pytest.mark.parametrize("block", [1, 7, 64, 1000])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_ranks_equal_topk_ranks(block, with_bias):
    from mcrl_kit.evaluate import LinearScores

    g = torch.Generator().manual_seed(block)
    n_items, d, n = 203, 8, 150  # 203 is not a multiple of any block: a short last block
    weight = torch.randn(n_items, d, generator=g)
    bias = torch.randn(n_items, generator=g) if with_bias else None
    actions = torch.randint(0, n_items, (n,), generator=g)
    actions[:4] = torch.tensor([0, n_items - 1, block % n_items, (block - 1) % n_items])  # block edges
    buf = _buffer(actions.tolist(), [0] * n, n_items)
    embed = torch.randn(n_items + 1, d, generator=g)

    def encode(states, lengths):
        return embed[states].sum(1) + lengths[:, None].float()

    fast = LinearScores(encode, weight, bias, block=block)
    plain = lambda s, l: fast(s, l)  # the same scores, through topk  # noqa: E731
    for max_k in (1, 20, n_items):
        assert torch.equal(target_ranks(fast, buf, max_k, batch_size=64), target_ranks(plain, buf, max_k, batch_size=64))
    # unclamped, the count is the full 0-based rank: the other items scored >= the logged one
    from mcrl_kit.evaluate import linear_ranks

    h = encode(buf.state.long(), buf.len_state.long())
    logits = torch.nn.functional.linear(h, weight, bias)
    full = (logits >= logits.gather(1, actions[:, None])).sum(1) - 1
    assert torch.equal(linear_ranks(h, weight, bias, actions, block), full)
    assert full.max() > 20  # the test reaches past the top-k


def test_linear_ranks_count_ties_against_the_logged_item():
    from mcrl_kit.evaluate import linear_ranks

    weight = torch.tensor([[1.0], [2.0], [2.0], [2.0], [0.5]])
    h = torch.ones(3, 1)
    target = torch.tensor([1, 3, 4])  # items 1-3 tie at 2.0: two others each; item 4 is below all four others
    for block in (1, 2, 3, 5):
        assert linear_ranks(h, weight, None, target, block=block).tolist() == [2, 2, 4]
    # the same scores, not the same rows (weights 1 and 2 against biases 1 and 0): ties all the same
    weight2 = torch.tensor([[1.0], [1.0], [2.0], [2.0], [0.5]])
    bias2 = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])
    for block in (1, 2, 3, 5):
        assert linear_ranks(h, weight2, bias2, target, block=block).tolist() == [2, 2, 4]


def test_logits_ranks_count_ties_against_the_logged_item():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.5]])
    buf = _buffer([1, 3, 4, 0], [0, 0, 1, 1], 5)  # every state all pads: every row gets ``scores``
    fn = lambda s, l: scores.expand(len(s), -1)  # noqa: E731
    assert target_ranks(fn, buf, max_k=4).tolist() == [2, 2, 4, 3]
    assert target_ranks(fn, buf, max_k=2).tolist() == [2, 2, 2, 2]


def test_neural_algorithms_rank_blockwise_popularity_by_topk(tiny_data):
    from mcrl_kit.algos import build_algo
    from mcrl_kit.config import ModelConfig
    from mcrl_kit.evaluate import LinearScores
    from mcrl_kit.train import score_fn

    buf = tiny_data.replay("val")
    for name in ("supervised", "sqn", "sa2c", "snqn", "mcrl"):
        torch.manual_seed(0)
        algo = build_algo(name, tiny_data.n_items, tiny_data.config.state_len, ModelConfig(backbone="gru"), {}).eval()
        fn = score_fn(algo, torch.device("cpu"))
        assert isinstance(fn, LinearScores), name
        plain = lambda s, l, a=algo: a.scores(s, l)  # noqa: E731
        with torch.inference_mode():
            assert torch.equal(fn(buf.state[:5].long(), buf.len_state[:5].long()), plain(buf.state[:5].long(), buf.len_state[:5].long()))
        assert torch.equal(target_ranks(fn, buf), target_ranks(plain, buf)), name
    popularity = build_algo("popularity", tiny_data.n_items, tiny_data.config.state_len, ModelConfig(), {})
    assert not isinstance(score_fn(popularity, torch.device("cpu")), LinearScores)  # ranked from its logits
