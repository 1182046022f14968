"""The parsed-traffic cache: ``.soak-cache/`` beside a recording (docs/traffic-formats.md).

The first ``load_traffic`` of a file of ``MIN_BYTES`` (1 MiB) or more parses it and writes what
parsing gave (the exchanges in order, the skipped entries, the format) to
``.soak-cache/<file name>.<variant>.traffic`` beside it; later loads read that instead. Smaller
files parse in milliseconds and are cached only with ``cache=True``. Like ``.pytest_cache``,
the folder explains itself (``README.md``), is ignored by git (its own ``.gitignore``) and
tagged for backup tools (``CACHEDIR.TAG``); deleting it is always safe.

A cache file is never trusted, only used when everything checks:

* its magic bytes and layout ``VERSION``;
* the recording's content hash (SHA-256 of the file's bytes, compressed or not) and size;
* the *variant*: the ``format=`` asked for and a fingerprint of the parsers (the registered
  formats in order, the source of their modules and of the model, the Python version and byte
  order), so a changed parser, or a format registered before another, never gets an old result;
* the payload's length, the index's CRC-32, then each chunk's CRC-32 and a strict typed
  decoding of it (indices in range, every target a path, as ``Exchange`` checks), one chunk
  in memory at a time.

Anything else (truncated, corrupt, foreign, another version, another recording's) is a miss:
the file is parsed and the cache written again, silently. A failed parse is not cached.

Hashing a 300 MB recording takes a good part of a second, so a small ``.stat`` file beside the
cache remembers the recording's size, mtime, ctime, inode and device with its hash: while they
are all unchanged and the recording was not written within 2 s before its hash was taken (the
"racy git" rule: a rewrite in the same clock tick keeps the mtime), the hash is not taken
again. Any write to the file (or ``touch``) changes its ctime, so it is hashed again.

Writes go through ``files.write_atomic`` (a temp file in the same folder, renamed over the
target), so two pytest-xdist workers loading the same file at once both parse it, both write,
and a reader only ever sees a whole file. A folder that cannot be written (a read-only
checkout, or one without write bits, even for root) means no cache, never an error.
``PYTEST_SOAK_TRAFFIC_CACHE=0`` (or ``load_traffic(..., cache=False)``) turns it off.

The payload is msgpack (msgspec): an index (the ``Traffic``'s other fields, and each chunk's
length, exchange count and CRC-32), then chunks of ``CHUNK`` consecutive exchanges in columns
(``columns.py``), each with its own table of distinct strings and header pairs. A load checks
the whole file and keeps it open: the ``Traffic`` it gives reads its exchanges a chunk at a
time (``stored.py``), so it holds a few bytes per chunk, not the recording, and a soak run holds
the cycle it replays. A first load that writes the cache gives the stored ``Traffic`` too, and
drops the parsed one.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
import sys
import time
import zlib
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import fields
from itertools import accumulate
from pathlib import Path
from typing import Any

import msgspec

from pytest_soak.files import write_atomic
from pytest_soak.traffic import columns
from pytest_soak.traffic.columns import Index
from pytest_soak.traffic.model import Exchange, Skipped, Traffic
from pytest_soak.traffic.stored import Chunks, StoredExchanges

CACHE_DIR = ".soak-cache"
ENV = "PYTEST_SOAK_TRAFFIC_CACHE"
VERSION = 2
MAGIC = b"pytest-soak traffic cache\n"
SUFFIX = ".traffic"
MIN_BYTES = 1 << 20  # smaller files are cached only with cache=True
RACY_NS = 2_000_000_000  # a write this close to the hash may share its mtime
_OFF = frozenset({"0", "false", "no", "off"})
_HASH_BLOCK = 1 << 24
_HEAD_BYTES = 1 << 16  # the magic bytes and the header line fit in this
CHUNK = 256  # exchanges per chunk: a read of one exchange builds this many
_README = """# pytest-soak traffic cache

This folder is created by pytest-soak beside recorded traffic files. It holds each recording
as parsed (`<file name>.<variant>.traffic`), so that loading a big HAR or GoReplay file again
takes about a second instead of many; a cache file is used only when the recording's content
hash, the parsers and the cache's checksum all match, and is rebuilt otherwise.

