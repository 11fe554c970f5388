# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Baselines: supervised, SQN and SA2C
#
# **What this teaches.** The three reference points MCRL is compared with, trained on one
# backbone under one budget:
#
# - **supervised** — cross-entropy over all items: the backbone alone (e.g. GRU4Rec);
# - **SQN** (Xin et al., SIGIR 2020) — the same cross-entropy head plus a double-Q head
#   over all items trained by TD learning on the rewards; ranking uses the CE head;
# - **SA2C** (Xin et al., WSDM 2022) — SQN with 10 sampled negative items per transition
#   (reward 0), then the CE weighted by the critic's clipped advantage at a lower learning
#   rate. The reference switches after 15,000 steps; here it switches halfway through.
#
# We plot learning curves (validation NDCG@10 and the CE loss) and build the results table:
# HR and NDCG @5/10/20, clicks and purchases apart, mean ± std over seeds. The CI profile
# trains for seconds, so its numbers are for checking the pipeline, not for conclusions —
# rerun with the `full` profile (README) for real ones.

# %%
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots

# %% full={"BACKBONE": "sasrec", "BATCH_SIZE": 256, "DEVICE": "auto", "EVAL_EVERY": 4000, "SCALE": "retailrocket", "SEEDS": [0, 1, 2], "STEPS": 40000, "THREADS": null} tags=["parameters"]
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
SHOW_PROGRESS = False  # tqdm bars (off under papermill: their widget state bloats notebooks)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# ## Train
#
# Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another notebook already trained with the same settings is reused, not trained again.

# %%
runs = study.train(experiments.baselines(STEPS))
runs

# %% [markdown]
# ## Learning curves
#
# Validation metrics at each evaluation (the best step's weights are kept) and the CE loss
# every logging interval. With several seeds the band spans their minimum and maximum.

# %%
curves = study.curves(runs)
fig = plots.learning_curves(curves, ["val/purchase/NDCG@10", "val/click/NDCG@10", "loss/ce"])
plots.save_figure(fig, "03_learning_curves")
fig

# %%
interactive.learning_curves(curves, "val/purchase/NDCG@10")

# %% [markdown]
# ## Results on the test split
#
# `params` counts trainable parameters: SQN and SA2C hold two whole networks with two
# item-sized heads each, as the reference does.

# %%
table = study.compare(runs)
print(experiments.format_compare(table))

# %%
write_metrics("03_baselines", {
    "results": experiments.metric_summary(table),
    "params": dict(zip(table["label"], table["params"])),
    "runs": {label: [str(f) for f in folders] for label, folders in runs.items()},
}, globals())
