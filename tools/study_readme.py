"""The README's equal-budget section, written from the studies ``benchmarks/readme_study.sh`` ran.

    .venv/bin/python tools/study_readme.py            # print the section
    .venv/bin/python tools/study_readme.py --readme   # write it into README.md (the `study` and `findings` markers)

For each stage found under ``benchmarks/results/study`` (``small-sqn``, ``small-time``,
``retailrocket-sample``): the study's own ``comparison.md`` (protocol, budget, support, table, intervals,
online table, training time), its purchase NDCG@10 figure (copied to ``figures/readme/``), and sentences
computed from its CSV files — so that no sentence can disagree with the table beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from mcrl_kit import paths
from mcrl_kit.intervals import PRIMARY
from mcrl_kit.storage import replace_section
from mcrl_kit.study import NON_RL, SCARCE

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "study"
README_START, README_END = "<!-- study:start -->", "<!-- study:end -->"
STAGES = {
    "small-sqn": "Calibrated simulator `small`, SQN protocol",
    "small-time": "Calibrated simulator `small`, time protocol",
    "retailrocket-sample": "RetailRocket sample (`../shared`), SQN protocol",
}


def method(label: str) -> str:
    """``gru-mcrl (lr=…)`` → ``mcrl``; ``recency`` → ``recency``."""
    name = label.split(" (")[0]
    return name.split("-", 1)[1] if "-" in name else name


def ordinal_rank(values: pd.Series, name: str) -> int:
    return int((values > values[name]).sum()) + 1


def support_of(folder: Path) -> tuple[float, float]:
    """Mean test clicks and purchases per split of a stage (its study.json)."""
    support = json.loads((folder / "study.json").read_text(encoding="utf-8")).get("support", {})
    if not support:
        return float("nan"), float("nan")
    return (sum(c.get("click", 0) for c in support.values()) / len(support),
            sum(c.get("purchase", 0) for c in support.values()) / len(support))


def reading(folder: Path) -> list[str]:
    """The sentences under one stage's table, each computed from its files."""
    table = pd.read_csv(folder / "comparison.csv")
    table["method"] = table["label"].map(method)
    means = table.set_index("method")
    n = len(means)
    clicks, purchases = support_of(folder)
    lines = []
    if purchases < SCARCE:  # where study.py puts the click columns first
        lines.append(f"**What this can show**: {purchases:.0f} test purchases and {clicks:.0f} test clicks per split on "
                     f"average, so one purchase hit moves a purchase metric by about {1 / max(purchases, 1):.2f}: the "
                     "click columns carry what evidence there is, and a purchase difference is noise unless its interval "
                     "says otherwise. It cannot show how the methods compare at the paper's scale.")
    for metric in PRIMARY:
        col = means[metric]
        best = col.idxmax()
        trained = col[[m not in NON_RL[:4] for m in col.index]]
        part = f"**{metric}**: best {best} ({col[best]:.3f})"
        if len(trained) and trained.idxmax() != best:
            part += f"; best trained model {trained.idxmax()} ({trained.max():.3f})"
        if "mcrl" in col.index:
            part += f"; MCRL {col['mcrl']:.3f}, {ordinal_rank(col, 'mcrl')} of {n}"
        lines.append(part + ".")
    if (folder / "intervals.csv").exists() and "mcrl" in means.index:
        intervals = pd.read_csv(folder / "intervals.csv")
        intervals["method"] = intervals["label"].map(method)
        for reference, frame in intervals.groupby("reference", sort=False):
            row = frame[frame["method"] == "mcrl"]
            if row.empty or method(reference) == "mcrl":
                continue
            row = row.iloc[0]
            parts = []
            for metric in PRIMARY:
                d, lo, hi = row[f"{metric} Δ"], row[f"{metric} low"], row[f"{metric} high"]
                verdict = ("above it beyond the test-session noise" if lo > 0 else
                           "below it beyond the test-session noise" if hi < 0 else "not distinguishable from it")
                parts.append(f"{metric} {d:+.3f} [{lo:+.3f}, {hi:+.3f}], {verdict}")
            lines.append(f"MCRL against {method(reference)}: " + "; ".join(parts) + ".")
    if (folder / "online.csv").exists():
        online = pd.read_csv(folder / "online.csv").set_index("policy")
        best = online["reward"].idxmax()
        part = f"**Online**: the most reward per session goes to {best} ({online.loc[best, 'reward']:.3f})"
        mcrl = [p for p in online.index if method(p) == "mcrl"]
        if mcrl:
            m = online.loc[mcrl[0]]
            part += (f"; MCRL's slates earn {m['reward']:.3f} [{m['reward low']:.3f}, {m['reward high']:.3f}] against "
                     f"{online.loc['logging (no recommender)', 'reward']:.3f} for the users left alone")
        lines.append(part + ".")
    return lines


