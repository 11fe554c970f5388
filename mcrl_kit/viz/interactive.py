"""Interactive figures (plotly ``go.Figure``) for exploring in JupyterLab.

Plain ``go.Figure`` — not ``FigureWidget``, which needs ``anywidget`` — shown through
plotly's MIME renderer, so an executed notebook stores the figure's JSON only. The
static counterparts for ``figures/`` are in :mod:`mcrl_kit.viz.plots`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .plots import COLORS, _colors, describe


def learning_curves(curves: pd.DataFrame, metric: str = "val/purchase/NDCG@10") -> go.Figure:
    """One line per label and seed (hover for the step and value)."""
    fig = go.Figure()
    colors = _colors(list(dict.fromkeys(curves["label"])))
    part = curves.dropna(subset=[metric])
    for (label, seed), run in part.groupby(["label", "seed"], sort=False):
        fig.add_trace(
            go.Scatter(x=run["step"], y=run[metric], mode="lines+markers", name=f"{label} (seed {seed})",
                       line={"color": colors[label]}, legendgroup=label)
        )
    words = describe(metric)
    fig.update_layout(title=f"{words} during training (hover for values)", xaxis_title="step", yaxis_title=words,
                      height=380, template="plotly_white")
    return fig


def session_mdp(table: pd.DataFrame, title: str = "") -> go.Figure:
    """An MDP table (``data.episodes.mdp_table``) as rewards (bars) and the return (line); hover shows s_t, a_t."""
    buy = table["event"] == "purchase"
    hover = [f"state {s}<br>action {a} ({e})" for s, a, e in zip(table["state s_t"], table["action a_t"], table["event"])]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=table["t"], y=table["reward r_t"], name="reward r_t", text=hover,
                         marker_color=np.where(buy, COLORS[3], COLORS[0]), hovertemplate="t=%{x}<br>%{text}<br>r=%{y}"))
    fig.add_trace(go.Scatter(x=table["t"], y=table["return G_t"], mode="lines+markers", name="return G_t",
                             line={"color": "black"}))
    fig.update_layout(title=title, xaxis_title="step t", yaxis_title="reward / return", height=340,
                      template="plotly_white", xaxis_dtick=1)
    return fig


def session_lengths(lengths: pd.Series) -> go.Figure:
    """Histogram of events per session."""
    fig = go.Figure(go.Histogram(x=lengths.to_numpy(), marker_color=COLORS[0]))
    fig.update_layout(title="events per session", xaxis_title="events", yaxis_title="sessions", yaxis_type="log",
                      height=340, template="plotly_white")
    return fig


def value_scatter(values: pd.DataFrame, max_points: int = 2000, seed: int = 0) -> go.Figure:
    """Predicted value vs Monte-Carlo return per label; hover shows session and step."""
    fig = go.Figure()
    rng = np.random.default_rng(seed)
    colors = _colors(list(dict.fromkeys(values["label"])))
    hi = float(max(values["value"].max(), values["mc_return"].max()))
    lo = float(min(values["value"].min(), values["mc_return"].min()))
    for label, part in values.groupby("label", sort=False):
        if len(part) > max_points:
            part = part.iloc[np.sort(rng.choice(len(part), max_points, replace=False))]
        fig.add_trace(
            go.Scattergl(
                x=part["mc_return"], y=part["value"], mode="markers", name=label, marker={"size": 4, "opacity": 0.5, "color": colors[label]},
                customdata=np.stack([part["session"], part["step"]], axis=1),
                hovertemplate="session %{customdata[0]}, step %{customdata[1]}<br>return %{x:.3f}<br>value %{y:.3f}",
            )
        )
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="value = return", line={"dash": "dash", "color": "black"}))
    fig.update_layout(title="predicted value vs Monte-Carlo return", xaxis_title="MC return", yaxis_title="predicted value",
                      height=420, template="plotly_white")
    return fig


def ablation_bars(table: pd.DataFrame, metric: str = "purchase NDCG@10") -> go.Figure:
    """Mean ± std of ``metric`` per variant (a ``Study.compare`` table)."""
    fig = go.Figure(
        go.Bar(x=table[metric], y=table["label"], orientation="h", marker_color=COLORS[0],
               error_x={"type": "data", "array": table[f"{metric} std"]})
    )
    fig.update_layout(title=f"{metric}: mean ± std over seeds", yaxis={"autorange": "reversed"},
                      height=120 + 40 * len(table), template="plotly_white")
    return fig
