"""Scale-out: the load from Locust workers, the verdict on merged data (docs/scale-out.md).

The pure parts (shares, what travels, merging) are checked without Locust; the rest runs real
Locust masters and workers against real uvicorn services on loopback, and skips when Locust is
not installed. Never ``pytest.importorskip("locust")``: importing Locust monkey-patches this
process with gevent (with threads running, it deadlocks); its presence is looked up instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import math
import os
import signal
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_soak.cycles import plan_cycles
from pytest_soak.driver.records import PhaseStats
from pytest_soak.driver.replay import plan_phases
from pytest_soak.driver.targets import ServedProcess, free_loopback_port
from pytest_soak.engine import run_soak
from pytest_soak.errors import DriverError
from pytest_soak.report.progress import Progress
from pytest_soak.scaleout import protocol, replayer
from pytest_soak.scaleout.cluster import LocalProcesses
from pytest_soak.scaleout.protocol import Share
from pytest_soak.settings import Settings, resolve
from pytest_soak.traffic import Exchange, Traffic
from tests.helpers import alive

APPS_DIR = Path(__file__).parent
needs_locust = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="Locust is not installed: pip install 'pytest-soak[locust]'",
)


def _items(n: int) -> Traffic:
    return Traffic(tuple(Exchange(i * 0.01, "GET", f"/item/i{i:06d}") for i in range(n)))


def _settings(seconds: float, peak: float = 120, **scale: object) -> Settings:
    return resolve(
        {"profile": "spike-at-8am", "peak_rps": peak},
        mode="quick",
        duration_override=seconds,
        **scale,  # type: ignore[arg-type]
    )


# -- what travels and how it merges (no Locust needed) -----------------------------------------


@given(st.integers(1, 400), st.integers(1, 8), st.integers(0, 1200))
def test_every_request_belongs_to_one_worker_and_checkpoints_map_to_shares(
    size: int, workers: int, requests: int
) -> None:
    shares = [Share(i, workers, size) for i in range(workers)]
    owners = sorted(p for share in shares for p in share.positions)
    assert owners == list(range(size))
    # After `requests` requests of the run, each worker has sent exactly its own among them.
    for share in shares:
        own = sum(1 for k in range(requests) if (k % size) % workers == share.index)
        assert share.local_checkpoint(requests) == own
    assert sum(s.local_checkpoint(requests) for s in shares) == requests


@given(
    st.lists(st.floats(0.0, 5.0), min_size=1, max_size=300),
    st.lists(st.booleans(), min_size=1, max_size=300),
)
def test_phase_figures_merged_from_workers_equal_one_replays(
    latencies: list[float], owners: list[bool]
) -> None:
    """Counts summed and histograms merged from the workers' JSON give the same figures (every
    percentile included) as one replay that saw every request."""
    whole = PhaseStats("spike", 1, 10.0, 100.0)
    parts = [PhaseStats("spike", 1, 10.0, 50.0), PhaseStats("spike", 1, 10.0, 50.0)]
    for n, seconds in enumerate(latencies):
        part = parts[int(owners[n % len(owners)])]
        for stats in (whole, part):
            stats.sent += 1
            stats.latency.record(seconds)
            stats.lateness.record(seconds / 10)
            stats.lag.record(seconds / 20)
            stats.late += seconds > 2.5
            stats.capped += seconds > 3
            stats.statuses["2xx" if seconds < 4 else "5xx"] += 1
            if seconds >= 4:
                stats.note_error("5xx", "GET /x -> 500")
    merged = PhaseStats("spike", 1, 10.0, 100.0)
    for part in parts:
        protocol.merge_stats(merged, json.loads(json.dumps(protocol.stats_to_json(part, 0.0))))
    assert (merged.sent, merged.late, merged.errors) == (whole.sent, whole.late, whole.errors)
    assert (merged.capped, merged.statuses) == (whole.capped, whole.statuses)
    assert len(merged.error_samples) == min(5, whole.errors["5xx"])
    for q in (50, 90, 95, 99, 99.9, 100):
        assert merged.latency.percentile(q) == whole.latency.percentile(q)
        assert merged.lateness.percentile(q) == whole.lateness.percentile(q)
        assert merged.lag.percentile(q) == whole.lag.percentile(q)
    assert merged.latency.count == whole.latency.count == len(latencies)
    assert math.isclose(merged.latency.total, whole.latency.total, rel_tol=1e-9, abs_tol=1e-12)


def test_requests_travel_intact_and_a_changed_one_is_refused() -> None:
    exchanges = [
        Exchange(0.0, "POST", "/cart?id=1", (("Content-Type", "application/json"),), b"\x00{}"),
        Exchange(0.1, "GET", "/item/i1"),
    ]
    cycle = [exchanges[0], exchanges[1], exchanges[0]]
    distinct, order = protocol.cycle_requests(cycle)
    assert order == [0, 1, 0] and len(distinct) == 2
    travelled = json.loads(json.dumps(distinct))
    back = [protocol.exchange_from_json(r) for r in travelled]
    assert [(e.method, e.target, e.headers, e.body) for e in back] == [
        (e.method, e.target, e.headers, e.body) for e in exchanges
    ]
    digest = protocol.requests_digest(distinct, order)
    travelled[1]["target"] = "/admin"
    assert protocol.requests_digest(travelled, order) != digest
    # ... and a replayer given the changed requests with the original SHA-256 sends nothing
    job = {
        "protocol": protocol.PROTOCOL, "target": "http://127.0.0.1:9", "allowed_hosts": [],
        "requests": travelled, "order": order, "digest": digest, "index": 0, "workers": 1,
    }  # fmt: skip
    with pytest.raises(DriverError, match="do not match their SHA-256: refusing to replay"):
        asyncio.run(replayer.run_job(job, replayer._Commands(io.StringIO("")), io.StringIO()))


@pytest.mark.parametrize("text", ["nonsense", "host:", ":5558", "host:99999", "host:port"])
def test_a_bad_master_address_is_refused_naming_the_form(text: str) -> None:
    with pytest.raises(DriverError, match=r"is not HOST:PORT \(e\.g\. 127\.0\.0\.1:5558"):
        protocol.parse_address(text)


def test_master_addresses_parse() -> None:
    assert protocol.parse_address("10.0.0.5:5558") == ("10.0.0.5", 5558)
    assert protocol.parse_address("[::1]:6000") == ("::1", 6000)
    assert protocol.parse_address("soak-master.ci.svc:5558") == ("soak-master.ci.svc", 5558)


# -- the options, as a user meets them ---------------------------------------------------------


def test_help_lists_the_scale_out_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--soak-locust=HOST:PORT*",
            "*--soak-locust-workers=N*",
            "*soak_locust *default --soak-locust HOST:PORT*",
            "*soak_locust_workers (string):*",
            "*default --soak-locust-workers N*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--soak-locust=nonsense"],
            "*--soak-locust='nonsense' is not HOST:PORT (e.g. 127.0.0.1:5558*",
        ),
        (["--soak-locust=master:0"], "*--soak-locust='master:0' is not HOST:PORT*"),
        (
            ["--soak-locust-workers=0"],
            "*--soak-locust-workers='0' must be a whole number of at least 1*",
        ),
        (["--soak-locust-workers=two"], "*--soak-locust-workers='two' must be a whole number*"),
        (
            ["--soak-locust=127.0.0.1:5558", "--soak-locust-workers=2"],
            "*--soak-locust and --soak-locust-workers are two ways to get workers: give one*",
        ),
    ],
)
def test_bad_scale_out_options_are_usage_errors_before_any_test(
    soak_project: pytest.Pytester, args: list[str], message: str
) -> None:
    soak_project.makepyfile(test_never="def test_never():\n    raise AssertionError('ran')\n")
    result = soak_project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "ran" not in result.stdout.str()


def test_an_unreachable_master_fails_the_soak_test_before_any_load(
    soak_project: pytest.Pytester,
) -> None:
    port = free_loopback_port()  # nothing listens there
    soak_project.makepyfile(
        test_remote="""
        import pytest
        from apps.services import healthy_app

        @pytest.mark.soak(profile="constant", peak_rps=50)
        def test_remote(soak, replay_traffic):
            soak.run(healthy_app(), replay_traffic("items.jsonl"))
        """
    )
    result = soak_project.runpytest_subprocess(f"--soak-locust=127.0.0.1:{port}", "-p", "no:xdist")
    result.assert_outcomes(failed=1)
    where = f"127.0.0.1:{port}"
    result.stdout.fnmatch_lines([f"*DriverError: --soak-locust={where}: no Locust master at*"])


# -- against real services ---------------------------------------------------------------------


@pytest.fixture
def counting() -> ServedProcess:
    service = ServedProcess(
        [sys.executable, "-m", "uvicorn", "apps.services:counting_service", "--port", "{port}",
         "--log-level", "warning", "--no-access-log"],
        cwd=APPS_DIR,
    )  # fmt: skip
    yield service
    service.stop()


def _service_counts(service: ServedProcess) -> dict[str, int]:
    with urllib.request.urlopen(service.url + "/stats", timeout=5) as answer:
        counts: dict[str, int] = json.load(answer)
        return counts


def test_an_unreachable_master_is_an_error_before_any_load(counting: ServedProcess) -> None:
    port = free_loopback_port()  # nothing listens there
    settings = _settings(6.0, locust_master=("127.0.0.1", port))
    with pytest.raises(DriverError, match=rf"no Locust master at 127\.0\.0\.1:{port} answers"):
        run_soak(counting, _items(300), settings, check=False)
    assert _service_counts(counting)["items"] == 0


def _scaleout_pids() -> set[int]:
    """This process's descendants that are scale-out processes (masters, workers, replayers)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any("pytest_soak.scaleout" in part for part in child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            pass
    return found


