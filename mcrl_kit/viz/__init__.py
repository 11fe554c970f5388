"""Figures and the session inspector.

- :mod:`~mcrl_kit.viz.plots` — matplotlib figures (PNG, ``save_figure`` → ``figures/``);
- :mod:`~mcrl_kit.viz.interactive` — plotly figures for exploring in JupyterLab;
- :mod:`~mcrl_kit.viz.inspector` — the per-session value inspector (ipywidgets).
"""

from .plots import save_figure

__all__ = ["save_figure"]
