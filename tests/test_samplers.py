"""The negative samplers: what each may draw, by construction and by counting; one interface for
SNQN, SA2C and MCRL; the popularity counts from the train split only; exact draws from the saved
generator."""

from __future__ import annotations

import pytest
import torch

from mcrl_kit.algos import build_algo
from mcrl_kit.algos.samplers import SAMPLERS, make_sampler
from mcrl_kit.config import ModelConfig
from mcrl_kit.data.replay import Batch
from mcrl_kit.errors import ConfigError
from mcrl_kit.train import train

N, L = 30, 4
SMALL = ModelConfig(backbone="gru", hidden=8)


def batch(actions, states=None) -> Batch:
    actions = torch.as_tensor(actions)
    b = len(actions)
    states = torch.full((b, L), N) if states is None else torch.as_tensor(states)
    ones = torch.ones(b, dtype=torch.long)
    return Batch(state=states, len_state=ones, action=actions, is_buy=torch.zeros(b, dtype=torch.bool),
                 reward=torch.full((b,), 0.2), next_state=states, len_next_state=ones, done=torch.zeros(b, dtype=torch.bool))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fitted(name: str, counts=None):
    s = make_sampler("test", name, 10, N, L)
    s.fit(torch.arange(N) if counts is None else torch.as_tensor(counts))
    return s


def random_batch(b: int = 64, seed: int = 1) -> Batch:
    g = gen(seed)
    states = torch.randint(0, N, (b, L), generator=g)
    states[:, -1] = N  # some padding, which is never an item
    return batch(torch.randint(0, N, (b,), generator=g), states)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_draws_k_items_in_range_never_the_logged_one(name):
    b = random_batch()
    neg = fitted(name).draw(b, 7, gen())
    assert neg.shape == (64, 7) and neg.dtype == torch.long
    assert neg.min() >= 0 and neg.max() < N
    assert not (neg == b.action[:, None]).any()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_generator_state_same_draws_another_seed_others(name):
    b = random_batch()
    s = fitted(name)
    assert torch.equal(s.draw(b, 10, gen(3)), s.draw(b, 10, gen(3)))
    assert not torch.equal(s.draw(b, 10, gen(3)), s.draw(b, 10, gen(4)))


def test_uniform_is_uniform_over_the_other_items():
    counts = torch.bincount(fitted("uniform").draw(batch(torch.full((20_000,), 5)), 3, gen()).flatten(), minlength=N)
    assert counts[5] == 0
    share = counts[torch.arange(N) != 5].float() / counts.sum()
    assert torch.allclose(share, torch.full_like(share, 1 / (N - 1)), atol=0.004)  # ±4σ at 60,000 draws


def test_popularity_draws_in_proportion_to_the_train_counts():
    counts = torch.zeros(N)
    counts[[1, 2, 3]] = torch.tensor([1.0, 2.0, 7.0])  # item 0 unseen in train: never drawn
    s = fitted("popularity", counts)
    drawn = torch.bincount(s.draw(batch(torch.full((20_000,), 9)), 3, gen()).flatten(), minlength=N).float()
    assert drawn[[0, *range(4, N)]].sum() == 0
    assert torch.allclose(drawn[1:4] / drawn.sum(), torch.tensor([0.1, 0.2, 0.7]), atol=0.01)
    # the logged item is excluded by rejection: the others keep their relative odds
    drawn = torch.bincount(s.draw(batch(torch.full((20_000,), 3)), 3, gen()).flatten(), minlength=N).float()
    assert drawn[3] == 0 and torch.allclose(drawn[1:3] / drawn.sum(), torch.tensor([1 / 3, 2 / 3]), atol=0.01)


def test_popularity_falls_back_where_only_the_logged_item_was_popular():
    counts = torch.zeros(N)
    counts[4] = 5.0  # every draw is a_t = 4, ROUNDS times over: the uniform fallback ≠ a_t takes over
    neg = fitted("popularity", counts).draw(batch([4, 4, 7]), 5, gen())
    assert not (neg[:2] == 4).any() and (neg[2] == 4).all()


def test_popularity_refuses_to_draw_without_counts_and_bad_counts():
    s = make_sampler("test", "popularity", 10, N, L)
    with pytest.raises(ConfigError, match="not fitted on the train split"):
        s.draw(batch([1, 2]), 3, gen())
    with pytest.raises(ConfigError, match="positive sum"):
        s.fit(torch.zeros(N))
    with pytest.raises(ConfigError, match=f"{N} non-negative counts"):
        s.fit(torch.ones(N + 1))


