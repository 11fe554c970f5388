"""Static figures (matplotlib) for the notebooks and the ``figures/`` folder.

Every function takes a tidy table from the kit (``experiments``, ``data.stats``,
``data.episodes``, ``probes``, ``diagnostics``) and returns a :class:`KitFigure` — a plain matplotlib ``Figure`` made
without pyplot (no global figure list to leak, no backend to pick) that Jupyter shows as
a PNG when it is a cell's last expression. :func:`save_figure` writes one atomically to
``paths.figures_dir()`` (``MCRL_FIGURES`` overrides it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import paths
from ..diagnostics import bias_by
from ..storage import atomic_path

DPI = 110
COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")


class KitFigure(Figure):
    """A matplotlib figure that Jupyter displays as PNG without pyplot."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
        return buf.getvalue()


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6, **kw):
    fig = KitFigure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save_figure(fig: Figure, name: str, folder: str | Path | None = None) -> Path:
    """Write ``fig`` as ``<folder>/<name>.png`` (default ``paths.figures_dir()``) atomically."""
    path = Path(folder or paths.figures_dir()) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
        tmp.chmod(0o644)  # figures are for readers (the temporary file is private)
    return path


def _colors(labels: Sequence[str]) -> dict[str, str]:
    return {label: COLORS[i % len(COLORS)] for i, label in enumerate(labels)}


