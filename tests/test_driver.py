"""The open-model driver against real servers on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_soak.cycles import plan_cycles
from pytest_soak.driver.targets import ServedProcess, UrlTarget, free_loopback_port
from pytest_soak.engine import run_soak
from pytest_soak.errors import DriverError, ProfileError
from pytest_soak.profiles import Profile
from pytest_soak.settings import Settings, resolve
from pytest_soak.traffic import Exchange, Traffic

APPS_DIR = Path(__file__).parent


def _constant(peak_rps: float, seconds: float) -> Settings:
    return resolve(
        {"profile": "constant", "peak_rps": peak_rps}, mode="quick", duration_override=seconds
    )


def _items(n: int) -> Traffic:
    return Traffic(tuple(Exchange(i * 0.01, "GET", f"/item/i{i:06d}") for i in range(n)))


@pytest.fixture
def served() -> ServedProcess:
    service = ServedProcess(
        [sys.executable, "-m", "uvicorn", "apps.services:native_service", "--port", "{port}",
         "--log-level", "warning"],
        cwd=APPS_DIR,
    )  # fmt: skip
    yield service
    service.stop()


def test_each_phase_gets_the_requests_its_rate_asks_for(served: ServedProcess) -> None:
    settings = resolve(
        {"profile": Profile.step(4), "peak_rps": 120}, mode="quick", duration_override=6.0
    )
    result = run_soak(served, _items(300), settings, check=False)
    run = result.run
    cycles = settings.warmup_cycles + settings.measured_cycles
    timeline = settings.profile.timeline(120, 6.0 / cycles)  # one compressed day per cycle
    assert run.sent == cycles * timeline.request_count
    for stats, (_, start, end) in zip(run.phases, timeline.phase_spans(), strict=True):
        expected = timeline.requests_until(end) - timeline.requests_until(start)
        assert abs(stats.sent - cycles * expected) <= cycles, stats.name
        assert stats.statuses["2xx"] == stats.sent
    assert run.unsent == 0
    # A floor before any load, then one at the end of every phase of every cycle.
    plan = plan_cycles(_items(300), settings)
    assert len(plan.boundaries) == 4
    assert len(run.checkpoints) == len(result.floors) == 1 + 4 * cycles
    assert all(cp.drained for cp in run.checkpoints)
    assert [cp.requests for cp in run.checkpoints] == plan.checkpoints(cycles, first=True)
    assert [c.kind for c in result.analysis.cycles] == ["warm-up"] + ["measured"] * (cycles - 1)


def test_connection_errors_are_counted_per_phase_and_do_not_stop_the_run() -> None:
    import os

    closed = f"http://127.0.0.1:{free_loopback_port()}"
    settings = _constant(100, 2.0)
    result = run_soak(UrlTarget(closed, [os.getpid()]), _items(20), settings, check=False)
    planned = plan_cycles(_items(20), settings).size * 9  # 1 warm-up + 8 measured cycles
    assert result.run.aborted is None
    assert result.run.sent == planned
    assert result.run.phases[0].errors["connect"] == planned
    assert result.run.phases[0].error_samples  # what went wrong is kept (bounded) for the report
    assert len(result.run.phases[0].error_samples) == 5


def test_a_url_without_a_pid_or_a_tiny_run_is_refused_before_any_load() -> None:
    with pytest.raises(DriverError, match="no process to measure"):
        run_soak(UrlTarget("http://127.0.0.1:9"), _items(5), _constant(100, 2.0))
    with pytest.raises(DriverError, match=r"a URL alone gives no process to measure"):
        run_soak("http://127.0.0.1:9", _items(5), _constant(100, 2.0))
    with pytest.raises(ProfileError, match=r"plans only 1 requests per load cycle.*at least 10"):
        run_soak(UrlTarget("http://127.0.0.1:9", [1]), _items(5), _constant(5, 1.0))


def test_a_service_that_dies_mid_run_fails_with_its_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "dies.py"
    script.write_text(
        "import os, sys\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    count = 0\n"
        "    def do_GET(self):\n"
        "        H.count += 1\n"
        "        if H.count > 60:\n"
        "            os._exit(9)\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', '2')\n"
        "        self.end_headers()\n"
        "        self.wfile.write(b'ok')\n"
        "    def log_message(self, *a): pass\n"
        "HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
    )
    service = ServedProcess([sys.executable, str(script), "{port}"], ready="/health")
    try:
        settings = _constant(40, 5.0)
        result = run_soak(service, _items(50), settings, check=False)
    finally:
        service.stop()
    assert result.verdict == "error"
    assert "exit status 9" in result.reason
    assert result.failed
    assert result.run.sent < 200
    assert result.floors  # the samples so far are kept
    assert "the run stopped early: the service exited with exit status 9" in result.explain()


def test_refuses_empty_traffic() -> None:
    with pytest.raises(DriverError, match="no exchanges to replay"):
        run_soak(UrlTarget("http://127.0.0.1:9", [1]), Traffic(()), _constant(100, 2.0))


def test_every_cycle_replays_the_same_requests_shaped_by_the_whole_profile() -> None:
    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 150}, mode="quick", duration_override=60.0
    )
    plan = plan_cycles(_items(5000), settings)  # a recording far longer than the run
    cycles = settings.warmup_cycles + settings.measured_cycles
    assert plan.size == settings.profile.timeline(150, 60.0 / cycles).request_count
    assert plan.choice.size == plan.size < 5000
    # Five phases a cycle, each ending in a floor; the last one ends the cycle.
    assert len(plan.boundaries) == 5
    assert plan.boundaries[-1] == plan.size
    arrivals = list(plan.arrivals(2))
    assert len(arrivals) == 2 * plan.size
    second = [t - plan.timeline.wall_seconds for t in arrivals[plan.size :]]
    assert second == pytest.approx(arrivals[: plan.size])


def _pause_app(blocking: bool):  # type: ignore[no-untyped-def]
    """An ASGI app that takes 40 ms an answer: awaiting (a slow service) or blocking the event
    loop it shares with the driver (a stalled harness)."""
    import asyncio
    import time

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        if blocking:
            time.sleep(0.04)
        else:
            await asyncio.sleep(0.04)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_send_lag_is_the_harness_own_lateness_not_a_wait_for_a_slot() -> None:
    """A slow service with one concurrency slot makes requests wait for it (late, but the
    driver was on time: no send lag); a stalled loop makes the driver itself late."""
    settings = resolve(
        {"profile": "constant", "peak_rps": 50, "concurrency": 1},
        mode="quick",
        duration_override=3.0,
    )
    slow = run_soak(_pause_app(blocking=False), _items(50), settings, check=False).run.phases[0]
    # 25 answers a second for 50 asked: a backlog of requests waiting for the one slot
    assert slow.capped > slow.sent // 2 and slow.lateness.percentile(50) > 0.3
    # ... which is the service's doing: the driver itself got round to each about on time
    assert slow.lag.percentile(50) < slow.lateness.percentile(50) / 10
    assert slow.lag.count == slow.sent
    stalled = run_soak(
        _pause_app(blocking=True), _items(50), _constant(50, 3.0), check=False
    ).run.phases[0]
    # 40 ms blocked per request at 20 ms apart: the driver wakes later and later
    assert stalled.lag.percentile(50) > 0.1
    assert stalled.lag.percentile(99) <= stalled.lateness.percentile(99) * 1.02


@pytest.mark.parametrize(("leak", "verdict"), [(0, "ok"), (4096, "leak")])
def test_wsgi_apps_are_driven_in_process(leak: int, verdict: str) -> None:
    from tests.apps.services import wsgi_app

    settings = _constant(100, 6.0)
    result = run_soak(wsgi_app(leak), _items(200), settings, check=False)
    assert result.run.target.startswith("WSGI app")
    assert result.run.phases[0].statuses["2xx"] == result.run.sent == 9 * 67  # 9 cycles
    assert result.verdict == verdict, result.explain()


def test_a_running_service_is_watched_by_pid(served: ServedProcess) -> None:
    settings = _constant(60, 3.0)
    result = run_soak(UrlTarget(served.url, [served.pid]), _items(100), settings, check=False)
    assert result.run.sent == 180
    assert {"rss", "uss"} <= set(result.floors[-1])
    assert result.floors[-1]["rss"] > 10 * 2**20  # a real uvicorn process, not this one
    assert [j.metric for j in result.analysis.judgements] == ["uss", "rss"]


def test_a_served_process_does_not_outlive_a_killed_test_run(tmp_path: Path) -> None:
    """SIGKILL (a CI timeout) runs no cleanup; the service must still go with its parent."""
    import signal
    import subprocess
    import time

    import psutil

    parent = tmp_path / "parent.py"
    parent.write_text(
        "import sys, time\n"
        "from pytest_soak.driver.targets import ServedProcess\n"
        "svc = ServedProcess([sys.executable, '-m', 'http.server', '{port}',\n"
        "                     '--bind', '127.0.0.1'], ready='/')\n"
        "print(svc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert psutil.pid_exists(child)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        psutil.Process(child).kill()
        raise AssertionError("the served process outlived its parent")


def test_stop_reaps_the_whole_process_group() -> None:
    """A service whose helper ignores SIGTERM: stop() must not leave the helper behind."""
    import uuid

    import psutil

    token = f"soak-orphan-{uuid.uuid4().hex[:8]}"
    service = ServedProcess(
        ["bash", "-c", f"(trap '' TERM; exec -a {token} sleep 120) & "
         f"exec {sys.executable} -m http.server {{port}} --bind 127.0.0.1"],
        ready="/",
    )  # fmt: skip

    def helpers() -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["cmdline"])
            if token in " ".join(p.info["cmdline"] or [])
        ]

    assert helpers(), "the helper should be running while the service runs"
    service.stop()
    assert not helpers()


def test_a_recording_cannot_send_traffic_anywhere_but_the_target(tmp_path: Path) -> None:
    """Absolute URLs never become targets; a '//host/...' path is a path on the target; and
    recorded non-ASCII header values are sent, not an internal error."""
    from pytest_soak.errors import TrafficFormatError

    with pytest.raises(TrafficFormatError, match=r"line 3: target='http://elsewhere.invalid/x'"):
        Exchange(0.0, "GET", "http://elsewhere.invalid/x", source="line 3")

    log = tmp_path / "paths.log"
    script = tmp_path / "echo.py"
    script.write_text(
        "import sys\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        f"        with open({str(log)!r}, 'a') as f:\n"
        "            f.write(self.path + ' ' + self.headers.get('X-Name', '') + '\\n')\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', '0')\n"
        "        self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
    )
    # agent=False: this is about where requests go; a verdict that needed extra cycles (the
    # agent's heap on a 2 s run) would change the count of requests sent
    service = ServedProcess([sys.executable, str(script), "{port}"], ready=None, agent=False)
    traffic = Traffic(
        (
            Exchange(0.0, "GET", "//elsewhere.invalid/x", (("X-Name", "José"),), source="line 1"),
            Exchange(0.01, "GET", "/plain", source="line 2"),
        )
    )
    try:
        result = run_soak(service, traffic, _constant(100, 2.0), check=False)
    finally:
        service.stop()
    assert result.run.errors == 0
    # Every request arrived here, on loopback. (http.server collapses the leading '//' and reads
    # header bytes as latin-1: the UTF-8 'José' shows as 'JosÃ©'.)
    seen = log.read_text(encoding="utf-8").splitlines()
    assert len(seen) == result.run.sent == 9 * 22  # 9 cycles of 2/9 s at 100 req/s
    assert seen.count("/elsewhere.invalid/x JosÃ©") == 9 * 11  # half of every cycle