Do not commit it (its `.gitignore` says so). Deleting it is always safe. To turn the cache
off, set `PYTEST_SOAK_TRAFFIC_CACHE=0` or call `load_traffic(path, cache=False)`.
See docs/traffic-formats.md ("Big recordings and the cache").
"""
_GITIGNORE = "# Created by pytest-soak automatically.\n*\n"
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-soak.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/spec.html\n"
)


class _Header(msgspec.Struct, frozen=True):
    """The JSON line after the magic bytes."""

    version: int
    recording: str  # the recording's file name, for people looking at the folder
    digest: str  # SHA-256 of the recording's bytes
    size: int  # the recording's size in bytes
    variant: str
    payload: int  # bytes after the header line: the index, then the chunks
    index: int  # bytes of the index
    crc32: int  # the index's CRC-32 (it holds each chunk's)


class _Index(msgspec.Struct, array_like=True):
    """What a ``Traffic`` is besides its exchanges, and where its chunks are: the chunks
    follow the index in order, ``lengths[i]`` bytes, ``counts[i]`` exchanges each."""

    format: str
    skipped: list[tuple[str, str]]
    counts: list[Index]
    lengths: list[Index]
    crcs: list[Index]
    extra: dict[str, Any] = {}  # Traffic's other fields (scalars, tuples of scalars)


class _Stat(msgspec.Struct, frozen=True):
    """What the recording's metadata was when its hash was taken."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int
    hashed_ns: int  # time.time_ns() before the hash was taken
    digest: str


_HEADER_DECODER = msgspec.json.Decoder(_Header)
_INDEX_DECODER = msgspec.msgpack.Decoder(_Index)
_CHUNK_DECODER = msgspec.msgpack.Decoder(columns.Chunk)
_STAT_DECODER = msgspec.json.Decoder(_Stat)
_ENCODER = msgspec.msgpack.Encoder()
_fingerprints: dict[tuple[object, ...], str] = {}


def entry(
    recording: Path,
    requested: str | None,
    parsers: Iterable[tuple[str, object]],
    cache: bool | None = None,
) -> Entry | None:
    """The cache entry for ``recording`` loaded with ``format=requested``, or None when the
    cache is off: ``cache=False``; or ``cache=None`` (the default) and either
    ``PYTEST_SOAK_TRAFFIC_CACHE`` is ``0``/``false``/``no``/``off`` or the file is smaller than
    ``MIN_BYTES`` (it parses in milliseconds; caching it would only litter its folder).
    ``cache=True`` caches any file."""
    if cache is False:
        return None
    if cache is None:
        if os.environ.get(ENV, "").strip().lower() in _OFF:
            return None
        try:
            if recording.stat().st_size < MIN_BYTES:
                return None
        except OSError:
            return None  # reading it says what is wrong
    variant = hashlib.sha256(f"{requested!r} {fingerprint(parsers)}".encode()).hexdigest()
    return Entry(recording, variant)


def fingerprint(parsers: Iterable[tuple[str, object]]) -> str:
    """A hash of the registered ``(format name, parse function)`` in order and of the source
    of the modules that define them and the model: a change in any of them is a new variant."""
    parsers = list(parsers)
    key = tuple((name, id(parse)) for name, parse in parsers)
    known = _fingerprints.get(key)
    if known is not None:
        return known
    platform = f"{sys.version_info[:2]} {sys.byteorder} {array(columns.ID_TYPE).itemsize}"
    digest = hashlib.sha256(f"{VERSION} {platform}".encode())
    modules = {Exchange.__module__}
    for name, parse in parsers:
        module = getattr(parse, "__module__", None) or "?"
        digest.update(f"\0{name}\0{module}.{getattr(parse, '__qualname__', '?')}".encode())
        modules.add(module)
    for module in sorted(modules):
        source = getattr(sys.modules.get(module), "__file__", None)
        try:
            digest.update(Path(source).read_bytes() if source else module.encode())
        except OSError:
            digest.update(module.encode())
    _fingerprints[key] = known = digest.hexdigest()
    return known


