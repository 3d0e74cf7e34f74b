"""Three real replicas elect a leader on a Lease served by a faithful fake API server.

Every replica scrapes the same page and evaluates the same rule; the recording plugin
writes the pid of the process that ran each call. Short timings (lease 3 s, renew
deadline 2 s, retry 0.5 s) keep the tests quick while keeping client-go's ratios.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from _lease_api import LeaseAPI

from .conftest import (
    RecordingPlugins,
    ScrapeServer,
    Service,
    ServiceFactory,
    free_port,
    wait_until,
)

# Timing-sensitive: run on its own after the parallel part of make test (see Makefile).
pytestmark = pytest.mark.serial

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
# For the tests that time when the old leader stops: a lease well past the renew deadline,
# so that "stopped at the renew deadline" and "acted until the lease expired" are told apart
# with a margin a busy 2-core machine meets: up to LATENCY between a replica deciding to act
# and its plugin noting the call.
SAFE_LEASE, LATENCY = RENEW + 3.0, 1.0
ACTING_OFTEN = {"BACKOFF_DELAY": "300ms", "LEADER_ELECTION_LEASE_DURATION": f"{SAFE_LEASE:g}s"}
LOCK = "metric-reader-leader"


@dataclass
class Replica:
    service: Service
    token: str
    port: int = 0

    def get(self, path: str) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5).text

    @property
    def pid(self) -> int:
        return self.service.proc.pid


@pytest.fixture
def lease_api(tmp_path: Path) -> Iterator[LeaseAPI]:
    with LeaseAPI(tmp_path / "api") as api:
        yield api


def start_replicas(
    count: int,
    api: LeaseAPI,
    tmp_path: Path,
    server: ScrapeServer,
    plugins: RecordingPlugins,
    service: ServiceFactory,
    first: int = 0,
    **settings: str,
) -> list[Replica]:
    """``count`` replicas, numbered from ``first`` (each has its own service account)."""
    replicas = []
    for index in range(first, first + count):
        token = f"replica-{index}-token"
        port = free_port()
        account = api.service_account(token, namespace="default")
        env = {
            "SCRAPE_URL": server.url,
            "METRIC_NAME": "queue_depth",
            "THRESHOLD": ">80",
            "THRESHOLD_DURATION": "0s",
            "POLLING_INTERVAL": "200ms",
            "ACTION_PLUGIN": "recorder",
            "LEADER_ELECTION_ENABLED": "true",
            "LEADER_ELECTION_LEASE_DURATION": f"{LEASE:g}s",
            "LEADER_ELECTION_RENEW_DEADLINE": f"{RENEW:g}s",
            "LEADER_ELECTION_RETRY_PERIOD": f"{RETRY * 1000:g}ms",
            **plugins.env,
            **api.env(account),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            **settings,
        }
        replicas.append(Replica(service(env), token, port))
    return replicas


def holder(api: LeaseAPI) -> str:
    lease = api.lease("default", LOCK)
    return "" if lease is None else str(lease["spec"].get("holderIdentity") or "")


def wait_for_leader(api: LeaseAPI, replicas: list[Replica]) -> None:
    def elected() -> bool:
        return bool(holder(api)) and all(r.service.alive() for r in replicas)

    wait_until(elected, 20, "a leader in the Lease", diagnostics=lambda: _diagnostics(replicas))


def wait_polls(server: ScrapeServer, count: int) -> None:
    """Until the replicas together scraped ``count`` more times: proof that time passed
    with every replica running, for asserting that nothing more happened."""
    target = server.requests + count
    wait_until(lambda: server.requests >= target, 20, f"{count} more scrapes")


def wait_calls(
    plugins: RecordingPlugins, replicas: list[Replica], count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    wait_until(
        lambda: len(plugins.records()) >= count,
        timeout,
        f"{count} plugin calls",
        diagnostics=lambda: plugins.describe() + _diagnostics(replicas),
    )
    return plugins.records()


def _diagnostics(replicas: list[Replica]) -> str:
    return "\n".join(r.service.diagnostics() for r in replicas)


def assert_one_at_a_time(records: list[dict[str, Any]], gap: float) -> None:
    """Calls never interleave between replicas, a new leader's first call comes at least
    ``gap`` after the old one's last, and no fire_count is handed out twice."""
    records = sorted(records, key=lambda r: r["t"])
    for before, after in itertools.pairwise(records):
        if before["pid"] != after["pid"]:
            assert after["t"] - before["t"] >= gap, (before, after)
    counts = [r["fire_count"] for r in records if r["kind"] != "resolve"]
    assert counts == sorted(set(counts)), f"an action ran twice: {counts}"


