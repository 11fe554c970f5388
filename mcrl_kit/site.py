"""The executed notebook series as static HTML (``make site``): readable without running anything.

:func:`render_site` converts the executed copies a papermill run wrote (``OUT/NN_name.ipynb``, by
``python -m mcrl_kit notebooks``) with nbconvert's ``lab`` template into ``build/site/``: one page per
notebook (images embedded, so a page is one self-contained file) and an ``index.html`` listing them with
what each teaches and how long it ran. It never executes a notebook itself: the pages show the run that
produced them. Widgets have no kernel behind them on a static page, so the inspector's panel shows its
static snapshot (its ``text/html`` representation) there.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from . import paths
from .errors import ConfigError
from .notebooks import find_notebooks
from .storage import write_text


def render_site(executed: str | Path, out: str | Path | None = None) -> Path:
    """Render every executed notebook of the series found in ``executed``; return ``out/index.html``."""
    import nbformat
    from nbconvert import HTMLExporter

    executed, out = Path(executed), Path(out) if out else paths.build_dir() / "site"
    series = find_notebooks()
    found = [(nb, executed / nb.path.name) for nb in series.values() if (executed / nb.path.name).exists()]
    if not found:
        raise ConfigError(str(executed), "holds no executed notebook of the series",
                          "run `python -m mcrl_kit notebooks --out DIR` first (make site does both)")
    timings = {}
    if (executed / "timings.json").exists():
        timings = json.loads((executed / "timings.json").read_text(encoding="utf-8")).get("notebooks", {})
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    rows = []
    for nb, path in found:
        body, _ = exporter.from_notebook_node(_static(nbformat.read(path, as_version=4)))
        page = f"{nb.name}.html"
        write_text(out / page, body)
        minutes = f"{timings[nb.number] / 60:.1f}" if nb.number in timings else "–"
        rows.append(f"<tr><td>{nb.number}</td><td><a href='{page}'>{html.escape(nb.name)}</a></td>"
                    f"<td>{html.escape(nb.teaches)}</td><td>{minutes}</td></tr>")
    index = ("<!doctype html><html><head><meta charset='utf-8'><title>mcrl_kit notebooks</title></head><body>"
             "<h1>mcrl_kit: the notebook series, executed</h1>"
             f"<p>Rendered from the executed copies in <code>{html.escape(str(executed))}</code> (nothing re-run).</p>"
             "<table><tr><th>#</th><th>notebook</th><th>what it teaches</th><th>minutes</th></tr>"
             + "".join(rows) + "</table></body></html>")
    return write_text(out / "index.html", index)


WIDGET = "application/vnd.jupyter.widget-view+json"


def _static(notebook):
    """``notebook`` with each widget output that also carries HTML reduced to that HTML.

    nbconvert prefers a widget view to every other representation and draws it from the saved widget
    state with JavaScript; with no kernel behind it the inspector's panel then shows controls that do
    nothing (or nothing at all where no state was saved). The panel's own static snapshot reads better.
    """
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET in data and "text/html" in data:
                del data[WIDGET]
    return notebook


__all__ = ["render_site"]
