"""What a middleware captured of one sampled exchange, before it becomes a line of the file.

A ``Capture`` is filled on the request path with as little work as possible (the raw header
pairs are kept as the server gave them; decoding, redaction and JSON happen in the writer
thread). Bodies are kept up to ``max_body`` bytes; their full size is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: Header pairs as a server hands them over: bytes (ASGI) or text (WSGI).
RawHeaders = Sequence[tuple[bytes, bytes]] | Sequence[tuple[str, str]]


@dataclass(slots=True)
class Body:
    """The first ``limit`` bytes of a body that arrives in pieces, and its full ``size``."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    size: int = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = self.limit - len(self.data)
        if room > 0 and chunk:
            self.data += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


#: Characters a recorded path keeps as they are when the middlewares percent-encode it.
PATH_SAFE = "/:@!$&'()*+,;=~"


@dataclass(slots=True)
class Capture:
    """One sampled request and what the app answered, as far as it got.

    ``offset`` is seconds since the recorder started (when the request reached the
    middleware). ``status`` is ``None`` until the app started its response. ``streamed``: the
    response body came in more than one piece, so it is not recorded (the request and the
    response's status and headers are). ``error`` says what went wrong in the app or the
    connection (the exchange is still recorded: it was sent, so it is worth replaying).
    """

    offset: float
    method: str
    target: str
    headers: RawHeaders
    body: Body
    response_body: Body
    status: int | None = None
    response_headers: RawHeaders = ()
    streamed: bool = False
    error: str | None = None
    #: The recorder has it (set once): the request path no longer touches it.
    submitted: bool = False
    #: The body pieces seen so far (a second non-empty piece makes the response a stream).
    pieces: int = 0

    def app_raised(self, exc: BaseException) -> None:
        """The app raised before its response ended: said in the record's ``_error``."""
        self.error = f"the app raised {type(exc).__name__}"

    def response_piece(self, chunk: bytes) -> bool:
        """Count one piece of the response body; True when it makes the response a stream."""
        if not chunk:
            return False
        self.pieces += 1
        if self.pieces == 1:
            self.response_body.add(chunk)
            return False
        self.streamed = True
        self.response_body = Body(0)
        return True