# ---------------------------------------------------------------------------------------------


def test_exactly_one_replica_runs_each_action(
    lease_api: LeaseAPI,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    scrape_server.set_value("queue_depth", 10)
    replicas = start_replicas(
        3, lease_api, tmp_path, scrape_server, recording_plugin_dir, service, BACKOFF_DELAY="1s"
    )
    wait_for_leader(lease_api, replicas)
    scrape_server.set_value("queue_depth", 90)
    [fire] = wait_calls(recording_plugin_dir, replicas, 4)[:1]
    statuses = {r.pid: json.loads(r.get("/api/status"))["leader_election"] for r in replicas}
    assert [pid for pid, st in statuses.items() if st["acting"]] == [fire["pid"]], statuses
    leader_identity = statuses[fire["pid"]]["identity"]
    assert all(st["leader"] == leader_identity for st in statuses.values()), statuses
    gauges = {r.pid: "\nmetric_reader_leader 1.0" in r.get("/metrics") for r in replicas}
    assert [pid for pid, on in gauges.items() if on] == [fire["pid"]], gauges
    scrape_server.set_value("queue_depth", 10)
    wait_until(
        lambda: any(r["kind"] == "resolve" for r in recording_plugin_dir.records()),
        15,
        "the resolve",
        diagnostics=recording_plugin_dir.describe,
    )
    wait_polls(scrape_server, 3 * 10)  # 10 polls each: time for a duplicate resolve
    records = recording_plugin_dir.records()
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "fire" and kinds.count("fire") == 1, kinds
    assert kinds.count("resolve") == 1 and kinds[-1] == "resolve", kinds
    assert len({r["pid"] for r in records}) == 1, recording_plugin_dir.describe()
    repeats = [r["t"] for r in records if r["kind"] in ("fire", "repeat")]
    assert all(b - a >= 1.0 - 0.05 for a, b in itertools.pairwise(repeats)), repeats
    assert [r["fire_count"] for r in records if r["kind"] != "resolve"] == list(range(len(repeats)))


def test_killing_the_leader_hands_over_within_the_lease_without_a_duplicate(
    lease_api: LeaseAPI,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    scrape_server.set_value("queue_depth", 90)
    replicas = start_replicas(
        3, lease_api, tmp_path, scrape_server, recording_plugin_dir, service, BACKOFF_DELAY="6s"
    )
    [fire] = wait_calls(recording_plugin_dir, replicas, 1)
    old_holder = holder(lease_api)
    leader = next(r for r in replicas if r.pid == fire["pid"])
    killed = time.monotonic()
    assert leader.service.stop(signal.SIGKILL) == -signal.SIGKILL
    others = [r for r in replicas if r is not leader]
    wait_until(
        lambda: holder(lease_api) not in ("", old_holder),
        LEASE + 3 * RETRY + 3,
        "a new leader",
        diagnostics=lambda: _diagnostics(others),
    )
    handover = time.monotonic() - killed
    assert handover <= LEASE + 2 * RETRY * 1.2 + 1.0, f"handover took {handover:.1f}s"
    [_, repeat] = wait_calls(recording_plugin_dir, others, 2, timeout=15)
    assert repeat["kind"] == "repeat" and repeat["pid"] != fire["pid"], repeat
    assert repeat["fire_count"] == 1, "the new leader knew the old one had fired"
    assert repeat["t"] - fire["t"] >= 6.0 - 0.3, "no action inside the backoff window"
    wait_polls(scrape_server, 2 * 5)
    assert len(recording_plugin_dir.records()) == 2, recording_plugin_dir.describe()


def test_a_leader_cut_off_from_the_api_stops_acting_before_its_lease_expires(
    lease_api: LeaseAPI,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    scrape_server.set_value("queue_depth", 90)
    replicas = start_replicas(
        3, lease_api, tmp_path, scrape_server, recording_plugin_dir, service, **ACTING_OFTEN
    )
    [first] = wait_calls(recording_plugin_dir, replicas, 1)[:1]
    leader = next(r for r in replicas if r.pid == first["pid"])
    lease_api.cut_off(leader.token, mode="hang")
    cut, cut_wall = time.monotonic(), time.time()
    wait_until(
        lambda: any(r["pid"] != leader.pid for r in recording_plugin_dir.records()),
        SAFE_LEASE + RENEW + 10,
        "a call by a new leader",
        diagnostics=lambda: recording_plugin_dir.describe() + _diagnostics(replicas),
    )
    records = recording_plugin_dir.records()
    old = [r["t"] for r in records if r["pid"] == leader.pid]
    new = [r["t"] for r in records if r["pid"] != leader.pid]
    assert max(old) < cut + RENEW + LATENCY, "the old leader acted past its renew deadline"
    assert min(new) > max(old), "two leaders acted at once"
    assert min(new) >= cut - RETRY + SAFE_LEASE - 0.3, "taken over before the old lease expired"
    assert leader.service.alive()
    assert_one_at_a_time(records, gap=SAFE_LEASE - RENEW - LATENCY)
    # It said so, and it gave up by its own clock: before anyone else could take over.
    [lost] = [line for line in leader.service.stderr().splitlines() if "lost the lease" in line]
    assert "renew deadline" in lost, lost
    lost_at = datetime.fromisoformat(lost.split()[0]).timestamp()
    assert lost_at <= cut_wall + RENEW + LATENCY, f"{lost_at - cut_wall:.2f}s after the cut: {lost}"


def test_a_flapping_api_does_not_cause_split_brain(
    lease_api: LeaseAPI,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    scrape_server.set_value("queue_depth", 90)
    replicas = start_replicas(
        3, lease_api, tmp_path, scrape_server, recording_plugin_dir, service, **ACTING_OFTEN
    )
    wait_calls(recording_plugin_dir, replicas, 1)
    stop = threading.Event()

    def flap() -> None:
        steps = [
            lambda: lease_api.fail(500),
            lambda: lease_api.fail(None),
            lambda: lease_api.latency(1.5),
            lambda: lease_api.latency(0),
            lambda: lease_api.fail(503),
            lambda: lease_api.fail(None),
            lambda: lease_api.down(),
            lambda: lease_api.up(),
        ]
        index = 0
        while not stop.wait(0.4 + 0.3 * (index % 3)):
            steps[index % len(steps)]()
            index += 1

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    try:
        stop.wait(15)
    finally:
        stop.set()
        flapper.join()
        lease_api.fail(None)
        lease_api.latency(0)
        lease_api.up()
    before = len(recording_plugin_dir.records())
    wait_calls(recording_plugin_dir, replicas, before + 3, timeout=SAFE_LEASE + 15)
    assert all(r.service.alive() for r in replicas), _diagnostics(replicas)
    assert_one_at_a_time(recording_plugin_dir.records(), gap=SAFE_LEASE - RENEW - LATENCY)


def test_outside_a_cluster_a_replica_says_once_that_it_acts_alone(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("queue_depth", 90)
    env = {
        "SCRAPE_URL": scrape_server.url,
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "POLLING_INTERVAL": "200ms",
        "ACTION_PLUGIN": "recorder",
        "LEADER_ELECTION_ENABLED": "true",
        **recording_plugin_dir.env,
    }
    svc = service(env)
    wait_calls(recording_plugin_dir, [Replica(svc, "")], 1)
    alone = [line for line in svc.stderr().splitlines() if "acts alone" in line]
    assert len(alone) == 1 and "KUBERNETES_SERVICE_HOST is not set" in alone[0], alone


def test_a_dry_run_replica_never_takes_the_lease_nor_stops_the_real_one_acting(
    lease_api: LeaseAPI,
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    scrape_server.set_value("queue_depth", 90)
    [dry] = start_replicas(
        1, lease_api, tmp_path, scrape_server, recording_plugin_dir, service, DRY_RUN="true"
    )
    dry.service.wait_until(
        lambda: "DRY_RUN: would call recorder.execute" in dry.service.stderr(),
        20,
        "the dry run's would-be fire",
    )
    assert "takes no part in leader election" in dry.service.stderr(), dry.service.diagnostics()
    [real] = start_replicas(
        1, lease_api, tmp_path, scrape_server, recording_plugin_dir, service, first=1
    )
    [fire] = wait_calls(recording_plugin_dir, [dry, real], 1)
    assert (fire["pid"], fire["kind"], fire["fire_count"]) == (real.pid, "fire", 0), fire
    identity = json.loads(real.get("/api/status"))["leader_election"]["identity"]
    assert {h for _, h in lease_api.holders()} <= {"", identity}, lease_api.holders()
    assert json.loads(dry.get("/api/status"))["leader_election"]["enabled"] is False
