"""The numbered notebook series: found in the folder, parameter checks and the papermill runner.

The registry is the folder: every ``notebooks/NN_name.ipynb`` is notebook ``NN`` of the
series (number and name from the file name, what it teaches from its first markdown
line). Each is authored as ``NN_name.py`` (jupytext percent format) and paired with the
output-free ``.ipynb`` that papermill and nbmake run (``notebooks/jupytext.toml``;
``tests/test_notebooks_paired.py`` checks that the pairs agree).

Each notebook has exactly one cell tagged ``parameters`` made of plain ``NAME = literal``
lines: their values are the small, fast CI profile, so ``pytest --nbmake`` (which cannot
inject parameters) runs it as committed. The same cell's metadata ``full`` holds the
values of the ``full`` profile (real-size runs) — in the ``.py`` the cell marker reads
``# %% full={"STEPS": 40000, ...} tags=["parameters"]`` (JSON; a name it gives must be
declared by the cell, with a value of the declared type). :func:`run_notebooks` executes
the series with papermill (kernel ``python3``, explicit timeouts) under a named profile —
``smoke`` (the committed values) or ``full`` — plus ``-p NAME VALUE`` overrides. papermill
only *warns* about a parameter a notebook does not declare; the runner refuses it and
lists the declared ones.

Every notebook takes ``OUT_DIR``: the runner sets it to its output folder, so the
executed notebook, its ``<name>.metrics.json`` and the runs it trained (``OUT/runs``)
lie side by side; left at ``None`` (nbmake, JupyterLab) the kit resolves it to
``build/notebooks``. Paths never depend on the working directory.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .errors import ConfigError, KitError
from .experiments import out_dir
from .storage import write_json

KERNEL = "python3"
PARAMETERS_TAG = "parameters"
#: the parameters cell's metadata key holding the ``full`` profile's values
FULL_KEY = "full"
#: ``NN_name.ipynb``: two digits, an underscore, the rest of the name
NOTEBOOK_FILE = re.compile(r"^(?P<number>\d\d)_\w+\.ipynb$")

PROFILES = ("smoke", "full")
#: seconds one cell may run (papermill's ``execution_timeout``) per profile
CELL_TIMEOUT = {"smoke": 900, "full": 12 * 3600}
START_TIMEOUT = 120


@dataclasses.dataclass(frozen=True)
class Notebook:
    number: str
    name: str
    path: Path

    @functools.cached_property
    def teaches(self) -> str:
        """The notebook's first markdown line without its ``#`` (and a leading ``NN ·``)."""
        return _teaches(read_notebook(self.path), self.number)

    @property
    def full(self) -> dict[str, Any]:
        """The ``full`` profile's values: the parameters cell's metadata ``full``."""
        return full_parameters(self.path)


def find_notebooks(folder: str | Path | None = None) -> dict[str, Notebook]:
    """``{NN: Notebook}`` of every ``NN_*.ipynb`` in ``notebooks/`` (or ``folder``), in order."""
    found: dict[str, Notebook] = {}
    for path in sorted(Path(folder or paths.notebooks_dir()).glob("[0-9][0-9]_*.ipynb")):
        match = NOTEBOOK_FILE.match(path.name)
        if not match:
            continue
        number = match["number"]
        if number in found:
            raise ConfigError(str(path), f"has the number {number} of {found[number].path.name} too",
                              "give every notebook of the series its own NN_ prefix")
        found[number] = Notebook(number, path.stem, path)
    return found


def full_parameter(number: str, name: str) -> Any:
    """The ``full`` profile's value of one parameter of notebook ``number`` (``"02"`` or ``"2"``)."""
    nb = select(str(number))[0]
    values = nb.full
    if name not in values:
        raise ConfigError(f"notebook {nb.name}", f"gives no full-profile value of {name}",
                          f"add {name} to the parameters cell's metadata {FULL_KEY!r}")
    return values[name]


def _teaches(nb: dict, number: str = "") -> str:
    cell = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    lines = [line.strip() for line in _source(cell).splitlines() if line.strip()] if cell else []
    if not lines:
        return ""
    text = lines[0].lstrip("#").strip()
    if number and text.startswith(number):
        text = text[len(number):].lstrip(" ·:-—.").strip()
    return text


# --- the parameters cell -----------------------------------------------------------------
def read_notebook(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), "no such notebook", f"pick one of {', '.join(find_notebooks())}")
    return json.loads(path.read_text(encoding="utf-8"))


