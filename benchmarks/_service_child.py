"""Run the whole service (``metric_reader._cli.main``) with one event loop, HTTP transport
and JSON decoder, so the benchmarks can compare them in a real subprocess.

``python -m benchmarks._service_child --loop asyncio|uvloop --json json|orjson
--transport wire|aiohttp|httpx [run]``: by itself the service runs on asyncio, sends its
requests through its own transport (``wire``) and decodes with orjson (when importable);
``--loop uvloop`` and ``--transport aiohttp|httpx`` set the service's own switches
(``_cli.EVENT_LOOP``, ``_http.TRANSPORT``), ``--json json`` hides orjson
(``sys.modules[name] = None`` makes its import fail).
"""

from __future__ import annotations

import argparse
import sys


def apply(loop: str, decoder: str, transport: str) -> None:
    # What is not chosen is not importable either, so memory is that of an install without
    # it (``sys.modules[name] = None`` makes an import fail).
    for chosen, name in ((decoder, "orjson"), (loop, "uvloop"), (transport, "aiohttp")):
        if chosen != name:
            sys.modules[name] = None  # type: ignore[assignment]
    from metric_reader import _cli
    from metric_reader._http import _client as _http

    _cli.EVENT_LOOP = loop
    _http.TRANSPORT = transport


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--json", choices=("json", "orjson"), default="orjson")
    parser.add_argument("--transport", choices=("wire", "aiohttp", "httpx"), default="wire")
    args, rest = parser.parse_known_args()
    apply(args.loop, args.json, args.transport)
    from metric_reader._cli import main as service_main

    return service_main(rest)


if __name__ == "__main__":
    sys.exit(main())
