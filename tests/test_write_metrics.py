"""A notebook's last cell records its metrics with the parameters it ran with, read from its own globals."""

from __future__ import annotations

import json

from mcrl_kit.notebooks import declared_parameters, find_notebooks, write_metrics


def test_the_calling_notebooks_globals_are_read(tmp_path):
    nb = find_notebooks()["01"]
    names = declared_parameters(nb.path)
    namespace = {name: f"value of {name}" for name in names} | {"OUT_DIR": str(tmp_path), "write_metrics": write_metrics}
    exec(f"write_metrics({nb.name!r}, {{'answer': 42}})", namespace)  # as a notebook cell calls it: no globals() passed
    record = json.loads((tmp_path / f"{nb.name}.metrics.json").read_text())
    assert record["answer"] == 42 and record["notebook"] == nb.name
    assert record["parameters"] == {name: namespace[name] for name in names}