def parameter_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _parameters_cell(path: str | Path) -> dict:
    cells = parameter_cells(read_notebook(path))
    if len(cells) != 1:
        raise ConfigError(str(path), f"has {len(cells)} cells tagged 'parameters'", "tag exactly one cell 'parameters'")
    return cells[0]


def declared_parameters(path: str | Path) -> dict[str, Any]:
    """``{NAME: value}`` of the notebook's ``parameters`` cell (plain ``NAME = literal`` lines only)."""
    out: dict[str, Any] = {}
    for node in ast.parse(_source(_parameters_cell(path))).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ConfigError(str(path), f"parameters cell line {node.lineno} is not NAME = literal",
                              "keep only plain assignments of literals in the parameters cell")
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError as err:
            raise ConfigError(str(path), f"parameter {node.targets[0].id} is not a literal ({err})",
                              "compute derived values in a later cell") from None
    return out


def full_parameters(path: str | Path) -> dict[str, Any]:
    """The ``full`` profile's values: the parameters cell's metadata ``full`` (``{}`` when absent).

    Every name must be one the cell declares, with a value of the declared type.
    """
    values = _parameters_cell(path).get("metadata", {}).get(FULL_KEY, {})
    if not isinstance(values, dict):
        raise ConfigError(str(path), f"the parameters cell's metadata {FULL_KEY!r} is not a mapping",
                          f'write it as {FULL_KEY}={{"NAME": value, ...}} on the cell marker of the .py')
    declared = declared_parameters(path)
    for name, value in values.items():
        if name not in declared:
            raise ConfigError(str(path), f"the full profile sets {name}, which the parameters cell does not declare",
                              f"declare {name} in the parameters cell or drop it from {FULL_KEY!r}")
        if not _compatible(declared[name], value):
            raise ConfigError(str(path), f"the full profile sets {name} = {value!r}, the cell declares {declared[name]!r}",
                              "give the full profile a value of the declared type")
    return dict(values)


def parse_value(text: str) -> Any:
    """A ``-p`` value: a Python/JSON literal when it parses as one (2000, 0.5, [0, 1], None, true), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _compatible(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float) and isinstance(value, int | float):
        return not (isinstance(default, int) and isinstance(value, float) and not value.is_integer())
    return isinstance(value, type(default)) or (isinstance(default, list | tuple) and isinstance(value, list | tuple))


def resolve_parameters(
    notebooks: Sequence[Notebook], profile: str = "smoke", overrides: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The parameters papermill injects into each notebook (profile values, then overrides).

    An override is applied to every selected notebook that declares it; a name that no
    selected notebook declares, or a value of another type than the declared one, is
    refused with a :class:`KitError` listing the declared parameters.
    """
    if profile not in PROFILES:
        raise ConfigError("--profile", f"unknown profile {profile!r}", f"use one of: {', '.join(PROFILES)}")
    overrides = dict(overrides or {})
    declared = {nb.number: declared_parameters(nb.path) for nb in notebooks}
    everything = sorted({name for d in declared.values() for name in d})
    for name, value in overrides.items():
        owners = [n for n, d in declared.items() if name in d]
        if not owners:
            raise KitError(
                f"parameter {name!r}", f"is not declared by notebook(s) {', '.join(declared)}",
                f"use one of the declared parameters: {', '.join(everything)}",
            )
        for n in owners:
            if not _compatible(declared[n][name], value):
                raise KitError(
                    f"parameter {name}={value!r}", f"notebook {n} declares {name} = {declared[n][name]!r} (a {type(declared[n][name]).__name__})",
                    f"give a value of that type, e.g. -p {name} {json.dumps(declared[n][name])}",
                )
    out = {}
    for nb in notebooks:
        mine = declared[nb.number]
        values = full_parameters(nb.path) if profile == "full" else {}
        values.update({k: v for k, v in overrides.items() if k in mine})
        out[nb.number] = values
    return out


def select(only: str | Iterable[str] | None = None) -> list[Notebook]:
    """Notebooks by number: ``"03,05"``, ``["3", "05"]``, ``["07_inspector"]`` or None (all, in order)."""
    series = find_notebooks()
    if only is None:
        return list(series.values())
    items = only.split(",") if isinstance(only, str) else list(only)
    picked = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        key = item.zfill(2) if item.isdigit() else next((n for n, nb in series.items() if nb.name == item), item)
        if key not in series:
            raise ConfigError(f"--only {item}", "is not a notebook of the series", f"use numbers among {', '.join(series)}")
        if series[key] not in picked:
            picked.append(series[key])
    return sorted(picked, key=lambda nb: nb.number)


