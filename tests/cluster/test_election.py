"""The Lease client and client-go's election algorithm against the fake API server.

Each test runs ``LeaderElector.run`` for real (short timings) against ``_lease_api``, which
answers as kube-apiserver does, and waits on conditions with deadlines.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from _lease_api import LeaseAPI
from loguru import logger

from metric_reader._cluster._election import ANNOTATION, ActionRecord, LeaderElector
from metric_reader._cluster._kube import InCluster, LeaseClient, in_cluster
from metric_reader._config import ConfigError, ElectionSettings, load_settings
from metric_reader._core._exceptions import KubeError

pytestmark = pytest.mark.anyio
TIMING = ElectionSettings(lease_duration=1.0, renew_deadline=0.6, retry_period=0.1)
SLOW_EXPIRY = ElectionSettings(lease_duration=10.0, renew_deadline=8.0, retry_period=0.1)
"""For the tests of what happens "at once" (within a few retry periods): waiting for the
deadline or the expiry instead would take seconds longer, far beyond a busy machine's delays."""
NAME = "metric-reader-leader"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LeaseAPI]:
    with LeaseAPI(tmp_path / "api") as server:
        yield server


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m.record["message"])), level="DEBUG")
    yield lines
    logger.remove(sink)


def cluster(api: LeaseAPI, token: str) -> InCluster:
    account = api.service_account(token)
    found = in_cluster(api.env(account), account)
    assert isinstance(found, InCluster), found
    return found


def elector(
    api: LeaseAPI,
    name: str,
    adopted: list[ActionRecord] | None = None,
    timing: ElectionSettings = TIMING,
) -> LeaderElector:
    client = LeaseClient(cluster(api, f"{name}-token"), "default", NAME, timeout=0.5)
    return LeaderElector(
        client, name, timing, adopt=(adopted.extend if adopted is not None else lambda r: None)
    )


@asynccontextmanager
async def running(*electors: LeaderElector) -> AsyncIterator[None]:
    async with anyio.create_task_group() as group:
        for each in electors:
            group.start_soon(each.run)
        yield
        group.cancel_scope.cancel()
    for each in electors:
        await each.client.aclose()


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def holder(api: LeaseAPI) -> str:
    lease = api.lease("default", NAME)
    return "" if lease is None else str(lease["spec"].get("holderIdentity") or "")


async def test_the_first_replica_creates_the_lease_and_the_others_follow(api: LeaseAPI) -> None:
    a, b = elector(api, "a"), elector(api, "b")
    async with running(a):
        await wait_for(a.acting)
        async with running(b):
            await wait_for(lambda: b.holder == "a")
            await anyio.sleep(3 * TIMING.lease_duration)  # renewed all along: b never takes over
            assert a.acting() and not b.acting() and holder(api) == "a"
    lease = api.lease("default", NAME)
    assert lease is not None
    assert lease["spec"]["leaseDurationSeconds"] == 1 and lease["spec"]["leaseTransitions"] == 0


