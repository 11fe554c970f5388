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
# **What this teaches.** How the SQN lineage ([Xin et al., SIGIR 2020](https://arxiv.org/abs/2006.05779)) —
# and MCRL after it ([Li et al., WSDM 2024](https://arxiv.org/abs/2310.16566)) — turns a logged
# shopping session into reinforcement-learning transitions $(s_t, a_t, r_t, s_{t+1}, d_t)$:
#
# - **state** $s_t = (a_{t-L}, \dots, a_{t-1})$: the last $L = 10$ items the user interacted with
#   before event $t$ (`DataConfig.state_len`), right-padded with a pad id, so the very first
#   event sees a state of pads;
# - **action** $a_t$: the item of event $t$ — what a recommender should have proposed;
# - **reward** $r_t$, derived from the event type (`AlgoConfig.reward_click`, `AlgoConfig.reward_buy`):
#
# $$r_t = \begin{cases} 0.2 & \text{if event } t \text{ is a click,} \\ 1.0 & \text{if it is a purchase;} \end{cases}$$
#
# - **next state** $s_{t+1}$: the history including $a_t$; **done** $d_t = 1$ only at the
#   session's last event $T$;
# - **discount** $\gamma = 0.5$ (`AlgoConfig.gamma`) and the **return**
#
# $$G_t = \sum_{k=0}^{T-t} \gamma^k r_{t+k} = r_t + \gamma\, G_{t+1}, \qquad G_T = r_T,$$
#
# which values a purchase two steps ahead at $\gamma^2$ of an immediate one (a quarter at $\gamma = 0.5$).
#
# A value function estimates $V(s_t) \approx \mathbb{E}[G_t \mid s_t]$. Learning it from single
# transitions uses the **one-step TD target** $y_t = r_t + \gamma\,(1 - d_t)\,V(s_{t+1})$ — no
# bootstrap past the session's end. Every learner of notebooks 03–04 regresses on a target of
# this form; notebook 05 compares the learned values with $G_t$.
#
# The examples are real RetailRocket sessions when the sample in `../shared` is available
# (`DATASET = "auto"`), simulated shoppers otherwise. Nothing is trained here. The replay
# buffer follows the protocol of [PROTOCOL.md](../docs/PROTOCOL.md).

# %%
from mcrl_kit import experiments
from mcrl_kit.data import episodes
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots

# %% full={"SCALE": "retailrocket"} tags=["parameters"]
DATASET = "auto"  # auto: the RetailRocket sample when ../shared has it, else the simulator
DATA_PATH = None  # your RetailRocket events.csv (when DATASET is "retailrocket")
SCALE = "tiny"  # simulator size when the simulator is used
SEED = 0  # seeds the simulator and the 80/10/10 split
EXAMPLES = 2  # example sessions to lay out
GAMMA = 0.5  # the discount of the reference
OUT_DIR = None  # metrics (None: build/notebooks of the project)

# %% [markdown]
# ## 1 · The data
#
# `experiments.load_data` prepares the dataset once (protocol filters, item re-indexing, the
# seeded 80/10/10 session split of notebook 02) and reuses it afterwards.

# %%
data = experiments.load_data(DATASET, scale=SCALE, seed=SEED, path=DATA_PATH)
data.stats_frame()

# %% [markdown]
# **What this shows.** One row: the dataset the examples come from, with its sessions, items,
# click and purchase events, mean session length and purchase ratio (purchases over all
# events). The ratio says how rare the reward of 1.0 is next to the clicks' 0.2.

# %% [markdown]
# ## 2 · One session, step by step
#
# We pick a few short training sessions — the first with a purchase — and lay each out as
# the transitions the replay buffer holds. States list only the real items here; in the
# buffer they are padded to length 10 with the pad id (= the number of items).

# %%
sessions = episodes.example_sessions(data, n=EXAMPLES)
first = episodes.mdp_table(data, sessions[0], gamma=GAMMA)
first

# %% [markdown]
# **What this shows.** Each row is one transition. Read across: the state is what the user
# did before, the action is what they did now, the reward says whether it was a purchase,
# and the next state is the state of the following row. `γ^t` is the weight of the step's
# reward in the return from the session's start, $G_0 = \sum_t \gamma^t r_t$. The return
# $G_t$ sums the rewards from this step to the end, discounted by $\gamma$ per step — it is what a
# value function should predict. Check the recursion on two adjacent rows, $G_t = r_t + \gamma G_{t+1}$,
# and the last row, where `done` is true and $G_T = r_T$.

# %%
fig = plots.session_timeline(first, title=f"session {sessions[0]} as an MDP (γ = {GAMMA})")
plots.save_figure(fig, "01_session_mdp")
fig

