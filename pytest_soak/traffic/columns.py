"""Exchanges in columns: the compact form the traffic cache keeps a recording in, a *chunk* of
consecutive exchanges at a time (``traffic/cache.py``, ``traffic/stored.py``).

A ``Chunk`` holds its exchanges column by column, its strings and header pairs by index into
tables of the distinct ones, so equal strings and equal header pairs of a chunk are one object
again once built. ``checked`` makes every check ``Exchange`` and the indices need on the
decoded columns alone (cheap: no exchange is made), so a cache can be validated whole without
building it; ``build`` then makes the exchanges with ``map`` over the columns (the loop stays in
C but for the constructors themselves, ``model.trusted_exchange``: the targets were checked).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice, repeat
from typing import Annotated

import msgspec

from pytest_soak.traffic.model import (
    Exchange,
    Headers,
    RecordedResponse,
    trusted_exchange,
    trusted_response,
)

Index = Annotated[int, msgspec.Meta(ge=0)]
# array type of the packed pair indices: 32 bits or more, native order (the cache's variant
# names the platform)
ID_TYPE = "I" if array("I").itemsize >= 4 else "L"


class Chunk(msgspec.Struct, array_like=True, gc=False):
    """Consecutive exchanges in columns."""

    strings: list[str]
    pair_names: list[Index]  # the header pairs: name and value, as indices into strings
    pair_values: list[Index]
    offsets: list[float]
    methods: list[Index]
    targets: list[str]
    header_counts: list[Index]  # headers per exchange
    header_ids: bytes  # their pairs, in order, as native unsigned 32-bit indices
    bodies: list[bytes]
    statuses: list[int]  # -1: no recorded response
    response_header_counts: list[Index]
    response_header_ids: bytes
    response_bodies: list[bytes]
    hosts: list[Annotated[int, msgspec.Meta(ge=-1)]]  # -1: no host
    sources: list[str]


def chunk_of(exchanges: Sequence[Exchange]) -> Chunk:
    """The columns of ``exchanges``."""
    strings: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    text = strings.setdefault
    pair = pairs.setdefault
    responses = [exchange.response for exchange in exchanges]
    chunk = Chunk(
        strings=[],
        pair_names=[],
        pair_values=[],
        offsets=[exchange.offset for exchange in exchanges],
        methods=[text(exchange.method, len(strings)) for exchange in exchanges],
        targets=[exchange.target for exchange in exchanges],
        header_counts=[len(exchange.headers) for exchange in exchanges],
        header_ids=_packed(pair(p, len(pairs)) for e in exchanges for p in e.headers),
        bodies=[exchange.body for exchange in exchanges],
        statuses=[-1 if r is None else r.status for r in responses],
        response_header_counts=[0 if r is None else len(r.headers) for r in responses],
        response_header_ids=_packed(
            pair(p, len(pairs)) for r in responses if r is not None for p in r.headers
        ),
        response_bodies=[b"" if r is None else r.body for r in responses],
        hosts=[-1 if e.host is None else text(e.host, len(strings)) for e in exchanges],
        sources=[exchange.source for exchange in exchanges],
    )
    chunk.pair_names = [text(name, len(strings)) for name, _ in pairs]
    chunk.pair_values = [text(value, len(strings)) for _, value in pairs]
    chunk.strings = list(strings)
    return chunk


def checked(chunk: Chunk) -> int:
    """The number of exchanges in ``chunk`` once every column agrees, every index is in range
    and every target is a path (``Exchange``'s own check); ``ValueError`` otherwise."""
    count = len(chunk.offsets)
    columns = (
        chunk.methods,
        chunk.targets,
        chunk.header_counts,
        chunk.bodies,
        chunk.statuses,
        chunk.response_header_counts,
        chunk.response_bodies,
        chunk.hosts,
        chunk.sources,
    )
    if any(len(column) != count for column in columns):
        raise ValueError("columns of different lengths")
    if len(chunk.pair_names) != len(chunk.pair_values):
        raise ValueError("pair columns of different lengths")
    strings = len(chunk.strings)
    for column in (chunk.pair_names, chunk.pair_values, chunk.methods, chunk.hosts):
        if column and max(column) >= strings:
            raise ValueError("a string index out of range")
    for counts, ids in (
        (chunk.header_counts, chunk.header_ids),
        (chunk.response_header_counts, chunk.response_header_ids),
    ):
        indices = _ids(ids)
        if sum(counts) != len(indices):
            raise ValueError("header counts do not add up")
        if indices and max(indices) >= len(chunk.pair_names):
            raise ValueError("a header pair index out of range")
    if not all(map(str.startswith, chunk.targets, repeat("/"))):
        raise ValueError("a target that is not a path")
    return count


def build(chunk: Chunk) -> tuple[Exchange, ...]:
    """The exchanges of a ``checked`` chunk, in order."""
    strings = chunk.strings
    string = strings.__getitem__
    pairs = list(zip(map(string, chunk.pair_names), map(string, chunk.pair_values), strict=True))
    responses: list[RecordedResponse | None] = list(
        map(
            trusted_response,
            chunk.statuses,
            _headers(pairs, chunk.response_header_counts, chunk.response_header_ids),
            chunk.response_bodies,
        )
    )
    for index in [i for i, status in enumerate(chunk.statuses) if status < 0]:
        responses[index] = None
    return tuple(
        map(
            trusted_exchange,
            chunk.offsets,
            map(string, chunk.methods),
            chunk.targets,
            _headers(pairs, chunk.header_counts, chunk.header_ids),
            chunk.bodies,
            responses,
            map([*strings, None].__getitem__, chunk.hosts),
            chunk.sources,
        )
    )


def _packed(ids: Iterable[int]) -> bytes:
    return array(ID_TYPE, ids).tobytes()


def _ids(packed: bytes) -> array[int]:
    """The packed indices (``ValueError`` for a length that is not a whole number of them)."""
    indices = array(ID_TYPE)
    indices.frombytes(packed)
    return indices


def _headers(pairs: list[tuple[str, str]], counts: list[int], ids: bytes) -> Iterator[Headers]:
    """The header tuples, ``counts[i]`` pairs each, from the packed pair indices (``map``
    and ``islice`` over one iterator: the loop stays in C)."""
    shared = map(pairs.__getitem__, _ids(ids))
    return map(tuple, map(islice, repeat(shared), counts))
