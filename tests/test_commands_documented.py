"""Every ``python -m mcrl_kit`` command quoted in README.md or run by ``benchmarks/*.sh`` parses.

README: each command line in a code block is split like a shell would (continuations
joined, comments dropped) and parsed by the kit's own parser; ``train`` and ``prepare``
lines are also turned into their configs (every setting checked, nothing run). Scripts:
each ``benchmarks/*.sh`` runs with ``PY`` pointing at a stand-in that only records its
arguments (so their shell functions and loops expand for real), then every recorded
command is checked the same way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mcrl_kit.cli import build_parser, data_config, run_config

ROOT = Path(__file__).resolve().parents[1]


def check(argv: list[str], where: str) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as err:
        raise AssertionError(f"{where}: `{shlex.join(argv)}` does not parse (exit {err.code})") from None
    if args.command == "train":
        run_config(args)
    elif args.command == "prepare":
        data_config(args)


def readme_commands() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    blocks += ["\n".join(m) for m in re.findall(r"((?:\n {4}\S.*)+)", text)]  # indented code blocks
    found = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if "-m mcrl_kit " not in line:
                continue
            tokens = shlex.split(line, comments=True)
            if "mcrl_kit" in tokens and "-m" in tokens and tokens[tokens.index("mcrl_kit") - 1] == "-m":
                found.append((line.strip(), tokens[tokens.index("mcrl_kit") + 1:]))
    return found


COMMANDS = readme_commands()


def test_the_readme_quotes_commands():
    assert len(COMMANDS) >= 10 and {argv[0] for _, argv in COMMANDS} >= {"prepare", "train", "compare", "diagnose"}


@pytest.mark.parametrize("line,argv", COMMANDS, ids=[c[0][:60] for c in COMMANDS])
def test_every_readme_command_parses(line, argv):
    check(argv, "README.md")


SCRIPTS = {  # script: runs with these environments (each covering a branch)
    "readme_study.sh": [{}, {"STAGES": "tiny-sqn"}],
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_command_of_the_benchmark_scripts_parses(script, tmp_path):
    assert sorted(SCRIPTS) == sorted(p.name for p in (ROOT / "benchmarks").glob("*.sh") if p.name != "make_peer_env.sh")
    log = tmp_path / "argv.jsonl"
    shim = tmp_path / "py"
    shim.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    shim.chmod(0o755)
    for extra in SCRIPTS[script]:
        env = {**os.environ, "PY": str(shim), "OUT": str(tmp_path / "out"), "DATA": str(tmp_path / "data"), **extra}
        proc = subprocess.run(["bash", str(ROOT / "benchmarks" / script)], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(c[:2] == ["-m", "mcrl_kit"] for c in calls)
    for argv in calls:
        check(argv[2:], script)


def test_the_check_can_fail():
    with pytest.raises(AssertionError, match="does not parse"):
        check(["train", "--data", "D", "--out", "R", "--steps", "many"], "here")
    with pytest.raises(Exception, match="unknown key 'nope'"):
        check(["train", "--data", "D", "--out", "R", "--set", "model.nope=1"], "here")
