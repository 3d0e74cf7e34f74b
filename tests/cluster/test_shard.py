"""Sharding rules over replicas: Prometheus' ``hashmod`` of the rule name, the index from
SHARD_INDEX or a StatefulSet host name, and one-line errors. The same hash checked live
against a real Prometheus is in ``tests/integration/test_sharding.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from metric_reader._cluster._shard import owned_rules, shard_of
from metric_reader._config import KNOWN_VARIABLES, ConfigError, load_settings, ordinal_from_hostname

MAX_UINT64 = 2**64 - 1

# From a real Prometheus (2.42.0, Debian): a scrape job with one target per name, labelled
# rule=<name>, and relabel_configs `action: hashmod, source_labels: [rule]` with modulus
# 2**64 - 1 (so the label shows the whole 64-bit value) and modulus 3; read back from
# /api/v1/targets. tests/integration/test_sharding.py repeats this live for 200 names.
FROM_PROMETHEUS = {
    "a": (3585878926028121697, 1),
    "b": (4239888873585465231, 0),
    "baz": (16450797887570275976, 2),
    "foo\nbar": (4523751842884085734, 1),
    "data-volume-space": (15573364218900355815, 0),
    "queue-depth": (3063813075720957983, 2),
    "checkout-error-rate": (2003551308502809972, 0),
    "batch-heartbeat": (2427018467064743551, 1),
    "rule-00": (16197543333594875342, 2),
    "ünïcode-é": (13203257260596620963, 2),
    "": (16825458760271544958, 1),
}


@pytest.mark.parametrize(("name", "expected"), FROM_PROMETHEUS.items())
def test_shard_of_equals_what_a_real_prometheus_hashmod_gave(
    name: str, expected: tuple[int, int]
) -> None:
    full, of_three = expected
    assert shard_of(name, MAX_UINT64) == full
    assert shard_of(name, 3) == of_three


def test_shard_of_passes_the_hashmod_cases_of_prometheus_own_relabel_tests() -> None:
    # model/relabel/relabel_test.go: c="baz" -> d="976", a="foo\nbar" -> b="734" (modulus 1000)
    assert shard_of("baz", 1000) == 976
    assert shard_of("foo\nbar", 1000) == 734


def test_one_shard_owns_everything() -> None:
    assert {shard_of(f"rule-{i}", 1) for i in range(100)} == {0}


def test_a_bad_count_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("a", 0)


@pytest.mark.parametrize("count", [2, 3, 7, 16])
def test_many_names_spread_roughly_evenly(count: int) -> None:
    names = [f"rule-{i}" for i in range(1000 * count)]
    sizes = Counter(shard_of(name, count) for name in names)
    assert set(sizes) == set(range(count))
    # 1000 expected a shard; binomial sd ~ 31, so 15% off would be a 5-sigma event.
    assert all(850 <= size <= 1150 for size in sizes.values()), sizes


def test_the_shard_is_the_same_in_every_process_whatever_the_hash_seed() -> None:
    names = ["disk-space", "queue-depth", "cpu-load", "ünïcode", *(f"r{i}" for i in range(50))]
    here = [shard_of(name, 5) for name in names]
    program = (
        "import json, sys\nfrom metric_reader._cluster._shard import shard_of\n"
        "print(json.dumps([shard_of(n, 5) for n in json.loads(sys.argv[1])]))"
    )
    for seed in ("0", "1", "12345", "random"):
        result = subprocess.run(
            [sys.executable, "-c", program, json.dumps(names)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(result.stdout) == here, f"PYTHONHASHSEED={seed}"


@pytest.mark.parametrize(
    ("hostname", "ordinal"),
    [
        ("metric-reader-0", 0),
        ("metric-reader-2", 2),
        ("web-12", 12),
        ("a-b-c-3", 3),
        ("metric-reader-2.metric-reader.monitoring.svc.cluster.local", 2),
        (" web-1\n", 1),
        ("metric-reader", None),
        ("metric-reader-", None),
        ("-1", None),
        ("web-01", None),  # a StatefulSet never writes leading zeros
        ("web-1a", None),
        ("metric-reader-7d9f8b6c5-x2k4z", None),  # a Deployment's pod
        ("localhost", None),
        ("", None),
    ],
)
def test_ordinal_from_a_statefulset_host_name(hostname: str, ordinal: int | None) -> None:
    assert ordinal_from_hostname(hostname) == ordinal


# --- settings --------------------------------------------------------------------------------


def rule_file(tmp_path: Path, names: list[str], top: str = "") -> Path:
    path = tmp_path / "rules.toml"
    rules = "".join(f'[[rules]]\nname = "{n}"\nmetric_name = "m"\n' for n in names)
    path.write_text(top + rules)
    return path


NAMES = [f"rule-{i}" for i in range(30)]


def test_without_sharding_every_rule_is_owned(tmp_path: Path) -> None:
    settings = load_settings({"CONFIG_FILE": str(rule_file(tmp_path, NAMES))})
    assert (settings.shard_count, settings.shard_index) == (1, 0)
    assert owned_rules(settings) == settings.rules


def test_the_shards_split_the_rules_without_gap_or_overlap(tmp_path: Path) -> None:
    env = {"CONFIG_FILE": str(rule_file(tmp_path, NAMES)), "SHARD_COUNT": "3"}
    owned = [
        {r.name for r in owned_rules(load_settings({**env, "SHARD_INDEX": str(i)}))}
        for i in range(3)
    ]
    assert sorted(n for names in owned for n in names) == sorted(NAMES)
    for index, names in enumerate(owned):
        assert names == {n for n in NAMES if shard_of(n, 3) == index}


def test_shard_settings_come_from_the_rule_file_and_the_environment_overrides(
    tmp_path: Path,
) -> None:
    path = rule_file(tmp_path, NAMES, top="shard_count = 3\nshard_index = 1\n")
    settings = load_settings({"CONFIG_FILE": str(path)})
    assert (settings.shard_count, settings.shard_index) == (3, 1)
    assert settings.shard_index_from == f"{path}:2: shard_index=1"
    settings = load_settings({"CONFIG_FILE": str(path), "SHARD_INDEX": "2"})
    assert (settings.shard_count, settings.shard_index) == (3, 2)
    assert settings.shard_index_from == "SHARD_INDEX=2"


def test_the_index_comes_from_the_statefulset_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"CONFIG_FILE": str(rule_file(tmp_path, NAMES)), "SHARD_COUNT": "3"}
    settings = load_settings({**env, "HOSTNAME": "metric-reader-2"})
    assert (settings.shard_index, settings.shard_index_from) == (2, "host name metric-reader-2")
    monkeypatch.setattr("socket.gethostname", lambda: "metric-reader-1")
    settings = load_settings(env)  # no HOSTNAME: the system's host name
    assert (settings.shard_index, settings.shard_index_from) == (1, "host name metric-reader-1")
    settings = load_settings({**env, "HOSTNAME": "metric-reader-1", "SHARD_INDEX": "0"})
    assert settings.shard_index == 0  # SHARD_INDEX wins


def test_plugins_and_fire_need_no_shard_index() -> None:
    settings = load_settings({"SHARD_COUNT": "3", "HOSTNAME": "laptop"}, rules=False)
    assert settings.rules == ()


def test_the_shard_variables_are_known_so_typos_are_reported() -> None:
    assert {"SHARD_COUNT", "SHARD_INDEX"} <= set(KNOWN_VARIABLES)
    with pytest.raises(ConfigError, match=r"SHARD_CONUT .* did you mean SHARD_COUNT\?"):
        load_settings({"METRIC_NAME": "m", "SHARD_CONUT": "3"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT='0' is invalid: expected a whole number of at least 1"),
        (
            {"SHARD_COUNT": "three"},
            "SHARD_COUNT='three' is invalid: expected a whole number of at least 1",
        ),
        (
            {"SHARD_COUNT": "3", "SHARD_INDEX": "-1"},
            "SHARD_INDEX='-1' is invalid: expected a whole number of at least 0 "
            "(the first shard is 0)",
        ),
        (
            {"SHARD_COUNT": "3", "SHARD_INDEX": "3"},
            "SHARD_INDEX='3' is invalid: must be below SHARD_COUNT='3' (0 to 2)",
        ),
        (
            {"SHARD_INDEX": "1"},
            "SHARD_INDEX='1' is invalid: must be 0 when SHARD_COUNT is not set; "
            "set SHARD_COUNT to the number of replicas",
        ),
        (
            {"SHARD_COUNT": "3", "HOSTNAME": "laptop"},
            "SHARD_COUNT='3' needs SHARD_INDEX: host name 'laptop' has no StatefulSet ordinal "
            "(NAME-0, NAME-1, ...); set SHARD_INDEX (0 to 2) or run as a StatefulSet",
        ),
        (
            {"SHARD_COUNT": "3", "HOSTNAME": "metric-reader-5"},
            "SHARD_COUNT='3' but host name 'metric-reader-5' gives shard index 5: set "
            "SHARD_INDEX (0 to 2), or SHARD_COUNT to the number of replicas",
        ),
    ],
)
def test_shard_mistakes_are_one_line_naming_the_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"METRIC_NAME": "m", **env})
    assert error.value.problems == (message,)


def test_a_shard_mistake_in_the_rule_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = rule_file(tmp_path, NAMES, top="shard_count = 2\nshard_index = 2\n")
    with pytest.raises(ConfigError) as error:
        load_settings({"CONFIG_FILE": str(path)})
    assert error.value.problems == (
        f"{path}:2: shard_index=2 is invalid: must be below {path}:1: shard_count=2 (0 to 1)",
    )
