"""Results tables: one run's metrics as a row, many runs as the paper's table.

Runs that differ only in their seed are merged into one row of ``mean ± std`` (sample
standard deviation over seeds); the label names the backbone, the algorithm and any
algorithm setting that differs from its default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .config import KS
from .errors import ConfigError, DataError
from .runs import group_key
from .storage import read_json_object

KINDS = ("purchase", "click")
MEASURES = ("HR", "NDCG")
COLUMNS = [f"{kind} {m}@{k}" for kind in KINDS for m in MEASURES for k in KS]


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (cells as shown by ``str``)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, sep, *body])


def metrics_row(split_metrics: dict) -> dict[str, float]:
    """``{"purchase HR@5": …, …}`` from ``metrics[split]`` (missing values → NaN)."""
    return {
        f"{kind} {m}@{k}": float(split_metrics.get(kind, {}).get(f"{m}@{k}", np.nan))
        for kind in KINDS
        for m in MEASURES
        for k in KS
    }


def run_label(config: dict) -> str:
    """``sasrec-sqn`` plus the algorithm settings that differ from their defaults."""
    from .algos import algo_class

    algo = config["algo"]
    defaults = algo_class(algo).Config().to_dict()
    changed = {k: v for k, v in config.get("algo_params", {}).items() if defaults.get(k) != v}
    label = f"{config['model']['backbone']}-{algo}" if algo_class(algo).trainable else algo  # no backbone
    if changed:
        # tuned floats at 4 significant digits (the run's config.json keeps them whole)
        label += " (" + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(changed.items())) + ")"
    return label


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_run_config(path: Path, config: dict, fix: str) -> None:
    """What the tables read of a run's config.json: the algorithm, the backbone, the train settings."""
    from .algos import ALGOS

    problem = None
    if config.get("algo") not in ALGOS:
        problem = f"names no known algorithm ({config.get('algo')!r}; the kit's: {', '.join(ALGOS)})"
    elif not isinstance(config.get("model"), dict) or not isinstance(config["model"].get("backbone"), str):
        problem = "has no model.backbone"
    elif not isinstance(config.get("train"), dict):
        problem = "has no train settings object"
    elif not isinstance(config.get("algo_params", {}), dict):
        problem = "has algo_params that is not an object"
    if problem:
        raise DataError(str(path), problem, fix)


def _check_metrics(path: Path, metrics: dict, split: str | None, fix: str) -> None:
    """``metrics[split]`` = {kind: {"HR@k": number, …}}; ``params`` a count."""
    if split is not None:
        part = metrics.get(split)
        if not isinstance(part, dict):
            raise DataError(str(path), f"has no {split!r} scores object (found {part!r:.60})", fix)
        for kind, scores in part.items():
            if not isinstance(scores, dict) or not all(_is_number(v) for v in scores.values()):
                raise DataError(str(path), f"{split}.{kind} is not an object of numbers (found {scores!r:.60})", fix)
    if "params" in metrics and not (_is_number(metrics["params"])):
        raise DataError(str(path), f"params is not a number (found {metrics['params']!r:.60})", fix)


def load_run_metrics(run: str | Path, split: str | None = None) -> tuple[dict, dict]:
    """``(config, metrics)`` of a finished run, each checked (and ``metrics[split]`` when given).

    A file missing, not JSON or of the wrong shape is a :class:`~mcrl_kit.errors.KitError`
    naming it; nothing else of the run is read.
    """
    run = Path(run)
    for name in ("config.json", "metrics.json"):
        if not (run / name).is_file():
            raise ConfigError(str(run), f"has no {name} (not a finished run)", "pass folders written by `train --out`")
    fix = f"train the run again (`python -m mcrl_kit train … --out {run} --overwrite`), or leave {run} out"
    config = read_json_object(run / "config.json", fix, error=DataError)
    _check_run_config(run / "config.json", config, fix)
    metrics = read_json_object(run / "metrics.json", fix, error=DataError)
    _check_metrics(run / "metrics.json", metrics, split, fix)
    return config, metrics


def grouped_runs(runs: list[str | Path]) -> dict[str, list[tuple[dict, str]]]:
    """Run folders as ``compare`` merges them (seeds of one configuration together), by row label:
    ``{label: [(config, folder), …]}``; a label two configurations share gets ``#2``, ``#3``…"""
    groups: dict[str, list[tuple[dict, str]]] = {}
    for run in runs:
        config, _ = load_run_metrics(run)
        groups.setdefault(group_key(config), []).append((config, str(run)))
    out: dict[str, list[tuple[dict, str]]] = {}
    for members in groups.values():
        label = run_label(members[0][0])
        n = 2
        while label in out:
            label, n = f"{run_label(members[0][0])} #{n}", n + 1
        out[label] = members
    return out


