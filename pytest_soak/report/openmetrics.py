"""OpenMetrics text (``--soak-openmetrics``): the session's soak figures, one sample per test,
for nightly dashboards (a Pushgateway, or node_exporter's textfile collector).

Works on result dicts (``SoakResult.to_dict()``), as the terminal summary does. Every family
has ``# TYPE``, ``# UNIT`` (where it has one) and ``# HELP``; the text ends with ``# EOF``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_soak.analysis import FAILING_VERDICTS, VERDICT_ORDER
from pytest_soak.driver.records import LATE_THRESHOLD
from pytest_soak.files import write_atomic
from pytest_soak.probes import metric_named
from pytest_soak.report.json_report import primary_judgement, public_result


@dataclass(frozen=True)
class Family:
    """One metric family: its name (without ``_total`` for a counter), type, unit and help, and
    how to read its value from a result dict (None: no sample for that test)."""

    name: str
    type: str
    unit: str
    help: str
    value: Callable[[Mapping[str, Any]], float | None]
    by_metric: bool = False  # labelled with the judged metric too


def _bytes_metric(result: Mapping[str, Any]) -> bool:
    return metric_named(str(result.get("metric", ""))).unit == "bytes"


def _figure(key: str, *, in_bytes: bool) -> Callable[[Mapping[str, Any]], float | None]:
    def read(result: Mapping[str, Any]) -> float | None:
        if _bytes_metric(result) != in_bytes:
            return None
        return _number(result.get(key))

    return read


def _run(key: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda result: _number((result.get("run") or {}).get(key))


def _p_value(result: Mapping[str, Any]) -> float | None:
    judgement = primary_judgement(result)
    return None if judgement is None else _number(judgement.get("p_value"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _growth(key: str, name: str, what: str) -> tuple[Family, Family]:
    """A growth figure's two families: ``NAME_bytes`` for a judged metric in bytes, ``NAME``
    (no unit) for any other."""
    return (
        Family(
            f"{name}_bytes", "gauge", "bytes", f"{what} of the judged memory metric",
            _figure(key, in_bytes=True), by_metric=True,
        ),
        Family(
            name, "gauge", "", f"{what} of a judged metric that is not in bytes",
            _figure(key, in_bytes=False), by_metric=True,
        ),
    )  # fmt: skip


_GROWTH = _growth("growth_bytes", "soak_growth", "growth over the measured cycles")
_PER_REQUEST = _growth(
    "growth_per_request_bytes", "soak_growth_per_request",
    "steady growth per request (trend slope)",
)  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    _GROWTH[0],
    _PER_REQUEST[0],
    _GROWTH[1],
    _PER_REQUEST[1],
    Family(
        "soak_p_value", "gauge", "",
        "Mann-Kendall p-value of the judged metric's trend against requests",
        _p_value, by_metric=True,
    ),
    Family("soak_requests", "counter", "", "requests sent in the soak run", _run("sent")),
    Family(
        "soak_errors", "counter", "",
        "requests that failed (connection errors, timeouts, 5xx answers)", _run("errors"),
    ),
    Family(
        "soak_late", "counter", "",
        f"requests sent more than {LATE_THRESHOLD * 1000:.0f} ms after their intended time",
        _run("late"),
    ),
    Family(
        "soak_elapsed_seconds", "gauge", "seconds",
        "wall time of the soak run, pauses for floors included", _run("elapsed_seconds"),
    ),
)  # fmt: skip


def escape_label(value: str) -> str:
    """A label value as OpenMetrics quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs) + "}"


def _format(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render_openmetrics(results: Sequence[Mapping[str, Any]]) -> str:
    """The OpenMetrics text of ``results``: the figures rounded as in the JSON, test ids and
    metric names as labels, secrets in them masked."""
    ordered = sorted((public_result(r) for r in results), key=lambda r: str(r.get("test_id", "")))
    lines: list[str] = []
    verdict_lines: list[str] = []
    for result in ordered:
        test = str(result.get("test_id", ""))
        verdict = str(result.get("verdict", ""))
        for state in VERDICT_ORDER:
            labels = _labels([("test", test), ("verdict", state)])
            verdict_lines.append(f"soak_verdict{labels} {int(state == verdict)}")
    if verdict_lines:
        lines += [
            "# TYPE soak_verdict gauge",
            "# HELP soak_verdict the soak verdict: 1 for the test's, 0 for the others "
            f"({', '.join(FAILING_VERDICTS)} fail the test)",
            *verdict_lines,
        ]
    for family in FAMILIES:
        samples = []
        sample_name = family.name + ("_total" if family.type == "counter" else "")
        for result in ordered:
            value = family.value(result)
            if value is None:
                continue
            pairs = [("test", str(result.get("test_id", "")))]
            if family.by_metric:
                pairs.append(("metric", str(result.get("metric", ""))))
            samples.append(f"{sample_name}{_labels(pairs)} {_format(value)}")
        if not samples:
            continue
        lines.append(f"# TYPE {family.name} {family.type}")
        if family.unit:
            lines.append(f"# UNIT {family.name} {family.unit}")
        lines.append(f"# HELP {family.name} {family.help}")
        lines += samples
    threshold_lines = []
    for result in ordered:
        for threshold in result.get("thresholds") or ():
            pairs = [
                ("test", str(result.get("test_id", ""))),
                ("threshold", str(threshold["name"])),
            ]
            threshold_lines.append(
                f"soak_threshold_passed{_labels(pairs)} {int(bool(threshold.get('passed')))}"
            )
    if threshold_lines:
        lines += [
            "# TYPE soak_threshold_passed gauge",
            "# HELP soak_threshold_passed 1 for a threshold kept, 0 for one crossed (it fails "
            "the test)",
            *threshold_lines,
        ]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_openmetrics(path: str | os.PathLike[str], results: Sequence[Mapping[str, Any]]) -> Path:
    """Write the OpenMetrics text atomically (``write_atomic``): a textfile collector never
    reads half a file."""
    return write_atomic(path, render_openmetrics(results))
