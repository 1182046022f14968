"""The pytest plugin: options, ini keys, the ``soak`` marker, fixtures, reporting.

The only module that imports pytest. Heavy modules are imported inside hooks and fixtures so
that merely having pytest-soak installed costs other test suites nothing.
"""

from __future__ import annotations

import atexit
import json
import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from pytest_soak.errors import SoakError

if TYPE_CHECKING:
    from pytest_soak.mocks import MockSet
    from pytest_soak.settings import Settings
    from pytest_soak.soak import Soak
    from pytest_soak.traffic import Traffic

RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
NOTES_KEY = pytest.StashKey[list[str]]()
COLLECTED_KEY = pytest.StashKey[dict[str, set[str]]]()  # module file -> every test name in it
WORKER_OUTPUT = "pytest_soak_results"
WORKER_LOADGROUP = "pytest_soak_loadgroup"
XDIST_GROUP = "pytest-soak"
TRAFFIC_CACHE_KEY = pytest.StashKey[dict[tuple[str, int, int], "Traffic"]]()
TRAFFIC_FILTERS = ("exclude", "headers", "include", "methods")
TRAFFIC_CACHE_SIZE = 4


def marker_help() -> str:
    """The ``soak`` marker's line in ``pytest --markers``, from the one table of its keys."""
    from pytest_soak.settings import MARKER_KEYS

    keys = ", ".join(f"{key}=..." for key in MARKER_KEYS)
    return f"soak({keys}): shape and limits of this test's soak run (pytest-soak)"


def _mode(value: str) -> str:
    from pytest_soak.settings import MODES

    if value not in MODES:
        raise pytest.UsageError(f"--soak-mode={value!r}: choose one of {', '.join(MODES)}")
    return value


def _duration(value: str) -> float:
    from pytest_soak.units import parse_duration

    try:
        return parse_duration(value, name="--soak-duration")
    except SoakError as exc:
        raise pytest.UsageError(str(exc)) from None


