"""The shape and limits of one soak run, resolved from the marker, the ini file and options.

``@pytest.mark.soak(...)`` keyword arguments are validated here so that a typo or a bad value
is reported with its name and what is accepted, before any load is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_soak.errors import ProbeError, ProfileError, SoakError
from pytest_soak.profiles import Profile, get_profile
from pytest_soak.thresholds import LatencyTolerance, Threshold, parse_thresholds
from pytest_soak.units import Tolerance, parse_duration, parse_size

if TYPE_CHECKING:
    from pytest_soak.probes import Probe

MODES = ("quick", "nightly")
#: ``profile``: requests in recorded order paced by the profile; ``recorded``: the recording's
#: own gaps (divided by ``speed``, each at most ``max_gap``).
REPLAY_MODES = ("profile", "recorded")
DEFAULT_MAX_GAP = 10.0
#: Wall time of a compressed run when neither the marker nor --soak-duration says.
DEFAULT_DURATIONS = {"quick": 60.0, "nightly": 2 * 3600.0}
#: Identical load cycles: excluded warm-up cycles, measured cycles (each a floor at its end;
#: LEAK-RULE.md asks for 8 or more), and at most this many extra cycles for a verdict that
#: narrowly misses (``inconclusive``) before it is given.
WARMUP_CYCLES = 1
MEASURED_CYCLES = {"quick": 8, "nightly": 12}
EXTRA_CYCLES = {"quick": 4, "nightly": 4}
#: ``recorded``: every cycle replays the same requests; ``fresh``: each cycle gets its own ids.
ID_MODES = ("recorded", "fresh")
#: Sampling interval of the steady memory sampler.
SAMPLE_INTERVALS = {"quick": 0.1, "nightly": 1.0}

#: Every keyword of ``@pytest.mark.soak(...)`` with what it means: the one table the marker's
#: validation, its ``--markers`` help and the README's list come from.
MARKERS: dict[str, str] = {
    "baseline": "compare with (and record) the committed baseline: True/False",
    "concurrency": "most requests in flight at once",
    "duration": "wall time of the compressed run ('60s', '2h')",
    "ids": "'recorded' (every cycle replays the same ids) or 'fresh' (new ids each cycle)",
    "isolate": "on a leak, name the endpoint and kind of request: True, False or 'mutate'",
    "latency_tolerance": "record each phase's p50/p95/p99 in the baseline and allow this excess "
    "over it ('20% + 5ms'; True: the default 50% + 20ms)",
    "max_gap": "recorded replay: the longest wait between two requests",
    "max_growth": "growth allowed over the measured cycles ('5MB')",
    "max_growth_per_request": "growth allowed per request ('64B')",
    "peak_rps": "requests per second at the profile's peak",
    "probes": "more probes read beside the built-in ones: a list of probes or functions",
    "profile": "ramp profile: a built-in name or a Profile",
    "replay": "'profile' (paced by the profile) or 'recorded' (the recording's own gaps)",
    "seed": "seed of every random choice (chaos, mutations)",
    "speed": "recorded replay: how many times faster than recorded",
    "thresholds": "performance limits, per phase or over the run: {'p99': '250ms', "
    "'p95[spike]': '150ms', 'errors': '1%', 'late': '0.5%', 'rps[sustained]': '>= 0.98'}",
    "tolerance": "allowed excess over the baseline ('20%', '1MB', '20% + 1MB')",
}
MARKER_KEYS = tuple(sorted(MARKERS))


@dataclass(frozen=True)
class Settings:
    profile: Profile
    peak_rps: float
    duration: float
    mode: str = "quick"
    concurrency: int = 256
    max_growth: float | None = None
    max_growth_per_request: float | None = None
    tolerance: Tolerance | None = None  # allowed excess over the baseline (None: the default)
    baseline: bool = True  # compare with (and record) a committed baseline
    seed: int = 0
    isolate: str = "off"  # on a leak: "on" isolates it, "mutate" also tries mutated requests
    allowed_hosts: tuple[str, ...] = ()
    warmup_cycles: int = WARMUP_CYCLES
    measured_cycles: int = 8
    extra_cycles: int = 4
    ids: str = "recorded"
    sample_interval: float = 0.1
    tracemalloc_frames: int = 1  # the measured run: cheap; attribution goes deeper
    replay: str = "profile"
    speed: float = 1.0
    max_gap: float = DEFAULT_MAX_GAP
    #: More probes read beside the built-in ones: ``probes=`` of the marker or ``soak.run``,
    #: then the ``pytest_soak_probes`` hook's (a plain function is a one-metric probe).
    probes: tuple[Probe | object, ...] = ()
    #: Performance limits judged once on the run's merged per-phase data (``thresholds``).
    thresholds: tuple[Threshold, ...] = ()
    #: Allowed excess of a phase's p50/p95/p99 over the committed baseline; None: latency is
    #: neither recorded in the baseline nor compared (opt-in: latency figures move run to run).
    latency_tolerance: LatencyTolerance | None = None
    #: Scale-out (docs/scale-out.md): the load from a running Locust master's workers (its
    #: control address, ``--soak-locust``), or from this many local workers
    #: (``--soak-locust-workers``); neither: the local driver.
    locust_master: tuple[str, int] | None = None
    locust_workers: int | None = None

    @property
    def scaled_out(self) -> bool:
        """The load comes from Locust workers, not the local driver."""
        return self.locust_master is not None or self.locust_workers is not None


def parse_marker_kwargs(
    kwargs: Mapping[str, Any], where: str = "@pytest.mark.soak"
) -> dict[str, Any]:
    """Validate the marker's keyword arguments; unknown names are an error, not ignored."""
    unknown = sorted(set(kwargs) - set(MARKER_KEYS))
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, MARKER_KEYS, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SoakError(
            f"{where} got unknown argument {', '.join(hints)}; accepted: {', '.join(MARKER_KEYS)}"
        )
    return dict(kwargs)


