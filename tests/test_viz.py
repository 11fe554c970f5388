"""Figures: built from the kit's tables, titled in words, saved atomically where paths say."""

from __future__ import annotations

import pandas as pd
import pytest

from mcrl_kit import diagnostics, experiments, paths, probes
from mcrl_kit.data import episodes, stats
from mcrl_kit.viz import plots


def test_save_figure_goes_to_figures_dir(monkeypatch, tmp_path, tiny_data):
    monkeypatch.setenv("MCRL_FIGURES", str(tmp_path / "figs"))
    assert paths.figures_dir() == (tmp_path / "figs").resolve()
    fig = plots.length_histogram(stats.session_lengths(tiny_data))
    path = plots.save_figure(fig, "lengths")
    assert path == paths.figures_dir() / "lengths.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_mode & 0o044  # readable by others
    assert [p.name for p in path.parent.iterdir()] == ["lengths.png"]  # no temporaries left
    # Jupyter shows a KitFigure as PNG without pyplot
    assert fig._repr_png_()[:4] == b"\x89PNG"


def test_learning_figures(tiny_runs):
    study, runs = tiny_runs
    curves = study.curves(runs)
    fig = plots.learning_curves(curves, ["val/purchase/NDCG@10", "loss/ce", "not a column"])
    assert len(fig.axes) == 2 and {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"SQN", "MCRL"}
    fig = plots.loss_terms(curves, ["policy", "value", "conservative", "reward", "transition"], label="MCRL")
    terms = ["policy", "value", "conservative", "reward", "transition"]
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [plots.LOSS_WORDS[t] for t in terms]


def test_overestimation_figures(tiny_runs):
    _, runs = tiny_runs
    values, _ = diagnostics.diagnose_runs(runs, n_rollouts=2)
    assert len(plots.bias_scatter(values, max_points=50).axes) == 2
    fig = plots.bias_by_step(values)
    assert len(fig.axes[0].get_lines()) >= 2
    assert plots.bias_distribution(values, "bias_true").axes[0].get_ylabel() == "prediction − true value (simulator)"
    assert plots.bias_distribution(values).axes[0].get_ylabel() == "prediction − logged Monte-Carlo return"


def test_ablation_figures(tiny_runs):
    study, runs = tiny_runs
    table = study.compare(runs)
    fig = plots.ablation_bars(table)
    ax = fig.axes[0]
    position = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert position["SQN"] > position["MCRL"]  # the table's first row on top
    fig = plots.sweep(table, [1, 2], "x")
    assert len(fig.axes) == 2


def test_confusion_and_similarity_figures():
    confusion = pd.DataFrame([[8, 2, 0], [1, 3, 0], [0, 1, 1]], index=probes.CLASSES, columns=probes.CLASSES)
    fig = plots.confusion_matrix(confusion)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[0] == "8\n80%" and texts[4] == "3\n75%"
    sims = pd.DataFrame({"pair": ["logged item", "negative item"] * 4, "target": ["next state"] * 4 + ["current state"] * 4,
                         "cosine": [0.9, -0.1, 0.8, 0.0, 0.1, 0.7, 0.2, 0.9]})
    fig = plots.similarity_histograms(sims)
    assert [ax.get_title() for ax in fig.axes] == ["cos(T(h, a), next state)", "cos(T(h, a), current state)"]


def test_session_timeline(tiny_data):
    table = episodes.mdp_table(tiny_data, episodes.example_sessions(tiny_data, n=1)[0])
    fig = plots.session_timeline(table, title="t")
    assert len(fig.axes[0].patches) == len(table)
    assert [p.get_height() for p in fig.axes[0].patches] == table["reward r_t"].tolist()
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == table["return G_t"].tolist()


@pytest.mark.parametrize("lengths", [pd.Series([3, 3, 4, 50])])
def test_data_figures(lengths):
    assert plots.length_histogram(lengths).axes[0].get_yscale() == "log"
    assert plots.popularity_plot(pd.Series([10, 5, 1])).axes[0].get_xscale() == "log"


def test_study_table_metric_summary_is_json_ready(tiny_runs, tmp_path):
    from mcrl_kit.notebooks import _plain

    study, runs = tiny_runs
    plain = _plain({"t": study.compare(runs), "nan": float("nan"), "p": tmp_path, "s": experiments.metric_summary(study.compare(runs))})
    assert plain["nan"] is None and plain["p"] == str(tmp_path) and isinstance(plain["t"], list)


def test_styled_compare_groups_columns_and_bolds_the_best():
    from mcrl_kit.report import styled_compare

    table = pd.DataFrame({
        "label": ["SQN", "MCRL", "popularity"], "seeds": [3, 3, 1],
        "purchase NDCG@10": [0.41234, 0.5, 0.2], "purchase NDCG@10 std": [0.01, 0.02, 0.0],
        "click NDCG@10": [0.3, 0.1, float("nan")], "click NDCG@10 std": [0.0, 0.005, 0.0],
    })
    styler = styled_compare(table, columns=["purchase NDCG@10", "click NDCG@10"])
    shown = styler.data
    assert list(shown.columns) == [("", "model"), ("", "seeds"), ("purchase", "NDCG@10"), ("click", "NDCG@10")]
    assert shown[("purchase", "NDCG@10")].tolist() == ["0.412 ± 0.010", "0.500 ± 0.020", "0.200"]  # one seed: no ±
    assert shown[("click", "NDCG@10")].tolist() == ["0.300 ± 0.000", "0.100 ± 0.005", "–"]
    html = styler.to_html()
    styles = styler._compute().ctx  # (row, col) -> [(prop, value)] of the cells given a style
    bold = {k for k, v in styles.items() if ("font-weight", "bold") in v}
    assert bold == {(1, 2), (0, 3)}  # MCRL best on purchases, SQN on clicks (NaN never best)
    assert "purchase" in html and "<th" in html


def test_panels_are_titled_in_words():
    assert plots.describe("val/purchase/NDCG@10") == "validation purchase NDCG@10"
    assert plots.describe("loss/transition") == "transition model (InfoNCE)"
    assert plots.describe("loss/something_new") == "loss: something_new" and plots.describe("other") == "other"
    curves = pd.DataFrame({"label": ["a"] * 3, "seed": [0] * 3, "step": [1, 2, 3], "val/click/HR@10": [0.1, 0.2, 0.3],
                           "loss/policy": [3.0, 2.0, 1.0]})
    fig = plots.learning_curves(curves, ["val/click/HR@10"])
    assert fig.axes[0].get_title() == "validation click HR@10 during training"
    assert plots.loss_terms(curves, ["policy"]).axes[0].get_title() == "policy loss (weighted cross-entropy)"
    assert fig.axes[0].get_ylabel() == "validation click HR@10"