class Entry:
    """The cache of one recording for one variant. ``load`` first (the cached ``Traffic``, or
    None), then, on a miss, ``save`` with the bytes that were parsed. Neither raises for
    anything about the cache: a folder that cannot be written is no cache."""

    def __init__(self, recording: Path, variant: str) -> None:
        self.recording = recording
        self.variant = variant
        self.folder = recording.parent / CACHE_DIR
        base = f"{recording.name}.{variant[:16]}"
        self.path = self.folder / (base + SUFFIX)
        self.stat_path = self.folder / (base + ".stat")
        self._stat: os.stat_result | None = None  # the recording's, before it was read
        self._stat_ns = 0

    def load(self, shown: str) -> Traffic | None:
        """The cached ``Traffic`` (with ``path=shown``), or None on any miss."""
        try:
            self._stat_ns = time.time_ns()
            self._stat = stat = self.recording.stat()
            if not self.path.is_file():
                return None
            digest = self._known_digest(stat)
            remember = digest is None
            if digest is None:
                digest = _file_digest(self.recording)
        except OSError:
            return None
        traffic = _open(self.path, digest, stat.st_size, self.variant, shown)
        if traffic is not None and remember:
            self._remember(stat, self._stat_ns, digest)
        return traffic

    def save(self, data: bytes, traffic: Traffic) -> Traffic | None:
        """Write ``traffic``, parsed from ``data`` (the recording's bytes, read after
        ``load``), to the cache; give it back as stored (its exchanges read from the cache
        file, ``stored.py``), or None when it could not be written."""
        try:
            self._ensure_folder()
            digest = hashlib.sha256(data).hexdigest()
            blob = encode(traffic, self.recording.name, digest, len(data), self.variant)
        except (OSError, TypeError):  # TypeError: a Traffic field the cache cannot keep
            return None
        try:
            write_atomic(self.path, blob)
            if self._stat is not None and self._stat.st_size == len(data):
                self._remember(self._stat, self._stat_ns, digest)
            self._remove_other_variants()
        except OSError:
            return None
        del blob
        return _open(self.path, digest, len(data), self.variant, traffic.path)

    def _known_digest(self, stat: os.stat_result) -> str | None:
        """The digest remembered for this very file, unless it may have changed since."""
        try:
            with open(self.stat_path, "rb") as file:
                known = _STAT_DECODER.decode(file.read())
        except (OSError, msgspec.DecodeError):
            return None
        same = (known.size, known.mtime_ns, known.ctime_ns, known.inode, known.device) == (
            stat.st_size,
            stat.st_mtime_ns,
            stat.st_ctime_ns,
            stat.st_ino,
            stat.st_dev,
        )
        racy = max(stat.st_mtime_ns, stat.st_ctime_ns) >= known.hashed_ns - RACY_NS
        return known.digest if same and not racy else None

    def _remember(self, stat: os.stat_result, stat_ns: int, digest: str) -> None:
        """Write the ``.stat`` file: ``digest`` is the hash of the file as ``stat`` (taken at
        ``stat_ns``, before the bytes were read) described it."""
        record = _Stat(
            stat.st_size,
            stat.st_mtime_ns,
            stat.st_ctime_ns,
            stat.st_ino,
            stat.st_dev,
            stat_ns,
            digest,
        )
        with suppress(OSError):
            self._ensure_folder()
            write_atomic(self.stat_path, msgspec.json.encode(record))

    def _ensure_folder(self) -> None:
        """Make the cache folder if need be; refuse (``PermissionError``) where the folder
        holding it has no write bit at all: a folder made read-only stays untouched, even by
        root (who may write anywhere)."""
        parent = self.folder if self.folder.is_dir() else self.folder.parent
        if not parent.stat().st_mode & 0o222:
            raise PermissionError(13, "read-only folder", str(parent))
        if parent == self.folder:
            return
        self.folder.mkdir(exist_ok=True)
        for name, text in (
            ("README.md", _README),
            (".gitignore", _GITIGNORE),
            ("CACHEDIR.TAG", _CACHEDIR_TAG),
        ):
            write_atomic(self.folder / name, text)

    def _remove_other_variants(self) -> None:
        """Other variants of this recording (another pytest-soak, another ``format=``)."""
        prefix = f"{self.recording.name}."
        keep = {self.path.name, self.stat_path.name}
        for other in self.folder.iterdir():
            name = other.name
            if name.startswith(prefix) and name not in keep and _is_entry(name[len(prefix) :]):
                with suppress(OSError):
                    other.unlink()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _is_entry(rest: str) -> bool:
    """``rest`` is ``<16 hex digits>.traffic`` or ``.stat`` (not another recording's name)."""
    variant, dot, suffix = rest.partition(".")
    hexdigits = set("0123456789abcdef")
    return (
        len(variant) == 16 and set(variant) <= hexdigits and f"{dot}{suffix}" in (SUFFIX, ".stat")
    )


