"""The HTTP probes (``prometheus``, ``http_json``) against real loopback servers: a
``prometheus_client`` exposition, a JSON endpoint, and a served service read through
``probes=[...]`` as a user meets it. Envoy's admin probe: tests/test_envoy.py."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from pytest_soak.driver.targets.hosts import free_loopback_port
from pytest_soak.errors import ProbeError
from pytest_soak.probes import (
    SERVED,
    HttpProbe,
    ProbeSession,
    Service,
    envoy_admin,
    http_json,
    prometheus,
)
from pytest_soak.probes.endpoints import parse_path
from pytest_soak.probes.sampler import Sampler


def _service(port: int, **named: int) -> Service:
    return Service(in_process=False, pids=(), ports={"": port, **named})


def _read(probe: HttpProbe, service: Service) -> dict[str, float]:
    probe.start(service)
    try:
        return probe.read()
    finally:
        probe.stop()


# -- Envoy's /memory, as its admin writes it (a real Envoy: test_envoy.py) -------------------------

ENVOY_MEMORY = {
    "allocated": "6331352", "heap_size": "8388608", "pageheap_unmapped": "0",
    "pageheap_free": "524288", "total_thread_cache": "1048576", "total_physical_bytes": "9437184",
}  # fmt: skip


def test_envoy_admin_reads_each_figure_of_memory_under_its_metric(json_server: int) -> None:
    _JsonHandler.document = dict(ENVOY_MEMORY)
    probe = envoy_admin(f"http://127.0.0.1:{json_server}/memory/")  # /memory or the admin's base
    values = _read(probe, _service(json_server))
    assert values == {
        "envoy_allocated": 6331352.0, "envoy_heap_size": 8388608.0,
        "envoy_pageheap_unmapped": 0.0, "envoy_pageheap_free": 524288.0,
        "envoy_thread_cache": 1048576.0, "envoy_physical": 9437184.0,
    }  # fmt: skip
    assert probe.judged == {"envoy_allocated"}
    secondary = {m.name for m in probe.metrics} - probe.judged - probe.recorded
    assert secondary == {"envoy_heap_size", "envoy_physical"}


def test_envoy_admin_without_tcmalloc_figures_or_with_an_unknown_role_is_refused(
    json_server: int,
) -> None:
    _JsonHandler.document = {**ENVOY_MEMORY, "allocated": "0"}
    with pytest.raises(ProbeError, match="reports allocated=0: this Envoy build has no tcmalloc"):
        _read(envoy_admin(f"http://127.0.0.1:{json_server}"), _service(json_server))
    with pytest.raises(ProbeError, match=r"judged=\('heap',\)\): 'heap' is not one of its"):
        envoy_admin("http://127.0.0.1:{port:admin}", judged=("heap",))


# -- a real Prometheus exposition ----------------------------------------------------------------


@pytest.fixture
def exposition() -> Iterator[tuple[int, Gauge]]:
    """prometheus_client's own HTTP server on loopback: a labelled gauge, a counter."""
    registry = CollectorRegistry()
    cache = Gauge("shop_cache_bytes", "bytes in the cache", ["region"], registry=registry)
    cache.labels(region="eu").set(1000)
    cache.labels(region="us").set(2000)
    served = Counter("shop_requests", "requests served", registry=registry)
    served.inc(42)
    Gauge("shop_heap_bytes", "heap", registry=registry).set(5e6)
    port = free_loopback_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield port, cache
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_gauge_is_read_by_name_and_labels_with_its_port_filled(
    exposition: tuple[int, Gauge],
) -> None:
    port, cache = exposition
    probe = prometheus(
        "http://127.0.0.1:{port:metrics}/metrics", "shop_cache_bytes", {"region": "us"},
        name="cache_us",
    )  # fmt: skip
    assert probe.metrics[0].name == "cache_us" and probe.metrics[0].unit == "bytes"
    assert not probe.judged  # secondary unless judged=True
    probe.start(_service(1, metrics=port))
    try:
        assert probe.read() == {"cache_us": 2000.0}
        cache.labels(region="us").set(2500)
        assert probe.read() == {"cache_us": 2500.0}  # a fresh reading, one client reused
    finally:
        probe.stop()


