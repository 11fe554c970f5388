"""``python -m mcrl_kit <command>`` — the kit's command line.

Every user-fixable problem is a :class:`~mcrl_kit.errors.KitError`: printed as one
paragraph on stderr, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .errors import KitError

COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {}


def command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable:
    """Register ``fn`` (which adds one sub-parser) as a command."""
    COMMANDS[fn.__name__.removeprefix("add_").replace("_", "-")] = fn
    return fn


# --- prepare -------------------------------------------------------------------------
@command
def add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="turn a source into the MDP (events, split, stats)",
        description="Prepare a data source: validate, filter by the protocol, re-index, split 80/10/10, "
        "write DIR/{events,items,sessions}.parquet, DIR/config.json and DIR/stats.json, print the statistics.",
    )
    p.add_argument("--source", default="simulator", help="simulator | retailrocket | yoochoose | events")
    p.add_argument(
        "--path", nargs="+", default=[], action="extend", metavar="P",
        help="input file(s): RetailRocket events.csv[.gz]; Yoochoose clicks then buys; one CSV/parquet event log",
    )
    p.add_argument("--scale", default="tiny", help="simulator scale: tiny | small | retailrocket | yoochoose")
    p.add_argument("--sessions", type=int, default=None, help="simulator: number of sessions (default: the scale's)")
    p.add_argument("--sample-sessions", type=int, default=200_000, help="Yoochoose: sessions to sample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--column", action="append", default=[], metavar="KIT=YOURS",
        help="events source: map a kit column to yours, e.g. --column session_id=user",
    )
    p.add_argument("--out", default=None, help="output folder (default: a cache folder under data/cache)")
    p.add_argument("--force", action="store_true", help="rebuild even if OUT already holds this dataset")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_prepare)


def _parse_columns(pairs: Sequence[str]) -> dict[str, str] | None:
    from .data.schema import EVENT_COLUMNS

    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in EVENT_COLUMNS or not value:
            raise KitError(
                f"--column {pair}", "is not KIT=YOURS with KIT one of the kit's columns",
                f"write e.g. --column session_id=user (kit columns: {', '.join(EVENT_COLUMNS)})",
            )
        out[key] = value
    return out


def run_prepare(args: argparse.Namespace) -> int:
    from .config import DataConfig
    from .data import format_stats, prepare

    config = DataConfig.from_dict(
        source=args.source, paths=tuple(args.path), scale=args.scale, sessions=args.sessions,
        seed=args.seed, sample_sessions=args.sample_sessions, columns=_parse_columns(args.column),
    )
    data = prepare(config, out=args.out, progress=not args.no_progress, force=args.force)
    print(format_stats(data.stats))
    print(f"prepared data: {data.root}")
    return 0


# --- entry point ---------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mcrl_kit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