def encode(traffic: Traffic, recording: str, digest: str, size: int, variant: str) -> bytes:
    """The cache file for ``traffic`` parsed from a recording of ``size`` bytes."""
    exchanges = traffic.exchanges
    starts = range(0, len(exchanges), CHUNK)
    chunks = [_ENCODER.encode(columns.chunk_of(exchanges[at : at + CHUNK])) for at in starts]
    index = _ENCODER.encode(
        _Index(
            format=traffic.format,
            skipped=[(skip.source, skip.reason) for skip in traffic.skipped],
            counts=[min(CHUNK, len(exchanges) - at) for at in starts],
            lengths=[len(chunk) for chunk in chunks],
            crcs=[zlib.crc32(chunk) for chunk in chunks],
            extra=_extra_fields(traffic),
        )
    )
    payload = len(index) + sum(map(len, chunks))
    header = _Header(
        VERSION, recording, digest, size, variant, payload, len(index), zlib.crc32(index)
    )
    return b"".join([MAGIC, msgspec.json.encode(header), b"\n", index, *chunks])


def _open(path: Path, digest: str, size: int, variant: str, shown: str) -> Traffic | None:
    """The ``Traffic`` stored in the cache file at ``path``, or None unless every check
    passes; the file stays open while the traffic's exchanges are alive (``stored.py``)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        traffic = _checked(fd, str(path), digest, size, variant, shown)
    except (OSError, ValueError, TypeError, msgspec.DecodeError):  # TypeError: a foreign field
        traffic = None
    if traffic is None:
        os.close(fd)
    return traffic


def _checked(
    fd: int, path: str, digest: str, size: int, variant: str, shown: str
) -> Traffic | None:
    """Check the whole cache file open at ``fd`` (header, index, then each chunk's CRC-32 and
    columns, one chunk in memory at a time) and give its ``Traffic``, or None."""
    head = os.pread(fd, _HEAD_BYTES, 0)
    newline = head.find(b"\n", len(MAGIC))
    if not head.startswith(MAGIC) or newline < 0:
        return None
    header = _HEADER_DECODER.decode(head[len(MAGIC) : newline])
    start = newline + 1
    if (
        header.version != VERSION
        or header.digest != digest
        or header.size != size
        or header.variant != variant
        or header.payload != os.fstat(fd).st_size - start
    ):
        return None
    blob = os.pread(fd, header.index, start)
    if len(blob) != header.index or zlib.crc32(blob) != header.crc32:
        return None
    index = _INDEX_DECODER.decode(blob)
    if not len(index.counts) == len(index.lengths) == len(index.crcs):
        return None
    if header.index + sum(index.lengths) != header.payload:
        return None
    positions = list(accumulate(index.lengths[:-1], initial=start + header.index))
    for position, length, crc, count in zip(
        positions, index.lengths, index.crcs, index.counts, strict=True
    ):
        data = os.pread(fd, length, position)
        if len(data) != length or zlib.crc32(data) != crc:
            return None
        if columns.checked(_CHUNK_DECODER.decode(data)) != count:
            return None
    skipped = tuple(Skipped(source, reason) for source, reason in index.skipped)
    extra = {name: tuple(v) if isinstance(v, list) else v for name, v in index.extra.items()}
    traffic = Traffic((), path=shown, format=index.format, skipped=skipped, **extra)
    # last: from here the descriptor is closed with the chunks, not by the caller
    chunks = Chunks(fd, path, positions, index.lengths, index.crcs, index.counts)
    return dataclasses.replace(traffic, exchanges=StoredExchanges(chunks))


_BUILT = frozenset({"exchanges", "path", "format", "skipped"})
_SCALARS = (str, int, float, bool, type(None))


def _extra_fields(traffic: Traffic) -> dict[str, Any]:
    """``Traffic``'s fields besides those ``_checked`` makes, when they are scalars or tuples of
    scalars (msgpack gives tuples back as lists); anything else is not cached (TypeError)."""
    extra = {f.name: getattr(traffic, f.name) for f in fields(Traffic) if f.name not in _BUILT}
    for name, value in extra.items():
        items = value if isinstance(value, tuple) else (value,)
        if not all(isinstance(item, _SCALARS) for item in items):
            raise TypeError(f"Traffic.{name}={value!r} cannot be cached; teach cache.py about it")
    return extra


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while hundreds of thousands of acyclic objects are made (each
    collection would walk all of them again), and none just after: what was made goes to the
    oldest generation without being walked (``gc.freeze()`` then ``gc.unfreeze()``): a parsed
    recording either lives on or, once the cache stores it, is freed by reference counting,
    which needs no collection; otherwise the first allocation after
    ``gc.enable()`` would start a young-generation pass over a million objects (0.3 s for
    200,000 exchanges). Other young objects of that moment are promoted too (the next full
    collection sees them). Skipped when something else has frozen objects, which ``unfreeze``
    would release. The previous state is restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()
