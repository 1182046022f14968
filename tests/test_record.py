"""``pytest_soak.record``: the recording middlewares against real servers (uvicorn on loopback,
``wsgiref``), the file they write read back with ``load_traffic``, and the recorder's bounds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pytest_soak import load_traffic
from pytest_soak.driver.targets import ServedProcess, free_loopback_port
from pytest_soak.errors import SoakError
from pytest_soak.record import (
    Recorder,
    RecordingMiddleware,
    Redaction,
    WSGIRecordingMiddleware,
)
from pytest_soak.record.sampling import Sampler
from pytest_soak.record.wsgi import ReplayedInput
from pytest_soak.traffic import parse_traffic
from pytest_soak.traffic.redaction import REDACTED

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "webshop"
SECRETS = ("abc123", "sekrit", "k-1", "s-42", "hunter2", "t-123", "sess-9")


# --- the apps and servers ------------------------------------------------------------------


def api() -> Starlette:
    """Items, a login that answers a token and a session cookie, a stream, a crash."""

    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["item_id"], "name": "mug"})

    async def login(request: Request) -> Response:
        payload = await request.json()
        response = JSONResponse({"user": payload["user"], "token": "t-123"})
        response.set_cookie("session", "sess-9")
        return response

    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body, media_type=request.headers.get("content-type", "text/plain"))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stream(request: Request) -> Response:
        gate = request.app.state.gate

        async def chunks() -> Any:
            yield b"chunk0 "
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)
            yield b"chunk1 "
            yield b"chunk2"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    app = Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/login", login, methods=["POST"]),
            Route("/echo", echo, methods=["POST"]),
            Route("/health", health),
            Route("/stream", stream),
            Route("/boom", boom),
        ]
    )
    app.state.gate = threading.Event()
    return app


@contextlib.contextmanager
def serving(app: Any, *, lifespan: str = "on") -> Iterator[str]:
    """``app`` served by a real uvicorn on a free loopback port (in a thread); its shutdown
    (lifespan included) runs when the block ends."""
    port = free_loopback_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="error", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving_wsgi(app: Any) -> Iterator[str]:
    """``app`` served by ``wsgiref.simple_server`` on a free loopback port (in a thread)."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def _call(
    app: Any, target: str, *, method: str = "GET", body: bytes = b"", headers: Any = ()
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.request(method, target, content=body, headers=dict(headers))


def call(app: Any, target: str, **kwargs: Any) -> httpx.Response:
    """One request to an ASGI app in process (a real HTTP client, no server)."""
    return asyncio.run(_call(app, target, **kwargs))


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


# --- the recording, end to end ------------------------------------------------------------


