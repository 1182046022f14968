"""Probes: the metric table, the registry's checks, a run's session, the sampler's and floors'
bounded storage, allocation sites, and a suite's own probe through ``pytest_soak_probes``."""

from __future__ import annotations

import json
import math
import os
import re
import textwrap

import pytest

from pytest_soak.analysis import Limits, judge_metric
from pytest_soak.errors import ProbeError
from pytest_soak.probes import (
    IN_PROCESS,
    METRICS,
    SERVED,
    FloorTable,
    Metric,
    Probe,
    ProbeSession,
    PythonHeap,
    Service,
    callable_probe,
    metric_named,
)
from pytest_soak.probes.floors import read_floor
from pytest_soak.probes.registry import PROBES, ProbeRegistry, check_probe, check_unique
from pytest_soak.probes.sampler import SampleSeries
from pytest_soak.settings import resolve

KiB = 1024
IN_THIS_PROCESS = Service(in_process=True, pids=(os.getpid(),))


class Gauge(Probe):
    """A suite's own probe: reads a number it is handed (a service's counter or gauge)."""

    def __init__(self, name: str = "gauge", metric: str = "level", where: str = "") -> None:
        self.name = name
        self.metrics = (Metric(metric, "queue level", "items", 10.0, 1.0),)
        self.where = frozenset({where}) if where else frozenset({IN_PROCESS, SERVED})
        self.value = 0.0
        self.started: Service | None = None

    def start(self, service: Service) -> None:
        self.started = service

    def read(self) -> dict[str, float]:
        return {self.metrics[0].name: self.value}


# -- metrics ------------------------------------------------------------------------------------


def test_the_metric_table_holds_each_built_in_metric_under_its_own_name() -> None:
    assert {"heap", "blocks", "rss", "uss"} <= set(METRICS)
    assert all(name == metric.name for name, metric in METRICS.items())
    assert METRICS["heap"].unit == METRICS["rss"].unit == "bytes"
    assert METRICS["rss"].noise == 1024 * 1024 > METRICS["heap"].noise
    assert metric_named("uss") is METRICS["uss"]
    assert metric_named("queue") == Metric("queue", "queue", "", 0.0, 0.0)


def test_a_metric_owns_its_noise_floor() -> None:
    """The same floors are a leak of a metric whose noise is small and ok for a noisy one."""
    floors = [1000.0 + 30 * k for k in range(9)]  # +30 a cycle, 240 in all
    requests = [100 * k for k in range(9)]
    quiet = Metric("queue", "queue length", "items", noise=100, step=5)
    noisy = Metric("queue", "queue length", "items", noise=1000, step=50)
    leak = judge_metric(quiet, floors, requests, Limits())
    assert leak.verdict == "leak"
    assert "queue length grew" in leak.reason and "items" in leak.reason
    assert judge_metric(noisy, floors, requests, Limits()).verdict == "ok"


# -- registry -----------------------------------------------------------------------------------


def test_the_built_in_probes_that_apply_to_where_the_service_runs() -> None:
    assert [p.name for p in PROBES.probes_for(IN_THIS_PROCESS)] == ["python-heap", "process-rss"]
    served = Service(in_process=False, pids=(os.getpid(),))
    assert [p.name for p in PROBES.probes_for(served)] == ["python-agent", "process-tree"]
    first, again = PROBES.probes_for(served)[0], PROBES.probes_for(served)[0]
    assert first is not again  # a fresh probe for every run


def test_registering_a_probe_name_twice_is_a_clear_error() -> None:
    registry = ProbeRegistry()
    registry.register(Gauge)
    with pytest.raises(ProbeError, match=r"probe name='gauge' is registered twice .*own"):
        registry.register(lambda: Gauge(metric="other"))
    assert registry.names == ["gauge"]


