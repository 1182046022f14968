"""What a soak run drives: an ASGI app, a WSGI app, a served process, or a URL with pids.

Every target knows which processes to watch for memory and opens a client for the driver.
Only loopback addresses are driven unless a host is explicitly allowed. ``as_target`` turns
what the user passed to ``soak.run`` into a target; the package's names are importable from
here, one concept a module:

- ``base``: ``Target``, what every target is
- ``hosts``: the loopback policy (``check_host_allowed``) and ``free_loopback_port``
- ``in_process``: ``AsgiTarget`` (with its lifespan), ``WsgiTarget``
- ``url``: ``UrlTarget``, a running service reached at a URL
- ``served``: ``ServedProcess``, a service started by ``soak.serve``, and its supervision
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from pytest_soak.driver.targets.base import Target
from pytest_soak.driver.targets.hosts import (
    check_host_allowed,
    free_loopback_port,
    is_loopback_host,
)
from pytest_soak.driver.targets.in_process import AsgiTarget, WsgiTarget
from pytest_soak.driver.targets.served import ServedProcess, stop_all_served
from pytest_soak.driver.targets.url import UrlTarget
from pytest_soak.errors import DriverError

__all__ = [
    "AsgiTarget",
    "ServedProcess",
    "Target",
    "UrlTarget",
    "WsgiTarget",
    "as_target",
    "check_host_allowed",
    "free_loopback_port",
    "is_loopback_host",
    "stop_all_served",
]


def as_target(obj: object, *, allowed_hosts: Iterable[str] = ()) -> Target:
    """Turn what the user passed to ``soak.run`` into a ``Target``."""
    if isinstance(obj, UrlTarget):
        check_host_allowed(obj.url, allowed_hosts)
        return obj
    if isinstance(obj, Target):
        return obj
    if isinstance(obj, str):
        check_host_allowed(obj, allowed_hosts)
        raise DriverError(
            f"target={obj!r}: a URL alone gives no process to measure; pass "
            f"soak.url({obj!r}, pid=...) with the service's pid, or start it with soak.serve([...])"
        )
    if callable(obj):
        call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
        if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(obj):
            return AsgiTarget(obj)
        return WsgiTarget(obj)
    raise DriverError(
        f"target={obj!r} is not something soak.run can drive; pass an ASGI app, a WSGI app, "
        "soak.serve([...]) or soak.url('http://127.0.0.1:8000', pid=...)"
    )
