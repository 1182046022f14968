"""Where traffic may go: loopback hosts, hosts the user allowed, and a free loopback port."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from pytest_soak.errors import DriverError
from pytest_soak.ports import is_loopback_host

__all__ = ["check_host_allowed", "free_loopback_port", "is_loopback_host"]


def check_host_allowed(url: str, allowed_hosts: Iterable[str]) -> None:
    """Refuse a non-loopback target unless its host was allowed with ``--soak-allow-host``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DriverError(
            f"url={url!r} is not an absolute http(s) URL like 'http://127.0.0.1:8000'"
        )
    host = parts.hostname
    if is_loopback_host(host) or host.lower() in {h.lower() for h in allowed_hosts}:
        return
    raise DriverError(
        f"url={url!r}: refusing to send traffic to non-loopback host {host!r}. Soak tests replay "
        f"recorded production traffic; sending it anywhere but this machine must be explicit: "
        f"pass --soak-allow-host={host} (or ini soak_allow_hosts) if this host is a test system."
    )


# Ports below the kernel's ephemeral range are never handed to outgoing connections, so a port
# chosen there is not taken by a client's source port between our check and the service's bind
# (the ephemeral range itself is what ``bind(0)`` draws from, and what every connect draws from).
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_CHOSEN = 10_000
_TRIES = 50
_RANDOM = random.SystemRandom()  # not the global generator, which a test may seed alike


def free_loopback_port() -> int:
    """A loopback TCP port nothing is bound to now: drawn at random below the ephemeral range
    when the kernel says where that is (Linux), else whatever ``bind(0)`` gives."""
    below = _ephemeral_start()
    if below is not None and below - _LOWEST_CHOSEN >= 1_000:
        for _ in range(_TRIES):
            port = _RANDOM.randrange(_LOWEST_CHOSEN, below)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def _ephemeral_start() -> int | None:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