# --- 01: a session as an MDP -----------------------------------------------------------
def session_timeline(table: pd.DataFrame, title: str = "") -> KitFigure:
    """Rewards per step (bars, purchases highlighted), the return ``G_t`` (line), items annotated."""
    fig, axes = new_figure(width=7.0, height=3.4)
    ax = axes[0, 0]
    t, r = table["t"].to_numpy(), table["reward r_t"].to_numpy()
    buy = (table["event"] == "purchase").to_numpy()
    ax.bar(t, r, color=np.where(buy, COLORS[3], COLORS[0]), alpha=0.8, label="reward r_t (red: purchase)")
    ax.plot(t, table["return G_t"], "o-", color="k", label="return G_t")
    for ti, ri, item in zip(t, r, table["action a_t"]):
        ax.annotate(f"item {item}", (ti, ri), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
    ax.set_xlabel("step t")
    ax.set_ylabel("reward / return")
    ax.set_xticks(t)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return fig


# --- 07: one session in the inspector ------------------------------------------------------
def labels_of(table: pd.DataFrame, prefix: str) -> list[str]:
    """The run labels that have a ``<prefix> <label>`` column in a session table."""
    return [c.removeprefix(prefix + " ") for c in table.columns if c.startswith(prefix + " ")]


def session_values(table: pd.DataFrame, title: str = "") -> KitFigure:
    """An inspector session table: each run's value against the MC return (top), the bias (bottom)."""
    labels = labels_of(table, "value")
    fig, axes = new_figure(nrows=2, width=7.0, height=2.6, sharex=True)
    top, bottom = axes[0, 0], axes[1, 0]
    t = table["step"].to_numpy()
    top.plot(t, table["mc_return"], "o-", color="k", label="MC return")
    buy = (table["event"] == "purchase").to_numpy()
    top.scatter(t[buy], table["mc_return"].to_numpy()[buy], marker="*", s=140, color=COLORS[3], zorder=3, label="purchase")
    width = 0.8 / max(len(labels), 1)
    for i, (label, color) in enumerate(_colors(labels).items()):
        top.plot(t, table[f"value {label}"], "o-", color=color, label=f"value {label}")
        bottom.bar(t + (i - (len(labels) - 1) / 2) * width, table[f"bias {label}"], width, color=color, label=label)
    bottom.axhline(0, color="k", lw=0.8)
    top.set_ylabel("value / return")
    bottom.set_ylabel("bias")
    bottom.set_xlabel("step")
    bottom.set_xticks(t)
    top.set_title(title)
    top.legend(fontsize=8, loc="upper right")
    return fig


# --- 02: the data ------------------------------------------------------------------------
def length_histogram(lengths: pd.Series, title: str = "") -> KitFigure:
    """Histogram of events per session (log counts: real session lengths have a heavy tail)."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    top = int(np.percentile(lengths, 99)) + 1
    ax.hist(lengths.clip(upper=top), bins=np.arange(0.5, top + 1.5), color=COLORS[0])
    ax.set_yscale("log")
    ax.set_xlabel(f"events per session (clipped at the 99th percentile, {top})")
    ax.set_ylabel("sessions")
    ax.set_title(title or f"session lengths (mean {lengths.mean():.2f})")
    return fig


def popularity_plot(popularity: pd.Series, title: str = "") -> KitFigure:
    """Rank–frequency of items on log–log axes, and the cumulative share of events."""
    fig, axes = new_figure(ncols=2)
    counts = popularity.sort_values(ascending=False).to_numpy()
    rank = np.arange(1, len(counts) + 1)
    axes[0, 0].loglog(rank, counts, ".", color=COLORS[0], ms=3)
    axes[0, 0].set_xlabel("item rank")
    axes[0, 0].set_ylabel("events")
    axes[0, 0].set_title(title or "item popularity")
    share = np.cumsum(counts) / counts.sum()
    axes[0, 1].plot(rank / len(rank), share, color=COLORS[1])
    axes[0, 1].set_xlabel("share of items (most popular first)")
    axes[0, 1].set_ylabel("share of events")
    axes[0, 1].grid(alpha=0.3)
    return fig


# --- 03/04: learning ---------------------------------------------------------------------
#: what each logged loss part is, in words (the keys are the algorithms' named loss parts)
LOSS_WORDS = {
    "total": "total loss", "ce": "plain cross-entropy", "policy": "policy loss (weighted cross-entropy)",
    "value": "value loss (TD)", "conservative": "conservative penalty", "anchor": "anchor of the data action",
    "reward": "reward model (cross-entropy)", "transition": "transition model (InfoNCE)",
    "v_mean": "mean predicted V(s)", "q_mean": "mean predicted Q(s, a_t)", "td": "TD loss", "td_neg": "TD loss of negatives",
    "cql": "CQL penalty", "q": "Q loss (TD)",
}


def describe(key: str) -> str:
    """A history column in words: ``val/purchase/NDCG@10`` → ``validation purchase NDCG@10``, ``loss/ce`` →
    ``plain cross-entropy``; an unknown key is returned as it is."""
    parts = key.split("/")
    if parts[0] in ("val", "test") and len(parts) == 3:
        return f"{'validation' if parts[0] == 'val' else 'test'} {parts[1]} {parts[2]}"
    if parts[0] == "loss" and len(parts) == 2:
        return LOSS_WORDS.get(parts[1], f"loss: {parts[1]}")
    return key


def learning_curves(curves: pd.DataFrame, metrics: Sequence[str] = ("val/purchase/NDCG@10", "loss/ce")) -> KitFigure:
    """One panel per history column: the mean over seeds per label, shaded min–max."""
    metrics = [m for m in metrics if m in curves]
    fig, axes = new_figure(ncols=max(1, len(metrics)))
    colors = _colors(list(dict.fromkeys(curves["label"])))
    for ax, metric in zip(axes[0], metrics):
        for label, part in curves.dropna(subset=[metric]).groupby("label", sort=False):
            agg = part.groupby("step")[metric].agg(["mean", "min", "max"])
            ax.plot(agg.index, agg["mean"], "-", marker="." if len(agg) < 12 else None, color=colors[label], label=label)
            if part["seed"].nunique() > 1:
                ax.fill_between(agg.index, agg["min"], agg["max"], color=colors[label], alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel(describe(metric))
        ax.set_title(f"{describe(metric)} during training")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return fig


def loss_terms(curves: pd.DataFrame, terms: Sequence[str], label: str | None = None) -> KitFigure:
    """MCRL's loss, term by term: one small panel per ``loss/<term>`` column."""
    part = curves if label is None else curves[curves["label"] == label]
    cols = [f"loss/{t}" for t in terms if f"loss/{t}" in part]
    n = len(cols)
    fig, axes = new_figure(ncols=min(n, 3), nrows=int(np.ceil(n / 3)), width=3.6, height=2.8)
    flat = axes.ravel()
    for ax, col in zip(flat, cols):
        agg = part.dropna(subset=[col]).groupby("step")[col].mean()
        ax.plot(agg.index, agg.to_numpy(), color=COLORS[0])
        ax.set_title(describe(col), fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig


def confusion_matrix(table: pd.DataFrame, title: str = "reward model") -> KitFigure:
    """Row-normalised colours (recall per true class), counts written in the cells."""
    fig, axes = new_figure(width=4.4, height=3.8)
    ax = axes[0, 0]
    counts = table.to_numpy()
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{counts[i, j]:,}\n{rates[i, j]:.0%}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(table.columns)), table.columns)
    ax.set_yticks(range(len(table.index)), table.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def similarity_histograms(sims: pd.DataFrame) -> KitFigure:
    """Cosine of ``T(h, a)`` with the next / the current state, logged vs negative items."""
    targets = list(dict.fromkeys(sims["target"]))
    fig, axes = new_figure(ncols=len(targets))
    colors = _colors(list(dict.fromkeys(sims["pair"])))
    bins = np.linspace(-1, 1, 41)
    for ax, target in zip(axes[0], targets):
        for pair, part in sims[sims["target"] == target].groupby("pair", sort=False):
            ax.hist(part["cosine"], bins=bins, density=True, alpha=0.55, color=colors[pair], label=f"{pair} (mean {part['cosine'].mean():.2f})")
        ax.set_title(f"cos(T(h, a), {target})")
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=8)
    return fig


