"""Record the example's traffic: simulated shoppers against the real app, saved as HAR 1.2.

    python examples/webshop/record_traffic.py    # rewrites traffic/shop.har

Shoppers browse, search, fill a cart and delete it; some double-click delete (the second
delete asks for a cart that no longer exists: 404). Like a real production capture, the file
is a window cut from a longer stream: it starts and ends mid-session, so its load is steady
from the first entry to the last. Seeded, so the file is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from shop.app import PRODUCTS, create_app

HERE = Path(__file__).parent
SHOPPERS = 420
WINDOW = (150.0, 270.0)  # seconds of the simulated stream kept in the file
QUERIES = ["mug", "shirt", "hoodie cap", "bag", "pen", "gift", "winter scarf gloves", "poster"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "ShopApp/4.2 (Android 14; Pixel 8)",
]


def shopper_session(rng: random.Random, n: int) -> list[tuple[str, str, Any]]:
    cart = f"c{n:06d}"
    steps: list[tuple[str, str, Any]] = [("GET", "/products", None)]
    for _ in range(rng.randint(0, 2)):
        steps.append(("GET", f"/search?q={rng.choice(QUERIES).replace(' ', '+')}", None))
    steps.append(("GET", f"/products/{rng.choice(list(PRODUCTS))}", None))
    steps.append(("POST", f"/cart/{cart}", None))
    for _ in range(rng.randint(1, 3)):
        steps.append(
            (
                "POST",
                f"/cart/{cart}/items",
                {"product": rng.choice(list(PRODUCTS)), "qty": rng.randint(1, 3)},
            )
        )
    steps.append(("GET", f"/cart/{cart}", None))
    steps.append(("DELETE", f"/cart/delete/{cart}", None))
    if rng.random() < 0.4:
        steps.append(("DELETE", f"/cart/delete/{cart}", None))  # double click: unknown id now
    return steps


async def record() -> dict[str, Any]:
    rng = random.Random(20261122)
    sessions = [(rng.choice(AGENTS), shopper_session(rng, n)) for n in range(SHOPPERS)]
    # Interleave the shoppers: in the window about 150 of them are mid-session at any moment.
    queue: list[tuple[float, int, int]] = []
    clock = 0.0
    for index, (_, steps) in enumerate(sessions):
        clock += rng.expovariate(1.0)
        t = clock
        for step in range(len(steps)):
            queue.append((t, index, step))
            t += rng.uniform(2.0, 30.0)  # shoppers think; carts stay open a while
    queue.sort()
    start = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
    entries = []
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        for t, index, step in queue:
            agent, steps = sessions[index]
            method, target, payload = steps[step]
            headers = {"User-Agent": agent, "Accept": "application/json"}
            body = None
            if payload is not None:
                body = json.dumps(payload)
                headers["Content-Type"] = "application/json"
            response = await client.request(method, target, content=body, headers=headers)
            if not WINDOW[0] <= t < WINDOW[1]:
                continue  # the app saw it, the capture did not
            entries.append(
                har_entry(start + timedelta(seconds=t), method, target, headers, body, response)
            )
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "pytest-soak example recorder", "version": "1"},
            "entries": entries,
        }
    }


def har_entry(
    when: datetime,
    method: str,
    target: str,
    headers: dict[str, str],
    body: str | None,
    response: httpx.Response,
) -> dict[str, Any]:
    url = "https://shop.example" + target
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "headers": [{"name": k, "value": v} for k, v in headers.items()],
        "queryString": [{"name": k, "value": v} for k, v in httpx.URL(url).params.multi_items()],
        "cookies": [],
        "headersSize": -1,
        "bodySize": len(body or ""),
    }
    if body is not None:
        request["postData"] = {"mimeType": "application/json", "text": body}
    return {
        "startedDateTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time": 2.0,
        "request": request,
        "response": {
            "status": response.status_code,
            "statusText": response.reason_phrase,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in response.headers.items()],
            "cookies": [],
            "content": {
                "size": len(response.content),
                "mimeType": response.headers.get("content-type", ""),
                "text": response.text,
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(response.content),
        },
        "cache": {},
        "timings": {
            "send": 0,
            "wait": 2,
            "receive": 0,
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "ssl": -1,
        },
    }


if __name__ == "__main__":
    har = asyncio.run(record())
    out = HERE / "traffic" / "shop.har"
    out.write_text(json.dumps(har, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({len(har['log']['entries'])} entries)")