async def test_a_lease_is_taken_over_only_after_its_duration_by_the_local_clock(
    api: LeaseAPI,
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    api.set_lease(
        "default",
        NAME,
        {"holderIdentity": "gone", "leaseDurationSeconds": 1, "renewTime": long_ago},
    )
    b = elector(api, "b")
    async with running(b):
        await wait_for(lambda: b.holder == "gone")
        seen = anyio.current_time()
        await wait_for(b.acting)
        # renewTime is an hour old, but only the local observation counts (clocks differ)
        assert anyio.current_time() - seen >= 1.0 - TIMING.retry_period
    lease = api.lease("default", NAME)
    assert lease is not None and lease["spec"]["leaseTransitions"] == 1


async def test_a_conflict_is_a_lost_lease_at_once(api: LeaseAPI, logs: list[str]) -> None:
    a = elector(api, "a", timing=SLOW_EXPIRY)
    async with running(a):
        await wait_for(a.acting)
        api.set_lease("default", NAME, {"holderIdentity": "intruder", "leaseDurationSeconds": 1})
        # at once, not at the renew deadline 8 s later
        await wait_for(lambda: not a.acting(), timeout=2.0)
    assert any("409 Conflict" in line for line in logs), logs


async def test_a_leader_that_cannot_renew_stops_acting_at_its_renew_deadline(
    api: LeaseAPI, logs: list[str]
) -> None:
    a = elector(api, "a")
    async with running(a):
        await wait_for(a.acting)
        api.cut_off("a-token", mode="hang")
        cut = anyio.current_time()
        # The last moment it still acted, on the clock acting() reads: exact, however late
        # this loop wakes up on a busy machine (each ``now`` is read before ``acting()``).
        last_acting = cut
        with anyio.fail_after(TIMING.renew_deadline + 5.0):
            while True:
                now = anyio.current_time()
                if not a.acting():
                    break
                last_acting = now
                await anyio.sleep(0.01)
        assert last_acting - cut < TIMING.renew_deadline
        await wait_for(lambda: any("lost the lease" in line for line in logs), timeout=1.0)
        api.restore("a-token")
        await wait_for(a.acting)  # nobody else took it: it is ours again


async def test_claims_are_recorded_in_the_lease_and_adopted_by_a_new_leader(
    api: LeaseAPI,
) -> None:
    adopted: list[ActionRecord] = []
    a, b = elector(api, "a"), elector(api, "b", adopted)
    async with running(a):
        await wait_for(a.acting)
        async with running(b):
            await wait_for(lambda: b.holder == "a")
            record = await a.claim("disk", "base", (("pvc", "data"),), "fire", 1)
            assert record is not None
            a.outcome(record, ok=True)
            await wait_for(lambda: any(r.nonce == record.nonce for r in adopted))
    lease = api.lease("default", NAME)
    assert lease is not None
    [saved] = json.loads(lease["metadata"]["annotations"][ANNOTATION])
    assert saved[:3] == ["disk", "base", {"pvc": "data"}] and saved[3] == "fire"


async def test_a_follower_cannot_claim(api: LeaseAPI) -> None:
    a, b = elector(api, "a"), elector(api, "b")
    async with running(a):
        await wait_for(a.acting)
        async with running(b):
            await wait_for(lambda: b.holder == "a")
            assert await b.claim("disk", "base", (), "fire", 1) is None


async def test_release_hands_over_at_once(api: LeaseAPI) -> None:
    a, b = elector(api, "a", timing=SLOW_EXPIRY), elector(api, "b", timing=SLOW_EXPIRY)
    stop_a = anyio.CancelScope()
    a_stopped = anyio.Event()

    async def run_a() -> None:
        try:
            with stop_a:
                await a.run()
        finally:
            a_stopped.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run_a)
        await wait_for(a.acting)
        group.start_soon(b.run)
        await wait_for(lambda: b.holder == "a")
        # As the service does: the elector has stopped (no renewal in flight) before it
        # releases, or a late renewal could write the lease back after the release.
        stop_a.cancel()
        await a_stopped.wait()
        await a.release()
        released = anyio.current_time()
        assert not a.acting() and holder(api) == ""
        await wait_for(b.acting)
        # at once (a retry period), not after the lease duration of 10 s
        assert anyio.current_time() - released < 2.0
        group.cancel_scope.cancel()
    await a.client.aclose()
    await b.client.aclose()


async def test_a_rotated_token_is_read_again(api: LeaseAPI) -> None:
    a = elector(api, "a")
    async with running(a):
        await wait_for(a.acting)
        account = a.client.cluster.service_account_dir
        api.rotate_token("a-token", "a-token-2", account, old_valid_for=0)
        await anyio.sleep(3 * TIMING.retry_period)
        assert a.acting()
        assert api.log()[-1].token == "a-token-2" and api.log()[-1].status == 200


async def test_a_forbidden_update_is_said_in_one_line(api: LeaseAPI, logs: list[str]) -> None:
    api.forbid("create")
    a = elector(api, "a")
    async with running(a):
        await wait_for(lambda: any("Forbidden" in line for line in logs))
    [line] = [line for line in logs if "Forbidden" in line][:1]
    assert 'cannot create resource "leases"' in line and "\n" not in line


def test_outside_a_cluster_there_is_no_configuration(tmp_path: Path) -> None:
    assert "KUBERNETES_SERVICE_HOST" in str(in_cluster({}, tmp_path))
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert "no service-account token" in str(in_cluster(env, tmp_path))


BASE_ENV = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "a", "THRESHOLD": ">1"}


