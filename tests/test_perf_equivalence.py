"""The fast paths give the plain paths' numbers: fused cross-entropy, chunked argmax,
the training step of every algorithm, and the sparse-embedding switch's plumbing.

Values are compared at float32 rounding (the chunked sums add in another order);
no test here looks at a clock — ``benchmarks/bench.py`` (``make bench``) measures the speed.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcrl_kit.algos import build_algo
from mcrl_kit.config import ModelConfig
from mcrl_kit.fused import linear_argmax, linear_cross_entropy, use_fused
from mcrl_kit.train import make_optimizer

TOL = {"rtol": 1e-5, "atol": 1e-5}  # float32: the one-hot is subtracted apart, in another order


def head_and_batch(n_items: int, batch: int = 9, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(d, n_items)
    with torch.no_grad():
        head.weight.copy_(torch.randn(n_items, d, generator=g))
        head.bias.copy_(torch.randn(n_items, generator=g))
    h = torch.randn(batch, d, generator=g)
    target = torch.randint(0, n_items, (batch,), generator=g)
    target[0] = target[1]  # two rows on one item: the one-hot gradients must add up
    target[2] = n_items - 1  # the last item: the last, partial chunk
    return head, h, target


def ce_and_grads(head, h, target, weight, fn):
    head.zero_grad(set_to_none=True)
    h = h.clone().requires_grad_(True)
    loss = fn(h, head.weight, head.bias, target)
    (loss * weight).sum().backward()
    return loss.detach(), h.grad, head.weight.grad, head.bias.grad


def plain_ce(h, w, b, t):
    return F.cross_entropy(F.linear(h, w, b), t.long(), reduction="none")


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, None])  # 1000 > n: one chunk; 7 does not divide 97
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_fused_cross_entropy_equals_plain_values_and_grads(chunk, dtype):
    head, h, target = head_and_batch(97)
    # per-row weights of either sign and a zero: the weighted CEs of SAC, SA2C and MCRL
    weight = torch.linspace(-1.5, 2.0, len(h))
    weight[3] = 0.0
    expected = ce_and_grads(head, h, target.long(), weight, plain_ce)
    got = ce_and_grads(head, h, target.to(dtype), weight, lambda *a: linear_cross_entropy(*a, chunk=chunk))
    for e, g, name in zip(expected, got, ("loss", "grad h", "grad W", "grad b")):
        torch.testing.assert_close(g, e, **TOL, msg=name)


def test_fused_cross_entropy_is_stable_for_large_logits():
    head, h, target = head_and_batch(50)
    h = h * 1e3  # logits in the thousands: exp would overflow without the max shift
    expected = plain_ce(h, head.weight, head.bias, target)
    got = linear_cross_entropy(h, head.weight, head.bias, target, chunk=16)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-3)


def test_fused_cross_entropy_without_bias_and_frozen_head():
    head, h, target = head_and_batch(33)
    h = h.requires_grad_(True)
    w = head.weight.detach()  # a frozen head: only h gets a gradient
    got = linear_cross_entropy(h, w, None, target, chunk=10)
    expected = plain_ce(h, w, None, target)
    torch.testing.assert_close(got, expected, **TOL)
    (g_got,) = torch.autograd.grad(got.sum(), h)
    (g_exp,) = torch.autograd.grad(expected.sum(), h)
    torch.testing.assert_close(g_got, g_exp, **TOL)


def test_use_fused_false_is_the_plain_formula():
    head, h, target = head_and_batch(20)
    with use_fused(False):
        got = linear_cross_entropy(h, head.weight, head.bias, target)
    assert torch.equal(got, plain_ce(h, head.weight, head.bias, target))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_cross_entropy_under_cuda_autocast():
    head, h, target = head_and_batch(5000, batch=64, d=32)
    head, h, target = head.cuda(), h.cuda(), target.cuda()
    weight = torch.rand(len(h), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        expected = ce_and_grads(head, h, target, weight, lambda h, w, b, t: F.cross_entropy(F.linear(h, w, b), t, reduction="none"))
        got = ce_and_grads(head, h, target, weight, linear_cross_entropy)
    for e, g in zip(expected, got):
        assert g.dtype == e.dtype or g.dtype == torch.float32
        # the plain path rounds the logits to bf16, the fused one keeps float32
        torch.testing.assert_close(g.float(), e.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("chunk", [1, 5, 64, None])
def test_linear_argmax_equals_argmax(chunk):
    head, h, _ = head_and_batch(61, batch=16)
    expected = head(h).argmax(-1)
    assert torch.equal(linear_argmax(h, head.weight, head.bias, chunk=chunk), expected)
    # ties go to the lowest index, across chunk boundaries too
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(1.0)
        head.bias[[7, 40]] = 2.0
    assert linear_argmax(h, head.weight, head.bias, chunk=chunk).tolist() == [7] * 16


def test_two_cross_entropies_before_one_backward_keep_their_own_workspace():
    # SQN-like: two item-sized CEs in one graph; each must backpropagate its own logits
    head_a, h, target = head_and_batch(40, seed=1)
    head_b, _, _ = head_and_batch(40, seed=2)
    weight = torch.rand(len(h))

    def both(fn):
        for head in (head_a, head_b):
            head.zero_grad(set_to_none=True)
        x = h.clone().requires_grad_(True)
        loss = (fn(x, head_a.weight, head_a.bias, target) * weight).sum() + fn(x, head_b.weight, head_b.bias, target).sum()
        loss.backward()
        return loss.detach(), x.grad, head_a.weight.grad, head_b.weight.grad, head_b.bias.grad

    expected = both(plain_ce)
    got = both(lambda *a: linear_cross_entropy(*a, chunk=9))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, **TOL)


def test_backward_twice_is_refused_not_wrong():
    head, h, target = head_and_batch(30)
    loss = linear_cross_entropy(h.requires_grad_(True), head.weight, head.bias, target).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_no_grad_gives_the_same_values():
    head, h, target = head_and_batch(70)
    with torch.no_grad():
        got = linear_cross_entropy(h, head.weight, head.bias, target, chunk=16)
    torch.testing.assert_close(got, plain_ce(h, head.weight, head.bias, target).detach(), **TOL)


# --- whole training steps: every algorithm, fused vs plain ------------------------------------
def small_batch(n_items: int, size: int = 16, seed: int = 0):
    from mcrl_kit.data.replay import ReplayBuffer

    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 13, (12,), generator=g)
    session = torch.repeat_interleave(torch.arange(12), lengths).numpy()
    items = torch.randint(0, n_items, (len(session),), generator=g).numpy()
    buf = ReplayBuffer.from_events(session, items, (torch.rand(len(session), generator=g) < 0.3).numpy(), n_items)
    return buf.batch(torch.randperm(len(buf), generator=g)[:size])


ALGO_CASES = [
    ("supervised", {}), ("sqn", {}), ("sac", {"switch_step": 0}), ("snqn", {}), ("sa2c", {"switch_step": 0}), ("mcrl", {}),
]


@pytest.mark.parametrize("backbone", ["sasrec", "gru"])
@pytest.mark.parametrize(("name", "params"), ALGO_CASES)
def test_training_step_fused_equals_plain(name, params, backbone):
    n_items = 53  # chunks of 7 below: 53 is no multiple, the last chunk is partial
    batch = small_batch(n_items)
    runs = []
    for fused in (False, True):
        torch.manual_seed(0)  # same init, same dropout masks
        algo = build_algo(name, n_items, 10, ModelConfig(backbone=backbone, hidden=16), params, seed=3)
        torch.manual_seed(1)
        with use_fused(fused), _small_chunks(7):
            parts = algo.loss(batch, step=5)
            parts["total"].backward()
        grads = {k: p.grad.clone() for k, p in algo.named_parameters() if p.grad is not None}
        runs.append(({k: v.detach() for k, v in parts.items()}, grads))
    (plain_parts, plain_grads), (fused_parts, fused_grads) = runs
    assert plain_parts.keys() == fused_parts.keys()
    for k in plain_parts:
        torch.testing.assert_close(fused_parts[k], plain_parts[k], **TOL, msg=k)
    assert plain_grads.keys() == fused_grads.keys()
    for k in plain_grads:
        torch.testing.assert_close(fused_grads[k], plain_grads[k], **TOL, msg=k)


class _small_chunks:
    """Force tiny CPU chunks, so that a 53-item catalogue is cut into many."""

    def __init__(self, items: int):
        self.items = items

    def __enter__(self):
        import mcrl_kit.fused as fused

        self.before = fused.CPU_CHUNK_ELEMENTS
        fused.CPU_CHUNK_ELEMENTS = self.items * 16  # batch 16 → `items` per chunk (SNQN's 2B rows: half)

    def __exit__(self, *exc):
        import mcrl_kit.fused as fused

        fused.CPU_CHUNK_ELEMENTS = self.before


# --- the sparse-embedding switch: plumbing, not equivalence (lazy Adam is another optimiser) ---
@pytest.mark.parametrize("name", ["supervised", "sqn", "sa2c", "mcrl"])
def test_sparse_embedding_gets_sparse_adam_and_trains(name):
    torch.manual_seed(0)
    algo = build_algo(name, 40, 10, ModelConfig(backbone="sasrec", hidden=8, sparse_embedding=True), seed=0)
    embeddings = [m for m in algo.modules() if isinstance(m, torch.nn.Embedding) and m.sparse]
    assert embeddings  # the item embeddings (MCRL's frozen target copy too)
    opt = make_optimizer(algo, 0.01, torch.device("cpu"))
    kinds = sorted(type(o).__name__ for o in opt.optimizers)
    assert kinds == ["Adam", "SparseAdam"]
    sparse_params = {id(p) for g in opt.optimizers[1].param_groups for p in g["params"]}
    assert all(p.requires_grad for g in opt.optimizers[1].param_groups for p in g["params"])
    assert sparse_params == {id(m.weight) for m in embeddings if m.weight.requires_grad}
    batch = small_batch(40)
    before = {k: p.detach().clone() for k, p in algo.named_parameters()}
    for step in range(2):
        for group in opt.param_groups:  # what the loop does for SA2C's switch: must reach both
            group["lr"] = 0.02
        opt.zero_grad(set_to_none=True)
        algo.loss(batch, step)["total"].backward()
        opt.step()
    moved = [k for k, p in algo.named_parameters() if not torch.equal(p, before[k])]
    assert any("item_embedding" in k for k in moved)
    assert all(g["lr"] == 0.02 for o in opt.optimizers for g in o.param_groups)
    # the checkpoint round trip of train.py
    state = opt.state_dict()
    other = make_optimizer(algo, 0.01, torch.device("cpu"))
    other.load_state_dict(state)
    assert other.state_dict()["optimizers"][1]["state"].keys() == state["optimizers"][1]["state"].keys()


def test_dense_default_is_one_fused_adam():
    algo = build_algo("mcrl", 40, 10, ModelConfig(backbone="gru", hidden=8), seed=0)
    opt = make_optimizer(algo, 0.01, torch.device("cpu"))
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"]
    assert not any(isinstance(m, torch.nn.Embedding) and m.sparse for m in algo.modules())


def test_sparse_embedding_run_resumes_exactly(tiny_data, tmp_path, monkeypatch):
    """Both optimisers' states go through train.py's checkpoint: a cut run resumes to the same metrics."""
    from mcrl_kit import train as train_module
    from mcrl_kit.config import TrainConfig
    from mcrl_kit.train import RunConfig, train

    run = RunConfig(
        data=str(tiny_data.root), model=ModelConfig(backbone="gru", hidden=8, sparse_embedding=True), algo="mcrl",
        train=TrainConfig(steps=4, batch_size=32, eval_every=2, progress=False, device="cpu"),
    )
    straight = train(run, out=tmp_path / "straight", data=tiny_data)

    class Cut(Exception):
        pass

    steps = iter(range(1, 100))

    def cut_at_third_step(name):
        if name == "train:step" and next(steps) == 3:  # after the checkpoint of step 2
            raise Cut

    monkeypatch.setattr(train_module.faults, "point", cut_at_third_step)
    with pytest.raises(Cut):
        train(run, out=tmp_path / "cut", data=tiny_data)
    monkeypatch.undo()
    resumed = train(run, out=tmp_path / "cut", data=tiny_data, resume=True)
    assert resumed.metrics["test"] == straight.metrics["test"]
    a, b = straight.algo.state_dict(), resumed.algo.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


@pytest.mark.parametrize("shape", [(9,), (9, 4)])
def test_q_at_reads_rows_or_indexes_the_whole_product(shape):
    """SQN's Q(s, a): the gathered rows (default) and the reference's whole product agree in value and gradient."""
    from mcrl_kit.algos.sqn import q_at
    from mcrl_kit.fused import gathered_q

    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(6, 31)
    h0 = torch.randn(9, 6, generator=g)
    actions = torch.randint(0, 31, shape, generator=g)
    out = []
    for fused in (True, False):
        head.zero_grad()
        h = h0.clone().requires_grad_(True)
        with use_fused(fused):
            assert gathered_q() is fused
            q = q_at(head, h, actions)
        assert q.shape == actions.shape
        (q * torch.arange(q.numel()).view_as(q)).sum().backward()
        out.append((q.detach(), h.grad, head.weight.grad.clone(), head.bias.grad.clone()))
    for a, b in zip(*out):
        torch.testing.assert_close(a, b)
    with use_fused(False, gathered_q=True):
        assert gathered_q()
