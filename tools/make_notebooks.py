"""Write notebooks/NN_*.ipynb from the cell texts below (outputs empty, kernel python3).

The committed .ipynb files are the source of truth for readers; this script keeps the
seven consistent (the same training parameters, the same imports) and lives outside
``notebooks/`` so that nbmake does not collect it. Run ``.venv/bin/python
tools/make_notebooks.py`` after editing a cell here, or edit a notebook in JupyterLab
and strip its outputs before committing (``tests/test_notebooks_clean.py`` checks).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

TRAINING_PARAMETERS = '''DATASET = "simulator"  # simulator | retailrocket-sample | retailrocket | yoochoose | events
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
OUT_DIR = None  # runs and metrics (None: build/notebooks of the project)'''

STUDY = '''data = experiments.load_data(DATASET, scale=SCALE, path=DATA_PATH)
study = experiments.Study(
    data, backbone=BACKBONE, steps=STEPS, batch_size=BATCH_SIZE, lr=LR, eval_every=EVAL_EVERY,
    seeds=SEEDS, device=DEVICE, threads=THREADS, out=OUT_DIR, progress=SHOW_PROGRESS,
)
data.stats_frame()'''

RUNS_NOTE = (
    "Runs are stored under `OUT_DIR/runs/` in folders named by their configuration: a run "
    "another notebook already trained with the same settings is reused, not trained again."
)


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def params(text: str):
    return code(text, tags=["parameters"])


def training_setup(imports: str, heading: str) -> list:
    """The opening every training notebook shares: imports, parameters, the study, a heading."""
    return [code(imports), params(TRAINING_PARAMETERS), code(STUDY), md(f"## {heading}\n\n{RUNS_NOTE}")]


NOTEBOOKS: dict[str, list] = {}

# --- 01 ------------------------------------------------------------------------------------
NOTEBOOKS["01_mdp_framing"] = [
    md("""
# 01 · Sessions as a Markov decision process

**What this teaches.** How the SQN lineage — and MCRL after it — turns a logged shopping
session into reinforcement-learning transitions `(s_t, a_t, r_t, s_{t+1}, done)`:

- **state** `s_t`: the last 10 items the user interacted with before event `t`
  (right-padded with a pad id, so the very first event sees a state of pads);
- **action** `a_t`: the item of event `t` — what a recommender should have proposed;
- **reward** `r_t`: 0.2 for a click, 1.0 for a purchase (derived from the event type);
- **next state** `s_{t+1}`: the history including `a_t`; **done**: only the session's last event;
- **discount** `γ = 0.5`: the return `G_t = r_t + γ r_{t+1} + γ² r_{t+2} + …` values a
  purchase two steps ahead at a quarter of an immediate one.

The examples are real RetailRocket sessions when the sample in `../shared` is available
(`DATASET = "auto"`), simulated shoppers otherwise. Nothing is trained here.
"""),
    code("""
from mcrl_kit import analysis, experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots
"""),
    params('''
DATASET = "auto"  # auto: the RetailRocket sample when ../shared has it, else the simulator
DATA_PATH = None  # your RetailRocket events.csv (with DATASET = "retailrocket")
SCALE = "tiny"  # simulator size when the simulator is used
SEED = 0  # seeds the simulator and the 80/10/10 split
EXAMPLES = 2  # example sessions to lay out
GAMMA = 0.5  # the discount of the reference
OUT_DIR = None  # metrics (None: build/notebooks of the project)
'''),
    code("""
data = experiments.load_data(DATASET, scale=SCALE, seed=SEED, path=DATA_PATH)
data.stats_frame()
"""),
    md("""
## One session, step by step

We pick a few short training sessions — the first with a purchase — and lay each out as
the transitions the replay buffer holds. States list only the real items here; in the
buffer they are padded to length 10 with the pad id (= the number of items).
"""),
    code("""
