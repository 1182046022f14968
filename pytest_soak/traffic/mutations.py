"""Unexpected input the recording lacks: recorded requests mutated with hypothesis strategies.

An extra *variation* for leak isolation (docs/isolation.md): the culprit endpoint's recorded
requests, each changed in one way a real client sometimes sends and a recording rarely holds:

=================  ==================================================================
kind               what changes
=================  ==================================================================
``malformed-id``   id-like path segments become arbitrary text (percent-encoded)
``unknown-id``     id-like path segments become well-formed ids nobody created
``missing-field``  one key of a JSON object body is dropped
``wrong-type``     one value of a JSON object body gets another JSON type
``oversized``      one JSON value (else a query value, else the id) becomes 16-64 KiB
                   (a query value 2-8 KiB, an id 1-2 KiB of ASCII: what servers accept
                   in a request line)
=================  ==================================================================

Values are drawn by hypothesis (``@seed``, no example database), so the same seed gives the
same mutated requests on every run and machine with the same hypothesis version. hypothesis is
an optional dependency: ``mutate`` raises ``SoakError`` naming the install command without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from pytest_soak.errors import SoakError
from pytest_soak.traffic.endpoints import is_id_like
from pytest_soak.traffic.model import Exchange

KINDS = ("malformed-id", "unknown-id", "missing-field", "wrong-type", "oversized")
#: Distinct values drawn per kind; exchanges cycle over them.
POOL_SIZE = 32


def applicable(exchanges: Sequence[Exchange]) -> list[str]:
    """The mutation kinds that change at least one of ``exchanges``, in ``KINDS`` order."""
    has_id = any(_id_positions(e) for e in exchanges)
    has_fields = any(_json_object(e) for e in exchanges)
    has_query = any(parse_qsl(e.query) for e in exchanges)
    kinds = []
    if has_id:
        kinds += ["malformed-id", "unknown-id"]
    if has_fields:
        kinds += ["missing-field", "wrong-type"]
    if has_fields or has_query or has_id:
        kinds.append("oversized")
    return kinds


def mutate(exchanges: Sequence[Exchange], kind: str, *, seed: int) -> list[Exchange]:
    """``exchanges`` with mutation ``kind`` applied to each one it applies to (the others are
    returned unchanged); deterministic for a seed."""
    if kind not in KINDS:
        raise SoakError(f"mutation kind={kind!r} is not one of: {', '.join(KINDS)}")
    pool = _draw(kind, seed)
    apply = _APPLY[kind]
    out = []
    for n, exchange in enumerate(exchanges):
        changed = apply(exchange, pool[n % len(pool)])
        if changed is not exchange:
            changed = replace(changed, source=f"{kind} mutation of {exchange.source or n}")
        out.append(changed)
    return out


def _draw(kind: str, seed: int) -> list[Any]:
    """``POOL_SIZE`` values of the kind's strategy, reproducibly for ``seed``."""
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hypothesis_seed
        from hypothesis import strategies as st
    except ImportError:
        raise SoakError(
            "isolate='mutate' draws mutated requests with hypothesis, which is not installed: "
            "pip install hypothesis (or use isolate=True, without mutations)"
        ) from None
    json_values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.lists(st.integers(min_value=-1000, max_value=1000), max_size=3),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    )
    strategies: dict[str, Any] = {
        "malformed-id": st.text(min_size=1, max_size=24).filter(
            lambda s: s.strip(".") != "" and not is_id_like(s)
        ),
        "unknown-id": st.from_regex(r"[a-z]{0,2}[0-9]{6,12}", fullmatch=True),
        "missing-field": st.integers(min_value=0, max_value=10**6),
        "wrong-type": st.tuples(st.integers(min_value=0, max_value=10**6), json_values),
        "oversized": st.tuples(
            st.integers(min_value=0, max_value=10**6),
            st.text(min_size=1, max_size=3),
            st.integers(min_value=16 * 1024, max_value=64 * 1024),
        ),
    }
    drawn: list[Any] = []

    @settings(
        max_examples=POOL_SIZE,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_seed(seed * len(KINDS) + KINDS.index(kind))
    @given(strategies[kind])
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    if not drawn:  # pragma: no cover - every strategy above has many values
        raise SoakError(f"hypothesis drew no value for mutation kind={kind!r}")
    return drawn


def _id_positions(exchange: Exchange) -> list[int]:
    return [n for n, s in enumerate(exchange.path.split("/")) if s and is_id_like(s)]


def _with_path_ids(exchange: Exchange, new: Callable[[str], str]) -> Exchange:
    positions = _id_positions(exchange)
    if not positions:
        return exchange
    segments = exchange.path.split("/")
    for n in positions:
        segments[n] = quote(new(segments[n]), safe="")
    target = "/".join(segments) + (f"?{exchange.query}" if exchange.query else "")
    return replace(exchange, target=target)


def _json_object(exchange: Exchange) -> dict[str, Any] | None:
    if not exchange.body:
        return None
    try:
        value = json.loads(exchange.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) and value else None


def _with_body(exchange: Exchange, value: dict[str, Any]) -> Exchange:
    return replace(exchange, body=json.dumps(value).encode())


def _malformed_id(exchange: Exchange, drawn: Any) -> Exchange:
    return _with_path_ids(exchange, lambda _: str(drawn))


def _unknown_id(exchange: Exchange, drawn: Any) -> Exchange:
    return _with_path_ids(exchange, lambda _: str(drawn))


def _missing_field(exchange: Exchange, drawn: Any) -> Exchange:
    value = _json_object(exchange)
    if value is None:
        return exchange
    keys = sorted(value)
    del value[keys[int(drawn) % len(keys)]]
    return _with_body(exchange, value)


def _wrong_type(exchange: Exchange, drawn: Any) -> Exchange:
    value = _json_object(exchange)
    if value is None:
        return exchange
    pick, replacement = drawn
    key = sorted(value)[int(pick) % len(value)]
    if type(replacement) is type(value[key]):
        # Same type drawn: wrap it, which is a different type whatever it was.
        replacement = [replacement] if not isinstance(replacement, list) else {"value": 1}
    value[key] = replacement
    return _with_body(exchange, value)


def _oversized(exchange: Exchange, drawn: Any) -> Exchange:
    pick, unit, size = drawn
    big = (unit * (size // len(unit) + 1))[:size]
    value = _json_object(exchange)
    if value is not None:
        key = sorted(value)[int(pick) % len(value)]
        value[key] = big
        return _with_body(exchange, value)
    # In the request line: ASCII (percent-encoding would multiply it), 1-8 KiB: long, but
    # what servers accept rather than reject with 414.
    plain = "".join(c if c.isascii() and c.isalnum() else "x" for c in unit)
    pairs = parse_qsl(exchange.query, keep_blank_values=True)
    if pairs:
        n = int(pick) % len(pairs)
        pairs[n] = (pairs[n][0], (plain * (8192 // len(plain)))[: 2048 + size % 6144])
        return replace(exchange, target=f"{exchange.path}?{urlencode(pairs)}")
    return _with_path_ids(exchange, lambda _: (plain * (2048 // len(plain)))[: 1024 + size % 1024])


_APPLY: dict[str, Callable[[Exchange, Any], Exchange]] = {
    "malformed-id": _malformed_id,
    "unknown-id": _unknown_id,
    "missing-field": _missing_field,
    "wrong-type": _wrong_type,
    "oversized": _oversized,
}
