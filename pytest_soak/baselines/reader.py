"""Reading a baseline file a person may have edited (a bad merge, a typo): every complaint is a
``BaselineError`` naming the file and the key path, never a ``KeyError`` from deep inside the
plugin. ``Reader`` also checks what is about to be written, so what is put loads again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from pytest_soak.baselines.environment import Environment
from pytest_soak.baselines.record import PHASE_LATENCY_KEYS, Baseline, PhaseRecord
from pytest_soak.errors import BaselineError

FORMAT_VERSION = 1

UPDATE_HINT = "run pytest with --soak-update-baselines"
FIX_HINT = f"fix it or delete the file, then {UPDATE_HINT}"


def read_baselines(path: Path) -> dict[str, dict[str, Baseline]]:
    """``{test: {environment key: Baseline}}``; a missing file has none."""
    reader = Reader(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read ({exc.strerror or exc}); {FIX_HINT}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: is not UTF-8 text (byte {exc.start}); {FIX_HINT}") from exc
    conflict = re.search(r"^(<<<<<<<|>>>>>>>)", text, re.MULTILINE)
    if conflict:
        line = text.count("\n", 0, conflict.start()) + 1
        raise BaselineError(
            f"{path}: line {line}: unresolved merge conflict marker; keep one side "
            f"or delete the file, then {UPDATE_HINT}"
        )
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg}); {FIX_HINT}"
        ) from exc
    except (ValueError, RecursionError) as exc:  # _Invalid, or an int of 5,000 digits
        raise BaselineError(f"{path}: invalid JSON ({exc}); {FIX_HINT}") from exc
    if not isinstance(document, dict):
        reader.fail([], f"expected an object, got {_kind(document)}")
    if "format" not in document:
        reader.fail(["format"], "is missing")
    version = document["format"]
    if version != FORMAT_VERSION or isinstance(version, bool):
        reader.fail(
            ["format"],
            f"{_kind(version)} is not a format this pytest-soak reads ({FORMAT_VERSION})",
            f"upgrade pytest-soak, or delete the file and {UPDATE_HINT}",
        )
    tests = reader.obj(document, [], ("format", "tests"))["tests"]
    if not isinstance(tests, dict):
        reader.fail(["tests"], f"expected an object, got {_kind(tests)}")
    entries: dict[str, dict[str, Baseline]] = {}
    for test, by_env in tests.items():
        if not isinstance(by_env, dict):
            reader.fail(["tests", test], f"expected an object, got {_kind(by_env)}")
        found = {key: reader.baseline(test, key, value) for key, value in by_env.items()}
        if found:
            entries[test] = found
    return entries


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


class Reader:
    """Checks the shape of a decoded file; every complaint names the file and the key path."""

    def __init__(self, path: Path, hint: str = FIX_HINT) -> None:
        self.path = path
        self.hint = hint

    def fail(self, keys: Sequence[str | int], what: str, hint: str | None = None) -> NoReturn:
        raise BaselineError(f"{self.path}: {_where(*keys)}: {what}; {hint or self.hint}")

    def obj(
        self,
        value: Any,
        keys: Sequence[str | int],
        known: Iterable[str],
        optional: Iterable[str] = (),
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(keys, f"expected an object, got {_kind(value)}")
        required = list(known)
        for key in required:
            if key not in value:
                self.fail([*keys, key], "is missing")
        known = [*required, *optional]
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
            phase = self.obj(
                raw, here, ("name", "requests", "floor_growth", "floor"), PHASE_LATENCY_KEYS
            )
            floor = phase["floor"]
            latency = {
                key: None
                if phase.get(key) is None
                else self.number(phase[key], [*here, key], minimum=0)
                for key in PHASE_LATENCY_KEYS
            }
            phases.append(
                PhaseRecord(
                    name=self.text(phase["name"], [*here, "name"]),
                    requests=self.count(phase["requests"], [*here, "requests"]),
                    floor_growth=self.number(phase["floor_growth"], [*here, "floor_growth"]),
                    floor=None if floor is None else self.number(floor, [*here, "floor"]),
                    **latency,
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
