"""Built-in probes that read one figure from an endpoint of the service: ``prometheus`` (a
sample of its Prometheus text exposition) and ``http_json`` (a number in a JSON document).
Envoy's admin has a probe of its own (``probes/envoy.py``).

``probes=[prometheus("http://127.0.0.1:{port}/metrics", "heap_bytes")]``. Their metrics are
secondary (at most suspicious) unless ``judged=True``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping

from pytest_soak.errors import ProbeError
from pytest_soak.probes.http import HttpProbe
from pytest_soak.probes.metrics import Metric

#: A sample line's metric name (the text exposition: ``name{labels} value [timestamp]``).
_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")


class PrometheusProbe(HttpProbe):
    """A probe reading the sample ``metric`` (a gauge or a counter; with ``labels``, the one
    whose labels include these) of the Prometheus text exposition at ``url`` (loopback;
    ``{port}``/``{port:NAME}`` filled from the service's ports). Read as the metric ``name``
    (default: ``metric``); ``judged=True`` makes its leak fail the test; ``noise``/``step``:
    see ``Metric``. Several samples matching is an error listing them. Parsed by
    ``prometheus_client``'s parser."""

    def __init__(
        self,
        url: str,
        metric: str,
        labels: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        label: str | None = None,
        unit: str = "bytes",
        judged: bool = False,
        noise: float = 0.0,
        step: float = 0.0,
    ) -> None:
        if not _SAMPLE_NAME.fullmatch(metric):
            raise ProbeError(
                f"prometheus(metric={metric!r}): not a Prometheus metric name (letters, digits, "
                "'_' and ':', not starting with a digit), e.g. 'process_resident_memory_bytes'"
            )
        self.metric = metric
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        key = name or metric
        super().__init__(f"prometheus-{key}", {"": url})
        self.metrics = (Metric(key, label or _describe(metric, self.labels), unit, noise, step),)
        self.judged = frozenset({key}) if judged else frozenset()
        self.secondary_reason = (
            f"{metric} from the service's Prometheus endpoint: reported, not judged "
            "(judged=True makes its leak fail the test)"
        )
        self._family = metric[: -len("_total")] if metric.endswith("_total") else metric
        self._wanted = (metric, metric + "_total")

    def read(self) -> dict[str, float]:
        text = self.get("").text
        samples = self._matching(text)
        url = self.urls[""]
        if not samples:
            raise ProbeError(self._not_found(text, url))
        if len(samples) > 1:
            shown = ", ".join(_describe(n, labels) for n, labels, _ in samples[:10])
            more = f" and {len(samples) - 10} more" if len(samples) > 10 else ""
            raise ProbeError(
                f"probe {self.name!r}: {len(samples)} samples of {self.metric!r} match "
                f"labels={self.labels or None!r} in {url}: {shown}{more}; pass labels= that "
                "pick one of them"
            )
        _, _, value = samples[0]
        if math.isnan(value):
            raise ProbeError(
                f"probe {self.name!r}: {_describe(self.metric, self.labels)} in {url} is NaN; "
                "read a metric the service sets to a number"
            )
        return {self.metrics[0].name: value}

    def _matching(self, text: str) -> list[tuple[str, dict[str, str], float]]:
        from prometheus_client.parser import text_string_to_metric_families

        # Parse only this metric's lines: an exposition can hold thousands of series (Envoy's
        # does), and the sampler reads ten times a second. The substring test first: the regex
        # then runs on a few lines, not on every one.
        prefix = self._family
        lines = [
            line
            for line in text.splitlines()
            if prefix in line and _line_name(line).startswith(prefix)
        ]
        wanted = self._wanted
        found = []
        try:
            for family in text_string_to_metric_families("\n".join(lines) + "\n"):
                for sample in family.samples:
                    if sample.name in wanted and all(
                        sample.labels.get(k) == v for k, v in self.labels.items()
                    ):
                        found.append((sample.name, dict(sample.labels), float(sample.value)))
        except ValueError as exc:
            raise ProbeError(
                f"probe {self.name!r}: {self.urls['']} is not a Prometheus text exposition "
                f"({exc}); point the probe at the service's /metrics"
            ) from exc
        return found

    def _not_found(self, text: str, url: str) -> str:
        names = sorted({_line_name(line) for line in text.splitlines()} - {""})
        if self.labels and any(name in names for name in self._wanted):
            return (
                f"probe {self.name!r}: no sample of {self.metric!r} has the labels "
                f"{self.labels!r} in {url}; its samples: "
                + ", ".join(_samples_of(text, self.metric)[:10])
            )
        close = difflib.get_close_matches(self.metric, names, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        return (
            f"probe {self.name!r}: metric {self.metric!r} not found in {url}{hint}; metrics "
            f"there: {listed or 'none (an empty page)'}"
        )


class JsonFieldProbe(HttpProbe):
    """A probe reading the number at ``field`` (a dotted path, list indexes allowed:
    ``"memory.heap_bytes"``, ``"workers.0.rss"``; a number in a string, as Envoy writes them,
    is read too) of the JSON document at ``url`` (loopback; ``{port}``/``{port:NAME}`` filled).
    Read as the metric ``name`` (default: the path with ``_`` for dots); ``judged=True`` makes
    its leak fail the test."""

    def __init__(
        self,
        url: str,
        field: str,
        *,
        name: str | None = None,
        label: str | None = None,
        unit: str = "",
        judged: bool = False,
        noise: float = 0.0,
        step: float = 0.0,
    ) -> None:
        self.path = parse_path(field)
        key = name or re.sub(r"\W+", "_", field).strip("_")
        super().__init__(f"json-{key}", {"": url})
        self.metrics = (Metric(key, label or field, unit, noise, step),)
        self.judged = frozenset({key}) if judged else frozenset()
        self.secondary_reason = (
            f"{field} from the service's JSON endpoint: reported, not judged "
            "(judged=True makes its leak fail the test)"
        )

    def read(self) -> dict[str, float]:
        document = self.get_json("")
        value = field_value(document, self.path, f"probe {self.name!r}: {self.urls['']}")
        return {self.metrics[0].name: value}


def parse_path(field: str) -> tuple[str | int, ...]:
    """``"a.b.0"`` or ``"a.b[0]"`` as keys and list indexes."""
    parts: list[str | int] = []
    for piece in re.split(r"\.|(?=\[)", field):
        index = re.fullmatch(r"\[(\d+)\]", piece)
        if index:
            parts.append(int(index.group(1)))
        elif piece.isdigit():
            parts.append(int(piece))
        elif piece and "[" not in piece and "]" not in piece:
            parts.append(piece)
        else:
            raise ProbeError(
                f"http_json(field={field!r}): not a dotted path; write it like "
                "'memory.heap_bytes' or 'workers.0.rss' (or 'workers[0].rss')"
            )
    return tuple(parts)


def field_value(document: object, path: tuple[str | int, ...], where: str) -> float:
    """The number at ``path`` in ``document``; a ``ProbeError`` saying where the path broke."""
    node = document
    for depth, part in enumerate(path):
        if isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            have = (
                f"keys {', '.join(sorted(map(str, node)))[:200]}"
                if isinstance(node, dict)
                else f"a list of {len(node)}"
                if isinstance(node, list)
                else f"{type(node).__name__} {json.dumps(node)[:40]}"
            )
            walked = ".".join(str(p) for p in path[: depth + 1])
            raise ProbeError(f"{where}: field {walked!r} not found; there is {have}")
    number = _number(node)
    if number is None:
        raise ProbeError(
            f"{where}: field {'.'.join(map(str, path))!r} is {json.dumps(node)[:60]}, not a "
            "number; point the field at a number"
        )
    return number


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


def _line_name(line: str) -> str:
    if line.startswith("#"):
        parts = line.split(None, 3)
        return parts[2] if len(parts) > 2 and parts[1] in ("HELP", "TYPE") else ""
    match = _SAMPLE_NAME.match(line)
    return match.group(1) if match else ""


def _samples_of(text: str, metric: str) -> list[str]:
    return [
        line.rsplit(None, 1)[0]
        for line in text.splitlines()
        if _line_name(line) in (metric, metric + "_total") and not line.startswith("#")
    ]


def _describe(metric: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return metric
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


#: ``prometheus(url, metric, labels=...)``, ``http_json(url, field)``: the probes by the names
#: users write.
prometheus = PrometheusProbe
http_json = JsonFieldProbe
