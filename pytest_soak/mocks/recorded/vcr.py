"""VCR cassettes (``.yaml`` / ``.yml``): vcrpy (``interactions:``, with httpx's legacy
``content``/``status_code`` keys), old vcrpy (a top-level list with ``!!python/...`` tags, read as
plain data, never as objects), Ruby VCR (``http_interactions:``, ``base64_string`` bodies)."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pytest_soak.errors import MockDefinitionError
from pytest_soak.mocks.recorded.grouping import Recording, Skips, read_bytes
from pytest_soak.traffic.fields import is_target, json_kind, split_url

LOOKS_LIKE = "VCR YAML"
SUFFIXES = (".yaml", ".yml")
_STARTS = (b"interactions:", b"http_interactions:", b"---", b"- request:", b"version:")


def sniff(head: bytes) -> bool:
    return head.startswith(_STARTS)


def read(path: Path, shown: str, skips: Skips) -> list[Recording]:
    document = _yaml(read_bytes(path, shown), shown)
    if isinstance(document, dict) and isinstance(document.get("http_interactions"), list):
        items, dialect = document["http_interactions"], "ruby"
    elif isinstance(document, dict) and isinstance(document.get("interactions"), list):
        items, dialect = document["interactions"], "vcrpy"
    elif isinstance(document, list):
        items, dialect = document, "vcrpy-old"
    else:
        raise MockDefinitionError(
            f"{shown}: is not a VCR cassette: expected 'interactions:' (vcrpy), "
            "'http_interactions:' (Ruby VCR) or a list of request/response pairs (old vcrpy)"
        )
    recordings = []
    for index, item in enumerate(items):
        where = f"{shown}: interaction {index}"
        try:
            recordings.append(_interaction(item, dialect))
        except _Bad as exc:
            raise MockDefinitionError(f"{where}: {exc}; fix or delete this interaction") from None
    return recordings


class _Bad(Exception):
    pass


def _interaction(item: object, dialect: str) -> Recording:
    if not isinstance(item, dict):
        raise _Bad(f"is {json_kind(item)}, not a request/response pair")
    request, response = item.get("request"), item.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise _Bad("field request or response is missing or not a mapping")
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise _Bad(f"field request.method {method!r} is not an HTTP method")
    if "uri" in request:
        try:
            _, host, target = split_url(str(request["uri"]))
        except ValueError:
            raise _Bad(f"field request.uri {request['uri']!r} is not an absolute URL") from None
    else:  # old vcrpy: host, port, path, protocol
        host, target = request.get("host"), str(request.get("path") or "/")
        port = request.get("port")
        if isinstance(host, str) and port not in (None, 80, 443):
            host = f"{host}:{port}"
    if not is_target(target):
        raise _Bad(f"field request.uri has the path {target!r}, which is not a request target")
    status = response.get("status")
    code = status.get("code") if isinstance(status, dict) else response.get("status_code", status)
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        raise _Bad(f"field response.status.code {code!r} is not an HTTP status")
    message = status.get("message") if isinstance(status, dict) else ""
    decoded = "content" in response and "body" not in response  # httpx's legacy keys
    body = response["content"] if decoded else response.get("body")
    return Recording(
        method=method.upper(),
        host=host if isinstance(host, str) else None,
        target=target,
        headers=_vcr_headers(request.get("headers"), "request.headers"),
        body=_vcr_body(request.get("body"), "request.body"),
        status=code,
        response_headers=_vcr_headers(response.get("headers"), "response.headers"),
        response_body=_vcr_body(body, "response.body"),
        decoded=decoded,
        reason=message if isinstance(message, str) else "",
    )


def _vcr_headers(value: object, field: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        out = []
        for name, values in value.items():
            for item in values if isinstance(values, list) else [values]:
                out.append((str(name), "" if item is None else str(item)))
        return tuple(out)
    if isinstance(value, list):
        if (
            len(value) == 1
            and isinstance(value[0], list)
            and all(isinstance(p, list) for p in value[0])
        ):
            value = value[0]  # old vcrpy: !!python/object/apply:frozenset [[pairs]]
        out = []
        for item in value:
            if isinstance(item, list) and len(item) == 2:
                out.append((str(item[0]), str(item[1])))
            elif isinstance(item, str) and ":" in item:  # old vcrpy: "name: value\r\n"
                name, _, text = item.partition(":")
                out.append((name.strip(), text.strip()))
            else:
                raise _Bad(f"field {field} has {item!r}, which is not a header")
        return tuple(out)
    raise _Bad(f"field {field} is {json_kind(value)}, not a mapping of headers")


def _vcr_body(value: object, field: str) -> bytes:
    if isinstance(value, dict):
        if "base64_string" in value:  # Ruby VCR
            encoded = value["base64_string"]
            try:
                return base64.b64decode(str(encoded))
            except (binascii.Error, ValueError):
                raise _Bad(f"field {field}.base64_string is not valid base64") from None
        value = value.get("string")
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    raise _Bad(f"field {field} is {json_kind(value)}, not text or !!binary")


def _yaml(data: bytes, shown: str) -> object:
    import yaml

    class Loader(yaml.SafeLoader):
        """Safe loading; the ``!!python/...`` tags of old vcrpy cassettes become plain data
        (never objects: a cassette is input, not code)."""

    def plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", plain)
    try:
        return yaml.load(data, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise MockDefinitionError(
            f"{shown}: is not valid YAML{where} ({exc.problem}); fix the cassette there"
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise MockDefinitionError(f"{shown}: is not valid YAML ({exc})") from None
