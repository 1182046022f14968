"""What the user configured, as pytest hands it over: the ``--soak-*`` options and their ini
twins (one table, ``OPTIONS``), the ini keys without a twin, the ``soak`` marker's help, and
reading each value back with its precedence (flag over ini; the test's mark over its class's
and module's, over ini ``soak_defaults``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_soak.errors import SoakError


def _mode_value(value: str) -> str:
    """A ``--soak-mode`` value (or ini ``soak_mode``): one of ``settings.MODES``."""
    from pytest_soak.settings import MODES

    if value not in MODES:
        raise pytest.UsageError(f"--soak-mode={value!r}: choose one of {', '.join(MODES)}")
    return value


def _duration_value(value: str) -> float:
    """A ``--soak-duration`` value (or ini ``soak_duration``) in seconds."""
    from pytest_soak.units import parse_duration

    try:
        return parse_duration(value, name="--soak-duration")
    except SoakError as exc:
        raise pytest.UsageError(str(exc)) from None


def _locust_address(value: str) -> tuple[str, int]:
    """A ``--soak-locust`` value (or ini ``soak_locust``): the master's control HOST:PORT."""
    from pytest_soak.scaleout.protocol import parse_address

    try:
        return parse_address(value)
    except SoakError as exc:
        raise pytest.UsageError(str(exc)) from None


