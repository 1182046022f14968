"""The data reports as a user meets them: ``--soak-json`` (schema, metadata, rounding),
``--junitxml`` properties, ``--soak-openmetrics``, and secrets kept out of all of them."""

from __future__ import annotations

import pytest

from pytest_soak.traffic.redaction import MASK, is_secret_name, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5xx: GET /boom?token=abc&x=1 -> 500", "5xx: GET /boom?token=***&x=1 -> 500"),
        ("GET /a?api_key=k1&page=2", "GET /a?api_key=***&page=2"),
        ("Cookie: session=s1; theme=dark", "Cookie: ***"),
        ("sessionid=s1; theme=dark", "sessionid=***; theme=dark"),
        ("Authorization: Bearer xyz", "Authorization: ***"),
        ("X-Api-Key: k1", "X-Api-Key: ***"),
        ("POST /login password=hunter2&user=ann", "POST /login password=***&user=ann"),
        ("5xx: GET /item/1?page=2 -> 500", "5xx: GET /item/1?page=2 -> 500"),
        (
            "limit max_growth_per_request=0 B, p=2.8e-06",
            "limit max_growth_per_request=0 B, p=2.8e-06",
        ),
        ("phase: spike, reason: timeout", "phase: spike, reason: timeout"),
    ],
)
def test_redact_text_masks_secret_values_only(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_names_are_the_repro_files_rule() -> None:
    """One rule for every artifact: the reproduction file uses the same names."""
    from pytest_soak.isolation import repro

    assert repro.is_secret_name is is_secret_name
    assert all(is_secret_name(n) for n in ("token", "Password", "client_secret", "apikey", "key"))
    assert not any(is_secret_name(n) for n in ("author", "page", "id", "monkey"))
    assert MASK == "***"
