"""The loopback mock server process and the in-process transport: faults as a client meets them,
the admin endpoints, bounded journals, and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from pytest_soak import Chaos, MockError, MockSet
from pytest_soak.mocks.journal import MAX_UNMATCHED
from pytest_soak.mocks.transport import _ROUTER

CHARGE = [
    {"request": {"method": "POST", "url": "/charge"}, "response": {"status": 200, "body": "ok"}}
]
FAULT_ERRORS = {
    "reset": (httpx.ReadError, httpx.RemoteProtocolError),
    "empty": (httpx.RemoteProtocolError,),
    "malformed_chunk": (httpx.RemoteProtocolError,),
    "random_data": (httpx.RemoteProtocolError, httpx.ReadError),
}


@pytest.mark.parametrize("serve", [True, False], ids=["served", "in-process"])
@pytest.mark.parametrize("fault", sorted(FAULT_ERRORS))
def test_faults_reach_the_client_as_transport_errors(serve: bool, fault: str) -> None:
    with MockSet.load(CHARGE, serve=serve, chaos=Chaos(faults={fault: 1.0})) as mocks:
        base = mocks.url if serve else "http://payments.example"
        with pytest.raises(FAULT_ERRORS[fault]):
            httpx.post(f"{base}/charge")
        assert mocks.stats()["injected"] == {fault: 1}


def test_wiremock_faults_in_a_mapping_are_served() -> None:
    mapping = [{"request": {"url": "/x"}, "response": {"fault": "CONNECTION_RESET_BY_PEER"}}]
    with MockSet.load(mapping, serve=True) as mocks, pytest.raises(httpx.TransportError):
        httpx.get(f"{mocks.url}/x")


def test_admin_endpoints_and_keep_alive() -> None:
    with MockSet.load(CHARGE, serve=True) as mocks:
        assert mocks.pid is not None and psutil.pid_exists(mocks.pid)
        with httpx.Client(base_url=mocks.url) as client:  # one connection, many requests
            for _ in range(20):
                assert client.post("/charge").text == "ok"
            assert client.get("/__soak/stats").json()["requests"] == 20  # admin is not counted
        assert mocks.stats()["matched"] == {"<inline mappings>": 20}
        mocks.reset()
        assert mocks.stats()["requests"] == 0
        pid = mocks.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_in_process_sets_have_no_url() -> None:
    with MockSet.load(CHARGE) as mocks, pytest.raises(MockError, match="pass serve=True"):
        _ = mocks.url


@pytest.mark.parametrize("serve", [True, False], ids=["served", "in-process"])
def test_the_journal_is_bounded(serve: bool) -> None:
    with MockSet.load(CHARGE, serve=serve) as mocks:
        base = mocks.url if serve else "http://payments.example"
        with httpx.Client(base_url=base) as client:
            for n in range(MAX_UNMATCHED + 150):
                client.get(f"/missing/{n}")
            for _ in range(300):
                client.post("/charge")
        stats = mocks.stats()
        if not serve:
            assert len(_ROUTER.calls) == 0  # respx's own call list is not kept
    assert stats["requests"] == MAX_UNMATCHED + 450
    assert len(stats["unmatched"]) == MAX_UNMATCHED
    assert stats["unmatched_not_listed"] == 150
    assert stats["unmatched_count"] == MAX_UNMATCHED + 150


def test_served_memory_does_not_grow_with_requests() -> None:
    """Short version of benchmarks/mock_memory.py: after a warm-up, thousands more requests (with
    chaos and new unmatched paths) leave the server's RSS where it was, give or take."""
    chaos = Chaos(error_rate=0.1, statuses=[503])
    mocks = MockSet.load(CHARGE, serve=True, chaos=chaos)
    with mocks, httpx.Client(base_url=mocks.url) as client:

        def load(count: int, offset: int) -> None:
            for n in range(count):
                client.post("/charge")
                if n % 10 == 0:
                    client.get(f"/unknown/{offset + n}")

        load(1500, 0)
        before = mocks.memory()
        load(3000, 10_000)
        after = mocks.memory()
    assert before > 0
    assert after - before < 4 * 1024 * 1024, (before, after)


def test_the_server_dies_with_its_parent(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from pytest_soak import MockSet
            mocks = MockSet.load([{"request": {}, "response": {}}], serve=True)
            print(mocks.pid, flush=True)
            time.sleep(60)
            """
        )
    )
    temp = tmp_path / "temp"
    temp.mkdir()
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert psutil.pid_exists(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child) and time.monotonic() < deadline:
            try:
                if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
        assert not alive
        # ... and an orphaned server removes its own folder of definitions and log.
        assert list(temp.glob("pytest-soak-mocks-*")) == []
    finally:
        if parent.poll() is None:
            parent.kill()
