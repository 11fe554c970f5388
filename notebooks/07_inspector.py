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
# **What this teaches.** How to read what trained runs believe, one held-out session at a time.
# Averages (notebooks 03–06) hide *where* a value function is off and whether a policy saw a
# purchase coming. The inspector puts, for every step of one session, the logged item and its
# reward beside each run's predicted value, the return the session actually earned, the rank the
# policy gave the logged item, and MCRL's reward-model probabilities. It also shows each
# policy's top-$k$ recommendations. Two runs are compared: SQN
# ([Xin et al., SIGIR 2020](https://arxiv.org/abs/2006.05779)), which has a Q-value per item, and
# MCRL ([Li et al., WSDM 2024](https://arxiv.org/abs/2310.16566)), which has a value per state and a
# reward model. Their losses are in [METHOD.md](../docs/METHOD.md) §2 and §4 and the splits in
# [PROTOCOL.md](../docs/PROTOCOL.md); what each value estimates is in notebook 05.
#
# The panel: pick a session from the dropdown or move the slider; tick "has purchase" to keep
# only sessions with a purchase; "next session" steps through them; "policy" and "top-k" choose
# the recommendations shown.

# %%
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
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
SHOW_PROGRESS = None  # tqdm bars; None: auto (on in JupyterLab, off under papermill, nbmake or CI)
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)
SPLIT = "test"  # the split whose sessions are inspected
TOP_K = 5  # recommendations shown per step
SESSION = None  # the session shown first (None: the split's first)

# %% [markdown]
# ## 1 · One dataset, one study
#
# The same `Study` settings as notebooks 03–05, so their SQN and MCRL runs are reused.

# %%
data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()

# %% [markdown]
# **What this shows.** The dataset in one row: sessions, items, click and purchase events, mean
# session length and the share of purchases. The inspector reads the sessions of the `SPLIT`
# split (test by default), which no run trained on.
#
# ## 2 · The runs to inspect
#
# SQN and MCRL, first seed. Runs are stored under `OUT_DIR/runs/` in folders named by their
# configuration: a run another notebook already trained with the same settings is reused, not
# trained again.

# %%
runs = study.train({"SQN": "sqn", "MCRL": "mcrl"})
inspector = Inspector.from_runs({label: folders[0] for label, folders in runs.items()}, split=SPLIT, k=TOP_K,
                                device=DEVICE, session=SESSION)

# %% [markdown]
# ## 3 · What the panel computes for each step
#
# A session is a sequence of events $t = 0, 1, \dots$; the state $s_t$ is the last items before $t$
# (up to 10; the column `history (last items)`, "—" at the first step), $a_t$ the logged `item`,
# and $r_t$ its `reward` (0.2 for a click, 1 for a purchase). Per step and per run:
#
# - **`mc_return`**: the discounted return the session actually earned from step $t$ on,
#   $G_t = \sum_{k \ge 0} \gamma^k r_{t+k}$ up to its last event ($\gamma = 0.5$; the first run's
#   settings).
# - **`value`**: what the run predicts for the step. For **SQN** it is $Q(s_t, a_t)$, network 1's
#   Q head at the logged item. It estimates $a_t$ followed by SQN's greedy policy, since its target
#   bootstraps on $\arg\max_a Q$. For **MCRL** it is $V(s_t)$, the state's value, which does not
#   depend on $a_t$ and estimates the users' own behaviour.
# - **`bias`** = value − `mc_return`: above 0 the prediction is over the return this session
#   earned, below 0 under it. One session's $G_t$ is a single noisy sample, so one bar is not a
#   bias. For SQN it is also the return of another policy than the one $Q$ estimates; notebook 05
#   averages over all events and compares like for like.
# - **`rank`**: the logged item's position among all items under the run's ranking head (the
#   cross-entropy head of SQN's network 1; MCRL's policy),
#   $\mathrm{rank}_t = 1 + \big|\{a : \mathrm{score}(s_t, a) > \mathrm{score}(s_t, a_t)\}\big|$. So 1 is the
#   run's first choice, and ties count in the logged item's favour (ties aside, a rank $\le 10$ is
#   a hit for HR@10).
# - **`P(negative)`, `P(click)`, `P(purchase)`** (MCRL only): the reward model's class probabilities
#   for the logged pair, $\mathrm{softmax}\, R(h_t, a_t)$. They sum to 1.
#
# `render` computes all of it for the selected session, with the chart and the top-$k$ grid; the
# panel in section 4 shows the result. Its main columns:

