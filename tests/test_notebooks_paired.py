"""Each notebook is authored as ``notebooks/NN_name.py`` (jupytext percent format) and paired with
the output-free ``NN_name.ipynb`` that nbmake and papermill run: the two must agree.

After editing a ``.py`` outside JupyterLab, re-sync its notebook with
``.venv/bin/jupytext --update --to ipynb notebooks/NN_name.py`` (``notebooks/jupytext.toml``
pairs them; JupyterLab with jupytext saves both).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jupytext
import jupytext.cli
import nbformat
import pytest

from mcrl_kit import paths
from mcrl_kit.notebooks import KERNEL, PARAMETERS_TAG

FOLDER = paths.notebooks_dir()
SOURCES = sorted(FOLDER.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = sorted(FOLDER.glob("[0-9][0-9]_*.ipynb"))
#: cell metadata jupytext keeps out of the text file (front-end state, not content)
FRONT_END = {"autoscroll", "collapsed", "scrolled", "trusted", "execution", "ExecuteTime"}


def _fix(py: Path) -> str:
    return f".venv/bin/jupytext --update --to ipynb notebooks/{py.name}"


def _cells(nb) -> list[tuple[str, str, dict]]:
    return [
        (c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
         {k: v for k, v in c.get("metadata", {}).items() if k not in FRONT_END})
        for c in nb["cells"]
    ]


def pair_differences(py: Path, ipynb: Path) -> list[str]:
    """How the cells of ``ipynb`` differ from those jupytext reads from ``py`` (types, sources, metadata)."""
    if not ipynb.exists():
        return [f"{ipynb.name} is missing"]
    text, committed = _cells(jupytext.read(py)), _cells(json.loads(ipynb.read_text(encoding="utf-8")))
    out = [f"{py.name} has {len(text)} cells, {ipynb.name} {len(committed)}"] if len(text) != len(committed) else []
    for i, (a, b) in enumerate(zip(text, committed)):
        for what, x, y in zip(("type", "source", "metadata"), a, b):
            if x != y:
                out.append(f"cell {i} {what}: {x!r:.120} in the .py, {y!r:.120} in the .ipynb")
    return out


def test_every_notebook_has_its_source():
    assert NOTEBOOKS and [p.stem for p in SOURCES] == [p.stem for p in NOTEBOOKS]
    config = (FOLDER / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_pair_agrees(py):
    problems = pair_differences(py, py.with_suffix(".ipynb"))
    assert not problems, f"{py.name} and its .ipynb disagree; run `{_fix(py)}`:\n" + "\n".join(problems)


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_what_jupytext_writes(py, tmp_path):
    """Byte for byte: the .ipynb is what `jupytext --update --to ipynb` makes from the .py (cell ids kept)."""
    for name in (py.name, py.with_suffix(".ipynb").name, "jupytext.toml"):
        shutil.copy(FOLDER / name, tmp_path / name)
    assert jupytext.cli.jupytext(["--quiet", "--update", "--to", "ipynb", str(tmp_path / py.name)]) in (0, None)
    written = (tmp_path / py.with_suffix(".ipynb").name).read_text(encoding="utf-8")
    assert written == py.with_suffix(".ipynb").read_text(encoding="utf-8"), f"run `{_fix(py)}`"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_output_free(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"strip the outputs of {ipynb.name}"
    assert nb.metadata.kernelspec.name == KERNEL
    assert sum(PARAMETERS_TAG in c.metadata.get("tags", []) for c in code) == 1
    assert all(PARAMETERS_TAG not in c.metadata.get("tags", []) for c in nb.cells if c.cell_type != "code")


def _edit(tmp_path: Path, change) -> list[str]:
    py = SOURCES[0]
    shutil.copy(py.with_suffix(".ipynb"), tmp_path / f"{py.stem}.ipynb")
    edited = tmp_path / py.name
    edited.write_text(change(py.read_text(encoding="utf-8")), encoding="utf-8")
    return pair_differences(edited, edited.with_suffix(".ipynb"))


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda t: t.replace("EXAMPLES = 2 ", "EXAMPLES = 3 ", 1), "cell 2 source"),
        (lambda t: t.replace('full={"SCALE": "retailrocket"}', 'full={"SCALE": "small"}', 1), "cell 2 metadata"),
        (lambda t: t.replace('tags=["parameters"]', "", 1), "cell 2 metadata"),
        (lambda t: t + "\n# %%\nprint('new')\n", "cells"),
        (lambda t: t.replace("# %%\nfrom mcrl_kit", "# %% [markdown]\n# from mcrl_kit", 1), "cell 1 type"),
    ],
)
def test_an_unsynced_edit_is_caught(tmp_path, change, problem):
    assert pair_differences(SOURCES[0], SOURCES[0].with_suffix(".ipynb")) == []
    problems = _edit(tmp_path, change)
    assert any(problem in p for p in problems), problems