sessions = analysis.example_sessions(data, n=EXAMPLES)
first = analysis.mdp_table(data, sessions[0], gamma=GAMMA)
first
"""),
    md("""
Each row is one transition. Read across: the state is what the user did before, the
action is what they did now, the reward says whether it was a purchase, and the next
state is the state of the following row. The return `G_t` sums the rewards from this
step to the end, discounted by `γ` per step — it is what a value function should
predict, and what the overestimation notebook (05) compares predictions with.
"""),
    code("""
fig = plots.session_timeline(first, title=f"session {sessions[0]} as an MDP (γ = {GAMMA})")
plots.save_figure(fig, "01_session_mdp")
fig
"""),
    md("""
The same session to explore: hover a bar for the state and action of that step.
"""),
    code("""
interactive.session_mdp(first, title=f"session {sessions[0]} (γ = {GAMMA})")
"""),
    code("""
analysis.mdp_table(data, sessions[-1], gamma=GAMMA)
"""),
    md("""
## γ: how far ahead the return looks

With `γ = 0` the return is the immediate reward; with `γ = 0.9` a purchase at the end of
the session lifts the value of every step before it. The reference uses 0.5.
"""),
    code("""
analysis.returns_by_gamma(data, sessions[0], gammas=(0.0, GAMMA, 0.9))
"""),
    md("""
## The replay buffer

All training transitions as a table: one row per event of every training session. The
pad id fills the states; `len_state` is the number of real items (an empty history
counts as 1). Rewards are not stored — they come from `is_buy` and the algorithm's config.
"""),
    code("""
buffer = data.replay("train")
print(f"{len(buffer):,} transitions, {data.n_items:,} items, pad id = {buffer.pad}")
buffer.to_frame(limit=12)
"""),
    code("""
write_metrics("01_mdp_framing", {
    "dataset": data.stats["dataset"],
    "transitions": len(buffer),
    "examples": sessions,
    "example_returns": first["return G_t"].tolist(),
    "example_rewards": first["reward r_t"].tolist(),
}, globals())
"""),
]

# --- 02 ------------------------------------------------------------------------------------
NOTEBOOKS["02_data"] = [
    md("""
# 02 · Data: sources and the protocol

**What this teaches.** Where sessions come from and how the SQN/SA2C protocol that MCRL
inherits prepares them: sessions, filters, item re-indexing and a seeded 80/10/10 split
of sessions. The kit reads RetailRocket (`events.csv`), Yoochoose (RecSys 2015) and any
event log, and embeds a simulator of shoppers whose logs have learnable structure (no
download needed). We look at the statistics table (beside the published figures of the
real datasets), session lengths, item popularity and the split.
"""),
    code("""
from mcrl_kit import analysis, experiments
from mcrl_kit.data.simulator import world_summary
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots
"""),
    params('''
DATASET = "simulator"  # simulator | retailrocket-sample | retailrocket | yoochoose | events
DATA_PATH = None  # your input file(s) for retailrocket / yoochoose / events
SCALE = "tiny"  # simulator size: tiny | small | retailrocket | yoochoose
SEED = 0
WITH_SAMPLE = True  # add the RetailRocket sample's row when ../shared has it
OUT_DIR = None  # metrics (None: build/notebooks of the project)
'''),
    code("""
data = experiments.load_data(DATASET, scale=SCALE, seed=SEED, path=DATA_PATH)
datasets = [data]
if WITH_SAMPLE and experiments.sample_available():
    datasets.append(experiments.load_data("retailrocket-sample", seed=SEED))
analysis.stats_table(datasets)
"""),
    md("""
The protocol (RetailRocket): a session is a visitor; transaction rows are dropped;
visitors with ≥ 3 events are kept, then items with ≥ 3 interactions; a view is a click
and an add-to-cart a purchase. The simulator's `retailrocket` scale matches the published
size; `tiny` is for tests and this CI profile. On the simulator, the world behind the data:
"""),
    code("""
world_summary(data.config.scale, data.config.seed) if data.config.source == "simulator" else data.stats.get("source_info")
"""),
    md("""
