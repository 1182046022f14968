"""A small ASGI shop used by pytest-soak's example soak test."""
