"""The per-session value inspector: what one or more trained runs think of one held-out session.

All logic is in pure functions, tested in plain pytest:

- :func:`session_ids` — the sessions of a split, optionally only those with a purchase;
- :func:`session_table` — per step: the recent items, the logged item, event, reward,
  the discounted Monte-Carlo return, each run's predicted value and bias (prediction −
  return), the rank its policy gave the logged item and, for MCRL, the reward model's
  class probabilities;
- :func:`top_k` / :func:`top_k_grid` — a policy's top-k per step, the logged item marked;
- :func:`session_figure` — the plotly chart of the table;
- :func:`figure_output` — that chart as the notebook output the panel's chart slot holds.

:class:`Inspector` is only the ipywidgets wiring around them: a session dropdown and a
slider over the (filterable) session list, a "has purchase" checkbox, top-k and
policy pickers, a "next" button. ipywidgets swallows exceptions raised in callbacks, so
a notebook calls :meth:`Inspector.render` once directly — a broken inspector then
fails a headless run — and the panel shows a callback's traceback in its status line.
"""

from __future__ import annotations

import contextlib
import html
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from ..algos import Algo
from ..data import PreparedData
from ..diagnostics import mc_returns, predicted_values
from ..errors import ConfigError, DataError
from .plots import COLORS, labels_of, session_values

PROBS = ("P(negative)", "P(click)", "P(purchase)")


# --- pure functions ----------------------------------------------------------------------
def load_runs(runs: Mapping[str, str | Path], device: str = "cpu") -> tuple[dict[str, Algo], PreparedData]:
    """Load labelled run folders; they must share one prepared dataset."""
    from ..runs import load_run

    algos, data = {}, None
    for label, folder in runs.items():
        _, algo, run_data = load_run(folder, device)
        if data is not None and run_data.fingerprint != data.fingerprint:  # the same events, wherever they lie
            raise ConfigError(str(folder), f"was trained on {run_data.root}, not on {data.root}", "inspect runs of one dataset together")
        algos[label], data = algo, data or run_data
    if data is None:
        raise ConfigError("Inspector", "was given no runs", "pass {label: run folder}")
    return algos, data


def session_ids(data: PreparedData, split: str = "test", has_purchase: bool = False) -> list[int]:
    """The sessions of ``split`` in order; with ``has_purchase`` only those with at least one purchase."""
    ev = data.split_events(split)
    buys = ev.groupby("session", sort=True)["is_buy"].sum()
    return [int(s) for s in (buys.index[buys > 0] if has_purchase else buys.index)]


def _rows(data: PreparedData, session: int, split: str):
    mask = data.split_events(split)["session"].to_numpy() == session
    if not mask.any():
        raise DataError(f"session {session}", f"is not in the {split} split", f"pick one of session_ids(data, {split!r})")
    return data.replay(split).subset(torch.from_numpy(mask))


def _device(algo: Algo) -> torch.device:
    return next(algo.parameters(), torch.empty(0)).device


@torch.inference_mode()
def _scores(algo: Algo, rows) -> torch.Tensor:
    was = algo.training
    algo.eval()
    try:
        dev = _device(algo)
        return algo.scores(rows.state.to(dev, torch.long), rows.len_state.to(dev)).float().cpu()
    finally:
        algo.train(was)


def top_k(algo: Algo, data: PreparedData, session: int, split: str = "test", k: int = 5) -> pd.DataFrame:
    """The policy's ``k`` best items at every step: ``step, rank (1 = best), item, score, logged``."""
    rows = _rows(data, session, split)
    scores = _scores(algo, rows)
    best = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    n, kk = best.indices.shape
    items = best.indices.numpy()
    return pd.DataFrame(
        {
            "step": np.repeat(rows.step.numpy(), kk),
            "rank": np.tile(np.arange(1, kk + 1), n),
            "item": items.reshape(-1),
            "score": best.values.numpy().reshape(-1),
            "logged": (items == rows.action.numpy()[:, None]).reshape(-1),
        }
    )


def top_k_grid(topk: pd.DataFrame) -> pd.DataFrame:
    """``top_k`` as a grid: one row per step, one column per rank; the logged item shown as ``[item]``."""
    cells = topk.assign(cell=np.where(topk["logged"], "[" + topk["item"].astype(str) + "]", topk["item"].astype(str)))
    return cells.pivot(index="step", columns="rank", values="cell")


