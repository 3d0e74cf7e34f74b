"""The settings of replicas that share one rule file: this replica's shard, and the leader
election, each checked against the others' values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._keys import ELECTION_KEYS
from ._problems import Given, Problems, env_name
from ._types import ElectionSettings
from ._values import ordinal_from_hostname


def election_settings(
    top: dict[str, Given], service: dict[str, Any], problems: Problems, warnings: list[str]
) -> ElectionSettings | None:
    """``LEADER_ELECTION_*``, checked as client-go checks them: the lease duration longer
    than the renew deadline, the deadline longer than 1.2 retry periods."""
    keys = [f"leader_election_{key}" for key in ELECTION_KEYS if key != "enabled"]
    keys.append("kubernetes_service_account_dir")
    if not service["leader_election_enabled"]:
        given = [top[key].at for key in keys if key in top]
        if given:
            warnings.append(f"{', '.join(given)} ignored: leader election is not enabled")
        return None
    defaults = ElectionSettings()
    election = ElectionSettings(
        lock_name=service["leader_election_lock_name"] or defaults.lock_name,
        lock_namespace=service["leader_election_lock_namespace"],
        lease_duration=service["leader_election_lease_duration"] or defaults.lease_duration,
        renew_deadline=service["leader_election_renew_deadline"] or defaults.renew_deadline,
        retry_period=service["leader_election_retry_period"] or defaults.retry_period,
        service_account_dir=service["kubernetes_service_account_dir"]
        or defaults.service_account_dir,
    )

    def named(key: str, value: float) -> str:
        given = top.get(f"leader_election_{key}")
        if given is not None:
            return f"{given.at}={given.value!r}"
        return f"{env_name(f'leader_election_{key}')} (default {value:g}s)"

    lease, renew, retry = election.lease_duration, election.renew_deadline, election.retry_period
    if lease <= renew:
        problems.add(
            f"{named('lease_duration', lease)} must be longer than "
            f"{named('renew_deadline', renew)}: a leader must stop acting before another "
            "can take over"
        )
    if renew <= 1.2 * retry:
        problems.add(
            f"{named('renew_deadline', renew)} must be longer than 1.2 times "
            f"{named('retry_period', retry)}, so a leader can retry a renewal before it expires"
        )
    return election


def this_shard(
    top: dict[str, Given], service: dict[str, Any], environ: Mapping[str, str], problems: Problems
) -> tuple[int, int, str]:
    """This replica's shard: ``(count, index, where the index came from)``. With more than one
    shard and no SHARD_INDEX, the index is the StatefulSet ordinal of the host name
    (``HOSTNAME``, as Kubernetes sets it, else the system's host name)."""
    if "shard_count" in top and service["shard_count"] is None:
        return 1, 0, ""  # invalid, reported
    count: int = service["shard_count"] or 1
    index: int | None = service["shard_index"]
    counted = f"{top['shard_count'].at}={top['shard_count'].value!r}" if count > 1 else ""
    if "shard_index" in top:
        given = top["shard_index"]
        if index is None:
            return count, 0, ""  # invalid, reported
        if index >= count and counted:
            problems.invalid(given, f"must be below {counted} (0 to {count - 1})")
        elif index >= count:
            name = "SHARD_COUNT" if given.at == "SHARD_INDEX" else "shard_count"
            problems.invalid(
                given, f"must be 0 when {name} is not set; set {name} to the number of replicas"
            )
        return count, index, f"{given.at}={index}"
    if count == 1:
        return 1, 0, ""
    import socket  # here: only for shards without SHARD_INDEX (start-up time)

    hostname = environ.get("HOSTNAME", "").strip() or socket.gethostname()
    ordinal = ordinal_from_hostname(hostname)
    if ordinal is None:
        problems.add(
            f"{counted} needs SHARD_INDEX: host name {hostname!r} has no StatefulSet ordinal "
            f"(NAME-0, NAME-1, ...); set SHARD_INDEX (0 to {count - 1}) or run as a StatefulSet"
        )
        return count, 0, ""
    if ordinal >= count:
        problems.add(
            f"{counted} but host name {hostname!r} gives shard index {ordinal}: set SHARD_INDEX "
            f"(0 to {count - 1}), or SHARD_COUNT to the number of replicas"
        )
    return count, ordinal, f"host name {hostname}"
