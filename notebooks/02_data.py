# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Data: sources and the protocol
#
# **What this teaches.** Where sessions come from and how the SQN/SA2C protocol that MCRL
# inherits prepares them: sessions, filters, item re-indexing and a seeded 80/10/10 split
# of sessions. The kit reads RetailRocket (`events.csv`), Yoochoose (RecSys 2015) and any
# event log, and embeds a simulator of shoppers whose logs have learnable structure (no
# download needed). We look at the statistics table (beside the published figures of the
# real datasets), session lengths, item popularity, the split, and how much of the next
# event the session's history gives away — which makes "recommend what was just viewed"
# (recency) a baseline to beat, and fixes how every later notebook is scored (HR@k, NDCG@k).
#
# The protocol follows [SQN](https://arxiv.org/abs/2006.05779) and
# [SA2C](https://arxiv.org/abs/2111.03474); the kit's reading of it, filter by filter:
# [PROTOCOL.md](../docs/PROTOCOL.md).

# %%
from mcrl_kit import experiments
from mcrl_kit.data import stats
from mcrl_kit.data.simulator import world_summary
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots

# %% full={"COMPARE_SCALES": ["tiny", "small", "retailrocket", "yoochoose"], "COMPARE_SESSIONS": 20000, "SCALE": "retailrocket"} tags=["parameters"]
DATASET = "simulator"  # simulator | retailrocket-sample | yoochoose-sample | retailrocket | yoochoose | events
DATA_PATH = None  # your input file(s) for retailrocket / yoochoose / events
SCALE = "tiny"  # simulator size: tiny | small | retailrocket | yoochoose
SEED = 0
WITH_SAMPLE = True  # add the RetailRocket sample's row when ../shared has it
COMPARE_SCALES = ["tiny", "small"]  # simulator scales set beside the real samples
COMPARE_SESSIONS = 3000  # sessions per compared scale (at most its own count)
OUT_DIR = None  # metrics (None: build/notebooks of the project)

# %% [markdown]
# ## 1 · Statistics beside the published figures
#
# The data of this notebook (`DATASET`, `SCALE`), the RetailRocket sample when `../shared`
# holds it, then the published statistics of the two real datasets the protocol uses.

# %%
data = experiments.load_data(DATASET, scale=SCALE, seed=SEED, path=DATA_PATH)
datasets = [data]
if WITH_SAMPLE and experiments.sample_available():
    datasets.append(experiments.load_data("retailrocket-sample", seed=SEED))
stats.stats_table(datasets)

# %% [markdown]
# **What this shows.** One row per dataset: sessions, items, click and purchase events, the
# mean events per session and the purchase ratio (purchases over all events). Compare the
# *shape* rather than the size: a scale that imitates a real dataset should match its mean
# length and purchase ratio; only the `retailrocket` and `yoochoose` scales approximate the
# published sizes too.
#
# ## 2 · The protocol and the world behind the data
#
# The protocol (RetailRocket): a session is a visitor; transaction rows are dropped;
# visitors with ≥ 3 events are kept, then items with ≥ 3 interactions (one pass, so a few
# sessions end up shorter); a view is a click and an add-to-cart a purchase. Items are then
# re-indexed $0, \dots, N-1$, and $N$ is the pad id. The simulator's `retailrocket` scale
# matches the published numbers of sessions and items; `tiny` is for tests and this CI
# profile. On the simulator, the world behind the data:

# %%
world_summary(data.config.scale, data.config.seed) if data.config.source == "simulator" else data.stats.get("source_info")

# %% [markdown]
# **What this shows.** The simulator's knobs for this scale: items and intents (item
# clusters), how concentrated popularity is, how often a view repeats or revisits an item,
# where purchases fall (the item just viewed, or an earlier one), the purchase and stop
# rules, and which real sample the scale was calibrated to (for a real source: what reading
# the file kept and dropped). The sections below measure the effects.
#
# ## 3 · Session lengths
#
# Most sessions are short; a few are very long (a heavy tail, as in the real logs). Every
# event of a held-out session is one evaluation point, so long sessions weigh more.

# %%
lengths = stats.session_lengths(data)
fig = plots.length_histogram(lengths)
plots.save_figure(fig, "02_session_lengths")
fig

# %% [markdown]
# **What this shows.** The x-axis counts events per session (clipped at the 99th
# percentile, so the last bar gathers the tail); the y-axis is the number of sessions, on a
# log scale. A slow decay to the right is a heavy tail.
#
# ## 4 · Item popularity
#
# A few items get most of the events. Popularity is the baseline any sequential model must
# beat; the simulator's popularity law was fitted to the real RetailRocket item counts.

# %%
popularity = stats.item_popularity(data)
fig = plots.popularity_plot(popularity)
plots.save_figure(fig, "02_popularity")
fig

# %% [markdown]
# **What this shows.** Left: events per item against the item's popularity rank, both
# on log axes — a roughly straight, falling line is a power law. Right: the cumulative
# share of events covered by the most popular share of items; the further the curve bows
# above the diagonal, the more a popularity ranking already gets right.
#
# ## 5 · The split
#
# Session ids are shuffled with the seed and cut 80 / 10 / 10 into train, validation (for
# checkpoint selection) and test (reported). Every event of a validation/test session is
# scored against all items, clicks and purchases apart.

# %%
split = stats.split_table(data)
split

