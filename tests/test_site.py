"""``make site`` without running the series: hand-made executed copies rendered to static HTML."""

from __future__ import annotations

import json

import nbformat
import pytest

from mcrl_kit.errors import ConfigError
from mcrl_kit.notebooks import find_notebooks
from mcrl_kit.site import PLOTLY, WIDGET, _static, render_site


def _executed(path, outputs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A title\n\nWhat it teaches."), nbformat.v4.new_code_cell("x", outputs=outputs)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_widget_with_html_renders_its_snapshot(tmp_path):
    series = find_notebooks()
    name = series["07"].path.name
    widget = nbformat.v4.new_output("display_data", data={
        WIDGET: {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/html": "<p>A static snapshot of the inspector</p>",
        "text/plain": "VBox(children=(...))",
    })
    plain = nbformat.v4.new_output("display_data", data={WIDGET: {"model_id": "def", "version_major": 2, "version_minor": 0},
                                                          "text/plain": "IntSlider(value=1)"})
    import plotly.graph_objects as go

    chart = nbformat.v4.new_output("display_data", data={
        PLOTLY: json.loads(go.Figure(go.Bar(x=[1, 2], y=[3, 4], name="the bars")).to_json())})
    _executed(tmp_path / name, [widget, plain, chart])
    index = render_site(tmp_path, tmp_path / "site")
    page = (index.parent / f"{series['07'].name}.html").read_text()
    assert "A static snapshot of the inspector" in page
    assert '"model_id": "abc"' not in page  # the panel's view is dropped where its snapshot stands in
    assert f"href='{series['07'].name}.html'" in index.read_text()
    outputs = _static(nbformat.read(tmp_path / name, as_version=4)).cells[1].outputs
    assert [WIDGET in o["data"] for o in outputs] == [False, True, False]  # only a widget with HTML beside it loses its view
    # a plotly figure is drawn offline by the plotly.js beside the pages
    assert "plotly-graph-div" in page and '<script src="plotly.min.js"></script>' in page and "the bars" in page
    assert (index.parent / "plotly.min.js").stat().st_size > 1_000_000
    # the equations render offline: MathJax lies beside the pages and they load it by a relative URL
    assert (index.parent / "mathjax" / "MathJax.js").exists() and 'src="mathjax/MathJax.js?config=' in page
    assert sorted(p.name for p in index.parent.glob("*.html")) == sorted(["index.html", f"{series['07'].name}.html"])


def test_nothing_executed_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="holds no executed notebook"):
        render_site(tmp_path, tmp_path / "site")
