"""A small service that calls a payments API at ``PAYMENTS_URL`` on every request and answers
with the payments API's status (or 599 when the call failed): the service a soak test isolates
with ``soak_mocks(..., serve=True)``. ``/checkout?n=N`` also looks up an unmocked
``/v1/lookup/N`` every tenth N (benchmarks/mock_memory.py). Run with uvicorn from this folder."""

from __future__ import annotations

import os

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:9")
_client = httpx.AsyncClient(base_url=PAYMENTS_URL, timeout=10)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def checkout(request: Request) -> Response:
    n = request.query_params.get("n", "")
    try:
        if n.isdigit() and int(n) % 10 == 0:
            await _client.get(f"/v1/lookup/{n}")
        upstream = await _client.post("/v1/charges", json={"amount": 100, "currency": "EUR"})
    except httpx.HTTPError as exc:
        return PlainTextResponse(type(exc).__name__, status_code=599)
    return PlainTextResponse(upstream.text, status_code=upstream.status_code)


app = Starlette(routes=[Route("/health", health), Route("/checkout", checkout, methods=["POST"])])