## Session lengths

Most sessions are short; a few are very long (a heavy tail, as in the real logs). Every
event of a held-out session is one evaluation point, so long sessions weigh more.
"""),
    code("""
lengths = analysis.session_lengths(data)
fig = plots.length_histogram(lengths)
plots.save_figure(fig, "02_session_lengths")
fig
"""),
    code("""
interactive.session_lengths(lengths)
"""),
    md("""
## Item popularity

A few items get most of the events. Popularity is the baseline any sequential model must
beat; the simulator's popularity law was fitted to the real RetailRocket item counts.
"""),
    code("""
popularity = analysis.item_popularity(data)
fig = plots.popularity_plot(popularity)
plots.save_figure(fig, "02_popularity")
fig
"""),
    md("""
## The split

Session ids are shuffled with the seed and cut 80 / 10 / 10 into train, validation (for
checkpoint selection) and test (reported). Every event of a validation/test session is
scored against all items, clicks and purchases apart.
"""),
    code("""
split = analysis.split_table(data)
split
"""),
    code("""
write_metrics("02_data", {
    "stats": data.stats,
    "split": split,
    "mean_length": float(lengths.mean()),
    "top_item_share": float(popularity.iloc[0] / popularity.sum()),
    "datasets": [d.stats["dataset"] for d in datasets],
}, globals())
"""),
]

# --- 03 ------------------------------------------------------------------------------------
NOTEBOOKS["03_baselines"] = [
    md("""
# 03 · Baselines: supervised, SQN and SA2C

**What this teaches.** The three reference points MCRL is compared with, trained on one
backbone under one budget:

- **supervised** — cross-entropy over all items: the backbone alone (e.g. GRU4Rec);
- **SQN** (Xin et al., SIGIR 2020) — the same cross-entropy head plus a double-Q head
  over all items trained by TD learning on the rewards; ranking uses the CE head;
- **SA2C** (Xin et al., WSDM 2022) — SQN with 10 sampled negative items per transition
  (reward 0), then the CE weighted by the critic's clipped advantage at a lower learning
  rate. The reference switches after 15,000 steps; here it switches halfway through.

We plot learning curves (validation NDCG@10 and the CE loss) and build the results table:
HR and NDCG @5/10/20, clicks and purchases apart, mean ± std over seeds. The CI profile
trains for seconds, so its numbers are for checking the pipeline, not for conclusions —
rerun with the `full` profile (README) for real ones.
"""),
    *training_setup("""
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots
""", "Train"),
    code("""
runs = study.train(experiments.baselines(STEPS))
runs
"""),
    md("""
## Learning curves

