"""The soak section of pytest's terminal summary: one row per soak test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_soak.analysis import UNITS
from pytest_soak.report.failure import format_table
from pytest_soak.units import format_bytes, format_duration

if TYPE_CHECKING:
    from pytest_soak.result import SoakResult


def summary_lines(results: Sequence[SoakResult]) -> list[str]:
    rows: list[tuple[str, ...]] = [
        ("test", "verdict", "metric", "growth", "per request", "requests", "errors", "late", "time")
    ]
    for result in results:
        primary = result.analysis.primary
        metric = primary.metric if primary else "-"
        bytes_unit = UNITS.get(metric) == "bytes"
        growth = "-"
        per_request = "-"
        if primary is not None:
            growth = (
                format_bytes(primary.growth, signed=True)
                if bytes_unit
                else f"{primary.growth:+,.0f}"
            )
            per_request = format_bytes(primary.slope) if bytes_unit else f"{primary.slope:.2f}"
        rows.append(
            (
                result.test_id,
                result.verdict.upper(),
                metric,
                growth,
                per_request,
                f"{result.run.sent:,}",
                f"{result.run.errors:,}",
                f"{result.run.late:,}",
                format_duration(result.run.elapsed),
            )
        )
    lines = format_table(rows)
    for result in results:
        if result.verdict in ("suspicious", "inconclusive"):
            lines.append(f"{result.test_id}: {result.verdict}: {result.reason}")
    return lines
