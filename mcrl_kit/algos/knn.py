"""Session-kNN: SKNN (Jannach & Ludewig, RecSys 2017) and VSKNN (Ludewig & Jannach 2018).

The non-neural baselines of ``BASELINES.md`` that reassessments of RL recommenders find
hard to beat. No learning: ``fit`` indexes the training sessions, and every state is
scored by the training sessions that look like it.

**The query** is the current session's events before ``t`` *as far as the state holds
them*: the distinct items of ``states[:, :lengths]`` (the last ``L`` = 10 events; an
older part of a long session is not seen). The first event's state (all pads) has an
empty query.

**SKNN.** The query ``q`` and every training session ``n`` are binary item vectors;
their similarity is the cosine ::

    sim(q, n) = |q ∩ n| / (√|q| · √|n|)

The candidates are the ``m`` most recent training sessions (by the time of their last
event) that share at least one item with the query; the neighbours ``N_k(q)`` are the
``k`` most similar of them (equal similarities: the more recent first). An item's score
is the sum of the similarities of the neighbours that contain it ::

    score(i) = Σ_{n ∈ N_k(q), i ∈ n} sim(q, n)          (defaults k = 100, m = 500)

**VSKNN** is SKNN with a weighted query vector ``q_i = w_i · idf_i`` (the cosine then
divides by ``‖q‖₂`` instead of ``√|q|``), so that ``sim(q, n) = Σ_{i ∈ q ∩ n} q_i /
(‖q‖ · √|n|)``:

- *linear decay over positions* (``decay``): of the state's ``len`` events, the item at
  position ``p`` (1 = the oldest, ``len`` = the most recent; an item that occurs twice
  counts at its last position) weighs ``p / len`` — the reference's default ``div``
  weighting: the most recent item weighs 1 and every older one a step of ``1/len`` less;
- *IDF-weighted matches* (``idf``): ``idf_i = log(S / S_i)``, ``S`` training sessions of
  which ``S_i`` contain ``i`` (an item in every session matches nothing).

With both switches off VSKNN is SKNN (``tests/test_knn.py`` checks it).

**Ranking** (what :meth:`SKNN.ranks` computes from the sparse scores, never a ``[B,
n_items]`` tensor): the items with a kNN score (> 0) first, by score; then every other
item by its training popularity (:class:`~.popularity.Popularity`'s counts). Ties count
against the logged item, as everywhere in the kit. :meth:`SKNN.scores` builds the dense
equivalent for the few callers that want it (the inspector, the tests): the kNN score
where there is one, else ``count − (max count + 1)`` (negative, so below every kNN score,
in popularity order; integers, exact in float32).

**Where this differs from rn5l/session-rec** (``algorithms/knn/sknn.py``, ``vsknn.py``):
the cosine is the cosine (the reference's ``li / sqrt(la) * sqrt(lb)`` multiplies by
``√|n|``); no reminders, popularity boost or final normalisation (a normalisation does
not change a ranking); VSKNN's decay and IDF weight the *query* as ``BASELINES.md``
defines it, and the reference's extra decay of each neighbour's score by its most
recent match (``weighting_score``) is left out; IDF counts sessions, not events.

**How it runs** (vectorised over a batch of states, ``CHUNK`` rows at a time, ragged: no
tensor padded to ``m`` or ``k`` per row). ``fit`` renumbers the training sessions by
recency (0 = the one that ended last) and keeps two CSR indexes as buffers: session → its
distinct items, and item → its sessions in increasing number, i.e. most recent first.
The ``m`` most recent candidates of a query are then among the first ``m`` sessions of
each of its items' lists: those are gathered, one entry per (state, query item, session),
and sorted by (state, session); the first ``m`` distinct sessions of each state are its
candidates. Each entry *is* a match — a candidate among the ``m`` most recent of the union
is among the ``m`` most recent of every list it is on —, so the overlap ``q · n`` is the
sum of the entries' weights, with no second look-up. Then the top ``k`` of each state (a
stable sort by similarity, then by state), the neighbours' items expanded from the CSR,
and one sum per (state, item). The RetailRocket-scale simulator (70,852 items, 156,418
training sessions) fits in under a second and its 127,510 validation states score in
about 4 s on one thread, 25–40 s on two threads of a busy 2-core machine, where the ops,
small, mostly wait for the second thread (``benchmarks/knn_speed.py``).

The index is sized by the data: a fresh instance holds empty buffers, and loading a saved
``state_dict`` resizes them to the saved ones first (:meth:`SKNN._load_from_state_dict`),
so ``model.pt`` loads with ``weights_only=True`` into a model built from the config alone.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from ..config import AlgoConfig, ModelConfig, Param
from ..data.prepare import PreparedData
from ..data.replay import ReplayBuffer
from ..errors import ConfigError
from .base import Algo

#: states scored at once inside ``ranks``/``scores``: bounds the ragged arrays (≤ rows·L·m matches, rows·k neighbours)
CHUNK = 1024


@dataclasses.dataclass
class SKNNConfig(AlgoConfig):
    """SKNN's neighbourhood (the MDP fields of :class:`AlgoConfig` are unused: nothing is learned)."""
    SEARCH: ClassVar[dict[str, Param]] = {"k": Param("int", 20, 500, log=True), "m": Param("int", 100, 2000, log=True)}

    #: neighbours: the k most similar sessions of the sample (the papers: 100)
    k: int = 100
    #: sample size: the m most recent training sessions sharing an item with the query (the papers: 500)
    m: int = 500

    def validate(self) -> None:
        super().validate()
        for field, example in (("k", 100), ("m", 500)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{type(self).__name__}.{field}", f"must be an integer ≥ 1, got {value!r}",
                                  f"give an integer ≥ 1, e.g. {example}")