# %%
inspector.render()
columns = ["step", "item", "event", "reward", "mc_return", *(f"{kind} {label}" for kind in ("value", "bias", "rank") for label in runs)]
inspector.table[columns].round(3)

# %% [markdown]
# **What this shows.** One row per step of the selected session (the title of the chart below
# names it). Read `mc_return` down the column: it jumps at a purchase and decays towards the
# session's end, where fewer rewards lie ahead. Put each run's `value` beside it. SQN's value
# changes with the item. MCRL's $V(s_t)$ can only follow the history, so it cannot rise on
# the step of a purchase it did not foresee, and such a step usually shows a large negative
# bias for both runs. `rank` says whether each policy had the logged item near the top.
#
# ## 4 · The panel

# %%
inspector

# %% [markdown]
# **What this shows.** From the top:
#
# - **Controls.** `session` (dropdown) and `n-th session` (slider, 1-based) pick the session;
#   `has purchase` keeps only sessions with a purchase; `policy` and `top-k` choose whose
#   recommendations the grid shows, and how many; `next session` steps on.
# - **Status line.** The session and its position in the (filtered) list. A callback that fails
#   writes its traceback here.
# - **How to read this panel.** A collapsible glossary of the columns.
# - **The chart.** Row 1: the MC return (black; stars mark purchases) and each run's value per
#   step. Row 2: the bias per run, bars side by side (0 = exact). Row 3 (when a run has a reward
#   model): MCRL's $P(\cdot)$ stacked to 1 per step: grey negative, blue click, red purchase.
#   Hover for the numbers.
# - **The table.** Every column of section 3, all runs, three decimals. **Pink rows are
#   purchases.**
# - **The top-$k$ grid.** One row per step, one column per rank (1 = first). The chosen policy's
#   $k$ best items, and the logged item **[in brackets]**, highlighted yellow, where it made the
#   top $k$. A row without brackets is a miss at $k$.
#
# Things to look for: a purchase step where `P(purchase)` stays low (the reward model did not see
# it coming); steps where the two runs' biases have opposite signs (they estimate different
# policies); a logged item that sits at rank 1 while the value is far from the return (ranking
# and valuing are separate heads). Without a running kernel (the site, an executed copy opened
# later) the panel is a static snapshot of the last rendered session: the glossary, the table and
# the grid, with no chart.
#
# ## 5 · Driving the panel from code
#
# The controls call the same code as `render`. Ticking "has purchase" from code filters the
# session list and re-renders:

# %%
inspector.has_purchase.value = True
inspector.status_text(), inspector.figure.layout.title.text

# %% [markdown]
# **What this shows.** The status line (the session shown, its position among the sessions with a
# purchase, and the split) and the chart's title (the session, its number of steps and purchases).
# If the session shown before had a purchase it stays selected; otherwise the first session
# with one is shown.
#
# ## Summary
#
# - The inspector lays one session out step by step: the logged items and rewards, the return
#   earned from each step, each run's prediction and its gap to that return, the rank of the
#   logged item, and MCRL's reward-model probabilities.
# - "value" is $Q(s_t, a_t)$ for SQN and $V(s_t)$ for MCRL. They estimate different policies'
#   values (notebook 05), and only $V$ is like for like with the logged return.
# - One session's bias is a single noisy sample: use the panel to find patterns and examples,
#   and notebook 05's averages to measure them.
#
# ## Exercises
#
# 1. Add SA2C to the panel (the same run notebook 03 trained):
#    `sa2c = study.train({"SA2C": ("sa2c", {"switch_step": STEPS // 2})})`, then
#    `Inspector.from_runs({"SQN": runs["SQN"][0], "SA2C": sa2c["SA2C"][0], "MCRL": runs["MCRL"][0]}, split=SPLIT, k=TOP_K, device=DEVICE)`.
#    Where do SA2C's values sit against SQN's?
# 2. After ticking "has purchase", list the purchase steps and their ranks:
#    `inspector.table.loc[inspector.table["event"] == "purchase", ["step", "item", "rank SQN", "rank MCRL", "P(purchase) MCRL"]]`.
#    Walk through a few sessions with the "next session" button (or `inspector.next_button.click()`): how often is the
#    purchased item in either policy's top 10?
# 3. Set `SPLIT = "val"`: the sessions checkpoint selection looked at. Do the values look any
#    better there than on test?
# 4. Take a session notebook 05 flagged (e.g. from `values.nsmallest(5, "bias_true")`), set
#    `SESSION` to it and rerun: what happened at that step?

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
