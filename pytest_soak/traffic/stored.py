"""A recording's exchanges read from its cache file a chunk at a time, so that what a soak run
holds is its cycle, not the whole recording (issue 14).

``StoredExchanges`` is the ``Sequence[Exchange]`` of a ``Traffic`` loaded from the cache
(``traffic/cache.py``). It keeps the cache file open and, for each chunk of consecutive
exchanges (``traffic/columns.py``), where the chunk lies, how many exchanges it holds and its
CRC-32: a few bytes per chunk instead of about a kilobyte per exchange. An exchange asked for
is built with its chunk; the last ``KEPT_CHUNKS`` chunks built are kept, so reading in order, or
near the last read, builds each chunk once. Iterating builds one chunk after the other.
``CycleChoice.exchanges`` holds the cycle a run replays, so a 200,000-exchange recording whose
cycle is 3,000 requests keeps about 3,000 exchanges alive, not 200,000.

The cache was checked whole when it was opened (each chunk's CRC-32 and columns); a chunk
read again is checked against its CRC-32 only: bytes that match it are the bytes whose columns
were checked. The open descriptor keeps the file that was checked: a cache rebuilt meanwhile
replaces the file by a rename, which the descriptor does not follow. It is closed when the last
sequence over it is dropped. Built exchanges are new objects on each
build of their chunk (equal, not identical, to those of an earlier build).
"""

from __future__ import annotations

import bisect
import operator
import os
import weakref
import zlib
from collections.abc import Iterator, Sequence
from typing import overload

import msgspec

from pytest_soak.errors import TrafficFormatError
from pytest_soak.traffic import columns
from pytest_soak.traffic.model import Exchange

#: Chunks kept built per stored recording (the most recently used ones).
KEPT_CHUNKS = 4

_DECODER = msgspec.msgpack.Decoder(columns.Chunk)


class Chunks:
    """An open cache file's chunks: where each lies, its size in exchanges and its CRC-32."""

    def __init__(
        self,
        fd: int,
        path: str,
        positions: Sequence[int],
        lengths: Sequence[int],
        crcs: Sequence[int],
        counts: Sequence[int],
    ) -> None:
        self.path = path
        self._fd = fd
        self._places = list(zip(positions, lengths, crcs, strict=True))
        self.firsts = [0]  # the position of each chunk's first exchange, and the total last
        for count in counts:
            self.firsts.append(self.firsts[-1] + count)
        self._kept: dict[int, tuple[Exchange, ...]] = {}
        weakref.finalize(self, os.close, fd)

    def __len__(self) -> int:
        return self.firsts[-1]

    def chunk_of(self, index: int) -> int:
        """The chunk holding exchange ``index`` (0 <= index < len(self))."""
        return bisect.bisect_right(self.firsts, index) - 1

    def built(self, number: int) -> tuple[Exchange, ...]:
        """The exchanges of chunk ``number``, built or kept."""
        kept = self._kept.pop(number, None)
        if kept is None:
            kept = self._build(number)
            if len(self._kept) >= KEPT_CHUNKS:
                del self._kept[next(iter(self._kept))]
        self._kept[number] = kept  # the most recently used last
        return kept

    def _build(self, number: int) -> tuple[Exchange, ...]:
        position, length, crc = self._places[number]
        try:
            data = os.pread(self._fd, length, position)
            if len(data) != length or zlib.crc32(data) != crc:
                raise ValueError(f"chunk {number} does not match its CRC-32")
            chunk = _DECODER.decode(data)  # the bytes whose columns were checked at the load
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise TrafficFormatError(
                f"{self.path}: the traffic cache changed after it was checked ({exc}); delete "
                "the .soak-cache folder beside the recording and load it again"
            ) from exc
        return columns.build(chunk)


class StoredExchanges(Sequence[Exchange]):
    """Exchanges ``start`` to ``stop`` of a cached recording, built from their chunks when
    read (see the module docstring). Equal to any sequence of equal exchanges."""

    __slots__ = ("_chunks", "_start", "_stop")

    def __init__(self, chunks: Chunks, start: int = 0, stop: int | None = None) -> None:
        self._chunks = chunks
        self._start = start
        self._stop = len(chunks) if stop is None else stop

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> Exchange: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Exchange]: ...
    def __getitem__(self, index: int | slice) -> Exchange | Sequence[Exchange]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return tuple(self[i] for i in range(start, stop, step))
            stop = max(start, stop)
            return StoredExchanges(self._chunks, self._start + start, self._start + stop)
        size = len(self)
        position = index + size if index < 0 else index
        if not 0 <= position < size:
            raise IndexError(f"exchange {index} of {size}")
        at = self._start + position
        number = self._chunks.chunk_of(at)
        return self._chunks.built(number)[at - self._chunks.firsts[number]]

    def __iter__(self) -> Iterator[Exchange]:
        if self._start >= self._stop:
            return
        chunks = self._chunks
        first, last = chunks.chunk_of(self._start), chunks.chunk_of(self._stop - 1)
        for number in range(first, last + 1):
            base = chunks.firsts[number]
            built = chunks.built(number)
            yield from built[max(self._start - base, 0) : self._stop - base]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(map(operator.eq, self, other))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<StoredExchanges {len(self):,} from {self._chunks.path}>"

    def __reduce__(self) -> tuple[type[tuple[Exchange, ...]], tuple[tuple[Exchange, ...]]]:
        """Pickled as the tuple of its exchanges (the open file stays in this process)."""
        return tuple, (tuple(self),)
