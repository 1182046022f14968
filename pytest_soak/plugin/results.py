"""The session's soak results: kept as JSON-able dicts in ``config.stash`` as tests run (on
whichever process runs them), told whether their test passed, and at the session's end (on the
xdist controller or a plain run) shown in the ``soak summary``, written to ``--soak-json`` and
recorded or pruned as baselines. ``workers`` carries them from xdist workers to the controller.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_soak.plugin import options

RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
NOTES_KEY = pytest.StashKey[list[str]]()  # lines for the soak summary besides the results
COLLECTED_KEY = pytest.StashKey[dict[str, set[str]]]()  # module file -> every test name in it


def prepare(config: pytest.Config) -> None:
    """An empty list of results and record of the collection, for this session."""
    config.stash[RESULTS_KEY] = []
    config.stash[COLLECTED_KEY] = {}


def item_test_name(item: pytest.Item) -> str:
    """The test's name within its module (``TestShop::test_x[param]``), from the node chain:
    node ids get an ``@group`` suffix on xdist workers, for any xdist_group. Baselines are
    keyed by it."""
    names: list[str] = []
    for node in item.listchain():
        if isinstance(node, pytest.Module):
            names = []
        elif names or isinstance(node, (pytest.Class, pytest.Function)):
            names.append(node.name)
    return "::".join(names)


def item_test_id(item: pytest.Item) -> str:
    """``path/to/test_module.py::test_name``: a result's ``test_id``."""
    return f"{item.nodeid.split('::', 1)[0]}::{item_test_name(item)}"


def remember_collected(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before -k/-m deselect anything: every test of every collected module, so that
    --soak-prune never drops a merely deselected test's baseline."""
    collected = config.stash[COLLECTED_KEY]
    for item in items:
        collected.setdefault(str(item.path), set()).add(item_test_name(item))


def record_outcome(item: pytest.Item, outcome: str) -> None:
    """Results learn whether their test passed: only those are recorded as baselines."""
    tested = item_test_id(item)
    for result in item.config.stash.get(RESULTS_KEY, []):
        if result.get("test_id") == tested and "outcome" not in result:
            result["outcome"] = outcome


def write_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The ``soak summary`` section, and the JSON and HTML reports if they are asked for."""
    results = config.stash.get(RESULTS_KEY, [])
    notes = config.stash.get(NOTES_KEY, [])
    if not results and not notes:
        return
    from pytest_soak.report.terminal import summary_lines

    terminalreporter.write_sep("=", "soak summary")
    if results:
        for line in summary_lines(sorted(results, key=lambda r: str(r["test_id"]))):
            terminalreporter.write_line(line)
    for note in notes:
        terminalreporter.write_line(note)
    path = options.json_path(config)
    if path is not None:
        from pytest_soak.report.json_report import write_json

        written = write_json(path, results)
        terminalreporter.write_line(f"soak results written to {written}")
    report = options.report_path(config)
    if report is not None:
        from pytest_soak.report.html_report import write_html

        written = write_html(report, results)
        terminalreporter.write_line(f"soak report written to {written}")


def write_and_prune_baselines(session: pytest.Session) -> None:
    """``--soak-update-baselines`` and ``--soak-prune``: only the controller (or a plain run)
    writes baseline files."""
    config = session.config
    results = config.stash.get(RESULTS_KEY, [])
    from pytest_soak.baselines import prune_baselines, write_baselines

    notes = config.stash.setdefault(NOTES_KEY, [])
    if options.switch(config, "soak_update_baselines"):
        written, complete = write_baselines(results)
        notes.extend(written)
        if not complete:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if options.switch(config, "soak_prune"):
        narrowed = any("::" in str(arg) for arg in config.args) or any(
            getattr(config.option, name, False) for name in ("lf", "stepwise", "stepwise_skip")
        )
        if narrowed:
            notes.append(
                "soak baselines not pruned: this run selected single tests (a node id, --lf or "
                "--sw), so it cannot tell a removed test from one left out; prune with whole "
                "modules or folders (deselecting with -k/-m is fine)"
            )
        else:
            collected: dict[str, set[str]] = config.stash[COLLECTED_KEY]
            notes.extend(prune_baselines(collected))
