"""Which allocation sites kept memory from every cycle of the attribution pass (its snapshots
are taken by ``attribution.attribute``). Pure functions."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_soak.probes import Site


@dataclass(frozen=True)
class SiteGrowth:
    site: Site
    growth: int  # bytes it retained per attribution cycle (the smaller of the cycles' growth)
    size: int  # bytes it held at the end of the attribution pass


def site_growth(snapshots: Sequence[Mapping[Site, int]], top: int = 5) -> tuple[SiteGrowth, ...]:
    """The allocation sites that retained more in every interval between ``snapshots`` (taken
    after identical cycles), ranked by the smallest of those growths: what a site keeps from
    every cycle, not what it took once (an import, a cache filling)."""
    if len(snapshots) < 2:
        return ()
    last = snapshots[-1]
    grown = []
    for site, size in last.items():
        steps = [
            after.get(site, 0) - before.get(site, 0)
            for before, after in itertools.pairwise(snapshots)
        ]
        retained = min(steps)
        if retained > 0:
            grown.append(SiteGrowth(site, retained, size))
    grown.sort(key=lambda g: g.growth, reverse=True)
    return tuple(grown[:top])
