# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · MCRL, term by term
#
# **What this teaches.** Model-enhanced contrastive RL (Li et al., WSDM 2024) on the same
# backbone and budget as the baselines. One encoder `h = f(s)` feeds
#
# - a **policy** head `π(a|h)` over all items — the recommender, trained by a
#   cross-entropy weighted with the value target `r + γ V̄(s')` (**policy**);
# - a scalar **value** head `V(h)`, learned by TD (**value**) with a **conservative**
#   penalty: the model-based value of the logged action must beat those of sampled
#   negative actions in a log-sum-exp (CQL over sampled actions);
# - a **reward model** `R(h, a)` classifying a state–action pair as negative / click /
#   purchase (**reward**), negatives being items the user did not pick;
# - a **transition model** `T(h, a)` predicting the next state's embedding, contrastively:
#   the logged item must move the user to the next state, a negative must leave them where
#   they were (**transition**, InfoNCE).
#
# We follow each loss term, check what the reward and transition models learned, compare
# parameter counts (one item head instead of SQN's four) and put MCRL in the results table.
# Which parts are the paper's and which the kit's reconstruction: `shared/docs/METHOD.md`.

# %%
from mcrl_kit import experiments, probes
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
# ## Train MCRL (and the baselines, for the table)
#
# Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another notebook already trained with the same settings is reused, not trained again.

# %%
runs = study.train({**experiments.baselines(STEPS), "MCRL": "mcrl"})
curves = study.curves(runs)

# %% [markdown]
# ## Each loss term
#
# `policy` is the value-weighted CE that ranks items; `ce` is the plain CE (logged for
# comparison with the baselines); `v_mean` is the mean predicted value of the batch.

# %%
fig = plots.loss_terms(curves, ["policy", "ce", "value", "conservative", "reward", "transition", "v_mean"], label="MCRL")
plots.save_figure(fig, "04_mcrl_loss_terms")
fig

# %% [markdown]
# ## What the reward model learned
#
# On every test event: the logged pair (true class click or purchase) and K sampled
# negative pairs (true class negative), classified by the reward model. Colours are the
# share of each true class; purchases are rare, so their row is the hard one.

# %%
_, mcrl, _ = study.load(runs["MCRL"][0])
confusion = probes.reward_confusion(mcrl, data)
fig = plots.confusion_matrix(confusion)
plots.save_figure(fig, "04_reward_confusion")
fig

# %% [markdown]
# ## What the transition model learned
#
# Cosine similarity between the predicted next-state embedding `T(h_t, a)` and the target
# encoder's embedding of the next state (where the user went) or of the current state
# (where a rejected item should leave them). Trained well, logged items score higher on
# "next state" and negatives higher on "current state".

# %%
similarity = probes.transition_similarity(mcrl, data)
fig = plots.similarity_histograms(similarity)
plots.save_figure(fig, "04_transition_similarity")
fig

# %%
cosines = similarity.groupby(["pair", "target"])["cosine"].mean().unstack()
cosines

# %% [markdown]
# ## MCRL against the baselines
#
# Same backbone, same budget, same seeds. `params` shows the paper's point about size: one
# encoder, one item-sized policy head and small MLPs, against SQN's two networks × two heads.

# %%
table = study.compare(runs)
print(experiments.format_compare(table))

# %%
interactive.learning_curves(curves, "val/purchase/NDCG@10")

# %%
write_metrics("04_mcrl", {
    "results": experiments.metric_summary(table),
    "params": dict(zip(table["label"], table["params"])),
    "reward_confusion": confusion.to_dict(),
    "transition_cosines": {f"{p} → {t}": v for (p, t), v in cosines.stack().items()},
    "final_losses": curves[curves["label"] == "MCRL"].filter(like="loss/").dropna(how="all").iloc[-1].dropna().to_dict(),
}, globals())