def test_a_counter_is_read_by_its_family_name_or_its_sample_name(
    exposition: tuple[int, Gauge],
) -> None:
    port, _ = exposition
    service = _service(port)
    for metric in ("shop_requests", "shop_requests_total"):
        probe = prometheus("http://127.0.0.1:{port}/metrics", metric, unit="", judged=True)
        assert probe.judged == {metric}
        assert _read(probe, service) == {metric: 42.0}


def test_a_metric_that_is_not_there_is_named_with_the_metrics_there(
    exposition: tuple[int, Gauge],
) -> None:
    port, _ = exposition
    probe = prometheus("http://127.0.0.1:{port}/metrics", "shop_heap_byte")
    with pytest.raises(ProbeError) as error:
        _read(probe, _service(port))
    message = str(error.value)
    assert message.startswith(
        f"probe 'prometheus-shop_heap_byte': metric 'shop_heap_byte' not found in "
        f"http://127.0.0.1:{port}/metrics (did you mean 'shop_heap_bytes'"
    )
    assert "metrics there: " in message and "shop_cache_bytes" in message


def test_several_matching_samples_are_an_error_listing_them(
    exposition: tuple[int, Gauge],
) -> None:
    port, _ = exposition
    with pytest.raises(ProbeError) as error:
        _read(prometheus("http://127.0.0.1:{port}/metrics", "shop_cache_bytes"), _service(port))
    assert "2 samples of 'shop_cache_bytes' match labels=None" in str(error.value)
    assert 'shop_cache_bytes{region="eu"}, shop_cache_bytes{region="us"}' in str(error.value)
    assert "pass labels= that pick one of them" in str(error.value)
    wrong = prometheus("http://127.0.0.1:{port}/metrics", "shop_cache_bytes", {"region": "ap"})
    with pytest.raises(ProbeError, match=r"no sample of 'shop_cache_bytes' has the labels"):
        _read(wrong, _service(port))


# -- a real JSON endpoint ------------------------------------------------------------------------


class _JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    document: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        if self.path in ("/stats", "/memory"):  # /memory: as Envoy's admin answers it
            body, status = json.dumps(self.document).encode(), 200
        elif self.path == "/text":
            body, status = b"<html>not json</html>", 200
        elif self.path == "/slow":
            time.sleep(1.0)
            body, status = b"{}", 200
        else:
            body, status = b"no such page", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def json_server() -> Iterator[int]:
    _JsonHandler.document = {
        "memory": {"heap_bytes": 123456, "arenas": "4096"},
        "workers": [{"rss": 1.5e6}, {"rss": 2.5e6}],
        "ready": True,
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("field", "metric", "value"),
    [
        ("memory.heap_bytes", "memory_heap_bytes", 123456.0),
        ("memory.arenas", "memory_arenas", 4096.0),  # a number in a string, as Envoy writes
        ("workers.1.rss", "workers_1_rss", 2.5e6),
        ("workers[0].rss", "workers_0_rss", 1.5e6),
    ],
)
def test_a_json_field_is_read_at_its_dotted_path(
    json_server: int, field: str, metric: str, value: float
) -> None:
    probe = http_json("http://localhost:{port}/stats", field, unit="bytes")
    assert _read(probe, _service(json_server)) == {metric: value}


@pytest.mark.parametrize(
    ("field", "url_path", "message"),
    [
        ("memory.heap", "/stats", r"field 'memory.heap' not found; there is keys arenas, heap_b"),
        ("workers.5.rss", "/stats", r"field 'workers.5' not found; there is a list of 2"),
        ("ready", "/stats", r"field 'ready' is true, not a number"),
        ("x", "/text", r"did not answer JSON .*its answer began '<html>not json</html>'"),
        ("x", "/nowhere", r"GET http://127.0.0.1:\d+/nowhere answered 404 \('no such page'\)"),
    ],
)
def test_what_a_json_probe_cannot_read_is_a_clear_error(
    json_server: int, field: str, url_path: str, message: str
) -> None:
    probe = http_json("http://127.0.0.1:{port}" + url_path, field, name="x")
    with pytest.raises(ProbeError, match=message) as error:
        _read(probe, _service(json_server))
    assert str(error.value).startswith("probe 'json-x': ")