def session_table(algos: Mapping[str, Algo], data: PreparedData, session: int, split: str = "test") -> pd.DataFrame:
    """One row per step of ``session``: items, event, reward, MC return, and per run value / bias / rank.

    The Monte-Carlo return uses the first run's γ and rewards. ``rank <label>`` is the
    1-based position the run's policy gave the logged item among all items; ``P(…)
    <label>`` are MCRL's reward-model probabilities of the logged pair.
    """
    if not algos:
        raise ConfigError("session_table", "needs at least one run", "pass {label: algorithm}")
    rows = _rows(data, session, split)
    cfg = next(iter(algos.values())).config
    pad = rows.pad
    recent = [" ".join(str(i) for i in st if i != pad) for st in rows.state.tolist()]
    table = pd.DataFrame(
        {
            "step": rows.step.numpy(),
            "history (last items)": [r or "—" for r in recent],
            "item": rows.action.numpy().astype(int),
            "event": np.where(rows.is_buy.numpy(), "purchase", "click"),
            "reward": rows.reward(cfg.reward_click, cfg.reward_buy).numpy().astype(float),
            "mc_return": mc_returns(rows, cfg.gamma, cfg.reward_click, cfg.reward_buy),
        }
    )
    for label, algo in algos.items():
        if algo.value_based:
            value, _ = predicted_values(algo, rows, device=_device(algo))
            table[f"value {label}"] = value
            table[f"bias {label}"] = value - table["mc_return"]
        scores = _scores(algo, rows)
        logged = scores.gather(1, rows.action.long()[:, None])
        table[f"rank {label}"] = (scores > logged).sum(1).numpy() + 1
        if hasattr(algo, "reward_probs"):
            with torch.inference_mode():
                dev = _device(algo)
                probs = algo.reward_probs(rows.state.to(dev, torch.long), rows.len_state.to(dev), rows.action.to(dev, torch.long))
            for j, name in enumerate(PROBS):
                table[f"{name} {label}"] = probs[:, j].float().cpu().numpy()
    return table