def test_import_loads_neither_pytest_nor_an_http_client() -> None:
    code = (
        "import sys, pytest_soak.record; "
        "print(sorted(m for m in ('pytest', '_pytest', 'httpx', 'scipy', 'psutil', 'starlette')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_uvicorn_service_records_what_it_served_without_its_secrets(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    app = RecordingMiddleware(api(), path)
    with serving(app) as url, httpx.Client(base_url=url) as client:
        first = client.get(
            "/items/7?token=abc123&page=2",
            headers={"Authorization": "Bearer sekrit", "X-Api-Key": "k-1",
                     "Cookie": "theme=dark; sessionid=s-42"},
        )  # fmt: skip
        login = client.post("/login", json={"user": "ann", "password": "hunter2"})
        client.get("/health")
        assert first.json() == {"id": "7", "name": "mug"}
        assert login.json()["token"] == "t-123"  # the client got what the app sent
    assert app.recorder.closed  # uvicorn's lifespan shutdown closed it
    text = path.read_text()
    for secret in SECRETS:
        assert secret not in text, secret
    traffic = load_traffic(path)
    assert traffic.format == "jsonl"
    assert [(e.method, e.target) for e in traffic] == [
        ("GET", f"/items/7?token={REDACTED}&page=2"),
        ("POST", "/login"),
        ("GET", "/health"),
    ]
    get, post, health = traffic
    assert get.header("authorization") == get.header("x-api-key") == REDACTED
    assert get.header("cookie") == REDACTED
    assert get.header("host") == url.removeprefix("http://")
    assert get.response is not None and get.response.status == 200
    assert json.loads(get.response.body) == {"id": "7", "name": "mug"}
    assert json.loads(post.body) == {"user": "ann", "password": REDACTED}
    assert post.header("content-type") == "application/json"
    assert post.response is not None
    assert json.loads(post.response.body) == {"user": "ann", "token": REDACTED}
    assert dict(post.response.headers)["set-cookie"] == REDACTED
    assert 0.0 == get.offset <= post.offset <= health.offset
    recorded = lines(path)
    assert recorded[0]["offset"] > 0.0  # seconds since the recorder started (rebased on load)
    stats = app.recorder.stats
    assert (stats.seen, stats.sampled, stats.written, stats.dropped, stats.failed) == (
        3,
        3,
        3,
        0,
        0,
    )
    notes = comments(text)
    assert notes[0].startswith("# pytest_soak.record: recording started ")
    assert notes[-1].startswith("# closed at offset ")
    assert "3 requests seen, 3 sampled, 3 written, 0 dropped" in notes[-1]


def test_extra_names_are_redacted_besides_the_defaults(tmp_path: Path) -> None:
    redaction = Redaction.of(
        headers=["X-Tenant"], query=["email"], fields=["card"], cookies=["cart"],
        keep_headers=["cookie"],
    )  # fmt: skip
    app = RecordingMiddleware(api(), tmp_path / "t.jsonl", redaction=redaction)
    call(
        app, "/echo?email=ann@example.com&api_key=k-1&page=1", method="POST",
        body=json.dumps({"card": "4111", "password": "hunter2", "qty": 2}).encode(),
        headers={"X-Tenant": "acme", "Cookie": "theme=dark; cart=7; sessionid=s-42",
                 "Content-Type": "application/json", "Authorization": "Basic sekrit"},
    )  # fmt: skip
    app.recorder.close()
    [exchange] = load_traffic(tmp_path / "t.jsonl")
    assert exchange.target == f"/echo?email={REDACTED}&api_key={REDACTED}&page=1"
    assert exchange.header("x-tenant") == exchange.header("authorization") == REDACTED
    assert exchange.header("cookie") == f"theme=dark; cart={REDACTED}; sessionid={REDACTED}"
    assert json.loads(exchange.body) == {"card": REDACTED, "password": REDACTED, "qty": 2}
    assert exchange.response is not None  # the echo: the response body is redacted too
    assert json.loads(exchange.response.body) == {"card": REDACTED, "password": REDACTED, "qty": 2}


def test_the_sample_rate_is_seeded_and_patterns_choose_endpoints(tmp_path: Path) -> None:
    targets = [f"/items/{n}" for n in range(400)]

    def chosen(rate: float, seed: int | None, **patterns: Any) -> list[str]:
        sampler = Sampler(rate, seed=seed, **patterns)
        return [t for t in targets if sampler.wants("GET", t)]

    tenth = chosen(0.1, 7)
    assert 20 <= len(tenth) <= 60
    assert chosen(0.1, 7) == tenth  # the same seed, the same choices
    assert chosen(0.1, 8) != tenth
    assert chosen(0.0, 7) == []
    assert len(chosen(1.0, None)) == 400
    sampler = Sampler(
        1.0, include=["/items/*", "/cart/**"], exclude=["/items/featured", "DELETE /**"]
    )
    assert sampler.wants("GET", "/items/12") and sampler.wants("POST", "/cart/c1/items")
    assert sampler.wants("GET", "/cart")  # '/cart/**' is '/cart' and anything below it
    assert not sampler.wants("GET", "/items/featured")
    assert not sampler.wants("DELETE", "/cart/c1")
    assert not sampler.wants("GET", "/health")  # not included
    # A pattern names an endpoint, as replay_traffic's filters do: '/items/13' is
    # '/items/{id}', every item.
    assert not Sampler(1.0, exclude="/items/13").wants("GET", "/items/12")
    # Through the middleware: excluded and unsampled requests reach the app all the same.
    app = RecordingMiddleware(api(), tmp_path / "t.jsonl", exclude="/health", sample_rate=0.5,
                              seed=3)  # fmt: skip
    statuses = [call(app, "/health").status_code for _ in range(3)]
    statuses += [call(app, f"/items/{n}").status_code for n in range(40)]
    app.recorder.close()
    assert statuses == [200] * 43
    recorded = [e.target for e in load_traffic(tmp_path / "t.jsonl")]
    sampler = Sampler(0.5, seed=3)
    assert recorded == [f"/items/{n}" for n in range(40) if sampler.wants("GET", "/items")]
    stats = app.recorder.stats
    assert (stats.seen, stats.sampled, stats.written) == (43, len(recorded), len(recorded))


def test_bad_options_are_refused_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(SoakError, match=r"sample_rate=1.5 must be a number from 0 to 1"):
        Recorder(tmp_path / "t.jsonl", sample_rate=1.5)
    with pytest.raises(SoakError, match=r"exclude='health': endpoint pattern 'health' is not"):
        Recorder(tmp_path / "t.jsonl", exclude="health")
    with pytest.raises(SoakError, match=r"max_body='lots' is not a size"):
        Recorder(tmp_path / "t.jsonl", max_body="lots")
    with pytest.raises(SoakError, match=r"queue_size=0 must be a whole number of at least 1"):
        Recorder(tmp_path / "t.jsonl", queue_size=0)
    with pytest.raises(SoakError, match=r"sample_rate: options go to Recorder"):
        RecordingMiddleware(api(), Recorder(tmp_path / "t.jsonl"), sample_rate=0.5)


def test_bodies_are_capped_with_a_marker_and_a_cut_json_body_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    app = RecordingMiddleware(api(), path, max_body=64)
    text = "é" * 100  # 200 bytes of UTF-8: the cut must not split a character
    answered = call(app, "/echo", method="POST", body=text.encode(),
                    headers={"Content-Type": "text/plain; charset=utf-8"})  # fmt: skip
    assert answered.text == text  # the app got, and sent, the whole body
    document = json.dumps({"password": "hunter2", "items": list(range(50))}).encode()
    call(app, "/echo", method="POST", body=document, headers={"Content-Type": "application/json"})
    call(app, "/echo", method="POST", body=b"short", headers={"Content-Type": "text/plain"})
    app.recorder.close()
    plain, cut_json, short = lines(path)
    assert plain["body"] == "é" * 32
    assert plain["response"]["body"] == "é" * 32
    assert plain["_truncated"] == {
        "body": {"size": 200, "kept": 64},
        "response.body": {"size": 200, "kept": 64},
    }
    # A cut JSON document cannot be parsed, so it could not be redacted: it is not kept.
    assert "body" not in cut_json and "body" not in cut_json["response"]
    size = len(document)
    assert cut_json["_truncated"] == {
        "body": {"size": size, "kept": 0},
        "response.body": {"size": size, "kept": 0},
    }
    assert "hunter2" not in path.read_text()
    assert short["body"] == "short" and "_truncated" not in short
    assert len(load_traffic(path)) == 3


def test_a_stream_passes_through_and_is_recorded_at_once_without_its_body(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    inner = api()
    app = RecordingMiddleware(inner, path)
    with serving(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        with client.stream("GET", "/stream") as response:
            chunks = response.iter_bytes()
            assert next(chunks).startswith(b"chunk0")
            # The stream is still open (the app waits on the gate): the record is written
            # already, and nothing of the stream is held for it.
            deadline = time.monotonic() + 10
            while app.recorder.stats.written < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.recorder.stats.written == 1
            inner.state.gate.set()
            rest = b"".join(chunks)
        assert rest.endswith(b"chunk1 chunk2")
    [record] = lines(path)
    assert record["url"] == "/stream" and record["_streamed"] is True
    assert record["response"]["status"] == 200 and "body" not in record["response"]
    [exchange] = load_traffic(path)
    assert exchange.response is not None and exchange.response.body == b""


def test_every_message_passes_through_unchanged_including_disconnect(tmp_path: Path) -> None:
    """The app receives the very message objects the server sent, the server gets the very
    messages the app sent, in order, and the scope is the same object."""
    seen: dict[str, list[Any]] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.setdefault("scopes", []).append(scope)
        got = seen.setdefault("received", [])
        while True:
            message = await receive()
            got.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")],
                    "trailers": False})  # fmt: skip
        await send({"type": "http.response.body", "body": b"done", "more_body": False})
        got.append(await receive())  # a disconnect after the response

    def run(asgi: Any) -> tuple[list[Any], list[Any]]:
        incoming = [
            {"type": "http.request", "body": b"part1 ", "more_body": True},
            {"type": "http.request", "body": b"part2", "more_body": False},
            {"type": "http.disconnect"},
        ]
        sent: list[Any] = []

        async def receive() -> Any:
            return incoming.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "PUT", "path": "/things/1", "raw_path": b"/things/1",
                 "query_string": b"a=1", "headers": [(b"host", b"svc")]}  # fmt: skip
        seen.clear()
        asyncio.run(asgi(scope, receive, send))
        assert seen["scopes"] == [scope] and seen["scopes"][0] is scope
        return seen["received"], sent

    bare = run(app)
    wrapped = RecordingMiddleware(app, tmp_path / "t.jsonl")
    recorded = run(wrapped)
    wrapped.recorder.close()
    assert recorded == bare
    assert [m["type"] for m in recorded[0]] == ["http.request", "http.request", "http.disconnect"]
    [exchange] = load_traffic(tmp_path / "t.jsonl")
    assert (exchange.method, exchange.target, exchange.body) == ("PUT", "/things/1?a=1",
                                                                 b"part1 part2")  # fmt: skip
    assert exchange.response is not None and exchange.response.status == 201


