"""Chaos: seeded decisions per request, what they inject, and the acceptance check: a served
service calling a mocked payments API sees 10% ± 2% 503s over 2,000 calls, the same calls in two
runs with the same seed."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_soak import Chaos, MockError, MockSet
from pytest_soak.mocks.chaos import ChaosDecider, parse_latency, sample_delay
from pytest_soak.mocks.definitions import Delay
from pytest_soak.soak import Soak

DATA = Path(__file__).parent / "data"


def _decisions(chaos: Chaos, n: int, seed: int = 1) -> list[tuple[Any, ...]]:
    decider = ChaosDecider(chaos, seed)
    return [(d.status, d.fault, round(d.delay_ms, 6)) for d in (decider.decide() for _ in range(n))]


def test_decisions_are_a_function_of_seed_and_request_index() -> None:
    chaos = Chaos(error_rate=0.2, statuses=[500, 503], latency="uniform(1ms, 5ms)",
                  faults={"reset": 0.05, "EMPTY_RESPONSE": 0.05})  # fmt: skip
    assert _decisions(chaos, 500) == _decisions(chaos, 500)
    assert _decisions(chaos, 500) != _decisions(chaos, 500, seed=2)
    decider = ChaosDecider(chaos, 1)
    first = [decider.decide() for _ in range(50)]
    decider.reset()
    assert [decider.decide() for _ in range(50)] == first
    # The seed given to Chaos wins over the suite's.
    seeded = Chaos(error_rate=0.5, seed=9)
    assert _decisions(seeded, 100, seed=1) == _decisions(seeded, 100, seed=2)


def test_rates_and_kinds_are_what_was_asked() -> None:
    chaos = Chaos(error_rate=0.1, statuses=[500, 503], faults={"reset": 0.02})
    kinds = Counter(f"status {s}" if s else (f or "ok") for s, f, _ in _decisions(chaos, 20_000))
    assert kinds["status 500"] + kinds["status 503"] == pytest.approx(2000, rel=0.1)
    assert kinds["status 500"] == pytest.approx(kinds["status 503"], rel=0.15)
    assert kinds["reset"] == pytest.approx(400, rel=0.2)


def test_latency_forms() -> None:
    assert parse_latency("20ms") == Delay("fixed", 20.0)
    assert parse_latency("fixed(1s)") == Delay("fixed", 1000.0)
    assert parse_latency("uniform(10ms, 80ms)") == Delay("uniform", 10.0, 80.0)
    assert parse_latency("lognormal(50ms, 0.5)") == Delay("lognormal", 50.0, 0.5)
    lognormal = Delay("lognormal", 50.0, 0.5)
    assert sample_delay(lognormal, 0.5) == pytest.approx(50.0)  # the median
    assert sample_delay(lognormal, 0.99) > 100.0
    for bad in ("fast", "uniform(80ms, 10ms)", "lognormal(50ms)", "gamma(1ms, 2)"):
        with pytest.raises(MockError, match="is not a latency"):
            parse_latency(bad)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"error_rate": 1.5}, "must be a share between 0 and 1"),
        ({"statuses": []}, "give one or more HTTP statuses"),
        ({"statuses": [700]}, "give one or more HTTP statuses"),
        ({"faults": {"explode": 0.1}}, "unknown fault"),
        ({"error_rate": 0.6, "faults": {"reset": 0.6}}, "is over 1"),
        ({"latency": "soon"}, "is not a latency"),
    ],
)
def test_bad_chaos_is_refused(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(MockError, match=expected):
        Chaos(**kwargs)


def test_in_process_chaos_is_journaled_per_kind() -> None:
    chaos = Chaos(error_rate=0.1, statuses=[503], faults={"reset": 0.05}, latency="1ms", seed=3)
    outcomes: Counter[str] = Counter()
    with MockSet.load(DATA / "payments", chaos=chaos) as mocks, httpx.Client() as http:
        for _ in range(400):
            try:
                answer = http.post("https://payments.example/v1/charges", json={"amount": 100,
                                   "currency": "EUR"})  # fmt: skip
                outcomes[str(answer.status_code)] += 1
            except httpx.ReadError:
                outcomes["reset"] += 1
        injected = mocks.stats()["injected"]
    assert injected["status 503"] == outcomes["503"]
    assert injected["reset"] == outcomes["reset"]
    assert injected["latency"] == 400
    assert outcomes["201"] == 400 - outcomes["503"] - outcomes["reset"]


SERVICE = [sys.executable, "-m", "uvicorn", "payments_service:app", "--port", "{port}",
           "--log-level", "warning"]  # fmt: skip


def _checkout_statuses(soak: Soak, calls: int) -> tuple[list[int], dict[str, Any]]:
    chaos = Chaos(error_rate=0.1, statuses=[503], seed=2024)
    with MockSet.load(DATA / "payments", serve=True, chaos=chaos) as payments:
        service = soak.serve(SERVICE, env={"PAYMENTS_URL": payments.url}, ready="/health")
        try:
            with httpx.Client(base_url=service.url, timeout=10) as client:
                statuses = [client.post("/checkout").status_code for _ in range(calls)]
        finally:
            service.stop()
        return statuses, payments.stats()


def test_a_served_service_sees_the_chaos_error_rate_reproducibly(soak: Soak) -> None:
    first, stats = _checkout_statuses(soak, 2000)
    second, _ = _checkout_statuses(soak, 2000)
    assert set(first) == {201, 503}
    rate = first.count(503) / len(first)
    assert 0.08 <= rate <= 0.12, rate
    assert first == second  # the same calls failed, in both runs
    assert stats["injected"] == {"status 503": first.count(503)}
    assert stats["matched"]["charge"] == 2000