def test_a_dotted_path_that_is_not_one_is_refused_at_once() -> None:
    assert parse_path("a.b[2].c") == ("a", "b", 2, "c")
    with pytest.raises(ProbeError, match=r"http_json\(field='a\.\.b'\): not a dotted path"):
        http_json("http://127.0.0.1:1/x", "a..b")


def test_an_endpoint_that_does_not_answer_in_time_twice_is_named(json_server: int) -> None:
    probe = http_json("http://127.0.0.1:{port}/slow", "x")
    probe.timeout = 0.2
    with pytest.raises(ProbeError, match=r"GET http://127.0.0.1:\d+/slow: no answer within 0.2s"):
        _read(probe, _service(json_server))


def test_a_sample_that_cannot_be_read_during_the_load_is_skipped_and_counted() -> None:
    """One slow answer under load loses a sample, not the sampler (a floor that cannot be
    read still fails the run)."""

    def read() -> dict[str, float]:
        raise ProbeError("probe 'json-x': GET http://127.0.0.1:1/x: no answer within 1s, twice")

    sampler = Sampler(read, phase=lambda: 0, interval=0.01)
    sampler.sample()
    assert sampler.errors == 1 and sampler.series.points == []


# -- URLs: refused, not loopback, unknown port names ---------------------------------------------