def test_a_websocket_scope_goes_to_the_app_untouched(tmp_path: Path) -> None:
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send))

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "websocket", "path": "/ws", "headers": []}
    wrapped = RecordingMiddleware(app, tmp_path / "t.jsonl")
    asyncio.run(wrapped(scope, receive, send))
    assert calls == [(scope, receive, send)] and calls[0][1] is receive and calls[0][2] is send
    assert wrapped.recorder.stats.seen == 0


def test_a_websocket_over_uvicorn_works_through_the_middleware(tmp_path: Path) -> None:
    pytest.importorskip("websockets", reason="uvicorn's websocket support needs 'websockets'")
    from websockets.sync.client import connect

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"].upper()})
        await send({"type": "websocket.close"})

    wrapped = RecordingMiddleware(app, tmp_path / "t.jsonl")
    with serving(wrapped) as url, connect(url.replace("http", "ws") + "/ws") as ws:
        ws.send("hello")
        assert ws.recv() == "HELLO"
    assert wrapped.recorder.stats.seen == 0
    assert not (tmp_path / "t.jsonl").exists()


def test_errors_in_the_app_are_recorded_and_errors_in_the_recorder_never_reach_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    app = RecordingMiddleware(api(), path)
    with pytest.raises(RuntimeError, match="boom"):  # the app's own error, unchanged
        call(app, "/boom")  # (Starlette answers 500 first, then raises it again)
    calls: list[str] = []

    async def plain(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        if scope["path"] == "/crash":
            raise LookupError("before any response")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = RecordingMiddleware(plain, app.recorder)

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.request"}

    # raw_path of the wrong type: the capture fails on the request path; a space in the
    # target: the line cannot be written. The app answers both all the same.
    for raw_path in ("/text", b"/a b"):
        scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": raw_path,
                 "query_string": b"", "headers": []}  # fmt: skip
        asyncio.run(wrapped(scope, receive, send))
    assert calls == ["/x", "/x"]
    crash = {"type": "http", "method": "GET", "path": "/crash", "headers": []}
    with pytest.raises(LookupError, match="before any response"):
        asyncio.run(wrapped(crash, receive, send))
    app.recorder.close()
    stats = app.recorder.stats
    assert (stats.written, stats.failed) == (2, 2)
    assert stats.last_error is not None and "is not a path" in stats.last_error
    boom, crashed = load_traffic(path)
    assert boom.target == "/boom" and boom.response is not None
    assert boom.response.status == 500  # what the client got
    assert (crashed.target, crashed.response) == ("/crash", None)
    assert lines(path)[1]["_error"] == "the app raised LookupError"
    assert any("lost to recorder errors" in note for note in comments(path.read_text()))


