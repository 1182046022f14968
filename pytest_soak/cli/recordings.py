"""``pytest-soak inspect``, ``convert`` and ``redact``: a traffic recording looked at, turned
into native JSON Lines (filtered, sampled, redacted), or rewritten without its secrets — the
steps between recording traffic and committing it beside a soak test."""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_soak.cli.common import InputError, plural
from pytest_soak.errors import SoakError
from pytest_soak.traffic import FORMATS, Exchange, Traffic, load_traffic
from pytest_soak.traffic.redaction import Redaction, redact_exchange
from pytest_soak.units import format_duration

#: ``inspect``: endpoints shown by default, kinds of request per endpoint, skipped entries.
TOP_ENDPOINTS = 20
KINDS_SHOWN = 8
SKIPS_SHOWN = 10
#: ``inspect``'s rate table: at most this many rows (buckets are widened to fit).
RATE_ROWS = 24


def add_commands(commands: Any) -> None:
    """``inspect``, ``convert`` and ``redact`` on the ``pytest-soak`` parser's subcommands."""
    formats = ", ".join(FORMATS)
    inspect = commands.add_parser(
        "inspect",
        help="what a traffic recording holds: endpoints, kinds of request, rate, skipped",
        description="Format, exchanges, time span, rate over the recording, endpoint templates "
        "and the kinds of request within each (with counts), and what was skipped and why.",
    )
    inspect.add_argument("file", type=Path, help=f"a traffic recording ({formats})")
    inspect.add_argument("--format", choices=sorted(FORMATS), help="skip detection")
    inspect.add_argument(
        "--top", type=_positive_int, default=TOP_ENDPOINTS, metavar="N",
        help=f"endpoints shown, most requested first (default {TOP_ENDPOINTS})",
    )  # fmt: skip
    inspect.set_defaults(run=_inspect)

    convert = commands.add_parser(
        "convert",
        help="a recording as native JSON Lines, filtered, sampled and (--redact) redacted",
        description="Write a recording as native JSON Lines (what replay_traffic reads fastest "
        "and a reviewer can read): keep endpoints with --include/--exclude, a share with "
        "--sample, and remove secrets with --redact.",
    )
    convert.add_argument("file", type=Path, help=f"a traffic recording ({formats})")
    convert.add_argument("-o", "--output", type=Path, required=True, help="the .jsonl to write")
    convert.add_argument("--format", choices=sorted(FORMATS), help="skip detection")
    convert.add_argument(
        "--include", action="append", default=[], metavar="ENDPOINT",
        help="keep only these endpoints (repeatable): a path or template, optionally with a "
        "method: '/cart/*', 'DELETE /cart/delete/{id}', '/api/**'",
    )  # fmt: skip
    convert.add_argument(
        "--exclude", action="append", default=[], metavar="ENDPOINT",
        help="leave these endpoints out (repeatable), as --include",
    )  # fmt: skip
    convert.add_argument(
        "--sample", type=_share, default=1.0, metavar="SHARE",
        help="keep this share of the exchanges, drawn at random, in order (0 < SHARE <= 1)",
    )  # fmt: skip
    convert.add_argument("--seed", type=int, default=0, help="the --sample draw (default 0)")
    convert.add_argument(
        "--redact", action="store_true", help="remove secrets as `pytest-soak redact` does"
    )
    _redaction_options(convert)
    convert.set_defaults(run=_convert)

    redact = commands.add_parser(
        "redact",
        help="rewrite a recording with its secrets removed (the step before committing one)",
        description="Rewrite a recording as native JSON Lines with secret values replaced by "
        "REDACTED: Authorization, Cookie and Set-Cookie headers, and every header, cookie, "
        "query parameter and JSON or form body field whose name looks secret (token, "
        "password, secret, api key, auth, session, key, …), in requests and recorded "
        "responses; add names with the options below.",
    )
    redact.add_argument("file", type=Path, help=f"a traffic recording ({formats})")
    redact.add_argument(
        "-o", "--output", type=Path, default=None,
        help="where to write (default: beside the file, as NAME.redacted.jsonl); the file "
        "itself may be given: it is replaced atomically",
    )  # fmt: skip
    redact.add_argument("--format", choices=sorted(FORMATS), help="skip detection")
    _redaction_options(redact)
    redact.set_defaults(run=_redact)


