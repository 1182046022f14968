"""The out-of-process fast path (driver/http1.py) against a real, misbehaving loopback server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from pytest_soak.driver.clients import SendFailure
from pytest_soak.driver.http1 import Http1Client, build_request
from pytest_soak.driver.replay import LiveState, ReplayConfig, plan_phases, replay
from pytest_soak.driver.targets import UrlTarget, free_loopback_port
from pytest_soak.profiles import Profile
from pytest_soak.traffic import Exchange
from tests.apps.raw_http import RawHttpServer
from tests.helpers import copy_test_services, item_traffic_lines


@pytest.fixture
def server() -> Iterator[RawHttpServer]:
    with RawHttpServer() as running:
        yield running


def _get(path: str, method: str = "GET", **kwargs: object) -> Exchange:
    return Exchange(0.0, method, path, **kwargs)  # type: ignore[arg-type]


def _send_all(url_port: int, exchanges: list[Exchange], **client: float) -> list[object]:
    """Send each exchange in turn over one client; the status, or the SendFailure's kind."""

    async def main() -> list[object]:
        http = Http1Client(
            "127.0.0.1",
            url_port,
            concurrency=int(client.get("concurrency", 4)),
            timeout=client.get("timeout", 5.0),
        )
        outcomes: list[object] = []
        try:
            for exchange in exchanges:
                try:
                    outcomes.append(await http.send(exchange))
                except SendFailure as failure:
                    outcomes.append(failure.kind)
        finally:
            await http.aclose()
        return outcomes

    return asyncio.run(main())


def test_requests_are_built_once_with_our_host_and_framing() -> None:
    exchange = Exchange(
        0.0,
        "POST",
        "/cart/add?item=caf\u00e9 latte#frag",
        headers=(
            ("Host", "prod.example.com"),
            ("Content-Length", "999"),
            ("Accept-Encoding", "br"),
            ("X-Trace", "ok"),
        ),
        body=b'{"id": 1}',
    )
    data = build_request(exchange, "127.0.0.1:8080")
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n") == [
        b"POST /cart/add?item=caf%C3%A9%20latte HTTP/1.1",
        b"Host: 127.0.0.1:8080",
        b"X-Trace: ok",
        b"Content-Length: 9",
    ]
    assert body == b'{"id": 1}'
    # A POST without a body still says so; a GET without one says nothing.
    assert b"Content-Length: 0" in build_request(_get("/x", "POST"), "h")
    assert b"Content-Length" not in build_request(_get("/x"), "h")


@pytest.mark.parametrize(
    ("exchange", "message"),
    [
        (_get("/x", headers=(("X-Evil", "a\r\nInjected: 1"),)), "header 'X-Evil'"),
        (_get("/x", "GE T"), "is not a token"),
    ],
)
def test_a_recording_that_is_not_http11_is_a_bad_request(exchange: Exchange, message: str) -> None:
    with pytest.raises(SendFailure, match=message) as caught:
        build_request(exchange, "h")
    assert caught.value.kind == "bad-request"


