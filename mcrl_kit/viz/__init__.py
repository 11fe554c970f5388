"""Figures and the session inspector.

- :mod:`~mcrl_kit.viz.plots` — every figure of the notebooks, matplotlib (PNG, ``save_figure`` → ``figures/``):
  one definition per figure, the same in JupyterLab, in an executed copy and on the static site;
- :mod:`~mcrl_kit.viz.inspector` — the per-session value inspector (ipywidgets; its live chart is the one
  plotly figure, for hover and zoom, with a matplotlib snapshot for static readers).
"""

from .plots import save_figure

__all__ = ["save_figure"]