def _redaction_options(parser: argparse.ArgumentParser) -> None:
    for flag, what in (
        ("header", "a header"),
        ("cookie", "a cookie"),
        ("query", "a query parameter"),
        ("field", "a JSON or form body field"),
    ):
        parser.add_argument(
            f"--{flag}", action="append", default=[], metavar="NAME", dest=f"redact_{flag}",
            help=f"also redact {what} of this name (repeatable; any case)",
        )  # fmt: skip
    parser.add_argument(
        "--keep-header", action="append", default=[], metavar="NAME",
        help="keep a header redacted whole by default (Cookie, Set-Cookie): then only its "
        "secret cookies are redacted",
    )  # fmt: skip


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _share(text: str) -> float:
    try:
        value = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a share above 0 and at most 1 (e.g. 0.1 or 10%)"
        )
    return value


def _load(args: argparse.Namespace) -> Traffic:
    try:
        return load_traffic(args.file, args.format)
    except SoakError as exc:
        raise InputError(str(exc)) from None


def _redaction(args: argparse.Namespace) -> Redaction:
    return Redaction.of(
        headers=args.redact_header,
        cookies=args.redact_cookie,
        query=args.redact_query,
        fields=args.redact_field,
        keep_headers=args.keep_header,
    )


def _write(path: Path, exchanges: Sequence[Exchange]) -> Path:
    from pytest_soak.files import write_atomic
    from pytest_soak.traffic.jsonl import dumps

    try:
        return write_atomic(path, dumps(exchanges))
    except OSError as exc:
        raise InputError(
            f"{path}: cannot be written ({exc.strerror or exc}); choose another path with -o"
        ) from None


# -- inspect --------------------------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> int:
    traffic = _load(args)
    for line in inspect_lines(traffic, top=args.top):
        print(line)
    return 0


def inspect_lines(traffic: Traffic, *, top: int = TOP_ENDPOINTS) -> list[str]:
    """What ``pytest-soak inspect`` prints for ``traffic``."""
    from pytest_soak.traffic.variations import request_kinds

    count = len(traffic)
    lines = [
        f"{traffic.path}: {traffic.format}, {count:,} {plural(count, 'exchange')}, "
        f"{len(traffic.skipped):,} skipped; {format_duration(traffic.span)} from the first "
        "request to the last",
    ]
    with_response = sum(1 for e in traffic if e.response is not None)
    with_body = sum(1 for e in traffic if e.body)
    lines.append(
        f"recorded: {with_response:,} with their response, {with_body:,} with a request body"
    )
    if traffic.missing:
        lines.append(f"not in this format: {', '.join(traffic.missing)}")
    lines.extend(_recorder_lines(traffic))
    lines.extend(_rate_lines(traffic))
    endpoints = traffic.endpoints()
    kinds: Counter[str] = Counter()
    for labels in request_kinds(traffic.exchanges):
        kinds.update(label for label in labels if " | " in label)
    by_endpoint: dict[str, list[tuple[str, int]]] = {}
    for label, n in kinds.most_common():
        endpoint, _, kind = label.partition(" | ")
        by_endpoint.setdefault(endpoint, []).append((kind, n))
    lines.append("")
    shown = min(top, len(endpoints))
    more = f" (the {shown} most requested shown; --top N for more)"
    more = more if shown < len(endpoints) else ""
    lines.append(f"endpoints: {len(endpoints):,} templates{more}")
    width = len(f"{max(endpoints.values(), default=0):,}")
    for endpoint, n in list(endpoints.items())[:top]:
        lines.append(f"  {n:>{width},}  {endpoint}")
        variations = by_endpoint.get(endpoint, [])
        for kind, k in variations[:KINDS_SHOWN]:
            lines.append(f"  {'':>{width}}    {k:>{width},}  {kind}")
        if len(variations) > KINDS_SHOWN:
            lines.append(f"  {'':>{width}}    … {len(variations) - KINDS_SHOWN} more kinds")
    if traffic.skipped:
        lines.append("")
        reasons = Counter(skip.reason for skip in traffic.skipped)
        lines.append(f"skipped: {len(traffic.skipped):,}, by reason:")
        for reason, n in reasons.most_common(SKIPS_SHOWN):
            first = next(s.source for s in traffic.skipped if s.reason == reason)
            lines.append(f"  {n:,}  {reason} (first: {first})")
        if len(reasons) > SKIPS_SHOWN:
            lines.append(f"  … {len(reasons) - SKIPS_SHOWN} more reasons")
    return lines