def figure_output(fig: go.Figure) -> dict:
    """A notebook ``display_data`` output holding ``fig`` as plotly JSON (what ``display(fig)`` emits)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig)
    title = fig.layout.title.text or "plotly figure"
    return {"output_type": "display_data", "data": {**bundle, "text/plain": f"<Figure: {title}>"}, "metadata": {}}


def session_figure(table: pd.DataFrame, session: int) -> go.Figure:
    """Values vs the MC return per step, the bias per run, and MCRL's reward-model probabilities.

    The bias bars of several runs stand side by side (``barmode="group"``, one offset group per
    run): stacked, a bar's height would be the sum of the runs' biases and one run's bar could hide
    another's. The reward model's three class probabilities sum to 1 and are stacked by hand
    (each bar's ``base`` is the sum below it) in their own offset group, so the layout's bar mode
    stays ``group`` for the whole figure.
    """
    value_labels, prob_labels = labels_of(table, "value"), labels_of(table, "P(click)")
    n_rows = 2 + bool(prob_labels)
    titles = ["predicted value and Monte-Carlo return per step", "bias = predicted value − return (0: exact)"]
    if prob_labels:
        titles.append(f"reward model of {prob_labels[0]}: P(class | state, logged item)")
    fig = make_subplots(rows=n_rows, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=titles)
    x = table["step"]
    buys = table["event"] == "purchase"
    hover = [f"item {i} ({e})" for i, e in zip(table["item"], table["event"])]
    fig.add_trace(go.Scatter(x=x, y=table["mc_return"], mode="lines+markers", name="MC return", line={"color": "black"},
                             text=hover, hovertemplate="step %{x}: %{text}<br>return %{y:.3f}"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x[buys], y=table.loc[buys, "mc_return"], mode="markers", name="purchase",
                             marker={"symbol": "star", "size": 13, "color": COLORS[3]}), row=1, col=1)
    for i, label in enumerate(value_labels):
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(x=x, y=table[f"value {label}"], mode="lines+markers", name=f"value {label}",
                                 line={"color": color}, legendgroup=label), row=1, col=1)
        fig.add_trace(go.Bar(x=x, y=table[f"bias {label}"], name=f"bias {label}", marker_color=color,
                             offsetgroup=f"bias {label}", legendgroup=label, showlegend=False,
                             hovertemplate=f"{html.escape(label)}, step %{{x}}: bias %{{y:.3f}}<extra></extra>"), row=2, col=1)
    if prob_labels:
        below = np.zeros(len(table))
        for name, color in zip(PROBS, ("#8C8C8C", COLORS[0], COLORS[3])):
            p = table[f"{name} {prob_labels[0]}"].to_numpy(dtype=float)
            fig.add_trace(go.Bar(x=x, y=p, base=below.copy(), name=name, marker_color=color, offsetgroup="probabilities",
                                 hovertemplate=f"{name}, step %{{x}}: %{{y:.3f}}<extra></extra>"), row=3, col=1)
            below += p
        fig.update_yaxes(title_text="probability", range=[0, 1], row=3, col=1)
    n_buys = int(buys.sum())
    fig.update_layout(
        title=f"session {session}: {len(table)} steps, {n_buys} purchase{'s' if n_buys != 1 else ''}",
        height=260 + 200 * n_rows, template="plotly_white", margin={"t": 90}, barmode="group",
    )
    fig.update_yaxes(title_text="discounted return", row=1, col=1)
    fig.update_yaxes(title_text="value − return", row=2, col=1)
    fig.update_xaxes(title_text="step of the session", row=n_rows, col=1, dtick=1)
    return fig


#: what the panel's columns and marks mean (shown on the panel, under the controls)
GLOSSARY = (
    "<details><summary><b>How to read this panel</b></summary><ul>"
    "<li><b>value</b>: what the run predicts for the step: Q(s, a<sub>t</sub>) at the logged item for "
    "SQN, SNQN, SA2C, CQL and IQL; V(s), the state's value, for MCRL.</li>"
    "<li><b>mc_return</b>: the discounted return actually logged from that step on, "
    "G<sub>t</sub> = Σ<sub>k</sub> γ<sup>k</sup> r<sub>t+k</sub> (0.2 per click, 1.0 per purchase by default).</li>"
    "<li><b>bias</b> = value − mc_return: above 0 the run overestimates, below 0 it underestimates.</li>"
    "<li><b>rank</b>: the logged item's position among all items under the run's policy (1 = its first choice).</li>"
    "<li><b>P(negative / click / purchase)</b>: MCRL's reward model, the class probabilities of the logged (state, item) pair.</li>"
    "<li>Pink rows are purchases; in the top-k grid the logged item is shown [in brackets].</li>"
    "</ul></details>"
)
#: long sessions scroll inside the panel instead of making it thousands of pixels tall
SCROLL = "<div style='max-height:420px;overflow:auto'>{}</div>"


def table_html(table: pd.DataFrame) -> str:
    """A session table as HTML, purchases highlighted."""
    styled = table.style.format(precision=3).hide(axis="index")
    styled = styled.apply(lambda r: ["background-color: #fde2e2" if r["event"] == "purchase" else "" for _ in r], axis=1)
    return styled.to_html()


def grid_html(grid: pd.DataFrame, label: str) -> str:
    """A top-k grid as HTML; the logged item ``[i]`` is highlighted."""
    body = grid.to_html(escape=True)
    body = body.replace("<td>[", "<td style='background:#ffe58f;font-weight:bold'>[")
    return f"<b>top-{grid.shape[1]} of {html.escape(label)}'s policy</b> (logged item in [brackets])" + body


# --- the widget --------------------------------------------------------------------------
class Inspector:
    """An ipywidgets panel over :func:`session_table` and :func:`session_figure`.

    >>> inspector = Inspector.from_runs({"SQN": sqn_dir, "MCRL": mcrl_dir})
    >>> inspector.render()   # once directly: a broken inspector fails a headless run
    >>> inspector            # the panel
    """

    def __init__(self, algos: Mapping[str, Algo], data: PreparedData, split: str = "test", k: int = 5, session: int | None = None):
        import ipywidgets as widgets

        self.algos, self.data, self.split = dict(algos), data, split
        if not self.algos:
            raise ConfigError("Inspector", "was given no runs", "pass {label: algorithm} or use Inspector.from_runs")
        ids = session_ids(data, split)
        if not ids:
            raise DataError(f"{data.root} ({split} split)", "has no sessions", "prepare more sessions")
        self.error: BaseException | None = None
        self.table: pd.DataFrame | None = None
        self.figure: go.Figure | None = None
        self.grid: pd.DataFrame | None = None
        self._syncing = False

        self.has_purchase = widgets.Checkbox(value=False, description="has purchase")
        self.session = widgets.Dropdown(options=ids, value=session if session in ids else ids[0], description="session")
        # 1-based like the status line ("session 123 (2 of 25 …)")
        self.position = widgets.IntSlider(value=ids.index(self.session.value) + 1, min=1, max=len(ids),
                                          description="n-th session", continuous_update=False,
                                          style={"description_width": "initial"})
        self.k = widgets.IntSlider(value=k, min=1, max=20, description="top-k", continuous_update=False)
        self.policy = widgets.Dropdown(options=list(self.algos), description="policy")
        self.next_button = widgets.Button(description="next session", icon="forward")
        self.status = widgets.HTML()
        self.glossary = widgets.HTML(GLOSSARY)
        self.chart = widgets.Output()
        self.values = widgets.HTML()
        self.topk = widgets.HTML()

        self.has_purchase.observe(self._on_filter, names="value")
        self.session.observe(self._on_session, names="value")
        self.position.observe(self._on_position, names="value")
        self.k.observe(self._on_view, names="value")
        self.policy.observe(self._on_view, names="value")
        self.next_button.on_click(self._on_next)
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.session, self.position, self.has_purchase]),
                widgets.HBox([self.policy, self.k, self.next_button]),
                self.status, self.glossary, self.chart, self.values, self.topk,
            ]
        )

    @classmethod
    def from_runs(cls, runs: Mapping[str, str | Path], split: str = "test", k: int = 5, device: str = "cpu", session: int | None = None) -> Inspector:
        algos, data = load_runs(runs, device)
        return cls(algos, data, split=split, k=k, session=session)

    # --- rendering ---------------------------------------------------------------------
    def render(self) -> go.Figure:
        """Recompute everything for the selected session and show it; returns the figure."""
        session = int(self.session.value)
        self.table = session_table(self.algos, self.data, session, self.split)
        self.figure = session_figure(self.table, session)
        label = self.policy.value
        self.grid = top_k_grid(top_k(self.algos[label], self.data, session, self.split, self.k.value))
        self.values.value = SCROLL.format(table_html(self.table))
        self.topk.value = SCROLL.format(grid_html(self.grid, label))
        self.status.value = self.status_text()
        self._show(self.figure)
        self.error = None
        return self.figure

    def _show(self, fig: go.Figure) -> None:
        """Put the figure in the chart slot by setting the Output widget's outputs.

        Not ``with self.chart: clear_output(wait=True); display(fig)``: that routes the
        figure through the kernel's output capture, and under papermill/nbclient a cell
        doing it intermittently waited out its whole timeout (issue #5). Setting the
        ``outputs`` trait is one plain widget-state message, the same in JupyterLab, under
        papermill and in plain Python (where no frontend listens).
        """
        self.chart.outputs = (figure_output(fig),)

    @contextlib.contextmanager
    def _guard(self):
        """Show a callback's traceback in the panel (ipywidgets would swallow it), then re-raise."""
        try:
            yield
        except Exception as err:
            self.error = err
            self.status.value = "<pre style='color:#b00'>" + html.escape(traceback.format_exc()) + "</pre>"
            raise

    # --- callbacks ---------------------------------------------------------------------
    def _on_session(self, change) -> None:
        if self._syncing:
            return
        with self._guard():
            self._syncing = True
            try:
                self.position.value = list(self.session.options).index(change["new"]) + 1
            finally:
                self._syncing = False
            self.render()

    def _on_position(self, change) -> None:
        if self._syncing:
            return
        with self._guard():
            self.session.value = self.session.options[change["new"] - 1]  # → _on_session renders

    def _on_filter(self, change) -> None:
        with self._guard():
            ids = session_ids(self.data, self.split, has_purchase=bool(change["new"]))
            if not ids:
                self.status.value = "no session of this split has a purchase"
                return
            current = self.session.value
            self._syncing = True
            try:
                self.session.options = ids
                self.session.value = current if current in ids else ids[0]
                self.position.max = len(ids)
                self.position.value = ids.index(self.session.value) + 1
            finally:
                self._syncing = False
            self.render()

    def _on_view(self, change) -> None:
        with self._guard():
            self.render()

    def _on_next(self, button=None) -> None:
        with self._guard():
            ids: Sequence[int] = self.session.options
            self.session.value = ids[(list(ids).index(self.session.value) + 1) % len(ids)]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """The live panel, plus a static snapshot for wherever no widget state is at hand.

        A notebook executed headlessly and opened later (or rendered to HTML by ``make site``) has no
        kernel behind the panel: JupyterLab and nbconvert then show the richest representation they
        can render instead of the widget, which is this snapshot of the last rendered session (the
        table and the top-k grid) rather than a bare ``VBox(...)``.
        """
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.snapshot_html()
        bundle["text/plain"] = f"<Inspector: {self.status_text()}; run the notebook for the live panel>"
        return bundle

    def status_text(self) -> str:
        ids = list(self.session.options)
        session = int(self.session.value)
        return f"session {session} ({ids.index(session) + 1} of {len(ids)} in the {self.split} split)"

    def snapshot_html(self) -> str:
        """The last rendered session as static HTML (rendered now if nothing was)."""
        if self.table is None:
            self.render()
        import base64

        png = base64.b64encode(session_values(self.table, self.figure.layout.title.text or "")._repr_png_()).decode()
        return ("<div><p><i>A static snapshot of the inspector (run the notebook for the live panel):</i> "
                f"{html.escape(self.status_text())}</p>{GLOSSARY}"
                f"<img alt='values, returns and bias per step' src='data:image/png;base64,{png}'/>"
                f"{SCROLL.format(table_html(self.table))}{SCROLL.format(grid_html(self.grid, self.policy.value))}</div>")
