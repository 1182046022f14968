"""Every real-world recording in ``../shared/samples`` loads, with the content we know it has."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_soak.traffic import Traffic, load_traffic

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"
HAR_FILES = sorted((SAMPLES / "har").glob("*.har"))
GOR_FILES = sorted((SAMPLES / "gor").glob("*.gor"))

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"real-world samples not found at {SAMPLES.resolve()}"
)


def load(folder: str, name: str) -> Traffic:
    return load_traffic(SAMPLES / folder / name)


@pytest.mark.parametrize("path", HAR_FILES + GOR_FILES, ids=lambda path: path.name)
def test_every_sample_loads_into_valid_sorted_traffic(path: Path) -> None:
    traffic = load_traffic(path)
    assert traffic.format == ("har" if path.suffix == ".har" else "goreplay")
    assert len(traffic) > 0
    offsets = [exchange.offset for exchange in traffic]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    assert len({exchange.source for exchange in traffic}) == len(traffic)
    for exchange in traffic:
        assert exchange.target.startswith("/") and exchange.host
        assert not any(name.startswith(":") for name, _ in exchange.headers)


def test_chrome_yahoo_page_load() -> None:
    traffic = load("har", "yahoo-pageload-chrome-har.har")
    assert (len(traffic), traffic.skipped) == (107, ())
    first = traffic[0]
    assert (first.source, first.method, first.host, first.target) == (
        "entry 0",
        "GET",
        "yahoo.com",
        "/",
    )
    assert first.response is not None and first.response.status == 301
    h2 = next(e for e in traffic if e.source == "entry 2")
    assert h2.host == "www.yahoo.com" and h2.header("user-agent") is not None
    assert sum(e.method == "POST" for e in traffic) == 11
    assert traffic.endpoints()["GET /p"] == 11
    # Chrome wrote entries 73.. before 72: loading sorts them by startedDateTime.
    order = [int(e.source.split()[1]) for e in traffic]
    assert order != sorted(order) and order.index(73) < order.index(72)
    assert traffic.span == pytest.approx(3.728, abs=0.001)


def test_playwright_failed_entry_has_no_response() -> None:
    traffic = load("har", "playwright-har-unstable-network.har")
    failed, answered = traffic
    assert failed.source == "entry 0" and failed.response is None
    assert answered.response is not None and answered.response.body == b"hello, world!"
    assert (answered.host, answered.target) == ("localhost:8907", "/api")


def test_playwright_redirects_keep_repeated_set_cookie_headers() -> None:
    traffic = load("har", "playwright-har-redirect.har")
    assert [e.host for e in traffic] == ["theverge.com", "www.theverge.com", "www.theverge.com"]
    assert [e.response.status for e in traffic if e.response] == [301, 301, 200]
    second = traffic[1].response
    assert second is not None
    assert [name for name, _ in second.headers].count("Set-Cookie") == 2


def test_goreplay_ecommerce_session() -> None:
    traffic = load("gor", "ecommerce-workshop-requests_0.gor")
    assert (len(traffic), traffic.skipped) == (101, ())
    assert traffic[0].source == "payload 1" and traffic[0].host == "localhost:3000"
    assert sum(e.method == "POST" for e in traffic) == 2
    endpoints = traffic.endpoints()
    assert endpoints["GET /cart_link"] == endpoints["GET /api_tokens"] == 26
    post = next(e for e in traffic if e.method == "POST")
    assert post.target == "/api/v2/storefront/cart/add_item"
    assert post.body == b'{"variant_id":"11","quantity":1,"options":{}}'
    assert post.response is None  # a requests-only capture
    assert traffic.span == pytest.approx(518.564, abs=0.001)
