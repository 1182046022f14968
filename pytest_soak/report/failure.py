"""The failure text of a soak test: limit against observed in human units, the per-phase
table, the allocation sites that grew, and notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_soak.analysis import LABELS, UNITS, MetricJudgement, PhaseSummary
from pytest_soak.units import format_bytes, format_duration, format_ms

if TYPE_CHECKING:
    from pytest_soak.result import SoakResult


def _size(value: float | None, metric: str, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if UNITS.get(metric) == "bytes":
        return format_bytes(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,.0f}"


def render_explanation(result: SoakResult) -> str:
    lines = [f"soak verdict: {result.verdict.upper()} — {result.reason}"]
    if result.baseline.get("message") and result.baseline["message"] not in result.reason:
        lines.append(f"  baseline: {result.baseline['message']}")
    primary = result.analysis.primary
    if primary is not None:
        lines.extend(_limit_lines(primary, result))
    worst = _worst_phase(result.analysis.phases)
    if worst is not None and primary is not None and primary.growth > 0:
        lines.append(
            f"  most growth in phase {worst.name!r} "
            f"({_size(worst.floor_growth, primary.metric, signed=True)} of the floors' "
            f"{_size(primary.observed_growth, primary.metric, signed=True)})"
        )
    run = result.run
    lines.append(
        f"  target: {run.target}; profile {run.profile!r} at peak {run.peak_rps:g} req/s, "
        f"compressed into {format_duration(run.wall_seconds)} ({result.mode} mode); "
        f"{run.sent:,} requests, {run.errors:,} errors"
    )
    if run.aborted:
        lines.append(f"  the run stopped early: {run.aborted}")
        if result.service_output:
            lines.append("  last output of the service:")
            lines.extend("    " + line for line in result.service_output.splitlines()[-15:])
    other = [j for j in result.analysis.judgements if j is not primary]
    for judgement in other:
        lines.append(f"  {judgement.metric}: {judgement.verdict} — {judgement.reason}")
    lines.append("")
    lines.extend(render_phase_table(result))
    if result.analysis.sites:
        replayed = max(1, result.analysis.attribution_requests)
        lines.append("")
        lines.append(
            f"top allocation sites that grew (attribution pass: {replayed:,} more requests traced "
            "with 25 frames; harness excluded):"
        )
        for grown in result.analysis.sites:
            growth = format_bytes(grown.growth, signed=True)
            per_request = format_bytes(grown.growth / replayed)
            lines.append(f"  {growth:>11} ({per_request}/request)  {grown.site}")
    if result.analysis.notes:
        lines.append("")
        lines.extend(f"note: {note}" for note in result.analysis.notes)
    return "\n".join(lines)


def _limit_lines(primary: MetricJudgement, result: SoakResult) -> list[str]:
    metric = primary.metric
    label = LABELS.get(metric, metric)
    per_request_limit = result.settings.get("max_growth_per_request")
    max_growth = result.settings.get("max_growth")
    unit = UNITS.get(metric, "")
    per_req = (
        f"{format_bytes(primary.slope)}/request"
        if unit == "bytes"
        else f"{primary.slope:.2f}/request"
    )
    limit_per_req = (
        f"max_growth_per_request={format_bytes(per_request_limit)}"
        if per_request_limit is not None
        else "max_growth_per_request=0 B (default: any steady growth)"
    )
    limit_total = (
        f"max_growth={_size(max_growth, metric)}"
        if max_growth is not None
        else f"noise floor {_size(primary.threshold, metric)}"
    )
    return [
        f"  {label}: limit {limit_per_req}, {limit_total}",
        f"  {label}: observed {per_req}, {_size(primary.growth, metric, signed=True)} "
        f"over {primary.requests_measured:,} measured requests "
        f"(floors {_size(primary.floors[0] if primary.floors else None, metric)} → "
        f"{_size(primary.floors[-1] if primary.floors else None, metric)}, "
        f"p={primary.p_value:.2g})",
    ]


def _worst_phase(phases: tuple[PhaseSummary, ...]) -> PhaseSummary | None:
    grown = [p for p in phases if p.floor_growth > 0]
    return max(grown, key=lambda p: p.floor_growth) if grown else None


def render_phase_table(result: SoakResult) -> list[str]:
    phases = result.analysis.phases
    if not phases:
        return []
    metric = phases[0].memory_metric
    header = (
        "phase", "requests", "rps target/got", "p50", "p95", "p99", "errors", "late",
        f"{metric} start", "end", "floor", "peak", "floor growth",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    for p in phases:
        rows.append(
            (
                p.name,
                f"{p.requests:,}",
                f"{p.target_rps:.1f}/{p.achieved_rps:.1f}",
                format_ms(p.p50),
                format_ms(p.p95),
                format_ms(p.p99),
                f"{p.errors:,}",
                f"{p.late:,}" + (f" (+{p.unsent:,} unsent)" if p.unsent else ""),
                _size(p.mem_start, metric),
                _size(p.mem_end, metric),
                _size(p.mem_floor, metric),
                _size(p.mem_peak, metric),
                _size(p.floor_growth, metric, signed=True),
            )
        )
    return format_table(rows)


def format_table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