FINDINGS_START, FINDINGS_END = "<!-- findings:start -->", "<!-- findings:end -->"


def findings(root: Path = RESULTS) -> str:
    """The README's opening summary: per finished stage, who wins each primary metric and where MCRL stands
    against the control, computed from the same files as the section (so the two cannot disagree)."""
    lines = []
    for stage, title in STAGES.items():
        folder = root / stage
        if not (folder / "comparison.csv").exists():
            continue
        table = pd.read_csv(folder / "comparison.csv")
        table["method"] = table["label"].map(method)
        col = table.set_index("method")
        parts = []
        for metric in PRIMARY:
            part = f"{metric}: best {col[metric].idxmax()}"
            if "mcrl" in col.index:
                part += f", MCRL {ordinal_rank(col[metric], 'mcrl')} of {len(col)}"
            parts.append(part)
        verdicts = []
        if (folder / "intervals.csv").exists() and "mcrl" in col.index:
            intervals = pd.read_csv(folder / "intervals.csv")
            intervals["method"] = intervals["label"].map(method)
            for reference, frame in intervals.groupby("reference", sort=False):
                row = frame[frame["method"] == "mcrl"]
                if row.empty:
                    continue
                row = row.iloc[0]
                words = [("above" if row[f"{m} low"] > 0 else "below" if row[f"{m} high"] < 0 else "indistinguishable from")
                         for m in PRIMARY]
                verdicts.append(f"against {method(reference)} MCRL is {words[0]} it on purchases and {words[1]} it on clicks")
        clicks, purchases = support_of(folder)
        lines.append(f"- **{title}** ({clicks:,.0f} test clicks and {purchases:,.0f} purchases per split): "
                     + "; ".join(parts) + (f"; {'; '.join(verdicts)}" if verdicts else "") + ".")
    if not lines:
        return "(the equal-budget study has not run yet: see \"Every method on one budget\")"
    return ("What the equal-budget study finds (details, budgets and intervals in \"Every method on one budget\" "
            "below; \"above\"/\"below\" mean a 95 % paired bootstrap interval that excludes 0):\n\n" + "\n".join(lines))


def section(root: Path = RESULTS, figures: Path | None = None) -> str:
    parts = []
    for stage, title in STAGES.items():
        folder = root / stage
        if not (folder / "comparison.md").exists():
            parts.append(f"### {title}\n\n(not run yet: `bash benchmarks/readme_study.sh` runs it)")
            continue
        study = json.loads((folder / "study.json").read_text(encoding="utf-8"))
        text = (folder / "comparison.md").read_text(encoding="utf-8").strip()
        figure = ""
        if figures is not None and (folder / "comparison-purchase-NDCG10.png").exists():
            figures.mkdir(parents=True, exist_ok=True)
            name = f"study-{stage}-purchase-NDCG10.png"
            shutil.copyfile(folder / "comparison-purchase-NDCG10.png", figures / name)
            figure = f"\n\n![purchase NDCG@10 per method, {title}](figures/readme/{name})"
        inits = f"init seed{'s' if len(study['seeds']) > 1 else ''} {' '.join(map(str, study['seeds']))}"
        seeds = (f"One split (by session end time) × {inits}" if study.get("protocol") == "time" else
                 f"Split seeds {' '.join(map(str, study['split_seeds']))} × {inits}")
        parts.append(f"### {title}\n\n{seeds}. {text}{figure}\n\nRead off the table (means over the final runs):\n\n"
                     + "\n".join(f"- {line}" for line in reading(folder)))
    return "\n\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(RESULTS))
    ap.add_argument("--readme", action="store_true", help="write the section into README.md and its figures")
    args = ap.parse_args()
    text = section(Path(args.root), paths.home() / "figures" / "readme" if args.readme else None)
    print(text)
    if args.readme:
        readme = paths.home() / "README.md"
        replace_section(readme, README_START, README_END, f"{README_START}\n{text}\n{README_END}")
        replace_section(readme, FINDINGS_START, FINDINGS_END,
                        f"{FINDINGS_START}\n{findings(Path(args.root))}\n{FINDINGS_END}")


if __name__ == "__main__":
    main()
