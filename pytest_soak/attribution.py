"""The attribution pass: after a ``leak`` or ``inconclusive`` verdict, which allocation sites
hold the growth, named with their function and source line. tracemalloc — in this process, or
inside a served Python service through its agent — is restarted with deep tracebacks and the
cycle replayed a few more times, a snapshot after each (docs/architecture.md;
``analysis.site_growth`` ranks the sites).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pytest_soak.analysis import SiteGrowth, site_growth
from pytest_soak.driver.replay import replay_closed
from pytest_soak.driver.targets import Target
from pytest_soak.probes import Site, SiteSource
from pytest_soak.traffic.model import Exchange

#: Verdicts that get an attribution pass (in process: which allocation sites hold the growth);
#: ``suspicious`` passes without one (the pass costs up to a minute).
ATTRIBUTE = ("leak", "inconclusive")
#: Attribution pass: tracemalloc depth (LEAK-RULE.md: with 5 frames a real leak collapsed into
#: asyncio internals), cycles replayed after a first traced one, most requests per cycle, and
#: the pass's time limit.
ATTRIBUTION_FRAMES = 25
ATTRIBUTION_CYCLES = 2
ATTRIBUTION_MAX_REQUESTS = 2000
ATTRIBUTION_TIME_LIMIT = 60.0
#: Requests in flight during the pass: as many as a spike keeps in flight, so a leak that needs
#: concurrency is attributed too (at 4, a leak that only happens with more than 6 requests in
#: flight was found by the verdict and attributed to no site: benchmarks/leak_sensitivity.py).
ATTRIBUTION_CONCURRENCY = 32


async def attribute(
    target: Target, cycles: Sequence[Sequence[Exchange]], heap: SiteSource
) -> tuple[tuple[SiteGrowth, ...], int]:
    """The attribution pass: restart tracemalloc with deep tracebacks, replay the cycle once
    (what it allocates once: imports, caches of its own keys), then ``ATTRIBUTION_CYCLES``
    more, with a snapshot after each; a site is reported by what it retained from *every*
    cycle (the smallest of its growths), so one-off allocations rank nowhere.

    Tracing from scratch means the snapshots hold only what survived the pass, so they are
    small and cheap even on a big heap; deep tracing costs 5-12x, which is why the measured
    run does not pay it (LEAK-RULE.md)."""
    heap.restart(ATTRIBUTION_FRAMES)
    deadline = time.monotonic() + ATTRIBUTION_TIME_LIMIT
    snapshots: list[dict[Site, int]] = []
    replayed = 0
    try:
        for exchanges in cycles[: ATTRIBUTION_CYCLES + 1]:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            replayed = await replay_closed(
                target,
                exchanges,
                start=0,
                count=min(len(exchanges), ATTRIBUTION_MAX_REQUESTS),
                concurrency=ATTRIBUTION_CONCURRENCY,
                time_limit=left,
            )
            heap.settle()
            heap.mark()
        snapshots = heap.marked()
    finally:
        heap.restart(heap.frames)
    return site_growth(snapshots), replayed