# --- 05: overestimation ------------------------------------------------------------------
def bias_scatter(values: pd.DataFrame, max_points: int = 3000, seed: int = 0) -> KitFigure:
    """Predicted value (y) against the logged Monte-Carlo return (blue) and, on the simulator, the true value
    of the policy the estimate estimates (orange), one panel per label: points below the diagonal are
    predictions under the return, points above it predictions over it."""
    labels = list(dict.fromkeys(values["label"]))
    fig, axes = new_figure(ncols=len(labels), width=3.6, height=3.6, sharex=True, sharey=True)
    rng = np.random.default_rng(seed)
    for ax, label in zip(axes[0], labels):
        part = values[values["label"] == label]
        if len(part) > max_points:
            part = part.iloc[np.sort(rng.choice(len(part), max_points, replace=False))]
        ax.scatter(part["mc_return"], part["value"], s=4, alpha=0.3, color=COLORS[0], label="against the logged MC return")
        if "true_value" in part:
            ax.scatter(part["true_value"], part["value"], s=4, alpha=0.3, color=COLORS[1], label="against the true value")
        lo = float(min(part["value"].min(), part["mc_return"].min()))
        hi = float(max(part["value"].max(), part["mc_return"].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_title(label)
        ax.set_xlabel("return (logged or true)")
    axes[0, 0].set_ylabel("predicted value")
    axes[0, 0].legend(fontsize=8, markerscale=3)
    fig.suptitle("Predicted value against the return, per held-out event (dashed: prediction = return)")
    return fig


def bias_by_step(values: pd.DataFrame) -> KitFigure:
    """Mean bias (prediction − MC return) by position in the session, one line per label, ± one standard
    error: above 0 the predictions exceed the logged return on average, below 0 they fall short of it."""
    fig, axes = new_figure(width=6.0)
    ax = axes[0, 0]
    labels = list(dict.fromkeys(values["label"]))
    colors = _colors(labels)
    for label in labels:
        by = bias_by(values[values["label"] == label], "step")
        x = np.arange(len(by))
        sem = by["std_bias"] / np.sqrt(by["events"].clip(lower=1))
        ax.errorbar(x, by["mean_bias"], yerr=sem, marker="o", capsize=3, color=colors[label], label=label)
        ax.set_xticks(x, by["group"].astype(str))
    ax.axhline(0, color="k", lw=1)
    ax.set_xlabel("step in the session (0 = its first event)")
    ax.set_ylabel("prediction − MC return (mean ± s.e.)")
    ax.set_title("Bias against the logged return, by step in the session")
    ax.legend(fontsize=8)
    return fig


def bias_distribution(values: pd.DataFrame, column: str = "bias") -> KitFigure:
    """Distribution of the per-event bias per label (violins, means marked). ``column``: ``bias`` (prediction −
    the logged Monte-Carlo return) or ``bias_true`` (prediction − the simulator's true value of the policy the
    estimate estimates); the y-label says which."""
    labels = list(dict.fromkeys(values["label"]))
    fig, axes = new_figure(width=max(4.0, 1.4 * len(labels)))
    ax = axes[0, 0]
    data = [values.loc[values["label"] == label, column].to_numpy() for label in labels]
    parts = ax.violinplot(data, showmeans=True, showextrema=False)
    for body, color in zip(parts["bodies"], COLORS):
        body.set_facecolor(color)
    ax.axhline(0, color="k", lw=1)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20)
    against = {"bias": "the logged Monte-Carlo return", "bias_true": "the true value (simulator)"}.get(column, column)
    ax.set_ylabel(f"prediction − {against.removeprefix('the ')}")
    ax.set_title(f"Bias per event: prediction − {against}")
    return fig


# --- 06: ablations -----------------------------------------------------------------------
def ablation_bars(table: pd.DataFrame, metric: str = "purchase NDCG@10", title: str = "") -> KitFigure:
    """Mean ± std over seeds of ``metric`` per variant (a ``Study.compare`` table). Bars start at 0: a
    bar's length is the value, so an axis cut above 0 would exaggerate the differences."""
    fig, axes = new_figure(width=6.0, height=0.45 * len(table) + 1.2)
    ax = axes[0, 0]
    y = np.arange(len(table))[::-1]
    ax.barh(y, table[metric], xerr=table[f"{metric} std"], color=COLORS[0], alpha=0.85, capsize=4)
    ax.set_yticks(y, table["label"])
    ax.set_xlabel(f"{metric} (mean ± std over up to {int(table['seeds'].max())} seeds)")
    ax.set_xlim(left=0.0)
    ax.set_title(title or f"{metric} per method")
    ax.grid(axis="x", alpha=0.3)
    return fig


def sweep(table: pd.DataFrame, x: Sequence[float], xlabel: str, metrics: Sequence[str] = ("purchase NDCG@10", "click NDCG@10")) -> KitFigure:
    """``metrics`` (mean ± std over seeds, on the split ``table`` was scored on) against a swept setting ``x``
    (rows of ``table`` in order); the x-axis ticks are the swept values."""
    fig, axes = new_figure(ncols=len(metrics), width=3.8)
    for ax, metric, color in zip(axes[0], metrics, COLORS):
        ax.errorbar(list(x), table[metric], yerr=table[f"{metric} std"], marker="o", capsize=4, color=color)
        ax.set_xticks(list(x))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)")
        ax.set_title(f"{metric} against {xlabel}")
        ax.grid(alpha=0.3)
    return fig


