"""The families a request is classified by within its endpoint, one classifier each.

Every exchange of an endpoint (``DELETE /cart/delete/{id}``) is classified by each family:

==============  =====================================================================
family          values
==============  =====================================================================
``status``      class of the recorded response: ``2xx``, ``3xx``, ``4xx``, ``5xx``, ``none``
``id``          the ids in its path and query: ``known`` to the replayed service (made
                earlier in the recording and not deleted since; read-only ids: answered
                2xx earlier), ``unknown``, ``malformed`` (a shape the endpoint's ids
                do not usually have)
``method``      the HTTP method (one value per endpoint unless endpoints are merged)
``client``      the User-Agent family: ``browser``, ``mobile``, ``bot``, ``cli``,
                ``other``, ``none``
``content``     the request's media type (``application/json``), or ``none``
``query``       one axis per query parameter ``p``: ``p=*`` (carries it, any value) or
                ``p=absent``; and among the requests carrying it, the kind of its value:
                ``p=empty``, ``p=number``, ``p=bool``, ``p=id``, ``p=list`` (repeated or
                comma-separated), ``p=long``, ``p=word``
``body``        the body's shape: ``none``, ``json{keys}``, ``json[list]``, ``form{keys}``,
                ``text``, ``binary``
==============  =====================================================================

A family has one *axis* (``query`` has two per parameter). Classifiers are a registry
(``FAMILIES``); what they read of the recording is ``request_facts.RecordingFacts``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from pytest_soak.traffic.model import Exchange
from pytest_soak.traffic.request_facts import OTHERS, RecordingFacts

#: Families in the order they are described; the search order is ``candidates``'.
FAMILY_NAMES = ("id", "status", "method", "client", "content", "query", "body")

_BOT = re.compile(r"bot\b|crawl|spider|slurp|monitor|uptime|pingdom|headless|lighthouse", re.I)
_CLI = re.compile(
    r"^(curl|wget|httpie|python-requests|python-httpx|python-urllib|aiohttp|go-http-client|"
    r"java/|apache-httpclient|libwww|axios|node-fetch|undici|postmanruntime|insomnia|k6|"
    r"locust|vegeta|hey/|ab/)",
    re.I,
)
_MOBILE = re.compile(r"mobile|android|iphone|ipad|ios\b|cfnetwork|okhttp|dalvik", re.I)
_BROWSER = re.compile(r"^mozilla/|^opera/", re.I)

#: How a variation's label names its family.
FAMILY_LABELS = {
    "status": "recorded status",
    "id": "id",
    "method": "method",
    "client": "client",
    "content": "content type",
    "query": "query",
    "body": "body",
}


#: ``(axis, value, detail)``: ``axis`` is ``""`` for a family's only axis (``query``: one per
#: parameter); ``detail`` is what ``value`` stands for in this exchange (``"404"``), or ``""``.
Classified = tuple[str, str, str]
Classifier = Callable[[int, Exchange, RecordingFacts], "list[Classified]"]


def _status(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    if exchange.response is None:
        return [("", "none", "")]
    status = exchange.response.status
    return [("", f"{status // 100}xx", str(status))]


def _id(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    request = facts.requests[index]
    if not request.ids:
        return []
    usual = facts.usual_shape.get(request.endpoint, "")
    if facts.id_shapes[request.endpoint][usual] > 1 and any(
        shape != usual for shape in request.id_shapes
    ):
        return [("", "malformed", "")]
    state = facts.id_states[index]
    if state is None:
        return []
    status = exchange.response.status if exchange.response is not None else "none"
    return [("", state, str(status))]


def _method(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    return [("", exchange.method, "")]


def _client(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    return [("", _cached_client_family(exchange.header("user-agent")), "")]


def _content(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    value = exchange.header("content-type")
    media = value.split(";", 1)[0].strip().lower() if value else ""
    return [("", media or "none", "")]


def _query(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    request = facts.requests[index]
    axes = facts.query_axes.get(request.endpoint)
    if axes is None:
        return []
    found: list[Classified] = []
    for name in axes.kept:
        kind = request.parameters.get(name)
        if kind is None:
            found.append((name, f"{name}=absent", ""))
        else:
            found.append((name, f"{name}=*", ""))
            found.append((f"{name}=", f"{name}={kind}", ""))
    if axes.lumped:
        carried = ", ".join(sorted(n for n in request.parameters if n in axes.lumped))
        found.append((OTHERS, f"{OTHERS}=*" if carried else f"{OTHERS}=absent", carried))
    return found


def _body(index: int, exchange: Exchange, facts: RecordingFacts) -> list[Classified]:
    return [("", body_shape(exchange), "")]


#: The classifiers, by family name (a registry: add a family by adding an entry).
FAMILIES: Mapping[str, Classifier] = {
    "status": _status,
    "id": _id,
    "method": _method,
    "client": _client,
    "content": _content,
    "query": _query,
    "body": _body,
}


def client_family(user_agent: str | None) -> str:
    """``browser``, ``mobile`` (mobile browsers and native apps), ``bot``, ``cli`` (scripts,
    HTTP libraries and load tools), ``other``, or ``none`` without a User-Agent."""
    if not user_agent:
        return "none"
    if _BOT.search(user_agent):
        return "bot"
    if _CLI.search(user_agent):
        return "cli"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _BROWSER.search(user_agent):
        return "browser"
    return "other"


_cached_client_family = functools.lru_cache(maxsize=4096)(client_family)


def body_shape(exchange: Exchange) -> str:
    """``none``, ``json{a,b}`` (an object's sorted keys), ``json[list]``, ``json(scalar)``,
    ``form{a,b}``, ``text`` or ``binary``."""
    body = exchange.body
    if not body:
        return "none"
    content = (exchange.header("content-type") or "").lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    if "json" in content or text.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except ValueError:
            return "text"
        if isinstance(value, dict):
            return "json{" + ",".join(sorted(str(k) for k in value)) + "}"
        if isinstance(value, list):
            return "json[list]"
        return "json(scalar)"
    if "form-urlencoded" in content:
        return "form{" + ",".join(sorted({k for k, _ in parse_qsl(text)})) + "}"
    return "text"
