"""The HTML report in a real browser: headless Chromium opens it offline, with no console
error, and every chart draws (coloured pixels where the chart is). Skipped where Chromium is
not installed (``apt-get install chromium``; ``.ci/run`` tries to install it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_soak.report.html_report import write_html
from tests.browser import Browser, chromium, coloured_pixels, file_url, png_pixels
from tests.helpers import cut_short_dict, soak_result_dict

pytestmark = pytest.mark.skipif(
    chromium() is None, reason="Chromium is not installed (apt-get install chromium)"
)


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = chromium()
    assert executable is not None
    opened = Browser(executable)
    try:
        yield opened
    finally:
        opened.close()


def test_the_report_draws_every_chart_without_console_errors(
    browser: Browser, tmp_path: Path
) -> None:
    results = [
        soak_result_dict("tests/t.py::test_leaks", phases=("night", "<spike> & co")),
        soak_result_dict("tests/t.py::test_healthy", verdict="ok", per_request=1.0, extras=False),
    ]
    report = write_html(tmp_path / "report.html", results)
    browser.open(file_url(report))
    assert_every_chart_drawn(browser, 2 * (2 + 2))  # per test: heap, rss, rate, latency
    # the page's text, as the browser shows it, keeps the recorded phase name as text
    assert "<spike> & co" in browser.evaluate("document.body.innerText")


def test_a_run_cut_short_draws_what_it_measured(browser: Browser, tmp_path: Path) -> None:
    """Ctrl-C: a run that was not judged still draws its samples and floors (no trend)."""
    report = write_html(tmp_path / "report.html", [], cut_short=[cut_short_dict()])
    browser.open(file_url(report))
    assert_every_chart_drawn(browser, 2)
    text = browser.evaluate("document.body.innerText")
    assert "CUT SHORT" in text and "in cycle 2 of 8 (night)" in text


def assert_every_chart_drawn(browser: Browser, expected: int) -> None:
    """``expected`` charts, each drawn by uPlot with strongly coloured pixels in its box, and
    no console error."""
    figures = browser.evaluate("document.querySelectorAll('figure.chart').length")
    assert figures == expected
    drawn = browser.evaluate("document.querySelectorAll('figure.chart[data-drawn] canvas').length")
    assert drawn == figures
    assert browser.errors == []
    assert browser.evaluate("document.querySelectorAll('.chart-error').length") == 0
    # every chart's canvas has series drawn on it: strongly coloured pixels in its box
    boxes = browser.evaluate(
        """[...document.querySelectorAll('figure.chart canvas')].map(c => {
             const r = c.getBoundingClientRect();
             return {id: c.closest('figure').id, x: r.left + scrollX, y: r.top + scrollY,
                     width: r.width, height: r.height};
           })"""
    )
    assert len(boxes) == figures
    for box in boxes:
        clip = {k: box[k] for k in ("x", "y", "width", "height")}
        png = browser.screenshot(clip)
        width, height, _ = png_pixels(png)
        assert (width, height) == (round(box["width"]), round(box["height"]))
        assert coloured_pixels(png) > 300, f"chart {box['id']} looks blank"


def test_a_page_that_fails_to_draw_is_caught(browser: Browser, tmp_path: Path) -> None:
    """The check above can fail: a report whose chart library is missing shows console errors
    and no drawn charts."""
    report = write_html(tmp_path / "report.html", [soak_result_dict()])
    page = report.read_text(encoding="utf-8")
    start = page.index("<script>/*! https://github.com/leeoniya/uPlot")
    broken = page[:start] + page[page.index("</script>", start) + len("</script>") :]
    report.write_text(broken, encoding="utf-8")
    browser.open(file_url(report))
    assert browser.evaluate("document.querySelectorAll('figure.chart[data-drawn]').length") == 0
    assert any("uPlot did not load" in error for error in browser.errors)
