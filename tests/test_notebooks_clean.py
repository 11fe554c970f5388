"""Committed notebooks: no outputs or widget state, kernel python3, one parameters cell of literals."""

from __future__ import annotations

import json

import pytest

from mcrl_kit import paths
from mcrl_kit.notebooks import NOTEBOOKS, declared_parameters, notebook_problems

COMMITTED = sorted(paths.notebooks_dir().glob("*.ipynb"))


def test_the_registry_is_the_folder():
    assert [p.name for p in COMMITTED] == [f"{nb.name}.ipynb" for nb in NOTEBOOKS.values()]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path):
    assert notebook_problems(path) == []


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_parameters_are_the_ci_profile(path):
    params = declared_parameters(path)
    assert params["OUT_DIR"] is None  # the kit resolves it: the working directory never matters
    if "STEPS" in params:
        assert params["STEPS"] <= 500 and params["SHOW_PROGRESS"] is False and params["BACKBONE"] == "gru"
        assert params["DEVICE"] == "cpu" and len(params["SEEDS"]) <= 2 and params["SCALE"] == "tiny"
    # nothing in a notebook reads paths relative to the working directory
    text = path.read_text()
    for bad in ('"../', "'../", '"./', "os.getcwd", "Path.cwd", '"figures/', '"build/'):
        assert bad not in text, f"{path.name} uses a working-directory path ({bad})"


def _dirty(tmp_path, change):
    nb = json.loads(COMMITTED[0].read_text())
    change(nb)
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    return notebook_problems(path)


def _add_output(nb):
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    code["execution_count"] = 1


def _second_parameters_cell(nb):
    nb["cells"].append({"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "X = 1", "outputs": [],
                        "execution_count": None})


def _computed_parameter(nb):
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    cell["source"] = "STEPS = 2 * 100"


@pytest.mark.parametrize(
    "change, problem",
    [
        (_add_output, "stored outputs"),
        (lambda nb: nb["metadata"].__setitem__("widgets", {"state": {}}), "widget state"),
        (lambda nb: nb["metadata"]["kernelspec"].__setitem__("name", "mcrl"), "kernel 'mcrl'"),
        (_second_parameters_cell, "2 cells tagged 'parameters'"),
        (_computed_parameter, "not a literal"),
    ],
)
def test_the_check_catches_dirty_notebooks(tmp_path, change, problem):
    problems = _dirty(tmp_path, change)
    assert any(problem in p for p in problems), problems
