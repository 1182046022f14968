"""``pytest-soak inspect``, ``convert`` and ``redact``, called as a user calls them, on real
files: our own small recordings with secrets in them, and the shared real-world samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_soak.cli import main
from pytest_soak.traffic import load_traffic

SECRET = "tok-7d1e-secret"


def _recording(path: Path) -> Path:
    """40 exchanges over 2 minutes: carts, searches and logins; a secret in every login's
    query, header, cookie and body, and one line the parser skips (a CONNECT)."""
    lines = []
    for n in range(40):
        offset = n * 3.0
        if n % 4 == 0:
            lines.append({
                "offset": offset, "method": "POST", "url": f"/login?token={SECRET}",
                "headers": {"Authorization": f"Bearer {SECRET}", "Cookie": f"sid={SECRET}",
                            "Content-Type": "application/json"},
                "body": json.dumps({"user": "ann", "password": SECRET}),
                "response": {"status": 200, "headers": {"Set-Cookie": f"sid={SECRET}; Path=/"}},
            })  # fmt: skip
        elif n % 4 == 1:
            lines.append({"offset": offset, "method": "DELETE", "url": f"/cart/delete/{n}",
                          "response": {"status": 404 if n % 8 == 1 else 200}})  # fmt: skip
        else:
            lines.append({"offset": offset, "method": "GET", "url": f"/search?q=item{n % 3}"})
    text = "".join(json.dumps(line) + "\n" for line in lines)
    path.write_text(text)
    return path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return _recording(tmp_path / "traffic.jsonl")


def test_inspect_shows_format_span_rate_endpoints_and_kinds(
    recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(recording)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"{recording}: jsonl, 40 exchanges, 0 skipped; 1m57s from the first request to the last"
    )
    assert out[1] == "recorded: 20 with their response, 10 with a request body"
    assert out[2] == "rate: 0.3 req/s on average; requests per 8.0s:"
    assert "endpoints: 3 templates" in out
    at = out.index("endpoints: 3 templates")
    assert out[at + 1].split() == ["20", "GET", "/search"]
    assert out[at + 2].split() == ["10", "POST", "/login"]  # one kind of search: no variations
    delete = next(line for line in out if line.endswith("DELETE /cart/delete/{id}"))
    assert delete.split()[0] == "10"
    kinds = out[out.index(delete) + 1 : out.index(delete) + 3]
    assert sorted(line.split()[1] for line in kinds) == ["status=2xx", "status=4xx"]
    assert not any(SECRET in line for line in out)


def test_inspect_lists_skipped_entries_by_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def entry(url: str, second: int) -> dict[str, object]:
        return {
            "startedDateTime": f"2026-11-30T08:00:0{second}.000Z", "time": 1,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "headers": [],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                         "headers": [], "cookies": [], "content": {"size": 0, "mimeType": ""},
                         "redirectURL": "", "headersSize": -1, "bodySize": 0},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        }  # fmt: skip

    entries = [entry("http://shop.local/a", 0), entry("data:image/png;base64,AAAA", 1),
               entry("http://shop.local/b", 2), entry("data:text/plain,x", 3)]  # fmt: skip
    har = tmp_path / "page.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                                       "entries": entries}}))  # fmt: skip
    assert main(["inspect", str(har)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{har}: har, 2 exchanges, 2 skipped; ")
    at = out.index("skipped: 2, by reason:")
    assert out[at + 1].startswith("  1  data: URL 'data:image/png;base64,AAAA' is not an HTTP")
    assert out[at + 1].endswith("(first: entry 1)")  # HAR entries count from 0, as log.entries[1]
    assert len(out) == at + 3


def test_inspect_reads_a_real_goreplay_capture(
    samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = samples / "gor" / "ecommerce-workshop-requests_0.gor"
    assert main(["inspect", str(sample)]) == 0
    out = capsys.readouterr().out
    assert f"{sample}: goreplay, 101 exchanges, 0 skipped; 8m39s from" in out
    assert "requests per minute:" in out and "  26  GET /api_tokens" in out


def test_convert_filters_samples_and_redacts_into_native_jsonl(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "login.jsonl"
    assert main(["convert", str(recording), "-o", str(out), "--include", "/login"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"wrote 10 of 40 exchanges to {out}"
    assert said[1].startswith("not redacted: 10 exchanges hold secrets")
    assert SECRET in out.read_text()  # as asked: converted, not redacted
    assert main(["convert", str(recording), "-o", str(out), "--include", "/login", "--redact"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said == [f"wrote 10 of 40 exchanges to {out}", "redacted: 10 exchanges had secrets"]
    assert SECRET not in out.read_text() and len(load_traffic(out)) == 10
    assert main(["convert", str(recording), "-o", str(out), "--exclude", "/login", "--redact",
                 "--sample", "50%", "--seed", "3"]) == 0  # fmt: skip
    said = capsys.readouterr().out.splitlines()
    kept = load_traffic(out)
    assert said == [
        f"wrote {len(kept)} of 40 exchanges to {out}",
        "redacted: 0 exchanges had secrets",
    ]
    assert 5 <= len(kept) <= 25 and all(e.path != "/login" for e in kept)
    assert [e.offset for e in kept] == sorted(e.offset for e in kept)


def test_redact_writes_a_recording_without_secrets_that_replays_the_same_requests(
    recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redact", str(recording), "--field", "user"]) == 0
    written = recording.with_name("traffic.redacted.jsonl")
    assert capsys.readouterr().out.splitlines() == [
        f"redacted 10 of 40 exchanges (secrets replaced by REDACTED); wrote {written}"
    ]
    text = written.read_text()
    assert SECRET not in text
    before, after = load_traffic(recording), load_traffic(written)
    assert [(e.method, e.path, e.offset) for e in after] == [
        (e.method, e.path, e.offset) for e in before
    ]
    login = next(e for e in after if e.path == "/login")
    assert login.target == "/login?token=REDACTED"
    assert dict(login.headers)["Authorization"] == "REDACTED"
    assert json.loads(login.body) == {"user": "REDACTED", "password": "REDACTED"}
    assert login.response is not None and login.response.status == 200


def test_redact_in_place_replaces_the_file(recording: Path) -> None:
    assert main(["redact", str(recording), "-o", str(recording)]) == 0
    assert SECRET not in recording.read_text()
    assert len(load_traffic(recording)) == 40


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(tmp_path / "nope.har")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-soak inspect: {tmp_path / 'nope.har'}: no such traffic file")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"method": "GET", "url": "/a"}\n{"method": "GET", "url": 5}\n')
    assert main(["redact", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-soak redact: {broken}: line 2: ") and "url" in err
    assert not broken.with_name("broken.redacted.jsonl").exists()  # nothing half-written
    assert main(["convert", str(recording), "-o", str(tmp_path / "x.jsonl"), "--include",
                 "/nothing-here"]) == 2  # fmt: skip
    assert "no exchange is left after the filters (40 before)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["convert", str(recording), "-o", str(tmp_path / "x.jsonl"), "--sample", "0"])
    assert exited.value.code == 2
    assert "'0' is not a share above 0 and at most 1" in capsys.readouterr().err
