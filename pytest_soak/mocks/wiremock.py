"""WireMock stub mappings as users already write them, loaded into ``Stub`` s.

Accepted: one mapping per file (``{"request": ..., "response": ...}``), several in one file
(``{"mappings": [...]}``), a folder with ``mappings/`` (read recursively, in name order) and
``__files/`` (``bodyFileName`` is relative to it), a ``mappings/`` folder itself (its sibling
``__files/``), or a list of mapping dicts written inline in a test.

Every field WireMock defines that pytest-soak does not implement is reported by name: an error
by default (a mock that silently answers differently from its definition misleads a soak test),
or, with ``strict=False``, left out and listed in ``MockDefinitions.ignored``. Fields WireMock does
not define at all are errors either way (usually a typo).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks.definitions import (
    DEFAULT_PRIORITY,
    FAULTS,
    MATCHERS,
    URL_KINDS,
    Delay,
    MockDefinitions,
    RequestPattern,
    Response,
    Stub,
    UrlPattern,
    ValuePattern,
)
from pytest_soak.traffic.fields import json_kind

#: Top-level mapping fields: what we use, what is only metadata, what we do not implement.
_MAPPING_USED = {
    "request",
    "response",
    "priority",
    "scenarioName",
    "requiredScenarioState",
    "newScenarioState",
}
_MAPPING_METADATA = {"id", "uuid", "name", "metadata", "persistent", "insertionIndex"}
_MAPPING_UNSUPPORTED = {"postServeActions", "serveEventListeners", "webhooks"}
_REQUEST_USED = {
    "method",
    "url",
    "urlPath",
    "urlPattern",
    "urlPathPattern",
    "queryParameters",
    "headers",
    "bodyPatterns",
    "host",
}
_REQUEST_UNSUPPORTED = {
    "urlPathTemplate",
    "pathParameters",
    "cookies",
    "basicAuthCredentials",
    "formParameters",
    "multipartPatterns",
    "customMatcher",
    "port",
    "scheme",
    "clientIp",
}
_RESPONSE_USED = {
    "status",
    "statusMessage",
    "body",
    "jsonBody",
    "base64Body",
    "bodyFileName",
    "headers",
    "fixedDelayMilliseconds",
    "delayDistribution",
    "fault",
}
_RESPONSE_UNSUPPORTED = {
    "transformers",
    "transformerParameters",
    "proxyBaseUrl",
    "proxyUrlPrefixToRemove",
    "additionalProxyRequestHeaders",
    "removeProxyRequestHeaders",
    "chunkedDribbleDelay",
    "fromConfiguredStub",
}
_MATCHER_OPTIONS = {"caseInsensitive", "ignoreArrayOrder", "ignoreExtraElements"}
_KNOWN_UNSUPPORTED_MATCHERS = {
    "matchesJsonPath",
    "matchesJsonSchema",
    "equalToXml",
    "matchesXPath",
    "before",
    "after",
    "equalToDateTime",
    "and",
    "or",
    "not",
    "hasExactly",
    "includes",
}
_METHODS = re.compile(r"[A-Za-z]+")

LOOKS_LIKE = "WireMock JSON mappings"
FOLDER_LOOKS_LIKE = "WireMock mappings (mappings/*.json or *.json)"
SUFFIXES = (".json",)
#: A mapping file starts with one of its fields (or ``mappings``, the admin API's export).
_START = re.compile(
    rb'\{\s*"(%s)"\s*:'
    % "|".join(
        sorted(_MAPPING_USED | _MAPPING_METADATA | _MAPPING_UNSUPPORTED | {"mappings", "meta"})
    ).encode()
)


def sniff(head: bytes) -> bool:
    return _START.match(head) is not None


def sniff_folder(path: Path) -> bool:
    return (path / "mappings").is_dir() or path.name == "mappings" or any(path.glob("*.json"))


class _Problem(Exception):
    """What is wrong with one field: the message starts with the field's path."""


def load_wiremock(path: Path, *, strict: bool = True, shown: str | None = None) -> MockDefinitions:
    """Load a mapping file or a folder of them (see the module doc)."""
    shown = shown or str(path)
    if path.is_dir():
        mappings_dir, files_dir = _layout(path)
        files = sorted(p for p in mappings_dir.rglob("*.json") if p.is_file())
        if not files:
            raise MockDefinitionError(
                f"{shown}: no mapping files (*.json) in {mappings_dir}; put WireMock mappings "
                "in a mappings/ folder (bodies in __files/) or pass one mapping file"
            )
    else:
        mappings_dir, files_dir = path.parent, path.parent.parent / "__files"
        if not files_dir.is_dir():
            files_dir = path.parent / "__files"
        files = [path]
    stubs: list[Stub] = []
    ignored: list[str] = []
    for file in files:
        label = _label(file, path, shown)
        items = _mapping_items(_read_json(file, label), label)
        name = file.relative_to(mappings_dir).as_posix()
        new, skipped = parse_mappings(
            items, source=label, files_dir=files_dir, strict=strict, name=name
        )
        stubs.extend(new)
        ignored.extend(skipped)
    return MockDefinitions(tuple(stubs), source=shown, format="wiremock", ignored=tuple(ignored))


