"""The memory floor of the stack the design fixes: the least program that does what one
rule does, on anyio, httpx and loguru and nothing of ours.

``python -m benchmarks._floor URL QUERY INTERVAL``: every INTERVAL seconds (on a fixed grid)
GET ``URL/api/v1/query?query=QUERY`` with an ``httpx.AsyncClient``, decode the JSON,
compare the first value with a threshold and log through loguru when it is crossed (it never
is: ``up`` is 1). Its resident memory, next to the service's, shows how much of one rule's
memory is the interpreter and these three libraries, before any code of ours.
"""

from __future__ import annotations

import contextlib
import json
import sys

import anyio
import httpx
from loguru import logger


async def loop(url: str, query: str, interval: float) -> None:
    # verify=False: no CA bundle loaded (about 1.2 MB), as the service loads none for an
    # http:// URL; the floor is then the lowest this stack can be, not what it is by default.
    async with httpx.AsyncClient(verify=False) as client:
        tick = anyio.current_time()
        while True:
            response = await client.get(f"{url}/api/v1/query", params={"query": query})
            for _, value in (
                one["value"] for one in json.loads(response.content)["data"]["result"]
            ):
                if float(value) < 0:
                    logger.warning("breached: {}", value)
            tick += interval
            await anyio.sleep(max(tick - anyio.current_time(), 0))


if __name__ == "__main__":
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(loop, sys.argv[1], sys.argv[2], float(sys.argv[3]))
