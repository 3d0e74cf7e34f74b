"""The yardstick for the Prometheus source: a bare loop with a plain ``httpx.AsyncClient``.

``python -m benchmarks._bare_loop URL QUERY INTERVAL``: every INTERVAL seconds (on a fixed
grid, like the service) GET ``URL/api/v1/query?query=QUERY`` and ``json.loads`` the body;
nothing else. Plain asyncio, stdlib json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import httpx


async def loop(url: str, query: str, interval: float) -> None:
    clock = asyncio.get_running_loop().time
    async with httpx.AsyncClient() as client:
        tick = clock()
        while True:
            response = await client.get(f"{url}/api/v1/query", params={"query": query})
            json.loads(response.content)
            tick += interval
            await asyncio.sleep(max(tick - clock(), 0))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(loop(sys.argv[1], sys.argv[2], float(sys.argv[3])))