def compare_runs(runs: list[str | Path], split: str = "test", merge_seeds: bool = True) -> pd.DataFrame:
    """A table: one row per configuration (seeds merged) with mean and std columns.

    Columns: ``label``, ``seeds``, ``params``, then for each metric column ``c`` both
    ``c`` (mean) and ``c std``.
    """
    groups: dict[str, list[tuple[dict, dict, str]]] = {}
    for run in runs:
        config, metrics = load_run_metrics(run, split)
        key = group_key(config) if merge_seeds else str(run)
        groups.setdefault(key, []).append((config, metrics, str(run)))
    rows = []
    for members in groups.values():
        config = members[0][0]
        values = pd.DataFrame([metrics_row(m[split]) for _, m, _ in members])
        label = run_label(config)
        if not merge_seeds:  # one row per run: say which seed it is
            label += f" (seed {config.get('train', {}).get('seed', '?')})"
        row = {"label": label, "seeds": len(members), "params": members[0][1].get("params", 0)}
        for col in COLUMNS:
            row[col] = float(values[col].mean())
            row[f"{col} std"] = float(values[col].std(ddof=1)) if len(members) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def format_compare(table: pd.DataFrame, markdown: bool = False, digits: int = 4, columns=COLUMNS) -> str:
    """The table as text: ``mean ± std`` cells when several seeds were merged; ``columns``: which metrics, in order."""
    shown = pd.DataFrame({"model": table["label"], "seeds": table["seeds"], "params": table["params"].map(lambda v: f"{v:,}")})
    for col in columns:
        mean, std = table[col], table[f"{col} std"]
        shown[col] = [
            f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if n > 1 else "") for m, s, n in zip(mean, std, table["seeds"])
        ]
    return markdown_table(shown) if markdown else shown.to_string(index=False)


def styled_compare(table: pd.DataFrame, digits: int = 3, columns=None):
    """The table as a pandas Styler for notebooks: metric columns grouped by event kind (purchase | click),
    cells ``mean ± std`` over seeds, the best mean of each column in bold, ``digits`` decimals.

    ``columns``: the metric columns shown (default: every ``COLUMNS`` entry the table has).
    """
    columns = [c for c in (columns or COLUMNS) if c in table.columns]
    lead = [("", "model"), ("", "seeds")] + ([("", "params")] if "params" in table else [])
    head = pd.MultiIndex.from_tuples(lead + [tuple(c.split(" ", 1)) for c in columns])
    cells = [[label, int(n)] for label, n in zip(table["label"], table["seeds"])]
    if "params" in table:
        for row, n in zip(cells, table["params"]):
            row.append(f"{int(n):,}")
    best = []
    for c in columns:
        mean = table[c].to_numpy(dtype=float)
        std = table[f"{c} std"].to_numpy(dtype=float) if f"{c} std" in table else np.zeros(len(table))
        for row, m, sd, n in zip(cells, mean, std, table["seeds"]):
            row.append("–" if np.isnan(m) else f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if n > 1 else ""))
        best.append(np.isfinite(mean) & (mean == np.nanmax(mean)) if np.isfinite(mean).any() else np.zeros(len(mean), bool))
    shown = pd.DataFrame(cells, columns=head)
    bold = pd.DataFrame(False, index=shown.index, columns=head)
    for c, mask in zip(head[len(lead):], best):
        bold[c] = mask
    return (shown.style.hide(axis="index")
            .apply(lambda _: np.where(bold, "font-weight: bold", ""), axis=None)
            .set_table_styles([{"selector": "th.col_heading.level0", "props": "text-align: center"}]))


BIAS_COLUMNS = ("mean_value", "mean_mc_return", "mean_bias", "std_bias", "mean_true_value", "mean_bias_true")


def compare_bias(runs: list[str | Path], split: str = "test") -> pd.DataFrame:
    """Mean value bias per configuration (seeds merged), from ``RUN/diagnose_<split>.json``."""
    groups: dict[str, list[tuple[dict, dict]]] = {}
    for run in runs:
        path = Path(run) / f"diagnose_{split}.json"
        if not path.exists():
            raise ConfigError(str(run), f"has no diagnose_{split}.json", f"run `python -m mcrl_kit diagnose --run {run}` first")
        config, _ = load_run_metrics(run)
        fix = f"run `python -m mcrl_kit diagnose --run {run} --split {split}` again"
        summary = read_json_object(path, fix, error=DataError)
        wrong = [c for c in BIAS_COLUMNS if c in summary and not _is_number(summary[c])]
        if wrong:
            raise DataError(str(path), f"{wrong[0]} is not a number (found {summary[wrong[0]]!r:.60})", fix)
        groups.setdefault(group_key(config), []).append((config, summary))
    rows = []
    for members in groups.values():
        row = {"label": run_label(members[0][0]), "seeds": len(members)}
        for col in BIAS_COLUMNS:
            vals = [m[1][col] for m in members if col in m[1]]
            row[col] = float(np.mean(vals)) if vals else np.nan
            if col.startswith("mean_bias"):
                row[f"{col} seed-std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def format_bias(table: pd.DataFrame, markdown: bool = False, digits: int = 4) -> str:
    shown = pd.DataFrame({"model": table["label"], "seeds": table["seeds"]})
    for col in BIAS_COLUMNS:
        if table[col].isna().all():
            continue
        if f"{col} seed-std" in table:
            shown[col] = [
                f"{m:+.{digits}f}" + (f" ± {s:.{digits}f}" if n > 1 else "")
                for m, s, n in zip(table[col], table[f"{col} seed-std"], table["seeds"])
            ]
        else:
            shown[col] = table[col].map(lambda v: f"{v:.{digits}f}")
    return markdown_table(shown) if markdown else shown.to_string(index=False)