def test_a_header_the_format_cannot_hold_is_left_out_and_named(tmp_path: Path) -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Any:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        pass

    wrapped = RecordingMiddleware(plain, tmp_path / "t.jsonl")
    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"",
             "headers": [(b"x-bad", b"a\x01b"), (b"x-ok", b"caf\xe9")]}  # fmt: skip
    asyncio.run(wrapped(scope, receive, send))
    wrapped.recorder.close()
    [record] = lines(tmp_path / "t.jsonl")
    assert record["headers"] == {"x-ok": "café"} and record["_omitted_headers"] == ["x-bad"]
    assert load_traffic(tmp_path / "t.jsonl")[0].header("x-ok") == "café"


def _mkfifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs a named pipe (POSIX) to hold the writer up")
    os.mkfifo(path)
    return path


def _read_in_background(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    """Open the pipe's reading end (which lets the blocked writer go on) and read it until the
    recorder closes it."""
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(fifo.read_bytes()), daemon=True)
    reader.start()
    return reader, out


def test_a_full_queue_drops_and_counts_in_the_file_and_never_blocks_a_request(
    tmp_path: Path,
) -> None:
    # The file is a named pipe nobody reads yet: the writer blocks opening it, like a hung disk.
    fifo = _mkfifo(tmp_path / "traffic.jsonl")
    recorder = Recorder(fifo, queue_size=5)
    app = RecordingMiddleware(api(), recorder)
    with serving(app) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            statuses = [client.get(f"/items/{n}").status_code for n in range(60)]
        assert statuses == [200] * 60  # every request answered while the writer was stuck
        stats = recorder.stats
        assert stats.sampled == 60 and stats.written == 0
        # held: the full queue and (once the writer woke) the one it is stuck writing
        assert 60 - 5 - 1 <= stats.dropped <= 60 - 5
        reader, out = _read_in_background(fifo)
    reader.join(20)  # the server's shutdown (lifespan) closed the recorder, ending the stream
    data = out[0]
    stats = recorder.stats
    assert stats.written + stats.dropped == 60
    traffic = parse_traffic(data, "traffic.jsonl")
    assert len(traffic) == stats.written
    notes = [line for line in comments(data.decode()) if line.startswith("# dropped")]
    counts = [int(note.split()[2]) for note in notes]
    assert sum(counts) == stats.dropped
    assert "(queue full, queue_size=5)" in notes[0] and f"{stats.dropped} in all" in notes[-1]