@needs_locust
def test_two_workers_merge_to_the_services_own_counts(counting: ServedProcess) -> None:
    """2 local Locust workers, each its half of the plan: the merged run has the plan's
    requests in every phase, the service's own count of requests and of 500s, every phase on
    schedule, and every checkpoint taken with nothing in flight; no process is left behind."""
    settings = _settings(9.0, locust_workers=2)
    traffic = _items(300)
    seen: set[int] = set()
    result = run_soak(
        counting, traffic, settings, check=False, progress=lambda _: seen.update(_scaleout_pids())
    )
    run = result.run
    assert run.aborted is None, run.aborted
    service = _service_counts(counting)
    assert run.sent == run.planned_requests == service["items"]
    assert run.errors == sum(p.errors["5xx"] for p in run.phases) == service["errors"] > 0
    assert sum(p.statuses["5xx"] for p in run.phases) == service["errors"]
    assert sum(p.statuses["2xx"] for p in run.phases) == service["items"] - service["errors"]
    # Each phase got the requests the local driver would put in it (its rule: an arrival at or
    # past a phase's end belongs to a later phase, of this cycle or the next).
    plan = plan_cycles(traffic, settings)
    cycles = settings.warmup_cycles + settings.measured_cycles
    phases = plan_phases(plan.timeline, range(cycles))
    planned: Counter[str] = Counter()
    names: list[str] = []  # each request's phase
    at = 0
    for t in plan.arrivals(cycles):
        while at + 1 < len(phases) and t >= phases[at].end:
            at += 1
        planned[phases[at].name] += 1
        names.append(phases[at].name)
    for stats in run.phases:
        assert stats.sent == planned[stats.name], stats.name
        assert stats.latency.count == stats.lateness.count == stats.sent
        assert stats.rate_accuracy is not None and abs(stats.rate_accuracy - 1) <= 0.02, stats
    assert len(run.checkpoints) == len(result.floors) == 1 + len(plan.boundaries) * cycles
    assert all(point.drained for point in run.checkpoints)
    assert [p.requests for p in run.checkpoints] == plan.checkpoints(cycles, first=True)
    # Each floor belongs to the phase that just ended, as the local loop records it.
    index = {stats.name: stats.index for stats in run.phases}
    ended = [index[names[max(0, count - 1)]] for count in plan.checkpoints(cycles, first=True)]
    assert [p.phase for p in run.checkpoints] == ended
    assert "load from 2 local Locust workers" in run.target
    assert len(seen) >= 5  # a master, 2 workers and their 2 replayers were seen running
    assert not alive(seen)


