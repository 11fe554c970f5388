"""The embedded simulator: determinism, scale statistics, learnable structure, true returns."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from mcrl_kit import paths
from mcrl_kit.config import DataConfig
from mcrl_kit.data import prepare
from mcrl_kit.data import simulator as sim
from mcrl_kit.errors import DataError

GAMMA, R_CLICK, R_BUY = 0.5, 0.2, 1.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny scale through the shared path (also the end-to-end check of prepare)."""
    return prepare(DataConfig(source="simulator", scale="tiny"), out=tmp_path_factory.mktemp("sim") / "d", progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return prepare(DataConfig(source="simulator", scale="small"), out=tmp_path_factory.mktemp("sim") / "d", progress=False)


def session_stats(events: pd.DataFrame) -> dict:
    n, s = len(events), events["session_id"].nunique()
    return {"sessions": s, "mean_length": n / s, "buy_share": events["is_buy"].mean()}


# --- determinism and the schema -------------------------------------------------------------
def test_scales_are_known_to_the_config():
    assert set(sim.SCALES) == {"tiny", "small", "retailrocket", "yoochoose"}
    sim.check_scale("yoochoose")  # the simulator's registry checks scale names


def test_same_seed_same_log_other_seed_other_log():
    a = sim.simulate("tiny", seed=3, progress=False)
    b = sim.simulate("tiny", seed=3, progress=False)
    c = sim.simulate("tiny", seed=4, progress=False)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.extras["sim_sessions"], b.extras["sim_sessions"])
    assert a.info == b.info
    assert len(a.events) != len(c.events) or not a.events.equals(c.events)
    assert a.info["world_checksum"] != c.info["world_checksum"]  # the world follows the seed too


def test_explicit_generators_drive_world_and_sessions():
    def log(world_seed: int, session_seed: int):
        world = sim.build_world("tiny", rng=np.random.default_rng(world_seed))
        return sim.simulate("tiny", sessions=100, progress=False, world=world, rng=np.random.default_rng(session_seed))

    a, b = log(1, 2), log(1, 2)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert not log(1, 3).events.equals(a.events)  # other session generator, same world
    assert log(5, 2).info["world_checksum"] != a.info["world_checksum"]
    assert a.info["world_checksum"] != sim.build_world("tiny", 0).checksum()  # the generator, not the seed


def test_sessions_override_keeps_the_world():
    log = sim.simulate("tiny", seed=0, sessions=150, progress=False)
    assert log.events["session_id"].nunique() == 150
    assert len(log.extras["sim_sessions"]) == 150
    assert log.info["world_checksum"] == sim.build_world("tiny", 0).checksum()
    with pytest.raises(DataError):
        sim.simulate("tiny", sessions=0, progress=False)


def test_tiny_log_shape_and_statistics():
    log = sim.simulate("tiny", seed=0, progress=False)
    ev = log.events
    assert list(ev.columns) == ["session_id", "timestamp", "item_id", "is_buy"]
    assert log.name == "simulator (tiny)"
    np.testing.assert_array_equal(log.catalogue, np.arange(300))
    st = session_stats(ev)
    assert st["sessions"] == 2000
    assert 5.8 <= st["mean_length"] <= 6.8
    assert 0.03 <= st["buy_share"] <= 0.065
    assert ev.groupby("session_id").size().min() >= sim.MIN_LENGTH
    # timestamps strictly increase within a session
    same = ev["session_id"].to_numpy()[1:] == ev["session_id"].to_numpy()[:-1]
    assert (np.diff(ev["timestamp"].to_numpy())[same] > 0).all()
    # a purchase always directly follows a view of the same item
    buy = np.flatnonzero(ev["is_buy"].to_numpy() == 1)
    assert len(buy) and (buy > 0).all() and same[buy - 1].all()
    assert (ev["is_buy"].to_numpy()[buy - 1] == 0).all()
    # ...mostly of that item, not always: the history must not give every purchase away
    share_last = (ev["item_id"].to_numpy()[buy] == ev["item_id"].to_numpy()[buy - 1]).mean()
    assert 0.6 <= share_last <= 0.9, share_last
    lat = log.extras["sim_sessions"]
    assert list(lat.columns) == ["session_id", "stop_hazard", "buy_propensity", "drift_bucket"]
    assert lat["stop_hazard"].between(0, 1).all()


def test_retailrocket_scale():
    log = sim.simulate("retailrocket", seed=0, progress=False)  # ~2 s
    ev = log.events
    st = session_stats(ev)
    assert len(log.catalogue) == 70_852
    assert st["sessions"] == 195_523
    assert abs(st["mean_length"] - 6.3) <= 0.5
    assert abs(st["buy_share"] - 0.046) <= 0.01
    # popularity shaped like the real one (real: median 7, top 1 % of items hold 14.7 %)
    counts = np.sort(np.bincount(ev["item_id"], minlength=70_852))[::-1]
    assert 5 <= np.median(counts) <= 10
    assert 0.11 <= counts[:708].sum() / counts.sum() <= 0.18


def test_yoochoose_scale():
    log = sim.simulate("yoochoose", seed=0, progress=False)
    st = session_stats(log.events)
    assert len(log.catalogue) == 26_702
    assert st["sessions"] == 200_000
    clicks = (log.events["is_buy"] == 0).sum() / st["sessions"]
    buys = log.events["is_buy"].sum() / st["sessions"]
    assert abs(clicks - 5.6) <= 0.4 and abs(buys - 0.22) <= 0.06


def test_yoochoose_world_size():
    assert sim.build_world("yoochoose", 0).n_items == 26_702
    assert len(sim.simulate("yoochoose", sessions=50, progress=False).catalogue) == 26_702


# --- calibrated repeats: what the history gives away, as in the real logs ----------------------
def real_repeat_stats() -> dict[str, pd.DataFrame]:
    """The real samples' repeat shares with their 95 % bootstrap intervals (skipped without ../shared)."""
    from mcrl_kit import experiments
    from mcrl_kit.data import calibrate, stats

    yoochoose = paths.shared_file(*calibrate.YOOCHOOSE_SAMPLE)
    if not experiments.sample_available() or yoochoose is None:
        pytest.skip("needs the real samples of ../shared/data")
    rr = experiments.load_data("retailrocket-sample")
    return {
        "retailrocket": stats.repeat_stats(rr.split_events("train")),
        "yoochoose": stats.repeat_stats(calibrate.yoochoose_sample_events(yoochoose)),
    }


@pytest.fixture(scope="module")
def real_stats():
    return real_repeat_stats()


def simulated_stats(scale: str, sessions: int) -> pd.DataFrame:
    from mcrl_kit.data import calibrate, stats

    return stats.repeat_stats(calibrate.log_events(sim.simulate(scale, sessions=sessions, progress=False)), n_boot=1)


@pytest.mark.shared
@pytest.mark.parametrize(("scale", "sessions"), [("tiny", 2000), ("small", 20000), ("retailrocket", 20000), ("yoochoose", 20000)])
def test_repeat_shares_fall_inside_the_real_intervals(real_stats, scale, sessions):
    """Each scale's share of purchases / clicks that repeat the last item or the state lies inside the
    95 % bootstrap interval (over sessions) of the real sample it imitates."""
    real = real_stats[sim.IMITATES[scale]]
    got = simulated_stats(scale, sessions)
    for name in real.index:
        if real.loc[name, "events"] == 0:  # the Yoochoose sample has no purchases: its scale borrows RetailRocket's
            real_row = real_stats["retailrocket"].loc[name]
        else:
            real_row = real.loc[name]
        assert real_row["low"] <= got.loc[name, "share"] <= real_row["high"], (scale, name, got.loc[name, "share"], real_row.to_dict())


@pytest.mark.shared
def test_recorded_targets_are_the_real_samples(real_stats):
    """simulator.TARGETS (what the scales were fitted to) are the shares measured on the samples today."""
    for target, real in real_stats.items():
        for name in real.index:
            if real.loc[name, "events"]:
                assert sim.TARGETS[target][name] == pytest.approx(real.loc[name, "share"], abs=0.0006), (target, name)


def test_repeat_stats_by_hand():
    from mcrl_kit.data import stats

    # session 0: a b a [buy a] c ; session 1: d d
    ev = pd.DataFrame({"session": [0, 0, 0, 0, 0, 1, 1], "item": [1, 2, 1, 1, 3, 4, 4], "is_buy": [0, 0, 0, 1, 0, 0, 0]})
    got = stats.repeat_stats(ev, state_len=10, n_boot=20)["share"]
    assert got["purchase = last item"] == 1.0 and got["purchase in state"] == 1.0
    # clicks: a(first) b a(in state) c d(first) d(last) → last 1/6, in state 2/6
    assert got["click = last item"] == pytest.approx(1 / 6) and got["click in state"] == pytest.approx(2 / 6)
    short = stats.repeat_stats(ev, state_len=1, n_boot=1)["share"]
    assert short["click in state"] == pytest.approx(1 / 6)  # a state of one item holds only the last
    with pytest.raises(DataError, match="is_buy"):
        stats.repeat_stats(ev.drop(columns="is_buy"))


def test_fit_behaviour_reaches_its_targets():
    from mcrl_kit.data import calibrate

    targets = {"purchase = last item": 0.5, "purchase in state": 0.7, "click = last item": 0.3, "click in state": 0.5,
               "purchase share": 0.06}
    fit = calibrate.fit_behaviour("tiny", targets, sessions=4000, rounds=9)
    for name, value in targets.items():
        assert fit[f"measured/{name}"] == pytest.approx(value, abs=0.05), (name, fit)


def test_popularity_drift_moves_new_intents_over_time():
    """With drift the items a session starts on depend on when it starts; without, they do not."""
    def first_items(drift):
        log = sim.simulate("small", sessions=6000, progress=False, drift=drift)
        ev, lat = log.events, log.extras["sim_sessions"]
        first = ev.groupby("session_id")["item_id"].first()
        late = lat.set_index("session_id")["drift_bucket"].reindex(first.index) >= sim.DRIFT_BUCKETS // 2
        trend = sim.numpy_rng(0, "simulator", "drift").normal(size=sim.SCALES["small"].n_items)
        return trend[first[late].to_numpy()].mean() - trend[first[~late].to_numpy()].mean()

    assert first_items(1.0) > 0.3  # rising items are drawn more later in the log
    assert abs(first_items(0.0)) < 0.1
    assert sim.build_world("tiny", 0, drift=0.5).checksum() != sim.build_world("tiny", 0).checksum()
    assert np.array_equal(sim.build_world("tiny", 0, drift=0.5).cluster, sim.build_world("tiny", 0).cluster)
    with pytest.raises(sim.ConfigError, match="drift"):
        sim.build_world("tiny", 0, drift=-1)


def test_caches_follow_the_simulator_version(tmp_path, monkeypatch):
    """A newer simulator (or data format) gets a new cache folder and re-prepares an explicit --out."""
    import importlib

    prep = importlib.import_module("mcrl_kit.data.prepare")  # the module, not the function of that name

    config = DataConfig(source="simulator", scale="tiny", sessions=60)
    key = prep.cache_key(config)
    first = prepare(config, out=tmp_path / "d", progress=False)
    assert first.stats["source_info"]["simulator_version"] == sim.SIMULATOR_VERSION
    monkeypatch.setattr(sim, "SIMULATOR_VERSION", sim.SIMULATOR_VERSION + 1)
    assert prep.cache_key(config) != key
    before = (tmp_path / "d" / "events.parquet").stat().st_mtime_ns
    again = prepare(config, out=tmp_path / "d", progress=False)
    assert (tmp_path / "d" / "events.parquet").stat().st_mtime_ns != before  # rebuilt, not reused
    assert again.stats["source_info"]["simulator_version"] == sim.SIMULATOR_VERSION
    monkeypatch.setattr(prep, "DATA_FORMAT", prep.DATA_FORMAT + 1)
    assert prep.cache_key(config) != key