# --- running -----------------------------------------------------------------------------
@dataclasses.dataclass
class Executed:
    notebook: Notebook
    output: Path
    seconds: float
    parameters: dict[str, Any]
    metrics_path: Path

    @property
    def metrics(self) -> dict:
        return json.loads(self.metrics_path.read_text()) if self.metrics_path.exists() else {}


def run_notebooks(
    only: str | Iterable[str] | None = None,
    profile: str = "smoke",
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    cell_timeout: int | None = None,
    log=print,
) -> list[Executed]:
    """Execute the selected notebooks in order with papermill; return what each produced.

    Writes ``OUT/<name>.ipynb`` (executed), each notebook's ``OUT/<name>.metrics.json``,
    and ``OUT/timings.json`` (seconds per notebook, the profile and overrides).
    """
    import papermill

    notebooks = select(only)
    params = resolve_parameters(notebooks, profile, overrides)
    folder = out_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    timeout = cell_timeout or CELL_TIMEOUT[profile]
    done: list[Executed] = []
    for nb in notebooks:
        injected = {**params[nb.number], "OUT_DIR": str(folder)}
        output = folder / f"{nb.name}.ipynb"
        log(f"[{nb.number}] {nb.name} ({profile}{', ' + _show(params[nb.number]) if params[nb.number] else ''}) …")
        t0 = time.perf_counter()
        # the kernel inherits the variable: no progress bars in a kernel nobody watches (experiments.auto_progress)
        headless, os.environ["MCRL_HEADLESS"] = os.environ.get("MCRL_HEADLESS"), "1"
        try:
            papermill.execute_notebook(
                str(nb.path), str(output), parameters=injected, kernel_name=KERNEL, language="python",
                execution_timeout=timeout, start_timeout=START_TIMEOUT, progress_bar=False, log_output=False,
            )
        except papermill.PapermillExecutionError as err:
            raise KitError(
                f"notebook {nb.name}", f"failed in cell {err.exec_count}: {err.ename}: {err.evalue}",
                f"open the executed copy {output} to see the traceback",
            ) from None
        finally:
            if headless is None:
                os.environ.pop("MCRL_HEADLESS", None)
            else:
                os.environ["MCRL_HEADLESS"] = headless
        seconds = time.perf_counter() - t0
        done.append(Executed(nb, output, seconds, injected, folder / f"{nb.name}.metrics.json"))
        log(f"[{nb.number}] done in {seconds / 60:.1f} min → {output}")
    write_json(folder / "timings.json", {
        "profile": profile, "overrides": dict(overrides or {}),
        "notebooks": {e.notebook.number: round(e.seconds, 1) for e in done},
    })
    return done


