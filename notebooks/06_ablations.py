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
# **What this teaches.** How to ask a method's open questions with controlled runs. Each
# row switches one MCRL component off — the reward model, the transition model, the
# conservative term, the value weight of the policy loss — and two sweeps vary the number
# of negative actions `K` and the discount `γ`. Every configuration runs for every seed,
# and tables and plots show **mean ± std over seeds**: a difference smaller than the
# spread between seeds is not a finding. The CI profile uses two seeds and a tiny budget;
# the `full` profile three seeds at real size.

# %%
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots

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
SHOW_PROGRESS = None  # tqdm bars: None = auto (on in JupyterLab; off under papermill, nbmake or CI)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)
NEGATIVES = [1, 10]  # values of K to sweep (the default is 10)
GAMMAS = [0.2, 0.5]  # values of γ to sweep (the reference: 0.5)

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# ## One component off at a time
#
# Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another notebook already trained with the same settings is reused, not trained again.

# %%
components = study.compare(study.train(experiments.ablation_variants()))
print(experiments.format_compare(components))

# %%
fig = plots.ablation_bars(components, "purchase NDCG@10")
plots.save_figure(fig, "06_ablation_components")
fig

# %%
interactive.ablation_bars(components, "click NDCG@10")

# %% [markdown]
# ## The number of negatives K
#
# More negatives give the reward model, the transition model and the conservative term
# more contrast per transition, at more compute per step.

# %%
negatives = study.compare(study.train(experiments.sweep_variants("neg", NEGATIVES, "K")))
fig = plots.sweep(negatives, NEGATIVES, "negatives K")
plots.save_figure(fig, "06_ablation_negatives")
fig

# %% [markdown]
# ## The discount γ
#
# γ sets how far ahead the value — and so the policy's weight — looks.

# %%
gammas = study.compare(study.train(experiments.sweep_variants("gamma", GAMMAS, "γ")))
fig = plots.sweep(gammas, GAMMAS, "discount γ")
plots.save_figure(fig, "06_ablation_gamma")
fig

# %%
print(experiments.format_compare(gammas))

# %%
write_metrics("06_ablations", {
    "components": experiments.metric_summary(components),
    "negatives": experiments.metric_summary(negatives),
    "gammas": experiments.metric_summary(gammas),
})
