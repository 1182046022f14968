"""The baselines of one test module, in one JSON file in a ``__soak_baselines__`` folder beside it.

The files are written for review: sorted keys, figures rounded so that noise below the rounding
does not show up as a change, identical content giving identical bytes, atomic writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from pytest_soak.baselines.environment import Environment
from pytest_soak.baselines.reader import FORMAT_VERSION, Reader, read_baselines
from pytest_soak.baselines.record import PHASE_LATENCY_KEYS, Baseline
from pytest_soak.errors import BaselineError
from pytest_soak.files import write_atomic

BASELINE_DIR = "__soak_baselines__"


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


def _seconds(value: float | None) -> float | None:
    """A latency percentile: to 0.1 ms (a tenth of a millisecond is far below its noise)."""
    return None if value is None else _no_negative_zero(round(value, 4))


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
                p50=_seconds(p.p50),
                p95=_seconds(p.p95),
                p99=_seconds(p.p99),
                error_rate=None if p.error_rate is None else _to_2_digits(p.error_rate),
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
                **{
                    key: getattr(p, key)
                    for key in PHASE_LATENCY_KEYS
                    if getattr(p, key) is not None
                },
            }
            for p in b.phases
        ],
        "plugin_version": b.plugin_version,
    }


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
        store._entries = read_baselines(store.path)
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
        Reader(self.path, hint="the baseline is not recorded").baseline(new.test, key, _entry(new))
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
        """Write atomically (``write_atomic``): a crash or a concurrent reader never sees half a
        file. With no test left, the file is deleted."""
        try:
            if not self._entries:
                self.path.unlink(missing_ok=True)
                _remove_if_empty(self.path.parent)
                return
            data = self.dumps().encode("utf-8")
            with contextlib.suppress(OSError):
                if self.path.read_bytes() == data:
                    return  # unchanged: keep the mtime, no needless write
            write_atomic(self.path, data)
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
