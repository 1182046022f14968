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
* the payload's length and CRC-32, then a strict typed decoding of it (indices in range, every
  target a path, as ``Exchange`` checks).

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

The payload is msgpack (msgspec) in columns, with a table of the distinct strings and header
pairs, so a loaded recording shares equal pairs as a parsed one does; it is built with ``map``
over the columns, so a 200,000-exchange recording loads in about a second.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import fields
from itertools import islice, repeat
from pathlib import Path
from typing import Annotated, Any

import msgspec

from pytest_soak.files import write_atomic
from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse, Skipped, Traffic

CACHE_DIR = ".soak-cache"
ENV = "PYTEST_SOAK_TRAFFIC_CACHE"
VERSION = 1
MAGIC = b"pytest-soak traffic cache\n"
SUFFIX = ".traffic"
MIN_BYTES = 1 << 20  # smaller files are cached only with cache=True
RACY_NS = 2_000_000_000  # a write this close to the hash may share its mtime
_OFF = frozenset({"0", "false", "no", "off"})
_HASH_BLOCK = 1 << 24
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

Index = Annotated[int, msgspec.Meta(ge=0)]
# array type of the packed pair indices: 32 bits or more, native order (the variant names it)
_ID = "I" if array("I").itemsize >= 4 else "L"


class _Header(msgspec.Struct, frozen=True):
    """The JSON line after the magic bytes."""

    version: int
    recording: str  # the recording's file name, for people looking at the folder
    digest: str  # SHA-256 of the recording's bytes
    size: int  # the recording's size in bytes
    variant: str
    payload: int  # bytes of the payload after the header line
    crc32: int