# %% [markdown]
# **What this shows.** Sessions, events, purchases and purchase ratio per split. The share
# of sessions is the 80/10/10 cut by construction; events and purchases follow the sessions
# that fell in each part. Every purchase metric is a mean over the purchases of its split, so
# read those counts. When validation holds fewer purchases than
# `TrainConfig.select_min_support`, training chooses its checkpoint on click NDCG@10
# instead, with a warning — which notebooks 03–04 print on `tiny`.
#
# ## 6 · What the history gives away
#
# Real shoppers come back to what they just looked at. Take the state $s_t$ = the last
# $L = 10$ items before event $t$ and ask how often the event's item $a_t$ is the last one,
# $a_t = s_{t,-1}$, or anywhere in it, $a_t \in s_t$ (a session's first event has an empty
# state: it repeats nothing). The shares, with 95 % bootstrap intervals over sessions, for
# the real samples (when `../shared` has them) and the simulator's scales — each scale was
# calibrated to the sample it imitates (`mcrl_kit.data.calibrate.fit_behaviour`):

# %%
compared = {**experiments.real_samples(SEED), **experiments.simulated(COMPARE_SCALES, COMPARE_SESSIONS, SEED)}
repeats = experiments.repeat_table(compared)
repeats

# %% [markdown]
# **What this shows.** One row per dataset (train split), four shares each as
# `share [2.5 %, 97.5 %]` over bootstrap resamples of sessions: purchases and clicks whose
# item is the state's last item, or anywhere in the state (`–`: no such events, as for
# purchases in the clicks-only Yoochoose sample). A calibrated scale should sit inside or
# near the intervals of the sample it imitates. The CI profile generates each compared
# scale at `COMPARE_SESSIONS` sessions, fewer than the README's table, so its intervals are
# wider and its shares can differ from the README's within them.
#
# ## 7 · Two trivial baselines, and how everything is scored
#
# On the RetailRocket sample most purchases are of the item viewed just before, and many
# clicks repeat the last item; Yoochoose clicks repeat far less. So the trivial **recency**
# rule — the session's distinct items, most recent first, then every other item by training
# popularity — is a strong baseline wherever sessions repeat; a learned model must beat it,
# not only **popularity** (items by their training counts). Simple session heuristics are
# known to be hard to beat ([Ludewig & Jannach, 2018](https://arxiv.org/abs/1803.09587); the
# kit has their session kNN as `sknn` and `vsknn`: [BASELINES.md](../docs/BASELINES.md)).
#
# Scoring, in every notebook: for each held-out event, rank all $N$ items by the model's
# scores, with ties counted against the logged item,
# $\mathrm{rank} = 1 + |\{\, i \ne a_t : \mathrm{score}(i) \ge \mathrm{score}(a_t) \,\}|$.
# With one relevant item per event,
#
# $$\mathrm{HR@}k = \mathbf{1}[\mathrm{rank} \le k], \qquad \mathrm{NDCG@}k = \frac{\mathbf{1}[\mathrm{rank} \le k]}{\log_2(1 + \mathrm{rank})},$$
#
# averaged over click events and over purchase events separately, for $k \in \{5, 10, 20\}$.
# Seen items are not masked. Fitted on train, scored on test (HR@5, NDCG@10):

# %%
heuristics = experiments.heuristic_table(compared)
heuristics.round(3)

# %% [markdown]
# **What this shows.** One row per dataset and heuristic; columns are purchase and click
# HR@5 and NDCG@10 on the test split (`NaN`: no purchases to score). NDCG@10 credits a hit
# at rank 1 fully and one at rank 10 with $1/\log_2 11$ only, so a rule that puts the right
# item first, as recency does for a repeat, has an NDCG close to its HR. Read the two tables
# together: where the repeat shares are high, recency's hit rates are high; where there is
# less to repeat, there is more for a model to learn. Popularity's equal counts tie, and
# ties count against it, so its row is a pessimistic bound.

# %%
write_metrics("02_data", {
    "repeats": repeats,
    "heuristics": heuristics,
    "stats": data.stats,
    "split": split,
    "mean_length": float(lengths.mean()),
    "top_item_share": float(popularity.iloc[0] / popularity.sum()),
    "datasets": [d.stats["dataset"] for d in datasets],
})

# %% [markdown]
# ## Summary
#
# - Every source becomes one event log, filtered by the protocol, re-indexed, and split
#   80/10/10 by session with a seed; validation picks checkpoints, test is reported.
# - Session lengths are heavy-tailed and item popularity is concentrated; the simulator's
#   scales were calibrated to imitate the real logs' repeat and purchase structure.
# - Much of the next event is in the state: recency, a rule with nothing learned, is the
#   baseline to beat, not only popularity.
# - HR@k and NDCG@k rank the logged item among all items, ties against it, clicks and
#   purchases apart; purchase metrics rest on few events on small splits.
#
# ## Exercises
#
# 1. Set `SCALE = "small"` and rerun: how do the split's validation purchases change, and
#    would checkpoint selection still fall back to clicks?
# 2. Add `"yoochoose"` to `COMPARE_SCALES`: does its `click = last item` share land near the
#    Yoochoose sample's, and what does that do to recency's click HR@5?
# 3. Score the session kNN heuristics too:
#    `experiments.heuristic_table(compared, algos=("popularity", "recency", "sknn"))`.
#    Where does kNN beat recency — on purchases, on clicks, on which dataset?
# 4. Change `SEED` to 1: which numbers of the split and repeat tables move, and by more or
#    less than the bootstrap intervals?
