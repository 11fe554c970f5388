# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · The closed loop: learned policies meet simulated users
#
# **What this teaches.** Every table so far is *offline*: a model scores the items that logged
# users went on to consume ([PROTOCOL.md](../docs/PROTOCOL.md) §5). None of them says what happens
# when the model **recommends**. Here the simulator's users see a slate of the policy's top-$k$
# items before every event and respond to it. A policy is then judged by what its recommendations
# earn, and we ask whether the offline ranking of methods predicts the online one. Simulated
# users are a common way to ask this without live traffic (e.g. RecSim,
# [Ie et al., 2019](https://arxiv.org/abs/1909.04847)); the answer holds only as far as the
# response model does. The policies: supervised, SQN
# ([Xin et al., 2020](https://arxiv.org/abs/2006.05779)), SA2C
# ([Xin et al., 2022](https://arxiv.org/abs/2111.03474)), MCRL
# ([Li et al., 2024](https://arxiv.org/abs/2310.16566)), and popularity and recency as references
# ([BASELINES.md](../docs/BASELINES.md)). What each value estimates:
# [METHOD.md](../docs/METHOD.md) §4.2. The model: `mcrl_kit/data/closed_loop.py`; the tables:
# `mcrl_kit/online.py`.

# %%
import pandas as pd
from mcrl_kit import diagnostics, experiments, online
from mcrl_kit.data.closed_loop import Response
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots

# %% full={"BACKBONE": "gru", "BATCH_SIZE": 256, "DEVICE": "auto", "EVAL_EVERY": 250, "SCALE": "small", "SEEDS": [0, 1, 2], "SESSIONS": 5000, "STEPS": 1000, "THREADS": null} tags=["parameters"]
SCALE = "tiny"  # simulator size: tiny | small | retailrocket | yoochoose (the closed loop needs the simulator)
BACKBONE = "gru"  # gru | caser | nextitnet | sasrec
STEPS = 200  # optimisation steps per run
BATCH_SIZE = 128
LR = 0.005
EVAL_EVERY = 50  # validation (checkpoint selection) every this many steps
SEEDS = [0]
DEVICE = "cpu"  # auto | cpu | cuda
THREADS = 1  # torch CPU threads (None: all cores)
SESSIONS = 400  # fresh simulated users per policy
SLATE = 10  # items per slate
ATTRACTION = 5.0  # α: weight of an item's fit in the take probability
LEAVE_SENSITIVITY = 0.1  # κ: stop-hazard rise per ignored slate
SHOW_PROGRESS = None  # tqdm bars; None: auto (on in JupyterLab, off under papermill, nbmake or CI)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)

# %% [markdown]
# ## 1 · The response model
#
# Before event $t$ the user in state $s_t$ (the last items of the session) sees a slate
# $(i_0, \dots, i_{k-1})$ of the policy's top $k$ = `SLATE` items, position $p = 0$ first. Let
# $f_p = f(i_p \mid s_t)$ be the probability that the user's *own* behaviour (the logs' step
# function: a repeat, a revisit, a successor of the last item, an item of the same intent, a
# popular item) would view $i_p$ next: the item's **fit**. The user then:
#
# 1. first decides whether to **buy**, exactly as in the logs (mostly the item just viewed); a
#    buyer ignores the slate;
# 2. otherwise **takes a slate item** with probability
#    $$P(\text{take}) = 1 - \exp\Big(-\alpha \sum_{p=0}^{k-1} \frac{f_p}{\log_2(p + 2)}\Big),$$
#    choosing item $i_p$ with probability $\propto f_p / \log_2(p + 2)$, the position discount of
#    DCG. $\alpha \ge 0$ is the **attraction** (`ATTRACTION`); at $\alpha = 0$ no slate is ever taken;
# 3. otherwise acts as in the logs, and the slate counts as **ignored**;
# 4. after the event, stops with hazard $\min\big(1,\ h\,(1 + \kappa \cdot \text{slates ignored so far})\big)$,
#    where $h$ is the user's own hazard. Irrelevant slates make users leave
#    ($\kappa$ = `LEAVE_SENSITIVITY`).
#
# A session earns its **online reward** $R = \sum_t r_t$ (0.2 per click, 1 per purchase), the
# business value of the policy, and its discounted return $\sum_t \gamma^t r_t$, the MDP's objective.
# Every policy meets the same users (the same latent traits, one seed). The reference rows are
# the logging behaviour (no recommender), popularity, and recency (the session's own items,
# most recent first).

