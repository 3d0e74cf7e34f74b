"""How fast the selective exposition reader is on a big page, against two yardsticks.

A deterministic page of about 100,000 series (about 10 MB, node-exporter and
HTTP-server style families) holds the three watched metrics at different places, next
to names they are prefixes of. Times are CPU time (``time.process_time``), best of
several runs: ``read_series`` for the three names, a full ``prometheus_client`` parse
(every family consumed), and a plain ``bytes.find`` scan for the three names (finding
every line that starts with one of them, parsing nothing).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from metric_reader._sources._exposition import read_series

WATCHED = ("queue_depth", "http_requests_total", "process_resident_memory_bytes")
SERIES = 100_000

_SUBSYSTEMS = ("node", "app", "grpc", "db", "cache", "kafka", "jvm", "go", "nginx", "queue")
_THINGS = ("requests", "errors", "bytes", "connections", "operations", "messages", "threads")
_UNITS = ("seconds", "bytes", "total", "ratio", "count", "info")
_METHODS = ("GET", "POST", "PUT", "DELETE")
_CODES = ("200", "201", "204", "301", "400", "404", "500", "503")
_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf")


def make_page(series: int = SERIES, seed: int = 20240601) -> bytes:
    """A realistic exposition page with about ``series`` series; the same bytes every time."""
    rng = random.Random(seed)
    lines: list[str] = []
    count = 0
    family = 0
    special_at = {series // 4: _queue_depth, series // 2: _http_requests, 3 * series // 4: _rss}
    while count < series:
        due = [at for at in special_at if at <= count]
        for at in due:
            count += special_at.pop(at)(rng, lines)
        family += 1
        count += _random_family(rng, lines, family)
    return ("\n".join(lines) + "\n").encode()


def _labels(rng: random.Random, pod: int) -> str:
    return (
        f'namespace="team-{pod % 17}",pod="api-{rng.randrange(16**5):05x}",'
        f'instance="10.{pod % 7}.{pod % 200}.{pod}:9100"'
    )


def _random_family(rng: random.Random, lines: list[str], family: int) -> int:
    name = "_".join(
        (rng.choice(_SUBSYSTEMS), rng.choice(_THINGS), f"f{family}", rng.choice(_UNITS))
    )
    kind = rng.choice(("gauge", "counter", "histogram", "summary", "untyped"))
    lines.append(f"# HELP {name} Generated family {family} of kind {kind}.")
    lines.append(f"# TYPE {name} {kind}")
    pods = rng.randrange(5, 60)
    made = 0
    for pod in range(pods):
        base = "{" + _labels(rng, pod)
        if kind == "histogram":
            total = 0
            for le in _BUCKETS:
                total += rng.randrange(50)
                lines.append(f'{name}_bucket{base},le="{le}"}} {total}')
            lines.append(f"{name}_sum{base}}} {rng.uniform(0, 1e4):.6f}")
            lines.append(f"{name}_count{base}}} {total}")
            made += len(_BUCKETS) + 2
        elif kind == "summary":
            for quantile in ("0.5", "0.9", "0.99"):
                lines.append(f'{name}{base},quantile="{quantile}"}} {rng.random():.6g}')
            lines.append(f"{name}_sum{base}}} {rng.uniform(0, 1e4):.6f}")
            lines.append(f"{name}_count{base}}} {rng.randrange(10**6)}")
            made += 5
        else:
            method = rng.choice(_METHODS)
            lines.append(f'{name}{base},method="{method}"}} {rng.uniform(0, 1e6):.4f}')
            made += 1
    return made


def _queue_depth(rng: random.Random, lines: list[str]) -> int:
    lines += ["# HELP queue_depth Jobs waiting.", "# TYPE queue_depth gauge"]
    lines += [f'queue_depth{{queue="q{i}"}} {rng.randrange(100)}' for i in range(12)]
    lines += ["# HELP queue_depth_max Most jobs seen.", "# TYPE queue_depth_max gauge"]
    lines += [f'queue_depth_max{{queue="q{i}"}} {rng.randrange(1000)}' for i in range(12)]
    return 24


def _http_requests(rng: random.Random, lines: list[str]) -> int:
    lines += ["# HELP http_requests_total Requests served.", "# TYPE http_requests_total counter"]
    made = 0
    for handler in range(15):
        for method in _METHODS[:2]:
            for code in _CODES[:4]:
                lines.append(
                    f'http_requests_total{{handler="/api/v1/h{handler}",method="{method}",'
                    f'code="{code}"}} {rng.randrange(10**7)}'
                )
                made += 1
    lines += ["# TYPE http_requests_total_created gauge", "http_requests_total_created 1.7e9"]
    return made + 1


def _rss(rng: random.Random, lines: list[str]) -> int:
    lines += ["# TYPE process_resident_memory_bytes gauge"]
    lines += [f"process_resident_memory_bytes {rng.randrange(10**9)}"]
    return 1


def _best(action: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        action()
        best = min(best, time.process_time() - start)
    return best


def _find_scan(page: bytes, names: tuple[str, ...]) -> list[list[int]]:
    found = []
    for name in names:
        needle = b"\n" + name.encode()
        hits = []
        pos = page.find(needle)
        while pos >= 0:
            hits.append(pos + 1)
            pos = page.find(needle, pos + 1)
        found.append(hits)
    return found


def _full_parse(page: bytes) -> int:
    return sum(len(family.samples) for family in text_string_to_metric_families(page.decode()))


FULL_PARSE: list[float] = []
"""CPU seconds of one full parse, once ``run`` has measured it (``scrape_poll`` uses it)."""


def run() -> list[dict[str, object]]:
    page = make_page()
    found = read_series(page, WATCHED)
    samples = _full_parse(page)
    many = [f"absent_metric_{i}" for i in range(10_000 - len(WATCHED))] + list(WATCHED)
    by_lines = read_series(page, many)
    assert {name: by_lines[name] for name in WATCHED} == found, "the two strategies disagree"

    reader = _best(lambda: read_series(page, WATCHED), 9)
    full = _best(lambda: _full_parse(page), 2)
    FULL_PARSE[:] = [full]
    scan = _best(lambda: _find_scan(page, WATCHED), 9)
    lines = _best(lambda: read_series(page, many), 5)
    watched = sum(len(series) for series in found.values())
    line_count = page.count(b"\n")

    def row(
        name: str, value: float, unit: str, note: str = "", **extra: object
    ) -> dict[str, object]:
        return {"name": f"scrape: {name}", "value": value, "unit": unit, "note": note, **extra}

    return [
        row("page size", len(page) / 1e6, "MB", f"{samples} samples, {line_count} lines"),
        row("full prometheus_client parse", full * 1e3, "ms", "text_string_to_metric_families"),
        row("reading step, 3 names", reader * 1e3, "ms", f"{watched} samples; read_series"),
        row("bytes.find scan, 3 names", scan * 1e3, "ms", "every line start, no parse"),
        row("reading step / bytes.find scan", reader / scan, "x", target=5.0),
        row("reading step / full parse", reader / full, "x", "in process, no HTTP"),
        row("reading step, 10,000 names", lines * 1e3, "ms", "one pass over the lines"),
    ]


def main() -> None:
    rows = run()
    width = max(len(str(r["name"])) for r in rows)
    for r in rows:
        print(f"{r['name']!s:<{width}}  {r['value']:>12.4f}  {r['unit']!s:<6}  {r['note']}")


if __name__ == "__main__":
    main()
