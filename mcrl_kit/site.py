"""The executed notebook series as static HTML (``make site``): readable without running anything.

:func:`render_site` converts the executed copies a papermill run wrote (``OUT/NN_name.ipynb``, by
``python -m mcrl_kit notebooks``) with nbconvert's ``lab`` template into ``build/site/``: one page per
notebook (images embedded, so a page is one self-contained file) and an ``index.html`` listing them with
what each teaches and how long it ran. It never executes a notebook itself: the pages show the run that
produced them. Widgets have no kernel behind them on a static page, so the inspector's panel shows its
static snapshot (its ``text/html`` representation) there. The equations render offline: MathJax is copied
beside the pages from the ``jupyter-server-mathjax`` package (the CDN's copy is used where it is absent).
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

from . import paths
from .errors import ConfigError
from .notebooks import find_notebooks
from .storage import atomic_dir, atomic_path, write_text


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
    exporter = HTMLExporter(template_name="lab", embed_images=True, mathjax_url=_mathjax(out))
    rows = []
    for nb, path in found:
        body, _ = exporter.from_notebook_node(_static(nbformat.read(path, as_version=4)))
        if "plotly-graph-div" in body:  # plotly.js once, in the head, before any figure is drawn
            body = body.replace("</head>", _plotly_js(out) + "\n</head>", 1)
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
PLOTLY = "application/vnd.plotly.v1+json"
#: nbconvert's own default, for where no local MathJax is installed
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"


def _mathjax(out: Path) -> str:
    """The pages' MathJax: a copy of jupyter-server-mathjax's MathJax 2.7 under ``out/mathjax`` (12 MB, made once),
    so that the equations render without a network; nbconvert's CDN URL when that package is absent."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return MATHJAX_CDN
    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (source / "MathJax.js").exists():
        return MATHJAX_CDN
    if not (out / "mathjax" / "MathJax.js").exists():
        with atomic_dir(out / "mathjax") as tmp:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
    return "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def _static(notebook):
    """``notebook`` made for a page without a kernel.

    - A widget output that also carries HTML is reduced to that HTML: nbconvert prefers a widget view to
      every other representation and draws it from the saved widget state with JavaScript; with no kernel
      behind it the inspector's panel would show controls that do nothing. Its static snapshot reads better.
    - A plotly figure (stored as plotly's JSON, which nbconvert cannot show) gets its HTML, drawn by the
      ``plotly.min.js`` that :func:`render_site` puts beside the pages: zoom and hover work offline.
    """
    import plotly.io as pio

    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET in data and "text/html" in data:
                del data[WIDGET]
            if PLOTLY in data and "text/html" not in data:
                figure = pio.from_json(json.dumps(data[PLOTLY]), skip_invalid=True)
                data["text/html"] = pio.to_html(figure, include_plotlyjs=False, full_html=False)
    return notebook


def _plotly_js(out: Path) -> str:
    """``<script>`` loading the plotly.js of the installed plotly, copied beside the pages once."""
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not (out / "plotly.min.js").exists():
        with atomic_path(out / "plotly.min.js") as tmp:
            shutil.copyfile(source, tmp)
            tmp.chmod(0o644)
    return '<script src="plotly.min.js"></script>'


__all__ = ["render_site"]
