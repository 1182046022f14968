from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_soak.errors import SoakError
from pytest_soak.units import format_bytes, format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64B", 64), ("64", 64), ("5MB", 5_000_000), ("1.5MiB", 1.5 * 2**20), ("512 KiB", 512 * 1024),
     ("2gb", 2e9), (128, 128)],
)  # fmt: skip
def test_parse_size(text: str | int, expected: float) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "5XB", "-1MB", "MB", "1.2.3B", True, float("nan"), -3])
def test_parse_size_rejects_with_the_name(bad: object) -> None:
    with pytest.raises(SoakError, match="max_growth="):
        parse_size(bad, name="max_growth")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("2h", 7200),
        (45, 45),
        ("12", 12),
    ],
)
def test_parse_duration(text: str | int, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "10x", "m10", "0s", 0, -1, "1h junk"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(SoakError, match="duration="):
        parse_duration(bad)  # type: ignore[arg-type]


def test_format_bytes_and_duration() -> None:
    assert format_bytes(3_300_000) == "3.1 MiB"
    assert format_bytes(100) == "100 B"
    assert format_bytes(2048, signed=True) == "+2.0 KiB"
    assert format_bytes(-2048) == "-2.0 KiB"
    assert format_duration(5400) == "1h30m"
    assert format_duration(75) == "1m15s"


@given(st.floats(min_value=0, max_value=1e15, allow_nan=False))
def test_formatted_sizes_parse_back_close(value: float) -> None:
    text = format_bytes(value).replace(" ", "")
    assert parse_size(text) == pytest.approx(value, rel=0.06, abs=1)
