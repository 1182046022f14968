"""The pytest plugin (entry point ``pytest11: soak``): the hooks pytest calls, each handing
over to the module that holds its concept:

- ``options``: the ``--soak-*`` options, ini keys and marker help, and reading them back;
- ``fixtures``: ``soak``, ``replay_traffic``, ``soak_mocks`` (imported here, so pytest finds them);
- ``results``: the session's results, the soak summary, ``--soak-json``, baselines at the end;
- ``workers``: pytest-xdist: soak tests grouped on one worker, results handed to the controller.

This package is the only part of pytest-soak that imports pytest. Heavy modules are imported
inside hooks and fixtures so that merely having pytest-soak installed costs other test suites
nothing.
"""

from __future__ import annotations

import atexit
from collections.abc import Generator
from typing import Any

import pytest

from pytest_soak.errors import SoakError
from pytest_soak.plugin import options, results, workers
from pytest_soak.plugin.fixtures import replay_traffic as replay_traffic
from pytest_soak.plugin.fixtures import soak as soak
from pytest_soak.plugin.fixtures import soak_mocks as soak_mocks


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", options.marker_help())
    results.prepare(config)
    workers.use_loadgroup(config)
    if options.switch(config, "soak_prune") and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "--soak-prune needs the whole collection in one process: run it without -n"
        )
    options.locust(config)  # a bad --soak-locust* is a usage error before any test runs
    from pytest_soak.driver.targets import stop_all_served

    atexit.register(stop_all_served)


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_soak.driver.targets import stop_all_served

    stop_all_served()


def pytest_report_header(config: pytest.Config) -> str:
    duration = options.duration_override(config)
    extra = f", duration {duration:g}s" if duration is not None else ""
    return f"soak: mode {options.mode(config)}{extra}"


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    """Before -k/-m deselect anything: remember every test of every collected module (so
    --soak-prune never drops a merely deselected test's baseline), and put soak tests in one
    xdist group. After the other hooks (xdist's among them): make sure the group took."""
    results.remember_collected(config, items)
    workers.group_soak_tests(config, items)
    outcome = yield
    workers.ensure_grouped(config, items)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call":
        results.record_outcome(item, report.outcome)
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, SoakError):
        # Bad input (traffic, profile, marker, service): the message says it all; our internal
        # frames would only hide it. It starts with the error, not the test's id: the short test
        # summary shows the first line after the id it already gives.
        report.longrepr = f"{type(excinfo.value).__name__}: {excinfo.value}"
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results.write_summary(terminalreporter, config, exitstatus)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if options.is_worker(session.config):
        workers.hand_over(session.config)
    else:
        results.write_and_prune_baselines(session)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the xdist controller, before a worker starts: tell it we group soak tests."""
    workers.tell_worker(node)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: the results a worker measured."""
    workers.receive(node, error)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """``pytest_soak_*`` hooks (``hookspecs.py``): a conftest adds probes to soak runs."""
    from pytest_soak import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