def _recorder_lines(traffic: Traffic) -> list[str]:
    """What ``pytest_soak.record`` noted in the file (its ``#`` lines, which the parser skips):
    how it recorded, and whether records were dropped or lost."""
    if traffic.format != "jsonl" or not Path(traffic.path).is_file():
        return []
    started = closed = ""
    dropped = lost = 0
    with open(traffic.path, "rb") as file:
        for raw in file:
            if not raw.startswith(b"# "):
                continue
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("# pytest_soak.record: ") and not started:
                started = line.removeprefix("# pytest_soak.record: ")
            elif line.startswith("# closed at "):
                closed = line.removeprefix("# ")
            elif line.startswith("# dropped "):
                dropped += 1
            elif " lost to recorder errors " in line:
                lost += 1
    lines = [f"recorder: {text}" for text in (started, closed) if text]
    if dropped or lost:
        lines.append(
            f"recorder: records are missing: {dropped} note(s) of records dropped (queue "
            f"full), {lost} of records lost to recorder errors (the '#' lines say when)"
        )
    return lines


def _rate_lines(traffic: Traffic) -> list[str]:
    """Requests over the recording: by hour for a day's recording, by minute or second for a
    shorter one, at most ``RATE_ROWS`` rows (the time from the first request)."""
    span = traffic.span
    if span <= 0:
        return [f"rate: every request at the same instant ({len(traffic):,})"]
    unit, size = (
        ("hour", 3600.0) if span >= 3 * 3600 else ("minute", 60.0) if span >= 180 else ("s", 1.0)
    )
    while span / size >= RATE_ROWS:
        size *= 2
    counts = Counter(int(e.offset // size) for e in traffic)
    rows = int(span // size) + 1
    peak = max(counts.values())
    label = unit if size in (3600.0, 60.0, 1.0) else f"{format_duration(size)}"
    lines = [f"rate: {len(traffic) / span:,.1f} req/s on average; requests per {label}:"]
    for row in range(rows):
        n = counts.get(row, 0)
        bar = "█" * round(30 * n / peak)
        lines.append(f"  {format_duration(row * size):>8}  {n:>8,}  {n / size:>8.1f}/s  {bar}")
    return lines


# -- convert and redact -----------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    traffic = _load(args)
    kept: Sequence[Exchange] = traffic
    if args.include or args.exclude:
        try:
            kept = traffic.filter(include=args.include or None, exclude=args.exclude or None)
        except SoakError as exc:
            raise InputError(str(exc)) from None
    if args.sample < 1:
        draw = random.Random(args.seed)
        kept = [e for e in kept if draw.random() < args.sample]
    if not kept:
        raise InputError(
            f"{args.file}: no exchange is left after the filters ({len(traffic):,} before); "
            "loosen --include/--exclude or raise --sample"
        )
    redaction = _redaction(args)
    redacted = [redact_exchange(e, redaction) for e in kept]
    secrets = sum(1 for before, after in zip(kept, redacted, strict=True) if before != after)
    written = _write(args.output, redacted if args.redact else list(kept))
    print(f"wrote {len(kept):,} of {len(traffic):,} exchanges to {written}")
    if args.redact:
        print(f"redacted: {secrets:,} {plural(secrets, 'exchange')} had secrets")
    elif secrets:
        print(
            f"not redacted: {secrets:,} {plural(secrets, 'exchange')} hold secrets "
            "(Authorization, cookies, tokens…); add --redact before committing the file"
        )
    return 0


def _redact(args: argparse.Namespace) -> int:
    traffic = _load(args)
    redaction = _redaction(args)
    redacted = [redact_exchange(e, redaction) for e in traffic]
    changed = sum(1 for before, after in zip(traffic, redacted, strict=True) if before != after)
    output = args.output or args.file.with_name(_stem(args.file) + ".redacted.jsonl")
    written = _write(output, redacted)
    print(
        f"redacted {changed:,} of {len(traffic):,} exchanges (secrets replaced by REDACTED); "
        f"wrote {written}"
    )
    if traffic.skipped:
        print(f"left out: {len(traffic.skipped):,} skipped entries (pytest-soak inspect says why)")
    return 0


def _stem(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    return name.rsplit(".", 1)[0] if "." in name else name
