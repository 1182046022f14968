"""Which names hold secrets, and free text with their values masked.

One rule for every artifact: the reproduction file (``isolation.repro`` rewrites exchanges with
it) and the reports (error samples, the JSON, OpenMetrics and the terminal show text in which a
request's target or headers may appear: ``5xx: GET /boom?token=abc -> 500``).
"""

from __future__ import annotations

import re

#: Headers whose value is always a secret, whatever part of their name matches.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_NAME = re.compile(
    r"token|secret|passw|api[-_]?key|apikey|auth(?!or)|session|cookie|credential|signature|^sig$|"
    r"^key$|private",
    re.I,
)
#: What a secret value becomes in the reports (``token=***``).
MASK = "***"

# ``name=value`` as in a query string, a form body or a Cookie header: the value runs to the
# next separator, quote or space.
_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z0-9_.\-\[\]]+)=(?P<value>[^&;\s#\"',]*)")
# ``Name: value`` as a header line (Authorization, Cookie, an ``X-…`` header with a secret name:
# not any word before a colon in prose): the value runs to the end of the line.
_HEADER = re.compile(r"(?P<name>[A-Za-z0-9_\-]+):[ \t]*(?P<value>[^\r\n]*)")


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