@dataclasses.dataclass
class VSKNNConfig(SKNNConfig):
    """VSKNN: SKNN's neighbourhood and the two weightings of the query (both on by default)."""

    #: linear decay over the state's positions: the p-th of len events weighs p / len (the most recent 1)
    decay: bool = True
    #: weight each matched item by its IDF, log(training sessions / training sessions holding it)
    idf: bool = True


class SKNN(Algo):
    name = "sknn"
    Config = SKNNConfig
    trainable = False
    #: the buffers sized by the fitted data (resized on load)
    INDEX = ("session_start", "session_items", "item_start", "item_sessions")

    def __init__(self, n_items: int, state_len: int, model: ModelConfig, config: SKNNConfig, seed: int = 0):
        super().__init__(n_items, state_len, model, config, seed)
        # the popularity fallback, as Popularity counts it (clicks and purchases of the training transitions)
        self.register_buffer("counts", torch.zeros(n_items))
        # session s (renumbered by recency, 0 = the latest) holds session_items[session_start[s]:session_start[s + 1]]
        self.register_buffer("session_start", torch.zeros(1, dtype=torch.long))
        self.register_buffer("session_items", torch.zeros(0, dtype=torch.int32))
        # item i is in the sessions item_sessions[item_start[i]:item_start[i + 1]], increasing = most recent first
        self.register_buffer("item_start", torch.zeros(n_items + 1, dtype=torch.long))
        self.register_buffer("item_sessions", torch.zeros(0, dtype=torch.int32))

    @property
    def n_sessions(self) -> int:
        return len(self.session_start) - 1

    # --- fitting: two CSR indexes ----------------------------------------------------------
    def fit(self, buffer: ReplayBuffer, data: PreparedData | None = None) -> None:
        """Index the training sessions of ``data`` (its train split's events, for their timestamps).

        Without ``data`` the buffer's transitions are used and their order stands in for
        time (a session that comes later in the buffer counts as more recent).
        """
        if data is not None:
            ev = data.split_events("train")
            session, item, time = ev["session"].to_numpy(), ev["item"].to_numpy(), ev["timestamp"].to_numpy()
        else:
            session, item = buffer.session.cpu().numpy(), buffer.action.cpu().numpy()
            time = np.arange(len(item))
        self.fit_sessions(session, item, time)

    def fit_sessions(self, session: np.ndarray, item: np.ndarray, time: np.ndarray) -> None:
        """Index sessions given as flat events: session ids, item ids in ``[0, n_items)``, timestamps."""
        session, item, time = np.asarray(session), np.asarray(item, dtype=np.int64), np.asarray(time)
        n = self.n_items
        if len(item) and (item.min() < 0 or item.max() >= n):
            raise ValueError(f"item ids must lie in [0, {n}), got [{item.min()}, {item.max()}]")
        ids, sess = np.unique(session, return_inverse=True)
        n_sessions = len(ids)
        last = np.full(n_sessions, time.min() if len(time) else 0, dtype=time.dtype)
        np.maximum.at(last, sess, time)  # each session's recency: the time of its last event
        # renumber by recency (0 = ended last; equal times: the larger id first, for determinism), so that
        # "the m most recent" are "the m smallest numbers" and each item's sorted list starts with them
        by_recency = np.lexsort((np.arange(n_sessions), last))[::-1]
        number = np.empty(n_sessions, dtype=np.int64)
        number[by_recency] = np.arange(n_sessions)
        pairs = np.unique(number[sess] * n + item)  # the distinct (session, item) pairs, by session then item
        pair_session, pair_item = pairs // n, pairs % n
        session_start = np.zeros(n_sessions + 1, dtype=np.int64)
        session_start[1:] = np.cumsum(np.bincount(pair_session, minlength=n_sessions))
        item_start = np.zeros(n + 1, dtype=np.int64)
        item_start[1:] = np.cumsum(np.bincount(pair_item, minlength=n))
        by_item = np.argsort(pair_item, kind="stable")  # stable: each item's sessions stay in increasing number

        device = self.counts.device
        self.counts = torch.from_numpy(np.bincount(item, minlength=n).astype(np.float32)).to(device)
        self.session_start = torch.from_numpy(session_start).to(device)
        self.session_items = torch.from_numpy(pair_item.astype(np.int32)).to(device)
        self.item_start = torch.from_numpy(item_start).to(device)
        self.item_sessions = torch.from_numpy(pair_session[by_item].astype(np.int32)).to(device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the index is as large as the data it was fitted on: take the saved sizes, then torch copies (and checks)
        for name in self.INDEX:
            saved = state_dict.get(prefix + name)
            if isinstance(saved, torch.Tensor):
                self._buffers[name] = torch.empty_like(saved, device=self._buffers[name].device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- the query ---------------------------------------------------------------------------
    def _query(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(is_last [B, L], weight [B, L])``: the slots holding an item's last occurrence in the state (each
        distinct item once) and its weight in the query vector (0 elsewhere)."""
        slot = torch.arange(states.shape[1], device=states.device)
        valid = (slot[None, :] < lengths[:, None]) & (states < self.n_items)
        same = states[:, :, None] == states[:, None, :]  # [B, L, L]
        later = slot[None, None, :] > slot[None, :, None]
        is_last = valid & ~(same & later & valid[:, None, :]).any(-1)
        return is_last, self._weights(states, lengths, is_last)

    def _weights(self, states: torch.Tensor, lengths: torch.Tensor, is_last: torch.Tensor) -> torch.Tensor:
        return is_last.float()  # SKNN: a binary item set

    # --- neighbours ----------------------------------------------------------------------------
    def _neighbours(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(row, session, sim)`` of each state's neighbours: at most ``k`` per row, sim > 0, grouped by row
        (most similar first; equal similarities: the more recent first). Ragged: no ``[B, m]`` padding."""
        is_last, weight = self._query(states, lengths)
        B, L = states.shape
        n_sessions, m, device = self.n_sessions, self.config.m, states.device
        item = states.clamp(max=self.n_items - 1).reshape(-1)
        start = self.item_start[item]
        # the m most recent sessions of each query item are its list's first m entries
        take = torch.where(is_last.reshape(-1), (self.item_start[item + 1] - start).clamp(max=m), 0)
        slot = torch.repeat_interleave(take)  # the (row, query slot), as row * L + slot, of each entry
        if len(slot) == 0:  # empty queries, items never seen in training: no neighbours
            none = torch.zeros(0, dtype=torch.long, device=device)
            return none, none, none.float()
        offset = torch.arange(len(slot), device=device) - (take.cumsum(0) - take)[slot]
        session = self.item_sessions[start[slot] + offset].long()

        # each entry is one match (query item, candidate session); sorted by (row, session, slot), the
        # matches of one candidate are adjacent, the candidates of a row in recency order
        key = ((slot // L) * n_sessions + session) * L + slot % L
        key = key.sort().values
        pair, slot = key // L, key % L + (key // L // n_sessions) * L
        new = torch.ones_like(pair, dtype=torch.bool)
        new[1:] = pair[1:] != pair[:-1]
        which = new.cumsum(0) - 1  # the candidate of each match
        pair = pair[new]
        # q · n: the weights of the matched items, summed in slot order
        overlap = torch.zeros(len(pair), device=device).index_add_(0, which, weight.reshape(-1)[slot])
        row, session = pair // n_sessions, pair % n_sessions

        # the m most recent candidates of each row (the union may hold more)
        keep = (_rank_in_row(row, B) < m) & (overlap > 0)
        row, session, overlap = row[keep], session[keep], overlap[keep]
        size = (self.session_start[session + 1] - self.session_start[session]).float()
        norm = weight.square().sum(1).sqrt()  # ‖q‖ (SKNN: √|q|)
        sim = overlap / (norm[row] * size.sqrt())

        # the k most similar of each row: by sim, then (stable) by row, so equal sims keep the recency order
        order = torch.sort(sim, descending=True, stable=True).indices
        order = order[torch.sort(row[order], stable=True).indices]
        row, session, sim = row[order], session[order], sim[order]
        keep = _rank_in_row(row, B) < self.config.k
        return row[keep], session[keep], sim[keep]

    # --- scores ------------------------------------------------------------------------------
    def item_scores(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kNN scores, sparse: ``(row, item, score)`` of every item some neighbour holds (score > 0),
        sorted by (row, item). ``CHUNK`` states at a time."""
        states, lengths = states.long(), lengths.long()
        parts = []
        for lo in range(0, states.shape[0], CHUNK):
            row, item, score = self._chunk_scores(states[lo:lo + CHUNK], lengths[lo:lo + CHUNK])
            parts.append((row + lo, item, score))
        if not parts:
            empty = torch.zeros(0, dtype=torch.long, device=states.device)
            return empty, empty, empty.float()
        return tuple(torch.cat(p) for p in zip(*parts))

    def _chunk_scores(self, states: torch.Tensor, lengths: torch.Tensor):
        row, neighbour, sim = self._neighbours(states, lengths)
        # every neighbour's items, expanded from the CSR: one entry per (neighbour, item)
        first = self.session_start[neighbour]
        size = self.session_start[neighbour + 1] - first
        which = torch.repeat_interleave(size)  # the neighbour of each entry
        offset = torch.arange(len(which), device=states.device) - (size.cumsum(0) - size)[which]
        item = self.session_items[first[which] + offset].long()
        # summed per (state, item)
        key, inverse = torch.unique(row[which] * self.n_items + item, return_inverse=True)
        score = torch.zeros(len(key), device=states.device).index_add_(0, inverse, sim[which])
        return key // self.n_items, key % self.n_items, score

    def ranks(self, states: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """0-based rank of ``target``: how many other items rank above or tie with it (no ``[B, N]`` tensor)."""
        row, item, score = self.item_scores(states, lengths)
        B, n = len(target), self.n_items
        target = target.long()
        # the logged item's own kNN score (0: none); keys are sorted, so a binary search finds it
        key, wanted = row * n + item, torch.arange(B, device=target.device) * n + target
        at = torch.searchsorted(key, wanted).clamp(max=max(len(key) - 1, 0))
        found = key[at] == wanted if len(key) else torch.zeros(B, dtype=torch.bool, device=target.device)
        own = torch.where(found, score[at] if len(key) else 0.0, 0.0)
        # scored: the scored items at least as high, itself aside
        above = torch.bincount(row[score >= own[row]], minlength=B) - 1
        # unscored: every scored item, then the unscored ones counted at least as often
        count = self.counts[target]
        scored = torch.bincount(row, minlength=B)
        scored_as_often = torch.bincount(row[self.counts[item] >= count[row]], minlength=B)  # already in ge
        outside = scored + at_least_as_often(self.counts)[target] - scored_as_often
        return torch.where(found, above, outside)

    def direct_ranks(self):
        return self.ranks

    def scores(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Dense scores that rank as :meth:`ranks`: the kNN score, else ``count − (max count + 1)`` (< 0)."""
        out = (self.counts - (self.counts.max() + 1)).expand(states.shape[0], -1).clone()
        row, item, score = self.item_scores(states, lengths)
        out[row, item] = score
        return out

    def param_counts(self) -> dict[str, int]:
        return {"params": 0, "params_frozen": 0}


class VSKNN(SKNN):
    name = "vsknn"
    Config = VSKNNConfig

    def _weights(self, states: torch.Tensor, lengths: torch.Tensor, is_last: torch.Tensor) -> torch.Tensor:
        weight = is_last.float()
        if self.config.decay:  # the p-th of len events weighs p / len: the most recent 1
            position = torch.arange(1, states.shape[1] + 1, device=states.device)
            weight = weight * position[None, :] / lengths[:, None]
        if self.config.idf:
            weight = weight * self.idf()[states.clamp(max=self.n_items - 1)]
        return weight

    def idf(self) -> torch.Tensor:
        """``log(S / S_i)`` per item (0 for an item in no training session: it matches nothing anyway)."""
        held = (self.item_start[1:] - self.item_start[:-1]).float()
        return torch.where(held > 0, torch.log(max(self.n_sessions, 1) / held.clamp(min=1)), 0.0)


def _rank_in_row(row: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Each entry's position among the entries of its row, for entries grouped by row (0 = the first)."""
    count = torch.bincount(row, minlength=n_rows)
    return torch.arange(len(row), device=row.device) - (count.cumsum(0) - count)[row]


def at_least_as_often(counts: torch.Tensor) -> torch.Tensor:
    """For each item, how many other items are counted at least as often (ties count against it)."""
    order = torch.sort(counts).values
    return (len(counts) - torch.searchsorted(order, counts, right=False) - 1).long()
