"""Sharding end to end: ``shard_of`` against a real Prometheus ``hashmod``, three real
replicas splitting one rule file, a replica that owns no rule staying up, and ``check``."""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from metric_reader._cluster._shard import shard_of

from .conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    STARTUP_TIMEOUT,
    RecordingPlugins,
    ScrapeServer,
    Service,
    ServiceFactory,
    _binary,
    _start_logged,
    _stop_process,
    _tail,
    base_env,
    free_port,
    wait_until,
)

MAX_UINT64 = 2**64 - 1
RULES = [
    "disk-space",
    "queue-depth",
    "error-rate",
    "latency-p99",
    "heartbeat",
    "cpu-load",
    "memory-rss",
    "open-files",
    "replication-lag",
]


# --- the hash, against the real thing ----------------------------------------------------------


def test_shard_of_agrees_with_a_real_prometheus_hashmod(tmp_path: Path) -> None:
    """One target per name, labelled rule=<name>; relabel_configs hashmod the label with
    modulus 3, 1000 and 2**64 - 1 (the whole 64-bit value); /api/v1/targets shows the result."""
    rng = random.Random(20240601)
    alphabet = string.ascii_letters + string.digits + "_.:-"
    names = [*RULES, "baz", "foo\nbar", "ünïcode-é", "日本語", "a", "-"]
    names += ["".join(rng.choices(alphabet, k=rng.randint(1, 60))) for _ in range(200)]
    names = list(dict.fromkeys(names))
    moduli = {"m3": 3, "m1000": 1000, "m64": MAX_UINT64}
    config = {  # JSON is YAML
        "global": {"scrape_interval": "1h", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "hashmod",
                "static_configs": [
                    {"targets": ["127.0.0.1:9"], "labels": {"rule": name}} for name in names
                ],
                "relabel_configs": [
                    {
                        "source_labels": ["rule"],
                        "action": "hashmod",
                        "modulus": modulus,
                        "target_label": label,
                    }
                    for label, modulus in moduli.items()
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = _start_logged(
        [
            _binary("PROMETHEUS_BIN", "prometheus", "prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log,
        tmp_path,
    )
    try:

        def targets() -> list[dict[str, Any]] | None:
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {_tail(log)}")
            url = f"http://127.0.0.1:{port}/api/v1/targets?state=active"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    active: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
            except OSError:
                return None
            return active if len(active) == len(names) else None

        active = wait_until(targets, STARTUP_TIMEOUT, f"Prometheus to list {len(names)} targets")
    finally:
        _stop_process(proc)
    by_name = {target["labels"]["rule"]: target["labels"] for target in active}
    assert set(by_name) == set(names)
    wrong = [
        (name, label, labels[label], shard_of(name, modulus))
        for name, labels in by_name.items()
        for label, modulus in moduli.items()
        if int(labels[label]) != shard_of(name, modulus)
    ]
    assert wrong == [], "(name, label, prometheus, shard_of)"


# --- replicas ----------------------------------------------------------------------------------


def breaching_rules(path: Path, server: ScrapeServer, names: list[str]) -> Path:
    """A rule file: one rule per name, each on its own series of one page, all breached."""
    lines = [
        f'scrape_url = "{server.url}"',
        'polling_interval = "250ms"',
        'backoff_delay = "0s"',
        'action_plugin = "recorder"',
    ]
    for name in names:
        server.set_value("sharded_load", 5, {"rule": name})
        lines += [
            "[[rules]]",
            f'name = "{name}"',
            'metric_name = "sharded_load"',
            f"label_filters = 'rule=\"{name}\"'",
            'threshold = ">1"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def rules_run(records: Path) -> list[str]:
    """The rules whose action ran, one entry per call, from one replica's RECORDER_FILE."""
    try:
        text = records.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line)["rule"] for line in text.splitlines(keepends=True) if "\n" in line]


def test_three_replicas_run_every_rule_exactly_once_on_its_own_shard(
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    owners = {index: {n for n in RULES if shard_of(n, 3) == index} for index in range(3)}
    assert all(owners.values()), f"each shard must own a rule for this test: {owners}"
    config = breaching_rules(tmp_path / "rules.toml", scrape_server, RULES)
    records = [tmp_path / f"records-{index}.jsonl" for index in range(3)]
    index_by = [{"SHARD_INDEX": "0"}, {"SHARD_INDEX": "1"}, {"HOSTNAME": "metric-reader-2"}]
    replicas: list[Service] = [
        service(
            {
                **recording_plugin_dir.env,
                "CONFIG_FILE": str(config),
                "SHARD_COUNT": "3",
                "RECORDER_FILE": str(records[index]),
                **index_by[index],
            }
        )
        for index in range(3)
    ]

    def calls() -> str:
        return "; ".join(f"shard {i}: {sorted(rules_run(records[i]))}" for i in range(3))

    for index, replica in enumerate(replicas):
        replica.extra_diagnostics = [calls]
        replica.wait_until(
            lambda index=index: len(rules_run(records[index])) >= len(owners[index]),
            EVENT_TIMEOUT,
            lambda index=index: f"shard {index} to run {sorted(owners[index])}",
        )
    # A few more polls by all three: nothing runs twice (BACKOFF_DELAY=0s), nothing moves.
    scrape_server.wait_requests(3 * 6, diagnostics=replicas[0].diagnostics)
    for index, replica in enumerate(replicas):
        assert replica.alive(), replica.diagnostics()
        assert sorted(rules_run(records[index])) == sorted(owners[index]), calls()
    assert sorted(r for path in records for r in rules_run(path)) == sorted(RULES)

    said = {index: f"shard {index} of 3: {len(owners[index])} of 9 rules" for index in range(3)}
    for index, replica in enumerate(replicas):
        assert said[index] in replica.output(), replica.diagnostics()
    assert 'index_from="host name metric-reader-2"' in replicas[2].output()
    for index, replica in enumerate(replicas):
        watching = {n for n in RULES if f"watching  rule={n} " in replica.output()}
        assert watching == owners[index], replica.diagnostics()


def test_a_replica_that_owns_no_rule_stays_up_healthy_and_idle(
    tmp_path: Path,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    name = "lonely-rule"
    owner = shard_of(name, 2)
    config = breaching_rules(tmp_path / "rules.toml", scrape_server, [name])
    port = free_port()
    env = {**recording_plugin_dir.env, "CONFIG_FILE": str(config), "SHARD_COUNT": "2"}
    busy = service({**env, "SHARD_INDEX": str(owner)})
    idle = service({**env, "SHARD_INDEX": str(1 - owner), "LISTEN_ADDRESS": f"127.0.0.1:{port}"})

    def status(path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return int(answer.status)
        except OSError:
            return None

    idle.wait_until(lambda: status("/readyz") == 200, STARTUP_TIMEOUT, "/readyz to answer 200")
    busy.wait_until(
        lambda: recording_plugin_dir.records(), EVENT_TIMEOUT, "the owner to run the action"
    )
    scrape_server.wait_requests(8, diagnostics=busy.diagnostics)  # time passes, by the owner
    assert idle.alive(), idle.diagnostics()
    assert (status("/healthz"), status("/readyz")) == (200, 200)
    assert [r["rule"] for r in recording_plugin_dir.records()] == [name]
    assert "this shard owns none of the 1 rules" in idle.output()
    assert idle.stop() == 0
    assert "INFO    stopped" in idle.output(), idle.diagnostics()


# --- check -------------------------------------------------------------------------------------


def check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        cwd=REPO_ROOT,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_shows_each_rule_shard_and_what_this_replica_owns(
    tmp_path: Path, scrape_server: ScrapeServer
) -> None:
    config = breaching_rules(tmp_path / "rules.toml", scrape_server, RULES)
    config.write_text(config.read_text().replace('action_plugin = "recorder"\n', ""))
    result = check(CONFIG_FILE=str(config), SHARD_COUNT="3", HOSTNAME="metric-reader-1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["RULE", "SHARD", "READS", "FROM", "EVERY", "ACTION", "HARD"]
    shown = {line.split()[0]: int(line.split()[1]) for line in lines[3 : 3 + len(RULES)]}
    assert shown == {name: shard_of(name, 3) for name in RULES}
    owned = [name for name in RULES if shard_of(name, 3) == 1]
    assert (
        f"this replica is shard 1 of 3 (from host name metric-reader-1): owns {len(owned)} of 9 "
        f"rules: {', '.join(owned)}"
    ) in lines

    result = check(CONFIG_FILE=str(config), SHARD_COUNT="3", SHARD_INDEX="2")
    assert result.returncode == 0, result.stderr
    assert "this replica is shard 2 of 3 (from SHARD_INDEX=2)" in result.stdout


def test_check_without_a_shard_index_says_how_to_give_one(
    tmp_path: Path, scrape_server: ScrapeServer
) -> None:
    config = breaching_rules(tmp_path / "rules.toml", scrape_server, RULES)
    result = check(CONFIG_FILE=str(config), SHARD_COUNT="3", HOSTNAME="laptop")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "metric-reader: configuration error: SHARD_COUNT='3' needs SHARD_INDEX: host name "
        "'laptop' has no StatefulSet ordinal (NAME-0, NAME-1, ...); set SHARD_INDEX (0 to 2) "
        "or run as a StatefulSet"
    ]