def parse_mappings(
    items: Sequence[object],
    *,
    source: str,
    files_dir: Path | None,
    strict: bool = True,
    name: str | None = None,
) -> tuple[list[Stub], list[str]]:
    """Stubs from decoded mapping objects; ``source`` names them in messages, ``name`` (default
    ``source``) in reports: ``name#index``, or the mapping's own ``name``."""
    stubs: list[Stub] = []
    ignored: list[str] = []
    single = len(items) == 1
    for index, item in enumerate(items):
        where = f"{source}: mapping {index}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            where += f" ({item['name']!r})"
        try:
            stub, skipped = _stub(item, index, name or source, single, files_dir, strict)
        except _Problem as problem:
            raise MockDefinitionError(f"{where}: {problem}") from None
        stubs.append(stub)
        ignored.extend(f"{where}: {field} is not supported; ignored" for field in skipped)
    return stubs, ignored


def _layout(folder: Path) -> tuple[Path, Path]:
    """``(mappings folder, __files folder)`` for a folder the user passed."""
    if (folder / "mappings").is_dir():
        return folder / "mappings", folder / "__files"
    if folder.name == "mappings":
        return folder, folder.parent / "__files"
    return folder, folder / "__files"


def _label(file: Path, root: Path, shown: str) -> str:
    if file == root:
        return shown
    try:
        return str(Path(shown) / file.relative_to(root))
    except ValueError:
        return str(file)