def test_memory_held_is_bounded_by_the_queue_not_by_the_requests(tmp_path: Path) -> None:
    fifo = _mkfifo(tmp_path / "traffic.jsonl")
    recorder = Recorder(fifo, queue_size=20, max_body="4KiB")
    app = RecordingMiddleware(api(), recorder)
    body = b"x" * 2000

    async def requests(count: int) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            for _ in range(count):
                await client.post("/echo", content=body, headers={"Content-Type": "text/plain"})

    tracemalloc.start()
    try:
        asyncio.run(requests(100))  # fills the queue (the writer is stuck on the file)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        asyncio.run(requests(1000))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert recorder.stats.dropped >= 1000
    # 1,000 captures of 2 x 2,000 bytes would be 4 MB; what stays is one request's worth of
    # noise at most (the queue was already full before).
    assert grown < 64 * 1024, grown
    reader, out = _read_in_background(fifo)
    recorder.close()
    reader.join(20)
    assert len(parse_traffic(out[0], "t.jsonl")) == recorder.stats.written <= 20 + 1


def test_files_rotate_by_size_and_each_loads_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text('{"method": "GET", "url": "/from-an-earlier-run"}\n')
    app = RecordingMiddleware(api(), path, max_bytes="2KiB", backups=2)
    for n in range(40):
        call(app, f"/items/{n}")
    app.recorder.close()
    stats = app.recorder.stats
    assert stats.rotations >= 3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["traffic.1.jsonl", "traffic.2.jsonl", "traffic.jsonl"]
    assert [p.name for p in app.recorder.paths()] == ["traffic.jsonl", "traffic.1.jsonl",
                                                      "traffic.2.jsonl"]  # fmt: skip
    kept = []
    for name in ("traffic.2.jsonl", "traffic.1.jsonl", "traffic.jsonl"):
        file = tmp_path / name
        assert file.stat().st_size <= 2048 + 512  # notes go in the file they are about
        assert file.read_text().startswith("# pytest_soak.record: recording started")
        kept += [e.target for e in load_traffic(file)]
    # the newest requests, in order, none twice; the earlier run's file was rotated away
    assert kept == [f"/items/{n}" for n in range(40 - len(kept), 40)]


