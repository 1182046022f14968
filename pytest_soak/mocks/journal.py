"""What a mock set answered, in bounded memory: counters, and at most ``MAX_UNMATCHED`` distinct
unmatched requests (method, path, closest stub, count). Never a list of every request: a mock
that remembers each call is itself a leak over a nightly soak (respx's ``calls`` list is)."""

from __future__ import annotations

from collections import Counter
from typing import Any

MAX_UNMATCHED = 50


class Journal:
    def __init__(self, stub_names: tuple[str, ...]) -> None:
        self._names = stub_names
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.matched: dict[str, int] = dict.fromkeys(self._names, 0)
        self.unmatched_count = 0
        self.unmatched_other = 0  # distinct unmatched requests past MAX_UNMATCHED
        self._unmatched: dict[tuple[str, str], dict[str, Any]] = {}
        self.injected: Counter[str] = Counter()

    def record_match(self, name: str) -> None:
        self.requests += 1
        self.matched[name] = self.matched.get(name, 0) + 1

    def knows_unmatched(self, method: str, path: str) -> bool:
        return (method, path) in self._unmatched

    def record_unmatched(self, method: str, path: str, closest: str | None) -> None:
        """``closest`` is only looked at for a request not listed yet."""
        self.requests += 1
        self.unmatched_count += 1
        entry = self._unmatched.get((method, path))
        if entry is not None:
            entry["count"] += 1
        elif len(self._unmatched) < MAX_UNMATCHED:
            self._unmatched[(method, path)] = {
                "method": method,
                "path": path,
                "closest": closest,
                "count": 1,
            }
        else:
            self.unmatched_other += 1

    def record_injected(self, kind: str) -> None:
        self.injected[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "matched": dict(self.matched),
            "unmatched_count": self.unmatched_count,
            "unmatched": [dict(entry) for entry in self._unmatched.values()],
            "unmatched_not_listed": self.unmatched_other,
            "injected": dict(sorted(self.injected.items())),
        }