# --- 08: the closed loop -------------------------------------------------------------------
def online_bars(table: pd.DataFrame, quantities: Sequence[str] = ("reward", "purchases", "taken share")) -> KitFigure:
    """Each policy's mean per-session ``quantities`` with 95 % intervals (an ``online.online_table``)."""
    fig, axes = new_figure(ncols=len(quantities), width=3.6, height=0.42 * len(table) + 1.3)
    y = np.arange(len(table))[::-1]
    colors = [COLORS[i % len(COLORS)] for i in range(len(table))]
    for ax, q in zip(axes[0], quantities):
        err = np.vstack([table[q] - table[f"{q} low"], table[f"{q} high"] - table[q]])
        ax.barh(y, table[q], xerr=err, color=colors, alpha=0.85, capsize=3)
        ax.set_yticks(y, table["policy"] if ax is axes[0, 0] else [""] * len(y))
        ax.set_title(f"{q} per session" if q != "taken share" else "share of slates taken")
        ax.set_xlabel("mean over sessions (95 % interval)" if q != "taken share" else "taken / shown (95 % interval)")
        ax.grid(axis="x", alpha=0.3)
    return fig


def offline_online_plot(table: pd.DataFrame, online_col: str = "online reward",
                        offline: Sequence[str] = ("offline purchase NDCG@10", "offline click NDCG@10")) -> KitFigure:
    """One point per run: an offline metric (x) against the online ``online_col`` (y), coloured by ``method``."""
    fig, axes = new_figure(ncols=len(offline), width=4.2)
    colors = _colors(list(dict.fromkeys(table["method"])))
    for ax, x in zip(axes[0], offline):
        for method, part in table.groupby("method", sort=False):
            ax.scatter(part[x], part[online_col], color=colors[method], label=method, s=28, alpha=0.85)
        ax.set_xlabel(f"{x.removeprefix('offline ')} (test, offline)")
        ax.set_ylabel(f"{online_col.removeprefix('online ')} per session (closed loop)")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8, loc="best")
    return fig