def _locust_workers(value: str) -> int:
    """A ``--soak-locust-workers`` value (or ini ``soak_locust_workers``): a whole number >= 1."""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(
            f"--soak-locust-workers={value!r} must be a whole number of at least 1 (how many "
            "local Locust worker processes generate the load)"
        )
    return int(text)


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
        type=_mode_value, metavar="quick|nightly",
    ),
    Option(
        "--soak-duration", "soak_duration",
        "wall time of every soak run (e.g. 20s, 10m): overrides the markers, ini soak_duration "
        "and the mode's default",
        ini="wall time of soak runs whose marker sets none (e.g. 20s, 10m), instead of the "
        "mode's default; --soak-duration overrides every run",
        type=_duration_value, metavar="DURATION",
    ),
    Option(
        "--soak-json", "soak_json",
        "write every soak result (verdicts, cycles, phases, floors, samples) as JSON to PATH.",
        ini="default --soak-json path", metavar="PATH",
    ),
    Option(
        "--soak-openmetrics", "soak_openmetrics",
        "write every soak result's figures (verdict, growth, growth per request, p-value, "
        "requests, errors, late) as OpenMetrics text to PATH, for a Pushgateway or "
        "node_exporter's textfile collector.",
        ini="default --soak-openmetrics path", metavar="PATH",
    ),
    Option(
        "--soak-report", "soak_report",
        "write one self-contained HTML report of every soak result (charts of memory over "
        "time, rate and latency per phase, tables) to PATH; it opens offline.",
        ini="default --soak-report path", metavar="PATH",
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
        "--soak-locust", "soak_locust",
        "generate the load on a running Locust cluster: HOST:PORT of its master's control "
        "listener (python -m pytest_soak.scaleout.master); pytest keeps measuring and judging "
        "(docs/scale-out.md). Needs pytest-soak[locust].",
        ini="default --soak-locust HOST:PORT", type=_locust_address, metavar="HOST:PORT",
    ),
    Option(
        "--soak-locust-workers", "soak_locust_workers",
        "generate the load with N local Locust worker processes (and a local master), each "
        "replaying its share of the timeline: a trial of scale-out on one machine. Needs "
        "pytest-soak[locust].",
        ini="default --soak-locust-workers N", type=_locust_workers, metavar="N",
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
_BY_DEST = {option.dest: option for option in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    """Every row of ``OPTIONS`` (and ``INI_ONLY``) in one ``--help`` group."""
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


def marker_help() -> str:
    """The ``soak`` marker's line in ``pytest --markers``, from the one table of its keys."""
    from pytest_soak.settings import MARKER_KEYS

    keys = ", ".join(f"{key}=..." for key in MARKER_KEYS)
    return f"soak({keys}): shape and limits of this test's soak run (pytest-soak)"


# -- reading the values back ------------------------------------------------------------------


def switch(config: pytest.Config, dest: str) -> bool:
    """An on/off option: the flag, else its boolean ini twin if the table gives it one."""
    value = config.getoption(dest)
    option = _BY_DEST[dest]
    if value is None and option.ini is not None and option.ini_type == "bool":
        value = config.getini(dest)
    return bool(value)


def mode(config: pytest.Config) -> str:
    """``--soak-mode``, else ini ``soak_mode``, else quick."""
    value = config.getoption("soak_mode")
    if value is None:
        value = _mode_value(str(config.getini("soak_mode") or "quick"))
    return str(value)


def duration_override(config: pytest.Config) -> float | None:
    """``--soak-duration``: overrides every marker."""
    value = config.getoption("soak_duration")
    return None if value is None else float(value)


def default_duration(config: pytest.Config) -> float | None:
    """ini ``soak_duration``: the default wall time when a marker does not say."""
    value = config.getini("soak_duration")
    return _duration_value(str(value)) if value else None


def allowed_hosts(config: pytest.Config) -> tuple[str, ...]:
    """Every ``--soak-allow-host`` and every host of ini ``soak_allow_hosts``."""
    hosts = list(config.getoption("soak_allow_hosts") or [])
    hosts.extend(str(h) for h in config.getini("soak_allow_hosts"))
    return tuple(hosts)


def locust(config: pytest.Config) -> tuple[tuple[str, int] | None, int | None]:
    """``--soak-locust`` and ``--soak-locust-workers`` (else their ini twins): at most one is
    set, and Locust must be installed when one is (checked without importing it: importing
    Locust monkey-patches the process with gevent)."""
    master = config.getoption("soak_locust")
    if master is None and config.getini("soak_locust"):
        master = _locust_address(str(config.getini("soak_locust")))
    workers = config.getoption("soak_locust_workers")
    if workers is None and config.getini("soak_locust_workers"):
        workers = _locust_workers(str(config.getini("soak_locust_workers")))
    from pytest_soak.settings import check_locust

    try:
        check_locust(master, workers)
    except SoakError as exc:
        raise pytest.UsageError(str(exc)) from None
    if workers is not None:
        import importlib.util

        if importlib.util.find_spec("locust") is None:
            raise pytest.UsageError(
                f"--soak-locust-workers={workers} needs Locust: pip install 'pytest-soak[locust]'"
            )
    return master, workers


def env_label(config: pytest.Config) -> str:
    """``--soak-env-label``, else ini ``soak_env_label``, else none."""
    return str(config.getoption("soak_env_label") or config.getini("soak_env_label") or "")


def is_worker(config: pytest.Config) -> bool:
    """This session is a pytest-xdist worker (xdist gives its config ``workerinput``)."""
    return hasattr(config, "workerinput")


def report_file(config: pytest.Config, dest: str) -> Path | None:
    """Where a report goes, if anywhere: the flag (``--soak-json``, ``--soak-openmetrics``,
    ``--soak-report``), else its ini twin (``dest``: ``soak_json``, ...)."""
    path = config.getoption(dest) or config.getini(dest)
    return Path(str(path)) if path else None


def marker_kwargs(item: pytest.Item) -> dict[str, Any]:
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


def with_isolate(config: pytest.Config, marker: dict[str, Any]) -> dict[str, Any]:
    """ini ``soak_isolate`` is the default under every marker; ``--soak-isolate`` turns
    isolation on whatever the markers say (``isolate="mutate"`` stays ``mutate``)."""
    from pytest_soak.settings import isolate_mode

    ini = str(config.getini("soak_isolate") or "").strip()
    if ini and "isolate" not in marker:
        marker["isolate"] = isolate_mode(ini, "ini soak_isolate")
    if config.getoption("soak_isolate") and isolate_mode(marker.get("isolate", False)) == "off":
        marker["isolate"] = "on"
    return marker


def _ini_defaults(config: pytest.Config) -> dict[str, Any]:
    """ini ``soak_defaults``: one ``key = value`` a line, numbers and booleans as such."""
    defaults: dict[str, Any] = {}
    for line in config.getini("soak_defaults"):
        key, sep, raw = str(line).partition("=")
        if not sep:
            raise pytest.UsageError(f"ini soak_defaults line {line!r} is not 'key = value'")
        defaults[key.strip()] = _scalar(raw.strip())
    return defaults


def _scalar(raw: str) -> Any:
    """``150`` -> 150, ``1.5`` -> 1.5, ``true`` -> True; anything else stays text."""
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw
