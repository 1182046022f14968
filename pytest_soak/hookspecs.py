"""The hooks pytest-soak adds to pytest (``pytest_soak_*``); registered by ``plugin.py``'s
``pytest_addhooks``. Implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_soak.probes import Probe


@pytest.hookspec
def pytest_soak_probes(config: pytest.Config) -> Sequence[Probe] | None:
    """Extra probes for a soak run: read beside the built-in ones (samples and floors), in
    the JSON results and, unless a probe says its metric is judged, secondary metrics (at most
    *suspicious*). Called for every ``soak.run``, so fresh probes may be returned each time;
    every implementation's probes are added (docs/probes.md).

    :param config: the pytest config.
    :return: the probes (``pytest_soak.probes.Probe``), or None for none.
    """
    return None
