"""The HTML report (``--soak-report``, ``pytest-soak report``): one self-contained file for a
session, rendered from the same result dicts as the JSON (``json_report.result_to_dict``).

It opens offline: uPlot's JS and CSS (``assets/``, MIT, docs/dependencies.md) and the report's own
script are inlined, and the chart data travels as a JSON block in the page. Every text that comes
from a result (test ids, endpoints, phase names, error samples: recorded traffic) is escaped.

Charts: per test, the judged metrics over time (samples as a line, the background shaded by
phase, cycle boundaries marked and the warm-up greyed, the floors at the checkpoints as points,
the judgement's Theil–Sen trend through the judged floors); per phase, target against achieved
rate and latency p50/p99 as grouped bars (the JSON's phases are aggregates over every cycle, so
one bar per phase, not a time series). The rest is tables.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_soak.analysis import FAILING_VERDICTS
from pytest_soak.files import write_atomic
from pytest_soak.probes import metric_named
from pytest_soak.report.failure import format_size, phase_rows, render_isolation, render_mocks
from pytest_soak.report.json_report import (
    primary_judgement,
    redact_values,
    threshold_parts,
    thresholds_crossed,
    verdict_text,
)
from pytest_soak.units import format_bytes, format_duration


def write_html(
    path: str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]],
    *,
    cut_short: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write the report for ``results`` atomically (``write_atomic``); returns the path."""
    return write_atomic(path, render_html(results, cut_short=cut_short))


