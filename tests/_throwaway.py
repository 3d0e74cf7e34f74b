"""A throwaway Prometheus holding the input series of a rule unit test, the reference the in-
process PromQL evaluator and series store are compared with: the series are written as
OpenMetrics text, turned into TSDB blocks by ``promtool tsdb create-blocks-from
openmetrics``, and a Prometheus serves those blocks on a loopback port until the ``async
with`` ends; then it is stopped and its directory deleted.

OpenMetrics has no staleness marker (Prometheus' is a NaN of its own, which a text format
cannot write). When a series holds ``stale``, the series are given to the Prometheus through
its remote-write receiver instead, all of them, in time order: Prometheus takes a sample
into its head only if it is at most an hour older than the newest it holds (and never before
the end of a block), so the markers cannot be added to imported blocks.

Times are promtool's: the first step is at 0, 1970-01-01T00:00:00Z, and the data stays there
(no time retention: it would count back from the newest block)."""

from __future__ import annotations

import bisect
import math
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import httpx
from _remote_write import STALE_NAN_BITS, Point, snappy_block, write_request

from metric_reader._core import MetricReaderError
from metric_reader._replay._ruletest._model import InputSeries
from metric_reader._replay._ruletest._series_desc import Stale

__all__ = [
    "MissingBinaries",
    "ThrowawayError",
    "lookback_includes_start",
    "openmetrics_text",
    "throwaway_prometheus",
]

STARTUP_TIMEOUT = 30.0
"""Seconds for Prometheus to load the blocks and answer ``/-/ready``."""
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3
_RETENTION = "--storage.tsdb.retention.size=1EB"
"""A size limit alone, so that no time limit applies: a time retention is at most 100y
(Prometheus caps it there), and promtool's tests reach 292 years (``long-period.yml``:
``time.Duration``'s end, in 2262), whose first blocks it would delete."""
_PUSH_WINDOW_MS = 30 * 60 * 1000
"""Milliseconds of samples per remote-write request: well within the hour Prometheus'
head takes behind its newest sample."""
_REMOTE_WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


class ThrowawayError(MetricReaderError):
    """The throwaway Prometheus could not be made or started: one line saying why."""


class MissingBinaries(ThrowawayError):
    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            "expression rules need Prometheus' promtool and prometheus binaries on PATH: "
            f"{' and '.join(missing)} not found (Debian: apt-get install prometheus)"
        )


