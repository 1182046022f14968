"""Baselines: each soak test's recorded memory growth, committed next to the tests.

One JSON file per test module, in a ``__soak_baselines__`` folder beside it, holding one entry
per test and *environment* (OS, CPU architecture, Python, CPU model, and an optional user label):
growth measured on a laptop says nothing about a CI runner, so a result is only ever compared
with a baseline recorded where it ran.

The files are written for review: sorted keys, figures rounded so that noise below the rounding
does not show up as a change, identical content giving identical bytes, atomic writes. A file a
person broke (a bad merge, a typo) is a ``BaselineError`` naming the file and the key, never a
``KeyError`` from deep inside the plugin.

This module works on plain data (JSON-able dicts and frozen dataclasses) so that it runs on the
pytest-xdist controller, which only sees the results its workers send.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from pytest_soak.errors import BaselineError, SoakError
from pytest_soak.units import format_bytes, parse_size

BASELINE_DIR = "__soak_baselines__"
FORMAT_VERSION = 1

_UPDATE_HINT = "run pytest with --soak-update-baselines"
_FIX_HINT = f"fix it or delete the file, then {_UPDATE_HINT}"


# --- environment -------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """Lowercase, ``[a-z0-9._]`` runs joined by ``-``: safe and stable as one part of a key."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-._")


def _cpu_slug(model: str) -> str:
    """``Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz`` -> ``intel-xeon-platinum-8375c``.

    Trademark signs, the words CPU/Processor and the clock speed are dropped: they add nothing
    to the model and some tools report them differently for the same chip."""
    text = model.lower().split("@", 1)[0]
    text = re.sub(r"\((?:r|tm|c)\)|[®™]|\b(?:cpu|processor)\b", " ", text)
    return _slug(text)


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":  # platform.processor() only says "arm" or "i386" there
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            return out
    return platform.processor().strip() or "unknown"


@dataclass(frozen=True)
class Environment:
    """Where a baseline was recorded. Two environments with the same ``key`` share baselines."""

    os: str
    arch: str
    python: str
    cpu: str
    label: str = ""

    @classmethod
    def current(cls, label: str = "") -> Environment:
        impl = sys.implementation.name
        major, minor = sys.version_info[:2]
        return cls(
            os=platform.system() or "unknown",
            arch=platform.machine() or "unknown",
            python=f"{impl}-{major}.{minor}",
            cpu=_cpu_model(),
            label=label.strip(),
        )

    def _parts(self) -> dict[str, str]:
        return {
            "os": _slug(self.os) or "unknown",
            "arch": _slug(self.arch) or "unknown",
            "python": _slug(self.python) or "unknown",
            "cpu": _cpu_slug(self.cpu) or "unknown",
            "label": _slug(self.label),
        }

    @property
    def key(self) -> str:
        """``linux/x86_64/cpython-3.11/intel-xeon-platinum-8375c[/label]``."""
        return "/".join(part for part in self._parts().values() if part)

    def differences(self, other: Environment) -> list[str]:
        """What differs from ``other``, as the key sees it: ``["python cpython-3.12 != ..."]``."""
        mine, theirs = self._parts(), other._parts()
        return [
            f"{name} {mine[name] or '(none)'} != {theirs[name] or '(none)'}"
            for name in mine
            if mine[name] != theirs[name]
        ]


# --- the baseline of one test ------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseRecord:
    """One load phase: its requests, how much the judged metric's floors grew in it, its floor."""

    name: str
    requests: int
    floor_growth: float
    floor: float | None


