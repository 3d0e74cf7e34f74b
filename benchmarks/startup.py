"""Import time of the package: ``python -X importtime -c "import metric_reader._cli"``."""

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
        }
    ]