def test_keep_alive_reuses_one_connection_for_sequential_requests(server: RawHttpServer) -> None:
    assert _send_all(server.port, [_get("/ok")] * 30) == [200] * 30
    assert server.connections == 1
    assert server.heads[0].startswith(b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1:")


def test_connections_stay_within_the_concurrency(server: RawHttpServer) -> None:
    async def main() -> list[int]:
        http = Http1Client("127.0.0.1", server.port, concurrency=3, timeout=5.0)
        try:
            return list(await asyncio.gather(*(http.send(_get("/ok")) for _ in range(40))))
        finally:
            await http.aclose()

    assert asyncio.run(main()) == [200] * 40
    assert 1 <= server.connections <= 3


def test_every_way_an_answer_can_end_is_understood(server: RawHttpServer) -> None:
    exchanges = [
        _get("/chunked"),
        _get("/ok", "HEAD"),  # headers only, whatever Content-Length says
        _get("/ok"),
        _get("/eof-body"),  # no length: the body ends with the connection
        _get("/close"),
        _get("/status/503"),
        _get("/status/204"),
        _get("/ok"),
    ]
    assert _send_all(server.port, exchanges) == [200, 200, 200, 200, 200, 503, 204, 200]


def test_a_keep_alive_connection_closed_while_idle_is_retried_once(server: RawHttpServer) -> None:
    async def main() -> list[int]:
        http = Http1Client("127.0.0.1", server.port, concurrency=1, timeout=5.0)
        try:
            first = await http.send(_get("/idle-close"))
            await asyncio.sleep(0.3)  # the server closes the idle connection meanwhile
            return [first, await http.send(_get("/ok"))]
        finally:
            await http.aclose()

    assert asyncio.run(main()) == [200, 200]
    assert server.connections == 2


def test_failures_get_a_kind_and_the_client_goes_on(server: RawHttpServer) -> None:
    exchanges = [_get("/reset"), _get("/hang"), _get("/garbage"), _get("/ok")]
    assert _send_all(server.port, exchanges, timeout=2.0) == [
        "reset",
        "timeout",
        "protocol",
        200,
    ]
    refused = free_loopback_port()
    assert _send_all(refused, [_get("/ok")]) == ["connect"]


def test_resets_timeouts_and_5xx_are_counted_per_phase_and_the_run_goes_on(
    server: RawHttpServer,
) -> None:
    """Two phases of a replay through the fast path, with a service that fails in three ways."""
    cycle = [_get("/ok"), _get("/reset"), _get("/ok"), _get("/status/503"), _get("/hang")]
    timeline = Profile.step(2).timeline(40.0, 3.0)
    phases = plan_phases(timeline)

    async def main():  # type: ignore[no-untyped-def]
        return await replay(
            UrlTarget(server.url, [os.getpid()]),
            cycle,
            timeline.arrivals(),
            planned_requests=timeline.request_count,
            phases=phases,
            wall_seconds=3.0,
            profile="step",
            peak_rps=40.0,
            checkpoints=[0],
            on_checkpoint=lambda point: None,
            config=ReplayConfig(concurrency=64, request_timeout=2.0),
            live=LiveState(),
        )

    run = asyncio.run(main())
    assert run.aborted is None
    assert run.sent == timeline.request_count
    assert run.unsent == 0
    index = 0
    for stats in run.phases:
        kinds = [cycle[(index + k) % len(cycle)].target for k in range(stats.sent)]
        index += stats.sent
        assert stats.errors["reset"] == kinds.count("/reset"), stats.name
        assert stats.errors["timeout"] == kinds.count("/hang"), stats.name
        assert stats.errors["5xx"] == kinds.count("/status/503"), stats.name
        assert stats.statuses["2xx"] == kinds.count("/ok"), stats.name
        assert stats.rate_accuracy is not None


@pytest.mark.slow
def test_a_900_rps_spike_against_a_served_uvicorn_runs_in_quick_mode_under_1_percent_late(
    pytester: pytest.Pytester,
) -> None:
    """Issue 3's acceptance: the driver keeps the schedule of a real spike on a 2-core machine.

    ``pytest -m slow tests/test_http1.py`` (about 90 s)."""
    copy_test_services(pytester.path)
    pytester.makefile(".jsonl", items=item_traffic_lines(400))
    pytester.makepyfile(
        test_spike_user="""
        import sys
        import pytest

        @pytest.mark.soak(profile="spike-at-8am", peak_rps=900, baseline=False)
        def test_spike(soak, replay_traffic):
            svc = soak.serve([sys.executable, "-m", "uvicorn", "apps.services:native_service",
                              "--port", "{port}", "--log-level", "warning"])
            result = soak.run(svc, replay_traffic("items.jsonl"), check=False)
            run = result.run
            print(f"SPIKE sent={run.sent} late={run.late} unsent={run.unsent} "
                  f"errors={run.errors} late_share={run.late / run.sent:.4f}")
            for phase in run.phases:
                print(f"PHASE {phase.name} sent={phase.sent} late={phase.late} "
                      f"p99_lateness={phase.lateness.percentile(99) * 1000:.2f}ms "
                      f"rate_accuracy={phase.rate_accuracy}")
            assert result.mode == "quick" and run.wall_seconds == 60
            assert run.unsent == 0 and run.errors == 0
            assert run.late < 0.01 * run.sent, result.explain()
        """
    )
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--soak-mode=quick")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["SPIKE sent=* late=*"])