def _show(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


# --- inside a notebook ----------------------------------------------------------------------
def write_metrics(notebook: str, metrics: Mapping[str, Any], namespace: Mapping[str, Any] | None = None) -> Path:
    """``OUT_DIR/<notebook>.metrics.json``: what the notebook measured and the parameters it ran with.

    ``namespace`` (default: the calling notebook's globals, so a cell need not pass them) holds
    ``OUT_DIR`` and every parameter the notebook declares, so the JSON records the values actually
    used (the CI profile, a profile's or an override).
    """
    if namespace is None:
        import inspect

        frame = inspect.currentframe()
        namespace = frame.f_back.f_globals if frame is not None and frame.f_back is not None else {}
    names = declared_parameters(paths.notebooks_dir() / f"{notebook}.ipynb")
    record = {"notebook": notebook, "parameters": {k: namespace.get(k) for k in names}, **metrics}
    return write_json(out_dir(namespace.get("OUT_DIR")) / f"{notebook}.metrics.json", _plain(record))


def _plain(obj: Any) -> Any:
    """JSON-ready: DataFrames → records, numpy/torch scalars → Python, NaN → None."""
    if isinstance(obj, pd.DataFrame):
        return _plain(obj.to_dict(orient="records"))
    if isinstance(obj, pd.Series):
        return _plain(obj.to_dict())
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        obj = obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


# --- the README table ---------------------------------------------------------------------
README_START, README_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"


def readme_section(seconds: Mapping[str, float], command: str) -> str:
    """The README's notebook section: the table (with measured minutes), how to open and rerun them."""
    rows = "\n".join(
        f"| {nb.number} | [`{nb.name}`](notebooks/{nb.name}.ipynb) | {nb.teaches} | "
        f"{seconds[nb.number] / 60:.1f} |" if nb.number in seconds else f"| {nb.number} | `{nb.name}` | {nb.teaches} | – |"
        for nb in find_notebooks().values()
    )
    return f"""{README_START}
## Notebooks

The kit is notebook-first: each notebook explains one idea and calls into `mcrl_kit`
for everything it computes. Each has one cell tagged `parameters` whose values are the
small CI profile (the tiny simulator, a few hundred steps, GRU backbone); figures go to
`figures/` (PNG) and each run writes `<name>.metrics.json` beside the executed notebook.

| # | notebook | what it teaches | minutes on CPU (CI profile) |
|---|---|---|---|
{rows}

Minutes: measured by `{command}` on the project's 2-core CPU machine, the series in
order into a fresh folder (05–07 reuse runs that 03–04 trained).

**Open them in JupyterLab**: `make lab` (or `.venv/bin/python -m mcrl_kit lab`), then *Run → Run All
Cells*. It opens JupyterLab (on 127.0.0.1, the kernel's messages encrypted with CurveZMQ keys the server
provisions, so ipykernel's "running over TCP without encryption" warning does not appear) on **copies**
of the notebooks under `build/lab/notebooks/`:
JupyterLab autosaves a running notebook with its outputs, and in `notebooks/` that would write outputs
into the tracked files (then `make test` fails on "committed notebook has outputs"). A copy that exists
is your work and is kept; `make lab LAB_ARGS="--refresh 06"` replaces one by the tracked version.
Progress bars are on in JupyterLab and off in headless runs (`SHOW_PROGRESS = None`: auto).

**Read them without running**: `make site` executes the series (CI profile) and renders the executed
copies to static HTML under `build/site/` (`index.html`, one page per notebook, figures embedded,
equations typeset by a local MathJax, so it reads offline; the inspector shows a static snapshot
there). `python -m mcrl_kit notebooks --out DIR --site` does the same for any profile. The method,
the protocols and the baselines are written down in [`docs/`](docs/README.md).

**Figures** are matplotlib, one definition each (`mcrl_kit/viz/plots.py`): the same PNG in JupyterLab,
in an executed copy, on the site and under `figures/`. The one plotly figure is the inspector's live
chart, for hover and zoom; its static snapshot draws the same values with matplotlib.

`07_inspector` is an interactive panel: pick a session (dropdown or slider,
"has purchase" filter) and read per step the values against the Monte-Carlo return,
the reward model's probabilities and each policy's top-k with the logged item marked.

**Edit them** as `notebooks/NN_name.py` (jupytext percent format, the source; linted by
ruff) or in JupyterLab, where jupytext (`notebooks/jupytext.toml`) saves the `.py` and its
paired `.ipynb` together — clear the outputs before the last save, the committed `.ipynb`
are output-free. After editing a `.py` elsewhere, `.venv/bin/jupytext --update --to ipynb
notebooks/NN_name.py` re-syncs its `.ipynb`; `tests/test_notebooks_paired.py` fails while a
pair disagrees. The folder is the series (a new `NN_name.py` + `.ipynb` joins it; "what it
teaches" is its first heading), and the `full` profile's values are the parameters cell's
metadata: `# %% full={{"STEPS": 40000, ...}} tags=["parameters"]`.

**Run the series headlessly** (papermill, kernel `python3`): `make demo` (all of them
on the embedded simulator; executed notebooks and metrics in `build/notebooks/`,
figures in `figures/`), or

```bash
python -m mcrl_kit notebooks                         # the CI profile, all notebooks
python -m mcrl_kit notebooks --only 03 -p STEPS 2000 # one notebook, another parameter value
python -m mcrl_kit notebooks --profile full          # real-size runs (SASRec, the RetailRocket-sized simulator)
```

A parameter a notebook does not declare is refused (papermill alone would only warn).
papermill directly works too:
`.venv/bin/papermill notebooks/03_baselines.ipynb build/03.ipynb -k python3 -p STEPS 2000`.
{README_END}"""


def update_readme(seconds: Mapping[str, float], command: str, readme: str | Path | None = None) -> Path:
    """Replace (or append) the section between the notebook markers in ``README.md``."""
    from .storage import replace_section

    path = Path(readme or paths.home() / "README.md")
    return replace_section(path, README_START, README_END, readme_section(seconds, command))
