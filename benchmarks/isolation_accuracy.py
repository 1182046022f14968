"""Does leak isolation name the right endpoint on a real app? Injects a leak into ONE endpoint of
Datasette, runs the soak that finds it and then the isolation, again and again, and counts.

    pip install -e '.[test,bench]'      # datasette
    python benchmarks/isolation_accuracy.py [--runs 10] [--duration 60] [--culprit NAME ...]
        [--leak-bytes 4096] [--recording-factor 3] [--out docs/isolation-accuracy.txt]

Every run is what ``pytest --soak-isolate`` does in quick mode: one soak run (``spike-at-8am`` at
peak 150 req/s in ``--duration`` seconds) of a Datasette recording (34 endpoint templates: HTML,
JSON and CSV table pages, row pages in three formats, sorting, filters, facets, SQL queries, the
instance's ``/-/`` endpoints) ``--recording-factor`` times longer than the run, against Datasette
in process, with a wrapper that keeps ``--leak-bytes`` per request of the culprit's URL shape;
then, when the verdict is ``leak``, ``pytest_soak.isolation.isolate``. Culprits rotate over
``CULPRITS`` (a frequent JSON row page, a rare CSV export, a rare ``/-/`` endpoint, an HTML row
page, and the requests of one endpoint that carry one query parameter, in two query shapes),
and each run draws a fresh recording (seed = run index).

Printed per run and in total: whether the right endpoint was named (and, for the parameter
culprit, the right variation), whether a healthy endpoint ever entered the repro file, replays
used, isolation wall time and the true wall time of each replay. Exit status 0: a measurement.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import healthy_apps  # noqa: E402
from transcript import Transcript  # noqa: E402

from pytest_soak.engine import run_soak  # noqa: E402
from pytest_soak.isolation import isolate  # noqa: E402
from pytest_soak.settings import resolve  # noqa: E402
from pytest_soak.traffic import Exchange, Traffic, load_traffic  # noqa: E402

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
DB = healthy_apps.DATASETTE_DB_NAME
ROWS = healthy_apps.DATASETTE_ROWS


# --- the recording ------------------------------------------------------------------------------


def datasette_recording(length: int, seed: int) -> Traffic:
    """Datasette traffic of 34 endpoint templates (``GET /shop/orders/{id}.json`` ...), drawn by
    weight; every table has its HTML, JSON and CSV page and its row page in three formats."""
    rng = random.Random(seed)

    def pid() -> int:
        return rng.randint(1, ROWS["products"])

    def cid() -> int:
        return rng.randint(1, ROWS["customers"])

    def oid() -> int:
        return rng.randint(1, ROWS["orders"])

    def kid() -> int:
        return rng.randint(1, ROWS["categories"])

    def size() -> int:
        return rng.choice((5, 10, 20, 30, 50))

    def country() -> str:
        return rng.choice(healthy_apps.COUNTRIES)

    def products_json() -> str:
        """Five query shapes; two of them sort (``_sort`` with ``_size``, or with ``_next``)."""
        shape = rng.randrange(5)
        if shape == 0:
            return f"/{DB}/products.json?_sort=price&_size={size()}"
        if shape == 1:
            return f"/{DB}/products.json?_sort=name&_next={rng.randint(1, 1900)}"
        if shape == 2:
            return f"/{DB}/products.json?_size={size()}&_next={rng.randint(1, 1900)}"
        if shape == 3:
            return f"/{DB}/products.json?price__gt={rng.randint(1, 499)}&_size=10"
        return f"/{DB}/products.json?_col=name&_col=price&_size=15"

    shapes: list[tuple[float, Callable[[], str]]] = [
        (1, lambda: "/"),
        (1, lambda: f"/{DB}"),
        (2, lambda: f"/{DB}.json?sql=select+id,+quantity+from+orders+where+quantity+%3E+:n"
                    f"+limit+20&n={rng.randint(1, 9)}"),
        (1, lambda: f"/{DB}.csv?sql=select+country,+count(*)+from+customers+group+by+country"),
        (2, lambda: f"/{DB}/products?_size=20"),
        (10, products_json),
        (2, lambda: f"/{DB}/products.csv?_size=50&category_id={kid()}"),
        (3, lambda: f"/{DB}/products/{pid()}"),
        (8, lambda: f"/{DB}/products/{pid()}.json"),
        (1, lambda: f"/{DB}/products/{pid()}.csv"),
        (2, lambda: f"/{DB}/customers?country={country()}&_size=10"),
        (4, lambda: f"/{DB}/customers.json?country={country()}&_shape=array&_size=20"),
        (1, lambda: f"/{DB}/customers.csv?city={rng.choice(healthy_apps.CITIES)}"),
        (3, lambda: f"/{DB}/customers/{cid()}"),
        (8, lambda: f"/{DB}/customers/{cid()}.json"),
        (2, lambda: f"/{DB}/orders?product_id={pid()}&_size=10"),
        (5, lambda: f"/{DB}/orders.json?customer_id={cid()}"),
        (1, lambda: f"/{DB}/orders.csv?status={rng.choice(healthy_apps.ORDER_STATUSES)}&_size=20"),
        (2, lambda: f"/{DB}/orders/{oid()}"),
        (6, lambda: f"/{DB}/orders/{oid()}.json"),
        (1, lambda: f"/{DB}/categories"),
        (2, lambda: f"/{DB}/categories.json"),
        (1, lambda: f"/{DB}/categories.csv"),
        (1, lambda: f"/{DB}/categories/{kid()}"),
        (1, lambda: f"/{DB}/categories/{kid()}.json"),
        (2, lambda: "/-/versions.json"),
        (1, lambda: "/-/versions"),
        (1, lambda: "/-/databases.json"),
        (1, lambda: "/-/plugins.json"),
        (1, lambda: "/-/metadata.json"),
        (1, lambda: "/-/settings.json"),
        (1, lambda: "/-/threads.json"),
        (1, lambda: "/-/actor.json"),
        (1, lambda: "/-/static/app.css"),
    ]  # fmt: skip
    weights = [weight for weight, _ in shapes]
    makers = [make for _, make in shapes]
    headers = (("user-agent", BROWSER), ("accept", "*/*"))
    clock = 0.0
    exchanges = []
    for _ in range(length):
        clock += rng.expovariate(40.0)
        exchanges.append(
            Exchange(round(clock, 4), "GET", rng.choices(makers, weights)[0](), headers=headers)
        )
    return Traffic(tuple(exchanges), path=f"<datasette recording seed={seed}>")


# --- the injected leak -------------------------------------------------------------------------


@dataclass(frozen=True)
class Culprit:
    """The requests that leak: an endpoint template, and optionally a query parameter they carry
    (then the right answer is the endpoint *and* the variation ``query <parameter>=*``)."""

    name: str
    endpoint: str
    parameter: str | None = None

    def leaks(self, exchange: Exchange) -> bool:
        if exchange.endpoint != self.endpoint:
            return False
        return self.parameter is None or self.parameter in dict(parse_qsl(exchange.query))


CULPRITS = {
    c.name: c
    for c in (
        Culprit("customer-row-json", f"GET /{DB}/customers/{{id}}.json"),
        Culprit("orders-csv", f"GET /{DB}/orders.csv"),
        Culprit("threads", "GET /-/threads.json"),
        Culprit("category-row-html", f"GET /{DB}/categories/{{id}}"),
        Culprit("products-sorted", f"GET /{DB}/products.json", parameter="_sort"),
    )
}


class LeakyApp:
    """An ASGI wrapper that keeps ``leak_bytes`` for every request the culprit names: the leak
    lives in one endpoint of an otherwise healthy real app."""

    def __init__(self, app: Any, culprit: Culprit, leak_bytes: int) -> None:
        self.app = app
        self.culprit = culprit
        self.leak_bytes = leak_bytes
        self.kept: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            if self.culprit.leaks(Exchange(0.0, scope["method"], target)):
                self.kept.append(os.urandom(self.leak_bytes))
        await self.app(scope, receive, send)


# --- one run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    run: int
    culprit: str
    verdict: str
    status: str = ""
    named: tuple[str, ...] = ()
    variation: str = ""
    right: bool = False
    right_variation: bool | None = None
    repro_endpoints: tuple[str, ...] = ()
    healthy_in_repro: bool = False
    replays: int = 0
    seconds: float = 0.0
    replay_seconds: tuple[float, ...] = ()
    soak_seconds: float = 0.0
    summary: str = ""
    error: str = ""


def one_run(
    index: int, culprit: Culprit, args: argparse.Namespace, db: Path, folder: Path
) -> Outcome:
    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": args.peak_rps, "seed": index},
        mode="quick",
        duration_override=args.duration,
    )
    planned = settings.profile.timeline(settings.peak_rps, settings.duration).request_count
    traffic = datasette_recording(int(planned * args.recording_factor), seed=index)
    app = healthy_apps.datasette_app(str(db))
    target = LeakyApp(app, culprit, args.leak_bytes)
    outcome = Outcome(index, culprit.name, verdict="?")
    try:
        started = time.monotonic()
        result = run_soak(target, traffic, settings, test_id=f"run {index}", check=False)
        outcome.soak_seconds = time.monotonic() - started
        outcome.verdict = result.verdict
        if result.verdict != "leak":
            outcome.summary = result.reason
            return outcome
        repro = folder / f"run{index}.leak-repro.jsonl"
        report = isolate(
            target, traffic, settings, result, test_id=f"run {index}", repro_path=repro
        )
        outcome.status = report["status"]
        outcome.summary = report["summary"]
        outcome.named = tuple(c["endpoint"] for c in report["culprits"])
        variations = [c["variation"]["label"] for c in report["culprits"] if c["variation"]]
        outcome.variation = "; ".join(variations)
        outcome.right = outcome.named == (culprit.endpoint,)
        if culprit.parameter is not None:
            outcome.right_variation = any(
                label.startswith(f"query {culprit.parameter}=*") for label in variations
            )
        if report.get("repro"):
            written = load_traffic(Path(report["repro"]["path"]))
            outcome.repro_endpoints = tuple(sorted({e.endpoint for e in written}))
            outcome.healthy_in_repro = any(not culprit.leaks(e) for e in written)
        outcome.replays = int(report["replays"])
        outcome.seconds = float(report["seconds"])
        outcome.replay_seconds = tuple(float(p["seconds"]) for p in report["probes"])
        if args.verbose:
            from pytest_soak.report.failure import render_isolation

            print("\n".join(render_isolation(report)), flush=True)
            for trial in report["probes"]:
                print(
                    f"    {trial['number']:>2}. {trial['verdict']:<12} {trial['cycle_requests']:>5}/cycle "
                    f"planned {trial['planned_seconds']:.1f}s took {trial['seconds']:.1f}s: {trial['reason'][:110]}",
                    flush=True,
                )
    except Exception as exc:  # a measurement: record it, go on
        outcome.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        healthy_apps.close_datasette(app)
        del target, app
        gc.collect()
    return outcome


# --- main -------------------------------------------------------------------------------------


def describe(outcome: Outcome) -> str:
    if outcome.error:
        return f"run {outcome.run:>2} {outcome.culprit:<18} ERROR {outcome.error}"
    if outcome.verdict != "leak":
        return f"run {outcome.run:>2} {outcome.culprit:<18} soak verdict {outcome.verdict}: {outcome.summary}"
    seconds = outcome.replay_seconds
    spread = f"{min(seconds):.1f}-{max(seconds):.1f}s" if seconds else "-"
    variation = ""
    if outcome.right_variation is not None:
        variation = f" variation {'right' if outcome.right_variation else 'WRONG'} ({outcome.variation or 'none'})"
    return (
        f"run {outcome.run:>2} {outcome.culprit:<18} {'RIGHT' if outcome.right else 'wrong'} "
        f"status={outcome.status} named={list(outcome.named)}{variation} "
        f"healthy-in-repro={'YES' if outcome.healthy_in_repro else 'no'} replays={outcome.replays} "
        f"isolation={outcome.seconds:.0f}s (replays {spread}) soak={outcome.soak_seconds:.0f}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--duration", type=float, default=60.0, help="soak wall time (quick: 60)")
    parser.add_argument("--peak-rps", type=float, default=150.0)
    parser.add_argument("--leak-bytes", type=int, default=32768)
    parser.add_argument("--recording-factor", type=float, default=3.0)
    parser.add_argument("--culprit", action="append", choices=sorted(CULPRITS))
    parser.add_argument("--first-run", type=int, default=0, help="index of the first run (seed)")
    parser.add_argument("--out", type=Path, help="also write the lines printed to this file")
    parser.add_argument("--verbose", action="store_true", help="print each isolation's report")
    args = parser.parse_args(argv)
    names = args.culprit or list(CULPRITS)
    transcript = Transcript()
    say = transcript.say

    say(
        f"isolation accuracy on Datasette {_datasette_version()}: {args.runs} runs, quick mode "
        f"{args.duration:g}s spike-at-8am peak {args.peak_rps:g}, recording x{args.recording_factor:g}, "
        f"leak {args.leak_bytes} B per culprit request"
    )
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="isolation-accuracy-") as tmp:
        folder = Path(tmp)
        db = healthy_apps.make_datasette_db(folder / f"{DB}.db")
        templates = len(datasette_recording(5000, seed=0).endpoints())
        say(f"{templates} endpoint templates in the recording")
        for k in range(args.first_run, args.first_run + args.runs):
            outcome = one_run(k, CULPRITS[names[k % len(names)]], args, db, folder)
            outcomes.append(outcome)
            say(describe(outcome))
    isolated = [o for o in outcomes if o.verdict == "leak" and not o.error]
    right = sum(o.right for o in isolated)
    variations = [o for o in isolated if o.right_variation is not None]
    replay_times = [s for o in isolated for s in o.replay_seconds]
    say("")
    say(f"soak verdict leak: {len(isolated)} of {len(outcomes)} runs")
    say(f"right endpoint named (and nothing else): {right} of {len(isolated)}")
    if variations:
        say(
            f"right variation (query parameter) named: {sum(bool(o.right_variation) for o in variations)} "
            f"of {len(variations)}"
        )
    say(f"healthy endpoint in a repro file: {sum(o.healthy_in_repro for o in isolated)} runs")
    say(f"statuses: {_counts(o.status for o in isolated)}")
    if isolated:
        say(
            f"replays per isolation: median {statistics.median(o.replays for o in isolated):g}, "
            f"max {max(o.replays for o in isolated)}; isolation wall time: median "
            f"{statistics.median(o.seconds for o in isolated):.0f}s, max {max(o.seconds for o in isolated):.0f}s"
        )
    if replay_times:
        say(
            f"true replay wall times: median {statistics.median(replay_times):.1f}s, "
            f"{min(replay_times):.1f}-{max(replay_times):.1f}s"
        )
    transcript.write(args.out)
    return 0


def _counts(values: Any) -> str:
    counted: dict[str, int] = {}
    for value in values:
        counted[value] = counted.get(value, 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(counted.items())) or "-"


def _datasette_version() -> str:
    from datasette.version import __version__

    return str(__version__)


if __name__ == "__main__":
    raise SystemExit(main())
