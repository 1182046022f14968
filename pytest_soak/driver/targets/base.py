"""``Target``: what every kind of target is — a name, the pids to watch, and a client."""

from __future__ import annotations

from pytest_soak.agent import AgentHub
from pytest_soak.driver.clients import Client


class Target:
    """Base of every target: a name, the pids whose memory is the service's, and a client."""

    kind = "target"
    in_process = False

    def describe(self) -> str:
        return self.kind

    def pids(self) -> list[int]:
        return []

    def port_table(self) -> dict[str, int]:
        """The service's loopback ports by name (``""``: the traffic's; ``soak.serve`` names the
        others after ``{port:NAME}``): what a probe's URL can name."""
        return {}

    def agent_hub(self) -> AgentHub | None:
        """The channel to the agents inside the service (``soak.serve`` of a Python service)."""
        return None

    def failure(self) -> str | None:
        """Why the target can no longer serve (e.g. its process exited), or None."""
        return None

    def source_dirs(self) -> list[str]:
        """Folders holding the service's own code (for allocation sites), if known."""
        return []

    async def open_client(self, concurrency: int, timeout: float) -> Client:
        raise NotImplementedError

    async def before_run(self) -> None:
        """Called in the run's event loop before the first request."""

    async def after_run(self) -> None:
        """Called in the run's event loop after the last request."""
