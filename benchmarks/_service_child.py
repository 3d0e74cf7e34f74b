"""Run the whole service (``metric_reader._cli.main``) with one event loop, HTTP transport
and JSON decoder, so the benchmarks can compare them in a real subprocess.

``python -m benchmarks._service_child --loop asyncio|uvloop --json json|orjson
--transport httpx|aiohttp [run]``: the service uses orjson by itself when it is importable;
``--json json`` hides it (``sys.modules[name] = None`` makes its import fail). The service
runs on asyncio; ``--loop uvloop`` installs uvloop's event loop policy first, for the
comparison only. ``--transport aiohttp`` gives every ``httpx.AsyncClient`` an
``httpx_aiohttp.AiohttpTransport`` with the same TLS context and limits.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def apply(loop: str, decoder: str, transport: str) -> None:
    if loop == "uvloop":
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if decoder != "orjson":
        sys.modules["orjson"] = None  # type: ignore[assignment]
    if transport == "aiohttp":
        import httpx
        from httpx_aiohttp import AiohttpTransport

        original = httpx.AsyncClient.__init__

        def init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault(
                "transport",
                AiohttpTransport(
                    verify=kwargs.get("verify", True),
                    limits=kwargs.get("limits", httpx.Limits()),
                ),
            )
            original(self, *args, **kwargs)

        httpx.AsyncClient.__init__ = init  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--json", choices=("json", "orjson"), default="json")
    parser.add_argument("--transport", choices=("httpx", "aiohttp"), default="httpx")
    args, rest = parser.parse_known_args()
    apply(args.loop, args.json, args.transport)
    from metric_reader._cli import main as service_main

    return service_main(rest)


if __name__ == "__main__":
    sys.exit(main())