# %% [markdown]
# **What this shows.** The x-axis is the step $t$; bars are the rewards $r_t$ (red: a purchase),
# each labelled with its item; the black line is the return $G_t$. Rewards are never negative,
# so the line lies on or above every bar and meets the last one. A purchase lifts the line at
# every earlier step, shrinking by a factor $\gamma$ per step back.
#
# Another example, the last of the `EXAMPLES` sessions (`example_sessions` picks ones
# without a purchase after the first, when there are such sessions):

# %%
episodes.mdp_table(data, sessions[-1], gamma=GAMMA)

# %% [markdown]
# **What this shows.** In a session of clicks only, every reward is $r_{\text{click}}$ and the
# return depends only on the steps left, $G_t = r_{\text{click}}\,(1-\gamma^{T-t+1})/(1-\gamma)$:
# largest at the start, $r_T$ at the end. The state column shows repeats: a shopper often comes
# back to an item already in $s_t$ (notebook 02 measures how often).

# %% [markdown]
# ## 3 · γ: how far ahead the return looks
#
# With $\gamma = 0$ the return is the immediate reward; with $\gamma = 0.9$ a purchase at the
# end of the session lifts the value of every step before it. The reference uses 0.5.

# %%
episodes.returns_by_gamma(data, sessions[0], gammas=(0.0, GAMMA, 0.9))

# %% [markdown]
# **What this shows.** One row per step of the first session, one return column per
# discount. At $\gamma = 0$ the column repeats the reward; as $\gamma$ grows the early steps
# inherit more of the later purchases, while the last row is the same in every column
# ($G_T = r_T$). The discount also bounds every return, $0 \le G_t \le r_{\max}/(1-\gamma)$ — the
# range MCRL's value head is squashed into (notebook 04). A larger $\gamma$ also makes the TD
# target lean more on the bootstrapped $V(s_{t+1})$, which is where overestimation enters.

# %% [markdown]
# ## 4 · The replay buffer
#
# All training transitions as a table: one row per event of every training session. The
# pad id fills the states; `len_state` is the number of real items (an empty history
# counts as 1). Rewards are not stored — they come from `is_buy` and the algorithm's config.

# %%
buffer = data.replay("train")
print(f"{len(buffer):,} transitions, {data.n_items:,} items, pad id = {buffer.pad}")
buffer.to_frame(limit=12)

# %% [markdown]
# **What this shows.** The first rows of the buffer, in session and time order: `step`
# restarts at 0 with each session, whose first state is all pads; each state holds the
# real items first, then the pad id. `reward` is computed on the fly from `is_buy` with
# the default 0.2 / 1.0, so one prepared buffer serves any reward setting. Training draws
# random batches of these rows; nothing links a row to the next one except `next_state`.

# %%
write_metrics("01_mdp_framing", {
    "dataset": data.stats["dataset"],
    "transitions": len(buffer),
    "examples": sessions,
    "example_returns": first["return G_t"].tolist(),
    "example_rewards": first["reward r_t"].tolist(),
})

# %% [markdown]
# ## Summary
#
# - A session of $T+1$ events becomes $T+1$ transitions $(s_t, a_t, r_t, s_{t+1}, d_t)$: the
#   state is the last 10 items, the action the next item, the reward 0.2 for a click and 1.0
#   for a purchase, and only the last event is terminal.
# - The return $G_t = r_t + \gamma G_{t+1}$ discounts future rewards by $\gamma$ per step; with
#   $\gamma = 0.5$ it looks only a few steps ahead.
# - Value learners never see $G_t$: they bootstrap from the one-step target
#   $r_t + \gamma (1-d_t) V(s_{t+1})$, whose errors notebook 05 measures against $G_t$.
# - The buffer stores items and `is_buy`, not rewards, so the reward values are settings.
#
# ## Exercises
#
# 1. Set `GAMMA = 0.9` and rerun: which steps' returns change most, and how close does
#    $G_0$ come to the bound $r_{\max}/(1-\gamma)$?
# 2. Call `episodes.mdp_table(data, sessions[0], gamma=GAMMA, reward_click=0.0)`: with
#    purchases as the only reward, which steps keep a non-zero return?
# 3. Set `EXAMPLES = 5`, pick a session from the tables that clicks an item and then buys it,
#    and compute $G_0$ by hand from the `γ^t` and `reward r_t` columns.
# 4. Set `DATASET = "simulator"` (the `tiny` scale) and compare its statistics and example
#    sessions with the RetailRocket sample's: do the simulated shoppers repeat items as often?
