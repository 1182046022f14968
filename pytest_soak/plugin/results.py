"""The session's soak results: kept as JSON-able dicts in ``config.stash`` as tests run (on
whichever process runs them), told whether their test passed, and at the session's end (on the
xdist controller or a plain run) shown in the ``soak summary``, written to ``--soak-json`` and
recorded or pruned as baselines. ``workers`` carries them from xdist workers to the controller.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_soak.plugin import options

RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
CUT_SHORT_KEY = pytest.StashKey[list[dict[str, Any]]]()  # Ctrl-C: runs measured, not judged
NOTES_KEY = pytest.StashKey[list[str]]()  # lines for the soak summary besides the results
COLLECTED_KEY = pytest.StashKey[dict[str, set[str]]]()  # module file -> every test name in it
STARTED_KEY = pytest.StashKey[str]()  # the session's start, UTC ISO 8601
GIT_TIMEOUT = 2.0  # seconds ``git rev-parse HEAD`` may take before the commit is left out


def prepare(config: pytest.Config) -> None:
    """An empty list of results and record of the collection, for this session."""
    config.stash[RESULTS_KEY] = []
    config.stash[CUT_SHORT_KEY] = []
    config.stash[COLLECTED_KEY] = {}
    config.stash[STARTED_KEY] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_metadata(config: pytest.Config, exitstatus: int) -> dict[str, Any]:
    """The top of the JSON document: when the session started, where (the baseline
    environment key), with which plugin version and commit, and whether it was interrupted
    (Ctrl-C: the results are those of the soak runs that finished)."""
    import pytest_soak
    from pytest_soak.baselines.environment import Environment

    metadata: dict[str, Any] = {
        "version": pytest_soak.__version__,
        "started": config.stash.get(STARTED_KEY, ""),
        "environment": Environment.current(options.env_label(config)).key,
    }
    commit = git_commit(config.rootpath)
    if commit:
        metadata["git_commit"] = commit
    metadata["interrupted"] = exitstatus == pytest.ExitCode.INTERRUPTED
    return metadata


def git_commit(folder: Path) -> str | None:
    """``git rev-parse HEAD`` in ``folder``: None outside a git checkout, without git, or
    when git takes longer than ``GIT_TIMEOUT``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


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


def write_summary(terminalreporter: Any, config: pytest.Config, exitstatus: int) -> None:
    """The ``soak summary`` section, and the JSON, OpenMetrics and HTML reports if asked for."""
    results = config.stash.get(RESULTS_KEY, [])
    notes = config.stash.get(NOTES_KEY, [])
    cut = config.stash.get(CUT_SHORT_KEY, [])
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    json_path = options.report_file(config, "soak_json")
    openmetrics_path = options.report_file(config, "soak_openmetrics")
    html_path = options.report_file(config, "soak_report")
    asked = any(p is not None for p in (json_path, openmetrics_path, html_path))
    if not results and not notes and not (interrupted and asked):
        return  # nothing of ours ran (a suite without soak tests): no section
    from pytest_soak.report.terminal import summary_lines

    terminalreporter.write_sep("=", "soak summary")
    if results:
        for line in summary_lines(sorted(results, key=lambda r: str(r["test_id"]))):
            terminalreporter.write_line(line)
    for note in notes:
        terminalreporter.write_line(note)
    if interrupted:
        terminalreporter.write_line(_interrupted_line(len(results), cut))
    if json_path is not None:
        from pytest_soak.report.json_report import write_json

        _write_report(
            terminalreporter, "--soak-json", json_path, "soak results",
            lambda: write_json(json_path, results, run_metadata(config, exitstatus), cut_short=cut),
        )  # fmt: skip
    if openmetrics_path is not None:
        from pytest_soak.report.openmetrics import write_openmetrics

        _write_report(
            terminalreporter, "--soak-openmetrics", openmetrics_path, "soak OpenMetrics",
            lambda: write_openmetrics(openmetrics_path, results),
        )  # fmt: skip
    if html_path is not None:
        from pytest_soak.report.html_report import write_html

        _write_report(
            terminalreporter, "--soak-report", html_path, "soak report",
            lambda: write_html(html_path, results, cut_short=cut),
        )  # fmt: skip


def _interrupted_line(finished: int, cut: list[dict[str, Any]]) -> str:
    """What Ctrl-C left: the runs that finished, and how far each run cut short got."""
    line = f"soak: interrupted: the reports hold the {finished} soak run(s) that finished"
    if not cut:
        return line + "; no soak run was under way"
    from pytest_soak.units import format_duration

    shown = [
        f"{m.get('test_id') or '?'} ({format_duration(float(m['elapsed_seconds']))} of "
        f"{format_duration(float(m['planned_seconds']))}, {m['sent']:,} requests, "
        f"{len(m['samples'])} samples)"
        for m in cut
    ]
    return (
        line
        + "; cut short, measured but not judged (the JSON's cut_short, the HTML report): "
        + ", ".join(shown)
    )


def _write_report(
    terminalreporter: Any, flag: str, path: Path, what: str, write: Callable[[], Path]
) -> None:
    """Write one report file and say where; a path that cannot be written is said so (the
    others are still written), not a traceback."""
    try:
        written = write()
    except OSError as exc:
        terminalreporter.write_line(
            f"{flag}={path}: {what} not written: {exc.strerror or exc}; "
            "pass a path in a writable folder",
            red=True,
        )
    else:
        terminalreporter.write_line(f"{what} written to {written}")


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