def test_in_batch_negatives_are_other_rows_actions():
    b = random_batch(b=16)
    neg = fitted("in_batch").draw(b, 20, gen())
    for i in range(16):
        others = set(b.action.tolist()) - {int(b.action[i])}
        assert set(neg[i].tolist()) <= others


def test_in_batch_draws_each_other_row_equally_often():
    actions = torch.arange(4)  # distinct: a negative names the row it came from
    drawn = torch.bincount(fitted("in_batch").draw(batch(actions), 6000, gen())[0], minlength=N).float()
    assert drawn[0] == 0 and torch.allclose(drawn[1:4] / 6000, torch.full((3,), 1 / 3), atol=0.02)


def test_in_batch_falls_back_to_uniform_without_another_action():
    for actions in ([3], [3, 3, 3]):  # no other row; other rows that all logged a_t too
        neg = fitted("in_batch").draw(batch(actions), 8, gen())
        assert neg.shape == (len(actions), 8) and not (neg == 3).any()


def test_unseen_never_draws_an_item_of_the_state():
    b = random_batch()
    neg = fitted("unseen").draw(b, 25, gen())
    assert not (neg[:, :, None] == b.state[:, None, :]).any()


def test_unseen_exact_fallback_in_a_catalogue_the_state_almost_covers():
    # L + 2 items, the state holds L of them and a_t another: one item is left, and every draw must be it
    s = make_sampler("test", "unseen", 1, L + 2, L)
    states = torch.arange(L)[None, :]
    neg = s.draw(batch(torch.tensor([L]), states), 9, gen())
    assert (neg == L + 1).all()


def test_refusals_name_the_setting_and_the_fix():
    with pytest.raises(ConfigError, match=r"unknown value 'popular'.*popularity"):
        build_algo("snqn", N, L, SMALL, {"sampler": "popular"})
    with pytest.raises(ConfigError, match=r"MCRLConfig\.sampler"):
        build_algo("mcrl", N, L, SMALL, {"sampler": "nope"})
    with pytest.raises(ConfigError, match="'unseen' needs more than state_len"):
        build_algo("sa2c", L + 1, L, SMALL, {"sampler": "unseen", "neg": 1})
    with pytest.raises(ConfigError, match="K = 30 negatives but only 30 items"):
        build_algo("mcrl", N, L, SMALL, {"neg": 30})


@pytest.mark.parametrize("algo", ["snqn", "sa2c", "mcrl"])
def test_one_interface_the_algorithms_draw_from_their_sampler(algo):
    a = build_algo(algo, N, L, SMALL, {"sampler": "unseen", "neg": 4}, seed=2)
    assert type(a.sampler) is SAMPLERS["unseen"]
    b = random_batch()
    state = a.generator.get_state()
    got = a.negatives(b, 4)
    a.generator.set_state(state)  # the algorithm's own generator, so a resumed run draws the same
    assert torch.equal(got, SAMPLERS["unseen"](N).draw(b, 4, a.generator))


@pytest.mark.parametrize("algo", ["sa2c", "mcrl"])
def test_the_loop_gives_the_popularity_sampler_train_counts_only(algo, tiny_data):
    result = train_tiny(algo, tiny_data, {"sampler": "popularity", "switch_step": 5} if algo == "sa2c" else {"sampler": "popularity"})
    train_counts = torch.bincount(tiny_data.replay("train").action.long(), minlength=tiny_data.n_items).double()
    assert torch.allclose(result.algo.sampler.probs, train_counts / train_counts.sum())
    everything = sum(torch.bincount(tiny_data.replay(s).action.long(), minlength=tiny_data.n_items) for s in ("train", "val", "test"))
    assert not torch.allclose(result.algo.sampler.probs, everything.double() / everything.sum())


def train_tiny(algo, data, params):
    from mcrl_kit.config import TrainConfig
    from mcrl_kit.runs import RunConfig

    run = RunConfig(data=str(data.root), model=SMALL, algo=algo, algo_params=params,
                    train=TrainConfig(steps=10, batch_size=32, eval_every=10, device="cpu", progress=False))
    return train(run, data=data)



def test_runs_written_before_the_sampler_field_keep_their_identity(tiny_data):
    """config.json of a run from before ``sampler`` existed lacks it: at its default it is not part of the
    identity (study folders are reused and checkpoints resume); another sampler is."""
    from mcrl_kit.runs import RunConfig, resume_key, run_key

    run = RunConfig(data=str(tiny_data.root), model=SMALL, algo="mcrl")
    before = run.to_dict()
    del before["algo_params"]["sampler"]
    assert resume_key(before) == resume_key(run.to_dict())
    assert run_key(run) == run_key(RunConfig.from_dict(before))
    assert run_key(run) != run_key(run.replace(algo_params={"sampler": "in_batch"}))
