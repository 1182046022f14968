"""``redact_exchange``: recorded exchanges with their secrets masked, by the default rule and by
a ``Redaction``'s extra names (the recorder, ``pytest-soak redact`` and the repro file use it)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_soak.traffic.model import Exchange, RecordedResponse
from pytest_soak.traffic.redaction import REDACTED, Redaction, redact_body, redact_exchange


def _exchange(**changes: object) -> Exchange:
    fields: dict[str, object] = {
        "offset": 0.0,
        "method": "POST",
        "target": "/login?next=%2Fcart&api_key=k-9",
        "headers": (
            ("Authorization", "Bearer s3cret"),
            ("Cookie", "theme=dark; sessionid=abc; cart=7"),
            ("X-Tenant", "acme"),
            ("Content-Type", "application/json"),
        ),
        "body": json.dumps({"user": "ann", "password": "hunter2", "card": "4111"}).encode(),
        "response": RecordedResponse(
            200,
            (("Set-Cookie", "sessionid=new; Path=/; HttpOnly"), ("Content-Type", "text/json")),
            json.dumps({"token": "t-1", "id": 5}).encode(),
        ),
    }
    fields.update(changes)
    return Exchange(**fields)  # type: ignore[arg-type]


def test_the_defaults_mask_auth_cookies_tokens_and_secret_fields_in_request_and_response() -> None:
    clean = redact_exchange(_exchange())
    headers = dict(clean.headers)
    assert headers["Authorization"] == headers["Cookie"] == REDACTED
    assert headers["X-Tenant"] == "acme"
    assert clean.target == "/login?next=%2Fcart&api_key=REDACTED"
    assert json.loads(clean.body) == {"user": "ann", "password": REDACTED, "card": "4111"}
    assert clean.response is not None
    assert dict(clean.response.headers)["Set-Cookie"] == REDACTED
    assert json.loads(clean.response.body) == {"token": REDACTED, "id": 5}


def test_extra_names_mask_more_and_a_kept_cookie_header_masks_its_secret_cookies() -> None:
    redaction = Redaction.of(
        headers=["X-Tenant"], fields=["card"], query=["next"], cookies=["cart"],
        keep_headers=["cookie", "set-cookie"],
    )  # fmt: skip
    clean = redact_exchange(_exchange(), redaction)
    headers = dict(clean.headers)
    assert headers["X-Tenant"] == REDACTED and headers["Authorization"] == REDACTED
    assert headers["Cookie"] == f"theme=dark; sessionid={REDACTED}; cart={REDACTED}"
    assert clean.target == f"/login?next={REDACTED}&api_key={REDACTED}"
    assert json.loads(clean.body)["card"] == REDACTED
    assert clean.response is not None
    assert dict(clean.response.headers)["Set-Cookie"] == f"sessionid={REDACTED}; Path=/; HttpOnly"


def test_nothing_secret_leaves_the_exchange_as_recorded() -> None:
    plain = _exchange(
        target="/search?q=a+b&page=2",
        headers=(("Accept", "*/*"),),
        body=b'{"q": "mug"}',
        response=RecordedResponse(200, (), b"<html>"),
    )
    assert redact_exchange(plain) == plain  # the query's spelling (a+b) kept too


def test_response_false_keeps_the_status_only() -> None:
    assert redact_exchange(_exchange(), response=False).response == RecordedResponse(200)


def test_form_bodies_and_non_json_bodies() -> None:
    form = "user=ann&password=hunter2"
    cleaned = redact_body(form.encode(), "application/x-www-form-urlencoded")
    assert cleaned == f"user=ann&password={REDACTED}".encode()
    assert redact_body(b"\xff\xfe binary", "application/octet-stream") == b"\xff\xfe binary"
    assert redact_body(b"[" * 100_000, "application/json") == b"[" * 100_000  # too deep: as is


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=4, max_size=12),
    name=st.sampled_from(["token", "api_key", "password", "sessionid", "client_secret"]),
)
def test_a_secret_value_never_survives_under_a_secret_name(secret: str, name: str) -> None:
    secret = f"S3cR{secret}"  # nothing else in the exchange spells it
    exchange = _exchange(
        target=f"/x?{name}={secret}",
        headers=(("Cookie", f"{name}={secret}"), ("Content-Type", "application/json")),
        body=json.dumps({"deep": [{name: secret}]}).encode(),
        response=RecordedResponse(200, (("Set-Cookie", f"{name}={secret}"),), b""),
    )
    clean = redact_exchange(exchange, Redaction.of(keep_headers=["cookie", "set-cookie"]))
    assert secret not in repr(clean)


def test_a_target_that_starts_with_two_slashes_keeps_its_path() -> None:
    """``//prod/x`` is a path on the soak target (model.py): only the query value changes."""
    clean = redact_exchange(_exchange(target="//prod/x?token=t-1&page=2"))
    assert clean.target == f"//prod/x?token={REDACTED}&page=2"
