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
# **What this teaches.** Offline RL from logs tends to **overestimate** values: the logs
# hold no negative feedback, so nothing pulls down the values of actions nobody took, and
# bootstrapping spreads the optimism. We measure it on every held-out event:
#
# - the **predicted value** — `Q(s_t, a_t)` of the logged item for SQN and SA2C, `V(s_t)`
#   for MCRL;
# - the **Monte-Carlo return** `G_t` actually observed in the logged session (one noisy,
#   unbiased sample of the true value);
# - on the simulator, the **true expected return** of what each estimate estimates, by
#   rolling the simulated users forward from the logged state many times: for SQN and SA2C
#   the value of their *own greedy policy* (after `a_t` the next items are `argmax_a Q`: the
#   forced-action value their target `r + γ max Q` estimates), for MCRL's `V(s_t)` the
#   users' own behaviour (notebook 08 explains both);
# - the **bias** = prediction − return; above 0 is overestimation.
#
# Four learners: SQN, SA2C, MCRL, and MCRL without its conservative term — the last pair
# isolates what conservative value learning does.

# %%
from mcrl_kit import diagnostics, experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots

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
SHOW_PROGRESS = None  # tqdm bars: None = auto (on in JupyterLab; off under papermill, nbmake or CI)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)
ROLLOUTS = 16  # simulator rollouts per event for the true return (the diagnose command: 64)

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# ## Train (or reuse) the four value learners
#
# Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another notebook already trained with the same settings is reused, not trained again.

# %%
runs = study.train(experiments.overestimation_variants(STEPS))
values, summary = diagnostics.diagnose_runs(runs, n_rollouts=ROLLOUTS, device=DEVICE)
summary

# %% [markdown]
# ## Predicted value against the return
#
# Points above the dashed diagonal are overestimated. The Monte-Carlo return of one
# session is noisy (a click or a purchase); the true return (simulator) is its expectation.

# %%
fig = plots.bias_scatter(values)
plots.save_figure(fig, "05_value_vs_return")
fig

# %%
interactive.value_scatter(values)

# %% [markdown]
# ## Bias by step in the session
#
# Early steps have long futures, so bootstrapped errors have more room to add up.

# %%
fig = plots.bias_by_step(values)
plots.save_figure(fig, "05_bias_by_step")
fig

# %% [markdown]
# ## Bias distributions
#
# Against the Monte-Carlo return, then (on the simulator) against the true return.

# %%
fig = plots.bias_distribution(values)
plots.save_figure(fig, "05_bias_distribution")
fig

# %%
fig = plots.bias_distribution(values, "bias_true") if "bias_true" in values else None
if fig is not None:
    plots.save_figure(fig, "05_bias_true_distribution")
fig

# %%
write_metrics("05_overestimation", {
    "summary": summary,
    "mean_bias": dict(zip(summary["label"], summary["mean_bias"])),
    "events": int(values.groupby("label").size().iloc[0]),
})
