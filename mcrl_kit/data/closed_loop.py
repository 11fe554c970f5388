"""Simulated users meet a recommender: the response model of the closed loop.

Offline evaluation scores a policy on what logged users did; it never says what happens
when the policy recommends. Here fresh sessions of a simulator world are generated while a
recommender shows each user a slate of ``k`` items before every event:

- the **purchase** decision comes first, as in the logs (``simulator._step``): a user who
  buys, buys by the calibrated rule (mostly the item just viewed) and ignores the slate;
- otherwise the user **takes a slate item** with probability
  ``1 − exp(−attraction · Σ_p d_p f_p)``, where ``f_p`` is the probability that the user's
  own behaviour would have viewed the item at position ``p`` next (its fit to the intent and
  the history: a repeat, a revisit, a successor, an item of the intent, a popular item) and
  ``d_p = 1 / log2(p + 2)`` discounts lower positions; which item ∝ ``d_p f_p``. Else the
  user acts as in the logs. ``attraction = 0``: the slate is never taken;
- every ignored slate raises the stop hazard: ``h · (1 + leave_sensitivity · ignored)``
  (``ignored`` = slates ignored so far in the session), so a recommender that shows nothing
  relevant shortens sessions.

``recommend(states, lengths, k) → [B, k]`` is any callable in the simulator's item ids:
``states`` ``[B, L]`` right-padded with ``-1`` (the most recent item at ``lengths − 1``),
``lengths`` ≥ 1 (an empty history is one ``-1``, as the replay buffer's pad state).
:mod:`mcrl_kit.online` turns a trained run (or popularity / recency) into one; this module
imports nothing above ``data``.

:func:`forced_values` is the truth of a greedy policy's Q: from each logged event, the next
items consumed are the policy's ``argmax`` (``recommend`` with ``k = 1``), purchases and stops
by the simulator's rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..seeding import numpy_rng
from . import simulator as sim

Recommend = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Response:
    """How users respond to slates (see the module docstring)."""

    #: weight of an item's fit in the take probability (0: slates are never taken)
    attraction: float = 5.0
    #: relative rise of the stop hazard per ignored slate (0: ignoring costs nothing)
    leave_sensitivity: float = 0.1

    def __post_init__(self) -> None:
        for name in ("attraction", "leave_sensitivity"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ConfigError(f"Response.{name}", f"must be a finite number ≥ 0, got {value!r}", "give e.g. 0 or 1.0")


def kit_states(window: np.ndarray, state_len: int) -> tuple[np.ndarray, np.ndarray]:
    """A left-padded window (most recent last, ``-1`` = none) → the kit's right-padded states and lengths."""
    w = window[:, -state_len:]
    n = (w >= 0).sum(1)
    cols = np.arange(state_len)[None, :]
    src = np.clip(state_len - n[:, None] + cols, 0, state_len - 1)
    states = np.where(cols < n[:, None], np.take_along_axis(w, src, 1), -1)
    return states, np.maximum(n, 1)


def organic_probs(
    world: sim.World, window: np.ndarray, t: np.ndarray, items: np.ndarray, bucket: np.ndarray | None = None,
) -> np.ndarray:
    """``[B, k]``: the probability that each row's next *view* (the logs' behaviour) is each of ``items``.

    The mixture of ``simulator._step``'s view branch: a repeat of the last item, a revisit of
    an earlier one (uniform over the window's earlier slots), a new intent (by popularity —
    the drifted popularity of the session's time ``bucket`` when the world drifts), a
    successor of the last item, an item of its intent (∝ popularity). A session's first
    event is a new intent.
    """
    b = world.behaviour
    last = window[:, -1]
    prev = np.maximum(last, 0)
    started = (t > 0)[:, None]
    earlier = window[:, :-1]
    n_earlier = (earlier >= 0).sum(1)
    has = (n_earlier > 0)[:, None]
    repeat = b.p_repeat * (items == last[:, None])
    revisit = b.p_revisit * (earlier[:, None, :] == items[:, :, None]).sum(-1) / np.maximum(n_earlier, 1)[:, None]
    moves = np.where(has, 1 - b.p_repeat - b.p_revisit, 1 - b.p_repeat)
    weights = np.diff(np.r_[0.0, world.successor_cum]) / world.successor_cum[-1]
    follow = (world.successors[prev][:, None, :] == items[:, :, None]) @ weights  # [B, k]
    c = world.cluster[prev]
    mass = (world.cluster_hi - world.cluster_lo)[c][:, None]
    within = (world.cluster[items] == c[:, None]) * world.popularity[items] / mass
    pop = world.popularity[items] if world.drift_popularity is None or bucket is None else \
        world.drift_popularity[bucket[:, None], items]
    move = sim.P_SWITCH * pop + (1 - sim.P_SWITCH) * (sim.P_FOLLOW * follow + (1 - sim.P_FOLLOW) * within)
    later = repeat + np.where(has, revisit, 0.0) + moves * move
    return np.where(started, later, pop)


