"""The backbones' contract (``mcrl_kit/models/base.py``), checked for every registered one.

Each test is parametrized over ``BACKBONES``, so a new entry is held to the same
contract; the parameter-count test makes it also write down its formula.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcrl_kit.config import ModelConfig
from mcrl_kit.errors import ConfigError
from mcrl_kit.models import BACKBONES, build_backbone
from mcrl_kit.models.nextitnet import CausalConv

N_ITEMS, L = 50, 10
PAD = N_ITEMS
NAMES = list(BACKBONES)


def make(name: str, seed: int = 0, n_items: int = N_ITEMS, sparse: bool = False, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_backbone(ModelConfig(backbone=name, **config), n_items, L, sparse=sparse)


def trained_like(m: torch.nn.Module, seed: int = 7) -> torch.nn.Module:
    """Noise on every parameter: zero biases and unit norms at init can hide a missing mask."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m


def right_padded(lengths: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    states = torch.randint(0, N_ITEMS, (len(lengths), L), generator=g)
    states[torch.arange(L) >= lengths[:, None]] = PAD
    return states


def batch(empty: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Every length 1..L, a few random ones, then ``empty`` empty histories (one pad, length 1)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.cat([torch.arange(1, L + 1), torch.randint(1, L + 1, (4,), generator=g)])
    states = right_padded(lengths, seed)
    pads = torch.full((empty, L), PAD)
    return torch.cat([states, pads]), torch.cat([lengths, torch.ones(empty, dtype=torch.long)])


def probe(h: torch.Tensor) -> torch.Tensor:
    """A fixed random projection to backpropagate (``h.sum()`` is blind through a layer norm)."""
    w = torch.randn(h.shape, generator=torch.Generator().manual_seed(99))
    return (h * w).sum()


@pytest.mark.parametrize("name", NAMES)
def test_shape_finite_and_gradients_reach_everything(name):
    m = make(name).train()
    states, lengths = batch()
    h = m.encode(states, lengths)
    assert h.shape == (len(states), m.out_dim) and h.dtype == torch.float32
    assert torch.isfinite(h).all()
    probe(h).backward()
    grad = m.item_embedding.weight.grad
    used = states[states != PAD].unique()
    assert (grad[used].abs().sum(1) > 0).all(), "some real item of the batch got no gradient"
    dead = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any()]
    assert not dead, f"parameters without a finite, non-zero gradient: {dead}"


@pytest.mark.parametrize("name", NAMES)
def test_items_after_the_length_change_nothing(name):
    """Pads after ``lengths`` replaced by real items: ``h`` stays the same (empty states included)."""
    m = trained_like(make(name)).eval()
    states, lengths = batch()
    tail = torch.arange(L) >= lengths[:, None]
    noisy = states.clone()
    noisy[tail] = torch.randint(0, N_ITEMS, (int(tail.sum()),), generator=torch.Generator().manual_seed(1))
    assert (noisy != states).any()
    with torch.no_grad():
        torch.testing.assert_close(m.encode(noisy, lengths), m.encode(states, lengths), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_h_depends_on_the_first_and_the_last_real_item(name):
    m = make(name).eval()
    lengths = torch.arange(1, L + 1)
    states = right_padded(lengths)
    with torch.no_grad():
        h = m.encode(states, lengths)
        for position in (torch.zeros_like(lengths), lengths - 1):
            changed = states.clone()
            rows = torch.arange(len(states))
            changed[rows, position] = (states[rows, position] + 1) % N_ITEMS
            moved = (m.encode(changed, lengths) - h).abs().amax(1)
            assert (moved > 1e-5).all(), f"h ignores the item at {position.tolist()}: {moved}"


@pytest.mark.parametrize("name", NAMES)
def test_causal_prefix_gives_the_same_h(name):
    """Causal backbones: a state cut to its first k positions (L = k) encodes to the same h."""
    m = trained_like(make(name)).eval()
    if not m.causal:
        pytest.skip(f"{name} reads the whole window (not causal)")
    states, lengths = batch(empty=2)
    with torch.no_grad():
        full = m.encode(states, lengths)
        for k in (1, 4, 7):
            rows = lengths <= k
            cut = m.encode(states[rows, :k], lengths[rows])
            torch.testing.assert_close(cut, full[rows], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_rows_are_independent(name):
    """Reordering the batch reorders h (catches packing/sorting mistakes)."""
    m = trained_like(make(name)).eval()
    states, lengths = batch()
    order = torch.randperm(len(states), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(m.encode(states[order], lengths[order]), m.encode(states, lengths)[order])


@pytest.mark.parametrize("name", NAMES)
def test_empty_state_is_finite(name):
    m = make(name)
    states, lengths = torch.full((4, L), PAD), torch.ones(4, dtype=torch.long)
    m.train()
    h = m.encode(states, lengths)
    assert torch.isfinite(h).all()
    probe(h).backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    m.eval()
    with torch.no_grad():
        h = m.encode(states, lengths)
    assert torch.isfinite(h).all() and torch.equal(h, h[:1].expand_as(h)), "empty states differ from each other"


def reference_empty_state(name: str, m) -> torch.Tensor:
    """``h`` of the empty state as the reference's graph computes it (pads masked to zero)."""
    if name == "gru":  # dynamic_rnn over one step whose input is the pad row
        return m.gru(m.item_embedding.weight[PAD].view(1, 1, -1))[1][0, 0]
    if name == "caser":  # every window is zero: only the biases pass the ReLUs
        return torch.cat([*(F.relu(c.bias) for c in m.horizontal), F.relu(m.vertical.bias).expand(m.hidden)])
    if name == "nextitnet":  # position 0 is a pad, re-masked after every block
        return torch.zeros(m.hidden)
    if name == "sasrec":  # the masked sequence is zero, the final layer norm of zero is its bias
        return m.ln_final.bias
    pytest.fail(f"write what the reference computes for the empty state of {name!r}")


@pytest.mark.parametrize("name", NAMES)
def test_empty_state_matches_the_reference(name):
    m = trained_like(make(name)).eval()
    with torch.no_grad():
        h = m.encode(torch.full((2, L), PAD), torch.ones(2, dtype=torch.long))
        torch.testing.assert_close(h, reference_empty_state(name, m).expand_as(h))


@pytest.mark.parametrize("name", NAMES)
def test_int32_ids_give_the_same_output(name):
    m = make(name).eval()
    states, lengths = batch()
    with torch.no_grad():
        torch.testing.assert_close(m.encode(states.int(), lengths.int()), m.encode(states, lengths), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_pad_row_neither_learns_nor_matters(name):
    """Decision: pads are masked to zero, so the pad row gets no gradient and changes no h.

    The one exception is declared: GRU4Rec (``pad_row_used``) feeds it to the cell for
    the empty state, as the reference does — there it is a learned start input.
    """
    m = trained_like(make(name)).train()
    states, lengths = batch(empty=0)
    probe(m.encode(states, lengths)).backward()
    assert not m.item_embedding.weight.grad[PAD].any(), "pads of non-empty states sent a gradient to the pad row"

    m.zero_grad()
    empty_states, empty_lengths = torch.full((3, L), PAD), torch.ones(3, dtype=torch.long)
    probe(m.encode(empty_states, empty_lengths)).backward()
    assert bool(m.item_embedding.weight.grad[PAD].any()) == m.pad_row_used

    m.eval()
    with torch.no_grad():
        before = m.encode(*batch())
        m.item_embedding.weight[PAD] += 1.0
        after = m.encode(*batch())
    n_empty = 2
    torch.testing.assert_close(after[:-n_empty], before[:-n_empty], rtol=0, atol=0)
    assert torch.equal(after[-n_empty:], before[-n_empty:]) != m.pad_row_used


def expected_parameters(name: str, n: int, h: int = 64, length: int = L) -> int:
    """Hand-written counts; a new backbone must add its own line."""
    embedding = (n + 1) * h
    own = {
        # one GRU layer: W_ih, W_hh [3h, h] and two bias vectors [3h] (torch's form)
        "gru": 2 * 3 * h * h + 2 * 3 * h,
        # horizontal convs of heights 2, 3, 4 (16 filters of h × height, + bias); vertical [length] + bias
        "caser": 16 * h * (2 + 3 + 4) + 3 * 16 + length + 1,
        # 6 blocks × (2 causal convs of kernel 3: 3h·h + h; 2 layer norms: 2h)
        "nextitnet": 6 * (2 * (3 * h * h + h) + 2 * 2 * h),
        # positions [length, h]; 3 layer norms; Q, K, V, FFN1, FFN2 (h·h + h each); no output projection
        "sasrec": length * h + 3 * 2 * h + 5 * (h * h + h),
    }
    if name not in own:
        pytest.fail(f"write the parameter formula for backbone {name!r} in expected_parameters")
    return embedding + own[name]


@pytest.mark.parametrize("n_items", [N_ITEMS, 70_852])
@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_the_formula(name, n_items):
    m = make(name, n_items=n_items)
    assert sum(p.numel() for p in m.parameters()) == expected_parameters(name, n_items)
    assert m.item_embedding.weight.shape == (n_items + 1, 64) and m.pad == n_items
    assert m.out_dim == (3 * 16 + 64 if name == "caser" else 64)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_and_output(name):
    a, b, other = make(name, seed=3), make(name, seed=3), make(name, seed=4)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), key
    assert not torch.equal(a.item_embedding.weight, other.item_embedding.weight)
    states, lengths = batch()
    outputs = []
    for m in (a, b):
        torch.manual_seed(5)  # dropout draws too
        outputs.append(m.train().encode(states, lengths))
    assert torch.equal(*outputs)


@pytest.mark.parametrize("name", NAMES)
def test_config_sizes_and_dropout_are_used(name):
    m = make(name, hidden=32, dropout=0.0)
    states, lengths = batch()
    h_train = m.train().encode(states, lengths)
    assert m.item_embedding.weight.shape == (N_ITEMS + 1, 32) and h_train.shape[1] == m.out_dim
    with torch.no_grad():
        torch.testing.assert_close(m.eval().encode(states, lengths), h_train.detach())  # dropout 0: train = eval


@pytest.mark.parametrize("name", NAMES)
def test_sparse_embedding_gradients_equal_dense(name):
    dense, sparse = make(name, seed=1).eval(), make(name, seed=1, sparse=True).eval()
    states, lengths = batch()
    for m in (dense, sparse):
        probe(m.encode(states, lengths)).backward()
    grad = sparse.item_embedding.weight.grad
    assert grad.is_sparse and not dense.item_embedding.weight.grad.is_sparse
    torch.testing.assert_close(grad.to_dense(), dense.item_embedding.weight.grad)


def test_nextitnet_follows_the_reference_dilations():
    """Blocks of dilations 1, 2, 1, 2, 1, 2 whose second conv doubles it (Xin Xin's NextItNetModules)."""
    m = make("nextitnet")
    assert [(b.conv1.dilation, b.conv2.dilation) for b in m.blocks] == [(1, 2), (2, 4)] * 3
    assert all(c.kernel == 3 for b in m.blocks for c in (b.conv1, b.conv2))


def test_causal_conv_is_a_left_padded_dilated_conv1d():
    torch.manual_seed(0)
    x = torch.randn(3, L, 8)
    for dilation in (1, 2, 4):
        conv = CausalConv(8, 3, dilation, state_len=L)
        weight = conv.linear.weight.view(8, 3, 8).permute(0, 2, 1)  # [out, in, kernel]
        ref = F.conv1d(F.pad(x.transpose(1, 2), (2 * dilation, 0)), weight, conv.linear.bias, dilation=dilation)
        torch.testing.assert_close(conv(x), ref.transpose(1, 2))


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        build_backbone(ModelConfig(backbone="nope"), 10)
    for name in BACKBONES:
        assert name in str(err.value)
