# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Sessions as a Markov decision process
#
# **What this teaches.** How the SQN lineage — and MCRL after it — turns a logged shopping
# session into reinforcement-learning transitions `(s_t, a_t, r_t, s_{t+1}, done)`:
#
# - **state** `s_t`: the last 10 items the user interacted with before event `t`
#   (right-padded with a pad id, so the very first event sees a state of pads);
# - **action** `a_t`: the item of event `t` — what a recommender should have proposed;
# - **reward** `r_t`: 0.2 for a click, 1.0 for a purchase (derived from the event type);
# - **next state** `s_{t+1}`: the history including `a_t`; **done**: only the session's last event;
# - **discount** `γ = 0.5`: the return `G_t = r_t + γ r_{t+1} + γ² r_{t+2} + …` values a
#   purchase two steps ahead at a quarter of an immediate one.
#
# The examples are real RetailRocket sessions when the sample in `../shared` is available
# (`DATASET = "auto"`), simulated shoppers otherwise. Nothing is trained here.

# %%
from mcrl_kit import experiments
from mcrl_kit.data import episodes
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots

# %% full={"SCALE": "retailrocket"} tags=["parameters"]
DATASET = "auto"  # auto: the RetailRocket sample when ../shared has it, else the simulator
DATA_PATH = None  # your RetailRocket events.csv (with DATASET = "retailrocket")
SCALE = "tiny"  # simulator size when the simulator is used
SEED = 0  # seeds the simulator and the 80/10/10 split
EXAMPLES = 2  # example sessions to lay out
GAMMA = 0.5  # the discount of the reference
OUT_DIR = None  # metrics (None: build/notebooks of the project)

# %%
data = experiments.load_data(DATASET, scale=SCALE, seed=SEED, path=DATA_PATH)
data.stats_frame()

# %% [markdown]
# ## One session, step by step
#
# We pick a few short training sessions — the first with a purchase — and lay each out as
# the transitions the replay buffer holds. States list only the real items here; in the
# buffer they are padded to length 10 with the pad id (= the number of items).

# %%
sessions = episodes.example_sessions(data, n=EXAMPLES)
first = episodes.mdp_table(data, sessions[0], gamma=GAMMA)
first

# %% [markdown]
# Each row is one transition. Read across: the state is what the user did before, the
# action is what they did now, the reward says whether it was a purchase, and the next
# state is the state of the following row. The return `G_t` sums the rewards from this
# step to the end, discounted by `γ` per step — it is what a value function should
# predict, and what the overestimation notebook (05) compares predictions with.

# %%
fig = plots.session_timeline(first, title=f"session {sessions[0]} as an MDP (γ = {GAMMA})")
plots.save_figure(fig, "01_session_mdp")
fig

# %% [markdown]
# The same session to explore: hover a bar for the state and action of that step.

# %%
interactive.session_mdp(first, title=f"session {sessions[0]} (γ = {GAMMA})")

# %%
episodes.mdp_table(data, sessions[-1], gamma=GAMMA)

# %% [markdown]
# ## γ: how far ahead the return looks
#
# With `γ = 0` the return is the immediate reward; with `γ = 0.9` a purchase at the end of
# the session lifts the value of every step before it. The reference uses 0.5.

# %%
episodes.returns_by_gamma(data, sessions[0], gammas=(0.0, GAMMA, 0.9))

# %% [markdown]
# ## The replay buffer
#
# All training transitions as a table: one row per event of every training session. The
# pad id fills the states; `len_state` is the number of real items (an empty history
# counts as 1). Rewards are not stored — they come from `is_buy` and the algorithm's config.

# %%
buffer = data.replay("train")
print(f"{len(buffer):,} transitions, {data.n_items:,} items, pad id = {buffer.pad}")
buffer.to_frame(limit=12)

# %%
write_metrics("01_mdp_framing", {
    "dataset": data.stats["dataset"],
    "transitions": len(buffer),
    "examples": sessions,
    "example_returns": first["return G_t"].tolist(),
    "example_rewards": first["reward r_t"].tolist(),
}, globals())
