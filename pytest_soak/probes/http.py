"""``HttpProbe``: the base of the probes that read a figure of the service over HTTP (its
Prometheus endpoint, Envoy's admin, a JSON document: ``probes/endpoints.py``).

Its URLs may hold ``{port}`` and ``{port:NAME}``, filled at ``start`` from the service's ports
(``soak.serve`` chose them). They must be loopback URLs: a probe reads this machine's service,
never a production host. ``read`` is called about ten times a second and at checkpoints, so one
client (one kept-alive connection) serves every read, with a short timeout; anything that goes
wrong is a ``ProbeError`` naming the probe, the URL, what is wrong and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pytest_soak.errors import ProbeError, SoakError
from pytest_soak.ports import PLACEHOLDER, fill_ports, is_loopback_host
from pytest_soak.probes.probe import Probe, Service

if TYPE_CHECKING:
    import httpx

#: Seconds one read may take: the sampler reads ten times a second.
TIMEOUT = 1.0


class HttpProbe(Probe):
    """Reads loopback URLs (``urls``: a template by key) with one client kept for the run."""

    def __init__(self, name: str, urls: Mapping[str, str]) -> None:
        self.name = name
        self.url_templates = dict(urls)
        for template in self.url_templates.values():
            check_loopback_url(template, name)
        self.timeout = TIMEOUT
        #: The URLs with their ports filled (at ``start``).
        self.urls: dict[str, str] = {}
        self._client: httpx.Client | None = None

    def start(self, service: Service) -> None:
        import httpx

        self.urls = {key: self._fill(url, service) for key, url in self.url_templates.items()}
        # trust_env=False: a proxy set for the shell must not carry loopback reads elsewhere.
        self._client = httpx.Client(timeout=self.timeout, trust_env=False)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get(self, key: str) -> httpx.Response:
        """The answer of URL ``key`` (2xx), tried twice: one slow answer under load is not an
        error, two are."""
        import httpx

        if self._client is None:
            raise ProbeError(f"probe {self.name!r}: read() before start()")
        url = self.urls[key]
        problem = ""
        for _attempt in range(2):
            try:
                response = self._client.get(url)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout:g}s"
                continue
            except httpx.HTTPError as exc:
                raise ProbeError(
                    f"probe {self.name!r}: GET {url} failed ({type(exc).__name__}: {exc}); check "
                    "that the service listens there (its port placeholder, its admin listener)"
                ) from exc
            if response.status_code >= 400:
                raise ProbeError(
                    f"probe {self.name!r}: GET {url} answered {response.status_code} "
                    f"({_excerpt(response.text)!r}); check the URL's path"
                )
            return response
        raise ProbeError(
            f"probe {self.name!r}: GET {url}: {problem}, twice; the service is too busy to "
            "answer its metrics endpoint (or hangs): lower peak_rps, or check the service"
        )

    def get_json(self, key: str, hint: str = "") -> object:
        """The JSON document at URL ``key``; a ``ProbeError`` when the answer is not JSON."""
        response = self.get(key)
        try:
            return response.json()
        except ValueError as exc:
            raise ProbeError(
                f"probe {self.name!r}: {self.urls[key]} did not answer JSON ({exc}); "
                + (f"{hint} Its" if hint else "its")
                + f" answer began {response.text[:80]!r}"
            ) from exc

    def _fill(self, template: str, service: Service) -> str:
        if PLACEHOLDER.search(template) and not service.ports:
            raise ProbeError(
                f"probe {self.name!r}: url={template!r} names a port, but a service "
                f"{service.where} has none; give the probe a full URL, or run the service "
                "with soak.serve"
            )
        try:
            return fill_ports(template, service.ports, f"probe {self.name!r}: url={template!r}")
        except SoakError as exc:
            raise ProbeError(str(exc)) from None


def check_loopback_url(url: str, probe: str) -> None:
    """Refuse what is not an ``http://`` URL of this machine (placeholders allowed)."""
    parts = urlsplit(PLACEHOLDER.sub("1", url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(
            f"probe {probe!r}: url={url!r} is not an absolute http URL; write it like "
            "'http://127.0.0.1:{port}/metrics'"
        )
    if not is_loopback_host(parts.hostname):
        raise ProbeError(
            f"probe {probe!r}: url={url!r}: host {parts.hostname!r} is not loopback; a probe "
            "reads the service on this machine (127.0.0.1, localhost, ::1), never a remote "
            "host: serve the service here (soak.serve) or read it through a loopback port"
        )


def _excerpt(text: str, size: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."
