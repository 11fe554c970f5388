"""The session inspector: pure functions, then the widget driven by setting values and clicking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcrl_kit.errors import DataError
from mcrl_kit.viz import inspector as ins


@pytest.fixture(scope="module")
def loaded(tiny_runs):
    _, runs = tiny_runs
    return ins.load_runs({label: folders[0] for label, folders in runs.items()})


def test_session_ids_and_filter(tiny_data):
    all_ids = ins.session_ids(tiny_data, "test")
    ev = tiny_data.split_events("test")
    assert all_ids == sorted(ev["session"].unique().tolist())
    buying = ins.session_ids(tiny_data, "test", has_purchase=True)
    assert 0 < len(buying) < len(all_ids)
    assert set(buying) == set(ev.loc[ev["is_buy"] == 1, "session"])


def test_session_table(loaded, tiny_data):
    algos, data = loaded
    session = ins.session_ids(data, "test", has_purchase=True)[0]
    table = ins.session_table(algos, data, session)
    ev = tiny_data.split_events("test").query("session == @session")
    assert table["item"].tolist() == ev["item"].tolist()
    assert table["step"].tolist() == list(range(len(ev)))
    assert (table["event"] == "purchase").sum() == ev["is_buy"].sum()
    np.testing.assert_allclose(table["bias SQN"], table["value SQN"] - table["mc_return"])
    # the last step's return is its reward (the session ends there)
    assert table["mc_return"].iloc[-1] == pytest.approx(table["reward"].iloc[-1])
    probs = table[[f"{p} MCRL" for p in ins.PROBS]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert "P(click) SQN" not in table  # SQN has no reward model
    # the rank column agrees with the policy's scores
    rows = data.replay("test").subset(torch.from_numpy(data.split_events("test")["session"].to_numpy() == session))
    with torch.no_grad():
        scores = algos["MCRL"].scores(rows.state.long(), rows.len_state)
    expected = (scores > scores.gather(1, rows.action.long()[:, None])).sum(1) + 1
    assert table["rank MCRL"].tolist() == expected.tolist()
    with pytest.raises(DataError, match="not in the test split"):
        ins.session_table(algos, data, ins.session_ids(data, "train")[0])


def test_top_k_marks_the_logged_item(loaded):
    algos, data = loaded
    session = ins.session_ids(data, "test")[0]
    top = ins.top_k(algos["MCRL"], data, session, k=300)  # every item: the logged one is somewhere
    table = ins.session_table(algos, data, session)
    assert top.groupby("step")["logged"].sum().tolist() == [1] * len(table)
    assert top.loc[top["logged"], "rank"].tolist() == table["rank MCRL"].tolist()
    small = ins.top_k(algos["MCRL"], data, session, k=3)
    grid = ins.top_k_grid(small)
    assert grid.shape == (len(table), 3)
    marked = small[small["logged"]]
    for _, row in marked.iterrows():
        assert grid.loc[row["step"], row["rank"]] == f"[{row['item']}]"
    assert "<td style='background:#ffe58f;font-weight:bold'>[" in ins.grid_html(grid, "MCRL") or marked.empty


def test_session_figure(loaded):
    algos, data = loaded
    session = ins.session_ids(data, "test", has_purchase=True)[0]
    table = ins.session_table(algos, data, session)
    fig = ins.session_figure(table, session)
    assert fig.layout.title.text.startswith(f"session {session}: {len(table)} steps")
    names = [t.name for t in fig.data]
    assert names[:2] == ["MC return", "purchase"] and "value SQN" in names and "value MCRL" in names
    assert "P(purchase)" in names  # MCRL's reward model row
    np.testing.assert_allclose(fig.data[0].y, table["mc_return"])


def test_bias_bars_stand_side_by_side(loaded):
    """Two runs' bias bars are grouped, never stacked (a stacked bar's height is a sum, and one run's bar can
    hide the other's); the reward model's probabilities stack by hand to 1 in their own group."""
    algos, data = loaded
    session = ins.session_ids(data, "test", has_purchase=True)[0]
    table = ins.session_table(algos, data, session)
    fig = ins.session_figure(table, session)
    assert fig.layout.barmode == "group"
    bias = [t for t in fig.data if t.type == "bar" and t.name.startswith("bias ")]
    assert [t.name for t in bias] == ["bias SQN", "bias MCRL"]
    assert len({t.offsetgroup for t in bias}) == 2 and all(t.base is None for t in bias)
    np.testing.assert_allclose(bias[1].y, table["bias MCRL"])
    probs = [t for t in fig.data if t.name in ins.PROBS]
    assert {t.offsetgroup for t in probs} == {"probabilities"}
    base = [np.asarray(t.base, dtype=float) for t in probs]
    np.testing.assert_allclose(base[0], 0)
    np.testing.assert_allclose(base[1], table["P(negative) MCRL"], atol=1e-6)
    np.testing.assert_allclose(base[2] + np.asarray(probs[2].y, dtype=float), 1, atol=1e-5)  # stacked to 1
    titles = [a.text for a in fig.layout.annotations]
    assert any("bias" in t for t in titles) and fig.layout.yaxis2.title.text == "value − return"


def test_panel_explains_itself_and_scrolls(loaded):
    algos, data = loaded
    panel = ins.Inspector(algos, data)
    panel.render()
    assert panel.glossary in panel.widget.children
    for word in ("Q(s, a<sub>t</sub>)", "V(s)", "mc_return", "rank", "P(negative / click / purchase)", "Pink rows"):
        assert word in panel.glossary.value
    assert panel.values.value.startswith("<div style='max-height:420px;overflow:auto'>")
    assert panel.topk.value.startswith("<div style='max-height:420px;overflow:auto'>")


def test_executed_copy_shows_a_static_snapshot(loaded):
    """Without widget state (an executed copy opened later, nbconvert's HTML) the panel falls back to HTML, not VBox(...)."""
    algos, data = loaded
    panel = ins.Inspector(algos, data)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live panel where a kernel is behind it
    assert "<table" in bundle["text/html"] and "static snapshot" in bundle["text/html"]
    assert "data:image/png;base64," in bundle["text/html"]  # the chart, drawn by matplotlib for static readers
    assert str(panel.session.value) in bundle["text/html"] and "VBox" not in bundle["text/plain"]


def test_session_values_png(loaded):
    from mcrl_kit.viz import plots

    algos, data = loaded
    session = ins.session_ids(data, "test", has_purchase=True)[0]
    table = ins.session_table(algos, data, session)
    top, bottom = plots.session_values(table, title="s").axes
    assert [line.get_label() for line in top.get_lines()] == ["MC return", "value SQN", "value MCRL"]
    np.testing.assert_allclose(top.get_lines()[2].get_ydata(), table["value MCRL"])
    assert len(bottom.patches) == 2 * len(table)  # one bias bar per step and run


def test_widget_callbacks(loaded):
    algos, data = loaded
    panel = ins.Inspector(algos, data, k=4)
    first = panel.render()
    ids = ins.session_ids(data, "test")
    assert panel.session.value == ids[0] and panel.position.value == 1  # 1-based, as the status line counts
    assert f"(1 of {len(ids)} in the test split)" in panel.status.value
    assert first.layout.title.text.startswith(f"session {ids[0]}:")

    panel.session.value = ids[5]  # the dropdown moves the slider and re-renders
    assert panel.position.value == 6 and f"(6 of {len(ids)} " in panel.status.value
    assert panel.figure.layout.title.text.startswith(f"session {ids[5]}:")
    assert panel.table["item"].tolist() == data.split_events("test").query("session == @ids[5]")["item"].tolist()

    panel.position.value = 3  # the slider moves the dropdown
    assert panel.session.value == ids[2] and panel.figure.layout.title.text.startswith(f"session {ids[2]}:")

    panel.next_button.click()
    assert panel.session.value == ids[3] and panel.figure.layout.title.text.startswith(f"session {ids[3]}:")

    panel.has_purchase.value = True  # the filter narrows the list; the current session is kept if it qualifies
    buying = ins.session_ids(data, "test", has_purchase=True)
    assert list(panel.session.options) == buying and panel.position.max == len(buying)
    assert panel.position.value == buying.index(panel.session.value) + 1
    assert panel.session.value in buying and (panel.table["event"] == "purchase").any()

    panel.k.value = 7
    assert panel.grid.shape[1] == 7 and "top-7 of SQN" in panel.topk.value
    panel.policy.value = "MCRL"
    assert "MCRL's policy" in panel.topk.value
    assert "<table" in panel.values.value and str(panel.session.value) in panel.status.value

    panel.has_purchase.value = False
    assert list(panel.session.options) == ids
    assert panel.error is None


def test_chart_slot_holds_one_plotly_figure(loaded):
    """The chart is set as the Output widget's state (no output capture, issue #5): one plotly output, replaced on change."""
    algos, data = loaded
    panel = ins.Inspector(algos, data)
    ids = ins.session_ids(data, "test")

    def shown():
        (output,) = panel.chart.outputs  # exactly one: each render replaces, never appends
        assert output["output_type"] == "display_data"
        return output["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]

    panel.render()
    assert shown().startswith(f"session {ids[0]}:")
    for session in ids[1:3]:
        panel.session.value = session
        assert shown().startswith(f"session {session}:")
    assert panel.chart.outputs[0]["data"]["text/plain"].startswith(f"<Figure: session {ids[2]}:")


def test_widget_shows_callback_errors(loaded, monkeypatch):
    algos, data = loaded
    panel = ins.Inspector(algos, data)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ins, "session_table", broken)
    with pytest.raises(RuntimeError, match="boom"):
        panel.k.value = 9
    assert isinstance(panel.error, RuntimeError) and "boom" in panel.status.value


def test_from_runs_refuses_mixed_datasets(tiny_runs, tmp_path):
    from mcrl_kit.errors import ConfigError
    from mcrl_kit.experiments import Study, load_data

    _, runs = tiny_runs
    other = Study(load_data("simulator", scale="tiny", seed=1), steps=2, batch_size=16, eval_every=2, device="cpu", out=tmp_path)
    with pytest.raises(ConfigError, match="one dataset"):
        ins.Inspector.from_runs({"a": runs["SQN"][0], "b": other.train({"x": "supervised"})["x"][0]})