@dataclass(frozen=True)
class Option:
    """One ``--soak-*`` option and its ini twin (``ini``: the ini key's help; None: no twin).
    Every option and ini key of the plugin is a row of ``OPTIONS``: ``pytest --help`` and the
    README's table come from here."""

    flag: str
    dest: str
    help: str
    ini: str | None = None
    ini_type: Literal["string", "bool", "linelist"] = "string"
    ini_default: Any = None
    action: str | None = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option(
        "--soak-mode", "soak_mode",
        "compression of soak profiles: quick (about a minute per test, for pull requests) or "
        "nightly (hours). Default: ini soak_mode, else quick.",
        ini="default --soak-mode (quick or nightly)", ini_default="quick",
        type=_mode, metavar="quick|nightly",
    ),
    Option(
        "--soak-duration", "soak_duration",
        "wall time of every soak run, overriding the mode and markers (e.g. 20s, 10m).",
        ini="wall time of soak runs whose marker sets no duration",
        type=_duration, metavar="DURATION",
    ),
    Option(
        "--soak-json", "soak_json",
        "write every soak result (verdicts, cycles, phases, floors, samples) as JSON to PATH.",
        ini="default --soak-json path", metavar="PATH",
    ),
    Option(
        "--soak-allow-host", "soak_allow_hosts",
        "allow soak traffic to a non-loopback HOST (repeatable). Without it only this machine "
        "is ever targeted.",
        ini="hosts soak traffic may go to", ini_type="linelist", ini_default=[],
        action="append", metavar="HOST",
    ),
    Option(
        "--soak-update-baselines", "soak_update_baselines",
        "record this run's results as the baselines (new and changed) next to the tests.",
        action="store_true",
    ),
    Option(
        "--soak-prune", "soak_prune",
        "remove baselines of tests that no longer exist in the collected modules (never those "
        "of deselected tests).",
        action="store_true",
    ),
    Option(
        "--soak-strict", "soak_strict",
        "fail soak tests that have no baseline for this environment.",
        ini="default --soak-strict", ini_type="bool", ini_default=False, action="store_true",
    ),
    Option(
        "--soak-isolate", "soak_isolate",
        "when a soak test leaks, replay subsets of its traffic to name the leaking endpoint and "
        "kind of request (docs/isolation.md); writes <module>.<test>.leak-repro.jsonl.",
        ini="default for soak tests whose marker sets no isolate: true, false or mutate",
        ini_default="", action="store_true",
    ),
    Option(
        "--soak-env-label", "soak_env_label",
        "a label added to the baseline environment key (e.g. the CI runner class).",
        ini="default --soak-env-label", ini_default="", metavar="LABEL",
    ),
)  # fmt: skip
#: Ini keys without a command-line twin.
INI_ONLY = {
    "soak_defaults": "suite-wide soak marker defaults, one 'key = value' per line "
    "(e.g. peak_rps = 150)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("soak", "memory soak tests (pytest-soak)")
    for option in OPTIONS:
        extra: dict[str, Any] = {}
        if option.action is not None:
            extra["action"] = option.action
        if option.type is not None:
            extra["type"] = option.type
        if option.metavar is not None:
            extra["metavar"] = option.metavar
        # default None, so that an unset option falls through to its ini twin (STYLE.md 6)
        group.addoption(option.flag, dest=option.dest, default=None, help=option.help, **extra)
        if option.ini is not None:
            parser.addini(option.dest, option.ini, type=option.ini_type, default=option.ini_default)
    for name, help_text in INI_ONLY.items():
        parser.addini(name, help_text, type="linelist", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", marker_help())
    config.stash[RESULTS_KEY] = []
    config.stash[TRAFFIC_CACHE_KEY] = {}
    config.stash[COLLECTED_KEY] = {}
    if getattr(config.option, "dist", "no") == "load":
        # Soak tests share one xdist group (one worker, one at a time): memory is measured on a
        # machine that is not also running another soak. loadgroup is load for everything else.
        config.option.dist = "loadgroup"
    if getattr(config, "workerinput", {}).get(WORKER_LOADGROUP):
        # Workers build their options from the command line, not the controller's: without
        # this they would not tag grouped tests and the controller could not keep them together.
        config.option.loadgroup = True
    if _switch(config, "soak_prune") and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "--soak-prune needs the whole collection in one process: run it without -n"
        )
    from pytest_soak.driver.targets import stop_all_served

    atexit.register(stop_all_served)


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_soak.driver.targets import stop_all_served

    stop_all_served()


def pytest_report_header(config: pytest.Config) -> str:
    duration = _duration_option(config)
    extra = f", duration {duration:g}s" if duration is not None else ""
    return f"soak: mode {_mode_option(config)}{extra}"


def _mode_option(config: pytest.Config) -> str:
    value = config.getoption("soak_mode")
    if value is None:
        value = _mode(str(config.getini("soak_mode") or "quick"))
    return str(value)


def _duration_option(config: pytest.Config) -> float | None:
    """``--soak-duration``: overrides every marker."""
    value = config.getoption("soak_duration")
    return None if value is None else float(value)


def _duration_ini(config: pytest.Config) -> float | None:
    """ini ``soak_duration``: the default wall time when a marker does not say."""
    value = config.getini("soak_duration")
    return _duration(str(value)) if value else None


def _allowed_hosts(config: pytest.Config) -> tuple[str, ...]:
    hosts = list(config.getoption("soak_allow_hosts") or [])
    hosts.extend(str(h) for h in config.getini("soak_allow_hosts"))
    return tuple(hosts)


def _ini_defaults(config: pytest.Config) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for line in config.getini("soak_defaults"):
        key, sep, raw = str(line).partition("=")
        if not sep:
            raise pytest.UsageError(f"ini soak_defaults line {line!r} is not 'key = value'")
        defaults[key.strip()] = _literal(raw.strip())
    return defaults


def _literal(raw: str) -> Any:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def _marker_kwargs(item: pytest.Item) -> dict[str, Any]:
    """Suite ini defaults, then module/class marks, then the test's own mark (closest wins)."""
    merged = _ini_defaults(item.config)
    for mark in reversed(list(item.iter_markers("soak"))):
        if mark.args:
            raise SoakError(
                f"@pytest.mark.soak takes keyword arguments only, got positional {mark.args!r}; "
                "write e.g. @pytest.mark.soak(profile='spike-at-8am', peak_rps=150)"
            )
        merged.update(mark.kwargs)
    return merged


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> Generator[Soak, None, None]:
    """Soak tests: ``soak.run(app_or_service, traffic)``, ``soak.serve([...])``, ``soak.url()``."""
    from pytest_soak.baselines import BaselineContext
    from pytest_soak.settings import parse_marker_kwargs, resolve
    from pytest_soak.soak import Soak

    item = request.node
    config = request.config
    marker = _with_isolate(config, _marker_kwargs(item))
    parse_marker_kwargs(marker)
    mode = _mode_option(config)
    duration = _duration_option(config)
    default_duration = _duration_ini(config)
    hosts = _allowed_hosts(config)

    def resolve_settings(overrides: Mapping[str, Any]) -> Settings:
        return resolve(
            marker,
            mode=mode,
            duration_override=duration,
            default_duration=default_duration,
            allowed_hosts=hosts,
            overrides=overrides,
            probe_lists=config.hook.pytest_soak_probes(config=config),
        )

    if "peak_rps" in marker or "profile" in marker or "tolerance" in marker:
        resolve_settings({})  # a bad marker (tolerance included) fails at setup, before any load
    results = config.stash[RESULTS_KEY]
    module_path = Path(str(item.path))
    runner = Soak(
        resolve_settings,
        test_id=_test_id(item),
        base_dir=module_path.parent,
        allowed_hosts=hosts,
        on_result=lambda result: results.append(_with_mocks(result, item)),
        baselines=BaselineContext(
            test_file=module_path,
            test_name=_test_name(item),
            label=str(config.getoption("soak_env_label") or config.getini("soak_env_label") or ""),
            update=_switch(config, "soak_update_baselines"),
            strict=_switch(config, "soak_strict"),
        ),
    )
    try:
        yield runner
    finally:
        runner.close()


def _with_isolate(config: pytest.Config, marker: dict[str, Any]) -> dict[str, Any]:
    """ini ``soak_isolate`` is the default under every marker; ``--soak-isolate`` turns
    isolation on whatever the markers say (``isolate="mutate"`` stays ``mutate``)."""
    from pytest_soak.settings import isolate_mode

    ini = str(config.getini("soak_isolate") or "").strip()
    if ini and "isolate" not in marker:
        marker["isolate"] = isolate_mode(ini, "ini soak_isolate")
    if config.getoption("soak_isolate") and isolate_mode(marker.get("isolate", False)) == "off":
        marker["isolate"] = "on"
    return marker


@pytest.fixture
def replay_traffic(request: pytest.FixtureRequest) -> Callable[..., Traffic]:
    """Load a traffic file (path relative to the test file) into an immutable ``Traffic``;
    keyword filters as ``Traffic.filter`` (include/exclude endpoints, methods, headers)."""
    from pytest_soak.traffic import load_traffic

    base = Path(str(request.path)).parent
    cache = request.config.stash[TRAFFIC_CACHE_KEY]

    def load(path: str | os.PathLike[str], **filters: Any) -> Traffic:
        __tracebackhide__ = True
        unknown = sorted(set(filters) - set(TRAFFIC_FILTERS))
        if unknown:
            raise SoakError(
                f"replay_traffic() got unknown filter {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(TRAFFIC_FILTERS)}"
            )
        full = (base / Path(path)).resolve()
        try:
            stat = full.stat()
            key = (str(full), stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        try:
            traffic = cache.get(key) if key else None
            if traffic is None:
                traffic = load_traffic(full)
                if key:
                    cache[key] = traffic
                    while len(cache) > TRAFFIC_CACHE_SIZE:  # parsed files are big: keep a few
                        del cache[next(iter(cache))]
            return traffic.filter(**filters) if filters else traffic
        except SoakError as exc:
            raise type(exc)(str(exc)) from None

    return load


# -- soak_mocks (docs/mocks.md) ---------------------------------------------------------------

MOCKS_KEY = pytest.StashKey[list["MockSet"]]()


@pytest.fixture
def soak_mocks(request: pytest.FixtureRequest) -> Generator[Callable[..., MockSet], None, None]:
    """Mock the service's downstream dependencies: ``soak_mocks(path_or_defs, serve=False,
    chaos=None)`` with WireMock mappings (file, ``mappings/`` + ``__files/`` folder, or a list of
    mapping dicts) or recorded outbound traffic (HAR, GoReplay, RRPair OUT, VCR, a ``Traffic``);
    paths are relative to the test file. In process httpx calls are answered through respx;
    ``serve=True`` starts a loopback server process (``.url``). Stopped when the test ends."""
    from pytest_soak.mocks import MockSet

    item = request.node
    base = Path(str(request.path)).parent
    started: list[MockSet] = []
    item.stash[MOCKS_KEY] = started
    marker_seed = _marker_kwargs(item).get("seed")

    def start(
        path_or_defs: Any,
        serve: bool = False,
        chaos: Any = None,
        *,
        hosts: Any = None,
        seed: int | None = None,
        **options: Any,
    ) -> MockSet:
        __tracebackhide__ = True
        if seed is None and isinstance(marker_seed, int) and not isinstance(marker_seed, bool):
            seed = marker_seed
        try:
            mocks = MockSet.load(
                path_or_defs, serve=serve, chaos=chaos, seed=seed, hosts=hosts, base_dir=base,
                **options,
            )  # fmt: skip
        except SoakError as exc:
            raise type(exc)(str(exc)) from None
        for ignored in mocks.definitions.ignored:
            if "not supported" in ignored:
                item.warn(pytest.PytestWarning(f"soak_mocks: {ignored}"))
        started.append(mocks)
        return mocks

    try:
        yield start
    finally:
        for mocks in reversed(started):
            mocks.stop()


def _with_mocks(result: Any, item: pytest.Item) -> dict[str, Any]:
    """The result as a dict, with the journal of the test's mock sets (requests, unmatched,
    chaos injected): the report shows that chaos was applied and what was not mocked."""
    mock_sets = item.stash.get(MOCKS_KEY, [])
    if mock_sets:
        stats: dict[str, Any] = {}
        for mocks in mock_sets:
            try:
                stats[mocks.name] = mocks.stats()
            except SoakError as exc:
                stats[mocks.name] = {"error": str(exc)}
        result.mocks = stats
    converted: dict[str, Any] = result.to_dict()
    return converted


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.when == "call":
        # Results learn whether their test passed: only those are recorded as baselines.
        test_id = _test_id(item)
        for result in item.config.stash.get(RESULTS_KEY, []):
            if result.get("test_id") == test_id and "outcome" not in result:
                result["outcome"] = report.outcome
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, SoakError):
        # Bad input (traffic, profile, marker, service): the message says it all; our internal
        # frames would only hide it.
        location = f"{item.nodeid}"
        report.longrepr = f"{location}: {type(excinfo.value).__name__}: {excinfo.value}"
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
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
    path = config.getoption("soak_json") or config.getini("soak_json")
    if path:
        from pytest_soak.report.json_report import write_json

        written = write_json(Path(str(path)), results)
        terminalreporter.write_line(f"soak results written to {written}")


def _switch(config: pytest.Config, name: str) -> bool:
    value = config.getoption(name)
    if value is None and name == "soak_strict":
        value = config.getini("soak_strict")
    return bool(value)


def _test_name(item: pytest.Item) -> str:
    """The test's name within its module (``TestShop::test_x[param]``), from the node chain:
    node ids get an ``@group`` suffix on xdist workers, for any xdist_group."""
    names: list[str] = []
    for node in item.listchain():
        if isinstance(node, pytest.Module):
            names = []
        elif names or isinstance(node, (pytest.Class, pytest.Function)):
            names.append(node.name)
    return "::".join(names)


def _test_id(item: pytest.Item) -> str:
    return f"{item.nodeid.split('::', 1)[0]}::{_test_name(item)}"


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    """Before -k/-m deselect anything: remember every test of every collected module (so
    --soak-prune never drops a merely deselected test's baseline), and put soak tests in one
    xdist group. After the other hooks (xdist's among them): make sure the group took."""
    collected = config.stash[COLLECTED_KEY]
    grouped = getattr(config.option, "dist", "no") == "loadgroup" or _is_xdist_worker(config)
    for item in items:
        collected.setdefault(str(item.path), set()).add(_test_name(item))
        is_soak = "soak" in getattr(item, "fixturenames", ()) or item.get_closest_marker("soak")
        if grouped and is_soak and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(XDIST_GROUP))
    result = yield
    if _is_xdist_worker(config) and getattr(config.option, "loadgroup", False):
        for item in items:
            _ensure_group_suffix(item)
    return result


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


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the xdist controller, before a worker starts: tell it we group soak tests."""
    node.workerinput[WORKER_LOADGROUP] = getattr(node.config.option, "dist", "no") == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: the results a worker measured."""
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results = config.stash.get(RESULTS_KEY, [])
    if _is_xdist_worker(config):
        config.workeroutput[WORKER_OUTPUT] = json.dumps(results, default=str)  # type: ignore[attr-defined]
        return
    # Only the controller (or a plain run) writes baselines.
    from pytest_soak.baselines import prune_baselines, write_baselines

    notes = config.stash.setdefault(NOTES_KEY, [])
    if _switch(config, "soak_update_baselines"):
        written, complete = write_baselines(results)
        notes.extend(written)
        if not complete:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _switch(config, "soak_prune"):
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


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """``pytest_soak_*`` hooks (``hookspecs.py``): a conftest adds probes to soak runs."""
    from pytest_soak import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
