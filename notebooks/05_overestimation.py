# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Overestimation: predicted values against real returns
#
# **What this teaches.** How to check a learned value function against the returns it is
# supposed to predict, and how to read the sign of the gap. Offline RL is *expected* to
# overestimate: the logs hold no negative feedback, so nothing pulls down the values of
# actions nobody took, and a $\max$ over noisy estimates in the target is biased upwards
# ([Fujimoto et al., 2019](https://arxiv.org/abs/1812.02900);
# [van Hasselt et al., 2016](https://arxiv.org/abs/1509.06461) on the $\max$;
# [Kumar et al., 2020](https://arxiv.org/abs/2006.04779) for the conservative cure). MCRL
# ([Li et al., WSDM 2024](https://arxiv.org/abs/2310.16566)) adds its conservative term for this
# reason. Whether a given run over- or underestimates is an empirical question: this notebook
# measures it, and the answer can come out either way.
#
# The learners do not all estimate the same thing:
#
# - **Q-type** — SQN and SA2C learn $Q(s_t, a_t)$ by bootstrapping on the $\arg\max$ action: the
#   value of taking $a_t$ and then following their own **greedy** policy;
# - **V-type** — MCRL learns $V(s_t)$ by TD(0) on the logged transitions, with no $\max$: the
#   value of the state under the **logging** behaviour, the users' own.
#
# The logged return is a sample of the behaviour's value, so comparing a Q-type with it mixes
# "estimates another policy" with "estimates wrongly". Each estimator is therefore also compared,
# like for like, with the true value of the policy it estimates, which the simulator can compute.
# Four learners: SQN, SA2C, MCRL, and MCRL without its conservative term (the last pair isolates
# what that term does to $V$). The method in the kit's words: [METHOD.md](../docs/METHOD.md) (§2 for
# the Q-learners, §4.2–4.4 for MCRL's value); the baselines: [BASELINES.md](../docs/BASELINES.md);
# the test split: [PROTOCOL.md](../docs/PROTOCOL.md).

# %%
import numpy as np
import pandas as pd
from mcrl_kit import diagnostics, experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots

# %% full={"BACKBONE": "sasrec", "BATCH_SIZE": 256, "DEVICE": "auto", "EVAL_EVERY": 4000, "ROLLOUTS": 64, "SCALE": "retailrocket", "STEPS": 40000, "THREADS": null} tags=["parameters"]
DATASET = "simulator"  # simulator | retailrocket-sample | retailrocket | yoochoose | events
DATA_PATH = None  # your input file(s) for retailrocket / yoochoose / events
SCALE = "tiny"  # simulator size: tiny | small | retailrocket | yoochoose
BACKBONE = "gru"  # gru | caser | nextitnet | sasrec
STEPS = 200  # optimisation steps per run (the reference: 30-50 epochs)
BATCH_SIZE = 128
LR = 0.005
EVAL_EVERY = 50  # validation (checkpoint selection) every this many steps
SEEDS = [0]
DEVICE = "cpu"  # auto | cpu | cuda
THREADS = 1  # torch CPU threads (None: all cores)
SHOW_PROGRESS = None  # tqdm bars; None: auto (on in JupyterLab, off under papermill, nbmake or CI)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)
ROLLOUTS = 16  # simulator rollouts per event for the true return (the diagnose command: 64)

