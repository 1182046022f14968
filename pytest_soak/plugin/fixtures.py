"""The fixtures a soak test asks for: ``soak`` (runs the soak), ``replay_traffic`` (loads
recordings, a few parsed files cached for the session) and ``soak_mocks`` (the service's
downstream dependencies). pytest finds them because the plugin module imports them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_soak.errors import SoakError
from pytest_soak.plugin import options
from pytest_soak.plugin.live import progress_for
from pytest_soak.plugin.results import CUT_SHORT_KEY, RESULTS_KEY, item_test_id, item_test_name

if TYPE_CHECKING:
    from pytest_soak.mocks import MockSet
    from pytest_soak.settings import Settings
    from pytest_soak.soak import Soak
    from pytest_soak.traffic import Traffic

TRAFFIC_CACHE_KEY = pytest.StashKey[dict[tuple[str, int, int], "Traffic"]]()
TRAFFIC_FILTERS = ("exclude", "headers", "include", "methods")
TRAFFIC_CACHE_SIZE = 4
MOCKS_KEY = pytest.StashKey[list["MockSet"]]()  # item.stash: the test's started mock sets


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> Generator[Soak, None, None]:
    """Soak tests: ``soak.run(app_or_service, traffic)``, ``soak.serve([...])``, ``soak.url()``."""
    from pytest_soak.baselines import BaselineContext
    from pytest_soak.settings import parse_marker_kwargs, resolve
    from pytest_soak.soak import Soak

    item = request.node
    config = request.config
    marker = options.with_isolate(config, options.marker_kwargs(item))
    parse_marker_kwargs(marker)
    mode = options.mode(config)
    duration_override = options.duration_override(config)
    default_duration = options.default_duration(config)
    hosts = options.allowed_hosts(config)
    locust_master, locust_workers = options.locust(config)

    def resolve_settings(overrides: Mapping[str, Any]) -> Settings:
        return resolve(
            marker,
            mode=mode,
            duration_override=duration_override,
            default_duration=default_duration,
            allowed_hosts=hosts,
            overrides=overrides,
            probe_lists=config.hook.pytest_soak_probes(config=config),
            locust_master=locust_master,
            locust_workers=locust_workers,
        )

    if any(key in marker for key in ("peak_rps", "profile", "tolerance", "latency_tolerance")):
        resolve_settings({})  # a bad marker (tolerance included) fails at setup, before any load
    elif "thresholds" in marker:
        from pytest_soak.thresholds import parse_thresholds

        parse_thresholds(marker["thresholds"])  # their phases are checked when the run resolves
    results = config.stash[RESULTS_KEY]
    module_path = Path(str(item.path))
    runner = Soak(
        resolve_settings,
        test_id=item_test_id(item),
        base_dir=module_path.parent,
        allowed_hosts=hosts,
        on_result=lambda result: results.append(_recorded(result, item)),
        on_cut_short=config.stash[CUT_SHORT_KEY].append,
        progress=progress_for(config, item.nodeid),
        baselines=BaselineContext(
            test_file=module_path,
            test_name=item_test_name(item),
            label=options.env_label(config),
            update=options.switch(config, "soak_update_baselines"),
            strict=options.switch(config, "soak_strict"),
        ),
    )
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def replay_traffic(request: pytest.FixtureRequest) -> Callable[..., Traffic]:
    """Load a traffic file (path relative to the test file) into an immutable ``Traffic``;
    keyword filters as ``Traffic.filter`` (include/exclude endpoints, methods, headers)."""
    from pytest_soak.traffic import load_traffic

    base = Path(str(request.path)).parent
    cache = request.config.stash.setdefault(TRAFFIC_CACHE_KEY, {})

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
    marker_seed = options.marker_kwargs(item).get("seed")

    def start(
        path_or_defs: Any,
        serve: bool = False,
        chaos: Any = None,
        *,
        hosts: Any = None,
        seed: int | None = None,
        **load_options: Any,
    ) -> MockSet:
        __tracebackhide__ = True
        if seed is None and isinstance(marker_seed, int) and not isinstance(marker_seed, bool):
            seed = marker_seed
        try:
            mocks = MockSet.load(
                path_or_defs, serve=serve, chaos=chaos, seed=seed, hosts=hosts, base_dir=base,
                **load_options,
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


def _recorded(result: Any, item: pytest.Item) -> dict[str, Any]:
    """The result as a dict for the session's results; its figures also become the test's
    JUnit XML properties (``--junitxml``)."""
    from pytest_soak.report.junit import junit_properties

    converted = _with_mocks(result, item)
    item.user_properties.extend(junit_properties(converted))
    return converted


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