def closed_loop(
    world: sim.World,
    sessions: int,
    recommend: Recommend | None,
    *,
    slate: int = 10,
    response: Response | None = None,
    state_len: int = sim.HISTORY,
    gamma: float = 0.5,
    reward_click: float = 0.2,
    reward_buy: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """``sessions`` fresh sessions of ``world`` under ``recommend`` (None: the logging behaviour).

    One row per session: ``reward`` (Σ r_t, what the session earned), ``return`` (Σ γ^t r_t,
    the MDP's discounted objective), ``purchases``, ``clicks``, ``length``,
    ``shown`` (slates shown) and ``taken`` (slate items taken). Deterministic given ``seed``:
    the users' latents and every draw come from ``numpy_rng(seed, "closed-loop", ...)``, the
    same for every recommender, so two recommenders meet the same users.
    """
    response = response or Response()
    if sessions <= 0 or slate <= 0:
        raise ConfigError("closed_loop", f"needs sessions > 0 and slate > 0 (got {sessions}, {slate})", "pass positive counts")
    users = numpy_rng(seed, "closed-loop", "users")
    hazard = users.beta(*world.engagement, size=sessions)
    z = users.normal(0.0, sim.BUY_SD, size=sessions)
    bucket = sim.drift_bucket(sim.START_MS + users.integers(0, sim.SPAN_MS, size=sessions))
    rng = numpy_rng(seed, "closed-loop", "events")
    width = max(sim.HISTORY, state_len)
    sid = np.arange(sessions)
    window = np.full((sessions, width), -1, dtype=np.int64)
    last_buy = np.zeros(sessions, dtype=bool)
    run = np.zeros(sessions, dtype=np.int64)
    ignored = np.zeros(sessions, dtype=np.int64)
    out = {k: np.zeros(sessions) for k in ("reward", "return", "purchases", "clicks", "length", "shown", "taken")}
    discount = 1.0 / np.log2(np.arange(slate) + 2.0)
    bar = tqdm(total=sessions, desc="closed loop", unit="session", disable=not progress, leave=False)
    t = 0
    while len(sid):
        steps = np.full(len(sid), t)
        own = window[:, -sim.HISTORY:]
        item, buy, new_run = sim._step(world, own, last_buy, run, steps, z[sid], rng, bucket[sid])
        take_draw, pick_draw = rng.random(len(sid)), rng.random(len(sid))
        if recommend is not None:
            states, lengths = kit_states(window, state_len)
            shown = np.asarray(recommend(states, lengths, slate), dtype=np.int64).reshape(len(sid), slate)
            fit = organic_probs(world, own, steps, shown, bucket[sid]) * discount[None, :]
            p_take = 1.0 - np.exp(-response.attraction * fit.sum(1))
            take = ~buy & (take_draw < p_take)
            cum = np.cumsum(fit, 1)
            pick = (cum < (pick_draw * cum[:, -1])[:, None]).sum(1).clip(max=slate - 1)
            chosen = shown[np.arange(len(sid)), pick]
            item = np.where(take, chosen, item)
            prev = np.maximum(own[:, -1], 0)
            same = (t > 0) & (world.cluster[item] == world.cluster[prev])
            new_run = np.where(take, np.where(same, run + 1, 1), new_run)
            ignored[sid] += (~buy & ~take).astype(np.int64)
            out["shown"][sid] += 1
            out["taken"][sid] += take
        reward = np.where(buy, reward_buy, reward_click)
        out["reward"][sid] += reward
        out["return"][sid] += gamma**t * reward
        out["purchases"][sid] += buy
        out["clicks"][sid] += ~buy
        out["length"][sid] += 1
        window = sim.push(window, item)
        last_buy, run = buy, new_run
        t += 1
        h = np.minimum(1.0, hazard[sid] * (1.0 + response.leave_sensitivity * ignored[sid]))
        live = ~sim._stops(np.full(len(sid), t), h, rng)
        bar.update(int((~live).sum()))
        sid, window, last_buy, run = sid[live], window[live], last_buy[live], run[live]
    bar.close()
    return pd.DataFrame(out).assign(session=np.arange(sessions))[["session", *out]]


# --- a kit score function as a recommender -------------------------------------------------
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ItemMap:
    """The simulator's item ids ↔ a prepared dataset's item indices (``items.parquet``)."""

    to_index: np.ndarray  # [world items] prepared index of each simulator id
    to_raw: np.ndarray  # [n_items] simulator id of each prepared index
    pad: int  # the prepared data's pad index (= n_items)

    @classmethod
    def of(cls, data) -> ItemMap:
        raw = data.items["raw_id"].astype(np.int64).to_numpy()
        index = data.items["item"].to_numpy().astype(np.int64)
        to_index = np.full(int(raw.max()) + 1, data.n_items, dtype=np.int64)
        to_index[raw] = index
        to_raw = np.empty(data.n_items, dtype=np.int64)
        to_raw[index] = raw
        return cls(to_index, to_raw, data.n_items)

    def states(self, states: np.ndarray) -> torch.Tensor:
        """Simulator states (``-1`` = none) → prepared states (the pad index)."""
        return torch.from_numpy(np.where(states >= 0, self.to_index[np.maximum(states, 0)], self.pad))


def recommender(score_fn: ScoreFn, items: ItemMap, *, batch_size: int = 512, device: str = "cpu") -> Recommend:
    """``score_fn(states, lengths) → [B, n_items]`` (prepared indices) as a :data:`Recommend`: its top ``k``
    (ties: torch's top-k order, deterministic on one machine), in the simulator's ids, ``batch_size`` rows at a time."""

    @torch.inference_mode()
    def recommend(states: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
        out = np.empty((len(states), k), dtype=np.int64)
        for lo in range(0, len(states), batch_size):
            sl = slice(lo, lo + batch_size)
            s = items.states(states[sl]).to(device)
            n = torch.from_numpy(np.asarray(lengths[sl], dtype=np.int64)).to(device)
            top = torch.topk(score_fn(s, n).float(), k, dim=1).indices.cpu().numpy()
            out[sl] = items.to_raw[top]
        return out

    return recommend


# --- the truth of a greedy policy's Q --------------------------------------------------------
def forced_values(
    data,
    split: str,
    greedy: Recommend,
    *,
    gamma: float = 0.5,
    reward_click: float = 0.2,
    reward_buy: float = 1.0,
    n_rollouts: int = 64,
    horizon: int = 12,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """``Q^π(s_t, a_t)`` of every logged event of ``split`` for the greedy policy ``π`` of ``greedy``.

    The logged event ``t`` happens (reward ``r_t``); then each next consumed item is the
    policy's top-1 for the state so far (``greedy(states, lengths, 1)``), whether it is a
    purchase by the simulator's purchase probability (the run in the intent, the session's
    propensity, never two in a row), whether the session stops by its stop hazard. The
    items are deterministic given the state, so they are chosen once per event and only
    purchases and stops are rolled out (``n_rollouts`` per event, ``horizon`` events). This
    is the value a Q-learner's target ``r + γ max_a Q(s′, a)`` estimates.
    """
    world, window, ev, hazard, z = sim._logged_state(data, split)
    state_len = data.config.state_len
    n = len(ev)
    item = ev["sim_item"].to_numpy()
    is_buy = ev["is_buy"].to_numpy().astype(bool)
    step = ev["step"].to_numpy()
    run = ev["run"].to_numpy()
    # the recommender's window (its state may reach further back than the users' HISTORY)
    wide = window if state_len <= sim.HISTORY else sim.logged_windows(item, step, width=state_len)
    wide = sim.push(wide, item)  # the state after the logged event
    # the forced items: deterministic given the state, one top-1 per event and step
    forced = np.empty((n, horizon), dtype=np.int64)
    runs = np.empty((n, horizon), dtype=np.int64)
    cur_run, prev = run.copy(), item.copy()
    for h in tqdm(range(horizon), desc=f"forced values ({split})", disable=not progress, leave=False):
        states, lengths = kit_states(wide, state_len)
        nxt = greedy(states, lengths, 1)[:, 0] if n else np.zeros(0, np.int64)
        cur_run = np.where(world.cluster[nxt] == world.cluster[prev], cur_run + 1, 1)
        forced[:, h], runs[:, h], prev = nxt, cur_run, nxt
        wide = sim.push(wide, nxt)
    rng = numpy_rng(seed, "simulator", "forced")
    future = np.zeros(n)
    for _ in range(n_rollouts):
        live = np.ones(n, dtype=bool)
        last_buy = is_buy.copy()
        total = np.zeros(n)
        for h in range(horizon):
            live &= ~sim._stops(step + 1 + h, hazard, rng)
            p_buy = 1.0 / (1.0 + np.exp(-(world.buy_logit + sim.BUY_SLOPE * np.log(runs[:, h]) + z)))
            buy = ~last_buy & (rng.random(n) < p_buy)
            total += live * gamma ** (h + 1) * np.where(buy, reward_buy, reward_click)
            last_buy = buy
        future += total / n_rollouts
    reward = np.where(is_buy, reward_buy, reward_click)
    return pd.DataFrame({"session": ev["session"].to_numpy(), "step": step, "true_forced": reward + future})