def test_the_settings_have_client_go_defaults() -> None:
    settings = load_settings({**BASE_ENV, "LEADER_ELECTION_ENABLED": "true"})
    assert settings.election is not None
    election = settings.election
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (
        15.0,
        10.0,
        2.0,
    )
    assert election.lock_name == "metric-reader-leader" and election.lock_namespace is None
    assert load_settings(BASE_ENV).election is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LEADER_ELECTION_RENEW_DEADLINE": "20s"},
            "LEADER_ELECTION_LEASE_DURATION (default 15s) must be longer than "
            "LEADER_ELECTION_RENEW_DEADLINE='20s': a leader must stop acting before another "
            "can take over",
        ),
        (
            {"LEADER_ELECTION_RETRY_PERIOD": "9s"},
            "LEADER_ELECTION_RENEW_DEADLINE (default 10s) must be longer than 1.2 times "
            "LEADER_ELECTION_RETRY_PERIOD='9s', so a leader can retry a renewal before it "
            "expires",
        ),
        (
            {"LEADER_ELECTION_LOCK_NAME": "Not_A_Name"},
            "LEADER_ELECTION_LOCK_NAME='Not_A_Name' is invalid: a Lease name is lower-case "
            "letters, digits, '-' and '.', starting and ending with a letter or digit (at "
            "most 253 characters)",
        ),
    ],
)
def test_settings_errors_are_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE_ENV, "LEADER_ELECTION_ENABLED": "true", **env})
    assert caught.value.problems == (message,)


def test_election_settings_without_the_election_are_said_to_be_ignored() -> None:
    settings = load_settings({**BASE_ENV, "LEADER_ELECTION_LOCK_NAME": "x"})
    assert settings.warnings == (
        "LEADER_ELECTION_LOCK_NAME ignored: leader election is not enabled",
    )


def test_records_with_extreme_numbers_are_skipped_or_clamped_never_a_crash() -> None:
    """The Lease is written by other replicas (or by hand): a record whose numbers no
    float holds is skipped, a count beyond 2**53-1 is clamped, the others are kept."""
    from metric_reader._cluster._election import ANNOTATION, decode_records
    from metric_reader._cluster._kube import Lease
    from metric_reader._engine import MAX_COUNT

    def item(rule: str, at: str, count: str) -> str:
        return f'["{rule}","base",{{}},"fire",{at},{count},"a","n","ok"]'

    text = ",".join(
        [
            item("inf-count", "1.5", "1e999"),
            item("huge-time", "1" + "0" * 400, "1"),
            item("inf-time", "1e999", "1"),
            item("huge-count", "2.5", "1" + "0" * 30),
            item("fine", "3.5", "2"),
        ]
    )
    records = decode_records(Lease({"metadata": {"annotations": {ANNOTATION: f"[{text}]"}}}))
    assert {key[0]: record.fire_count for key, record in records.items()} == {
        "huge-count": MAX_COUNT,
        "fine": 2,
    }


async def test_an_answer_far_larger_than_a_lease_is_cut_off_while_it_is_read(
    api: LeaseAPI,
) -> None:
    client = LeaseClient(cluster(api, "a-token"), "default", NAME, timeout=5.0)
    api.pad_answers(64 << 20)  # 64 MiB of white space after the JSON: valid, and absurd
    try:
        with pytest.raises(KubeError, match=r"larger than 1048576 bytes"):
            await client.get()
        api.pad_answers(0)
        assert await client.get() is None  # no Lease yet: the client goes on working
    finally:
        await client.aclose()


async def test_a_new_leader_takes_on_the_budget_the_old_one_spent(api: LeaseAPI) -> None:
    """The governor's state travels in the Lease: a failover never resets a budget, and a
    pause or a silence set on the leader holds on the follower that takes over."""
    from metric_reader._config import BudgetConfig
    from metric_reader._core import LabelMatcher, MatchOp
    from metric_reader._engine import Governor

    budget = BudgetConfig(3, 3600.0, "global")
    governors = {name: Governor(quiet=True) for name in ("a", "b")}
    for governor in governors.values():
        governor.configure(budget, {}, [], {})

    def with_governor(name: str) -> LeaderElector:
        client = LeaseClient(cluster(api, f"{name}-token"), "default", NAME, timeout=0.5)
        governor = governors[name]
        return LeaderElector(
            client,
            name,
            TIMING,
            adopt=lambda records: None,
            share=lambda: {**governor.export(), "by": name},
            take=lambda shared: governor.adopt(shared, 1e9),
        )

    leader = governors["a"]
    for at in (100.0, 200.0):
        leader.limits.spend(at)  # type: ignore[union-attr]
    leader.set_pause(300.0, None, "migration")
    leader.silences.put((LabelMatcher("alertname", MatchOp.EQ, "X"),), 0.0, 2e9, "al", "c", 1.0)
    a, b = with_governor("a"), with_governor("b")
    async with running(a):
        await wait_for(a.acting)
        async with running(b):
            follower = governors["b"]
            await wait_for(lambda: follower.paused(1e9) is not None)
            assert follower.limits is not None and follower.limits.spent() == [100.0, 200.0]
            assert len(follower.silences) == 1
    lease = api.lease("default", NAME)
    assert lease is not None
    assert json.loads(lease["metadata"]["annotations"]["metric-reader.io/governor"])["by"] == "a"