def render_html(
    results: Sequence[Mapping[str, Any]],
    *,
    title: str = "pytest-soak report",
    cut_short: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The whole page: overview, then one section per test, then (after Ctrl-C) what each run
    cut short had measured. Secret values in what the results quote (a token in an error
    sample's query) are masked, as in the JSON."""
    # masked, not rounded: the JSON's rounding to whole ms would flatten sub-ms latencies
    masked = [redact_values(result) for result in results]
    ordered = sorted(masked, key=lambda r: str(r.get("test_id", "")))
    cut = [redact_values(measured) for measured in cut_short]
    charts: list[dict[str, Any]] = []
    sections = [_test_section(n, result, charts) for n, result in enumerate(ordered)]
    sections += [_cut_short_section(n, measured, charts) for n, measured in enumerate(cut)]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{len(ordered)} soak test{"s" if len(ordered) != 1 else ""}; '
        f"generated {generated} by pytest-soak</p>",
        _overview(ordered),
        *sections,
    ]
    if not ordered and not cut:
        body.append("<p>No soak results in this session.</p>")
    data = json.dumps({"charts": charts}, separators=(",", ":"), allow_nan=False)
    return _PAGE.format(
        title=_e(title),
        uplot_css=_asset("uPlot.min.css"),
        report_css=_asset("report.css"),
        body="\n".join(body),
        data=_script_safe(data),
        uplot_js=_asset("uPlot.iife.min.js"),
        report_js=_asset("report.js"),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{uplot_css}</style>
<style>{report_css}</style>
</head>
<body>
{body}
<script type="application/json" id="soak-data">{data}</script>
<script>{uplot_js}</script>
<script>{report_js}</script>
</body>
</html>
"""


def _asset(name: str) -> str:
    return (
        resources.files("pytest_soak.report").joinpath("assets").joinpath(name).read_text("utf-8")
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _script_safe(text: str) -> str:
    """JSON inside ``<script>``: no ``</script>`` or ``<!--`` can end or change the block."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _anchor(n: int) -> str:
    return f"test-{n}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, css: str = "") -> str:
    """An HTML table; every cell escaped. Cells after the first are right-aligned numbers
    unless the header says otherwise (``css``)."""
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    lines = [f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>']
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def _verdict_kind(verdict: str) -> str:
    """The colour of a verdict: failing, passing but worth a look, or ok."""
    return "bad" if verdict in FAILING_VERDICTS else "warn" if verdict != "ok" else "good"


def _verdict_badge(verdict: str) -> str:
    return f'<span class="verdict {_verdict_kind(verdict)}">{_e(verdict.upper())}</span>'


def _crossed_note(result: Mapping[str, Any]) -> str:
    """Beside the (memory) verdict's badge: the thresholds crossed, if any."""
    crossed = thresholds_crossed(result)
    if not crossed:
        return ""
    return f' <span class="verdict bad">{crossed} THRESHOLD{"S" if crossed != 1 else ""} ✗</span>'


# -- the overview -----------------------------------------------------------------------------


def _overview(results: Sequence[Mapping[str, Any]]) -> str:
    if not results:
        return ""
    rows = []
    header = ("test", "verdict", "metric", "growth", "per request", "requests", "errors", "time")
    for n, result in enumerate(results):
        metric = str(result.get("metric", "-"))
        run = result.get("run") or {}
        rows.append(
            "<tr>"
            f'<td><a href="#{_anchor(n)}">{_e(result.get("test_id", "?"))}</a></td>'
            f"<td>{_verdict_badge(str(result.get('verdict', '?')))}{_crossed_note(result)}</td>"
            f"<td>{_e(metric)}</td>"
            f"<td>{_e(format_size(result.get('growth_bytes', 0.0), metric, signed=True))}</td>"
            f"<td>{_e(format_size(result.get('growth_per_request_bytes', 0.0), metric))}</td>"
            f"<td>{int(run.get('sent', 0)):,}</td>"
            f"<td>{int(run.get('errors', 0)):,}</td>"
            f"<td>{_e(format_duration(float(run.get('elapsed_seconds', 0.0))))}</td>"
            "</tr>"
        )
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    return (
        '<section class="overview"><h2>Overview</h2>'
        f'<table class="overview"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


# -- one test ---------------------------------------------------------------------------------


def _test_section(n: int, result: Mapping[str, Any], charts: list[dict[str, Any]]) -> str:
    parts = [
        f'<section class="test" id="{_anchor(n)}">',
        f"<h2>{_e(result.get('test_id', '?'))}</h2>",
        _banner(result),
        _run_facts(result),
    ]
    memory = _memory_charts(n, result)
    if memory:
        parts.append("<h3>Memory over time</h3>")
        parts.append(
            '<p class="hint">Samples as a line; background shaded by phase (legend below each '
            "chart), cycle boundaries dashed and the warm-up cycle greyed; floors read at each "
            "checkpoint as points; the trend (Theil–Sen slope per request) through the judged "
            "floors.</p>"
        )
        for chart in memory:
            charts.append(chart)
            parts.append(_chart_div(chart))
    load = _load_charts(n, result)
    if load:
        parts.append("<h3>Rate and latency per phase</h3>")
        parts.append(
            '<p class="hint">Each phase over every cycle of the run (the JSON\'s per-phase '
            "aggregates): one group of bars per phase.</p>"
        )
        parts.append('<div class="pair">')
        for chart in load:
            charts.append(chart)
            parts.append(_chart_div(chart))
        parts.append("</div>")
    parts.extend(
        section
        for section in (
            _thresholds(result),
            _phase_table(result),
            _cycles_table(result),
            _errors(result),
            _sites(result),
            _isolation(result),
            _baseline(result),
            _mocks(result),
            _notes(result),
        )
        if section
    )
    parts.append("</section>")
    return "\n".join(parts)


def _cut_short_section(n: int, measured: Mapping[str, Any], charts: list[dict[str, Any]]) -> str:
    """A run cut short by Ctrl-C: how far it got and its memory samples and checkpoint floors.
    It was not judged: no verdict, no trend."""
    cycle, planned = int(measured.get("cycle_reached", 0)), int(measured.get("cycles_planned", 0))
    where = "the warm-up" if cycle == 0 else f"cycle {cycle} of {planned - 1}"
    phase = measured.get("phase_reached")
    facts = [
        (
            "stopped",
            f"by Ctrl-C after {format_duration(float(measured.get('elapsed_seconds', 0.0)))} of "
            f"{format_duration(float(measured.get('planned_seconds', 0.0)))}, in {where}"
            + (f" ({phase})" if phase else ""),
        ),
        (
            "requests",
            f"{int(measured.get('sent', 0)):,} sent, {int(measured.get('errors', 0)):,} errors, "
            f"{int(measured.get('late', 0)):,} late",
        ),
    ]
    traffic = measured.get("traffic") or {}
    if traffic.get("path"):
        facts.append(("traffic", f"{traffic['path']} ({traffic.get('format', '?')})"))
    warmup = int((measured.get("settings") or {}).get("warmup_cycles", 1))
    view = {
        **measured,
        "judgements": [{"metric": m, "verdict": "not judged"} for m in measured.get("metrics", ())],
        "cycles": [{"kind": "warm-up" if k < warmup else "measured"} for k in range(planned)],
    }
    parts = [
        f'<section class="test cut-short" id="cut-short-{n}">',
        f"<h2>{_e(measured.get('test_id', '?'))}</h2>",
        '<div class="banner warn"><p class="headline"><span class="verdict warn">CUT SHORT</span> '
        "Interrupted while it ran: what it had measured is shown, not judged.</p></div>",
        _facts_table(facts),
    ]
    for chart in _memory_charts(f"cut-{n}", view):
        charts.append(chart)
        parts.append(_chart_div(chart))
    parts.append("</section>")
    return "\n".join(parts)


def _chart_div(chart: Mapping[str, Any]) -> str:
    return (
        f'<figure class="chart" id="{_e(chart["id"])}"><figcaption>{_e(chart["title"])}'
        "</figcaption></figure>"
    )


def _banner(result: Mapping[str, Any]) -> str:
    """The verdict, why, and limit against observed for the judged metric."""
    verdict = str(result.get("verdict", "?"))
    kind = "bad" if thresholds_crossed(result) else _verdict_kind(verdict)
    lines = [
        f'<div class="banner {kind}"><p class="headline">'
        f"{_verdict_badge(verdict)}{_crossed_note(result)} {_e(result.get('reason', ''))}</p>"
    ]
    primary = _primary(result)
    if primary is not None:
        metric = str(primary.get("metric", ""))
        label = metric_named(metric).label
        settings = result.get("settings") or {}
        per_request = settings.get("max_growth_per_request")
        max_growth = settings.get("max_growth")
        limit = (
            f"max_growth_per_request={format_size(per_request, metric)}"
            if per_request is not None
            else f"max_growth_per_request={format_size(0, metric)} (default: any steady growth)"
        )
        total = (
            f"max_growth={format_size(max_growth, metric)}"
            if max_growth is not None
            else f"noise floor {format_size(primary.get('threshold'), metric)}"
        )
        floors = primary.get("floors") or []
        deltas = [b - a for a, b in itertools.pairwise(floors)]
        grown = sum(d > float(primary.get("step_noise", 0.0)) for d in deltas)
        lines.append(
            '<table class="limits"><tbody>'
            f"<tr><th>limit</th><td>{_e(label)}: {_e(limit)}, {_e(total)}; a cycle counts as "
            f"grown above {_e(format_size(primary.get('step_noise'), metric))}</td></tr>"
            f"<tr><th>observed</th><td>{_e(label)}: "
            f"{_e(format_size(primary.get('slope'), metric))}/request, "
            f"{_e(format_size(primary.get('growth'), metric, signed=True))} over "
            f"{int(primary.get('requests_measured', 0)):,} measured requests, grown in "
            f"{grown} of {len(deltas)} cycles (floors "
            f"{_e(format_size(floors[0] if floors else None, metric))} → "
            f"{_e(format_size(floors[-1] if floors else None, metric))}, "
            f"p={float(primary.get('p_value', 1.0)):.2g})</td></tr>"
        )
        others = [j for j in result.get("judgements") or () if j is not primary]
        for other in others:
            lines.append(
                f"<tr><th>{_e(other.get('metric', '?'))}</th><td>{_e(other.get('verdict', '?'))}"
                f" — {_e(other.get('reason', ''))}</td></tr>"
            )
        lines.append("</tbody></table>")
    baseline = result.get("baseline") or {}
    if baseline.get("message"):
        lines.append(f'<p class="baseline-line">baseline: {_e(baseline["message"])}</p>')
    lines.append("</div>")
    return "".join(lines)


def _primary(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The judged metric's judgement, else the first (a result without one named)."""
    judgements: list[Mapping[str, Any]] = list(result.get("judgements") or ())
    return primary_judgement(result) or (judgements[0] if judgements else None)


def _run_facts(result: Mapping[str, Any]) -> str:
    run = result.get("run") or {}
    settings = result.get("settings") or {}
    cycles = result.get("cycles") or []
    facts = [
        ("target", run.get("target", "?")),
        ("profile", f"{run.get('profile', '?')} at peak {float(run.get('peak_rps', 0)):g} req/s"),
        (
            "cycles",
            f"{len(cycles)} identical cycles of {int(result.get('cycle_requests', 0)):,} requests "
            f"({sum(c.get('kind') == 'warm-up' for c in cycles)} warm-up), "
            f"{result.get('mode', settings.get('mode', '?'))} mode",
        ),
        (
            "requests",
            f"{int(run.get('sent', 0)):,} sent of {int(run.get('planned_requests', 0)):,} "
            f"planned, {int(run.get('errors', 0)):,} errors, {int(run.get('late', 0)):,} late",
        ),
        (
            "time",
            f"{format_duration(float(run.get('elapsed_seconds', 0.0)))} "
            f"(paused {format_duration(float(run.get('paused_seconds', 0.0)))} at checkpoints)",
        ),
    ]
    traffic = result.get("traffic") or {}
    if traffic.get("path"):
        facts.append(
            ("traffic", f"{traffic['path']} ({traffic.get('format', '?')}, "
             f"{int(traffic.get('exchanges', 0)):,} exchanges)")
        )  # fmt: skip
    if run.get("aborted"):
        facts.append(("stopped early", run["aborted"]))
    return _facts_table(facts)


def _facts_table(facts: Iterable[tuple[str, Any]]) -> str:
    """Label and value rows, every cell escaped (a test's run facts, a cut-short run's)."""
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


# -- chart data -------------------------------------------------------------------------------


def _cycle_spans(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cycles in wall time, from the checkpoints: a cycle ends where the phase index wraps."""
    checkpoints = list(result.get("checkpoints") or ())
    cycles = list(result.get("cycles") or ())
    spans: list[dict[str, Any]] = []
    start = float(checkpoints[0]["wall_time"]) if checkpoints else 0.0
    for i in range(1, len(checkpoints)):
        last = i == len(checkpoints) - 1
        if last or int(checkpoints[i + 1]["phase"]) <= int(checkpoints[i]["phase"]):
            number = len(spans)
            kind = str(cycles[number]["kind"]) if number < len(cycles) else "measured"
            end = float(checkpoints[i]["wall_time"])
            spans.append(
                {"from": start, "to": end, "number": number, "kind": kind, "checkpoint": i}
            )
            start = end
    return spans


def _phase_spans(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each stretch between two checkpoints, by the phase that ended at the later one."""
    checkpoints = list(result.get("checkpoints") or ())
    return [
        {
            "from": float(before["wall_time"]),
            "to": float(after["wall_time"]),
            "phase": int(after["phase"]),
        }
        for before, after in itertools.pairwise(checkpoints)
    ]


def _trend(
    judgement: Mapping[str, Any], checkpoints: Sequence[Mapping[str, Any]], ends: Sequence[int]
) -> list[tuple[float, float]]:
    """The judgement's slope through its floors, at the checkpoints that read them: the warm-up's
    last cycle end, then each measured cycle's end (the floors' order in the judgement)."""
    floors = [float(f) for f in judgement.get("floors") or ()]
    slope = float(judgement.get("slope", 0.0))
    metric = str(judgement.get("metric"))
    if len(floors) < 2 or len(ends) < len(floors):
        return []
    # the judged floors are the cycle-end floors from the warm-up's last on: find where they
    # start; if a probe judged other readings than the checkpoints', the last cycle ends
    values = [(checkpoints[i].get("floor") or {}).get(metric) for i in ends]
    first = next(
        (k for k in range(len(values)) if values[k : k + len(floors)] == floors),
        len(ends) - len(floors),
    )
    points = ends[first : first + len(floors)]
    requests = [float(checkpoints[i]["requests"]) for i in points]
    # Theil–Sen's intercept: the median residual
    intercept = statistics.median(f - slope * r for f, r in zip(floors, requests, strict=True))
    return [
        (float(checkpoints[i]["wall_time"]), intercept + slope * r)
        for i, r in zip(points, requests, strict=True)
    ]


def _memory_charts(n: int | str, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One chart per judged metric: samples, floors, trend, and the phase/cycle backgrounds."""
    checkpoints = list(result.get("checkpoints") or ())
    samples = list(result.get("samples") or ())
    phases = [str(p.get("name", "?")) for p in result.get("phases") or ()]
    cycle_spans = _cycle_spans(result)
    phase_spans = _phase_spans(result)
    ends = [span["checkpoint"] for span in cycle_spans]
    charts = []
    for k, judgement in enumerate(result.get("judgements") or ()):
        metric = str(judgement.get("metric", "?"))
        rows: list[tuple[float, float | None, float | None, float | None]] = []
        for sample in samples:
            if sample.get(metric) is not None:
                rows.append((float(sample["t"]), float(sample[metric]), None, None))
        for checkpoint in checkpoints:
            floor = (checkpoint.get("floor") or {}).get(metric)
            if floor is not None:
                rows.append((float(checkpoint["wall_time"]), None, float(floor), None))
        for t, value in _trend(judgement, checkpoints, ends):
            rows.append((t, None, None, value))
        if not rows:
            continue
        rows.sort(key=lambda row: row[0])
        facts = metric_named(metric)
        charts.append(
            {
                "id": f"chart-{n}-memory-{k}",
                "kind": "memory",
                "title": f"{facts.label} ({metric}): {judgement.get('verdict', '?')}",
                "unit": facts.unit,
                "x": [round(row[0], 3) for row in rows],
                "series": [
                    {"label": f"{metric} samples", "values": [_num(r[1]) for r in rows]},
                    {"label": "floor at checkpoint", "values": [_num(r[2]) for r in rows]},
                    {
                        "label": f"trend {format_size(judgement['slope'], metric)}/request"
                        if judgement.get("slope") is not None
                        else "trend (not judged)",
                        "values": [_num(r[3]) for r in rows],
                    },
                ],
                "phases": phases,
                "phaseSpans": phase_spans,
                "cycles": cycle_spans,
            }
        )
    return charts


def _num(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return round(value, 3) if abs(value) < 1000 else round(value)


def _load_charts(n: int, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    phases = list(result.get("phases") or ())
    if not phases:
        return []
    names = [str(p.get("name", "?")) for p in phases]

    def column(key: str, scale: float = 1.0) -> list[float | None]:
        return [_num(float(p.get(key) or 0.0) * scale) for p in phases]

    return [
        {
            "id": f"chart-{n}-rate",
            "kind": "bars",
            "title": "request rate per phase (req/s)",
            "unit": "req/s",
            "categories": names,
            "series": [
                {"label": "target req/s", "values": column("target_rps")},
                {"label": "achieved req/s", "values": column("achieved_rps")},
            ],
        },
        {
            "id": f"chart-{n}-latency",
            "kind": "bars",
            "title": "latency per phase (ms, from the intended send time)",
            "unit": "ms",
            "categories": names,
            "series": [
                {"label": "p50 ms", "values": column("p50", 1000.0)},
                {"label": "p99 ms", "values": column("p99", 1000.0)},
            ],
        },
    ]


# -- tables -----------------------------------------------------------------------------------


def _thresholds(result: Mapping[str, Any]) -> str:
    """The thresholds, k6-style: kept or crossed, the figure observed against the limit."""
    entries = list(result.get("thresholds") or ())
    if not entries:
        return ""
    rows = []
    for entry in entries:
        mark, name, rest = threshold_parts(entry)
        rows.append(
            "<tr>"
            f'<td class="{"good" if entry.get("passed") else "bad"}">{_e(mark)}</td>'
            f"<td>{_e(name)}</td>"
            f"<td>{_e(entry.get('phase') or 'whole run')}</td>"
            f"<td>{_e(rest)}</td>"
            f"<td>{int(entry.get('requests', 0)):,}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{_e(cell)}</th>" for cell in ("", "threshold", "phase", "observed, limit", "requests")
    )
    return (
        f"<h3>Thresholds ({_e(verdict_text(result))})</h3>"
        f'<table class="thresholds"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _phase_table(result: Mapping[str, Any]) -> str:
    phases = list(result.get("phases") or ())
    if not phases:
        return ""
    header, *rows = phase_rows(phases, str(result.get("metric", "")))
    return "<h3>Phases</h3>" + _table(header, rows, css="numbers")


def _cycles_table(result: Mapping[str, Any]) -> str:
    cycles = list(result.get("cycles") or ())
    if not cycles:
        return ""
    metric = str(result.get("metric", ""))
    rows = [
        (
            c.get("number", "?"),
            c.get("kind", "?"),
            f"{int(c.get('requests', 0)):,}",
            format_size(c.get("floor"), metric),
            format_size(c.get("growth"), metric, signed=True),
        )
        for c in cycles
    ]
    header = ("cycle", "kind", "requests", f"{metric} floor at its end", "growth")
    return "<h3>Cycles</h3>" + _table(header, rows, css="numbers")


def _errors(result: Mapping[str, Any]) -> str:
    """Errors by kind, with the phases they happened in and the first example of each."""
    by_kind: dict[str, dict[str, int]] = {}
    examples: list[tuple[str, str]] = []
    for phase in result.get("phases") or ():
        for kind, count in (phase.get("error_kinds") or {}).items():
            by_kind.setdefault(str(kind), {})[str(phase.get("name"))] = int(count)
        for sample in (phase.get("error_samples") or ())[:1]:
            examples.append((str(phase.get("name")), str(sample)))
    if not by_kind:
        return ""
    rows = [
        (kind, f"{sum(phases.values()):,}", ", ".join(f"{p} {c:,}" for p, c in phases.items()))
        for kind, phases in sorted(by_kind.items(), key=lambda item: -sum(item[1].values()))
    ]
    parts = ["<h3>Errors by kind</h3>", _table(("kind", "requests", "by phase"), rows)]
    if examples:
        parts.append(_table(("phase", "first example"), examples, css="text"))
    return "".join(parts)


def _sites(result: Mapping[str, Any]) -> str:
    sites = list(result.get("sites") or ())
    if not sites:
        return ""
    rows = [
        (
            format_bytes(float(s.get("growth_bytes", 0.0)), signed=True),
            format_bytes(float(s.get("size_bytes", 0.0))),
            s.get("site", "?"),
        )
        for s in sites
    ]
    return "<h3>Allocation sites that grew in every cycle</h3>" + _table(
        ("growth per cycle", "size", "site"), rows, css="sites"
    )


def _isolation(result: Mapping[str, Any]) -> str:
    isolation = result.get("isolation") or {}
    if not isolation:
        return ""
    text = [line for line in render_isolation(isolation, replays=False) if line]  # a table below
    parts = ["<h3>Leak isolation</h3>", f'<pre class="text">{_e(chr(10).join(text))}</pre>']
    probes = list(isolation.get("probes") or ())
    if probes:
        rows = [
            (
                p.get("number", "?"),
                p.get("purpose", ""),
                "leak" if p.get("leaks") else "no leak",
                f"{format_bytes(float(p.get('growth_per_request', 0.0)))}/request",
                f"{int(p.get('requests', 0)):,}",
                format_duration(float(p.get("seconds", 0.0))),
            )
            for p in probes
        ]
        header = ("replay", "purpose", "outcome", "growth", "requests", "time")
        parts.append(_table(header, rows, css="replays"))
    return "".join(parts)


def _baseline(result: Mapping[str, Any]) -> str:
    baseline = result.get("baseline") or {}
    if not baseline:
        return ""
    metric = str(result.get("metric", ""))
    rows: list[tuple[str, str]] = []
    for key in ("status", "expected", "allowed", "observed"):
        if key in baseline:
            value = baseline[key]
            shown = format_size(value, metric) if isinstance(value, (int, float)) else str(value)
            rows.append((key, shown))
    for key in ("message", "note", "path", "test"):
        if baseline.get(key):
            rows.append((key, str(baseline[key])))
    environment = baseline.get("environment")
    if isinstance(environment, Mapping):
        rows.append(("environment", ", ".join(f"{k}={v}" for k, v in environment.items() if v)))
    if not rows:
        return ""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<h3>Baseline comparison</h3><table class="facts"><tbody>{body}</tbody></table>'


def _mocks(result: Mapping[str, Any]) -> str:
    mocks = result.get("mocks") or {}
    if not mocks:
        return ""
    rows = []
    for name, stats in mocks.items():
        if not isinstance(stats, Mapping) or "error" in stats:
            continue
        injected = stats.get("injected") or {}
        rows.append(
            (
                name,
                stats.get("transport", "?"),
                f"{int(stats.get('requests', 0)):,}",
                f"{int(stats.get('unmatched_count', 0)):,}",
                ", ".join(f"{kind} ×{count:,}" for kind, count in injected.items()) or "-",
            )
        )
    parts = ["<h3>Mocks and chaos</h3>"]
    if rows:
        header = ("mock set", "transport", "requests", "unmatched (404)", "chaos injected")
        parts.append(_table(header, rows))
    lines = render_mocks(mocks, summary=False)  # the table has each set's figures
    if lines:
        parts.append(f'<pre class="text">{_e(chr(10).join(lines))}</pre>')
    return "".join(parts)


def _notes(result: Mapping[str, Any]) -> str:
    notes = [str(note) for note in result.get("notes") or ()]
    if not notes:
        return ""
    return "<h3>Notes</h3><ul>" + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>"
