"""Import time of the package (``python -X importtime -c "import metric_reader._cli"``), and
what each dependency costs at start: the resident memory and the time its import adds to a
bare interpreter, each in a fresh one (issue 27: one rule in 30 MB; what the one-rule
service imports is held by ``tests/test_startup_imports.py``)."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def import_times(repeat: int = 5) -> tuple[float, dict[str, float]]:
    """Median cumulative milliseconds of ``metric_reader._cli`` and of a few dependencies."""
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import metric_reader._cli"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent.parent,
        ).stderr
        for match in _LINE.finditer(out):
            name, cumulative = match.group(4), int(match.group(2)) / 1000
            if name == "metric_reader._cli":
                totals.append(cumulative)
            elif name in ("loguru", "httpx", "prometheus_client", "anyio", "uvloop", "orjson"):
                parts.setdefault(name, []).append(cumulative)
    return statistics.median(totals), {k: statistics.median(v) for k, v in parts.items()}


DEPENDENCIES = (
    "asyncio",
    "ssl",
    "anyio",
    "uvloop",
    "loguru",
    "orjson",
    "httpx",
    "aiohttp",
    "prometheus_client",
    "yaml",
    "promql_parser",
    "re2",
    "aiofiles",
)
"""What the service may import. asyncio (which imports ssl) is measured alone, ssl too; each
of the others on top of asyncio, which the service always runs on (and most of them import):
what it adds to the service, as alone it would count asyncio again."""
_COST = """
import sys, time
{base}
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
before = rss()
started = time.perf_counter()
import {module}
print(rss() - before, (time.perf_counter() - started) * 1000)
"""


def import_cost(module: str, base: str = "", repeat: int = 3) -> tuple[float, float] | None:
    """Median MB resident and milliseconds that ``import module`` adds to an interpreter
    that imported ``base`` (none when empty), each in a fresh one; None when it is not
    installed (or not on Linux: /proc)."""
    runs = []
    script = _COST.format(module=module, base=f"import {base}" if base else "")
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        if done.returncode != 0:
            return None
        mb, ms = done.stdout.split()
        runs.append((float(mb), float(ms)))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def dependency_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for module in DEPENDENCIES:
        base = "" if module in ("asyncio", "ssl") else "asyncio"
        cost = import_cost(module, base)
        if cost is None:
            continue
        mb, ms = cost
        rows.append(
            {
                "name": f"start-up: import {module}"
                + (" after asyncio" if base else "")
                + ", resident memory",
                "value": mb,
                "unit": "MB",
                "note": f"{ms:.0f} ms; median of 3, each in a fresh interpreter",
            }
        )
    return rows


def run() -> list[dict[str, object]]:
    total, parts = import_times()
    return [
        {
            "name": "start-up: import metric_reader._cli",
            "value": total,
            "unit": "ms",
            "note": "median of 5; "
            + (
                "of which "
                + ", ".join(f"{k} {v:.0f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
                if parts
                else "no dependency: each command imports what it uses when it runs"
            ),
        },
        *dependency_rows(),
    ]