def resolve(
    marker: Mapping[str, Any],
    *,
    mode: str,
    duration_override: float | None = None,
    default_duration: float | None = None,
    allowed_hosts: tuple[str, ...] = (),
    overrides: Mapping[str, Any] | None = None,
    probe_lists: Iterable[Sequence[Probe]] = (),
    locust_master: tuple[str, int] | None = None,
    locust_workers: int | None = None,
) -> Settings:
    """Merge the run's settings. Precedence for each key: ``soak.run(...)`` keywords, then the
    marker (test over class over module over ini ``soak_defaults``), then the mode's default.
    The wall time: ``--soak-duration`` (``duration_override``) beats everything, ini
    ``soak_duration`` (``default_duration``) only the mode's default. ``probe_lists``: what
    each ``pytest_soak_probes`` hook returned, a list of probes each (the probes themselves
    are checked when the run starts). ``locust_master``/``locust_workers``: scale-out, one or
    neither (``--soak-locust``/``--soak-locust-workers``)."""
    values = dict(parse_marker_kwargs(marker))
    values.update(parse_marker_kwargs(overrides or {}, where="soak.run()"))
    if mode not in MODES:
        raise SoakError(f"soak mode={mode!r} is not one of: {', '.join(MODES)}")
    profile = get_profile(values.get("profile", "constant"))
    replay = values.get("replay", "profile")
    if replay not in REPLAY_MODES:
        raise SoakError(
            f"replay={replay!r} is not a replay mode; use 'profile' (paced by the profile) or "
            "'recorded' (the recording's own gaps x speed)"
        )
    speed = _positive_number(
        values.get("speed", 1.0), "speed", "how many times faster than recorded to replay"
    )
    max_gap = parse_duration(values.get("max_gap", DEFAULT_MAX_GAP), name="max_gap")
    if "peak_rps" in values:
        peak = _positive_number(
            values["peak_rps"], "peak_rps", "requests per second at the profile's peak"
        )
    elif profile.peak is not None:
        peak = profile.peak
    elif replay == "recorded":
        peak = 1.0  # not used: the recording sets the rate
    else:
        raise ProfileError(
            "peak_rps is missing: say how many requests per second the profile's peak is, e.g. "
            "@pytest.mark.soak(profile='spike-at-8am', peak_rps=150)"
        )
    if duration_override is not None:
        duration = duration_override
    elif "duration" in values:
        duration = parse_duration(values["duration"], name="duration")
    elif default_duration is not None:
        duration = default_duration
    else:
        duration = DEFAULT_DURATIONS[mode]
    concurrency = values.get("concurrency", 256)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise SoakError(
            f"concurrency={concurrency!r} must be a whole number of at least 1 "
            "(the most requests in flight at once)"
        )
    seed = values.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SoakError(f"seed={seed!r} must be a whole number")
    phases = ("recorded",) if replay == "recorded" else tuple(p.name for p in profile.phases)
    thresholds = parse_thresholds(values.get("thresholds"), phases=phases)
    check_locust(locust_master, locust_workers)
    return Settings(
        profile=profile,
        peak_rps=peak,
        duration=duration,
        mode=mode,
        concurrency=concurrency,
        max_growth=_size_or_none(values.get("max_growth"), "max_growth"),
        max_growth_per_request=_size_or_none(
            values.get("max_growth_per_request"), "max_growth_per_request"
        ),
        seed=seed,
        tolerance=_tolerance(values.get("tolerance")),
        baseline=_boolean(values.get("baseline", True), "baseline"),
        isolate=isolate_mode(values.get("isolate", False)),
        allowed_hosts=allowed_hosts,
        warmup_cycles=WARMUP_CYCLES,
        measured_cycles=MEASURED_CYCLES[mode],
        extra_cycles=EXTRA_CYCLES[mode],
        ids=_ids(values.get("ids", "recorded")),
        sample_interval=SAMPLE_INTERVALS[mode],
        replay=replay,
        speed=speed,
        max_gap=max_gap,
        probes=(*_given_probes(values.get("probes", ())), *_probes(probe_lists)),
        thresholds=thresholds,
        latency_tolerance=_latency_tolerance(values.get("latency_tolerance")),
        locust_master=locust_master,
        locust_workers=locust_workers,
    )