# --- the structure the paper's question needs -------------------------------------------------
def hit_rates_at_10(data) -> tuple[float, float]:
    """HR@10 on the test split of popularity and of first-order (bigram) counts from train."""
    n = data.n_items

    def transitions(split):
        b = data.replay(split)
        prev = b.state.numpy()[np.arange(len(b)), b.len_state.numpy() - 1].astype(np.int64)
        prev[b.step.numpy() == 0] = n  # the first event has no previous item (pad)
        return prev, b.action.numpy().astype(np.int64)

    prev, action = transitions("train")
    pop = np.bincount(action, minlength=n).astype(float)
    bigram = np.zeros((n + 1, n))
    np.add.at(bigram, (prev, action), 1.0)
    bigram[n] = pop  # no previous item: fall back to popularity
    bigram += 1e-6 * pop  # break ties by popularity
    t_prev, t_action = transitions("test")

    def hr(scores):
        rank = (scores > scores[np.arange(len(t_action)), t_action][:, None]).sum(axis=1)
        return float((rank < 10).mean())

    return hr(np.broadcast_to(pop, (len(t_action), n))), hr(bigram[t_prev])


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_bigram_beats_popularity(scale, request):
    data = request.getfixturevalue(scale)
    pop, bigram = hit_rates_at_10(data)
    # measured (calibrated simulator): tiny 0.26 vs 0.75, small 0.06 vs 0.72
    assert bigram >= pop + 0.25, (pop, bigram)
    assert bigram >= 2 * pop, (pop, bigram)


def test_purchase_probability_grows_with_interest(small):
    """P(the next event buys the viewed item | a view that is the n-th event in its intent) grows in n."""
    world = sim.build_world("small", 0)
    ev = small.events
    session, item, buy = ev["session"].to_numpy(), ev["item"].to_numpy(), ev["is_buy"].to_numpy()
    new = np.r_[True, session[1:] != session[:-1]]
    run = sim.logged_runs(world.cluster[item], new)
    view = np.flatnonzero((buy == 0)[:-1] & ~new[1:])  # views with a next event in the session
    bought = buy[view + 1] == 1
    rate = {k: bought[(run[view] >= lo) & (run[view] <= hi)].mean() for k, (lo, hi) in
            {"1": (1, 1), "2": (2, 2), "3-4": (3, 4), "5-9": (5, 9), "10+": (10, 10**9)}.items()}
    values = list(rate.values())
    assert all(b > a for a, b in itertools.pairwise(values)), rate
    assert rate["5-9"] > 3 * rate["1"], rate


