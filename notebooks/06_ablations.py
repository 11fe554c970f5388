# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Ablations: which part of MCRL matters?
#
# **What this teaches.** How to answer a method's open questions with controlled runs. MCRL
# ([Li et al., WSDM 2024](https://arxiv.org/abs/2310.16566)) combines a value-weighted policy, a
# TD value, a conservative term (CQL-style, [Kumar et al., 2020](https://arxiv.org/abs/2006.04779)),
# a reward model and a contrastive transition model (InfoNCE,
# [van den Oord et al., 2018](https://arxiv.org/abs/1807.03748)). Its paper leaves open which of
# them carry the gain, how many negative actions $K$ to sample, and which discount $\gamma$ to use.
# We switch **one component off at a time**, then **sweep** $K$ and $\gamma$, with everything else
# fixed: data, backbone, budget and seeds. Every configuration runs for every seed, and tables
# and figures show **mean ± std over seeds**. A difference smaller than the spread between seeds
# is not a finding. The CI profile uses two seeds and a tiny budget, the `full` profile three seeds
# at real size. The terms are defined in [METHOD.md](../docs/METHOD.md) §4 (§5.3 for the control
# every MCRL claim needs); how the test metrics are computed is in [PROTOCOL.md](../docs/PROTOCOL.md),
# and the baselines are in [BASELINES.md](../docs/BASELINES.md).

# %%
import pandas as pd
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots

# %% full={"BACKBONE": "sasrec", "BATCH_SIZE": 256, "DEVICE": "auto", "EVAL_EVERY": 4000, "GAMMAS": [0.2, 0.5, 0.8], "NEGATIVES": [1, 5, 10, 20], "SCALE": "retailrocket", "SEEDS": [0, 1, 2], "STEPS": 40000, "THREADS": null} tags=["parameters"]
DATASET = "simulator"  # simulator | retailrocket-sample | retailrocket | yoochoose | events
DATA_PATH = None  # your input file(s) for retailrocket / yoochoose / events
SCALE = "tiny"  # simulator size: tiny | small | retailrocket | yoochoose
BACKBONE = "gru"  # gru | caser | nextitnet | sasrec
STEPS = 200  # optimisation steps per run (the reference: 30-50 epochs)
BATCH_SIZE = 128
LR = 0.005
EVAL_EVERY = 50  # validation (checkpoint selection) every this many steps
SEEDS = [0, 1]
DEVICE = "cpu"  # auto | cpu | cuda
THREADS = 1  # torch CPU threads (None: all cores)
SHOW_PROGRESS = None  # tqdm bars; None: auto (on in JupyterLab, off under papermill, nbmake or CI)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)
NEGATIVES = [1, 10]  # values of K to sweep (the default is 10)
GAMMAS = [0.2, 0.5]  # values of γ to sweep (the reference: 0.5)