def test_a_refused_connection_names_the_url_and_what_to_check() -> None:
    port = free_loopback_port()  # nothing listens there
    probe = prometheus("http://127.0.0.1:{port}/metrics", "heap")
    with pytest.raises(ProbeError) as error:
        _read(probe, _service(port))
    assert str(error.value).startswith(
        f"probe 'prometheus-heap': GET http://127.0.0.1:{port}/metrics failed (ConnectError"
    )
    assert "check that the service listens there" in str(error.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.7:9090/metrics", r"host '10.0.0.7' is not loopback; a probe reads"),
        ("http://prod-envoy.internal:9901", r"host 'prod-envoy.internal' is not loopback"),
        ("127.0.0.1:9090/metrics", r"is not an absolute http URL; write it like"),
    ],
)
def test_a_url_off_this_machine_is_refused_when_the_probe_is_made(url: str, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        prometheus(url, "heap")
    for loopback in ("http://localhost:{port:admin}/m", "http://[::1]:9/m", "http://127.0.0.2/"):
        prometheus(loopback, "heap")  # accepted


def test_a_port_name_the_service_has_not_is_named_with_the_ports_it_has() -> None:
    probe = http_json("http://127.0.0.1:{port:admin}/stats", "x")
    with pytest.raises(ProbeError, match=r"\{port:admin\} names no port of the service \(ports: "):
        probe.start(_service(8000, metrics=9000))
    in_process = Service(in_process=True, pids=())
    with pytest.raises(ProbeError, match=r"names a port, but a service in-process has none"):
        probe.start(in_process)


def test_an_http_probe_read_through_a_session_gives_its_floor(
    exposition: tuple[int, Gauge],
) -> None:
    """Beside the built-in probes of a served service, read by the session's floors."""
    port, _ = exposition
    service = Service(in_process=False, pids=(), ports={"": port})
    probe = prometheus("http://127.0.0.1:{port}/metrics", "shop_heap_bytes", judged=True)
    session = ProbeSession(service, [probe], registry=_no_built_ins())
    assert session.judged_metrics == ["shop_heap_bytes"]
    assert SERVED in probe.where
    session.start()
    try:
        assert session.floor() == {"shop_heap_bytes": 5e6}
    finally:
        session.stop()


def _no_built_ins() -> Any:
    from pytest_soak.probes.registry import ProbeRegistry

    return ProbeRegistry()


# -- as a user meets it: a served service's gauge in the JSON result -----------------------------

METRICS_APP = """
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

registry = CollectorRegistry()
seen = Gauge("items_seen", "distinct items looked up", registry=registry)
items = set()


async def health(request):
    return PlainTextResponse("ok")


async def item(request):
    items.add(request.path_params["item_id"])
    seen.set(len(items))
    return JSONResponse({"id": request.path_params["item_id"]})


async def metrics(request):
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


app = Starlette(routes=[Route("/health", health), Route("/item/{item_id}", item),
                        Route("/metrics", metrics)])
"""


def test_a_served_services_prometheus_gauge_is_read_and_in_the_json_result(
    soak_project: pytest.Pytester,
) -> None:
    soak_project.makepyfile(metrics_app=METRICS_APP)
    soak_project.makepyfile(
        test_metrics=textwrap.dedent(
            """
            import sys

            import pytest
            from pytest_soak.probes import prometheus

            @pytest.mark.soak(profile="constant", peak_rps=100)
            def test_items(soak, replay_traffic):
                # agent=False: this is about the Prometheus probe beside USS (the agent's heap,
                # tested in test_agent.py, can make a 6 s run on a busy machine suspicious)
                svc = soak.serve([sys.executable, "-m", "uvicorn", "metrics_app:app",
                                  "--port", "{port}", "--log-level", "warning"], agent=False)
                soak.run(svc, replay_traffic("items.jsonl"), probes=[
                    prometheus("http://127.0.0.1:{port}/metrics", "items_seen", unit="items",
                               noise=10, step=1)])
            """
        )
    )
    result = soak_project.runpytest_subprocess(
        "--soak-duration=6s", "-p", "no:cacheprovider", "--soak-json=soak.json"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*soak summary*", "test_metrics.py::test_items *OK*"])
    [entry] = json.loads((soak_project.path / "soak.json").read_text())["results"]
    floors = [checkpoint["floor"]["items_seen"] for checkpoint in entry["checkpoints"]]
    assert floors[0] == 0.0  # read before any load
    # Every cycle replays the same requests (distinct ids within a cycle): the service has seen
    # one cycle's worth of ids once the warm-up is over, and no more after.
    assert floors[-1] == entry["cycle_requests"] > 0
    assert floors[1] == floors[-1]  # "constant" has one phase: floors[1] ends the warm-up
    assert all("items_seen" in sample for sample in entry["samples"])
    judged = {j["metric"]: j for j in entry["judgements"]}
    assert judged["items_seen"]["verdict"] == "ok"  # filled in the warm-up, then flat
    assert judged["uss"]["verdict"] == "ok"


def test_a_served_probe_that_cannot_read_fails_the_run_before_any_load(
    soak_project: pytest.Pytester,
) -> None:
    soak_project.makepyfile(metrics_app=METRICS_APP)
    soak_project.makepyfile(
        test_metrics=textwrap.dedent(
            """
            import sys

            from pytest_soak.probes import prometheus

            def test_items(soak, replay_traffic):
                # agent=False: this is about the Prometheus probe beside USS (the agent's heap,
                # tested in test_agent.py, can make a 6 s run on a busy machine suspicious)
                svc = soak.serve([sys.executable, "-m", "uvicorn", "metrics_app:app",
                                  "--port", "{port}", "--log-level", "warning"], agent=False)
                soak.run(svc, replay_traffic("items.jsonl"), peak_rps=100,
                         probes=[prometheus("http://127.0.0.1:{port}/metrics", "item_seen")])
            """
        )
    )
    result = soak_project.runpytest_subprocess("--soak-duration=6s", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ProbeError: probe 'prometheus-item_seen': metric 'item_seen' not found in "
            "http://127.0.0.1:*/metrics (did you mean 'items_seen'?); metrics there: *items_seen*"
        ]
    )
