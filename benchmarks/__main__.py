"""Run every benchmark in one process and print one table of figures and ratios."""

from __future__ import annotations

import platform
import sys

from . import many_rules, prometheus_source, scrape, scrape_poll


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def main() -> None:
    rows: list[dict[str, object]] = []
    for bench in (scrape, scrape_poll, prometheus_source, many_rules):
        print(f"running {bench.__name__} ...", file=sys.stderr, flush=True)
        rows += bench.run()
    print(
        f"\nmachine: {platform.machine()}, {platform.processor() or platform.system()}, "
        f"Python {platform.python_version()}\n"
    )
    width = max(len(str(r["name"])) for r in rows)
    print(f"| {'figure':<{width}} | {'value':>10} | unit | note |")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|------|------|")
    for r in rows:
        print(f"| {r['name']!s:<{width}} | {_format(r['value']):>10} | {r['unit']} | {r['note']} |")


if __name__ == "__main__":
    main()
