"""Mocks of a service's downstream dependencies, optionally misbehaving on purpose (chaos).

``MockSet`` is what the ``soak_mocks`` fixture returns: one set of stubs (WireMock mappings or
recorded outbound traffic), answered in process through respx (httpx calls) or by a loopback
server process (``serve=True``). See docs/mocks.md.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_soak.errors import MockError
from pytest_soak.mocks.chaos import DEFAULT_SEED, Chaos
from pytest_soak.mocks.definitions import MockDefinitions, Stub
from pytest_soak.mocks.loading import MockSource, load_mocks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_soak.mocks.responder import Responder
    from pytest_soak.mocks.server import MockServer
    from pytest_soak.mocks.transport import InProcessMocks

__all__ = ["Chaos", "MockDefinitions", "MockSet", "MockSource", "Stub", "load_mocks"]


class MockSet:
    """A running set of mocks: ``url`` and ``pid`` (served), ``stats()``, ``reset()``, ``stop()``.

    ``stats()`` is a dict: ``requests``, ``matched`` (per stub), ``unmatched_count``,
    ``unmatched`` (at most 50 distinct ``{method, path, closest, count}``), ``injected``
    (chaos, per kind: ``status 503``, ``latency``, ``reset``…), ``scenarios``.
    """

    def __init__(
        self,
        definitions: MockDefinitions,
        *,
        serve: bool = False,
        chaos: Chaos | None = None,
        seed: int | None = None,
        hosts: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        if chaos is not None and not isinstance(chaos, Chaos):
            raise MockError(f"chaos={chaos!r} must be a Chaos(...) or None")
        self.definitions = definitions
        self.name = name or definitions.source
        self.chaos = chaos
        base_seed = DEFAULT_SEED if seed is None else seed
        self.seed = chaos.seed if chaos is not None and chaos.seed is not None else base_seed
        self.served = serve
        self._server: MockServer | None = None
        self._responder: Responder | None = None
        self._in_process: InProcessMocks | None = None
        self._stopped = False
        if serve:
            from pytest_soak.mocks.server import MockServer

            self._server = MockServer(definitions.stubs, chaos, self.seed)
        else:
            from pytest_soak.mocks.responder import Responder
            from pytest_soak.mocks.transport import InProcessMocks

            self._responder = Responder(definitions.stubs, chaos, self.seed)
            self._in_process = InProcessMocks(self._responder, hosts)
            self._in_process.start()

    @classmethod
    def load(
        cls,
        source: MockSource,
        *,
        serve: bool = False,
        chaos: Chaos | None = None,
        seed: int | None = None,
        hosts: Sequence[str] | None = None,
        **options: Any,
    ) -> MockSet:
        """``load_mocks(source, **options)`` then start it. Served sets ignore the recorded
        host (requests arrive addressed to the loopback server)."""
        options.setdefault("match_host", not serve)
        return cls(load_mocks(source, **options), serve=serve, chaos=chaos, seed=seed, hosts=hosts)

    @property
    def stubs(self) -> tuple[Stub, ...]:
        return self.definitions.stubs

    @property
    def url(self) -> str:
        """Base URL of the loopback server (``serve=True`` only)."""
        if self._server is None:
            raise MockError(
                f"mocks {self.name!r} run in process (respx answers httpx calls) and have no "
                "URL; pass serve=True for a loopback server that other processes can call"
            )
        return self._server.url

    @property
    def pid(self) -> int | None:
        """The loopback server's process id (``None`` in process)."""
        return self._server.pid if self._server is not None else None

    def memory(self) -> int:
        """Resident memory of the loopback server process in bytes (0 in process)."""
        return self._server.memory() if self._server is not None else 0

    def stats(self) -> dict[str, Any]:
        if self._server is not None:
            stats = self._server.stats()
        else:
            assert self._responder is not None
            stats = self._responder.stats()
        stats["transport"] = "served" if self.served else "in-process"
        if self.definitions.ignored:
            stats["ignored"] = list(self.definitions.ignored)
        return stats

    def reset(self) -> None:
        """Start over: journal, scenarios, response cycles and the chaos sequence."""
        if self._server is not None:
            self._server.reset()
        elif self._responder is not None:
            self._responder.reset()

    def stop(self) -> None:
        """Stop answering (in process: httpx calls go to the network again); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.stop()
        if self._in_process is not None:
            self._in_process.stop()

    def __enter__(self) -> MockSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._server.url if self._server is not None else "in process"
        return f"<MockSet {self.name!r} stubs={len(self.stubs)} {where}>"