@needs_locust
def test_a_killed_worker_fails_the_run_clearly_and_leaves_no_process(
    counting: ServedProcess,
) -> None:
    settings = _settings(20.0, locust_workers=2)
    seen: set[int] = set()
    killed: list[int] = []

    def kill_a_worker(progress: Progress) -> None:
        seen.update(_scaleout_pids())
        if killed or progress.elapsed < 4:
            return
        for pid in seen:
            try:
                if "pytest_soak.scaleout.worker" in " ".join(psutil.Process(pid).cmdline()):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            except psutil.Error:
                pass

    started = time.monotonic()
    result = run_soak(counting, _items(300), settings, check=False, progress=kill_a_worker)
    assert killed
    assert result.verdict == "error"
    assert result.run.aborted is not None
    assert f"pid {killed[0]}" in result.run.aborted and "SIGKILL" in result.run.aborted
    assert "measured:" in result.run.aborted
    assert "the run stopped early" in result.explain()
    assert 0 < result.run.sent < result.run.planned_requests
    assert time.monotonic() - started < 20  # stopped at once, not at the planned end
    assert not alive(seen)


@needs_locust
@pytest.mark.slow  # ~20 s: the master notices a lost worker by Locust's heartbeat (3 s and more)
def test_a_worker_lost_from_a_running_master_fails_the_run_the_master_carries_on(
    counting: ServedProcess,
) -> None:
    """``--soak-locust=HOST:PORT``: a master and workers started as docs/scale-out.md says
    (here on this machine); a worker killed mid-run is noticed by the master (Locust's
    heartbeat), the run fails naming it, and the master is still there for the next run."""
    processes = LocalProcesses(2)  # runs the documented master and worker commands
    try:
        address = asyncio.run(processes.start())
        master = processes.processes[0][1]
        workers = [p for name, p in processes.processes if name.startswith("worker")]
        settings = _settings(20.0, locust_master=address)

        def kill_a_worker(progress: Progress) -> None:
            if progress.elapsed > 4 and workers[0].poll() is None:
                os.kill(workers[0].pid, signal.SIGKILL)

        result = run_soak(counting, _items(300), settings, check=False, progress=kill_a_worker)
        assert workers[0].poll() is not None
        assert result.verdict == "error"
        aborted = result.run.aborted or ""
        assert "Locust worker" in aborted and ("missing" in aborted or "quit" in aborted), aborted
        assert "measured:" in aborted
        assert "load from the Locust workers of the master at" in result.run.target
        assert master.poll() is None  # a running master outlives the run
    finally:
        processes.stop()
