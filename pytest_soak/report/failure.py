"""The failure text of a soak test: limit against observed in human units, the per-phase
table, the allocation sites that grew, and notes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_soak.analysis import MetricJudgement, PhaseSummary
from pytest_soak.probes import metric_named
from pytest_soak.report.json_report import threshold_entry, threshold_parts
from pytest_soak.traffic.redaction import redact_text
from pytest_soak.units import format_bytes, format_duration, format_ms

if TYPE_CHECKING:
    from pytest_soak.report.subject import ResultView


def format_size(value: float | None, metric: str, *, signed: bool = False) -> str:
    """A figure of ``metric`` as every report shows it: bytes in KiB/MiB, any other unit as a
    number (two decimals under 10); ``-`` for none."""
    if value is None:
        return "-"
    number = float(value)
    if metric_named(metric).unit == "bytes":
        return format_bytes(number, signed=signed)
    sign = "+" if signed and number > 0 else ""
    return f"{sign}{number:,.2f}" if abs(number) < 10 else f"{sign}{number:,.0f}"


def render_explanation(result: ResultView) -> str:
    lines = [f"soak verdict: {result.verdict_text} — {result.reason}"]
    if result.baseline.get("message") and result.baseline["message"] not in result.reason:
        lines.append(f"  baseline: {result.baseline['message']}")
    latency = result.baseline.get("latency") or {}
    if latency.get("message") and latency["message"] not in result.reason:
        lines.append(f"  baseline: {latency['message']}")
    primary = result.analysis.primary
    if primary is not None:
        lines.extend(_limit_lines(primary, result))
    lines.extend(render_thresholds([threshold_entry(o) for o in result.thresholds]))
    worst = _worst_phase(result.analysis.phases)
    if worst is not None and primary is not None and primary.growth > 0:
        lines.append(
            f"  most growth in phase {worst.name!r} "
            f"({format_size(worst.floor_growth, primary.metric, signed=True)} of the measured "
            f"cycles' {format_size(primary.growth, primary.metric, signed=True)})"
        )
    run = result.run
    analysis = result.analysis
    cycles = len(analysis.cycles)
    per_cycle = (
        format_duration(run.wall_seconds / cycles) if cycles else format_duration(run.wall_seconds)
    )
    lines.append(
        f"  target: {run.target}; profile {run.profile!r} at peak {run.peak_rps:g} req/s, "
        f"{cycles} identical cycles of {analysis.cycle_requests:,} requests, each compressed "
        f"into {per_cycle} ({result.mode} mode); {run.sent:,} requests, {run.errors:,} errors"
    )
    cycle = result.traffic.get("cycle", {})
    if cycle.get("summary"):
        lines.append(f"  {cycle['summary']}")
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
    lines.extend(render_cycles(result))
    lines.extend(render_errors(result))
    if result.analysis.sites:
        replayed = max(1, result.analysis.attribution_requests)
        lines.append("")
        lines.append(
            "top allocation sites that grew in every cycle (attribution pass: the cycle "
            f"replayed 3 more times, {replayed:,} requests each, traced with 25 frames; harness "
            "and imports excluded):"
        )
        for grown in result.analysis.sites:
            growth = format_bytes(grown.growth, signed=True)
            per_request = format_bytes(grown.growth / replayed)
            lines.append(f"  {growth:>11}/cycle ({per_request}/request)  {grown.site}")
    if result.mocks:
        lines.append("")
        lines.extend(render_mocks(result.mocks))
    lines.extend(render_isolation(result.isolation))
    if result.analysis.notes:
        lines.append("")
        lines.extend(f"note: {note}" for note in result.analysis.notes)
    return redact_text("\n".join(lines))  # the service's output, error samples: no secrets


def _limit_lines(primary: MetricJudgement, result: ResultView) -> list[str]:
    metric = primary.metric
    label = metric_named(metric).label
    per_request_limit = result.settings.get("max_growth_per_request")
    max_growth = result.settings.get("max_growth")
    unit = metric_named(metric).unit
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
        f"max_growth={format_size(max_growth, metric)}"
        if max_growth is not None
        else f"noise floor {format_size(primary.threshold, metric)}"
    )
    return [
        f"  {label}: limit {limit_per_req}, {limit_total}; a cycle counts as grown above "
        f"{format_size(primary.step_noise, metric)}",
        f"  {label}: observed {per_req}, {format_size(primary.growth, metric, signed=True)} "
        f"over {primary.requests_measured:,} measured requests, grown in "
        f"{primary.cycles_grown} of {len(primary.deltas)} cycles "
        f"(floors {format_size(primary.floors[0] if primary.floors else None, metric)} → "
        f"{format_size(primary.floors[-1] if primary.floors else None, metric)}, "
        f"p={primary.p_value:.2g})",
    ]


def render_thresholds(entries: Sequence[Mapping[str, Any]], indent: str = "  ") -> list[str]:
    """The thresholds, k6-style, one a line: ``✓ p99  4.12ms <= 250ms`` (dicts as the JSON's
    ``thresholds``)."""
    if not entries:
        return []
    width = max(len(str(e.get("name", "?"))) for e in entries)
    failed = sum(1 for e in entries if not e.get("passed"))
    lines = [
        f"{indent}thresholds ({len(entries) - failed} kept, {failed} crossed; judged once on "
        "the run's phases merged over its cycles):"
    ]
    for entry in entries:
        mark, name, rest = threshold_parts(entry)
        lines.append(f"{indent}  {mark} {name:<{width}}  {rest}")
    return lines


def render_isolation(isolation: Mapping[str, Any], *, replays: bool = True) -> list[str]:
    """The isolation section (``--soak-isolate``): culprit endpoint and variation, growth per
    request with and without them, the reproduction file, every replay."""
    if not isolation:
        return []
    lines = [
        "",
        f"leak isolation (exclusion method): {isolation.get('summary', '')}",
        f"  {isolation.get('replays', 0)} compressed replays of ~"
        f"{format_duration(isolation.get('replay_seconds', 0.0))} each, "
        f"{format_duration(isolation.get('seconds', 0.0))} in all, over "
        f"{isolation.get('endpoints', 0)} endpoints (one culprit costs at most "
        f"{isolation.get('replay_bound', 0)})",
    ]
    with_it = format_bytes(isolation.get("growth_per_request_with", 0.0))
    for culprit in isolation.get("culprits", []):
        lines.append(
            f"  culprit endpoint: {culprit['endpoint']} ({culprit['requests']:,} of "
            f"{culprit['recorded']:,} recorded requests)"
        )
        growth = [f"{with_it} with it (the whole traffic)"]
        if culprit.get("without"):
            growth.append(_outcome(culprit["without"], "without it"))
        if culprit.get("alone"):
            growth.append(_outcome(culprit["alone"], "alone"))
        lines.append("    growth per request: " + ", ".join(growth))
        variation = culprit.get("variation")
        if variation:
            lines.append(
                f"  culprit variation: {variation['label']} ({variation['requests']:,} of its "
                f"{culprit['requests']:,} requests)"
            )
            lines.append("    growth per request: " + _outcome(variation["without"], "without it"))
        elif culprit.get("variations_tried"):
            tried = ", ".join(v["variation"] for v in culprit["variations_tried"])
            lines.append(
                f"  no single variation: the leak stays without each of {tried}: every kind of "
                "request to it leaks"
            )
        for mutation in culprit.get("mutations", []):
            lines.append(
                f"  mutated requests (not in the recording), {mutation['kind']}: "
                + _outcome(mutation["outcome"], "")
            )
    for group in isolation.get("interactions", []):
        lines.append(
            "  interaction: the leak needs " + " together with ".join(group) + "; none of them "
            "leaks alone, so none is named the culprit"
        )
    if isolation.get("side_effects"):
        lines.append(
            "  leaked only when replayed without other endpoints (not culprits): "
            + ", ".join(isolation["side_effects"])
        )
    cured = isolation.get("without_culprits")
    if cured and len(isolation.get("culprits", [])) > 1:
        lines.append("  without every culprit: " + _outcome(cured, ""))
    repro = isolation.get("repro")
    if repro:
        lines.append(
            f"  minimal traffic that still leaks ({repro['requests']:,} requests, secrets "
            f"redacted): {repro['path']}"
        )
    replayed = isolation.get("repro_outcome")
    if replayed:
        lines.append("    replayed alone: " + _outcome(replayed, ""))
    lines.extend(f"  note: {note}" for note in isolation.get("notes", []))
    probes = isolation.get("probes", []) if replays else []
    if probes:
        lines.append("  replays:")
        purposes = [_clip(p["purpose"], 72) for p in probes]
        width = max(len(purpose) for purpose in purposes)
        for probe, purpose in zip(probes, purposes, strict=True):
            lines.append(
                f"    {probe['number']:>2}. {purpose:<{width}}  "
                f"{'leak' if probe['leaks'] else 'no leak':<7}  "
                f"{format_bytes(probe['growth_per_request']):>10}/request  "
                f"{probe['requests']:>7,} requests  {format_duration(probe['seconds'])}"
            )
    return lines


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _outcome(outcome: Mapping[str, Any], what: str) -> str:
    verdict = "leak" if outcome["leaks"] else "no leak"
    if outcome["verdict"] == "error":
        verdict = "replay failed: " + str(outcome.get("reason", ""))[:120]
    prefix = f"{what} " if what else ""
    return (
        f"{format_bytes(outcome['growth_per_request'])} {prefix}({verdict}, replay "
        f"{outcome['number']})"
    )


def _worst_phase(phases: tuple[PhaseSummary, ...]) -> PhaseSummary | None:
    grown = [p for p in phases if p.floor_growth > 0]
    return max(grown, key=lambda p: p.floor_growth) if grown else None


def render_phase_table(result: ResultView) -> list[str]:
    phases = [dataclasses.asdict(p) for p in result.analysis.phases]
    return format_table(phase_rows(phases)) if phases else []


def phase_rows(phases: Sequence[Mapping[str, Any]], metric: str = "") -> list[tuple[str, ...]]:
    """The phase table, header first, from phases as the JSON has them (the failure text and
    the HTML report show the same table)."""
    metric = str((phases[0].get("memory_metric") if phases else "") or metric)
    header = (
        "phase", "requests", "rps target/got", "p50", "p95", "p99", "errors", "late",
        f"{metric} end (1st)", "end (last)", "low", "peak", "floor growth",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    for p in phases:
        unsent = int(p.get("unsent", 0))
        rows.append(
            (
                str(p.get("name", "?")),
                f"{int(p.get('requests', 0)):,}",
                f"{float(p.get('target_rps', 0)):.1f}/{float(p.get('achieved_rps', 0)):.1f}",
                format_ms(float(p.get("p50", 0.0))),
                format_ms(float(p.get("p95", 0.0))),
                format_ms(float(p.get("p99", 0.0))),
                f"{int(p.get('errors', 0)):,}",
                f"{int(p.get('late', 0)):,}" + (f" (+{unsent:,} unsent)" if unsent else ""),
                format_size(p.get("mem_start"), metric),
                format_size(p.get("mem_end"), metric),
                format_size(p.get("mem_floor"), metric),
                format_size(p.get("mem_peak"), metric),
                format_size(p.get("floor_growth"), metric, signed=True),
            )
        )
    return rows


def render_cycles(result: ResultView) -> list[str]:
    """One line: each cycle's floor growth of the judged metric, warm-up and extras marked."""
    cycles = result.analysis.cycles
    if not cycles:
        return []
    metric = result.analysis.metric
    parts = []
    for cycle in cycles:
        name = {"warm-up": "warm-up", "measured": f"{cycle.number}", "extra": f"{cycle.number}+"}
        parts.append(f"{name[cycle.kind]}: {format_size(cycle.growth, metric, signed=True)}")
    return ["", f"{metric_named(metric).label} growth by cycle: " + ", ".join(parts)]


