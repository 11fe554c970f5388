"""The embedded default data source: synthetic shoppers whose logs have learnable structure.

No download: ``prepare(DataConfig(source="simulator", scale=...))`` generates sessions
from a small, seeded generative model with the structure that makes the paper's question
meaningful — a sequential signal that a sequence model can learn and popularity cannot,
and purchases that depend on where a session has been, so that a return-aware learner has
something to gain. Everything is deterministic given ``(scale, seed, sessions, drift)``.

The world (``numpy_rng(seed, "simulator", "world")``, independent of the session count)
---------------------------------------------------------------------------------------
- ``N`` items with popularity ``w_i``: item ranks are a random permutation and
  ``log w(u) = −α·log(u + q) − β·u − δ·u²`` at relative rank ``u = (rank − ½)/N``
  (the constants in :data:`POPULARITY` were fitted to the real RetailRocket per-item
  counts by :func:`fit_popularity`; the law is in relative rank so any ``N`` reuses it);
- ``K ≈ N / cluster_size`` **intents** = item clusters; every item belongs to one cluster
  (sizes ≥ 5, Dirichlet-spread, independent of popularity);
- every item ``i`` has ``M = 3`` **preferred successors** in its own cluster, drawn without
  replacement ∝ popularity (``i`` itself may be one: a repeat view, as real logs are full
  of), followed with probabilities :data:`SUCCESSOR_WEIGHTS`. Drawing them ∝ ``w`` keeps
  the realised item marginal close to ``w``.

A session (``numpy_rng(seed, "simulator", "sessions")``)
--------------------------------------------------------
Latents (table ``sim_sessions``): stop hazard ``h ~ Beta(a, b)`` (engagement; ``b`` sets
the mean length, the Beta's left tail gives the heavy tail of real session lengths), buy
propensity ``z ~ N(0, σ_z²)`` and the drift time bucket of its start. The observable state
before event ``t`` is the **window** of the last :data:`HISTORY` = 10 items, the last
event's flag, and the **run** ``n`` = the number of consecutive events the session has
spent in the last item's intent (all of it a function of the history). Event ``t`` is
drawn as

1. after a view: a **purchase** with ``p = σ(buy_logit + λ·ln n + z)`` — the odds grow as
   ``n^λ``, the longer the session has dwelt in this intent the likelier it buys — of the
   item just viewed with probability ``buy_last``, of an earlier item of the window with
   ``buy_earlier``, else of an item of the intent drawn ∝ popularity (a purchase the history
   does not give away);
2. otherwise a view: a **repeat** of the last item with ``p_repeat``, a **revisit** of an
   earlier item of the window with ``p_revisit``; else, at ``t = 0`` or with probability
   ``p_switch``, a **new intent** (an item by global popularity, drifted by the session's
   start time when ``drift`` > 0); else with ``p_follow`` one of the last item's
   **successors**; else an item of its cluster drawn ∝ ``w``;
3. the run becomes ``n + 1`` if the item is in the previous item's cluster, else 1;
4. after the event the session **stops** with probability ``h`` once it has ≥ 3 events
   (the protocol keeps sessions with ≥ 3 events) and always at :data:`MAX_LENGTH`.

``p_repeat``, ``p_revisit``, ``buy_last``, ``buy_earlier`` and ``buy_logit`` are calibrated
per scale (:func:`mcrl_kit.data.calibrate.fit_behaviour`) so that the share of purchases
and clicks repeating the last item or the state, and the purchase share, are the real
samples' (:data:`TARGETS`; ``tests/test_simulator.py`` checks them against the samples'
95 % intervals).

Timestamps are a uniform session start plus exponential gaps (shorter before a
purchase); only their order matters downstream.

True returns
------------
Because the world is rebuilt from the prepared data's config and the latents are saved,
:func:`true_returns` can roll any logged state forward with the same step function and
estimate ``V(s_t)`` and ``Q(s_t, a_t)`` under the users' own behaviour — the ground truth
for the overestimation diagnostics (:mod:`mcrl_kit.data.closed_loop` adds the truth of a
greedy policy's Q and the closed loop, where users meet a recommender). All generation
and rollouts are vectorised: every live session (or rollout) advances one event per
NumPy step.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..seeding import numpy_rng
from .schema import EventLog, validate_events


@dataclasses.dataclass(frozen=True)
class Scale:
    """One named size of the simulated world."""

    n_items: int
    sessions: int
    #: mean items per intent (cluster)
    cluster_size: int
    #: target mean events per session (sets the Beta's ``b``)
    mean_length: float
    #: intercept of the purchase logit (calibrated to the target purchase share)
    buy_logit: float
    #: a view repeats the last item / revisits an earlier item of the state (:data:`HISTORY`)
    p_repeat: float = 0.0
    p_revisit: float = 0.0
    #: a purchase is of the last item / of an earlier item of the state; otherwise of an
    #: item of the intent the history does not give away
    buy_last: float = 1.0
    buy_earlier: float = 0.0


#: the behaviour constants of each scale, from :func:`fit_behaviour` (``tools/calibrate_simulator.py``
#: reruns it and prints this table). Targets, measured by ``data.stats.repeat_stats`` on the train
#: split of the real samples in ``shared/data`` (the kit's definition: every event counts, a
#: session's first repeats nothing):
#:
#: - ``tiny``, ``small``, ``retailrocket``: the RetailRocket 5,000-visitor sample as the protocol
#:   prepares it (116 purchases, 1,318 clicks): purchase = last item 0.750, purchase in state
#:   0.828, click = last item 0.582, click in state 0.685; purchase share 4.64 % (the full data's);
#: - ``yoochoose``: clicks from the session-rec Yoochoose 100k-click sample, sessions ≥ 3 clicks
#:   (54,926 clicks): click = last item 0.204, click in state 0.296; purchases as RetailRocket's
#:   (the sample has no buys); purchase share 3.8 %.
SCALES: dict[str, Scale] = {
    # tests and CI notebooks: prepares in well under a second, trains in seconds
    # (fitted: `python tools/calibrate_simulator.py --sessions 30000 --rounds 15`)
    "tiny": Scale(n_items=300, sessions=2_000, cluster_size=20, mean_length=6.3, buy_logit=-4.7399,
                  p_repeat=0.5029, p_revisit=0.3489, buy_last=0.6388, buy_earlier=0.1315),
    # the "trains in minutes on 2 cores" comparisons
    "small": Scale(n_items=3_000, sessions=20_000, cluster_size=30, mean_length=6.3, buy_logit=-4.742,
                   p_repeat=0.5096, p_revisit=0.358, buy_last=0.6359, buy_earlier=0.1594),
    # RetailRocket as the protocol prepares it: 195,523 sessions, 70,852 items,
    # 1,176,680 clicks + 57,269 purchases (mean 6.31 events, 4.64 % purchases)
    "retailrocket": Scale(n_items=70_852, sessions=195_523, cluster_size=40, mean_length=6.31, buy_logit=-4.7785,
                          p_repeat=0.5114, p_revisit=0.3605, buy_last=0.64, buy_earlier=0.1659),
    # Yoochoose (RC15 sample): 200,000 sessions, 26,702 items, ~1.11 M clicks, ~44 k buys
    # (mean 5.77 events, 3.8 % purchases)
    "yoochoose": Scale(n_items=26_702, sessions=200_000, cluster_size=40, mean_length=5.77, buy_logit=-4.5242,
                       p_repeat=0.184, p_revisit=0.0869, buy_last=0.723, buy_earlier=0.0609),
}

#: what each scale imitates (:func:`fit_behaviour`'s targets, see above)
TARGETS: dict[str, dict[str, float]] = {
    "retailrocket": {"purchase = last item": 0.750, "purchase in state": 0.828, "click = last item": 0.582,
                     "click in state": 0.685, "purchase share": 0.0464},
    "yoochoose": {"purchase = last item": 0.750, "purchase in state": 0.828, "click = last item": 0.204,
                  "click in state": 0.296, "purchase share": 0.038},
}
#: the target each scale is fitted to
IMITATES = {"tiny": "retailrocket", "small": "retailrocket", "retailrocket": "retailrocket", "yoochoose": "yoochoose"}

#: bump when the step function changes: it enters every world checksum, so data and runs
#: made by an older simulator are rebuilt, never reused
SIMULATOR_VERSION = 2
#: items of history the users see (the state of the step function, of generation, of
#: ``true_returns`` and of the closed loop)
HISTORY = 10
#: time buckets of the optional popularity drift (a session's start decides its bucket)
DRIFT_BUCKETS = 8

#: Popularity law ``log w(u) = −alpha·log(u + offset) − cutoff·u − curve·u²`` at relative
#: rank u. Obtained once with ``fit_popularity(item_event_counts.csv.gz["events"])`` on
#: the real RetailRocket per-item counts (70,852 items, shared/data/sqn_preprocessing_stats);
#: weighted RMSE 0.061 in log count. It reproduces the real top counts (fit: 1786, 857,
#: 333, 121, 30 at ranks 1, 10, 100, 1k, 10k; real: 2008, 795, 349, 126, 29), the median
#: (7.3; real 7) and the top-1 % share (14.0 %; real 14.6 %). tests/test_simulator.py
#: re-fits from the shared file when present.
POPULARITY = {"alpha": 0.4238, "offset": 2.023e-05, "cutoff": 3.359, "curve": -1.349}

#: behaviour constants shared by every scale (see the module docstring)
P_SWITCH = 0.15  # a view jumps to a new intent
P_FOLLOW = 0.6  # otherwise: follow one of the last item's successors
SUCCESSOR_WEIGHTS = (0.5, 0.3, 0.2)  # preferred successors 1..M
BUY_SLOPE = 1.0  # λ: purchase logit per log(events spent in the intent): odds ∝ run^λ
BUY_SD = 1.0  # σ_z of the per-session buy propensity
ENGAGEMENT_SHAPE = 2.2  # Beta ``a`` of the stop hazard (> 2: finite variance of lengths)
MIN_LENGTH = 3  # sessions have at least this many events (the protocol's filter)
MAX_LENGTH = 1_000  # a session is cut here (the Beta tail reaches it about once per 10⁵ sessions)
MIN_CLUSTER = 5  # items per cluster, at least (room for M distinct successors and a choice)
VIEW_GAP_S, BUY_GAP_S = 90.0, 20.0  # mean seconds before a view / a purchase
START_MS = 1_430_622_000_000  # 2015-05-03, the start of the RetailRocket log
SPAN_MS = 138 * 86_400_000  # its ~4.5 months


# --- popularity law ---------------------------------------------------------------------
def fit_popularity(counts: np.ndarray | pd.Series, head_weight: float = 0.2) -> dict[str, float]:
    """Fit :data:`POPULARITY`'s law to per-item event counts (any order).

    Weighted least squares of ``log count`` on ``[1, −log(u + q), −u, −u²]`` at relative
    rank ``u``, with ``q`` found on a grid (coarse, then fine) in ``log10``. The weights mix
    uniform-per-item (``1 − head_weight``) with uniform-per-log-rank (``head_weight``): the
    tail has 70k items, the head a few hundred holding a large share, and both matter.
    Returns ``alpha, offset, cutoff, curve, log_scale, rmse`` (the weighted RMSE).
    """
    x = np.sort(np.asarray(counts, dtype=float).ravel())[::-1]
    if len(x) < 10 or (x <= 0).any():
        raise ValueError("fit_popularity needs ≥ 10 positive counts")
    n = len(x)
    rank = np.arange(1, n + 1)
    u = (rank - 0.5) / n
    y = np.log(x)
    weight = (1 - head_weight) / n + head_weight / (rank * np.log(n))
    sw = np.sqrt(weight)

    def solve(log_q: float) -> tuple[float, np.ndarray]:
        design = np.column_stack([np.ones(n), -np.log(u + 10.0**log_q), -u, -(u**2)])
        coef, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
        return float(np.sum(weight * (design @ coef - y) ** 2) / weight.sum()), coef

    coarse = np.arange(-8.0, 0.0, 0.1)
    best = coarse[int(np.argmin([solve(g)[0] for g in coarse]))]
    fine = np.arange(best - 0.1, best + 0.1001, 0.002)
    best = fine[int(np.argmin([solve(g)[0] for g in fine]))]
    err, coef = solve(best)
    return {
        "alpha": float(coef[1]),
        "offset": float(10.0**best),
        "cutoff": float(coef[2]),
        "curve": float(coef[3]),
        "log_scale": float(coef[0]),
        "rmse": float(np.sqrt(err)),
    }


def popularity_law(n_items: int, params: dict[str, float] | None = None) -> np.ndarray:
    """Popularity by rank (descending, sums to 1) for a catalogue of ``n_items``."""
    p = POPULARITY if params is None else params
    u = (np.arange(n_items) + 0.5) / n_items
    log_w = -p["alpha"] * np.log(u + p["offset"]) - p["cutoff"] * u - p["curve"] * u**2
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


# --- the world --------------------------------------------------------------------------
@dataclasses.dataclass
class World:
    """Items, intents and successors of one ``(scale, seed)``; see the module docstring."""

    scale: str
    seed: int
    n_items: int
    buy_logit: float
    engagement: tuple[float, float]  # Beta (a, b) of the stop hazard
    popularity: np.ndarray  # [N] float64, sums to 1
    cluster: np.ndarray  # [N] cluster of each item
    order: np.ndarray  # [N] items sorted by cluster (position → item)
    cum: np.ndarray  # [N] cumulative popularity along ``order``
    cluster_lo: np.ndarray  # [K] cumulative mass before each cluster (in ``cum``)
    cluster_hi: np.ndarray  # [K] cumulative mass at each cluster's end
    cluster_first: np.ndarray  # [K] first position of each cluster in ``order``
    cluster_last: np.ndarray  # [K] last position
    successors: np.ndarray  # [N, M] preferred successors
    successor_cum: np.ndarray  # [M] cumulative SUCCESSOR_WEIGHTS
    behaviour: Scale  # the scale's repeat and purchase constants (p_repeat, p_revisit, buy_last, buy_earlier)
    drift: float = 0.0  # popularity drift over session start time (0: none)
    drift_cum: np.ndarray | None = None  # [DRIFT_BUCKETS, N] cumulative drifted popularity along ``order``
    drift_popularity: np.ndarray | None = None  # [DRIFT_BUCKETS, N] drifted popularity of each item

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_lo)

    def checksum(self) -> str:
        """A short fingerprint: prepared data records it, :func:`true_returns` checks it."""
        h = hashlib.sha1()
        for arr in (self.popularity, self.cluster, self.successors):
            h.update(np.ascontiguousarray(arr).tobytes())
        b = self.behaviour
        h.update(repr((
            SIMULATOR_VERSION, HISTORY, self.buy_logit, self.engagement, P_SWITCH, P_FOLLOW, SUCCESSOR_WEIGHTS,
            BUY_SLOPE, MIN_LENGTH, MAX_LENGTH, b.p_repeat, b.p_revisit, b.buy_last, b.buy_earlier, self.drift,
        )).encode())
        return h.hexdigest()[:12]


def check_scale(scale: str) -> Scale:
    """The scale named ``scale``; a clear error listing the scales for any other name."""
    if scale not in SCALES:
        close = difflib.get_close_matches(str(scale), list(SCALES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError("DataConfig.scale", f"unknown value {scale!r}{hint}", f"use one of: {', '.join(SCALES)}")
    return SCALES[scale]


def build_world(scale: str, seed: int = 0, rng: np.random.Generator | None = None, drift: float = 0.0) -> World:
    """The deterministic world of ``scale`` and ``seed`` (independent of the session count).

    ``rng``: an explicit generator to draw the world from instead of the seed's own.
    ``drift`` > 0 tilts the popularity a new intent is drawn from over session start time:
    item ``i`` has a trend ``g_i ~ N(0, 1)`` (its own seeded stream, so the rest of the world
    is the same as without drift) and in time bucket ``b`` of :data:`DRIFT_BUCKETS` weight
    ``w_i · exp(drift · g_i · (2(b + ½)/B − 1))``: some items rise over the log, others fade.
    """
    sc = check_scale(scale)
    if not (np.isfinite(drift) and drift >= 0):
        raise ConfigError("DataConfig.drift", f"must be a finite number ≥ 0, got {drift!r}", "give e.g. 0 (none) or 1.0")
    rng = numpy_rng(seed, "simulator", "world") if rng is None else rng
    n = sc.n_items
    popularity = popularity_law(n)[rng.permutation(n).argsort()]  # item i gets a random rank
    k = max(2, round(n / sc.cluster_size))
    # cluster sizes: MIN_CLUSTER each plus a Dirichlet-spread share of the rest
    sizes = MIN_CLUSTER + rng.multinomial(n - MIN_CLUSTER * k, rng.dirichlet(np.full(k, 2.0)))
    cluster = np.repeat(np.arange(k), sizes)[rng.permutation(n)]
    order = np.argsort(cluster, kind="stable")
    cum = np.cumsum(popularity[order])
    last = np.cumsum(sizes) - 1
    first = last - sizes + 1
    hi = cum[last]
    lo = np.concatenate([[0.0], hi[:-1]])
    # successors: M distinct items of the same cluster (i included), ∝ popularity, by Gumbel top-M
    m = len(SUCCESSOR_WEIGHTS)
    successors = np.empty((n, m), dtype=np.int64)
    for c in range(k):  # K ≤ ~2k clusters; each block is vectorised over its items
        members = order[first[c] : last[c] + 1]
        keys = np.log(popularity[members])[None, :] + rng.gumbel(size=(len(members), len(members)))
        top = np.argsort(-keys, axis=1)[:, :m]
        successors[members] = members[top]
    b = (sc.mean_length - MIN_LENGTH) * (ENGAGEMENT_SHAPE - 1)  # E[1/h] − 1 = mean − MIN_LENGTH
    drift_cum = drift_popularity = None
    if drift > 0:
        trend = numpy_rng(seed, "simulator", "drift").normal(size=n)
        tilt = (2 * (np.arange(DRIFT_BUCKETS) + 0.5) / DRIFT_BUCKETS - 1)[:, None] * trend[None, :]
        weights = popularity[None, :] * np.exp(drift * tilt)
        drift_popularity = weights / weights.sum(1, keepdims=True)
        drift_cum = np.cumsum(drift_popularity[:, order], axis=1)
    return World(
        scale=scale,
        seed=int(seed),
        n_items=n,
        buy_logit=sc.buy_logit,
        engagement=(ENGAGEMENT_SHAPE, b),
        popularity=popularity,
        cluster=cluster,
        order=order,
        cum=cum,
        cluster_lo=lo,
        cluster_hi=hi,
        cluster_first=first,
        cluster_last=last,
        successors=successors,
        successor_cum=np.cumsum(SUCCESSOR_WEIGHTS),
        behaviour=sc,
        drift=float(drift),
        drift_cum=drift_cum,
        drift_popularity=drift_popularity,
    )


def world_summary(scale: str = "tiny", seed: int = 0) -> pd.Series:
    """The world's parameters and shape, for a notebook."""
    w = build_world(scale, seed)
    sizes = w.cluster_last - w.cluster_first + 1
    pop = np.sort(w.popularity)[::-1]
    return pd.Series(
        {
            "scale": scale,
            "items": w.n_items,
            "intents (clusters)": w.n_clusters,
            "cluster size min/median/max": f"{sizes.min()} / {int(np.median(sizes))} / {sizes.max()}",
            "top-1% item share": round(float(pop[: max(1, w.n_items // 100)].sum()), 4),
            "successors per item": len(SUCCESSOR_WEIGHTS),
            "p_switch / p_follow": f"{P_SWITCH} / {P_FOLLOW}",
            "view: p_repeat / p_revisit": f"{w.behaviour.p_repeat} / {w.behaviour.p_revisit}",
            "purchase: of last / of earlier item": f"{w.behaviour.buy_last} / {w.behaviour.buy_earlier}",
            "imitates": IMITATES[scale],
            "purchase logit": f"{w.buy_logit} + {BUY_SLOPE}·ln(run) + z, z ~ N(0, {BUY_SD}²)",
            "stop hazard": f"Beta({w.engagement[0]:.2f}, {w.engagement[1]:.2f}) after ≥ {MIN_LENGTH} events",
            "world checksum": w.checksum(),
        }
    )


# --- the step function (shared by generation, rollouts and the closed loop) --------------
def _popular_items(world: World, mass: np.ndarray, bucket: np.ndarray | None = None) -> np.ndarray:
    """Items at cumulative popularity ``mass`` (of the drifted popularity of ``bucket`` when drifting)."""
    if world.drift_cum is None or bucket is None:
        pos = np.searchsorted(world.cum, mass, side="right")
    else:  # each bucket's row is increasing in [0, 1]: offset by the bucket, search once
        flat = (world.drift_cum + np.arange(DRIFT_BUCKETS)[:, None]).ravel()
        pos = np.searchsorted(flat, mass + bucket, side="right") - bucket * world.n_items
    return world.order[np.clip(pos, 0, world.n_items - 1)]


def _intent_items(world: World, prev: np.ndarray, u: np.ndarray) -> np.ndarray:
    """An item of ``prev``'s intent (cluster), drawn ∝ popularity with the uniforms ``u``."""
    c = world.cluster[prev]
    mass = world.cluster_lo[c] + u * (world.cluster_hi[c] - world.cluster_lo[c])
    pos = np.clip(np.searchsorted(world.cum, mass, side="right"), world.cluster_first[c], world.cluster_last[c])
    return world.order[pos]


def _earlier_items(window: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(item, has_one)``: an item of the window before its last, uniformly, where it has one."""
    earlier = (window[:, :-1] >= 0).sum(axis=1)  # filled from the right: positions L-1-earlier .. L-2
    col = window.shape[1] - 2 - np.minimum((u * earlier).astype(np.int64), np.maximum(earlier - 1, 0))
    return window[np.arange(len(window)), np.maximum(col, 0)], earlier > 0


def push(window: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The window after ``item``: the oldest item drops out, ``item`` is the most recent."""
    return np.concatenate([window[:, 1:], item[:, None].astype(window.dtype)], axis=1)


def empty_window(n: int) -> np.ndarray:
    """``n`` windows of :data:`HISTORY` items before any event (``-1`` = no item)."""
    return np.full((n, HISTORY), -1, dtype=np.int64)


def _step(
    world: World, window: np.ndarray, last_buy: np.ndarray, run: np.ndarray, t: np.ndarray, z: np.ndarray,
    rng: np.random.Generator, bucket: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw event ``t`` for every row; return ``(item, is_buy, run)`` after it.

    ``window`` holds the last :data:`HISTORY` items (most recent last, ``-1`` before the
    session's start), ``last_buy`` / ``run`` describe the event before (ignored where
    ``t == 0``). A purchase follows a view; it is of the last item with probability
    ``buy_last``, of an earlier item of the window with ``buy_earlier``, else of an item of
    the intent the history does not give away. A view repeats the last item with
    ``p_repeat``, revisits an earlier one with ``p_revisit``, else jumps to a new intent,
    follows a successor or stays in the intent.
    """
    n = len(window)
    b = world.behaviour
    prev = np.maximum(window[:, -1], 0)
    draws = rng.random((n, 5))
    p_buy = 1.0 / (1.0 + np.exp(-(world.buy_logit + BUY_SLOPE * np.log(np.maximum(run, 1)) + z)))
    buy = (t > 0) & ~last_buy & (draws[:, 0] < p_buy)
    earlier, has_earlier = _earlier_items(window, draws[:, 4])
    related = _intent_items(world, prev, draws[:, 3])
    started = t > 0

    # purchases: of the last item, an earlier one, or a related item of the intent
    buy_last = buy & (draws[:, 1] < b.buy_last)
    buy_earlier = buy & ~buy_last & has_earlier & (draws[:, 1] < b.buy_last + b.buy_earlier)
    # views: repeat, revisit, or move on (new intent / successor / same intent)
    view = ~buy
    repeat = view & started & (draws[:, 1] < b.p_repeat)
    revisit = view & started & ~repeat & has_earlier & (draws[:, 1] < b.p_repeat + b.p_revisit)
    moves = view & ~repeat & ~revisit
    new_intent = moves & (~started | (draws[:, 2] < P_SWITCH))
    follow = moves & ~new_intent & (draws[:, 2] < P_SWITCH + (1 - P_SWITCH) * P_FOLLOW)

    item = related.copy()  # a purchase the history does not give away; a view within the intent
    item[buy_last | repeat] = prev[buy_last | repeat]
    item[buy_earlier | revisit] = earlier[buy_earlier | revisit]
    item[new_intent] = _popular_items(world, draws[new_intent, 3], None if bucket is None else bucket[new_intent])
    k = np.minimum(np.searchsorted(world.successor_cum, draws[follow, 3] * world.successor_cum[-1], side="right"),
                   len(SUCCESSOR_WEIGHTS) - 1)
    item[follow] = world.successors[prev[follow], k]

    same = started & (world.cluster[item] == world.cluster[prev])
    return item, buy, np.where(same, run + 1, 1)


def _stops(t_next: np.ndarray, hazard: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """After an event: does the session end (``t_next`` = events so far)?"""
    return ((t_next >= MIN_LENGTH) & (rng.random(len(t_next)) < hazard)) | (t_next >= MAX_LENGTH)


# --- generation ---------------------------------------------------------------------------
def simulate(
    scale: str = "tiny", seed: int = 0, sessions: int | None = None, progress: bool = True,
    rng: np.random.Generator | None = None, world: World | None = None, drift: float = 0.0,
) -> EventLog:
    """Generate the event log of ``scale`` (``sessions`` overrides its session count).

    By default everything derives from ``seed``; an explicit ``rng`` draws the sessions
    (and ``world``, e.g. ``build_world(scale, rng=...)``, replaces the seed's world).
    ``drift``: the popularity drift of :func:`build_world` (0: none).
    """
    world = build_world(scale, seed, drift=drift) if world is None else world
    n_sessions = SCALES[scale].sessions if sessions is None else int(sessions)
    if n_sessions <= 0:
        raise DataError("simulator sessions", f"must be > 0, got {n_sessions}", "give a positive number of sessions")
    rng = numpy_rng(seed, "simulator", "sessions") if rng is None else rng
    hazard = rng.beta(*world.engagement, size=n_sessions)
    z = rng.normal(0.0, BUY_SD, size=n_sessions)
    start = START_MS + rng.integers(0, SPAN_MS, size=n_sessions)
    bucket = drift_bucket(start)

    # live sessions only: every array below is compacted as sessions stop
    sid = np.arange(n_sessions)
    window = empty_window(n_sessions)
    last_buy = np.zeros(n_sessions, dtype=bool)
    run = np.zeros(n_sessions, dtype=np.int64)
    chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    bar = tqdm(total=n_sessions, desc=f"simulate {scale}", unit="session", disable=not progress, leave=False)
    t = 0
    while len(sid):
        item, buy, run = _step(world, window, last_buy, run, np.full(len(sid), t), z[sid], rng, bucket[sid])
        chunks.append((sid, item, buy))
        t += 1
        live = ~_stops(np.full(len(sid), t), hazard[sid], rng)
        bar.update(int((~live).sum()))
        bar.set_postfix(step=t, live=int(live.sum()), refresh=False)
        sid, window, last_buy, run = sid[live], push(window, item)[live], buy[live], run[live]
    bar.close()

    session = np.concatenate([c[0] for c in chunks])
    order = np.argsort(session, kind="stable")  # chunks are in step order: stable = (session, step)
    session = session[order]
    item = np.concatenate([c[1] for c in chunks])[order]
    is_buy = np.concatenate([c[2] for c in chunks])[order]
    gap = np.where(is_buy, BUY_GAP_S, VIEW_GAP_S) * 1000 * rng.exponential(size=len(item))
    gap = 1 + gap.astype(np.int64)  # ≥ 1 ms: strictly increasing within a session
    csum = np.cumsum(gap)
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    before = np.repeat(csum[first] - gap[first], np.diff(np.r_[first, len(item)]))
    timestamp = start[session] + csum - before

    events = validate_events(
        pd.DataFrame({"session_id": session, "timestamp": timestamp, "item_id": item, "is_buy": is_buy.astype(np.int8)}),
        name=f"simulator ({scale})",
    )
    latents = pd.DataFrame(
        {"session_id": np.arange(n_sessions), "stop_hazard": hazard, "buy_propensity": z, "drift_bucket": bucket}
    )
    info = {
        "scale": scale,
        "seed": int(seed),
        "sessions": int(n_sessions),
        "events": len(events),
        "purchases": int(is_buy.sum()),
        "intents": world.n_clusters,
        "simulator_version": SIMULATOR_VERSION,
        "world_checksum": world.checksum(),
    }
    return EventLog(events, name=f"simulator ({scale})", catalogue=np.arange(world.n_items), extras={"sim_sessions": latents}, info=info)


def drift_bucket(start_ms: np.ndarray) -> np.ndarray:
    """The popularity-drift time bucket of sessions starting at ``start_ms``."""
    frac = (np.asarray(start_ms, dtype=np.float64) - START_MS) / SPAN_MS
    return np.clip((frac * DRIFT_BUCKETS).astype(np.int64), 0, DRIFT_BUCKETS - 1)


# --- rollouts: the true value of logged states --------------------------------------------
def logged_runs(cluster: np.ndarray, new_session: np.ndarray) -> np.ndarray:
    """Run length after each event: consecutive events of its session in the same cluster."""
    idx = np.arange(len(cluster))
    starts = new_session.copy()
    starts[1:] |= cluster[1:] != cluster[:-1]
    return idx - np.maximum.accumulate(np.where(starts, idx, 0)) + 1


def true_returns(
    data,
    split: str = "test",
    gamma: float = 0.5,
    reward_click: float = 0.2,
    reward_buy: float = 1.0,
    n_rollouts: int = 64,
    horizon: int = 12,
    seed: int = 0,
    progress: bool = True,
    chunk_rows: int = 1 << 18,
) -> pd.DataFrame:
    """True ``V(s_t)`` and ``Q(s_t, a_t)`` of every event of ``split`` by simulator rollouts.

    ``data`` is a :class:`~mcrl_kit.data.prepare.PreparedData` made by the simulator. Rows
    follow ``data.replay(split)`` (sorted by session, then time; row ``i`` is buffer row
    ``i``); ``session`` is the prepared session index, ``step`` the event's position.

    - ``true_v`` = E[Σ_{k≥0} γ^k r_{t+k} | history before t, latents]: event t onward is
      simulated (the value of the state under the users' own behaviour);
    - ``true_q`` = r_t + γ·E[Σ_{k≥0} γ^k r_{t+1+k} | history including t]: the logged
      action's value; whether the session stops after t is simulated too (the logged
      ``done`` is not used).

    ``n_rollouts`` Monte-Carlo rollouts per event, each cut after ``horizon`` events (the
    tail beyond is at most ``γ^horizon · max reward / (1 − γ)``). Rows are processed in
    chunks of ``chunk_rows`` events × rollouts.
    """
    if not 0 <= gamma < 1 or n_rollouts < 1 or horizon < 1:
        raise DataError("true_returns", f"needs 0 ≤ gamma < 1, n_rollouts ≥ 1, horizon ≥ 1 (got {gamma}, {n_rollouts}, {horizon})",
                        "pass valid values")
    world, window, ev, hazard, z = _logged_state(data, split)
    n = len(ev)
    item, session, step, run = (ev[c].to_numpy() for c in ("sim_item", "session", "step", "run"))
    is_buy = ev["is_buy"].to_numpy().astype(bool)
    new = step == 0
    after = push(window, item)
    prev_buy = np.where(new, False, np.r_[False, is_buy[:-1]])
    prev_run = np.where(new, 0, np.r_[0, run[:-1]])
    reward = np.where(is_buy, reward_buy, reward_click)
    bucket = ev["drift_bucket"].to_numpy()

    rng = numpy_rng(seed, "simulator", "rollouts")
    true_v = np.empty(n)
    future = np.empty(n)  # E[Σ_k γ^k r_{t+1+k}], 0 where the session stops after t
    per_chunk = max(1, chunk_rows // n_rollouts)
    bounds = range(0, n, per_chunk)
    for lo in tqdm(bounds, desc=f"true returns ({split})", disable=not progress, leave=False):
        sl = slice(lo, min(n, lo + per_chunk))
        # rows × rollouts: every event's state repeated n_rollouts times
        p_win, a_win = np.repeat(window[sl], n_rollouts, axis=0), np.repeat(after[sl], n_rollouts, axis=0)
        p_buy, p_run, t, buy, rn, h, zz, bk = (
            np.repeat(a[sl], n_rollouts) for a in (prev_buy, prev_run, step, is_buy, run, hazard, z, bucket)
        )
        args = (rng, gamma, reward_click, reward_buy, horizon)
        # V: event t is certain (the state exists), then stop-or-continue after each event
        g = _rollout(world, p_win, p_buy, p_run, t, h, zz, bk, *args, first_certain=True)
        true_v[sl] = g.reshape(-1, n_rollouts).mean(axis=1)
        # Q's continuation: first the stop decision after the logged event t, then t + 1 onward
        g = _rollout(world, a_win, buy, rn, t + 1, h, zz, bk, *args, first_certain=False)
        future[sl] = g.reshape(-1, n_rollouts).mean(axis=1)
    return pd.DataFrame({"session": session, "step": step, "true_v": true_v, "true_q": reward + gamma * future})


def logged_windows(item: np.ndarray, step: np.ndarray, width: int = HISTORY) -> np.ndarray:
    """The window before each logged event: the session's previous ``width`` items (``-1`` before its start)."""
    window = np.full((len(item), width), -1, dtype=np.int64)
    for k in range(1, width + 1):
        src = np.flatnonzero(step >= k)
        window[src, width - k] = item[src - k]
    return window


def data_world(data, purpose: str = "the true-return rollout") -> World:
    """The world ``data`` (prepared from the simulator) was generated in, rebuilt from its config and checked
    against the checksum it recorded; a clear error for data of another source or of an older simulator."""
    config = data.config
    if config.source != "simulator":
        raise DataError(
            f"prepared data {data.root}", f"was made from source {config.source!r}, not the simulator: {purpose} needs the "
            "simulator's world (its users), which a logged dataset does not have",
            "use data prepared with --source simulator (offline metrics work on any data: `evaluate`)",
        )
    world = build_world(config.scale, config.seed, drift=getattr(config, "drift", 0.0))
    recorded = (data.stats.get("source_info") or {}).get("world_checksum")
    if (recorded is not None and recorded != world.checksum()) or world.n_items != data.n_items:
        raise DataError(
            f"prepared data {data.root}", "records a simulator world that does not match the one rebuilt from its config",
            "prepare it again (force=True) with this version of the kit, and do not edit its config.json",
        )
    return world


def _logged_state(data, split: str) -> tuple[World, np.ndarray, pd.DataFrame, np.ndarray, np.ndarray]:
    """``(world, window before each event, events, stop hazard, buy propensity)`` of a simulator split.

    The world is rebuilt from the prepared data's config and checked against the checksum
    it recorded; ``events`` (``data.split_events(split)``) gains ``sim_item`` (the
    simulator's id), ``step``, ``run`` and ``drift_bucket``.
    """
    world = data_world(data, "the true-return rollout")
    latents = data.extra("sim_sessions")
    if latents is None:
        raise DataError(f"prepared data {data.root}", "has no simulator latents (extra_sim_sessions.parquet)", "prepare it again")
    ev = data.split_events(split).copy()
    # prepared indices → the simulator's own ids (raw ids are stored as strings)
    item = data.items["raw_id"].astype(np.int64).to_numpy()[ev["item"].to_numpy()]
    raw_session = data.sessions["raw_id"].astype(np.int64).to_numpy()[ev["session"].to_numpy()]
    lat = latents.set_index("session_id").reindex(raw_session)
    session = ev["session"].to_numpy()
    n = len(ev)
    new = np.r_[True, session[1:] != session[:-1]] if n else np.zeros(0, bool)
    step = np.arange(n) - np.maximum.accumulate(np.where(new, np.arange(n), 0))
    ev["sim_item"], ev["step"], ev["run"] = item, step, logged_runs(world.cluster[item], new)
    ev["drift_bucket"] = lat["drift_bucket"].to_numpy().astype(np.int64) if "drift_bucket" in lat else np.zeros(n, np.int64)
    # the state before event t is the one after event t − 1 (nothing before a session's first)
    return world, logged_windows(item, step), ev, lat["stop_hazard"].to_numpy(), lat["buy_propensity"].to_numpy()


def _rollout(
    world: World, window, last_buy, run, t, hazard, z, bucket, rng, gamma, reward_click, reward_buy, horizon,
    first_certain,
) -> np.ndarray:
    """Discounted reward of up to ``horizon`` simulated events from each row's state."""
    total = np.zeros(len(window))
    row = np.arange(len(window))  # live rollouts only: every array is compacted as they stop
    for k in range(horizon):
        if k > 0 or not first_certain:
            live = ~_stops(t, hazard, rng)
            row, window, last_buy, run, t, hazard, z, bucket = (
                a[live] for a in (row, window, last_buy, run, t, hazard, z, bucket)
            )
        if len(row) == 0:
            break
        item, last_buy, run = _step(world, window, last_buy, run, t, z, rng, bucket)
        window = push(window, item)
        total[row] += gamma**k * np.where(last_buy, reward_buy, reward_click)
        t = t + 1
    return total