def test_an_earlier_runs_file_is_kept_as_the_first_backup(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text('{"method": "GET", "url": "/from-an-earlier-run"}\n')
    with Recorder(path) as recorder:
        call(RecordingMiddleware(api(), recorder), "/items/1")
    assert [e.target for e in load_traffic(tmp_path / "traffic.1.jsonl")] == [
        "/from-an-earlier-run"
    ]
    assert [e.target for e in load_traffic(path)] == ["/items/1"]


def test_an_app_without_lifespan_support_still_closes_the_recorder_on_shutdown(
    tmp_path: Path,
) -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # ignores lifespan events
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = RecordingMiddleware(plain, tmp_path / "t.jsonl")
    with serving(app, lifespan="auto") as url:
        assert httpx.get(url + "/ping").text == "ok"
    assert app.recorder.closed
    assert comments((tmp_path / "t.jsonl").read_text())[-1].startswith("# closed at offset")


def test_atexit_flushes_a_recorder_nobody_closed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from wsgiref.util import setup_testing_defaults
        from pytest_soak.record import WSGIRecordingMiddleware

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"hi"]

        wrapped = WSGIRecordingMiddleware(app, {str(tmp_path / "t.jsonl")!r})
        for n in range(3):
            environ = {{"PATH_INFO": f"/n/{{n}}"}}
            setup_testing_defaults(environ)
            assert b"".join(wrapped(environ, lambda status, headers: None)) == b"hi"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    text = (tmp_path / "t.jsonl").read_text()
    assert [e.target for e in load_traffic(tmp_path / "t.jsonl")] == ["/n/0", "/n/1", "/n/2"]
    assert comments(text)[-1].startswith("# closed at offset")


def test_a_path_with_pid_gives_each_process_its_own_file(tmp_path: Path) -> None:
    with Recorder(tmp_path / "traffic-{pid}.jsonl") as recorder:
        call(RecordingMiddleware(api(), recorder), "/items/1")
    assert (tmp_path / f"traffic-{os.getpid()}.jsonl").is_file()


# --- WSGI -----------------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    """Echo the body (read as the path says), a generator with close(), errors."""
    path = environ["PATH_INFO"]
    stream = environ["wsgi.input"]
    if path == "/read":
        body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    elif path == "/lines":  # line by line, never past CONTENT_LENGTH (wsgiref's stream is raw)
        left, parts = int(environ["CONTENT_LENGTH"]), []
        while left > 0 and (line := stream.readline(left)):
            parts.append(line)
            left -= len(line)
        body = b"".join(parts)
    elif path == "/generator":
        return _Closing(start_response)
    elif path == "/exc-info":
        try:
            raise ValueError("bad")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())  # fmt: skip
        return [b"sorry"]
    elif path == "/boom":
        raise RuntimeError("boom")
    else:
        body = b""
    start_response("200 OK", [("Content-Type", environ.get("CONTENT_TYPE") or "text/plain"),
                              ("Set-Cookie", "session=sess-9; Path=/")])  # fmt: skip
    return [body]


class _Closing:
    closed = 0

    def __init__(self, start_response: Any) -> None:
        start_response("200 OK", [("Content-Type", "text/plain")])
        self.chunks = iter([b"one ", b"two"])

    def __iter__(self) -> _Closing:
        return self

    def __next__(self) -> bytes:
        return next(self.chunks)

    def close(self) -> None:
        _Closing.closed += 1


