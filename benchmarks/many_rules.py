"""Many rules on one page: CPU per polling cycle and memory, 10,000 rules against 1.

A page with 10,000 gauges (one per rule, plus the same again of metrics nobody watches) is
served by a separate process. For each rule count a fresh child process builds the rules
(as a rule file would), runs full cycles (one fetch, one pass over the page, every rule
evaluated) and reports its CPU per cycle and resident memory. Memory per idle rule is the
difference between 10,000 rules and 1, divided by 9,999.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from ._page_server import serve_page

RULES = 10_000
CYCLES = 20


def _page(rules: int) -> bytes:
    lines = []
    for i in range(rules):
        lines.append(f'watched_metric_{i}{{instance="app:9100",job="app"}} {i % 100}')
        lines.append(f'other_metric_{i}_seconds{{instance="app:9100",job="app"}} {i}')
    return ("\n".join(lines) + "\n").encode()


def _child(rules: int, url: str) -> dict[str, float]:
    import anyio

    from metric_reader._config import LevelConfig, MissingValueBehavior, RuleConfig, ScrapePage
    from metric_reader._core._selector import Selector
    from metric_reader._core._threshold import parse_threshold
    from metric_reader._engine import make_rule
    from metric_reader._http import make_client
    from metric_reader._sources._groups import build_fetches

    threshold = parse_threshold(">1000")  # never breached: every rule stays idle
    configs = [
        RuleConfig(
            name=f"rule-{i}",
            metric_name=f"watched_metric_{i}",
            source=ScrapePage(url, Selector(f"watched_metric_{i}")),
            polling_interval=1.0,
            missing=MissingValueBehavior.SKIP,
            base=LevelConfig(threshold, 60.0),
        )
        for i in range(rules)
    ]
    [target] = build_fetches(configs)
    machines = [make_rule(c) for c in configs]

    async def cycles() -> float:
        async with make_client() as client:
            for _ in range(3):
                await _cycle(client)
            start = time.process_time()
            for _ in range(CYCLES):
                await _cycle(client)
            return (time.process_time() - start) / CYCLES

    async def _cycle(client: object) -> None:
        reading = await target.perform(client, 10.0)  # type: ignore[arg-type]
        now = anyio.current_time()
        for rule in machines:
            rule.evaluate(now, reading.samples[rule.name])

    cpu = anyio.run(cycles)
    rss_kb = int(
        next(
            line
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        ).split()[1]
    )
    return {"cpu": cpu, "rss_kb": rss_kb}


def _measure(rules: int, url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.many_rules", "--child", str(rules), url],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    return json.loads(out.stdout)


def run() -> list[dict[str, object]]:
    page = _page(RULES)
    with serve_page(page) as url:
        one = _measure(1, url)
        many = _measure(RULES, url)
    per_rule_kb = (many["rss_kb"] - one["rss_kb"]) / (RULES - 1)
    return [
        {
            "name": f"scale: {RULES:,} rules on one page, CPU per 1 s cycle",
            "value": many["cpu"],
            "unit": "cores",
            "target": 0.5,
            "note": f"fetch + one pass + evaluate, {len(page) / 1e6:.1f} MB page, "
            f"20k series; 1 rule: {one['cpu'] * 1e3:.1f} ms",
        },
        {
            "name": f"memory: RSS with {RULES:,} idle rules",
            "value": many["rss_kb"] / 1024,
            "unit": "MB",
            "note": f"1 rule: {one['rss_kb'] / 1024:.1f} MB (in-process cycles)",
        },
        {
            "name": "memory: per additional idle rule",
            "value": per_rule_kb,
            "unit": "KB",
            "target": 20.0,
            "note": f"(RSS with {RULES:,} rules - with 1) / {RULES - 1:,}",
        },
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(int(sys.argv[2]), sys.argv[3])))
    else:
        for row in run():
            print(row)
