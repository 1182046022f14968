"""pytest-soak's agent loader: put on a served Python service's ``PYTHONPATH`` by ``soak.serve``.

It starts the agent (``pytest_soak_agent``) when ``PYTEST_SOAK_AGENT`` says where the harness
listens, then runs the ``sitecustomize`` the service already had, if any (the next one on
``sys.path``): it never replaces it. Nothing here may break the service: any failure is
reported to the harness when possible and otherwise ignored.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _start_agent() -> None:
    try:
        import pytest_soak_agent  # type: ignore[import-not-found,unused-ignore]

        pytest_soak_agent.start()
    except Exception:  # never break the service for its probe
        pass


def _chain() -> None:
    """Run the service's own ``sitecustomize`` (the next one on ``sys.path``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_start_agent()
_chain()
