"""``pytest-soak report`` and ``pytest-soak compare``: the results of a soak session
(``--soak-json`` files) rendered and compared."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_soak.analysis.verdicts import FAILING_VERDICTS, VERDICT_ORDER
from pytest_soak.cli.common import WORSE, InputError, plural
from pytest_soak.errors import SoakError
from pytest_soak.report.failure import format_size

#: Verdicts that pass a test (``compare``'s "worse": from one of these to a failing one).
PASSING = tuple(v for v in VERDICT_ORDER if v not in FAILING_VERDICTS)

#: ``compare``'s defaults: a rise of growth per request must pass both to count as worse.
DEFAULT_TOLERANCE = "64B"
DEFAULT_TOLERANCE_PERCENT = 25.0


def add_commands(commands: Any) -> None:
    """``report`` and ``compare`` on the ``pytest-soak`` parser's subcommands."""
    report = commands.add_parser(
        "report",
        help="render the HTML report from a results file",
        description="Render the self-contained HTML report (as --soak-report writes it) from a "
        "results file written by --soak-json.",
    )
    report.add_argument("results", type=Path, help="a results file (--soak-json)")
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write the report (default: the results file with .html)",
    )
    report.set_defaults(run=_report)

    compare = commands.add_parser(
        "compare",
        help="compare two results files test by test; exit 1 when a test got worse",
        description="Per test: growth and verdict in each file and what changed. Exit code 1 "
        "when a test's verdict went from passing (ok, suspicious, inconclusive) to failing "
        "(leak, regression, error), or its growth per request rose by more than both "
        "tolerances; 0 otherwise; 2 on bad input.",
    )
    compare.add_argument("old", type=Path, help="the earlier results file (--soak-json)")
    compare.add_argument("new", type=Path, help="the later results file (--soak-json)")
    compare.add_argument(
        "--tolerance",
        default=DEFAULT_TOLERANCE,
        metavar="SIZE",
        help=f"a rise of growth per request up to SIZE is noise (default {DEFAULT_TOLERANCE}; "
        "e.g. 16B, 1KiB)",
    )
    compare.add_argument(
        "--tolerance-percent",
        type=float,
        default=DEFAULT_TOLERANCE_PERCENT,
        metavar="PERCENT",
        help="a rise of growth per request up to PERCENT of the old figure is noise "
        f"(default {DEFAULT_TOLERANCE_PERCENT:g})",
    )
    compare.set_defaults(run=_compare)


def load_results(path: Path) -> list[dict[str, Any]]:
    """The result dicts of a ``--soak-json`` file, or an ``InputError`` that says why not."""
    results: list[dict[str, Any]] = load_document(path)["results"]
    return results


def load_document(path: Path) -> dict[str, Any]:
    """A ``--soak-json`` document with its ``results`` checked, or an ``InputError``."""
    hint = "give a results file written by pytest --soak-json=PATH"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; {hint}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file; {hint}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not text (not UTF-8), so not JSON; {hint}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); {hint}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {hint}"
        ) from None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and "test_id" in r for r in results
    ):
        raise InputError(
            f"{path}: JSON, but not pytest-soak results (no 'results' list of tests with a "
            f"'test_id'); {hint}"
        )
    checked: dict[str, Any] = document
    return checked


def _report(args: argparse.Namespace) -> int:
    from pytest_soak.report.html_report import write_html

    document = load_document(args.results)
    results = document["results"]
    cut = [m for m in document.get("cut_short") or () if isinstance(m, dict)]
    output: Path = args.output or args.results.with_suffix(".html")
    try:
        written = write_html(output, results, cut_short=cut)
    except OSError as exc:
        raise InputError(
            f"{output}: cannot write the report ({exc.strerror}); choose another path with -o"
        ) from None
    print(f"soak report written to {written} ({len(results)} {plural(len(results), 'test')})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pytest_soak.units import parse_size

    try:
        tolerance = parse_size(args.tolerance, name="--tolerance")
    except SoakError as exc:
        raise InputError(str(exc)) from None
    old = {str(r["test_id"]): r for r in load_results(args.old)}
    new = {str(r["test_id"]): r for r in load_results(args.new)}
    worse = 0
    for test_id in sorted(old.keys() | new.keys()):
        lines, got_worse = compare_one(
            old.get(test_id), new.get(test_id), tolerance, args.tolerance_percent
        )
        print(test_id)
        for line in lines:
            print(f"  {line}")
        worse += got_worse
    total = len(old.keys() | new.keys())
    if worse:
        print(f"{worse} of {total} {plural(total, 'test')} got worse")
        return WORSE
    print(f"no test got worse ({total} compared)")
    return 0


def compare_one(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    tolerance: float,
    tolerance_percent: float,
) -> tuple[list[str], bool]:
    """The lines for one test, and whether it got worse."""
    if old is None or new is None:
        there = new if old is None else old
        assert there is not None
        which = "new" if old is None else "old"
        gone = "only in the new file (a new test)" if old is None else "not in the new file"
        return [f"{which}: {_figures(there)}", f"changed: {gone}"], False
    lines = [f"old: {_figures(old)}", f"new: {_figures(new)}"]
    changes: list[str] = []
    worse = False
    before, after = str(old.get("verdict", "?")), str(new.get("verdict", "?"))
    if before != after:
        verdict_worse = before in PASSING and after in FAILING_VERDICTS
        worse |= verdict_worse
        changes.append(f"verdict {before} → {after}" + (" (worse)" if verdict_worse else ""))
    metric_old, metric_new = str(old.get("metric", "")), str(new.get("metric", ""))
    if metric_old != metric_new:
        changes.append(f"judged metric {metric_old} → {metric_new}: growth not compared")
    else:
        was = float(old.get("growth_per_request_bytes") or 0.0)
        now = float(new.get("growth_per_request_bytes") or 0.0)
        rise = now - was
        allowed = max(tolerance, abs(was) * tolerance_percent / 100)
        if rise > allowed:
            worse = True
            changes.append(
                f"growth per request {_per_request(was, metric_new)} → "
                f"{_per_request(now, metric_new)}: rose {_per_request(rise, metric_new)}, over "
                f"the tolerance {_per_request(allowed, metric_new)} (worse)"
            )
        elif rise != 0:
            changes.append(
                f"growth per request {_per_request(was, metric_new)} → "
                f"{_per_request(now, metric_new)} (within the tolerance "
                f"{_per_request(allowed, metric_new)})"
            )
    lines.append("changed: " + ("; ".join(changes) if changes else "nothing"))
    return lines, worse


def _figures(result: Mapping[str, Any]) -> str:
    metric = str(result.get("metric", "?"))
    growth = float(result.get("growth_bytes") or 0.0)
    per_request = float(result.get("growth_per_request_bytes") or 0.0)
    return (
        f"{str(result.get('verdict', '?')).upper():<12} {metric} "
        f"{format_size(growth, metric, signed=True)} ({_per_request(per_request, metric)})"
    )


def _per_request(value: float, metric: str) -> str:
    return f"{format_size(value, metric)}/request"
