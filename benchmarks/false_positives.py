"""How often does the verdict call a healthy service leaky? Runs healthy services through the
real verdict, again and again, and counts what it says.

    pip install -e '.[test,bench]'      # starlette, uvicorn, datasette
    python benchmarks/false_positives.py [--runs 10] [--duration 60] [--scenario NAME ...]
        [--in-process-only | --served-only] [--out docs/false-positives.txt]

Every run is one full soak run as a user's test makes it: ``spike-at-8am`` at peak 150 req/s
compressed into ``--duration`` seconds (quick mode: 60 s, about 2,700 requests), against a
service from ``healthy_apps.py``, in process (the ASGI app object; the traced Python heap is
judged) and served (the same app under uvicorn in its own process; its USS is judged). Recordings
are sized from the run's planned request count ("20x" = a recording 20 times longer than the
run). Each run index draws a fresh recording (seed = run index).

"leak" is a false positive, and so are "regression" and "error" (they fail the test too);
"suspicious" and "inconclusive" pass but are counted. Exit status 0 always: a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import healthy_apps  # noqa: E402

from pytest_soak.driver.targets import ServedProcess  # noqa: E402
from pytest_soak.engine import run_soak  # noqa: E402
from pytest_soak.files import write_atomic  # noqa: E402
from pytest_soak.settings import resolve  # noqa: E402
from pytest_soak.traffic import Exchange, Traffic  # noqa: E402

VERDICTS = ("leak", "regression", "error", "suspicious", "inconclusive", "ok")
FAILING = ("leak", "regression", "error")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


# --- recordings -------------------------------------------------------------------------------


def _offsets(rng: random.Random) -> Callable[[], float]:
    """Recorded offsets: Poisson arrivals at about 40 req/s (only ``recorded`` replay uses them)."""
    clock = [0.0]

    def advance() -> float:
        clock[0] += rng.expovariate(40.0)
        return round(clock[0], 4)

    return advance


class _Ids:
    """Ids as production sees them: a popular head that repeats, a long tail seen once."""

    def __init__(self, rng: random.Random, popular: int, head_share: float) -> None:
        self.rng, self.popular, self.head_share = rng, popular, head_share

    def __call__(self) -> int:
        if self.rng.random() < self.head_share:
            return 1 + int(self.popular * self.rng.random() ** 2)  # skewed towards the top
        return self.rng.randrange(self.popular + 1, 50_000_000)


def shop_recording(length: int, seed: int) -> Traffic:
    """The caches-filling shop: pages, product JSON, searches, carts (GET and POST) and
    recommendations, by sessions of a few to a few dozen requests (``session`` cookie, or the
    query parameter for API clients); 80% of the ids come from a long tail, so one pass over a
    long recording keeps filling the caches."""
    rng = random.Random(seed)
    ids = _Ids(rng, popular=300, head_share=0.2)
    at = _offsets(rng)
    active: list[list[Any]] = []  # [session id, requests left, uses cookie]
    exchanges = []
    for _ in range(length):
        if not active or rng.random() < 0.12 or len(active) < 20:
            active.append([f"s{rng.getrandbits(64):016x}", rng.randint(2, 40), rng.random() < 0.7])
        session = rng.choice(active)
        sid, cookie = session[0], session[2]
        session[1] -= 1
        if session[1] <= 0:
            active.remove(session)
        headers: list[tuple[str, str]] = [("user-agent", BROWSER), ("accept", "*/*")]
        query = ""
        if cookie:
            headers.append(("cookie", f"session={sid}; theme=light"))
        else:
            query = f"session={sid}"
        draw = rng.random()
        method, body = "GET", b""
        if draw < 0.30:
            path = f"/page/{ids()}"
        elif draw < 0.55:
            path = f"/product/{ids()}.json"
        elif draw < 0.70:
            words = " ".join(rng.sample(healthy_apps.WORDS, rng.randint(1, 3)))
            path = f"/search?q={words.replace(' ', '+')}&page={rng.randint(1, 6)}"
        elif draw < 0.80:
            path = f"/cart/{sid}"
        elif draw < 0.88:
            path, method = f"/cart/{sid}/add", "POST"
            body = f'{{"item": {ids()}, "quantity": {rng.randint(1, 4)}}}'.encode()
            headers.append(("content-type", "application/json"))
        elif draw < 0.97:
            path = f"/api/recommendations?user={sid}"
        else:
            path = "/health"
        if query:
            path += ("&" if "?" in path else "?") + query
        exchanges.append(Exchange(at(), method, path, headers=tuple(headers), body=body))
    return Traffic(tuple(exchanges), path=f"<shop recording seed={seed}>")


def item_recording(length: int, seed: int) -> Traffic:
    """``GET /item/{id}`` with ids from a popular head and a long tail (late-gc, spike-pool)."""
    rng = random.Random(seed)
    ids, at = _Ids(rng, popular=500, head_share=0.5), _offsets(rng)
    return Traffic(
        tuple(Exchange(at(), "GET", f"/item/i{ids()}") for _ in range(length)),
        path=f"<item recording seed={seed}>",
    )


def reports_recording(length: int, seed: int) -> Traffic:
    """Exports (large buffers), aggregations (many small objects) and cheap item reads."""
    rng = random.Random(seed)
    ids, at = _Ids(rng, popular=500, head_share=0.5), _offsets(rng)
    exchanges = []
    for _ in range(length):
        draw = rng.random()
        if draw < 0.25:
            path = f"/export/r{ids()}.csv"
        elif draw < 0.50:
            path = f"/aggregate/k{ids()}"
        else:
            path = f"/item/i{ids()}"
        exchanges.append(Exchange(at(), "GET", path))
    return Traffic(tuple(exchanges), path=f"<reports recording seed={seed}>")


def datasette_recording(length: int, seed: int) -> Traffic:
    """Datasette as people and scripts use it: 33 URL shapes (HTML, JSON and CSV table pages,
    row pages, sorting, page sizes, filters, facets, foreign-key labels, pagination, SQL
    queries, the instance's ``/-/`` endpoints), JSON-heavy like an API's traffic."""
    rng = random.Random(seed)
    rows, db = healthy_apps.DATASETTE_ROWS, healthy_apps.DATASETTE_DB_NAME
    at = _offsets(rng)

    def pid() -> int:
        return rng.randint(1, rows["products"])

    def cid() -> int:
        return rng.randint(1, rows["customers"])

    def oid() -> int:
        return rng.randint(1, rows["orders"])

    def size() -> int:
        return rng.choice((5, 10, 20, 30, 50))

    shapes: list[tuple[float, Callable[[], str]]] = [
        (1, lambda: "/"),
        (1, lambda: f"/{db}"),
        (2, lambda: f"/{db}.json"),
        (2, lambda: f"/{db}/products?_size=20"),
        (5, lambda: f"/{db}/products.json?_size={size()}&_next={rng.randint(1, 1900)}"),
        (3, lambda: f"/{db}/products.csv?_size=50&category_id={rng.randint(1, 12)}"),
        (4, lambda: f"/{db}/products/{pid()}"),
        (10, lambda: f"/{db}/products/{pid()}.json"),
        (3, lambda: f"/{db}/customers/{cid()}"),
        (8, lambda: f"/{db}/customers/{cid()}.json"),
        (8, lambda: f"/{db}/orders/{oid()}.json"),
        (5, lambda: f"/{db}/orders.json?customer_id={cid()}"),
        (2, lambda: f"/{db}/orders?product_id={pid()}&_size=10"),
        (3, lambda: f"/{db}/products.json?_sort=price&_size={size()}"),
        (3, lambda: f"/{db}/products.json?_sort_desc=stock&_size={size()}"),
        (2, lambda: f"/{db}/products?_facet=category_id&_size=10"),
        (2, lambda: f"/{db}/orders.json?_facet=status&_size=5&quantity={rng.randint(1, 9)}"),
        (3, lambda: f"/{db}/customers.json?country={rng.choice(healthy_apps.COUNTRIES)}"
                    "&_shape=array&_size=20"),
        (2, lambda: f"/{db}/customers.csv?city={rng.choice(healthy_apps.CITIES)}"),
        (3, lambda: f"/{db}/products.json?price__gt={rng.randint(1, 499)}&_size=10"),
        (3, lambda: f"/{db}/customers.json?name__contains={rng.choice(healthy_apps.WORDS)}"
                    "&_size=10"),
        (3, lambda: f"/{db}.json?sql=select+id,+quantity,+status+from+orders+where+quantity"
                    f"+%3E+:n+order+by+id+limit+20&n={rng.randint(1, 9)}"),
        (1, lambda: f"/{db}?sql=select+country,+count(*)+from+customers+group+by+country"),
        (2, lambda: f"/{db}/orders.json?_labels=on&_size=10&_next={rng.randint(1, 7900)}"),
        (3, lambda: f"/{db}/products.json?_col=name&_col=price&_size=15"),
        (2, lambda: f"/{db}/orders.json?created__gte=2026-{rng.randint(1, 12):02d}-01"
                    "&_sort=created&_size=20"),
        (2, lambda: f"/{db}/categories.json"),
        (1, lambda: f"/{db}/categories/{rng.randint(1, 12)}"),
        (2, lambda: "/-/versions.json"),
        (1, lambda: "/-/databases.json"),
        (1, lambda: "/-/plugins.json"),
        (1, lambda: "/-/metadata.json"),
        (1, lambda: "/-/settings.json"),
    ]  # fmt: skip
    weights = [weight for weight, _ in shapes]
    makers = [make for _, make in shapes]
    headers = (("user-agent", BROWSER), ("accept", "*/*"))
    return Traffic(
        tuple(
            Exchange(at(), "GET", rng.choices(makers, weights)[0](), headers=headers)
            for _ in range(length)
        ),
        path=f"<datasette recording seed={seed}>",
    )


# --- scenarios --------------------------------------------------------------------------------


@dataclass
class Context:
    """What scenarios share in one invocation: a temporary folder (the Datasette database)."""

    folder: Path
    made: dict[str, Path] = field(default_factory=dict)

    def datasette_db(self) -> Path:
        if "db" not in self.made:
            self.made["db"] = healthy_apps.make_datasette_db(self.folder / "shop.db")
        return self.made["db"]


@dataclass(frozen=True)
class Scenario:
    name: str
    measures: str
    recordings: tuple[float, ...]  # recording length / the run's planned request count
    traffic: Callable[[int, int], Traffic]  # (length, seed)
    app: str  # key of healthy_apps.APPS
    in_process_config: dict[str, Any] = field(default_factory=dict)
    served_config: dict[str, str] = field(default_factory=dict)
    needs_db: bool = False
    ready: str = "/health"


SCENARIOS = (
    Scenario(
        "caches-filling",
        "page LRU (4,000 x ~1 KiB) + session table (3,000), filled by a long recording",
        (2.0, 5.0, 20.0),
        shop_recording,
        "caches-filling",
        {"pages": 4000, "sessions": 3000},
        {"HEALTHY_PAGES": "4000", "HEALTHY_SESSIONS": "3000"},
    ),
    Scenario(
        "late-gc",
        "reference cycles per request; gc off in process, gen0 threshold 20,000 served",
        (1.0,),
        item_recording,
        "late-gc",
        {"gc_mode": "disabled"},
        {"HEALTHY_GC_MODE": "threshold", "HEALTHY_GEN0": "20000"},
    ),
    Scenario(
        "spike-pool",
        "256 KiB buffer per request in flight, pooled at the spike's high-water, never shrunk",
        (1.0,),
        item_recording,
        "spike-pool",
    ),
    Scenario(
        "allocator-high-water",
        "256 KiB-1 MiB buffers and 5k-30k small objects per request, freed",
        (1.0,),
        reports_recording,
        "allocator-high-water",
    ),
    Scenario(
        "datasette",
        "Datasette 4-table SQLite db (13k rows), 33 URL shapes",
        (5.0,),
        datasette_recording,
        "datasette",
        needs_db=True,
        ready="/-/versions.json",
    ),
)


def in_process_target(scenario: Scenario, context: Context) -> tuple[Any, Callable[[], None]]:
    config = dict(scenario.in_process_config)
    if scenario.needs_db:
        config["db_path"] = str(context.datasette_db())
    app = healthy_apps.APPS[scenario.app](**config)
    if scenario.app == "datasette":
        return app, lambda: healthy_apps.close_datasette(app)
    return app, lambda: None


def served_target(scenario: Scenario, context: Context) -> tuple[Any, Callable[[], None]]:
    env = {"HEALTHY_APP": scenario.app, **scenario.served_config}
    if scenario.needs_db:
        env["HEALTHY_DB_PATH"] = str(context.datasette_db())
    served = ServedProcess(
        [sys.executable, "-m", "uvicorn", "healthy_apps:served", "--factory", "--port", "{port}",
         "--log-level", "warning"],
        env=env, ready=scenario.ready, cwd=HERE,
    )  # fmt: skip
    return served, served.stop


TARGETS: dict[str, Callable[[Scenario, Context], tuple[Any, Callable[[], None]]]] = {
    "in-process": in_process_target,
    "served": served_target,
}


# --- running and reporting --------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    target: str
    recording: float
    verdict: str
    slope: float
    growth: float
    seconds: float
    reason: str
    sent: int = 0
    errors: int = 0
    #: Each judged metric's own verdict ("service_heap=ok uss=ok"), and for a failing verdict
    #: the floors behind it (the agent's parts and USS, KiB at each checkpoint).
    judged: str = ""
    evidence: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scenario, self.target, f"{self.recording:g}x")


def run_one(
    scenario: Scenario, target_kind: str, recording: float, seed: int, planned: int,
    settings: Any, context: Context,
) -> Outcome:  # fmt: skip
    started = time.monotonic()
    traffic = scenario.traffic(max(1, round(planned * recording)), seed)
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    try:
        target, cleanup = TARGETS[target_kind](scenario, context)
        result = run_soak(target, traffic, settings, check=False)
    except Exception as exc:  # a crash of the scenario (or the harness): counted as "error"
        traceback.print_exc(file=sys.stderr)
        return Outcome(
            scenario.name, target_kind, recording, "error", 0.0, 0.0,
            time.monotonic() - started, f"crashed: {type(exc).__name__}: {exc}",
        )  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            cleanup()
        gc.collect()
    primary = result.analysis.primary if result.analysis is not None else None
    if result.verdict == "error" and getattr(result, "service_output", ""):
        print(result.service_output[-2000:], file=sys.stderr)
    return Outcome(
        scenario.name,
        target_kind,
        recording,
        result.verdict,
        primary.slope if primary else 0.0,
        primary.growth if primary else 0.0,
        time.monotonic() - started,
        " ".join(result.reason.split()),
        sent=result.run.sent,
        errors=int(getattr(result.run, "errors", 0) or 0),
        judged=judged(result),
        evidence=evidence(result) if result.verdict in FAILING else (),
    )


#: The floors shown for a failing verdict: the agent's judged sum, its two parts, and USS.
EVIDENCE_METRICS = ("service_heap", "pymalloc", "malloc", "uss")


def judged(result: Any) -> str:
    if result.analysis is None:
        return ""
    return " ".join(f"{j.metric}={j.verdict}" for j in result.analysis.judgements)


def evidence(result: Any) -> tuple[str, ...]:
    """Per judgement: its floors and deltas; then every checkpoint's floors of
    ``EVIDENCE_METRICS`` in KiB (which part of the agent's sum moved, and when)."""
    rows: list[str] = []
    for j in result.analysis.judgements if result.analysis is not None else ():
        rows.append(
            f"#   {j.metric}: {j.verdict}, slope {j.slope:.1f}/req, growth {j.growth:.0f}, "
            f"threshold {j.threshold:.0f}, step noise {j.step_noise:.0f}, p {j.p_value:.2g}, "
            f"grown {j.cycles_grown}/{len(j.deltas)}; deltas "
            + " ".join(f"{d:+.0f}" for d in j.deltas)
        )
    for found in result.analysis.sites if result.analysis is not None else ():
        rows.append(
            f"#   site {found.site}: +{found.growth} B per attribution cycle, {found.size} B held"
        )
    for index, floor in enumerate(getattr(result, "floors", None) or ()):
        rows.append(
            f"#   floor {index:>2}: "
            + "  ".join(
                f"{name} {floor[name] / 1024:.1f}" for name in EVIDENCE_METRICS if name in floor
            )
        )
    return tuple(rows)


HEADER = (
    f"{'scenario':<22}{'target':<12}{'rec':>5}  {'verdict':<13}{'B/request':>10}"
    f"{'growth':>13}{'wall':>8}{'sent':>7}{'errs':>6}  reason"
)


def line(outcome: Outcome) -> str:
    return "\n".join(
        (
            f"{outcome.scenario:<22}{outcome.target:<12}{outcome.key[2]:>5}  {outcome.verdict:<13}"
            f"{outcome.slope:>10.1f}{outcome.growth / 1024:>9.1f} KiB{outcome.seconds:>7.1f}s"
            f"{outcome.sent:>7}{outcome.errors:>6}  [{outcome.judged}] {outcome.reason[:100]}",
            *outcome.evidence,
        )
    )


def summary(outcomes: list[Outcome]) -> list[str]:
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.key, Counter())[outcome.verdict] += 1
    rows = [
        f"{'scenario':<22}{'target':<12}{'rec':>5}{'runs':>6}"
        + "".join(f"{v:>{max(len(v) + 2, 6)}}" for v in VERDICTS)
        + f"{'FP (leak)':>11}{'failing':>9}"
    ]
    totals: Counter[str] = Counter()
    for key, counts in groups.items():
        totals.update(counts)
        rows.append(_summary_row(key, counts))
    if len(groups) > 1:
        rows.append(_summary_row(("all", "", ""), totals))
    return rows


def _summary_row(key: tuple[str, str, str], counts: Counter[str]) -> str:
    runs = sum(counts.values())
    failing = sum(counts[v] for v in FAILING)
    return (
        f"{key[0]:<22}{key[1]:<12}{key[2]:>5}{runs:>6}"
        + "".join(f"{counts[v]:>{max(len(v) + 2, 6)}}" for v in VERDICTS)
        + f"{counts['leak'] / runs:>11.0%}{failing / runs:>9.0%}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--runs", type=int, default=10, help="runs of each scenario and target")
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds of one run")
    parser.add_argument(
        "--scenario", nargs="+", action="extend", choices=[s.name for s in SCENARIOS],
        default=None, help="only these scenarios (default: all)",
    )  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--in-process-only", action="store_true")
    where.add_argument("--served-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the output here")
    args = parser.parse_args(argv)

    settings = resolve(
        {"profile": "spike-at-8am", "peak_rps": 150}, mode="quick", duration_override=args.duration
    )
    planned = settings.profile.timeline(settings.peak_rps, settings.duration).request_count
    scenarios = [s for s in SCENARIOS if args.scenario is None or s.name in args.scenario]
    targets = [
        kind
        for kind in TARGETS
        if not (args.in_process_only and kind == "served")
        and not (args.served_only and kind == "in-process")
    ]
    lines = [
        f"# false_positives.py --runs {args.runs} --duration {args.duration:g}"
        f"  ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]})",
        f"# spike-at-8am, peak 150 req/s, quick mode: {planned} requests planned per run;"
        " 'rec' = recording length / planned requests",
    ]
    for scenario in scenarios:
        lines.append(f"#   {scenario.name}: {scenario.measures}")
    lines.append(HEADER)
    for text in lines:
        print(text, flush=True)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-false-positives-") as folder:
        context = Context(Path(folder))
        try:
            for seed in range(args.runs):
                for scenario in scenarios:
                    for recording in scenario.recordings:
                        for kind in targets:
                            outcome = run_one(
                                scenario, kind, recording, seed, planned, settings, context
                            )
                            outcomes.append(outcome)
                            lines.append(line(outcome))
                            print(lines[-1], flush=True)
        except KeyboardInterrupt:
            lines.append("# interrupted: the summary counts the runs that finished")
            print(lines[-1], flush=True)
    tail = [
        "",
        f"# summary: {len(outcomes)} runs in {(time.monotonic() - started) / 60:.1f} min;"
        " FP = leak / runs; failing = (leak + regression + error) / runs",
        *(summary(outcomes) if outcomes else ["(no run finished)"]),
    ]
    lines.extend(tail)
    print("\n".join(tail), flush=True)
    if args.out:
        write_atomic(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
    sys.exit(0)
