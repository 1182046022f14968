"""The service behind the proxy: a tiny catalogue API on the standard library alone.

python upstream.py --port 8080     # GET /health, /products, /products/{id}, /search?q=...

Its memory is not what the example measures (Envoy's is): it only has to answer quickly.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PRODUCTS = {
    f"p{n:02d}": {"id": f"p{n:02d}", "name": name, "price": 5 + 3 * n}
    for n, name in enumerate(
        ["mug", "shirt", "hoodie", "cap", "socks", "sticker", "poster", "bottle", "bag", "pin"]
    )
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy pools its upstream connections

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/health":
            self._answer(200, {"status": "ok"})
        elif parts.path == "/products":
            self._answer(200, list(PRODUCTS.values()))
        elif parts.path.startswith("/products/"):
            product = PRODUCTS.get(parts.path.removeprefix("/products/"))
            self._answer(200 if product else 404, product or {"error": "no such product"})
        elif parts.path == "/search":
            words = " ".join(parse_qs(parts.query).get("q", [""])).lower().split()
            found = [p["id"] for p in PRODUCTS.values() if any(w in str(p["name"]) for w in words)]
            self._answer(200, {"results": found})
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # no access log on stderr
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
