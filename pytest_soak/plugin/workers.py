"""Soak tests under pytest-xdist: run one at a time on one worker (one ``xdist_group``,
``--dist load`` becomes ``loadgroup``), and each worker's results handed to the controller at
the end of its session (``workeroutput``). Every function here is a no-op without xdist.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_soak.plugin import options
from pytest_soak.plugin.results import NOTES_KEY, RESULTS_KEY

WORKER_OUTPUT = "pytest_soak_results"  # workeroutput key: the worker's results, as JSON
WORKER_LOADGROUP = "pytest_soak_loadgroup"  # workerinput key: the controller groups soak tests
XDIST_GROUP = "pytest-soak"


def use_loadgroup(config: pytest.Config) -> None:
    """At configure time, on the controller and on every worker."""
    if getattr(config.option, "dist", "no") == "load":
        # Soak tests share one xdist group (one worker, one at a time): memory is measured on a
        # machine that is not also running another soak. loadgroup is load for everything else.
        config.option.dist = "loadgroup"
    if getattr(config, "workerinput", {}).get(WORKER_LOADGROUP):
        # Workers build their options from the command line, not the controller's: without
        # this they would not tag grouped tests and the controller could not keep them together.
        config.option.loadgroup = True


def tell_worker(node: Any) -> None:
    """On the controller, before a worker starts: tell it whether we group soak tests."""
    node.workerinput[WORKER_LOADGROUP] = getattr(node.config.option, "dist", "no") == "loadgroup"


def group_soak_tests(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every soak test (one using the ``soak`` fixture or marked ``soak``) without an
    ``xdist_group`` of its own in ours."""
    if not (getattr(config.option, "dist", "no") == "loadgroup" or options.is_worker(config)):
        return
    for item in items:
        is_soak = "soak" in getattr(item, "fixturenames", ()) or item.get_closest_marker("soak")
        if is_soak and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUP))


def ensure_grouped(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After xdist's own hook, on a worker: make sure every grouped test got its tag."""
    if options.is_worker(config) and getattr(config.option, "loadgroup", False):
        for item in items:
            _ensure_group_suffix(item)


def _ensure_group_suffix(item: pytest.Item) -> None:
    """pytest-xdist tags a grouped test's node id with ``@group`` by assigning
    ``item._nodeid``; from pytest 9.2 the node id is derived from ``item._id``, so that
    assignment has no effect and loadgroup silently stops grouping (xdist 3.8). Apply the
    same tag the way this pytest stores node ids."""
    names = sorted(
        {
            str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")
        }
    )
    suffix = "@" + "_".join(names)
    if not names or item.nodeid.endswith(suffix):
        return
    try:
        from _pytest.nodes import coerce_node_id  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # an older pytest: xdist's assignment works there
        return
    item._id = coerce_node_id(item.nodeid + suffix)  # type: ignore[attr-defined,unused-ignore]


def hand_over(config: pytest.Config) -> None:
    """On a worker, at the end of its session: its results, for the controller."""
    results = config.stash.get(RESULTS_KEY, [])
    config.workeroutput[WORKER_OUTPUT] = json.dumps(results, default=str)  # type: ignore[attr-defined]


def receive(node: Any, error: Any) -> None:
    """On the controller, when a worker goes down: the results it measured."""
    notes = node.config.stash.setdefault(NOTES_KEY, [])
    payload = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if error is not None or payload is None:
        notes.append(
            f"soak results of xdist worker {getattr(node, 'gateway', node)} are lost: the worker "
            "went down before handing them over; rerun the soak tests"
        )
        return
    try:
        results = json.loads(payload)
    except ValueError as exc:
        notes.append(f"soak results from an xdist worker could not be read ({exc}); rerun them")
        return
    node.config.stash[RESULTS_KEY].extend(r for r in results if isinstance(r, dict))