# %%
data = experiments.load_data("simulator", scale=SCALE)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# **What this shows.** The simulated log the policies train on, in one row: sessions, items,
# click and purchase events, mean session length and the share of purchases. The closed loop
# draws fresh users of the same simulated world (`SESSIONS` per policy).
#
# ## 2 · The policies
#
# The baselines of notebook 03 and MCRL, trained or reused (runs are stored under
# `OUT_DIR/runs/` in folders named by their configuration), and popularity and recency, fitted
# on the training split. A warning about checkpoint selection means validation holds too few
# purchases to choose on purchase NDCG@10 (notebook 03).

# %%
runs = study.train({**experiments.baselines(STEPS), "MCRL": "mcrl"})
runs = {**study.train({"popularity": "popularity", "recency": "recency"}), **runs}
response = Response(attraction=ATTRACTION, leave_sensitivity=LEAVE_SENSITIVITY)

# %% [markdown]
# ## 3 · The online table
#
# Each learned policy recommends with its ranking head (the cross-entropy head for SQN and SA2C,
# the policy for MCRL; first seed) and meets `SESSIONS` fresh users; `online_table` adds the
# logging behaviour, popularity and recency. Per session: reward, purchases, clicks, length and the
# share of shown slates that were taken, as means over the users (the reward with its 95 % interval).

# %%
learned = {label: folders[0] for label, folders in runs.items() if label not in ("popularity", "recency")}
table = online.online_table(learned, slate=SLATE, sessions=SESSIONS, response=response, device=DEVICE)
table.set_index("policy")[["reward", "reward low", "reward high", "purchases", "clicks", "length", "taken share"]].round(3)

# %% [markdown]
# **What this shows.** One row per policy, means per session over the simulated users. `reward low`
# and `reward high` bound the 95 % interval of the mean reward. The logging row is what users do
# with no recommender (no slates, so nothing taken). A recommender can earn more than that row:
# slates that fit keep users in their intent, which makes purchases likelier. It can also earn
# less, because every ignored slate raises the stop hazard and shortens sessions (`length`).
# `taken share` is how often a shown slate was taken. The intervals are for each row alone.
# All policies meet the same users, so a paired difference of two rows would be tighter.
# The discounted return (in `table`) weighs the first events most and barely separates the
# policies; the reward is the quantity to compare.

# %%
fig = plots.online_bars(table)
plots.save_figure(fig, "08_online")
fig

# %% [markdown]
# **What this shows.** Three panels with the same rows: reward per session, purchases per session,
# and the share of slates taken; bars are means from 0, whiskers 95 % intervals over the users.
# Where two whiskers overlap, these intervals alone cannot order the two policies (a paired
# comparison might). Taking the slate is
# necessary but not sufficient: a policy whose slates are taken often can still earn less,
# if taking them pulls users away from what they would have bought.
#
# **If this disagrees with the README.** The README's closed-loop study (the `small` simulator,
# 1,000 steps, three seeds, 10,000 users per run) found no recommender earning more than the
# users left alone, and the learned methods overlapping each other. Here the runs trained for
# 200 steps on `tiny`, and 400 users leave intervals several tenths wide, so any ordering of
# these rows can be noise.
#
# ## 4 · Does offline predict online?
#
# One point per run (every seed): its offline test NDCG@10 against its online reward. Spearman's
# rank correlation over the $n$ runs is the Pearson correlation of their ranks (ties get mean
# ranks); without ties,
#
# $$\rho = 1 - \frac{6 \sum_{j=1}^{n} d_j^2}{n (n^2 - 1)}, \qquad d_j = \mathrm{rank}(x_j) - \mathrm{rank}(y_j).$$
#
# $\rho = 1$: the offline metric orders the runs exactly as the online reward does; $0$: no relation;
# $-1$: reversed. Its 95 % interval comes from a bootstrap that resamples the runs.

# %%
per_run = online.offline_online(runs, sessions=SESSIONS, response=response, device=DEVICE)
per_run[["method", "seed", "offline purchase NDCG@10", "offline click NDCG@10", "online reward"]].round(3)

# %% [markdown]
# **What this shows.** One row per run: the method, its seed, its offline test NDCG@10 for
# purchases and clicks (notebook 03's metric), and its online reward per session (the same users
# for every run).

# %%
fig = plots.offline_online_plot(per_run)
plots.save_figure(fig, "08_offline_online")
fig

# %% [markdown]
# **What this shows.** The table as two scatter plots, offline purchase NDCG@10 (left) and click
# NDCG@10 (right) on the x-axis, online reward per session on the y-axis, one colour per method.
# If offline predicted online, the points would rise from left to right. Recency reads the
# session's own items, which this simulator's users repeat and revisit, so it is a strong offline
# baseline. Whether its slates also earn the most online, the y-axis says.

