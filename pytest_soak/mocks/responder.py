"""The state of one mock set and how it answers a request, whatever the transport.

``Responder.answer(request)`` picks the stub (priority, scenario state), the stub's next
response (several recordings of one signature cycle in order), samples the definition's delays,
applies chaos, and journals it. It is thread-safe (a WSGI service calls from a thread pool) and
its memory does not grow with the number of requests.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from typing import Any

from pytest_soak.mocks.chaos import Chaos, ChaosDecider, sample_delay
from pytest_soak.mocks.definitions import Headers, Stub
from pytest_soak.mocks.journal import Journal
from pytest_soak.mocks.matching import Request, closest, select

CHAOS_HEADER = "x-soak-chaos"


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back. ``fault`` (``reset``, ``empty``, ``malformed_chunk``, ``random_data``)
    replaces the response; ``delay_ms`` is waited before answering (or failing)."""

    status: int
    headers: Headers = ()
    body: bytes = b""
    reason: str = ""
    delay_ms: float = 0.0
    fault: str | None = None
    stub: str | None = None


class Responder:
    def __init__(self, stubs: tuple[Stub, ...], chaos: Chaos | None, seed: int) -> None:
        self.stubs = stubs
        self.chaos = chaos
        self._lock = threading.Lock()
        self._decider = ChaosDecider(chaos, seed)
        self._delay_seed = seed + 1
        self.journal = Journal(tuple(dict.fromkeys(stub.name for stub in stubs)))
        self.reset()

    def reset(self) -> None:
        """Back to the start: scenarios, response cycles, chaos sequence, journal."""
        with self._lock:
            self._states: dict[str, str] = {}
            self._cycle = [0] * len(self.stubs)
            self._decider.reset()
            self._delay_rng = random.Random(self._delay_seed)
            self.journal.reset()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            snapshot = self.journal.snapshot()
            snapshot["scenarios"] = dict(self._states)
            return snapshot

    def would_match(self, request: Request) -> bool:
        """Whether a stub would answer ``request`` now (changes nothing)."""
        with self._lock:
            return select(self.stubs, request, self._states) is not None

    def answer(self, request: Request) -> Answer:
        with self._lock:
            index = select(self.stubs, request, self._states)
            if index is None:
                return self._unmatched(request)
            stub = self.stubs[index]
            turn = self._cycle[index]
            self._cycle[index] = turn + 1
            response = stub.responses[turn % len(stub.responses)]
            if stub.scenario is not None and stub.new_state is not None:
                self._states[stub.scenario] = stub.new_state
            delay = sum(sample_delay(d, self._delay_rng.random()) for d in response.delays)
            decision = self._decider.decide()
            journal = self.journal
            journal.record_match(stub.name)
            if decision.delay_ms:
                journal.record_injected("latency")
            if decision.fault is not None:
                journal.record_injected(decision.fault)
                return Answer(0, delay_ms=delay + decision.delay_ms, fault=decision.fault,
                              stub=stub.name)  # fmt: skip
            if decision.status is not None:
                journal.record_injected(f"status {decision.status}")
                body = json.dumps({"error": f"injected by pytest-soak chaos: {decision.status}"})
                return Answer(
                    decision.status,
                    (("content-type", "application/json"), (CHAOS_HEADER, str(decision.status))),
                    body.encode(),
                    delay_ms=delay + decision.delay_ms,
                    stub=stub.name,
                )
            return Answer(
                response.status,
                response.headers,
                response.body,
                response.reason,
                delay_ms=delay + decision.delay_ms,
                fault=response.fault,
                stub=stub.name,
            )

    def _unmatched(self, request: Request) -> Answer:
        method, path = request.method.upper(), request.path
        near = None if self.journal.knows_unmatched(method, path) else closest(self.stubs, request)
        self.journal.record_unmatched(method, path, near)
        hint = f"; closest stub: {near!r}" if near else ""
        text = f"pytest-soak mocks: no stub matches {method} {path}{hint}\n"
        return Answer(404, (("content-type", "text/plain; charset=utf-8"),), text.encode())
