"""The soak section of pytest's terminal summary: one row per soak test, then what needs a look.

Works on result dicts (``SoakResult.to_dict()``), the form in which results also travel from
pytest-xdist workers to the controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_soak.driver.records import LATE_THRESHOLD
from pytest_soak.probes import metric_named
from pytest_soak.probes.session import PROBE_NOTE
from pytest_soak.report.failure import format_table, render_mocks
from pytest_soak.report.json_report import threshold_parts, verdict_text
from pytest_soak.traffic.redaction import redact_text
from pytest_soak.units import format_bytes, format_duration


def summary_lines(results: Sequence[Mapping[str, Any]]) -> list[str]:
    rows: list[tuple[str, ...]] = [
        ("test", "verdict", "metric", "growth", "per request", "requests", "errors", "late", "time")
    ]
    for result in results:
        metric = str(result.get("metric", "-"))
        bytes_unit = metric_named(metric).unit == "bytes"
        growth = float(result.get("growth_bytes", 0.0))
        slope = float(result.get("growth_per_request_bytes", 0.0))
        run = result["run"]
        rows.append(
            (
                str(result["test_id"]),
                verdict_text(result),
                metric,
                format_bytes(growth, signed=True) if bytes_unit else f"{growth:+,.0f}",
                format_bytes(slope) if bytes_unit else f"{slope:.2f}",
                f"{run['sent']:,}",
                f"{run['errors']:,}",
                f"{run['late']:,}",
                format_duration(float(run["elapsed_seconds"])),
            )
        )
    lines = format_table(rows)
    for result in results:
        thresholds = threshold_line(result)
        if thresholds:
            lines.append(f"{result['test_id']}: {thresholds}")
        if result["verdict"] in ("suspicious", "inconclusive"):
            lines.append(f"{result['test_id']}: {result['verdict']}: {result['reason']}")
        # a probe that could not measure the run (the agent did not answer): said even on a pass
        for note in result.get("notes") or ():
            if str(note).startswith(PROBE_NOTE):
                lines.append(f"{result['test_id']}: {note}")
        late = _late_reason(result)
        if late:
            lines.append(f"{result['test_id']}: {late}")
        errors = _error_kinds(result)
        if errors:
            lines.append(f"{result['test_id']}: errors: {errors}")
        lines.extend(f"{result['test_id']}: {line}" for line in render_mocks(result.get("mocks")))
        baseline = result.get("baseline") or {}
        if baseline.get("note"):
            lines.append(f"{result['test_id']}: baseline: {baseline['note']}")
    return [redact_text(line) for line in lines]  # mocks' unmatched URLs: no secrets


def threshold_line(result: Mapping[str, Any]) -> str:
    """``thresholds ✓ p99 4.12ms <= 250ms, ✗ errors 2.00%, limit <= 1%``: one line per test."""
    entries = list(result.get("thresholds") or ())
    if not entries:
        return ""
    parts = []
    for entry in entries:
        mark, name, rest = threshold_parts(entry)
        parts.append(f"{mark} {name} {rest}")
    return "thresholds " + ", ".join(parts)


#: A share of late requests worth explaining in the summary.
LATE_SHARE = 0.1


def _late_reason(result: Mapping[str, Any]) -> str:
    """Why many requests left late: every in-flight slot was taken (the service answers slower
    than the rate needs), or the harness's event loop was busy."""
    run = result["run"]
    sent, late, capped = int(run["sent"]), int(run["late"]), int(run.get("capped", 0))
    if not sent or late < LATE_SHARE * sent:
        return ""
    concurrency = (result.get("settings") or {}).get("concurrency", "?")
    why = []
    if capped:
        why.append(
            f"{capped:,} found all {concurrency} in-flight slots taken (the service answers "
            "slower than the rate needs: raise concurrency= or lower peak_rps=)"
        )
    if capped < late:
        why.append(
            "the others found the harness's event loop busy (a loaded machine; in process, "
            "the app's own work runs on that loop)"
        )
    return (
        f"late: {late:,} of {sent:,} requests ({100 * late / sent:.0f}%) left more than "
        f"{LATE_THRESHOLD * 1000:.0f} ms after their time: " + "; ".join(why)
    )


def _error_kinds(result: Mapping[str, Any]) -> str:
    """``reset 12 (spike 10, sustained 2), timeout 3 (spike)``: what failed, and in which phase."""
    by_kind: dict[str, dict[str, int]] = {}
    for phase in result.get("phases") or ():
        for kind, count in (phase.get("error_kinds") or {}).items():
            by_kind.setdefault(kind, {})[str(phase["name"])] = int(count)
    parts = []
    for kind, phases in sorted(by_kind.items(), key=lambda item: -sum(item[1].values())):
        where = ", ".join(f"{name} {count:,}" for name, count in phases.items())
        parts.append(f"{kind} {sum(phases.values()):,} ({where})")
    return ", ".join(parts)
