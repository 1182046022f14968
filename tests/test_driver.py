"""The open-model driver against real servers on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_soak.driver.targets import ServedProcess, UrlTarget, free_loopback_port
from pytest_soak.errors import DriverError
from pytest_soak.profiles import Profile
from pytest_soak.runner import plan_checkpoints, run_soak
from pytest_soak.settings import resolve
from pytest_soak.traffic import Exchange, Traffic

APPS_DIR = Path(__file__).parent


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
    timeline = settings.profile.timeline(120, 6.0)
    assert run.sent == timeline.request_count
    for stats, (_, start, end) in zip(run.phases, timeline.phase_spans(), strict=True):
        expected = timeline.requests_until(end) - timeline.requests_until(start)
        assert abs(stats.sent - expected) <= 1, stats.name
        assert stats.statuses["2xx"] == stats.sent
    assert run.unsent == 0
    assert run.late <= run.sent * 0.01
    assert len(run.checkpoints) == len(result.floors) == 14
    assert all(cp.drained for cp in run.checkpoints)
    assert [cp.requests for cp in run.checkpoints] == plan_checkpoints(run.sent, 300, 12)


def test_connection_errors_are_counted_per_phase_and_do_not_stop_the_run() -> None:
    closed = f"http://127.0.0.1:{free_loopback_port()}"
    settings = resolve({"profile": "constant", "peak_rps": 50}, mode="quick", duration_override=2.0)
    result = run_soak(UrlTarget(closed), _items(20), settings, check=False)
    assert result.run.sent == 100
    assert result.run.phases[0].errors["connect"] == 100
    assert result.run.phases[0].error_samples  # what went wrong is kept (bounded) for the report
    assert result.verdict == "ok"  # no pid to watch: nothing to judge, and it says so
    assert "no memory floors" in result.reason


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
        settings = resolve(
            {"profile": "constant", "peak_rps": 40}, mode="quick", duration_override=5.0
        )
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
    settings = resolve({"profile": "constant", "peak_rps": 5}, mode="quick", duration_override=1.0)
    with pytest.raises(DriverError, match="no exchanges to replay"):
        run_soak(UrlTarget("http://127.0.0.1:9"), Traffic(()), settings)


def test_checkpoint_plan_warms_up_for_one_pass_of_the_traffic() -> None:
    # 2,663 requests, 400-request file: warm-up is one pass (400 > 12%), then 12 equal segments.
    points = plan_checkpoints(2663, 400, 12)
    assert points[:2] == [0, 400]
    assert len(points) == 14
    assert points[-1] == 2663
    # A file longer than the run: warm-up stops at 40%.
    assert plan_checkpoints(1000, 5000, 12)[1] == 400