def _read_json(file: Path, label: str) -> object:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MockDefinitionError(
            f"{label}: is not UTF-8 (byte {exc.start}); save the mapping file as UTF-8"
        ) from None
    except OSError as exc:
        raise MockDefinitionError(
            f"{label}: could not be read ({exc.strerror or exc}); check the path"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MockDefinitionError(
            f"{label}: is not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "fix the JSON there (a mapping file is one JSON object)"
        ) from None
    except RecursionError:
        raise MockDefinitionError(f"{label}: JSON is nested too deeply to be a mapping") from None


def _mapping_items(root: object, label: str) -> list[object]:
    if isinstance(root, dict) and "mappings" in root:
        mappings = root["mappings"]
        if not isinstance(mappings, list):
            raise MockDefinitionError(
                f"{label}: field mappings is {json_kind(mappings)}, not a list; write "
                '{"mappings": [{...}, {...}]}'
            )
        return mappings
    if isinstance(root, dict):
        return [root]
    raise MockDefinitionError(
        f"{label}: is {json_kind(root)}, not a WireMock mapping; a mapping file is "
        '{"request": {...}, "response": {...}} or {"mappings": [...]}'
    )


def _stub(
    item: object, index: int, source: str, single: bool, files_dir: Path | None, strict: bool
) -> tuple[Stub, list[str]]:
    mapping = _object(item, "the mapping")
    skipped: list[str] = []
    _check_fields(
        mapping, "", _MAPPING_USED | _MAPPING_METADATA, _MAPPING_UNSUPPORTED, strict, skipped
    )
    if "request" not in mapping:
        raise _Problem("field request is missing; every mapping needs a request pattern")
    request = _request(_object(mapping["request"], "request"), strict, skipped)
    if "response" not in mapping:
        raise _Problem('field response is missing; add e.g. "response": {"status": 200}')
    response = _response(_object(mapping["response"], "response"), files_dir, strict, skipped)
    priority = mapping.get("priority", DEFAULT_PRIORITY)
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
        raise _Problem(f"priority {priority!r} must be a whole number >= 1 (1 is the highest)")
    scenario = _optional_str(mapping, "scenarioName")
    required = _optional_str(mapping, "requiredScenarioState")
    new_state = _optional_str(mapping, "newScenarioState")
    if (required or new_state) and not scenario:
        raise _Problem(
            'requiredScenarioState/newScenarioState need a scenarioName; add "scenarioName"'
        )
    name = mapping.get("name")
    if not isinstance(name, str) or not name:
        name = source if single else f"{source}#{index}"
    return (
        Stub(
            name=name,
            request=request,
            responses=(response,),
            priority=priority,
            scenario=scenario,
            required_state=required,
            new_state=new_state,
        ),
        skipped,
    )


def _check_fields(
    obj: dict[str, object],
    prefix: str,
    known: set[str],
    unsupported: set[str],
    strict: bool,
    skipped: list[str],
) -> None:
    for key in obj:
        field = f"{prefix}{key}"
        if key in known:
            continue
        if key in unsupported:
            if strict:
                raise _Problem(
                    f"field {field} is not supported by pytest-soak's mocks; remove it, or load "
                    "with strict=False to ignore it (it is then listed as ignored)"
                )
            skipped.append(f"field {field}")
            continue
        raise _Problem(
            f"field {field} is not a WireMock field; check its spelling (accepted here: "
            f"{', '.join(sorted(known))})"
        )


def _request(obj: dict[str, object], strict: bool, skipped: list[str]) -> RequestPattern:
    _check_fields(obj, "request.", _REQUEST_USED, _REQUEST_UNSUPPORTED, strict, skipped)
    method = obj.get("method", "ANY")
    if not isinstance(method, str) or not _METHODS.fullmatch(method):
        raise _Problem(f"request.method {method!r} is not an HTTP method (or ANY)")
    url_fields = [k for k in URL_KINDS if k in obj]
    if len(url_fields) > 1:
        raise _Problem(f"request has {' and '.join(url_fields)}; use only one of them")
    url = UrlPattern()
    if url_fields:
        kind = url_fields[0]
        value = obj[kind]
        if not isinstance(value, str):
            raise _Problem(f"request.{kind} is {json_kind(value)}, not a string")
        if kind in ("urlPattern", "urlPathPattern"):
            _compile(value, f"request.{kind}")
        url = UrlPattern(kind, value)
    host = obj.get("host")
    if host is not None:
        host = _matcher_value(host, "request.host")
    return RequestPattern(
        method=None if method.upper() == "ANY" else method.upper(),
        url=url,
        query=_named_patterns(obj.get("queryParameters", {}), "request.queryParameters"),
        headers=_named_patterns(obj.get("headers", {}), "request.headers"),
        body=tuple(
            _pattern(p, f"request.bodyPatterns[{i}]")
            for i, p in enumerate(_list(obj.get("bodyPatterns", []), "request.bodyPatterns"))
        ),
        host=host.lower() if isinstance(host, str) else None,
    )


def _matcher_value(value: object, field: str) -> str:
    """``host`` may be a plain string or ``{"equalTo": "x"}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"equalTo"} and isinstance(value["equalTo"], str):
        return value["equalTo"]
    raise _Problem(f'{field} must be a string or {{"equalTo": "..."}}, got {json_kind(value)}')


def _named_patterns(value: object, field: str) -> tuple[tuple[str, ValuePattern], ...]:
    obj = _object(value, field)
    return tuple((name, _pattern(p, f"{field}.{name}")) for name, p in obj.items())


def _pattern(value: object, field: str) -> ValuePattern:
    obj = _object(value, field)
    kinds = [k for k in obj if k not in _MATCHER_OPTIONS]
    unknown = [k for k in kinds if k not in MATCHERS]
    if unknown:
        what = (
            "is a WireMock matcher pytest-soak does not implement"
            if unknown[0] in _KNOWN_UNSUPPORTED_MATCHERS
            else "is not a WireMock matcher"
        )
        raise _Problem(f"{field}: matcher {unknown[0]!r} {what}; use one of {', '.join(MATCHERS)}")
    if len(kinds) != 1:
        raise _Problem(
            f"{field} needs exactly one matcher (one of {', '.join(MATCHERS)}), "
            f"got {kinds or 'none'}"
        )
    kind = kinds[0]
    raw = obj[kind]
    if kind == "absent":
        if not isinstance(raw, bool):
            raise _Problem(f"{field}.absent must be true or false")
    elif kind == "equalToJson":
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _Problem(
                    f"{field}.equalToJson is a string but not JSON ({exc.msg})"
                ) from None
    elif kind == "binaryEqualTo":
        if not isinstance(raw, str):
            raise _Problem(f"{field}.binaryEqualTo must be base64 text")
        _b64(raw, f"{field}.binaryEqualTo")
    elif not isinstance(raw, str):
        raise _Problem(f"{field}.{kind} is {json_kind(raw)}, not a string")
    elif kind in ("matches", "doesNotMatch"):
        _compile(raw, f"{field}.{kind}")
    flags = {}
    for option in _MATCHER_OPTIONS & set(obj):
        if not isinstance(obj[option], bool):
            raise _Problem(f"{field}.{option} must be true or false")
        flags[option] = bool(obj[option])
    return ValuePattern(
        kind,
        raw,
        case_insensitive=flags.get("caseInsensitive", False),
        ignore_array_order=flags.get("ignoreArrayOrder", False),
        ignore_extra_elements=flags.get("ignoreExtraElements", False),
    )


def _response(
    obj: dict[str, object], files_dir: Path | None, strict: bool, skipped: list[str]
) -> Response:
    _check_fields(obj, "response.", _RESPONSE_USED, _RESPONSE_UNSUPPORTED, strict, skipped)
    status = obj.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _Problem(f"response.status {status!r} is not an HTTP status (100-599)")
    bodies = [k for k in ("body", "jsonBody", "base64Body", "bodyFileName") if k in obj]
    if len(bodies) > 1:
        raise _Problem(f"response has {' and '.join(bodies)}; give the body only one way")
    body = b""
    if bodies:
        body = _body(bodies[0], obj[bodies[0]], files_dir)
    fault = obj.get("fault")
    if fault is not None and fault not in FAULTS:
        raise _Problem(
            f"response.fault {fault!r} is not a WireMock fault; use one of {', '.join(FAULTS)}"
        )
    reason = obj.get("statusMessage", "")
    if not isinstance(reason, str):
        raise _Problem("response.statusMessage must be a string")
    return Response(
        status=status,
        headers=_headers(obj.get("headers", {})),
        body=body,
        reason=reason,
        delays=_delays(obj),
        fault=FAULTS[fault] if isinstance(fault, str) else None,
    )


def _body(kind: str, value: object, files_dir: Path | None) -> bytes:
    field = f"response.{kind}"
    if kind == "jsonBody":
        return json.dumps(value).encode()
    if not isinstance(value, str):
        raise _Problem(f"{field} is {json_kind(value)}, not a string")
    if kind == "body":
        return value.encode("utf-8", "surrogatepass")
    if kind == "base64Body":
        return _b64(value, field)
    if files_dir is None:
        raise _Problem(f"{field} {value!r} needs a __files folder; load the mapping from a file")
    if "\0" in value or Path(value).is_absolute() or ".." in Path(value).parts:
        raise _Problem(f"{field} {value!r} is not a file name inside the __files folder")
    file = files_dir / value
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise _Problem(
            f"{field} {value!r} does not exist (looked for {file}); put the body file in "
            f"{files_dir} or fix the name"
        ) from None
    except OSError as exc:
        raise _Problem(f"{field} {value!r} could not be read ({exc.strerror or exc})") from None


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    obj = _object(value, "response.headers")
    headers: list[tuple[str, str]] = []
    for name, raw in obj.items():
        values = raw if isinstance(raw, list) else [raw]
        for item in values:
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                raise _Problem(f"response.headers.{name} is {json_kind(item)}, not a string")
            text = str(item)
            if any(c in text for c in "\r\n\0"):
                raise _Problem(f"response.headers.{name} contains a line break")
            headers.append((name, text))
    return tuple(headers)


def _delays(obj: dict[str, object]) -> tuple[Delay, ...]:
    delays: list[Delay] = []
    fixed = obj.get("fixedDelayMilliseconds")
    if fixed is not None:
        delays.append(Delay("fixed", _ms(fixed, "response.fixedDelayMilliseconds")))
    dist = obj.get("delayDistribution")
    if dist is not None:
        spec = _object(dist, "response.delayDistribution")
        kind = spec.get("type")
        field = "response.delayDistribution"
        if kind == "lognormal":
            delays.append(
                Delay("lognormal", _ms(spec.get("median"), f"{field}.median"),
                      _ms(spec.get("sigma"), f"{field}.sigma"))
            )  # fmt: skip
        elif kind == "uniform":
            lower = _ms(spec.get("lower"), f"{field}.lower")
            upper = _ms(spec.get("upper"), f"{field}.upper")
            if upper < lower:
                raise _Problem(f"{field}: upper {upper:g} is below lower {lower:g}")
            delays.append(Delay("uniform", lower, upper))
        elif kind == "fixed":
            delays.append(Delay("fixed", _ms(spec.get("milliseconds"), f"{field}.milliseconds")))
        else:
            raise _Problem(
                f"{field}.type {kind!r} is not supported; use lognormal (median, sigma), "
                "uniform (lower, upper) or fixed (milliseconds)"
            )
    return tuple(delays)


def _ms(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise _Problem(f"{field} {value!r} must be a number >= 0")
    if value > 600_000:
        raise _Problem(f"{field} {value!r} ms is over 10 minutes; is the unit right?")
    return float(value)


def _compile(pattern: str, field: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _Problem(f"{field} {pattern!r} is not a valid regular expression ({exc})") from None


def _b64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Problem(f"{field} is not valid base64") from None


def _optional_str(obj: dict[str, object], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Problem(f"{key} is {json_kind(value)}, not a string")
    return value


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Problem(f"{field} is {json_kind(value)}, not an object")
    return value


def _list(value: object, field: str) -> list[object]:
    if not isinstance(value, list):
        raise _Problem(f"{field} is {json_kind(value)}, not a list")
    return value
