"""A small Starlette shop: products, carts, search.

It carries the classic leak behind a switch: with ``SHOP_CART_DELETE_BUG=1`` in the environment,
``DELETE /cart/delete/{id}`` with an unknown id (a double-clicked delete, a stale tab) keeps a
copy of every cart id in a "diagnostics" list that nobody ever empties.

With ``SHOP_RECORD=traffic/recorded.jsonl`` it records its own traffic (``shop/recording.py``).
"""

from __future__ import annotations

import functools
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shop.recording import with_recording

PRODUCTS = {
    f"p{n:02d}": {"id": f"p{n:02d}", "name": name, "price": 5 + 3 * n}
    for n, name in enumerate(
        ["mug", "shirt", "hoodie", "cap", "socks", "sticker", "poster", "bottle", "bag", "pin",
         "notebook", "pen", "lanyard", "scarf", "gloves", "umbrella", "towel", "apron", "badge",
         "keychain"]
    )
}  # fmt: skip


def create_app(*, cart_delete_bug: bool = False) -> Starlette:
    carts: dict[str, list[dict[str, object]]] = {}
    missing_cart_report: list[list[bytes]] = []  # the bug keeps its copies here

    def _find_cart(cart_id: str) -> list[dict[str, object]] | None:
        return carts.get(cart_id)

    @functools.lru_cache(maxsize=64)
    def _search(query: str) -> list[str]:
        # A bounded cache: fills up with popular queries, then stays the same size.
        words = query.lower().split()
        return [pid for pid, p in PRODUCTS.items() if any(w in str(p["name"]) for w in words)]

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "carts": len(carts)})

    async def list_products(request: Request) -> Response:
        return JSONResponse(list(PRODUCTS.values()))

    async def get_product(request: Request) -> Response:
        product = PRODUCTS.get(request.path_params["product_id"])
        if product is None:
            return JSONResponse({"error": "no such product"}, status_code=404)
        return JSONResponse(product)

    async def search(request: Request) -> Response:
        return JSONResponse({"results": _search(request.query_params.get("q", ""))})

    async def create_cart(request: Request) -> Response:
        cart_id = request.path_params["cart_id"]
        carts[cart_id] = []
        return JSONResponse({"id": cart_id, "items": []}, status_code=201)

    async def add_item(request: Request) -> Response:
        cart = _find_cart(request.path_params["cart_id"])
        if cart is None:
            return JSONResponse({"error": "no such cart"}, status_code=404)
        payload = await request.json()
        product_id = payload.get("product")
        if product_id not in PRODUCTS:
            return JSONResponse({"error": "no such product"}, status_code=422)
        cart.append({"product": product_id, "qty": int(payload.get("qty", 1))})
        return JSONResponse({"items": len(cart)})

    async def get_cart(request: Request) -> Response:
        cart = _find_cart(request.path_params["cart_id"])
        if cart is None:
            return JSONResponse({"error": "no such cart"}, status_code=404)
        total = sum(PRODUCTS[str(i["product"])]["price"] * int(str(i["qty"])) for i in cart)  # type: ignore[operator]
        return JSONResponse({"items": cart, "total": total})

    async def delete_cart(request: Request) -> Response:
        cart_id = request.path_params["cart_id"]
        if _find_cart(cart_id) is None:
            if cart_delete_bug:
                # "Diagnostics": remember which carts existed when an unknown id was deleted.
                missing_cart_report.append([known.encode() for known in carts])
            return JSONResponse({"error": "no such cart"}, status_code=404)
        del carts[cart_id]
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/products", list_products),
            Route("/products/{product_id}", get_product),
            Route("/search", search),
            Route("/cart/{cart_id}", create_cart, methods=["POST"]),
            Route("/cart/{cart_id}", get_cart, methods=["GET"]),
            Route("/cart/{cart_id}/items", add_item, methods=["POST"]),
            Route("/cart/delete/{cart_id}", delete_cart, methods=["DELETE"]),
        ]
    )


app = with_recording(create_app(cart_delete_bug=os.environ.get("SHOP_CART_DELETE_BUG", "") == "1"))