# %% [markdown]
# ## 1 · One dataset, one study
#
# The same `Study` settings as notebooks 03 and 04, so their SQN, SA2C and MCRL runs are reused.

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# **What this shows.** The dataset in one row: sessions, items, click and purchase events, mean
# session length and the share of purchases. Every value below is measured on its test split.
#
# ## 2 · What each learner estimates, and its truth
#
# A transition is $(s_t, a_t, r_t, s_{t+1}, d_t)$ with $r_t = 0.2$ for a click, $1$ for a purchase
# and $\gamma = 0.5$ (notebook 01). The **Monte-Carlo return** of a logged event is what the
# session actually earned from it on, to the session's end:
#
# $$G_t = \sum_{k \ge 0} \gamma^k\, r_{t+k}.$$
#
# **SQN** (double Q-learning, two networks $\theta, \theta'$; notebook 03) regresses
# $Q_\theta(s_t, a_t)$ on
#
# $$y_t = r_t + \gamma\,(1 - d_t)\, Q_{\theta'}\big(s_{t+1}, \arg\max_a Q_\theta(s_{t+1}, a)\big).$$
#
# **SA2C** uses the same target, plus $K$ sampled negatives $a^- \ne a_t$ with reward 0 whose
# target bootstraps from $s_t$; after its switch it weights the cross-entropy by the clipped,
# stop-gradient advantage
#
# $$A_t = \mathrm{sg}\Big(Q(s_t, a_t) - \frac{1}{K+1} \sum_{a \in \{a_t\} \cup \{a^-\}} Q(s_t, a)\Big), \qquad w_t = \mathrm{clip}(A_t, 0, 10).$$
#
# The weight changes what the policy head learns, not the target of $Q$. A perfect fit of either
# target is $Q^{\pi_Q}(s_t, a_t)$, the value of $a_t$ followed by the greedy policy
# $\pi_Q(s) = \arg\max_a Q(s, a)$.
#
# **MCRL** (notebook 04) regresses $V(h_t)$ on the TD target of its Polyak-averaged copy
# $\bar V$ (the conservative and anchor terms act on $V$ too; "MCRL − conservative" drops both):
#
# $$y_t = r_t + \gamma\,(1 - d_t)\, \bar V(\bar h_{t+1}), \qquad \mathcal{L}_V = \big(V(h_t) - y_t\big)^2 .$$
#
# No $\max$: a perfect fit is $V^{\beta}(s_t) = \mathbb{E}_\beta[G_t \mid s_t]$, the value of the
# state under the logging behaviour $\beta$.
#
# **The truths** (simulator only, `ROLLOUTS` rollouts per event, 12 events ahead;
# `mcrl_kit/diagnostics.py`):
#
# - for a Q-type, the **forced-action value** $Q^{\pi_Q}(s_t, a_t)$: the logged event happens,
#   then each next item consumed is $\arg\max_a Q(s, a)$, with purchases and stops drawn by the
#   simulator's rules;
# - for a V-type, the users' own $V^{\beta}(s_t)$: the simulated user goes on as users do.
#
# The logged $G_t$ is one noisy, unbiased sample of the behaviour's value. It is therefore the
# right yardstick for $V$. For $Q$ it is the yardstick of another policy:
#
# $$\hat Q(s_t, a_t) - G_t = \underbrace{\hat Q - Q^{\pi_Q}}_{\text{estimation error}} + \underbrace{Q^{\pi_Q} - Q^{\beta}}_{\text{another policy}} + \underbrace{Q^{\beta} - G_t}_{\text{noise, mean } 0}, \qquad \text{all at } (s_t, a_t).$$
#
# **The bias** of a prediction $\hat v_t$ ($\hat Q(s_t, a_t)$ or $\hat V(s_t)$) is prediction −
# return, against the logged return and against the truth $v^\star_t$ of the policy it estimates:
#
# $$b_t = \hat v_t - G_t, \qquad b^\star_t = \hat v_t - v^\star_t, \qquad \bar b = \frac{1}{N} \sum_{t} b_t$$
#
# (the columns `bias` and `bias_true` of the per-event table `values`; $\bar b^\star$ likewise).
#
# **How to read its sign.** Only the mean over the $N$ test events is a bias: a single $G_t$ is a
# click or a purchase away from its expectation, so per-event gaps are wide even for an exact
# estimator. $\bar b^\star > 0$ means the learner overestimates the value of the policy it
# estimates, $\bar b^\star < 0$ that it underestimates it, and a mean within about two standard
# errors ($2\,\mathrm{sd}(b^\star)/\sqrt{N}$) of 0 has no clear sign.
#
# ## 3 · Train (or reuse) the four learners, then measure
#
# Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another
# notebook already trained with the same settings is reused, not trained again.
# `diagnose_runs` scores every test event of every run (seeds pooled per learner). A warning about
# checkpoint selection means validation holds too few purchases to choose on purchase NDCG@10
# (notebook 03); the run then chooses on click NDCG@10.

# %%
runs = study.train(experiments.overestimation_variants(STEPS))
values, summary = diagnostics.diagnose_runs(runs, n_rollouts=ROLLOUTS, device=DEVICE)

# %% [markdown]
# One row per learner. The reading is made from the data: the like-for-like bias
# (`bias vs truth`, or `bias vs MC` where there is no simulator) beyond two standard errors of
# its mean is called over- or underestimation, anything closer to 0 "no clear sign".

# %%
truth = "bias_true" in values  # the simulator's truth; logged data have only G_t
bias = "mean_bias_true" if truth else "mean_bias"
two_se = 2 * summary[bias.replace("mean_", "std_")] / np.sqrt(summary["events"])
overview = summary.reindex(columns=["label", "mean_value", "mean_mc_return", "mean_true_value", "mean_bias", "mean_bias_true"])
overview = overview.dropna(axis=1, how="all").round(3).rename(columns={
    "mean_value": "mean prediction", "mean_mc_return": "mean MC return", "mean_true_value": "mean true value",
    "mean_bias": "bias vs MC", "mean_bias_true": "bias vs truth"})
overview["reading"] = np.select([summary[bias] > two_se, summary[bias] < -two_se],
                                ["overestimates", "underestimates"], "no clear sign")
overview

# %% [markdown]
# **What this shows.** Means over the test events. `mean prediction` is $\hat Q(s_t, a_t)$ for SQN
# and SA2C and $\hat V(s_t)$ for the two MCRL rows; `mean MC return` is the same for every row
# (the same logged events); `mean true value` is each learner's own truth, so the Q-types'
# differ with their greedy policies while both MCRL rows share the users' $V^\beta$. `bias vs MC` is
# prediction − $G_t$, `bias vs truth` prediction − truth, and `reading` says which way the
# like-for-like column points. Compare the two MCRL rows for what the conservative term does to
# $V$. With one seed there is no seed spread to judge that difference by.
#
# **Why this need not match the README.** The README's closed-loop section compares each
# learner's mean value with its truth on the `small` simulator (1,000 steps of batch 256, three
# seeds). At 200 steps on `tiny` the Q heads start near 0 (Glorot weights,
# zero bias) and have had a few hundred TD updates to climb to returns near 0.4, so a short run can
# leave them below their truth. MCRL's $V$ starts at $r_{\text{click}}/(1-\gamma) = 0.4$, near the
# typical return. So the CI profile's signs say where these short runs stopped, not how the
# methods compare.
#
# ## 4 · Predicted value against the return

# %%
fig = plots.bias_scatter(values)
plots.save_figure(fig, "05_value_vs_return")
fig

# %% [markdown]
# **What this shows.** One panel per learner, one point per test event (up to 3,000); the y-axis
# is the prediction. Blue points put it against the logged $G_t$, orange against the true
# value; the dashed line is prediction = return. Points under the line are predictions below the
# return, points above it predictions above it. The blue points stand in vertical stripes,
# because a session's $G_t$ takes few values (sums of $0.2$s and $1$s discounted by $0.5$). The
# orange points are expectations and spread smoothly. A learner that tracked its truth
# would lay the orange cloud along the diagonal. A flat cloud (the same prediction whatever
# the truth) means the estimate has not learned which states are worth more, even if its
# mean is right. MCRL's $V$ is squashed into $[0, 2]$; the Q heads are unbounded, and can go
# below 0 though no return does.
#
# ## 5 · Where the bias sits: position in the session, event type

# %%
fig = plots.bias_by_step(values)
plots.save_figure(fig, "05_bias_by_step")
fig

# %% [markdown]
# **What this shows.** The mean of $b_t$ = prediction − $G_t$ (the logged return, available on
# any data) per position in the session, with ± one standard error, one line per learner; the
# black line is 0. Read each line against 0 and against its own error bars. The
# last buckets hold few events, so their bars are wider. For MCRL this is a like-for-like
# comparison. For SQN and SA2C it also contains $Q^{\pi_Q} - Q^\beta$, the gap between their
# greedy policy and the users' behaviour, which need not be the same at every step. Early steps
# have long futures, where bootstrapped errors have the most room to add up; whether they do
# here, the lines say.

# %%
by_event = pd.concat({label: diagnostics.bias_by(part, "event").set_index("group")
                      for label, part in values.groupby("label", sort=False)}, names=["learner", "event"])
by_event.reindex(columns=["events", "mean_value", "mean_mc_return", "mean_bias", "mean_bias_true"]).dropna(axis=1, how="all").round(3)

# %% [markdown]
# **What this shows.** The same means split by what the logged event turned out to be, a click
# or a purchase; `events` counts them. No learner sees that outcome when it predicts: $V(s_t)$
# is computed before the event, and $Q(s_t, a_t)$ knows the item but not whether it will be
# bought. $G_t$ includes the outcome, though. So against the logged return every learner
# looks lower on purchase rows than on click rows, by roughly the purchase's extra reward, and
# that gap says nothing about bias. The mean over all events (section 3) does. The Q-types' truth
# also starts from the logged $r_t$, so their `mean_bias_true` splits the same way. MCRL's truth
# $V^\beta(s_t)$ does not know the outcome. Its purchase rows can still sit lower, because
# purchases happen more often to users whose hidden traits raise their true value, and no model
# sees those traits. Purchase rows rest on a few dozen test events.
#
# ## 6 · The distribution of the bias per event

# %%
fig = plots.bias_distribution(values)
plots.save_figure(fig, "05_bias_distribution")
fig

# %% [markdown]
# **What this shows.** One violin per learner: the distribution of $b_t$ = prediction − $G_t$
# over the test events, its mean marked; the black line is 0. The width at a height is how many
# events have that gap. Part of the spread is the noise of a single logged return: a purchase
# adds to $G_t$ what no prediction expected, so the tails reach below 0. Part is the estimator's
# own scatter; the next figure removes the first part. Read the means, not the tails.

# %%
fig = plots.bias_distribution(values, "bias_true") if truth else None  # logged data have no truth
if truth:
    plots.save_figure(fig, "05_bias_true_distribution")
fig

# %% [markdown]
# **What this shows.** The like-for-like version: $b^\star_t$ = prediction − the true value of the
# policy each learner estimates. The logged-return noise is gone, which narrows the violins.
# What spread remains is the estimator's own error per state, plus, for the Q-types, the
# logged $r_t$ their truth starts from, plus what the rollouts' user traits (patience, purchase
# propensity) add and no model can see. A violin centred on 0 and narrow is an estimator that
# is right on average and per state. One centred off 0 is biased in the direction of its mean,
# whichever that is.
#
# ## Summary
#
# - The bias is prediction − return, averaged over events. One event's gap carries the noise of
#   a single logged return, so read means with their standard errors, not single points.
# - Q-type learners (SQN, SA2C) estimate the value of their own greedy policy; MCRL's $V$, with
#   no $\max$ in its target, estimates the users' behaviour. Compare each with the truth of
#   its own policy. The logged $G_t$ is like for like only for $V$.
# - The sign is measured, not assumed. Offline RL is expected to overestimate, but a run can
#   sit on either side; a short run whose Q head starts near 0 can sit below.
# - Splitting the bias by outcome (click or purchase) conditions on what no learner saw, so
#   that split is not a bias. The overall mean is.
#
# ## Exercises
#
# 1. Make the conservative term stronger and measure again:
#    `extra = study.train({"MCRL, λ_C = 10": ("mcrl", {"lambda_conservative": 10.0})})`, then
#    `diagnostics.diagnose_runs(extra, n_rollouts=ROLLOUTS, device=DEVICE)[1]`. Does
#    `mean_bias_true` move below the "MCRL" row's, and by more than two standard errors?
# 2. Try the other conservative mode, a lower expectile of the TD target:
#    `("mcrl", {"conservative": "expectile"})`. Which way should it push $V$, and does it?
# 3. Set `STEPS = 2000` and `SEEDS = [0, 1]` and rerun: do the Q-types' means move towards
#    their truths, and does each reading hold for both seeds
#    (`values.groupby(["label", "seed"])["bias_true"].mean()`)?
# 4. Compare `summary[["label", "mean_value", "mean_max_q"]]`: $\max_a Q(s_t, a)$ is what a greedy
#    bootstrap reads. Then find the events a learner values worst,
#    `values.nsmallest(5, "bias_true")[["label", "session", "step", "value", "true_value"]]`, and
#    open one of those sessions in notebook 07 (`SESSION = ...`).

# %%
write_metrics("05_overestimation", {
    "summary": summary,
    "mean_bias": dict(zip(summary["label"], summary["mean_bias"])),
    "events": int(values.groupby("label").size().iloc[0]),
})