def test_a_run_refuses_two_probes_with_one_name_or_one_metric() -> None:
    with pytest.raises(ProbeError, match="two probes are named 'gauge'"):
        check_unique([Gauge(metric="a"), Gauge(metric="b")])
    with pytest.raises(ProbeError, match=r"metric 'rss' is read by two probes \('process-rss'"):
        ProbeSession(IN_THIS_PROCESS, [Gauge(metric="rss")])


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        (object(), r"gave <object .*>, which is not a probe: it has no name, metrics, read,"),
        (Gauge(name=""), "name=''"),
        (Gauge(where="everywhere"), r"where=\['everywhere'\] must name"),
    ],
)
def test_what_is_not_a_usable_probe_is_named(probe: object, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        check_probe(probe, "pytest_soak_probes")


def test_roles_must_name_the_probes_own_metrics() -> None:
    judged = Gauge()
    judged.judged = frozenset({"heap"})
    with pytest.raises(ProbeError, match=r"judged=\['heap'\] are not among its metrics"):
        check_probe(judged, "test")


def test_a_hook_that_returns_a_single_probe_instead_of_a_list_is_named() -> None:
    with pytest.raises(ProbeError, match=r"pytest_soak_probes returned <.*Gauge.*>; return a list"):
        resolve({"peak_rps": 10}, mode="quick", probe_lists=[Gauge()])  # type: ignore[list-item]
    probes = resolve({"peak_rps": 10}, mode="quick", probe_lists=[[Gauge()], []]).probes
    assert [p.name for p in probes] == ["gauge"]


# -- session ------------------------------------------------------------------------------------


def test_an_in_process_session_judges_the_heap_and_reads_a_suites_probe_beside_it() -> None:
    gauge, elsewhere = Gauge(), Gauge(name="served-only", metric="x", where=SERVED)
    session = ProbeSession(IN_THIS_PROCESS, [gauge, elsewhere])
    assert [p.name for p in session.probes] == ["python-heap", "process-rss", "gauge"]
    assert session.judged_metrics == ["heap"] and session.sample_metric == "heap"
    assert session.secondary_metrics == {
        "rss": "in process, RSS includes the harness",
        "level": "a custom probe's metric: reported, not judged",
    }
    assert session.metric_table["level"] is gauge.metrics[0]
    session.start()
    try:
        assert gauge.started == IN_THIS_PROCESS
        assert session.attribution() is not None
        gauge.value = 7.0
        floor = session.floor()
        assert floor["level"] == 7.0
        assert floor["heap"] > 0 and floor["rss"] > 10 * 2**20
        assert {"heap", "blocks", "gc0", "gc2", "rss", "level"} == set(session.sample())
    finally:
        session.stop()
    assert session.attribution() is None
    assert session.harness["rss_end"] > 0 and session.harness["rss_start"] > 0


def test_a_served_session_without_an_agent_judges_uss_and_keeps_rss_secondary() -> None:
    session = ProbeSession(Service(in_process=False, pids=(os.getpid(),)))
    assert session.judged_metrics == ["service_heap", "uss"]  # if an agent answers
    session.start()
    try:
        assert session.judged_metrics == ["uss"]  # none: soak.url, or agent=False
        assert list(session.secondary_metrics) == ["rss"]
        assert session.notes == []  # nothing to say: the agent does not apply here
        floor = session.floor()
    finally:
        session.stop()
    assert 0 < floor["uss"] <= floor["rss"]


# -- floors, samples, sites ---------------------------------------------------------------------


def test_a_floor_is_the_lowest_of_a_few_reads() -> None:
    values = iter([5.0, 3.0, 4.0])
    assert read_floor([lambda: {"m": next(values)}], pause=0) == {"m": 3.0}


def test_floor_rows_keep_what_each_checkpoint_read() -> None:
    table = FloorTable(2)
    table.store({"heap": 1.0, "rss": 2.0})
    table.store({"heap": 3.0})
    table.store({"heap": 4.0, "rss": 5.0})  # beyond the capacity planned: still kept
    assert table.rows() == [{"heap": 1.0, "rss": 2.0}, {"heap": 3.0}, {"heap": 4.0, "rss": 5.0}]


def test_samples_stay_within_their_capacity_by_halving_their_resolution() -> None:
    series = SampleSeries(capacity=8)
    for t in range(100):
        series.add(float(t), {"heap": float(t)})
    points = series.points
    assert 4 <= len(points) < 8
    times = [t for t, _ in points]
    assert times == sorted(times) and times[0] == 0.0
    assert not any(math.isnan(values["heap"]) for _, values in points)


def _keep(kept: list[bytes]) -> None:
    kept.append(os.urandom(64 * KiB))


def test_the_heap_names_the_site_that_holds_memory() -> None:
    heap = PythonHeap(frames=5, service_dirs=[os.path.dirname(__file__)])
    heap.start()
    kept: list[bytes] = []
    try:
        _keep(kept)
        sites, _harness = heap.sites()
    finally:
        heap.stop()
    site, size = max(sites.items(), key=lambda item: item[1])
    assert size >= 64 * KiB
    assert (os.path.basename(site.filename), site.function) == ("test_probes.py", "_keep")
    assert "os.urandom" in str(site)


# -- a suite's own probe, as a user meets it ----------------------------------------------------

COUNTER_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

served = [0]


async def item(request):
    served[0] += 1
    return JSONResponse({"id": request.path_params["item_id"]})


app = Starlette(routes=[Route("/item/{item_id}", item)])
"""

COUNTER_PROBE = """
import counter_app
from pytest_soak.probes import Metric, Probe


class RequestsServed(Probe):
    name = "requests-served"
    metrics = (Metric("requests_served", "requests served", "requests", 0, 0),)
    secondary_reason = "it counts requests, not memory"

    def read(self):
        return {"requests_served": float(counter_app.served[0])}


def pytest_soak_probes(config):
    return [RequestsServed()]
"""


def test_a_suites_probe_is_sampled_floored_and_judged_as_secondary(
    soak_project: pytest.Pytester,
) -> None:
    soak_project.makepyfile(counter_app=COUNTER_APP, conftest=COUNTER_PROBE)
    soak_project.makepyfile(
        test_counter=textwrap.dedent(
            """
            import pytest
            from counter_app import app

            @pytest.mark.soak(profile="constant", peak_rps=100)
            def test_counter(soak, replay_traffic):
                soak.run(app, replay_traffic("items.jsonl"))
            """
        )
    )
    result = soak_project.runpytest_subprocess(
        "--soak-duration=6s", "-p", "no:cacheprovider", "--soak-json=soak.json"
    )
    result.assert_outcomes(passed=1)  # a secondary metric never fails the test
    result.stdout.fnmatch_lines(["*soak summary*", "test_counter.py::test_counter *SUSPICIOUS*"])
    [entry] = json.loads((soak_project.path / "soak.json").read_text())["results"]
    sent = entry["run"]["sent"]
    floors = [checkpoint["floor"]["requests_served"] for checkpoint in entry["checkpoints"]]
    assert floors[0] == 0 and floors[-1] == sent > 0  # every request counted by the last floor
    assert all("requests_served" in sample for sample in entry["samples"])
    judged = {j["metric"]: j for j in entry["judgements"]}
    assert list(judged) == ["heap", "rss", "requests_served"]
    counter = judged["requests_served"]
    assert counter["verdict"] == "suspicious"  # grew every cycle: a leak, demoted
    assert counter["reason"].startswith("requests served grew in every one of 8")
    assert counter["reason"].endswith("not judged as a leak: it counts requests, not memory")


def test_a_suites_probe_named_like_a_built_in_one_is_a_clear_error(
    soak_project: pytest.Pytester,
) -> None:
    soak_project.makepyfile(
        counter_app=COUNTER_APP,
        conftest=COUNTER_PROBE.replace('name = "requests-served"', 'name = "python-heap"'),
    )
    soak_project.makepyfile(
        test_counter=textwrap.dedent(
            """
            from counter_app import app

            def test_counter(soak, replay_traffic):
                soak.run(app, replay_traffic("items.jsonl"), peak_rps=100)
            """
        )
    )
    result = soak_project.runpytest("--soak-duration=6s", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ProbeError: two probes are named 'python-heap' (PythonHeapProbe and RequestsServed)*"]
    )


# -- a probe's sample gap, plain functions as probes --------------------------------------------


class Counting(Probe):
    """Counts its reads; read at most every ``sample_gap`` seconds between checkpoints."""

    name = "counting"
    metrics = (Metric("reads", "reads", "reads", 0.0, 0.0),)
    sample_gap = 60.0

    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> dict[str, float]:
        self.reads += 1
        return {"reads": float(self.reads)}


def test_a_probe_with_a_sample_gap_is_sampled_that_often_and_read_afresh_at_a_floor() -> None:
    probe = Counting()
    session = ProbeSession(IN_THIS_PROCESS, [probe])
    session.start()
    try:
        first = session.sample()["reads"]
        assert [session.sample()["reads"] for _ in range(5)] == [first] * 5  # the last figures
        assert probe.reads == 1
        assert session.floor()["reads"] == 2.0  # the lowest of three fresh reads
        assert probe.reads == 4
        assert session.sample()["reads"] == first  # within the gap: the last sample stands
    finally:
        session.stop()


def test_a_plain_function_is_a_probe_of_one_metric_named_after_it() -> None:
    queue: list[int] = [1, 2, 3]

    def queue_depth() -> float:
        return float(len(queue))

    session = ProbeSession(IN_THIS_PROCESS, [queue_depth])
    session.start()
    try:
        assert session.sample()["queue_depth"] == 3.0
        queue.append(4)
        assert session.floor()["queue_depth"] == 4.0
    finally:
        session.stop()
    assert (
        session.secondary_metrics["queue_depth"] == "a custom probe's metric: reported, not judged"
    )
    judged = callable_probe(queue_depth, name="depth", unit="items", judged=True)
    assert judged.judged == {"depth"} and judged.read() == {"depth": 4.0}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: callable_probe(lambda: 1.0), "a lambda has no name to read it by"),
        (
            lambda: callable_probe(lambda: True, name="flag").read(),
            "returned True; return a number",
        ),
        (
            lambda: callable_probe(lambda: math.nan, name="x").read(),
            "returned nan; return a number",
        ),
    ],
)
def test_a_plain_function_that_cannot_be_a_probe_is_named(make: object, message: str) -> None:
    with pytest.raises(ProbeError, match=re.escape(message)):
        make()  # type: ignore[operator]