# %%
correlations = {x: online.rank_correlation(per_run[x], per_run["online reward"], n_boot=500)
                for x in ("offline purchase NDCG@10", "offline click NDCG@10")}
pd.DataFrame(correlations).T.astype({"n": int}).round(3)

# %% [markdown]
# **What this shows.** Spearman's $\rho$ between each offline metric and the online reward, its
# bootstrap interval (`low`, `high`) and the number of runs `n`. With a handful of runs the
# interval is wide: a few points cannot pin a rank correlation down, and an interval that reaches
# 0 does not show that offline predicts online. `benchmarks/offline_online.py` measures it over 14
# runs for the README.
#
# ## 5 · The truth a Q-learner estimates
#
# A Q-learner's target $r_t + \gamma (1-d_t)\, Q'(s_{t+1}, \arg\max_a Q(s_{t+1}, a))$ (notebook 03) estimates the
# value of its **own greedy policy**, not of the users' behaviour. The simulator gives both
# truths for each logged event, by rollouts (here 8 per event, up to 12 events ahead):
#
# - the **forced-action value** $r_t + \mathbb{E}\big[\sum_{h \ge 1} \gamma^h r_{t+h}\big]$ where every next item
#   consumed is $\arg\max_a Q(s, a)$, with purchases and stops drawn by the simulator's rules. This
#   is what SQN's $Q(s_t, a_t)$ should match;
# - the users' own $Q^\beta(s_t, a_t) = r_t + \gamma\, \mathbb{E}_\beta[G_{t+1}]$, where the users go on
#   as they would.
#
# `diagnostics` judges Q-learners by the first and MCRL's $V(s_t)$, a behaviour value, by the users'
# own $V$ (notebook 05 does this for four learners).

# %%
_, sqn, _ = study.load(runs["SQN"][0])
values = diagnostics.value_table(sqn, data, "test", n_rollouts=8)
sqn_means = values[["value", "mc_return", "true_value", "true_behaviour"]].mean()
sqn_means.rename({"value": "SQN's Q(s_t, a_t)", "mc_return": "logged return G_t",
                  "true_value": "forced-action value (greedy)", "true_behaviour": "users' own Q(s_t, a_t)"}).to_frame("mean").round(3)

# %% [markdown]
# **What this shows.** Means over SQN's test events, one quantity per row. The first row minus the third is SQN's bias
# like for like: above 0 it overestimates its greedy policy's value, below 0 it underestimates it.
# The third row minus the fourth is what following $\arg\max_a Q$ changes against the users' own
# continuation from the same event. The logged return is one sample of the fourth, so those two
# rows differ by noise and the rollouts' limits only.
#
# ## Summary
#
# - The closed loop scores a policy by what its recommendations earn from users who respond to
#   them, $R = \sum_t r_t$ per session. Offline metrics score how well it predicts what logged
#   users did.
# - Users take a slate with probability $1 - \exp(-\alpha \sum_p f_p / \log_2(p+2))$ and leave
#   sooner after ignored slates. A recommender has to fit the users' intent just to break even
#   with no recommender at all.
# - Every policy meets the same users, so rows are paired; logging, popularity and recency are
#   the reference points.
# - Whether offline NDCG@10 orders runs as the online reward does is measured by Spearman's
#   $\rho$ with a bootstrap interval, which is wide with few runs.
#
# ## Exercises
#
# 1. Set `ATTRACTION = 0` and `LEAVE_SENSITIVITY = 0`: every policy's row equals the logging row.
#    Why? Then set `LEAVE_SENSITIVITY = 0.1` back: what do ignored slates alone cost?
# 2. Raise `LEAVE_SENSITIVITY` to 0.5. Which policy loses most reward, and what does its
#    `taken share` say?
# 3. Run the `full` profile's sizes (`SCALE = "small"`, `STEPS = 1000`, `SEEDS = [0, 1, 2]`,
#    `SESSIONS = 5000`; minutes on CPU): with 18 runs, does the interval of $\rho$ shrink?
# 4. Write a recommender of your own, `recommend(states, lengths, k)` returning a `[B, k]` array
#    of the simulator's item ids (`states` `[B, L]` right-padded with `-1`), and score it with
#    `mcrl_kit.data.closed_loop.closed_loop(sim.data_world(data), SESSIONS, recommend, slate=SLATE, response=response)`
#    (`from mcrl_kit.data import simulator as sim`), then `online.summarize_sessions(...)`.

# %%
write_metrics("08_closed_loop", {
    "online": table,
    "offline_online": per_run.drop(columns="run"),
    "correlations": correlations,
    "sqn_values": sqn_means.to_dict(),
})
