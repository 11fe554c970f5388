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
# (recency) a baseline to beat.

# %%
from mcrl_kit import experiments
from mcrl_kit.data import stats
from mcrl_kit.data.simulator import world_summary
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots

# %% full={"COMPARE_SCALES": ["tiny", "small", "retailrocket", "yoochoose"], "COMPARE_SESSIONS": 20000, "SCALE": "retailrocket"} tags=["parameters"]
DATASET = "simulator"  # simulator | retailrocket-sample | yoochoose-sample | retailrocket | yoochoose | events
DATA_PATH = None  # your input file(s) for retailrocket / yoochoose / events
SCALE = "tiny"  # simulator size: tiny | small | retailrocket | yoochoose
SEED = 0
WITH_SAMPLE = True  # add the RetailRocket sample's row when ../shared has it
COMPARE_SCALES = ["tiny", "small"]  # simulator scales set beside the real samples
COMPARE_SESSIONS = 3000  # sessions per compared scale (at most its own count)
OUT_DIR = None  # metrics (None: build/notebooks of the project)

# %%
data = experiments.load_data(DATASET, scale=SCALE, seed=SEED, path=DATA_PATH)
datasets = [data]
if WITH_SAMPLE and experiments.sample_available():
    datasets.append(experiments.load_data("retailrocket-sample", seed=SEED))
stats.stats_table(datasets)

# %% [markdown]
# The protocol (RetailRocket): a session is a visitor; transaction rows are dropped;
# visitors with ≥ 3 events are kept, then items with ≥ 3 interactions; a view is a click
# and an add-to-cart a purchase. The simulator's `retailrocket` scale matches the published
# size; `tiny` is for tests and this CI profile. On the simulator, the world behind the data:

# %%
world_summary(data.config.scale, data.config.seed) if data.config.source == "simulator" else data.stats.get("source_info")

# %% [markdown]
# ## Session lengths
#
# Most sessions are short; a few are very long (a heavy tail, as in the real logs). Every
# event of a held-out session is one evaluation point, so long sessions weigh more.

# %%
lengths = stats.session_lengths(data)
fig = plots.length_histogram(lengths)
plots.save_figure(fig, "02_session_lengths")
fig

# %%
interactive.session_lengths(lengths)

# %% [markdown]
# ## Item popularity
#
# A few items get most of the events. Popularity is the baseline any sequential model must
# beat; the simulator's popularity law was fitted to the real RetailRocket item counts.

# %%
popularity = stats.item_popularity(data)
fig = plots.popularity_plot(popularity)
plots.save_figure(fig, "02_popularity")
fig

# %% [markdown]
# ## The split
#
# Session ids are shuffled with the seed and cut 80 / 10 / 10 into train, validation (for
# checkpoint selection) and test (reported). Every event of a validation/test session is
# scored against all items, clicks and purchases apart.

# %%
split = stats.split_table(data)
split

# %% [markdown]
# ## What the history gives away
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
# Three quarters of the RetailRocket purchases are of the item viewed just before, and more
# than half of the clicks repeat the last item; Yoochoose clicks repeat far less. So the
# trivial **recency** rule — the session's items, most recent first, then popularity — is a
# strong baseline wherever sessions repeat; a learned model must beat it, not only popularity.
# Fitted on train, scored on test (HR@5, NDCG@10):

# %%
heuristics = experiments.heuristic_table(compared)
heuristics.round(3)

# %% [markdown]
# Read the two tables together: where the shares are high, recency's hit rates are high
# (on the samples and on every scale that imitates them); on Yoochoose-like clicks there is
# less to repeat and more for a model to learn. Popularity is far behind everywhere.

# %%
write_metrics("02_data", {
    "repeats": repeats,
    "heuristics": heuristics,
    "stats": data.stats,
    "split": split,
    "mean_length": float(lengths.mean()),
    "top_item_share": float(popularity.iloc[0] / popularity.sum()),
    "datasets": [d.stats["dataset"] for d in datasets],
}, globals())