# --- true returns ------------------------------------------------------------------------------
def logged_returns(data, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Discounted Monte-Carlo return of every logged event, and its session."""
    ev = data.split_events(split)
    r = np.where(ev["is_buy"].to_numpy() == 1, R_BUY, R_CLICK)
    s = ev["session"].to_numpy()
    g = np.zeros(len(r))
    for i in range(len(r) - 1, -1, -1):
        g[i] = r[i] + (GAMMA * g[i + 1] if i + 1 < len(r) and s[i + 1] == s[i] else 0.0)
    return g, s


def test_true_returns(tiny):
    tr = sim.true_returns(tiny, "test", GAMMA, R_CLICK, R_BUY, n_rollouts=32, seed=0, progress=False)
    again = sim.true_returns(tiny, "test", GAMMA, R_CLICK, R_BUY, n_rollouts=32, seed=0, progress=False)
    other = sim.true_returns(tiny, "test", GAMMA, R_CLICK, R_BUY, n_rollouts=32, seed=1, progress=False)
    pd.testing.assert_frame_equal(tr, again)
    assert not np.allclose(tr["true_v"], other["true_v"])
    assert list(tr.columns) == ["session", "step", "true_v", "true_q"]

    buf = tiny.replay("test")
    assert len(tr) == len(buf)
    np.testing.assert_array_equal(tr["step"].to_numpy(), buf.step.numpy())
    reward = buf.reward(R_CLICK, R_BUY).numpy()
    bound = R_BUY / (1 - GAMMA)
    assert (tr["true_v"] >= R_CLICK - 1e-12).all() and (tr["true_v"] <= bound).all()
    assert (tr["true_q"] >= reward - 1e-6).all() and (tr["true_q"] <= bound).all()



def test_true_returns_match_logged_returns(small):
    """E[G_t | s_t] = V(s_t) and E[G_t | s_t, a_t] = Q(s_t, a_t) for the logged returns G_t.

    Checked on the mean gap overall and at early / middle / late steps (a wrong stop rule
    or a wrong state shows up there), within sampling error: sessions are the independent
    units (a session-clustered standard error); few rollouts suffice, as their noise
    averages out over 13k events.
    """
    tr = sim.true_returns(small, "test", GAMMA, R_CLICK, R_BUY, n_rollouts=8, seed=0, progress=False)
    g, s = logged_returns(small, "test")
    _, unit = np.unique(s, return_inverse=True)
    step = tr["step"].to_numpy()
    for col in ("true_v", "true_q"):
        for name, mask in {"all": step >= 0, "step 0": step == 0, "steps 1-2": (step >= 1) & (step <= 2), "steps 3+": step >= 3}.items():
            diff = np.where(mask, g - tr[col].to_numpy(), 0.0)
            se = np.sqrt(np.sum(np.bincount(unit, weights=diff) ** 2)) / mask.sum()
            assert abs(diff.sum() / mask.sum()) <= 4 * se, (col, name, diff.sum() / mask.sum(), se)
    # the values carry the per-state signal, not just the mean
    assert np.corrcoef(g, tr["true_q"])[0, 1] > 0.6
    assert np.corrcoef(g, tr["true_v"])[0, 1] > 0.3


def test_true_returns_refuses_other_sources(tiny):
    fake = dataclasses.replace(tiny, config=tiny.config.replace(source="events", paths=("log.csv",)))
    with pytest.raises(DataError, match="simulator"):
        sim.true_returns(fake, "test", progress=False)
    moved = dataclasses.replace(tiny, config=tiny.config.replace(seed=1))  # a different world
    with pytest.raises(DataError, match="does not match"):
        sim.true_returns(moved, "test", progress=False)


# --- the prepared folder and the popularity fit --------------------------------------------------
def test_prepare_end_to_end(tiny):
    assert tiny.stats["items"] == 300 and tiny.stats["sessions"] == 2000
    assert tiny.stats["dataset"] == "simulator (tiny)"
    latents = tiny.extra("sim_sessions")
    assert latents is not None and len(latents) == 2000
    assert tiny.stats["source_info"]["world_checksum"] == sim.build_world("tiny", 0).checksum()
    summary = sim.world_summary("tiny", 0)
    assert summary["items"] == 300 and summary["intents (clusters)"] == 15


def test_fit_popularity_recovers_its_law():
    truth = {"alpha": 0.5, "offset": 1e-3, "cutoff": 2.0, "curve": -0.5}
    counts = 1e6 * sim.popularity_law(5_000, truth)
    fit = sim.fit_popularity(np.random.default_rng(0).permutation(counts))
    for key in ("alpha", "cutoff", "curve"):
        assert fit[key] == pytest.approx(truth[key], abs=0.01)
    assert fit["offset"] == pytest.approx(truth["offset"], rel=0.02)
    assert fit["rmse"] < 1e-3


@pytest.mark.shared
def test_popularity_constants_match_the_real_counts():
    path = paths.shared_file("sqn_preprocessing_stats", "retailrocket", "item_event_counts.csv.gz")
    if path is None:
        pytest.skip("shared/data (the real RetailRocket per-item counts) is not available")
    counts = pd.read_csv(path)["events"].to_numpy()
    assert len(counts) == 70_852
    fit = sim.fit_popularity(counts)
    for key, value in sim.POPULARITY.items():
        assert fit[key] == pytest.approx(value, rel=2e-3), key