def test_the_wsgi_twin_records_over_a_real_server_and_the_app_reads_every_byte(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    app = WSGIRecordingMiddleware(wsgi_app, path, max_body=20)
    form = b"user=ann&password=hunter2&note=" + b"n" * 40
    lines_body = b"first line\nsecond line\nthird line, longer than sixteen bytes\n"
    _Closing.closed = 0
    with serving_wsgi(app) as url, httpx.Client(base_url=url) as client:
        read = client.post("/read?token=abc123", content=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Authorization": "Bearer sekrit"})  # fmt: skip
        assert read.content == form  # the whole body, past max_body
        assert client.post("/lines", content=lines_body).content == lines_body
        assert client.get("/generator").content == b"one two"
        failed = client.get("/exc-info")
        assert (failed.status_code, failed.content) == (500, b"sorry")
        assert client.get("/boom").status_code == 500  # wsgiref's own answer
    app.recorder.close()
    assert _Closing.closed == 1
    text = path.read_text()
    for secret in ("abc123", "sekrit", "hunter2", "sess-9"):
        assert secret not in text, secret
    traffic = load_traffic(path)
    assert [(e.method, e.target) for e in traffic] == [
        ("POST", f"/read?token={REDACTED}"),
        ("POST", "/lines"),
        ("GET", "/generator"),
        ("GET", "/exc-info"),
        ("GET", "/boom"),
    ]
    read_, lines_, generator, exc_info, boom = traffic
    assert read_.header("Authorization") == REDACTED
    assert read_.header("Content-Length") == str(len(form))
    # cut at 20 bytes (inside the password's value), then redacted
    assert read_.body == f"user=ann&password={REDACTED}".encode()
    assert read_.response is not None and dict(read_.response.headers)["Set-Cookie"] == REDACTED
    assert lines_.body == lines_body[:20]
    assert generator.response is not None and generator.response.body == b""
    assert exc_info.response is not None and exc_info.response.status == 500
    assert exc_info.response.body == b"sorry"
    assert boom.response is None
    records = lines(path)
    assert records[0]["_truncated"]["body"] == {"size": len(form), "kept": 20}
    assert records[2]["_streamed"] is True
    assert records[4]["_error"] == "the app raised RuntimeError"


def test_the_replayed_input_gives_the_buffered_bytes_then_the_rest() -> None:
    body = b"alpha\nbeta\ngamma delta\nepsilon"

    def stream(buffered: int) -> ReplayedInput:
        rest = io.BytesIO(body)
        head = rest.read(buffered)
        return ReplayedInput(head, rest, exhausted=buffered >= len(body))

    for buffered in (0, 3, 6, 8, 15, len(body)):
        assert stream(buffered).read() == body
        assert stream(buffered).readlines() == body.splitlines(keepends=True)
        assert list(stream(buffered)) == body.splitlines(keepends=True)
        pieces, chunks = stream(buffered), []
        while chunk := pieces.read(4):
            chunks.append(chunk)
        assert b"".join(chunks) == body
        sized = stream(buffered)
        assert sized.readline(3) == b"alp" and sized.readline() == b"ha\n"
        assert sized.readline(100) == b"beta\n" and sized.read() == b"gamma delta\nepsilon"


# --- the example shop records itself ----------------------------------------------------------


def test_the_example_shop_records_its_own_traffic_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    shop = ServedProcess(
        [sys.executable, "-m", "uvicorn", "shop.app:app", "--port", "{port}",
         "--log-level", "warning"],
        env={"SHOP_RECORD": str(path)}, cwd=EXAMPLE, agent=False, ready="/health",
    )  # fmt: skip
    sent = [
        ("GET", "/products", None),
        ("GET", "/search?q=mug&token=abc123", None),
        ("POST", "/cart/c000001", None),
        ("POST", "/cart/c000001/items", {"product": "p03", "qty": 2}),
        ("GET", "/cart/c000001", None),
        ("DELETE", "/cart/delete/c000001", None),
    ]
    try:
        with httpx.Client(base_url=shop.url, headers={"Authorization": "Bearer sekrit"}) as c:
            statuses = [c.request(m, t, json=payload).status_code for m, t, payload in sent]
    finally:
        shop.stop()  # SIGTERM: uvicorn's shutdown runs lifespan, which closes the recorder
    assert statuses == [200, 200, 201, 200, 200, 204]
    text = path.read_text()
    assert "abc123" not in text and "sekrit" not in text
    traffic = load_traffic(path)
    assert [(e.method, e.target) for e in traffic] == [
        (m, t.replace("abc123", REDACTED)) for m, t, _ in sent
    ]  # /health (the readiness checks) is not recorded
    assert all(e.header("authorization") == REDACTED for e in traffic)
    assert json.loads(traffic[3].body) == {"product": "p03", "qty": 2}
    assert [e.response.status for e in traffic if e.response] == statuses
    assert json.loads(traffic[4].response.body)["items"] == [{"product": "p03", "qty": 2}]  # type: ignore[union-attr]
    # step 2 of the README: inspect shows the recording and what the recorder noted
    from pytest_soak.cli.recordings import inspect_lines

    shown = inspect_lines(traffic)
    assert shown[0].startswith(f"{path}: jsonl, 6 exchanges, 0 skipped; ")
    assert shown[2].startswith("recorder: recording started ") and "sample_rate=1.0" in shown[2]
    assert shown[3].startswith("recorder: closed at offset ")
    assert " 6 written, 0 dropped" in shown[3]
    with path.open("a") as file:
        file.write("# dropped 3 records (queue full, queue_size=1000) up to offset 1.0; 3 in all\n")
    missing = inspect_lines(traffic)[4]
    assert missing.startswith("recorder: records are missing: 1 note(s) of records dropped")
