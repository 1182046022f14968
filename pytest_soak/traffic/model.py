"""The immutable model of recorded traffic: ``Exchange`` (one request, maybe its response) and
``Traffic`` (an ordered, validated sequence of them, with where it came from)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload
from urllib.parse import urlsplit

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """What the service answered when the traffic was recorded."""

    status: int
    headers: Headers = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded request (and its recorded response when the format has it).

    ``offset`` is seconds since the first exchange of the recording (non-decreasing along a
    ``Traffic``); ``target`` is path plus query (``/cart?id=1``); ``headers`` keep their recorded
    order and case, without HTTP/2 pseudo-headers; ``source`` says where it came from in the file
    (``"entry 41"``, ``"line 12"``, ``"payload 3"``) so messages can point at it.
    """

    offset: float
    method: str
    target: str
    headers: Headers = ()
    body: bytes = b""
    response: RecordedResponse | None = None
    host: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        # The host always comes from the soak target: a recorded value must never be able to
        # send a request anywhere else. Clients also prepend the target's base URL, so even
        # "//prod/x" stays a path on the target.
        if not self.target.startswith("/"):
            from pytest_soak.errors import TrafficFormatError

            where = f"{self.source}: " if self.source else ""
            raise TrafficFormatError(
                f"{where}target={self.target!r} must be a path starting with '/' "
                "(e.g. '/cart?id=1'); the host comes from the soak target, never the recording"
            )

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    @property
    def endpoint(self) -> str:
        """``METHOD /templated/path``, e.g. ``DELETE /cart/delete/{id}``."""
        from pytest_soak.traffic.endpoints import template_path

        return f"{self.method} {template_path(self.path)}"

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def _slot_setters(cls: type, names: tuple[str, ...]) -> list[Callable[[object, object], None]]:
    """The slot setters of a frozen dataclass, in ``names`` order (which must be its fields)."""
    if tuple(field.name for field in dataclasses.fields(cls)) != names:
        raise TypeError(f"{cls.__name__} has other fields than {names}: update model.py")
    return [vars(cls)[name].__set__ for name in names]


_EXCHANGE = _slot_setters(
    Exchange, ("offset", "method", "target", "headers", "body", "response", "host", "source")
)
_RESPONSE = _slot_setters(RecordedResponse, ("status", "headers", "body"))


def trusted_exchange(
    offset: float,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    response: RecordedResponse | None,
    host: str | None,
    source: str,
) -> Exchange:
    """``Exchange(...)`` at half the cost, for a reader that checked ``target`` starts with
    ``/`` already (``__post_init__``'s one check, which this skips): the frozen dataclass's
    ``__init__`` sets each slot through ``object.__setattr__``, this sets them directly. Big
    recordings spend a good part of their loading making exchanges."""
    exchange: Exchange = object.__new__(Exchange)
    _EXCHANGE[0](exchange, offset)
    _EXCHANGE[1](exchange, method)
    _EXCHANGE[2](exchange, target)
    _EXCHANGE[3](exchange, headers)
    _EXCHANGE[4](exchange, body)
    _EXCHANGE[5](exchange, response)
    _EXCHANGE[6](exchange, host)
    _EXCHANGE[7](exchange, source)
    return exchange


def trusted_response(status: int, headers: Headers, body: bytes) -> RecordedResponse:
    """``RecordedResponse(...)`` the same way (it has no checks to skip)."""
    response: RecordedResponse = object.__new__(RecordedResponse)
    _RESPONSE[0](response, status)
    _RESPONSE[1](response, headers)
    _RESPONSE[2](response, body)
    return response


