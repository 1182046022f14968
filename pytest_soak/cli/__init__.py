"""``pytest-soak``: the shell's way to recordings and to the results of soak sessions.

    pytest-soak inspect traffic.har                 endpoints, kinds of request, rate, skipped
    pytest-soak convert traffic.har -o out.jsonl    native JSON Lines: --redact, filters, --sample
    pytest-soak redact traffic.jsonl                the recording with its secrets removed
    pytest-soak report results.json -o report.html  the HTML report, as --soak-report writes it
    pytest-soak compare old.json new.json           per test: growth and verdict, what changed

``compare`` exits 1 when a test got worse: its verdict went from passing (ok, suspicious,
inconclusive) to failing (leak, regression, error), or its growth per request rose by more than
the tolerance (both ``--tolerance``, default 64 B per request, and ``--tolerance-percent``,
default 25 % of the old figure); 0 otherwise. Bad input (a missing file, not a recording, not a
results file) is one line on stderr saying which file, what is wrong and what to do, and exit
code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_soak.cli import recordings, results
from pytest_soak.cli.common import BAD_INPUT, WORSE, InputError

__all__ = ["BAD_INPUT", "WORSE", "InputError", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except InputError as exc:
        print(f"pytest-soak {args.command}: {exc}", file=sys.stderr)
        return BAD_INPUT
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-soak",
        description="Inspect, convert and redact traffic recordings; render and compare "
        "pytest-soak results (files written by --soak-json).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    recordings.add_commands(commands)
    results.add_commands(commands)
    return parser
