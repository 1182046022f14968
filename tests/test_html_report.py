"""The HTML report (``report.html_report``): sections, escaping, offline, chart data, size."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_soak.report.html_report import render_html, write_html
from tests.helpers import soak_result_dict


def _chart_data(page: str) -> list[dict[str, Any]]:
    match = re.search(r'<script type="application/json" id="soak-data">(.*?)</script>', page, re.S)
    assert match is not None
    charts: list[dict[str, Any]] = json.loads(match.group(1))["charts"]
    return charts


def test_every_section_of_a_full_result() -> None:
    page = render_html([soak_result_dict()])
    for heading in (
        "Overview",
        "Memory over time",
        "Rate and latency per phase",
        "Phases",
        "Cycles",
        "Errors by kind",
        "Allocation sites that grew in every cycle",
        "Leak isolation",
        "Baseline comparison",
        "Mocks and chaos",
        "Notes",
    ):
        assert f">{heading}</h" in page, heading
    # the banner: limit against observed, in human units
    assert "max_growth_per_request=0 B (default: any steady growth)" in page
    # the observed row itself ("130 B/request" alone is also the chart's trend label)
    assert "<th>observed</th><td>Python heap (tracemalloc): 130 B/request, " in page
    assert '<span class="verdict bad">LEAK</span>' in page
    # the overview links each test to its section
    assert '<a href="#test-0">tests/test_shop.py::test_shop</a>' in page


def test_sections_without_data_are_left_out() -> None:
    page = render_html([soak_result_dict(verdict="ok", extras=False)])
    for heading in ("Errors by kind", "Allocation sites", "Leak isolation", "Baseline", "Mocks"):
        assert f"<h3>{heading}" not in page
    assert "<h3>Phases</h3>" in page
    assert '<span class="verdict good">OK</span>' in page


def test_recorded_text_is_escaped_everywhere() -> None:
    result = soak_result_dict(
        test_id='tests/t.py::test_x[<img src=x onerror="alert(1)">]',
        phases=("night", "</script><script>alert(2)</script>"),
    )
    page = render_html([result])
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;a=1" in page  # an error sample
    assert "append(&lt;b&gt;&amp;amp;&lt;/b&gt;)" in page  # an allocation site
    # the chart data cannot close its <script> block: three scripts, three ends
    assert page.count("<script") == page.count("</script>") == 3
    phases = _chart_data(page)[0]["phases"]
    assert phases[1] == "</script><script>alert(2)</script>"  # intact once parsed


def test_the_report_opens_offline() -> None:
    page = render_html([soak_result_dict()])
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "https://" not in page.replace("https://github.com/leeoniya/uPlot", "")
    assert "var uPlot=" in page and ".uplot" in page  # the library and its CSS, inlined


def test_memory_charts_carry_samples_floors_trend_phases_and_cycles() -> None:
    result = soak_result_dict(cycles=5, phases=("a", "b", "c"), judged=("heap", "rss"))
    memory = [c for c in _chart_data(render_html([result])) if c["kind"] == "memory"]
    assert [c["title"].split(":")[0] for c in memory] == [
        "Python heap (tracemalloc) (heap)",
        "RSS (rss)",
    ]
    heap = memory[0]
    samples, floors, trend = (s["values"] for s in heap["series"])
    assert len(heap["x"]) == len(samples) == len(floors) == len(trend)
    assert heap["x"] == sorted(heap["x"])
    assert sum(v is not None for v in samples) == 200
    assert sum(v is not None for v in floors) == len(result["checkpoints"]) == 1 + 5 * 3
    # the trend runs through the judged floors (the warm-up's end, then each measured cycle's)
    judged = result["judgements"][0]["floors"]
    assert [v for v in trend if v is not None] == pytest.approx(judged)
    assert heap["series"][2]["label"] == "trend 130 B/request"
    assert [(c["number"], c["kind"]) for c in heap["cycles"]] == [
        (0, "warm-up"),
        (1, "measured"),
        (2, "measured"),
        (3, "measured"),
        (4, "measured"),
    ]
    assert [s["phase"] for s in heap["phaseSpans"]] == [0, 1, 2] * 5
    assert heap["phases"] == ["a", "b", "c"]


def test_the_trend_falls_back_to_the_last_cycle_ends() -> None:
    """A judgement whose floors are not the checkpoints' (a probe read them apart): the trend
    still runs over the last cycle ends, through the judged floors' median residual."""
    result = soak_result_dict(cycles=4, phases=("a",), judged=("heap",), per_request=10.0)
    judgement = result["judgements"][0]
    judgement["floors"] = [f + 500.0 for f in judgement["floors"]]
    [memory] = [c for c in _chart_data(render_html([result])) if c["kind"] == "memory"]
    trend = [v for v in memory["series"][2]["values"] if v is not None]
    assert trend == pytest.approx(judgement["floors"])


def test_rate_and_latency_per_phase_are_grouped_bars() -> None:
    result = soak_result_dict(phases=("night", "spike"))
    bars = {c["id"]: c for c in _chart_data(render_html([result])) if c["kind"] == "bars"}
    rate, latency = bars["chart-0-rate"], bars["chart-0-latency"]
    assert rate["categories"] == latency["categories"] == ["night", "spike"]
    assert [s["values"] for s in rate["series"]] == [[10.0, 20.0], [9.5, 19.0]]
    assert latency["series"][0]["values"] == [1.5, 3.0]  # p50 in ms


def test_a_nightly_result_with_full_samples_stays_small() -> None:
    """2 h nightly: at most 2,047 samples (the sampler halves at 2,048), 1 + 12 + 4 cycles, and
    four judged metrics: a few hundred KB, far under the 2 MB budget."""
    sampled = ("heap", "rss", "uss", "malloc", "blocks", "gc0", "gc1", "gc2")
    result = soak_result_dict(
        samples=2047, cycles=17, judged=("heap", "rss", "uss", "malloc"), sampled=sampled
    )
    size = len(render_html([result]).encode())
    assert size < 400_000, size


def test_write_html_writes_the_file(tmp_path: Path) -> None:
    written = write_html(tmp_path / "out" / "report.html", [soak_result_dict()])
    assert written == tmp_path / "out" / "report.html"
    assert written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in written.parent.iterdir()] == ["report.html"]  # no temp file left


def test_an_empty_session_renders() -> None:
    page = render_html([])
    assert "No soak results in this session." in page
    assert _chart_data(page) == []
