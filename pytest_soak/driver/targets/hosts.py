"""Where traffic may go: loopback hosts, hosts the user allowed, and a free loopback port."""

from __future__ import annotations

import socket
from collections.abc import Iterable
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


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