def render_errors(result: ResultView) -> list[str]:
    """Requests without a good answer, by phase and kind, with the first example of each phase."""
    failing = [p for p in result.analysis.phases if p.error_kinds]
    if not failing:
        return []
    lines = ["", "errors by phase (the run went on; these requests are in the counts above):"]
    for phase in failing:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in phase.error_kinds.items())
        example = f" — e.g. {phase.error_samples[0]}" if phase.error_samples else ""
        lines.append(f"  {phase.name}: {kinds}{example}")
    return lines


def render_mocks(mocks: Mapping[str, Any] | None, *, summary: bool = True) -> list[str]:
    """One line per mock set (requests, unmatched, chaos injected; ``summary=False``: left to
    a table of the caller's), then its unmatched requests."""
    lines: list[str] = []
    for name, stats in (mocks or {}).items():
        if not isinstance(stats, Mapping) or "error" in stats:
            lines.append(f"mocks {name}: stats unavailable ({(stats or {}).get('error', '?')})")
            continue
        if summary:
            injected = stats.get("injected") or {}
            chaos = ", ".join(f"{kind} ×{count:,}" for kind, count in injected.items())
            lines.append(
                f"mocks {name} ({stats.get('transport', '?')}): {stats.get('requests', 0):,} "
                f"requests, {stats.get('unmatched_count', 0):,} unmatched (answered 404)"
                + (f"; chaos injected: {chaos}" if chaos else "")
            )
        for miss in (stats.get("unmatched") or [])[:5]:
            closest = f", closest stub {miss['closest']!r}" if miss.get("closest") else ""
            where = f"{miss['method']} {miss['path']}"
            lines.append(f"  unmatched: {where} ×{miss['count']:,}{closest}")
        more = len(stats.get("unmatched") or []) - 5 + int(stats.get("unmatched_not_listed", 0))
        if more > 0:
            lines.append(f"  … and {more:,} more unmatched requests")
    return lines


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