@asynccontextmanager
async def throwaway_prometheus(
    series: Iterable[InputSeries],
    interval: float,
    *,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> AsyncIterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of a Prometheus holding ``series``, sampled
    every ``interval`` seconds from time 0; ``ThrowawayError`` when it cannot be had."""
    promtool, prometheus = _binaries()
    given = list(series)
    markers = any(isinstance(value, Stale) for one in given for value in one.values)
    with tempfile.TemporaryDirectory(prefix="metric-reader-test-") as work:
        directory = Path(work)
        data = directory / "data"
        data.mkdir()
        text = "" if markers else openmetrics_text(given, interval)
        if text and text != "# EOF\n":
            await _create_blocks(promtool, text, directory, data)
        config = directory / "prometheus.yml"
        config.write_text("")
        async with _serving(
            prometheus, config, data, directory, startup_timeout, remote_write=markers
        ) as url:
            if markers:
                await _push(url, given, interval)
            yield url


def _binaries() -> tuple[str, str]:
    found = {name: shutil.which(name) for name in ("promtool", "prometheus")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MissingBinaries(missing)
    promtool, prometheus = found["promtool"], found["prometheus"]
    assert promtool is not None and prometheus is not None
    return promtool, prometheus


def openmetrics_text(series: Iterable[InputSeries], interval: float) -> str:
    """``series`` as an OpenMetrics exposition with a timestamp on every sample, each metric
    family's series together, ending in ``# EOF``; ``ValueError`` for a staleness marker."""
    by_name: dict[str, list[InputSeries]] = {}
    for one in series:
        by_name.setdefault(one.labels["__name__"], []).append(one)
    lines = []
    for family in by_name.values():
        for one in family:
            shown = _series_text(one)
            for at, value in one.samples(interval):
                if isinstance(value, Stale):
                    raise ValueError(f"OpenMetrics cannot carry the staleness marker of {shown}")
                lines.append(f"{shown} {_value_text(value)} {_seconds_text(at)}\n")
    return "".join(lines) + "# EOF\n"


def _series_text(one: InputSeries) -> str:
    pairs = [
        f'{label}="{_escaped(value)}"' for label, value in one.labels.items() if label != "__name__"
    ]
    name = one.labels["__name__"]
    return f"{name}{{{','.join(pairs)}}}" if pairs else name


def _escaped(value: str) -> str:
    """OpenMetrics' label value escapes: backslash, double quote and line feed only."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _seconds_text(seconds: float) -> str:
    """Whole milliseconds, as Prometheus stores them, written in seconds."""
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}.{milliseconds % 1000:03d}"


async def _create_blocks(promtool: str, text: str, directory: Path, data: Path) -> None:
    source = directory / "series.om"
    source.write_text(text, encoding="utf-8")
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source)]
    result = await anyio.run_process([*command, str(data)], check=False)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
        last = said.splitlines()[-1] if said else f"exit code {result.returncode}"
        raise ThrowawayError(f"promtool could not import the input series: {last}")


@asynccontextmanager
async def _serving(
    prometheus: str,
    config: Path,
    data: Path,
    directory: Path,
    startup_timeout: float,
    *,
    remote_write: bool,
) -> AsyncIterator[str]:
    log_path = directory / "prometheus.log"
    for attempt in range(_PORT_ATTEMPTS):
        port = _free_port()
        command = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            _RETENTION,
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        if remote_write:
            command.append("--web.enable-remote-write-receiver")
        with log_path.open("ab") as log:
            process = await anyio.open_process(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=directory
            )
        try:
            url = f"http://127.0.0.1:{port}"
            if await _ready(url, process, startup_timeout):
                yield url
                return
            said = _log(log_path)
            # The port picked was taken before Prometheus could bind it: another one.
            if "address already in use" not in said or attempt == _PORT_ATTEMPTS - 1:
                last = said.splitlines()[-1] if said else "no output"
                raise ThrowawayError(f"the throwaway Prometheus did not start: {last}")
            log_path.unlink()
        finally:
            await _stop(process)


async def _push(url: str, series: list[InputSeries], interval: float) -> None:
    """``series`` written into the Prometheus at ``url``, markers included, in time order."""
    points: list[tuple[InputSeries, list[Point]]] = [
        (
            one,
            [
                (round(at * 1000), STALE_NAN_BITS if isinstance(value, Stale) else value)
                for at, value in one.samples(interval)
            ],
        )
        for one in series
    ]
    times = [[at_ms for at_ms, _ in taken] for _, taken in points]
    end = max((taken[-1][0] for _, taken in points if taken), default=-1)
    async with httpx.AsyncClient(timeout=60.0) as client:
        for start in range(0, end + 1, _PUSH_WINDOW_MS):
            batch = []
            for (one, taken), at in zip(points, times, strict=True):
                first = bisect.bisect_left(at, start)
                last = bisect.bisect_left(at, start + _PUSH_WINDOW_MS)
                if first < last:
                    batch.append((one.labels, taken[first:last]))
            if not batch:
                continue
            response = await client.post(
                f"{url}/api/v1/write",
                content=snappy_block(write_request(batch)),
                headers=_REMOTE_WRITE_HEADERS,
            )
            if response.status_code >= 300:
                said = response.text.strip().splitlines()
                raise ThrowawayError(
                    "the throwaway Prometheus refused the input series: "
                    f"HTTP {response.status_code}: {said[0] if said else 'no reason given'}"
                )


async def _ready(url: str, process: anyio.abc.Process, timeout: float) -> bool:
    """True once ``/-/ready`` answers 200; False when the process ended first;
    ``ThrowawayError`` when neither happens within ``timeout`` seconds."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        with anyio.move_on_after(timeout):
            while process.returncode is None:
                try:
                    response = await client.get(f"{url}/-/ready")
                except httpx.TransportError:
                    pass
                else:
                    if response.status_code == 200:
                        return True
                await anyio.sleep(0.05)
            return False
    raise ThrowawayError(f"the throwaway Prometheus was not ready within {timeout:g} s")


async def _stop(process: anyio.abc.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    with anyio.move_on_after(_STOP_TIMEOUT, shield=True) as waited:
        await process.wait()
    if waited.cancelled_caught:
        process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def lookback_includes_start(prometheus: str | None = None) -> bool:
    """Whether the installed Prometheus reads a sample exactly 5 minutes old at an instant
    (Prometheus 2 does, 3 does not): what ``SeriesStore`` is to do for both to agree."""
    binary = prometheus or shutil.which("prometheus")
    if binary is None:
        return False
    try:
        said = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    words = (said.stdout + said.stderr).split()
    version = words[words.index("version") + 1] if "version" in words else ""
    return version.startswith("2.")
