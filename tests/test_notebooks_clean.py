"""Committed notebooks: no outputs or widget state, kernel python3, one parameters cell of literals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcrl_kit import paths
from mcrl_kit.errors import KitError
from mcrl_kit.notebooks import KERNEL, declared_parameters, find_notebooks, full_parameters, read_notebook

COMMITTED = sorted(paths.notebooks_dir().glob("*.ipynb"))


def notebook_problems(path: str | Path) -> list[str]:
    """What is wrong with a notebook as committed: outputs, widget state, kernel, parameters cell."""
    nb = read_notebook(path)
    problems = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    n_out = sum(len(c.get("outputs", [])) for c in code)
    if n_out:
        problems.append(f"{n_out} stored outputs (strip them)")
    if any(c.get("execution_count") is not None for c in code):
        problems.append("stored execution counts (strip them)")
    if "widgets" in nb.get("metadata", {}):
        problems.append("stored widget state in the metadata (strip it)")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        problems.append(f"kernel {kernel!r}, expected {KERNEL!r}")
    try:
        declared_parameters(path)
        full_parameters(path)
    except KitError as err:
        problems.append(err.problem)
    if not nb["cells"] or nb["cells"][0]["cell_type"] != "markdown":
        problems.append("does not start with a markdown introduction")
    return problems


def test_the_registry_is_the_folder():
    series = find_notebooks()
    assert [p.name for p in COMMITTED] == [nb.path.name for nb in series.values()]
    assert list(series) == [f"{i:02d}" for i in range(1, len(COMMITTED) + 1)]  # numbered 01, 02, … without gaps
    for number, nb in series.items():
        assert nb.name.startswith(f"{number}_") and nb.path == paths.notebooks_dir() / f"{nb.name}.ipynb"
        # what it teaches: the first markdown line, without its '#' and the number
        assert nb.teaches and not nb.teaches.startswith(("#", number)), nb.teaches
    assert series["01"].teaches == "Sessions as a Markov decision process"


def test_the_registry_reads_any_folder(tmp_path):
    nb = json.loads(COMMITTED[0].read_text())
    nb["cells"][0]["source"] = "## 12 · Something new\n\nmore"
    (tmp_path / "12_new.ipynb").write_text(json.dumps(nb))
    (tmp_path / "notes.ipynb").write_text("{}")  # not NN_name: not part of the series
    (tmp_path / "3_short.ipynb").write_text("{}")
    series = find_notebooks(tmp_path)
    assert list(series) == ["12"] and series["12"].name == "12_new" and series["12"].teaches == "Something new"
    (tmp_path / "12_twin.ipynb").write_text(json.dumps(nb))
    with pytest.raises(KitError, match="number 12"):
        find_notebooks(tmp_path)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path):
    assert notebook_problems(path) == []


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_parameters_are_the_ci_profile(path):
    params = declared_parameters(path)
    assert params["OUT_DIR"] is None  # the kit resolves it: the working directory never matters
    if "STEPS" in params:
        assert params["STEPS"] <= 500 and params.get("SHOW_PROGRESS") is None and params.get("BACKBONE", "gru") == "gru"
        assert params.get("DEVICE", "cpu") == "cpu" and len(params.get("SEEDS", [0])) <= 2 and params["SCALE"] == "tiny"
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


def _parameters(nb):
    return next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))


def _computed_parameter(nb):
    _parameters(nb)["source"] = "STEPS = 2 * 100"


def _full(values):
    return lambda nb: _parameters(nb)["metadata"].__setitem__("full", values)


@pytest.mark.parametrize(
    "change, problem",
    [
        (_add_output, "stored outputs"),
        (lambda nb: nb["metadata"].__setitem__("widgets", {"state": {}}), "widget state"),
        (lambda nb: nb["metadata"]["kernelspec"].__setitem__("name", "mcrl"), "kernel 'mcrl'"),
        (_second_parameters_cell, "2 cells tagged 'parameters'"),
        (_computed_parameter, "not a literal"),
        (_full({"NOT_DECLARED": 1}), "does not declare"),
        (_full({"SCALE": 3}), "the cell declares 'tiny'"),
        (_full(["SCALE"]), "is not a mapping"),
    ],
)
def test_the_check_catches_dirty_notebooks(tmp_path, change, problem):
    problems = _dirty(tmp_path, change)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_without_a_warning(path, caplog):
    """papermill parses the parameters cell line by line: an ``=`` inside a comment makes it warn
    "Unable to parse line" (and skip the line), so a comment must say "None: auto", not "None = auto"."""
    import logging

    import papermill

    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = papermill.inspect_notebook(str(path))
    assert set(found) == set(declared_parameters(path))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]


def test_the_readmes_notebook_section_is_what_update_readme_writes():
    """Hand edits of the README's notebook section would be lost at the next `--update-readme`: the section
    must be the template's, with the README's own minutes (and every notebook of the folder listed)."""
    import re

    from mcrl_kit.notebooks import README_END, README_START, readme_section

    readme = (paths.home() / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(README_START):readme.index(README_END) + len(README_END)]
    minutes = {m[1]: float(m[2]) * 60 for m in re.finditer(r"\| (\d\d) \| \[`\d\d_\w+`\]\(notebooks/\S+\) \| [^|]+ \| ([\d.]+) \|", section)}
    command = re.search(r"Minutes: measured by `([^`]+)`", section)[1]
    assert section == readme_section(minutes, command)
    assert set(minutes) == set(find_notebooks())