Validation metrics at each evaluation (the best step's weights are kept) and the CE loss
every logging interval. With several seeds the band spans their minimum and maximum.
"""),
    code("""
curves = study.curves(runs)
fig = plots.learning_curves(curves, ["val/purchase/NDCG@10", "val/click/NDCG@10", "loss/ce"])
plots.save_figure(fig, "03_learning_curves")
fig
"""),
    code("""
interactive.learning_curves(curves, "val/purchase/NDCG@10")
"""),
    md("""
## Results on the test split

`params` counts trainable parameters: SQN and SA2C hold two whole networks with two
item-sized heads each, as the reference does.
"""),
    code("""
table = study.compare(runs)
print(experiments.format_compare(table))
"""),
    code("""
write_metrics("03_baselines", {
    "results": experiments.metric_summary(table),
    "params": dict(zip(table["label"], table["params"])),
    "runs": {label: [str(f) for f in folders] for label, folders in runs.items()},
}, globals())
"""),
]

# --- 04 ------------------------------------------------------------------------------------
NOTEBOOKS["04_mcrl"] = [
    md("""
# 04 · MCRL, term by term

**What this teaches.** Model-enhanced contrastive RL (Li et al., WSDM 2024) on the same
backbone and budget as the baselines. One encoder `h = f(s)` feeds

- a **policy** head `π(a|h)` over all items — the recommender, trained by a
  cross-entropy weighted with the value target `r + γ V̄(s')` (**policy**);
- a scalar **value** head `V(h)`, learned by TD (**value**) with a **conservative**
  penalty: the model-based value of the logged action must beat those of sampled
  negative actions in a log-sum-exp (CQL over sampled actions);
- a **reward model** `R(h, a)` classifying a state–action pair as negative / click /
  purchase (**reward**), negatives being items the user did not pick;
- a **transition model** `T(h, a)` predicting the next state's embedding, contrastively:
  the logged item must move the user to the next state, a negative must leave them where
  they were (**transition**, InfoNCE).

We follow each loss term, check what the reward and transition models learned, compare
parameter counts (one item head instead of SQN's four) and put MCRL in the results table.
Which parts are the paper's and which the kit's reconstruction: `shared/docs/METHOD.md`.
"""),
    *training_setup("""
from mcrl_kit import analysis, experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots
""", "Train MCRL (and the baselines, for the table)"),
    code("""
runs = study.train({**experiments.baselines(STEPS), "MCRL": "mcrl"})
curves = study.curves(runs)
"""),
    md("""
## Each loss term

`policy` is the value-weighted CE that ranks items; `ce` is the plain CE (logged for
comparison with the baselines); `v_mean` is the mean predicted value of the batch.
"""),
    code("""
fig = plots.loss_terms(curves, ["policy", "ce", "value", "conservative", "reward", "transition", "v_mean"], label="MCRL")
plots.save_figure(fig, "04_mcrl_loss_terms")
fig
"""),
    md("""
## What the reward model learned

On every test event: the logged pair (true class click or purchase) and K sampled
negative pairs (true class negative), classified by the reward model. Colours are the
share of each true class; purchases are rare, so their row is the hard one.
"""),
    code("""
_, mcrl, _ = study.load(runs["MCRL"][0])
confusion = analysis.reward_confusion(mcrl, data)
fig = plots.confusion_matrix(confusion)
plots.save_figure(fig, "04_reward_confusion")
fig
"""),
    md("""
## What the transition model learned

Cosine similarity between the predicted next-state embedding `T(h_t, a)` and the target
encoder's embedding of the next state (where the user went) or of the current state
(where a rejected item should leave them). Trained well, logged items score higher on
"next state" and negatives higher on "current state".
"""),
    code("""
similarity = analysis.transition_similarity(mcrl, data)
fig = plots.similarity_histograms(similarity)
plots.save_figure(fig, "04_transition_similarity")
fig
"""),
    code("""
cosines = similarity.groupby(["pair", "target"])["cosine"].mean().unstack()
cosines
"""),
    md("""
## MCRL against the baselines

Same backbone, same budget, same seeds. `params` shows the paper's point about size: one
encoder, one item-sized policy head and small MLPs, against SQN's two networks × two heads.
"""),
    code("""
table = study.compare(runs)
print(experiments.format_compare(table))
"""),
    code("""
interactive.learning_curves(curves, "val/purchase/NDCG@10")
"""),
    code("""
write_metrics("04_mcrl", {
    "results": experiments.metric_summary(table),
    "params": dict(zip(table["label"], table["params"])),
    "reward_confusion": confusion.to_dict(),
    "transition_cosines": {f"{p} → {t}": v for (p, t), v in cosines.stack().items()},
    "final_losses": curves[curves["label"] == "MCRL"].filter(like="loss/").dropna(how="all").iloc[-1].dropna().to_dict(),
}, globals())
"""),
]

# --- 05 ------------------------------------------------------------------------------------
NOTEBOOKS["05_overestimation"] = [
    md("""
# 05 · Overestimation: predicted values against real returns

**What this teaches.** Offline RL from logs tends to **overestimate** values: the logs
hold no negative feedback, so nothing pulls down the values of actions nobody took, and
bootstrapping spreads the optimism. We measure it on every held-out event:

- the **predicted value** — `Q(s_t, a_t)` of the logged item for SQN and SA2C, `V(s_t)`
  for MCRL;
- the **Monte-Carlo return** `G_t` actually observed in the logged session (one noisy,
  unbiased sample of the true value);
- on the simulator, the **true expected return**, by rolling the simulated users forward
  from the logged state many times;
- the **bias** = prediction − return; above 0 is overestimation.

Four learners: SQN, SA2C, MCRL, and MCRL without its conservative term — the last pair
isolates what conservative value learning does.
"""),
    code("""
from mcrl_kit import analysis, experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots
"""),
    params(TRAINING_PARAMETERS + '''
ROLLOUTS = 16  # simulator rollouts per event for the true return (the diagnose command: 64)'''),
    code(STUDY),
    md(f"""
## Train (or reuse) the four value learners

{RUNS_NOTE}
"""),
    code("""
runs = study.train(experiments.overestimation_variants(STEPS))
values, summary = analysis.diagnose_runs(runs, n_rollouts=ROLLOUTS, device=DEVICE)
summary
"""),
    md("""
## Predicted value against the return

Points above the dashed diagonal are overestimated. The Monte-Carlo return of one
session is noisy (a click or a purchase); the true return (simulator) is its expectation.
"""),
    code("""
fig = plots.bias_scatter(values)
plots.save_figure(fig, "05_value_vs_return")
fig
"""),
    code("""
interactive.value_scatter(values)
"""),
    md("""
## Bias by step in the session

Early steps have long futures, so bootstrapped errors have more room to add up.
"""),
    code("""
fig = plots.bias_by_step(values)
plots.save_figure(fig, "05_bias_by_step")
fig
"""),
    md("""
## Bias distributions

Against the Monte-Carlo return, then (on the simulator) against the true return.
"""),
    code("""
fig = plots.bias_distribution(values)
plots.save_figure(fig, "05_bias_distribution")
fig
"""),
    code("""
fig = plots.bias_distribution(values, "bias_true") if "bias_true" in values else None
if fig is not None:
    plots.save_figure(fig, "05_bias_true_distribution")
fig
"""),
    code("""
write_metrics("05_overestimation", {
    "summary": summary,
    "mean_bias": dict(zip(summary["label"], summary["mean_bias"])),
    "events": int(values.groupby("label").size().iloc[0]),
}, globals())
"""),
]

# --- 06 ------------------------------------------------------------------------------------
NOTEBOOKS["06_ablations"] = [
    md("""
# 06 · Ablations: which part of MCRL matters?

**What this teaches.** How to ask a method's open questions with controlled runs. Each
row switches one MCRL component off — the reward model, the transition model, the
conservative term, the value weight of the policy loss — and two sweeps vary the number
of negative actions `K` and the discount `γ`. Every configuration runs for every seed,
and tables and plots show **mean ± std over seeds**: a difference smaller than the
spread between seeds is not a finding. The CI profile uses two seeds and a tiny budget;
the `full` profile three seeds at real size.
"""),
    code("""
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import interactive, plots
"""),
    params(TRAINING_PARAMETERS.replace("SEEDS = [0]", "SEEDS = [0, 1]") + '''
NEGATIVES = [1, 10]  # values of K to sweep (the default is 10)
GAMMAS = [0.2, 0.5]  # values of γ to sweep (the reference: 0.5)'''),
    code(STUDY),
    md(f"""
## One component off at a time

{RUNS_NOTE}
"""),
    code("""
components = study.compare(study.train(experiments.ablation_variants()))
print(experiments.format_compare(components))
"""),
    code("""
fig = plots.ablation_bars(components, "purchase NDCG@10")
plots.save_figure(fig, "06_ablation_components")
fig
"""),
    code("""
interactive.ablation_bars(components, "click NDCG@10")
"""),
    md("""
## The number of negatives K

More negatives give the reward model, the transition model and the conservative term
more contrast per transition, at more compute per step.
"""),
    code("""
negatives = study.compare(study.train(experiments.sweep_variants("neg", NEGATIVES, "K")))
fig = plots.sweep(negatives, NEGATIVES, "negatives K")
plots.save_figure(fig, "06_ablation_negatives")
fig
"""),
    md("""
## The discount γ

γ sets how far ahead the value — and so the policy's weight — looks.
"""),
    code("""
gammas = study.compare(study.train(experiments.sweep_variants("gamma", GAMMAS, "γ")))
fig = plots.sweep(gammas, GAMMAS, "discount γ")
plots.save_figure(fig, "06_ablation_gamma")
fig
"""),
    code("""
print(experiments.format_compare(gammas))
"""),
    code("""
write_metrics("06_ablations", {
    "components": experiments.metric_summary(components),
    "negatives": experiments.metric_summary(negatives),
    "gammas": experiments.metric_summary(gammas),
}, globals())
"""),
]

# --- 07 ------------------------------------------------------------------------------------
NOTEBOOKS["07_inspector"] = [
    md("""
# 07 · The per-session value inspector

**What this teaches.** To read what trained runs believe, one held-out session at a
time. For the chosen session the panel shows, per step: the items, the event type and
its reward; each run's predicted value against the Monte-Carlo return and the bias
between them; MCRL's reward-model probabilities for the logged item; and each policy's
top-k recommendations with the logged item marked — so you can see *where* a value
function is optimistic and whether the policy saw the purchase coming.

Pick a session from the dropdown or move the slider; tick "has purchase" to keep only
sessions with a purchase; "next session" steps through them.
"""),
    code("""
from mcrl_kit import experiments
from mcrl_kit.notebooks import write_metrics
from mcrl_kit.viz import plots
from mcrl_kit.viz.inspector import Inspector
"""),
    params(TRAINING_PARAMETERS + '''
SPLIT = "test"  # the split whose sessions are inspected
TOP_K = 5  # recommendations shown per step
SESSION = None  # the session shown first (None: the split's first)'''),
    code(STUDY),
    md(f"""
## The runs to inspect

SQN (a Q-value per item) and MCRL (a value per state). {RUNS_NOTE}
"""),
    code("""
runs = study.train({"SQN": "sqn", "MCRL": "mcrl"})
inspector = Inspector.from_runs({label: folders[0] for label, folders in runs.items()}, split=SPLIT, k=TOP_K, device=DEVICE, session=SESSION)
"""),
    md("""
## One session, computed directly

Rendering once outside the widget makes a broken inspector fail a headless run
(ipywidgets would swallow an exception raised inside a callback).
"""),
    code("""
inspector.render()
"""),
    code("""
inspector.table
"""),
    code("""
fig = plots.session_values(inspector.table, title=inspector.figure.layout.title.text)
plots.save_figure(fig, "07_inspector_session")
fig
"""),
    md("""
## The panel
"""),
    code("""
inspector
"""),
    md("""
Callbacks run the same code: for example, keep only sessions with a purchase.
"""),
    code("""
inspector.has_purchase.value = True
print(inspector.figure.layout.title.text)
"""),
    code("""
table = inspector.table
write_metrics("07_inspector", {
    "sessions": len(inspector.session.options),
    "session": int(inspector.session.value),
    "steps": len(table),
    "title": inspector.figure.layout.title.text,
    "mean_bias": {label: float(table[f"bias {label}"].mean()) for label in runs},
    "mean_rank": {label: float(table[f"rank {label}"].mean()) for label in runs},
}, globals())
"""),
]


def build(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    # stable cell ids: diffs of regenerated notebooks show only real changes
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    return nb


def main(argv: list[str]) -> int:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        if argv and not any(name.startswith(a) for a in argv):
            continue
        nb = build(name, cells)
        nbformat.validate(nb)
        nbformat.write(nb, out / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