class _Payload(msgspec.Struct, array_like=True, gc=False):
    """A ``Traffic`` in columns, its strings and header pairs by index into tables of unique
    ones: once loaded, equal strings and equal header pairs are one object again."""

    format: str
    skipped: list[tuple[str, str]]
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
_PAYLOAD_DECODER = msgspec.msgpack.Decoder(_Payload)
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
    platform = f"{sys.version_info[:2]} {sys.byteorder} {array(_ID).itemsize}"
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
            digest = self._known_digest(stat)
            with open(self.path, "rb") as file:
                blob = file.read()
            remember = digest is None
            if digest is None:
                digest = _file_digest(self.recording)
        except OSError:
            return None
        traffic = _decode(blob, digest, stat.st_size, self.variant, shown)
        if traffic is not None and remember:
            self._remember(stat, self._stat_ns, digest)
        return traffic

    def save(self, data: bytes, traffic: Traffic) -> None:
        """Write ``traffic``, parsed from ``data`` (the recording's bytes, read after
        ``load``), to the cache."""
        try:
            self._ensure_folder()
            digest = hashlib.sha256(data).hexdigest()
            blob = encode(traffic, self.recording.name, digest, len(data), self.variant)
        except (OSError, TypeError):  # TypeError: a Traffic field the cache cannot keep
            return
        try:
            write_atomic(self.path, blob)
            if self._stat is not None and self._stat.st_size == len(data):
                self._remember(self._stat, self._stat_ns, digest)
            self._remove_other_variants()
        except OSError:
            return

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
    strings: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    text = strings.setdefault
    pair = pairs.setdefault
    exchanges = traffic.exchanges
    responses = [exchange.response for exchange in exchanges]
    payload = _Payload(
        format=traffic.format,
        skipped=[(skip.source, skip.reason) for skip in traffic.skipped],
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
    payload.pair_names = [text(name, len(strings)) for name, _ in pairs]
    payload.pair_values = [text(value, len(strings)) for _, value in pairs]
    payload.strings = list(strings)
    payload.extra = _extra_fields(traffic)
    body = _ENCODER.encode(payload)
    header = _Header(VERSION, recording, digest, size, variant, len(body), zlib.crc32(body))
    return MAGIC + msgspec.json.encode(header) + b"\n" + body


def _decode(blob: bytes, digest: str, size: int, variant: str, shown: str) -> Traffic | None:
    """The ``Traffic`` in a cache file, or None unless every check passes."""
    if not blob.startswith(MAGIC):
        return None
    newline = blob.find(b"\n", len(MAGIC))
    try:
        header = _HEADER_DECODER.decode(blob[len(MAGIC) : newline])
    except msgspec.DecodeError:
        return None
    start = newline + 1
    if (
        newline < 0
        or header.version != VERSION
        or header.digest != digest
        or header.size != size
        or header.variant != variant
        or header.payload != len(blob) - start
        or header.crc32 != zlib.crc32(memoryview(blob)[start:])
    ):
        return None
    try:
        with gc_paused():
            payload = _PAYLOAD_DECODER.decode(memoryview(blob)[start:])
            del blob
            return _build(payload, shown)
    except Exception:  # a checksummed file that still does not decode or build: rebuild it
        return None


def _setters(cls: type, names: tuple[str, ...]) -> list[Callable[[object, object], None]]:
    """The slot setters of a frozen dataclass, in ``names`` order (which must be its fields)."""
    if tuple(field.name for field in fields(cls)) != names:
        raise TypeError(f"{cls.__name__} has fields {fields(cls)}, not {names}: update the cache")
    return [vars(cls)[name].__set__ for name in names]


_E = _setters(
    Exchange, ("offset", "method", "target", "headers", "body", "response", "host", "source")
)
_R = _setters(RecordedResponse, ("status", "headers", "body"))


def _exchange(
    offset: float,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    response: RecordedResponse | None,
    host: str | None,
    source: str,
) -> Exchange:
    """``Exchange(...)`` at half the cost: the frozen dataclass's ``__init__`` sets each slot
    through ``object.__setattr__``; its ``__post_init__`` check is made on all targets at once
    (``_build``). A cached load of 200,000 exchanges spends most of its time making these."""
    exchange: Exchange = object.__new__(Exchange)
    _E[0](exchange, offset)
    _E[1](exchange, method)
    _E[2](exchange, target)
    _E[3](exchange, headers)
    _E[4](exchange, body)
    _E[5](exchange, response)
    _E[6](exchange, host)
    _E[7](exchange, source)
    return exchange


def _response(status: int, headers: Headers, body: bytes) -> RecordedResponse:
    response: RecordedResponse = object.__new__(RecordedResponse)
    _R[0](response, status)
    _R[1](response, headers)
    _R[2](response, body)
    return response


_BUILT = frozenset({"exchanges", "path", "format", "skipped"})
_SCALARS = (str, int, float, bool, type(None))


def _extra_fields(traffic: Traffic) -> dict[str, Any]:
    """``Traffic``'s fields besides those ``_build`` makes, when they are scalars or tuples of
    scalars (msgpack gives tuples back as lists); anything else is not cached (TypeError)."""
    extra = {f.name: getattr(traffic, f.name) for f in fields(Traffic) if f.name not in _BUILT}
    for name, value in extra.items():
        items = value if isinstance(value, tuple) else (value,)
        if not all(isinstance(item, _SCALARS) for item in items):
            raise TypeError(f"Traffic.{name}={value!r} cannot be cached; teach cache.py about it")
    return extra


def _packed(ids: Iterable[int]) -> bytes:
    return array(_ID, ids).tobytes()


def _headers(pairs: list[tuple[str, str]], counts: list[int], ids: bytes) -> Iterator[Headers]:
    """The header tuples, ``counts[i]`` pairs each, from the packed pair indices (``map``
    and ``islice`` over one iterator: the loop stays in C)."""
    indices = array(_ID)
    indices.frombytes(ids)
    if sum(counts) != len(indices):
        raise ValueError("header counts do not add up")
    shared = map(pairs.__getitem__, indices)
    return map(tuple, map(islice, repeat(shared), counts))


def _build(payload: _Payload, shown: str) -> Traffic:
    """The ``Traffic`` of a decoded payload, built column by column (``map`` over the
    columns keeps the loop in C but for the constructors themselves)."""
    count = len(payload.offsets)
    columns = (
        payload.methods,
        payload.targets,
        payload.header_counts,
        payload.bodies,
        payload.statuses,
        payload.response_header_counts,
        payload.response_bodies,
        payload.hosts,
        payload.sources,
    )
    if any(len(column) != count for column in columns):
        raise ValueError("columns of different lengths")
    strings = payload.strings
    string = strings.__getitem__
    names, values = payload.pair_names, payload.pair_values
    pairs = list(zip(map(string, names), map(string, values), strict=True))
    if not all(map(str.startswith, payload.targets, repeat("/"))):
        raise ValueError("a target that is not a path")  # Exchange.__post_init__'s check
    responses: list[RecordedResponse | None] = list(
        map(
            _response,
            payload.statuses,
            _headers(pairs, payload.response_header_counts, payload.response_header_ids),
            payload.response_bodies,
        )
    )
    for index in [i for i, status in enumerate(payload.statuses) if status < 0]:
        responses[index] = None
    exchanges = tuple(
        map(
            _exchange,
            payload.offsets,
            map(string, payload.methods),
            payload.targets,
            _headers(pairs, payload.header_counts, payload.header_ids),
            payload.bodies,
            responses,
            map([*strings, None].__getitem__, payload.hosts),
            payload.sources,
        )
    )
    skipped = tuple(Skipped(source, reason) for source, reason in payload.skipped)
    extra = {name: tuple(v) if isinstance(v, list) else v for name, v in payload.extra.items()}
    return Traffic(exchanges, path=shown, format=payload.format, skipped=skipped, **extra)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while hundreds of thousands of acyclic objects are made (each
    collection would walk all of them again), and none just after: what was made goes to the
    oldest generation without being walked (``gc.freeze()`` then ``gc.unfreeze()``), since a
    recording lives as long as the session anyway; otherwise the first allocation after
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
