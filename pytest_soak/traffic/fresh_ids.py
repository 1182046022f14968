"""``ids="fresh"``: each load cycle replays the same requests with ids of its own.

By default every cycle replays identical requests, so a table keyed by the ids in the traffic
(a cache, a session table) fills in the warm-up cycle and stays flat: a bounded cache is not
a leak. A table that keeps *every* id it ever sees, unbounded, then also stays flat, because no
new id arrives. Teams who want such tables to show as growth opt in with ``ids="fresh"``: cycle
``c`` rewrites every id-like path segment, id-like query value and JSON body string equal to one
of those ids, consistently within the cycle (the cart a cycle makes is the cart it deletes) and
in the id's own shape (digits stay digits, hex stays hex of the same length). The trade-off: a
bounded cache keyed by ids then sees new keys every cycle too, and fills until its bound; size
the run so that it reaches the bound in the warm-up, or leave ids as recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pytest_soak.traffic.endpoints import is_id_like
from pytest_soak.traffic.model import Exchange

_HEX = re.compile(r"[0-9a-fA-F]+")
_TRAILING_DIGITS = re.compile(r"^(.*?)([0-9]+)$")
_QUERY_PAIR = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def fresh_id(identifier: str, cycle: int) -> str:
    """``identifier`` as cycle ``cycle`` sees it (cycle 0: unchanged); same shape, new value."""
    if cycle == 0:
        return identifier
    if identifier.isdigit():
        return str(int(identifier) + cycle * 10 ** len(identifier))
    digits = _TRAILING_DIGITS.match(identifier)
    hexish = len(identifier.replace("-", "")) >= 16 and _HEX.fullmatch(identifier.replace("-", ""))
    if digits and not hexish:
        head, tail = digits.groups()
        return f"{head}{int(tail) + cycle * 10 ** len(tail)}"
    digest = hashlib.blake2b(f"{cycle}:{identifier}".encode(), digest_size=32).hexdigest()
    out = []
    position = 0
    for char in identifier:  # keep dashes and case; replace hex digits
        if char in "0123456789abcdefABCDEF":
            new = digest[position % len(digest)]
            out.append(new.upper() if char.isupper() else new)
            position += 1
        else:
            out.append(char)
    return "".join(out)


def freshen(exchanges: Sequence[Exchange], cycle: int) -> tuple[Exchange, ...]:
    """The cycle's requests with fresh ids (see the module docstring)."""
    if cycle == 0:
        return tuple(exchanges)
    mapping: dict[str, str] = {}

    def swap(identifier: str) -> str:
        new = mapping.get(identifier)
        if new is None:
            new = mapping[identifier] = fresh_id(identifier, cycle)
        return new

    out = []
    for exchange in exchanges:
        target = _fresh_target(exchange.target, mapping, swap)
        body = _fresh_body(exchange, mapping, swap)
        if target == exchange.target and body == exchange.body:
            out.append(exchange)
        else:
            out.append(dataclasses.replace(exchange, target=target, body=body))
    return tuple(out)


def _fresh_target(target: str, mapping: dict[str, str], swap: Any) -> str:
    """Id-like path segments (and ids before a suffix: ``142.json``); query values that are
    ids seen in this cycle's paths or sit under a key named like an id (``?cart_id=``), never
    other numbers (``?page=2`` stays page 2)."""
    parts = urlsplit(target)
    segments = []
    for segment in parts.path.split("/"):
        stem, dot, suffix = segment.partition(".")
        if segment and is_id_like(segment):
            segments.append(swap(segment))
        elif dot and stem and is_id_like(stem):
            segments.append(f"{swap(stem)}.{suffix}")
        else:
            segments.append(segment)
    path = "/".join(segments)
    if not parts.query:
        return path

    def pair(match: re.Match[str]) -> str:
        sep, key, value = match.groups()
        if value and (value in mapping or (_names_an_id(key) and is_id_like(value))):
            value = swap(value)
        return f"{sep}{key}={value}"

    return path + _QUERY_PAIR.sub(pair, "?" + parts.query)


def _fresh_body(exchange: Exchange, mapping: dict[str, str], swap: Any) -> bytes:
    """JSON bodies: string (and whole-number) values that are ids seen in this cycle's paths,
    or id-like values under keys named like ids (``id``, ``cart_id``, ``orderId``)."""
    if not exchange.body or exchange.body[:1] not in (b"{", b"["):
        return exchange.body
    try:
        value = json.loads(exchange.body)
    except ValueError:
        return exchange.body
    changed = _walk(value, mapping, swap, key="")
    if changed is value:
        return exchange.body
    return json.dumps(changed, separators=(",", ":")).encode()


def _walk(value: Any, mapping: dict[str, str], swap: Any, key: str) -> Any:
    if isinstance(value, dict):
        items = {k: _walk(v, mapping, swap, k) for k, v in value.items()}
        return value if all(items[k] is value[k] for k in value) else items
    if isinstance(value, list):
        listed = [_walk(v, mapping, swap, key) for v in value]
        return value if all(a is b for a, b in zip(listed, value, strict=True)) else listed
    if isinstance(value, str) and (
        value in mapping or (_names_an_id(key) and value and is_id_like(value))
    ):
        return swap(value)
    return value


def _names_an_id(key: str) -> bool:
    lowered = key.lower()
    return lowered == "id" or (lowered.endswith(("_id", "id")) and len(lowered) > 2)