@dataclass(frozen=True)
class Baseline:
    """One test in one environment. Figures are in the judged metric's unit (bytes, or blocks
    for ``metric="blocks"``); the settings and traffic fingerprint say what the figures are of,
    so a reviewer can tell a real change from a changed test."""

    test: str
    environment: Environment
    metric: str
    growth_per_request: float
    growth: float
    requests_measured: int
    requests: int
    profile: str
    peak_rps: float
    duration: float
    mode: str
    traffic_path: str
    traffic_fingerprint: str
    verdict: str
    phases: tuple[PhaseRecord, ...]
    plugin_version: str

    @classmethod
    def from_result(
        cls, test: str, result: Mapping[str, Any], environment: Environment
    ) -> Baseline:
        """Build from the JSON dict of a soak result (what ``SoakResult.to_dict`` returns)."""
        try:
            metric = str(result["metric"])
            judged = [j for j in result.get("judgements") or () if j.get("metric") == metric]
            settings, traffic = result["settings"], result.get("traffic") or {}
            return cls(
                test=test,
                environment=environment,
                metric=metric,
                growth_per_request=float(result["growth_per_request_bytes"]),
                growth=float(result["growth_bytes"]),
                requests_measured=int(judged[0]["requests_measured"]) if judged else 0,
                requests=int(result["run"]["sent"]),
                profile=str(settings["profile"]),
                peak_rps=float(settings["peak_rps"]),
                duration=float(settings["duration"]),
                mode=str(settings["mode"]),
                traffic_path=str(traffic.get("path", "")),
                traffic_fingerprint=str(traffic.get("fingerprint", "")),
                verdict=str(result["verdict"]),
                phases=tuple(
                    PhaseRecord(
                        name=str(p["name"]),
                        requests=int(p["requests"]),
                        floor_growth=float(p["floor_growth"]),
                        floor=_phase_floor(result, index, str(result["metric"])),
                    )
                    for index, p in enumerate(result.get("phases") or ())
                ),
                plugin_version=_plugin_version(),
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise BaselineError(
                f"the soak result of {test} cannot be recorded as a baseline: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _phase_floor(result: Mapping[str, Any], phase: int, metric: str) -> float | None:
    """Memory retained at the phase's last measured checkpoint *above the warm-up's floor*
    (collected and quiesced). Relative, because an absolute floor carries the process's
    history (lazy imports, allocator high-water marks of whatever ran before) and would
    differ between two runs of the same test; ``None`` for a phase that ended in the warm-up."""
    checkpoints = list(result.get("checkpoints") or ())
    warmup = int(result.get("warmup_checkpoints", 1))
    if warmup >= len(checkpoints):
        return None
    base = (checkpoints[warmup].get("floor") or {}).get(metric)
    floors = [
        cp["floor"][metric]
        for cp in checkpoints[warmup:]
        if cp.get("phase") == phase and metric in (cp.get("floor") or {})
    ]
    if base is None or not floors:
        return None
    return float(floors[-1]) - float(base)


def _plugin_version() -> str:
    from pytest_soak import __version__

    return __version__


def baseline_path(test_file: str | os.PathLike[str]) -> Path:
    """``tests/test_shop.py`` -> ``tests/__soak_baselines__/test_shop.json``."""
    test_path = Path(test_file)
    return test_path.parent / BASELINE_DIR / f"{test_path.stem}.json"


# --- rounding: what makes a file diff clean ---------------------------------------------------


def _no_negative_zero(value: float) -> float:
    return value + 0.0  # turns -0.0 into 0.0: both mean "no growth", one spelling in the file


def _to_whole(value: float) -> float | int:
    return round(value) if math.isfinite(value) else value  # put() reports the non-finite


def _to_2_digits(value: float) -> float:
    """Measured memory: two significant digits. Run-to-run noise is far below the default 25%
    tolerance, and a figure that does not move with noise keeps review diffs to real changes."""
    rounded = float(f"{value:.2g}")
    return _no_negative_zero(rounded) if math.isfinite(rounded) else value


def _to_3_digits(value: float) -> float:
    rounded = float(f"{value:.3g}")
    return _no_negative_zero(rounded) if math.isfinite(rounded) else value


def _rounded(b: Baseline) -> Baseline:
    return replace(
        b,
        growth_per_request=_to_2_digits(b.growth_per_request),
        growth=float(_to_whole(_to_2_digits(b.growth))),
        peak_rps=_to_3_digits(b.peak_rps),
        duration=_to_3_digits(b.duration),
        phases=tuple(
            replace(
                p,
                floor_growth=float(_to_whole(_to_2_digits(p.floor_growth))),
                floor=None if p.floor is None else float(_to_whole(_to_2_digits(p.floor))),
            )
            for p in b.phases
        ),
    )


def _entry(b: Baseline) -> dict[str, Any]:
    """The JSON of one (already rounded) baseline: bytes as integers, the rest as they are."""
    return {
        "environment": {f.name: getattr(b.environment, f.name) for f in fields(Environment)},
        "metric": b.metric,
        "growth_per_request": b.growth_per_request,
        "growth": _to_whole(b.growth),
        "requests_measured": b.requests_measured,
        "requests": b.requests,
        "profile": b.profile,
        "peak_rps": b.peak_rps,
        "duration": b.duration,
        "mode": b.mode,
        "traffic_path": b.traffic_path,
        "traffic_fingerprint": b.traffic_fingerprint,
        "verdict": b.verdict,
        "phases": [
            {
                "name": p.name,
                "requests": p.requests,
                "floor_growth": _to_whole(p.floor_growth),
                "floor": None if p.floor is None else _to_whole(p.floor),
            }
            for p in b.phases
        ],
        "plugin_version": b.plugin_version,
    }


# --- reading a file a person may have edited ---------------------------------------------------


def _where(*keys: str | int) -> str:
    """``tests.test_x["linux/x86_64/..."].phases[2].floor``: a key path a person can follow."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out or "the document"


class _Reader:
    """Checks the shape of a decoded file; every complaint names the file and the key path."""

    def __init__(self, path: Path, hint: str = _FIX_HINT) -> None:
        self.path = path
        self.hint = hint

    def fail(self, keys: Sequence[str | int], what: str, hint: str | None = None) -> NoReturn:
        raise BaselineError(f"{self.path}: {_where(*keys)}: {what}; {hint or self.hint}")

    def obj(self, value: Any, keys: Sequence[str | int], known: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(keys, f"expected an object, got {_kind(value)}")
        known = list(known)
        for key in known:
            if key not in value:
                self.fail([*keys, key], "is missing")
        for key in value:
            if key not in known:
                self.fail([*keys, key], f"is not a known key (known: {', '.join(known)})")
        return value

    def text(self, value: Any, keys: Sequence[str | int], *, empty: bool = True) -> str:
        if not isinstance(value, str) or (not empty and not value):
            self.fail(
                keys, f"expected {'a' if empty else 'a non-empty'} string, got {_kind(value)}"
            )
        return value

    def number(
        self, value: Any, keys: Sequence[str | int], *, minimum: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(keys, f"expected a number, got {_kind(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer too big for a float
            number = math.inf
        if not math.isfinite(number) or (minimum is not None and number < minimum):
            bound = "a finite number" if minimum is None else f"a finite number >= {minimum:g}"
            self.fail(keys, f"expected {bound}, got {value!r}")
        return number

    def count(self, value: Any, keys: Sequence[str | int]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(keys, f"expected a whole number >= 0, got {_kind(value)}")
        return value

    def baseline(self, test: str, env_key: str, value: Any) -> Baseline:
        at: list[str | int] = ["tests", test, env_key]
        if not test:
            self.fail(["tests", test], "a test name must not be empty")
        entry = self.obj(value, at, _ENTRY_KEYS)
        env_raw = self.obj(entry["environment"], [*at, "environment"], _ENV_KEYS)
        environment = Environment(
            **{k: self.text(env_raw[k], [*at, "environment", k]) for k in _ENV_KEYS}
        )
        if environment.key != env_key:
            self.fail(at, f"does not match its environment, whose key is {environment.key!r}")
        phases_raw = entry["phases"]
        if not isinstance(phases_raw, list):
            self.fail([*at, "phases"], f"expected a list, got {_kind(phases_raw)}")
        phases = []
        for i, raw in enumerate(phases_raw):
            here = [*at, "phases", i]
            phase = self.obj(raw, here, ("name", "requests", "floor_growth", "floor"))
            floor = phase["floor"]
            phases.append(
                PhaseRecord(
                    name=self.text(phase["name"], [*here, "name"]),
                    requests=self.count(phase["requests"], [*here, "requests"]),
                    floor_growth=self.number(phase["floor_growth"], [*here, "floor_growth"]),
                    floor=None if floor is None else self.number(floor, [*here, "floor"]),
                )
            )
        return Baseline(
            test=test,
            environment=environment,
            metric=self.text(entry["metric"], [*at, "metric"], empty=False),
            growth_per_request=self.number(
                entry["growth_per_request"], [*at, "growth_per_request"]
            ),
            growth=self.number(entry["growth"], [*at, "growth"]),
            requests_measured=self.count(entry["requests_measured"], [*at, "requests_measured"]),
            requests=self.count(entry["requests"], [*at, "requests"]),
            profile=self.text(entry["profile"], [*at, "profile"]),
            peak_rps=self.number(entry["peak_rps"], [*at, "peak_rps"], minimum=0),
            duration=self.number(entry["duration"], [*at, "duration"], minimum=0),
            mode=self.text(entry["mode"], [*at, "mode"]),
            traffic_path=self.text(entry["traffic_path"], [*at, "traffic_path"]),
            traffic_fingerprint=self.text(
                entry["traffic_fingerprint"], [*at, "traffic_fingerprint"]
            ),
            verdict=self.text(entry["verdict"], [*at, "verdict"]),
            phases=tuple(phases),
            plugin_version=self.text(entry["plugin_version"], [*at, "plugin_version"]),
        )


_ENV_KEYS = tuple(f.name for f in fields(Environment))
_ENTRY_KEYS = (
    "environment",
    "metric",
    "growth_per_request",
    "growth",
    "requests_measured",
    "requests",
    "profile",
    "peak_rps",
    "duration",
    "mode",
    "traffic_path",
    "traffic_fingerprint",
    "verdict",
    "phases",
    "plugin_version",
)


def _kind(value: Any) -> str:
    """How a found value is shown in a message: short, and in JSON's words for containers."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


class _Invalid(ValueError):
    """Raised from inside ``json.loads`` hooks: a duplicate key or a NaN."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"the key {key!r} appears twice in one object (a bad merge?)")
        out[key] = value
    return out


def _no_constants(name: str) -> NoReturn:
    raise _Invalid(f"{name} is not a number JSON allows")


# --- the file ----------------------------------------------------------------------------------


class BaselineFile:
    """The baselines of one test module: ``{test: {environment key: Baseline}}``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: dict[str, dict[str, Baseline]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BaselineFile:
        """A missing file is an empty store; anything unreadable is a ``BaselineError``."""
        store = cls(path)
        reader = _Reader(store.path)
        try:
            raw = store.path.read_bytes()
        except FileNotFoundError:
            return store
        except OSError as exc:
            raise BaselineError(
                f"{store.path}: cannot be read ({exc.strerror or exc}); {_FIX_HINT}"
            ) from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BaselineError(
                f"{store.path}: is not UTF-8 text (byte {exc.start}); {_FIX_HINT}"
            ) from exc
        conflict = re.search(r"^(<<<<<<<|>>>>>>>)", text, re.MULTILINE)
        if conflict:
            line = text.count("\n", 0, conflict.start()) + 1
            raise BaselineError(
                f"{store.path}: line {line}: unresolved merge conflict marker; keep one side "
                f"or delete the file, then {_UPDATE_HINT}"
            )
        try:
            document = json.loads(
                text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants
            )
        except json.JSONDecodeError as exc:
            raise BaselineError(
                f"{store.path}: line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg}); "
                f"{_FIX_HINT}"
            ) from exc
        except (ValueError, RecursionError) as exc:  # _Invalid, or an int of 5,000 digits
            raise BaselineError(f"{store.path}: invalid JSON ({exc}); {_FIX_HINT}") from exc
        if not isinstance(document, dict):
            reader.fail([], f"expected an object, got {_kind(document)}")
        if "format" not in document:
            reader.fail(["format"], "is missing")
        version = document["format"]
        if version != FORMAT_VERSION or isinstance(version, bool):
            reader.fail(
                ["format"],
                f"{_kind(version)} is not a format this pytest-soak reads ({FORMAT_VERSION})",
                f"upgrade pytest-soak, or delete the file and {_UPDATE_HINT}",
            )
        tests = reader.obj(document, [], ("format", "tests"))["tests"]
        if not isinstance(tests, dict):
            reader.fail(["tests"], f"expected an object, got {_kind(tests)}")
        for test, by_env in tests.items():
            if not isinstance(by_env, dict):
                reader.fail(["tests", test], f"expected an object, got {_kind(by_env)}")
            store._entries[test] = {
                key: reader.baseline(test, key, value) for key, value in by_env.items()
            }
            if not store._entries[test]:
                del store._entries[test]
        return store

    def get(self, test: str, environment_key: str) -> Baseline | None:
        return self._entries.get(test, {}).get(environment_key)

    def environments(self, test: str) -> list[str]:
        return sorted(self._entries.get(test, {}))

    def tests(self) -> list[str]:
        return sorted(self._entries)

    def put(self, baseline: Baseline) -> bool:
        """Store ``baseline`` (rounded); True when that changed the file's content.

        A new plugin version alone is not a change: the figures are still the ones recorded,
        and upgrading pytest-soak must not rewrite every baseline file of a suite."""
        new = _rounded(replace(baseline, traffic_path=self._relative(baseline.traffic_path)))
        key = new.environment.key
        # What is put must load again: the reader's checks, with a message for the writer.
        _Reader(self.path, hint="the baseline is not recorded").baseline(new.test, key, _entry(new))
        by_env = self._entries.setdefault(new.test, {})
        old = by_env.get(key)
        if old is not None and replace(old, plugin_version=new.plugin_version) == new:
            return False
        by_env[key] = new
        return True

    def remove(self, tests: Iterable[str]) -> list[str]:
        """Forget every environment of ``tests``; returns those that were there."""
        return [test for test in dict.fromkeys(tests) if self._entries.pop(test, None)]

    def dumps(self) -> str:
        document = {
            "format": FORMAT_VERSION,
            "tests": {
                test: {key: _entry(b) for key, b in by_env.items()}
                for test, by_env in self._entries.items()
            },
        }
        return json.dumps(document, sort_keys=True, indent=2, allow_nan=False) + "\n"

    def save(self) -> None:
        """Write atomically (a temp file in the same folder, then ``os.replace``): a crash or a
        concurrent reader never sees half a file. With no test left, the file is deleted."""
        try:
            if not self._entries:
                self.path.unlink(missing_ok=True)
                _remove_if_empty(self.path.parent)
                return
            data = self.dumps().encode("utf-8")
            try:
                if self.path.read_bytes() == data:
                    return  # unchanged: keep the mtime, no needless write
                mode = self.path.stat().st_mode & 0o777
            except OSError:
                mode = 0o644
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, mode)  # mkstemp makes it 0600; a committed file is not private
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise BaselineError(
                f"{self.path}: cannot be written ({exc.strerror or exc}); the previous file, if "
                "any, is unchanged"
            ) from exc

    def _relative(self, traffic_path: str) -> str:
        """An absolute traffic path becomes relative to the test's folder (POSIX separators):
        a committed file must not change with the checkout's location or the OS."""
        if not traffic_path or not os.path.isabs(traffic_path):
            return traffic_path
        try:
            relative = os.path.relpath(traffic_path, self.path.parent.parent)
        except ValueError:  # another drive on Windows
            return traffic_path
        return Path(relative).as_posix()


def _remove_if_empty(folder: Path) -> None:
    if folder.name != BASELINE_DIR:
        return  # only ever tidy away our own folder
    with contextlib.suppress(OSError):  # not empty, or already gone
        folder.rmdir()


# --- tolerance and comparison ------------------------------------------------------------------


_TOLERANCE_FORMS = "'20%', '1MB', '20% + 1MB' or ('20%', '1MB')"


@dataclass(frozen=True)
class Tolerance:
    """How much worse than its baseline a result may be: a share of the expected growth plus
    an amount. Both, because a share alone is nothing when the baseline is near zero, and an
    amount alone does not scale with a long nightly run."""

    relative: float
    absolute: float

    @classmethod
    def parse(
        cls,
        value: str | float | Sequence[str] | Tolerance | None,
        *,
        name: str = "tolerance",
    ) -> Tolerance:
        if value is None:
            return DEFAULT_TOLERANCE
        if isinstance(value, Tolerance):
            return value
        parts: list[Any]
        if isinstance(value, str):
            parts = value.split("+")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            parts = [value]
        elif isinstance(value, Sequence) and value:
            parts = list(value)
        else:
            parts = [None]

        def bad(why: str = "") -> BaselineError:
            return BaselineError(
                f"{name}={value!r} is not a tolerance{why}; use a percentage of the baseline, "
                f"a size, or both: {_TOLERANCE_FORMS}"
            )

        relative: float | None = None
        absolute: float | None = None
        for part in parts:
            if isinstance(part, str) and part.strip().endswith("%"):
                if relative is not None:
                    raise bad(" (two percentages)")
                try:
                    relative = float(part.strip()[:-1]) / 100
                except ValueError:
                    raise bad() from None
                if not math.isfinite(relative) or relative < 0:
                    raise bad(" (the percentage must be finite and >= 0)")
            elif isinstance(part, (str, int, float)) and not isinstance(part, bool):
                if absolute is not None:
                    raise bad(" (two sizes)")
                try:
                    absolute = parse_size(part, name=name)
                except SoakError:
                    raise bad() from None
            else:
                raise bad()
        return cls(relative=relative or 0.0, absolute=absolute or 0.0)

    def __str__(self) -> str:
        shown = []
        if self.relative:
            shown.append(f"{self.relative * 100:g}%")
        if self.absolute:
            shown.append(format_bytes(self.absolute))
        return " + ".join(shown) or "0%"


DEFAULT_TOLERANCE = Tolerance(relative=0.25, absolute=0.0)


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare``; figures in the judged metric's unit, ``message`` one line."""

    status: str  # within | over | better
    expected: float
    allowed: float
    observed: float
    message: str


def compare(
    baseline: Baseline,
    *,
    observed_growth: float,
    requests_measured: int,
    tolerance: Tolerance,
    path: str,
) -> Comparison:
    """Judge ``observed_growth`` against the baseline scaled to this run's length.

    The baseline's growth *per request* times the requests this run measured is what is
    expected, so a quick run can be compared with a baseline from a longer one.
    ``allowed = max(0, expected) × (1 + relative) + absolute``; over that is ``over``. A baseline
    that shrank (negative growth) allows what a flat one does: noise must not fail a flat run.
    ``better`` needs an improvement bigger than the tolerance and a baseline that grew by more
    than the absolute tolerance: smaller differences are noise, not news."""
    metric = baseline.metric
    expected = baseline.growth_per_request * requests_measured
    allowed = max(0.0, expected) * (1 + tolerance.relative) + tolerance.absolute
    margin = abs(expected) * tolerance.relative + tolerance.absolute
    if observed_growth > allowed:
        status = "over"
    elif observed_growth < expected - margin and expected > tolerance.absolute:
        status = "better"
    else:
        status = "within"

    rate = observed_growth / requests_measured if requests_measured else 0.0
    seen = (
        f"{_amount(observed_growth, metric, signed=True)} observed over "
        f"{requests_measured:,} requests ({_per_request(rate, metric)})"
    )
    tol = [f"{tolerance.relative * 100:g}%"] if tolerance.relative else []
    if tolerance.absolute:
        tol.append(_amount(tolerance.absolute, metric))
    base = (
        f"baseline {_per_request(baseline.growth_per_request, metric)} "
        f"({_amount(expected, metric)} expected)"
    )
    where = f"({path}, {baseline.environment.key})"
    if status == "better":
        message = (
            f"{seen} is much better than the {base}, beyond its tolerance of "
            f"{' + '.join(tol) or '0'}: run --soak-update-baselines to record it {where}"
        )
    else:
        sign = ">" if status == "over" else "<="
        tail = f" + {' + '.join(tol)} tolerance" if tol else ""
        message = f"{seen} {sign} {_amount(allowed, metric)} allowed: {base}{tail} {where}"
    return Comparison(status, expected, allowed, observed_growth, message)


def _amount(value: float, metric: str, *, signed: bool = False) -> str:
    if metric != "blocks":
        return format_bytes(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,.0f} blocks"


def _per_request(value: float, metric: str) -> str:
    """One decimal below 100 (``5.0 B/request``): per-request growth is often a few bytes."""
    unit = "blocks" if metric == "blocks" else "B"
    if abs(value) < 100:
        return f"{value:.1f} {unit}/request"
    return f"{_amount(value, metric)}/request"


def traffic_fingerprint(exchanges: Iterable[tuple[str, str, bytes]]) -> str:
    """``sha256:<16 hex>`` of the requests in order: a baseline recorded with other traffic
    shows up in review as a changed fingerprint. Each field is length-prefixed, so no two
    different sequences share an encoding."""
    digest = hashlib.sha256()
    for method, target, body in exchanges:
        for field in (method.encode("utf-8"), target.encode("utf-8"), bytes(body)):
            digest.update(len(field).to_bytes(8, "big"))
            digest.update(field)
    return f"sha256:{digest.hexdigest()[:16]}"
