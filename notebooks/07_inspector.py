# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · The per-session value inspector
#
# **What this teaches.** To read what trained runs believe, one held-out session at a
# time. For the chosen session the panel shows, per step: the items, the event type and
# its reward; each run's predicted value against the Monte-Carlo return and the bias
# between them; MCRL's reward-model probabilities for the logged item; and each policy's
# top-k recommendations with the logged item marked — so you can see *where* a value
# function is optimistic and whether the policy saw the purchase coming.
#
# Pick a session from the dropdown or move the slider; tick "has purchase" to keep only
# sessions with a purchase; "next session" steps through them.

# %%
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots
from mcrl_kit.viz.inspector import Inspector

# %% full={"BACKBONE": "sasrec", "BATCH_SIZE": 256, "DEVICE": "auto", "EVAL_EVERY": 4000, "SCALE": "retailrocket", "STEPS": 40000, "THREADS": null} tags=["parameters"]
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
SPLIT = "test"  # the split whose sessions are inspected
TOP_K = 5  # recommendations shown per step
SESSION = None  # the session shown first (None: the split's first)

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# ## The runs to inspect
#
# SQN (a Q-value per item) and MCRL (a value per state). Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run another notebook already trained with the same settings is reused, not trained again.

# %%
runs = study.train({"SQN": "sqn", "MCRL": "mcrl"})
inspector = Inspector.from_runs({label: folders[0] for label, folders in runs.items()}, split=SPLIT, k=TOP_K, device=DEVICE, session=SESSION)

# %% [markdown]
# ## One session, computed directly
#
# Rendering once outside the widget makes a broken inspector fail a headless run
# (ipywidgets would swallow an exception raised inside a callback).

# %%
inspector.render()

# %%
inspector.table

# %%
fig = plots.session_values(inspector.table, title=inspector.figure.layout.title.text)
plots.save_figure(fig, "07_inspector_session")
fig

# %% [markdown]
# ## The panel

# %%
inspector

# %% [markdown]
# Callbacks run the same code: for example, keep only sessions with a purchase.

# %%
inspector.has_purchase.value = True
print(inspector.figure.layout.title.text)

# %%
table = inspector.table
write_metrics("07_inspector", {
    "sessions": len(inspector.session.options),
    "session": int(inspector.session.value),
    "steps": len(table),
    "title": inspector.figure.layout.title.text,
    "mean_bias": {label: float(table[f"bias {label}"].mean()) for label in runs},
    "mean_rank": {label: float(table[f"rank {label}"].mean()) for label in runs},
})