def check_locust(master: tuple[str, int] | None, workers: int | None) -> None:
    """Scale-out asks for one source of workers at most, and at least one local worker."""
    if master is not None and workers is not None:
        raise SoakError(
            "--soak-locust and --soak-locust-workers are two ways to get workers: give one (a "
            "running master's HOST:PORT, or how many local workers to start)"
        )
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise SoakError(f"--soak-locust-workers={workers!r} must be at least 1")


def _positive_number(value: Any, name: str, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SoakError(f"{name}={value!r} must be a number ({meaning})")
    if value <= 0:
        raise SoakError(f"{name}={value!r} must be greater than 0 ({meaning})")
    return float(value)


def _tolerance(value: Any) -> Tolerance | None:
    """Parsed once, here: a bad tolerance fails when the settings are resolved (at setup for a
    marker), before any load."""
    return None if value is None else Tolerance.parse(value)


def _latency_tolerance(value: Any) -> LatencyTolerance | None:
    """None (or False): latency is neither recorded in the baseline nor compared with it."""
    return None if value is None or value is False else LatencyTolerance.parse(value)


ISOLATE_MODES = ("off", "on", "mutate")


def isolate_mode(value: Any, name: str = "isolate") -> str:
    """``isolate=True|False|"mutate"`` (also the words of ``ISOLATE_MODES`` and ini booleans)."""
    if value is True or value is False:
        return "on" if value else "off"
    text = value.strip().lower() if isinstance(value, str) else None
    words = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
    if text is not None and (text in ISOLATE_MODES or text in words or not text):
        return words.get(text, text or "off")
    raise SoakError(
        f"{name}={value!r} must be True, False or 'mutate' (isolate a leak; 'mutate' also "
        "replays mutated requests, with hypothesis)"
    )


def _ids(value: Any) -> str:
    if value not in ID_MODES:
        raise SoakError(
            f"ids={value!r} must be 'recorded' (every cycle replays the recorded ids) or "
            "'fresh' (each cycle gets fresh ids, so a table keyed by ids grows every cycle)"
        )
    return str(value)


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise SoakError(f"{name}={value!r} must be True or False")
    return value


def _size_or_none(value: Any, name: str) -> float | None:
    return None if value is None else parse_size(value, name=name)


def _given_probes(value: Any) -> tuple[object, ...]:
    if not isinstance(value, (list, tuple)):
        raise ProbeError(
            f"probes={value!r} must be a list of probes (or functions returning a number), e.g. "
            "probes=[prometheus('http://127.0.0.1:{port}/metrics', 'cache_bytes')]"
        )
    return tuple(value)


def _probes(probe_lists: Iterable[Sequence[Probe]]) -> tuple[Probe, ...]:
    probes: list[Probe] = []
    for found in probe_lists:
        if not isinstance(found, (list, tuple)):
            raise ProbeError(
                f"pytest_soak_probes returned {found!r}; return a list of probes (or None)"
            )
        probes.extend(found)
    return tuple(probes)