# %% [markdown]
# ## 1 · One dataset, one study
#
# The same `Study` settings as notebooks 03–05, with the seeds of this notebook.

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# **What this shows.** The dataset in one row: sessions, items, click and purchase events, mean
# session length and the share of purchases. The test split holds a tenth of the sessions, so
# its purchases number a few dozen on `tiny` (45 in the CI profile). One test purchase
# entering or leaving the top 10 then moves purchase HR@10 by $1/45 \approx 0.02$.
#
# ## 2 · The loss, and what each switch removes
#
# Notation as in notebook 04: $h_t$ the encoder's state, $\bar h$, $\bar V$ the Polyak-averaged
# targets, $a^-$ one of the $K$ negatives ($\ne a_t$, uniform), $r_t$ the reward (0.2 click,
# 1 purchase), $d_t$ the end of the session. MCRL's loss is
#
# $$\mathcal{L} = \mathcal{L}_\pi + \lambda_V \mathcal{L}_V + \lambda_C (\mathcal{L}_C + \mathcal{L}_A) + \lambda_R \mathcal{L}_R + \lambda_T \mathcal{L}_T, \qquad \lambda_V = \lambda_C = \lambda_R = \lambda_T = 1,$$
#
# with the TD target $y_t = r_t + \gamma (1 - d_t)\, \bar V(\bar h_{t+1})$, the policy's weight $w_t = y_t$
# divided by its batch mean ($\tilde w_t$), and
#
# $$\mathcal{L}_\pi = \tilde w_t \big(-\log \pi(a_t \mid h_t)\big), \qquad \mathcal{L}_V = \big(V(h_t) - y_t\big)^2,$$
#
# $$\hat Q(h, a) = \mathbb{E}_R[r \mid h, a] + \gamma\, V\big(\tilde T(h, a)\big), \qquad \mathcal{L}_C = \log \sum_{a \in \{a_t\} \cup \{a^-\}} e^{\hat Q(h_t, a)} - \hat Q(h_t, a_t), \qquad \mathcal{L}_A = \big(\hat Q(h_t, a_t) - y_t\big)^2,$$
#
# $\mathcal{L}_R$ the reward model's cross-entropy over the logged pair (click or purchase) and the
# $K$ negative pairs (negative), and $\mathcal{L}_T$ the transition model's InfoNCE ($T(h_t, a_t)$ must
# find $\bar h_{t+1}$, $T(h_t, a^-)$ must stay at $\bar h_t$). Switching a component off:
#
# | variant | setting | what changes |
# |---|---|---|
# | MCRL | defaults | every term, $K = 10$, $\gamma = 0.5$ |
# | − reward model | `reward_model=False` | no $\mathcal{L}_R$; in $\hat Q$, $\mathbb{E}_R[r]$ is replaced by $r_t$ for $a_t$ and 0 for a negative |
# | − transition model | `transition="none"` | no $\mathcal{L}_T$; in $\hat Q$, $\tilde T(h, a)$ is replaced by $\bar h_{t+1}$ for $a_t$ and $\bar h_t$ for a negative |
# | − conservative | `conservative="none"` | no $\mathcal{L}_C$ and no anchor $\mathcal{L}_A$: $V$ learns by TD alone |
# | − value weight (plain CE) | `policy_weight="none"` | $w_t = 1$: the policy loss is the plain cross-entropy |
#
# A switched-off model still exists (untrained), so the parameter count does not change. The
# reward and transition models shape the shared encoder and item embedding through their own
# losses; the policy ranks the items. Only the value weight acts on the policy's loss directly.
#
# ## 3 · One component off at a time
#
# Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another
# notebook already trained with the same settings is reused, not trained again. A warning about
# checkpoint selection means validation holds too few purchases to choose on purchase NDCG@10
# (notebook 03); the run then chooses on click NDCG@10.

# %%
components = study.compare(study.train(experiments.ablation_variants()))
experiments.styled_compare(components)

# %% [markdown]
# **What this shows.** One row per variant, seeds merged into `mean ± std`. The columns are the
# test HR and NDCG @5/10/20, purchases and clicks apart, with the best mean of each column in
# bold. `params` is the same for every row (see above). Read down a column and compare each
# row with MCRL's, against both rows' spreads. A bold cell whose lead is smaller than the std
# is no lead. The figures below draw the two NDCG@10 columns.

# %%
fig = plots.ablation_bars(components, "purchase NDCG@10", title="Purchase NDCG@10 (test) with one component off")
plots.save_figure(fig, "06_ablation_components")
fig

# %% [markdown]
# **What this shows.** One bar per variant, full MCRL on top; the bar is the mean over seeds and
# the whisker ± one std. Bars start at 0, so their lengths compare honestly. Differences between
# variants are usually small next to the bars, so look at the whiskers. Where one variant's
# whisker overlaps MCRL's, the seeds cannot tell the two apart.

# %%
fig = plots.ablation_bars(components, "click NDCG@10", title="Click NDCG@10 (test) with one component off")
plots.save_figure(fig, "06_ablation_components_click")
fig

# %% [markdown]
# **What this shows.** The same for clicks, which are most test events. The value weight
# gives a purchase about three times a click's weight, so it can trade click accuracy for purchase
# accuracy: compare the "− value weight" bar with MCRL's on both figures.
#
# **If this disagrees with the README.** The README's table "Every method at its defaults" holds
# the same variants on the `small` simulator (4,000 steps of batch 256, up to three seeds, a few
# hundred test purchases), beside the reward-weighted control; that is the ablation to read. At
# the CI budget the target $\bar V$ has had 200 Polyak steps at rate 0.01 to learn how states
# differ ($0.99^{200} \approx 13\,\%$ of its initial weights remain). So $w_t$ is close to the
# normalised reward plus a near-constant bootstrap, and the auxiliary models have had as few
# steps to shape the encoder. With two seeds and a few dozen test purchases, any ordering here
# can be noise.
#
# ## 4 · The number of negatives $K$
#
# Each transition draws $K$ negatives. They enter three terms: the reward model sees $K$ negative
# pairs; the transition model has $K$ queries that must stay at $\bar h_t$; and the conservative
# term's log-sum-exp runs over $K + 1$ actions, so at chance (all $\hat Q$ equal) it equals
# $\log(K + 1)$. More negatives give more contrast per transition, at more compute per step. The
# policy sees $K$ only through the shared encoder.

# %%
negatives = study.compare(study.train(experiments.sweep_variants("neg", NEGATIVES, "K")))
fig = plots.sweep(negatives, NEGATIVES, "negatives K")
plots.save_figure(fig, "06_ablation_negatives")
fig

# %% [markdown]
# **What this shows.** Test purchase (left) and click (right) NDCG@10 against $K$, mean over seeds
# with ± one std as error bars, one point per swept value. The y-axes are zoomed to the points,
# so a small difference looks steep: read it against the error bars, not the slope. $K = 10$
# is the default, so that point is the MCRL row of section 3 (the same runs, reused).
#
# ## 5 · The discount $\gamma$
#
# $\gamma$ sets how far ahead the value looks. It enters the target $y_t$, and so the policy's weight
# $w_t = y_t$; it enters $\hat Q$; and it sets $V$'s range $[0, r_{\max}/(1-\gamma)]$. A small $\gamma$ brings $w_t$
# close to the reward alone: at $\gamma = 0$, $w_t = r_t$, and the policy loss is the reward-weighted
# cross-entropy `reward_ce`, the control of [METHOD.md](../docs/METHOD.md) §5.3.

# %%
gammas = study.compare(study.train(experiments.sweep_variants("gamma", GAMMAS, "γ")))
fig = plots.sweep(gammas, GAMMAS, "discount γ")
plots.save_figure(fig, "06_ablation_gamma")
fig

# %% [markdown]
# **What this shows.** The same axes as the $K$ sweep, against $\gamma$. $\gamma = 0.5$ is the default
# and the reference's, so that point is again the MCRL row. Read the slope against the error bars.
#
# Both sweeps in one table (the default values repeat the MCRL row):

# %%
sweeps = pd.concat([negatives, gammas], ignore_index=True)
experiments.styled_compare(sweeps, columns=["purchase HR@10", "purchase NDCG@10", "click HR@10", "click NDCG@10"])

# %% [markdown]
# **What this shows.** One row per swept value, HR@10 and NDCG@10 for purchases and clicks,
# `mean ± std` over seeds, the best mean of each column in bold. Rows of one sweep differ in
# that setting only. Compare rows within a sweep, and compare their gaps with the std.
#
# ## Summary
#
# - An ablation changes one thing at a time on the same data, budget and seeds. A claim needs a
#   gap larger than the seed spread, ideally over more than two seeds.
# - Switching a model off in MCRL removes its loss and puts its training targets in its place
#   inside $\hat Q$; it does not change the parameter count.
# - $K$ sets the contrast of the reward, transition and conservative terms. $\gamma$ sets how
#   far the value looks ahead, and with it how far the policy's weight departs from the reward.
# - At the CI budget (two seeds, a few dozen test purchases) even a gap larger than the std is
#   weak evidence: two seeds give a rough std, and one purchase moves HR@10 by about 0.02. The
#   README's study is the scale at which an ablation can say something.
#
# ## Exercises
#
# 1. Add the control every MCRL claim needs (METHOD.md §5.3):
#    `study.compare(study.train({"reward_ce": "reward_ce"}))`. Does MCRL beat the
#    reward-weighted CE by more than the seed spread?
# 2. Try the other negative samplers: `study.train(experiments.sweep_variants("sampler",
#    ["uniform", "popularity", "in_batch", "unseen"]))`. Which one gives the reward model the
#    hardest negatives, and does purchase NDCG@10 notice?
# 3. Weaken instead of removing: `experiments.sweep_variants("lambda_conservative", [0.1, 1.0, 10.0], "λ_C")`,
#    then `plots.sweep(study.compare(study.train(...)), [0.1, 1.0, 10.0], "λ_C")`.
# 4. Set `STEPS = 2000` and `SEEDS = [0, 1, 2]`: which components' gaps outgrow the seed spread?

# %%
write_metrics("06_ablations", {
    "components": experiments.metric_summary(components),
    "negatives": experiments.metric_summary(negatives),
    "gammas": experiments.metric_summary(gammas),
})