class Shared:
    """Equal strings and header pairs shared among the exchanges of one load.

    A recording repeats a few thousand header names and values (``Accept``, user agents, the
    cookies of a session, methods, hosts) hundreds of thousands of times, and a decoder hands
    out a new copy of each. The JSONL, HAR and GoReplay parsers build exchanges through one
    ``Shared`` (a chunk of the cache shares its pairs through its own table of them), so equal
    ``(name, value)`` pairs are one tuple and equal names one string; it is dropped with the
    parser, unlike ``sys.intern``'s table. Only a pair it has not seen before needs checking:
    ``pairs.get`` gives ``None`` for one, and the parser checks it before ``add``.
    """

    __slots__ = ("names", "pairs", "strings")

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.names: dict[str, str] = {}  # header names, checked by the parser that added them
        self.pairs: dict[tuple[str, str], tuple[str, str]] = {}

    def text(self, value: str) -> str:
        """The shared copy of ``value``."""
        return self.strings.setdefault(value, value)

    def add(self, name: str, value: str) -> tuple[str, str]:
        """Share a header pair seen for the first time (after the caller checked it)."""
        pair = (self.names.setdefault(name, name), value)
        self.pairs[pair] = pair
        return pair

    def headers(self, pairs: Iterable[tuple[str, str]]) -> Headers:
        """Already checked ``pairs`` as a header tuple of shared pairs."""
        get, add = self.pairs.get, self.add
        return tuple([get(pair) or add(*pair) for pair in pairs])


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry of the file that was deliberately not loaded, and why (reported, never silent)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Traffic(Sequence[Exchange]):
    """An immutable, ordered sequence of recorded exchanges loaded from ``path``.

    ``missing`` names what the recording's format does not hold, so replays go without it
    (an access log: ``("request bodies", …)``); empty when it holds whole exchanges.
    """

    exchanges: Sequence[Exchange]  # a tuple, or read from the cache (``stored.py``)
    path: str = "<memory>"
    format: str = "memory"
    skipped: tuple[Skipped, ...] = ()
    missing: tuple[str, ...] = ()

    @overload
    def __getitem__(self, index: int) -> Exchange: ...
    @overload
    def __getitem__(self, index: slice) -> Traffic: ...
    def __getitem__(self, index: int | slice) -> Exchange | Traffic:
        if isinstance(index, slice):
            return self._derive(self.exchanges[index])
        return self.exchanges[index]

    def __len__(self) -> int:
        return len(self.exchanges)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)

    def __repr__(self) -> str:
        return f"<Traffic {self.path!r} format={self.format} exchanges={len(self)}>"

    @property
    def span(self) -> float:
        """Seconds from the first to the last recorded request."""
        if not self.exchanges:
            return 0.0
        return self.exchanges[-1].offset - self.exchanges[0].offset

    def endpoints(self) -> dict[str, int]:
        """Request count per endpoint (``METHOD /templated/path``), most frequent first."""
        counts = Counter(exchange.endpoint for exchange in self.exchanges)
        return dict(counts.most_common())

    def where(self, predicate: Callable[[Exchange], bool]) -> Traffic:
        """A new ``Traffic`` with the exchanges for which ``predicate`` is true."""
        return self._derive(tuple(e for e in self.exchanges if predicate(e)))

    def filter(
        self,
        *,
        include: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        methods: str | Iterable[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Traffic:
        """Keep exchanges by endpoint template, method and header values.

        ``include``/``exclude`` take paths or templates (``/cart/delete/{id}``), optionally
        prefixed with a method (``"DELETE /cart/delete/{id}"``); ``*`` in a segment matches any
        segment and a trailing ``/**`` any rest of the path.
        """
        from pytest_soak.traffic.endpoints import EndpointPattern

        def as_list(value: str | Iterable[str] | None) -> list[str]:
            if value is None:
                return []
            if isinstance(value, str):
                return [value]
            return list(value)

        included = [EndpointPattern.parse(p) for p in as_list(include)]
        excluded = [EndpointPattern.parse(p) for p in as_list(exclude)]
        wanted_methods = {m.upper() for m in as_list(methods)}
        wanted_headers = {k.lower(): v for k, v in (headers or {}).items()}

        def keep(exchange: Exchange) -> bool:
            if wanted_methods and exchange.method not in wanted_methods:
                return False
            if included and not any(p.matches(exchange.method, exchange.path) for p in included):
                return False
            if any(p.matches(exchange.method, exchange.path) for p in excluded):
                return False
            return all(exchange.header(k) == v for k, v in wanted_headers.items())

        return self.where(keep)

    def _derive(self, exchanges: Sequence[Exchange]) -> Traffic:
        return dataclasses.replace(self, exchanges=exchanges)
