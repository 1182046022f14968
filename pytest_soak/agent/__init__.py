"""The agent for Python services started by ``soak.serve``.

Two halves: ``boot/`` is what runs *inside* the service (a ``sitecustomize`` on its
``PYTHONPATH`` that starts ``pytest_soak_agent``, standard library only), and ``hub`` is the
harness's end: a loopback listener the agents connect to, authenticated by a per-service token,
that sends them commands and gathers their answers (``probes/agent.py`` reads it).
"""

from __future__ import annotations

from pytest_soak.agent.hub import BOOT_DIR, ENV, AgentHub

__all__ = ["BOOT_DIR", "ENV", "AgentHub"]
