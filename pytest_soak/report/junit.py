"""JUnit XML properties (``pytest --junitxml``): a soak result's figures as ``<property>``
elements of its test case, so CI systems that read JUnit XML show them.

Works on result dicts (``SoakResult.to_dict()``), rounded as in the JSON, secrets masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_soak.report.json_report import primary_judgement, public_result


def junit_properties(result: Mapping[str, Any]) -> list[tuple[str, object]]:
    """``[("soak_verdict", "ok"), ("soak_metric", "heap"), ("soak_growth_bytes", 4121), …]``:
    verdict, judged metric, growth, growth per request, p-value (when the trend was tested),
    requests, errors and late requests; then each threshold, ``soak_threshold_<name>``:
    ``✓ 212ms <= 250ms``."""
    rounded = public_result(result)
    run = rounded.get("run") or {}
    judgement = primary_judgement(rounded)
    p_value = None if judgement is None else judgement.get("p_value")
    properties: list[tuple[str, object]] = [
        ("soak_verdict", rounded.get("verdict")),
        ("soak_metric", rounded.get("metric")),
        ("soak_growth_bytes", rounded.get("growth_bytes")),
        ("soak_growth_per_request_bytes", rounded.get("growth_per_request_bytes")),
    ]
    if p_value is not None:
        properties.append(("soak_p_value", p_value))
    properties += [
        ("soak_requests", run.get("sent")),
        ("soak_errors", run.get("errors")),
        ("soak_late", run.get("late")),
    ]
    for entry in rounded.get("thresholds") or ():  # soak_threshold_p99[spike] = ✓ 212ms <= 250ms
        properties.append((f"soak_threshold_{entry.get('name', '?')}", entry.get("text")))
    return properties
