"""Which requests are recorded: endpoint patterns first, then the sample rate.

Patterns are the ones ``replay_traffic(include=..., exclude=...)`` takes
(``pytest_soak.traffic.endpoints.EndpointPattern``): a path or template, optionally after a
method: ``/health``, ``/cart/*`` (one segment), ``/admin/**`` (everything under ``/admin``),
``/cart/delete/{id}``, ``DELETE /cart/**``. A request is recorded when no ``exclude`` pattern
matches it, some ``include`` pattern matches it (or there are none), and then with probability
``rate``. With a ``seed`` the choices are the same for the same sequence of requests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from pytest_soak.errors import SoakError
from pytest_soak.traffic.endpoints import EndpointPattern


class Sampler:
    """Decides, per request, whether it is recorded (thread-safe: ``random.Random.random`` is
    one call under the GIL)."""

    def __init__(
        self,
        rate: float = 1.0,
        *,
        seed: int | None = None,
        include: str | Iterable[str] = (),
        exclude: str | Iterable[str] = (),
    ) -> None:
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not math.isfinite(rate)
            or not 0.0 <= rate <= 1.0
        ):
            raise SoakError(
                f"sample_rate={rate!r} must be a number from 0 to 1 (1 records every request, "
                "0.1 one in ten, 0 none)"
            )
        self.rate = float(rate)
        self.include = _patterns(include, "include")
        self.exclude = _patterns(exclude, "exclude")
        self._random = random.Random(seed).random

    def wants(self, method: str, path: str) -> bool:
        if self.rate <= 0.0:
            return False
        if self.exclude and any(p.matches(method, path) for p in self.exclude):
            return False
        if self.include and not any(p.matches(method, path) for p in self.include):
            return False
        return self.rate >= 1.0 or self._random() < self.rate


def _patterns(value: str | Iterable[str], name: str) -> tuple[EndpointPattern, ...]:
    texts = [value] if isinstance(value, str) else list(value)
    patterns = []
    for text in texts:
        if not isinstance(text, str):
            raise SoakError(
                f"{name}={value!r}: {text!r} is not a pattern; give paths or templates such as "
                "'/health', '/cart/*' or 'DELETE /cart/**'"
            )
        try:
            patterns.append(EndpointPattern.parse(text))
        except SoakError as exc:
            raise SoakError(f"{name}={value!r}: {exc}") from None
    return tuple(patterns)
