"""Replay-buffer invariants on hand-made sessions (PROTOCOL.md → MDP and replay buffer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mcrl_kit.config import DataConfig
from mcrl_kit.data.prepare import load_prepared, write_prepared
from mcrl_kit.data.replay import ReplayBuffer
from mcrl_kit.data.schema import EventLog, validate_events
from mcrl_kit.data.split import split_sessions
from mcrl_kit.seeding import numpy_rng

P = 9  # pad id for a catalogue of 9 items


def _buffer(sessions, state_len=3):
    session = np.concatenate([[i] * len(s) for i, s in enumerate(sessions)])
    items = np.concatenate([[a for a, _ in s] for s in sessions])
    buys = np.concatenate([[b for _, b in s] for s in sessions])
    return ReplayBuffer.from_events(session, items, buys, n_items=P, state_len=state_len)


def test_states_are_right_padded_histories():
    rb = _buffer([[(1, 0), (2, 0), (3, 1), (4, 0), (5, 0)], [(7, 0), (8, 1)]])
    assert rb.state.tolist() == [
        [P, P, P], [1, P, P], [1, 2, P], [1, 2, 3], [2, 3, 4],  # last 3 items before each event
        [P, P, P], [7, P, P],
    ]
    assert rb.len_state.tolist() == [1, 1, 2, 3, 3, 1, 1]  # empty history counts as 1
    assert rb.next_state.tolist() == [
        [1, P, P], [1, 2, P], [1, 2, 3], [2, 3, 4], [3, 4, 5],
        [7, P, P], [7, 8, P],
    ]
    assert rb.len_next_state.tolist() == [1, 2, 3, 3, 3, 1, 2]
    assert rb.action.tolist() == [1, 2, 3, 4, 5, 7, 8]
    assert rb.is_buy.tolist() == [False, False, True, False, False, False, True]
    assert rb.done.tolist() == [False, False, False, False, True, False, True]
    assert rb.session.tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert rb.step.tolist() == [0, 1, 2, 3, 4, 0, 1]


def test_next_state_is_the_following_state_within_a_session():
    rng = np.random.default_rng(3)
    sessions = [[(int(rng.integers(P)), int(rng.integers(2))) for _ in range(rng.integers(1, 15))] for _ in range(20)]
    rb = _buffer(sessions, state_len=4)
    same = ~rb.done[:-1]
    assert torch.equal(rb.next_state[:-1][same], rb.state[1:][same])
    assert torch.equal(rb.len_next_state[:-1][same], rb.len_state[1:][same])
    assert int(rb.done.sum()) == len(sessions)


def test_single_event_session_and_rewards():
    rb = _buffer([[(3, 1)], [(2, 0), (2, 0)]])
    assert rb.done.tolist() == [True, False, True]
    assert rb.state[0].tolist() == [P, P, P] and rb.len_state[0] == 1
    assert rb.reward().tolist() == pytest.approx([1.0, 0.2, 0.2])
    assert rb.reward(reward_click=0.5, reward_buy=2.0).tolist() == pytest.approx([2.0, 0.5, 0.5])
    batch = rb.batch(torch.tensor([0, 2]), reward_click=0.1, reward_buy=3.0)
    assert batch.reward.tolist() == pytest.approx([3.0, 0.1])
    assert batch.state.dtype == torch.long and batch.action.dtype == torch.long


def test_from_events_refuses_out_of_range_items():
    with pytest.raises(ValueError, match="item ids"):
        ReplayBuffer.from_events(np.array([0]), np.array([P]), np.array([0]), n_items=P)


def test_split_is_seeded_and_partitions_sessions():
    ids = np.arange(1000)
    a = split_sessions(ids, numpy_rng(1, "split"))
    b = split_sessions(ids, numpy_rng(1, "split"))
    c = split_sessions(ids, numpy_rng(2, "split"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])
    assert [len(a[k]) for k in ("train", "val", "test")] == [800, 100, 100]
    assert np.array_equal(np.sort(np.concatenate(list(a.values()))), ids)


def test_prepared_folder_round_trip_and_split_buffers(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(60):
        for t in range(int(rng.integers(1, 8))):
            rows.append((f"user-{s}", 1000 - t if s % 2 else t, f"sku{int(rng.integers(30))}", int(rng.random() < 0.2)))
    df = pd.DataFrame(rows, columns=["session_id", "timestamp", "item_id", "is_buy"])
    cfg = DataConfig(source="events", paths=("inline",), seed=5)
    write_prepared(EventLog(validate_events(df), "toy"), cfg, tmp_path / "d")
    data = load_prepared(tmp_path / "d")
    assert data.config == cfg
    assert data.stats["sessions"] == 60 and data.stats["events"] == len(df)
    assert data.stats["clicks"] + data.stats["purchases"] == len(df)
    # every session lands in exactly one split and buffers cover all events
    assert sum(len(data.replay(s)) for s in ("train", "val", "test")) == len(df)
    # events are sorted by time within each session (odd sessions were given in reverse)
    assert (data.events.groupby("session")["timestamp"].diff().dropna() >= 0).all()
    # item indices follow the sorted raw ids (the reference's LabelEncoder)
    assert data.items["raw_id"].tolist() == sorted(data.items["raw_id"].tolist())
    assert not list(tmp_path.glob(".*tmp"))
