"""Which names hold secrets; free text and recorded exchanges with their values masked.

One rule for every artifact: recordings (``pytest_soak.record`` and ``pytest-soak redact`` /
``convert --redact`` rewrite exchanges with ``redact_exchange``), the reproduction file of
isolation, and the reports (error samples, the JSON, OpenMetrics and the terminal show text in
which a request's target or headers may appear: ``5xx: GET /boom?token=abc -> 500``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pytest_soak.traffic.model import Exchange, Headers, RecordedResponse

#: Headers whose value is always a secret, whatever part of their name matches.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_NAME = re.compile(
    r"token|secret|passw|api[-_]?key|apikey|auth(?!or)|session|cookie|credential|signature|^sig$|"
    r"^key$|private",
    re.I,
)
#: What a secret value becomes in the reports (``token=***``).
MASK = "***"
#: What a secret value becomes in a recording (a value that still parses as one).
REDACTED = "REDACTED"

# ``name=value`` as in a query string, a form body or a Cookie header: the value runs to the
# next separator, quote or space.
_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z0-9_.\-\[\]]+)=(?P<value>[^&;\s#\"',]*)")
# ``Name: value`` as a header line (Authorization, Cookie, an ``X-…`` header with a secret name:
# not any word before a colon in prose): the value runs to the end of the line.
_HEADER = re.compile(r"(?P<name>[A-Za-z0-9_\-]+):[ \t]*(?P<value>[^\r\n]*)")


@functools.lru_cache(maxsize=4096)  # names repeat (headers, fields); bounded against odd traffic
def is_secret_name(name: str) -> bool:
    """A header, query parameter, cookie or field name whose value is a secret (token,
    password, secret, api key, auth, session, key, …)."""
    return name.lower() in SECRET_HEADERS or _SECRET_NAME.search(name) is not None


def redact_text(text: str, mask: str = MASK) -> str:
    """``text`` with the value of every secret ``name=value`` (query, form, cookie) and secret
    ``Header: value`` replaced by ``mask``; anything else unchanged."""
    if "=" not in text and ":" not in text:
        return text

    def assignment(match: re.Match[str]) -> str:
        name, value = match["name"], match["value"]
        if not value or not is_secret_name(name):
            return match[0]
        return f"{name}={mask}"

    def header(match: re.Match[str]) -> str:
        name, value = match["name"], match["value"]
        lowered = name.lower()
        secret = lowered in SECRET_HEADERS or (lowered.startswith("x-") and is_secret_name(name))
        if not value.strip() or not secret:
            return match[0]
        return f"{name}: {mask}"

    text = _ASSIGNMENT.sub(assignment, text)
    return _HEADER.sub(header, text) if ":" in text else text


@dataclass(frozen=True)
class Redaction:
    """What ``redact_exchange`` masks besides the names ``is_secret_name`` calls secret.

    ``headers``, ``cookies``, ``query`` and ``fields`` (JSON or form body fields) add names,
    compared without case. Authorization, Proxy-Authorization, Cookie and Set-Cookie are masked
    whole; ``keep_headers`` keeps such a header, and then only its secret cookies (by name, and
    ``cookies``) are masked.
    """

    headers: frozenset[str] = frozenset()
    cookies: frozenset[str] = frozenset()
    query: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    keep_headers: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        *,
        headers: Iterable[str] = (),
        cookies: Iterable[str] = (),
        query: Iterable[str] = (),
        fields: Iterable[str] = (),
        keep_headers: Iterable[str] = (),
    ) -> Redaction:
        """A ``Redaction`` from any iterables of names (lower-cased)."""

        def names(values: Iterable[str]) -> frozenset[str]:
            return frozenset(v.strip().lower() for v in values if v.strip())

        return cls(names(headers), names(cookies), names(query), names(fields), names(keep_headers))

    def secret_header(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in self.keep_headers:
            return False
        return lowered in self.headers or is_secret_name(name)

    def secret_cookie(self, name: str) -> bool:
        return name.lower() in self.cookies or is_secret_name(name)

    def secret_param(self, name: str) -> bool:
        return name.lower() in self.query or is_secret_name(name)

    def secret_field(self, name: str) -> bool:
        return name.lower() in self.fields or is_secret_name(name)


#: The safe defaults: every name ``is_secret_name`` calls secret, nothing more.
DEFAULT_REDACTION = Redaction()


def redact_exchange(
    exchange: Exchange, redaction: Redaction = DEFAULT_REDACTION, *, response: bool = True
) -> Exchange:
    """``exchange`` without secrets: secret headers, cookies, query values and JSON or form
    body fields become ``REDACTED`` (in the request and, with ``response``, in the recorded
    response: its Set-Cookie and body fields). ``response=False`` keeps the recorded response's
    status only."""
    target = exchange.target
    path, mark, query = target.partition("?")
    if query:
        cleaned = _redact_form(query, redaction.secret_param)
        if cleaned is not query:  # something secret; else the recorded spelling stays
            target = f"{path}{mark}{cleaned}"
    recorded = exchange.response
    kept: RecordedResponse | None = None
    if recorded is not None:
        kept = (
            RecordedResponse(
                recorded.status,
                _redact_headers(recorded.headers, redaction),
                redact_body(recorded.body, _content_type(recorded.headers), redaction),
            )
            if response
            else RecordedResponse(recorded.status)
        )
    headers = _redact_headers(exchange.headers, redaction)
    body = redact_body(exchange.body, exchange.header("content-type") or "", redaction)
    if (target, headers, body, kept) == (
        exchange.target,
        exchange.headers,
        exchange.body,
        exchange.response,
    ):
        return exchange  # nothing secret: the same exchange (a recorder's common case)
    return dataclasses.replace(exchange, target=target, headers=headers, body=body, response=kept)


def redact_body(body: bytes, content_type: str, redaction: Redaction = DEFAULT_REDACTION) -> bytes:
    """A form or JSON body with its secret fields ``REDACTED``; any other body unchanged."""
    if not body:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    if "form-urlencoded" in content_type.lower():
        cleaned = _redact_form(text, redaction.secret_field)
        return cleaned.encode() if cleaned != text else body
    if not text.lstrip().startswith(("{", "[")):
        return body
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return body
    cleaned_value, changed = _redact_json(value, redaction)
    return json.dumps(cleaned_value).encode() if changed else body


def _content_type(headers: Headers) -> str:
    return next((v for k, v in headers if k.lower() == "content-type"), "")


def _redact_headers(headers: Headers, redaction: Redaction) -> Headers:
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.lower()
        if redaction.secret_header(name):
            out.append((name, REDACTED))
        elif lowered == "cookie":
            out.append((name, _redact_cookies(value, redaction)))
        elif lowered == "set-cookie":
            cookie, sep, attributes = value.partition(";")
            out.append((name, _redact_cookies(cookie, redaction) + sep + attributes))
        else:
            out.append((name, value))
    return tuple(out)


def _redact_cookies(value: str, redaction: Redaction) -> str:
    parts = []
    for part in value.split(";"):
        name, sep, _ = part.partition("=")
        secret = sep and redaction.secret_cookie(name.strip())
        parts.append(f"{name}={REDACTED}" if secret else part)
    return ";".join(parts)


def _redact_form(text: str, secret: Callable[[str], bool]) -> str:
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(secret(k) for k, _ in pairs):
        return text
    return urlencode([(k, REDACTED if secret(k) else v) for k, v in pairs])


def _redact_json(value: Any, redaction: Redaction) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            if redaction.secret_field(str(key)) and not isinstance(item, (dict, list)):
                out[key], changed = REDACTED, True
            else:
                out[key], sub = _redact_json(item, redaction)
                changed = changed or sub
        return out, changed
    if isinstance(value, list):
        items = [_redact_json(item, redaction) for item in value]
        return [i for i, _ in items], any(c for _, c in items)
    return value, False
