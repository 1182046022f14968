"""Port placeholders: ``{port}`` and ``{port:NAME}`` in a served command, its environment or a
probe's URL, filled with the free loopback ports ``soak.serve`` chose (the traffic port under
the name ``""``, an admin listener under ``"admin"``, ...); and what a loopback host is (the
driver sends traffic only there, and a probe reads only there, unless allowed)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

from pytest_soak.errors import SoakError

#: ``{port}`` (the traffic port) or ``{port:NAME}`` (a port of its own for NAME).
PLACEHOLDER = re.compile(r"\{port(?::([A-Za-z_][A-Za-z0-9_-]*))?\}")
#: The name the traffic port goes by in a table of ports.
MAIN = ""


def port_names(texts: Iterable[str]) -> list[str]:
    """The names of the ports ``texts`` ask for (``""`` for ``{port}``), first seen first."""
    names: list[str] = []
    for text in texts:
        for match in PLACEHOLDER.finditer(text):
            name = match.group(1) or MAIN
            if name not in names:
                names.append(name)
    return names


def fill_ports(text: str, ports: Mapping[str, int], where: str = "") -> str:
    """``text`` with every placeholder replaced by its port; a name with no port is an error
    naming the ports there are."""

    def port(match: re.Match[str]) -> str:
        name = match.group(1) or MAIN
        if name not in ports:
            known = ", ".join(_placeholder(n) for n in ports) or "none"
            raise SoakError(
                f"{where or text!r}: {match.group(0)} names no port of the service (ports: "
                f"{known}); soak.serve gives a port to each {{port:NAME}} in its command or env"
            )
        return str(ports[name])

    return PLACEHOLDER.sub(port, text)


def assign_ports(texts: Iterable[str], choose: Callable[[], int]) -> dict[str, int]:
    """A port for the traffic and each name the texts ask for (the traffic port always)."""
    names = port_names(texts)
    ports: dict[str, int] = {MAIN: choose()}
    for name in names:
        if name not in ports:
            port = choose()
            while port in ports.values():
                port = choose()
            ports[name] = port
    return ports


def _placeholder(name: str) -> str:
    return "{port}" if name == MAIN else f"{{port:{name}}}"


def is_loopback_host(host: str) -> bool:
    """``localhost`` and its aliases, ``127.0.0.0/8``, ``::1`` (brackets allowed)."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
