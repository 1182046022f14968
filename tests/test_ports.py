"""Port placeholders: ``{port}`` and ``{port:NAME}`` in a served command and its environment,
each given a free loopback port of its own, and the table a probe is told."""

from __future__ import annotations

import json
import sys
import textwrap
import urllib.request
from itertools import count
from pathlib import Path

import pytest

from pytest_soak.driver.targets import ServedProcess, UrlTarget
from pytest_soak.errors import SoakError
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
