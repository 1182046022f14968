"""Port placeholders: ``{port}`` and ``{port:NAME}`` in a served command and its environment,
each given a free loopback port of its own, and the table a probe is told; a port taken by
another process before the service bound it is chosen again."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import urllib.request
from itertools import count
from pathlib import Path

import pytest

from pytest_soak.driver.targets import ServedProcess, UrlTarget, free_loopback_port
from pytest_soak.errors import DriverError, SoakError
from pytest_soak.ports import assign_ports, fill_ports, port_names


def test_each_name_gets_a_port_of_its_own_and_the_traffic_port_always_one() -> None:
    texts = ["--port={port}", "--admin={port:admin}", "{port:admin}", "--x={port:metrics-1}"]
    assert port_names(texts) == ["", "admin", "metrics-1"]
    chosen = iter([8000, 8000, 8001, 8001, 8002])  # a port chosen twice is chosen again
    ports = assign_ports(texts, lambda: next(chosen))
    assert ports == {"": 8000, "admin": 8001, "metrics-1": 8002}
    assert assign_ports(["serve"], count(9000).__next__) == {"": 9000}
    assert fill_ports("a={port:admin} b={port}", ports) == "a=8001 b=8000"


def test_a_placeholder_naming_no_port_is_a_clear_error() -> None:
    with pytest.raises(
        SoakError, match=r"\{port:stats\} names no port .*ports: \{port\}, \{port:admin\}"
    ):
        fill_ports("http://127.0.0.1:{port:stats}/m", {"": 1, "admin": 2})


ECHO_ENV = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
    """
)


def test_a_served_command_and_its_environment_get_their_named_ports(tmp_path: Path) -> None:
    (tmp_path / "echo_env.py").write_text(ECHO_ENV)
    served = ServedProcess(
        [sys.executable, "echo_env.py", "{port}", "--admin={port:admin}"],
        env={"ADMIN_URL": "http://127.0.0.1:{port:admin}/", "STATS": "{port:stats}"},
        cwd=tmp_path, agent=False,
    )  # fmt: skip
    try:
        with urllib.request.urlopen(served.url + "/health", timeout=5) as answer:
            seen = json.loads(answer.read())
    finally:
        served.stop()
    ports = served.ports
    assert set(ports) == {"", "admin", "stats"} and len(set(ports.values())) == 3
    assert seen["argv"] == [str(ports[""]), f"--admin={ports['admin']}"]
    env = seen["env"]
    assert env["ADMIN_URL"] == f"http://127.0.0.1:{ports['admin']}/"
    assert env["STATS"] == str(ports["stats"])
    assert env["SOAK_PORT"] == str(ports[""])
    assert env["SOAK_PORT_ADMIN"] == str(ports["admin"])
    assert env["SOAK_PORT_STATS"] == str(ports["stats"])
    assert served.port_table() == ports


@pytest.mark.parametrize(
    ("url", "table"),
    [
        ("http://127.0.0.1:8123", {"": 8123}),
        ("http://localhost", {"": 80}),
        ("https://localhost/x", {"": 443}),
    ],
)
def test_a_running_services_url_gives_its_traffic_port(url: str, table: dict[str, int]) -> None:
    assert UrlTarget(url, [1]).port_table() == table


def test_a_free_port_is_chosen_below_the_ephemeral_range_where_no_connection_takes_it() -> None:
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if not ephemeral.exists():
        pytest.skip("the kernel's ephemeral range is read from /proc on Linux only")
    start = int(ephemeral.read_text().split()[0])
    chosen = {free_loopback_port() for _ in range(20)}
    assert all(10_000 <= port < start for port in chosen), chosen
    assert len(chosen) > 1  # drawn at random, so two pytest workers seldom draw alike
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", chosen.pop()))  # and free


def test_a_port_taken_before_the_service_binds_it_is_chosen_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "echo_env.py").write_text(ECHO_ENV)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        chosen: list[int] = [taken_port]  # the race: another process binds it after we chose it

        def choose() -> int:
            chosen.append(free_loopback_port())
            return chosen.pop(0)

        monkeypatch.setattr("pytest_soak.driver.targets.served.free_loopback_port", choose)
        served = ServedProcess(
            [sys.executable, "echo_env.py", "{port}"], ready="/", cwd=tmp_path, agent=False
        )
        try:
            with urllib.request.urlopen(served.url + "/", timeout=5) as answer:
                seen = json.loads(answer.read())
        finally:
            served.stop()
    assert served.port != taken_port
    assert seen["argv"] == [str(served.port)]


def test_a_service_that_fails_for_another_reason_is_started_once(tmp_path: Path) -> None:
    (tmp_path / "fails.py").write_text(
        "import sys\nopen('starts.txt', 'a').write('start\\n')\n"
        "sys.exit('no database at DATABASE_URL')\n"
    )
    with pytest.raises(DriverError, match=r"exited with exit status 1 before it was ready"):
        ServedProcess([sys.executable, "fails.py", "{port}"], cwd=tmp_path, agent=False)
    assert (tmp_path / "starts.txt").read_text() == "start\n"
