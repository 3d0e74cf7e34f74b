"""A differential test: the public rule files that Prometheus 2.42 loads and metric-reader
refused (issue 24, point 1) are accepted by both ``promtool check rules`` (Debian's 2.42)
and metric-reader's loader, and every rule file of the corpus promtool refuses is refused
by the loader too (point 2). The loaded ones hold alerts with free-text names
(``CassandraCommitlogPendingTasks(criteo)``, ``Database backup and sync operation failed``)
and the same alert with the same labels twice in a group, which promtool only lints."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _corpus import CORPUS

from metric_reader._config import ConfigError, load_settings

PROMTOOL = shutil.which("promtool")
PROMETHEUS_LOADS = (
    "awesome-prometheus-alerts-a853318/dist/rules/cassandra/criteo-cassandra-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/cassandra/instaclustr-cassandra-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/haproxy/embedded-exporter-v2.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/haproxy/haproxy-exporter-v1.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/memcached/memcached-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/mongodb/dcu-mongodb-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/mongodb/percona-mongodb-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/mysql/mysqld-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/oracle-database/iamseth-oracledb-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/postgresql/postgres-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/proxmox-ve/prometheus-pve-exporter.yml",
    "awesome-prometheus-alerts-a853318/dist/rules/ssl/tls/ribbybibby-ssl-exporter.yml",
    "govuk-helm-charts-6aa2976/rules/database_backups_and_syncs_alerts.yaml",
    "govuk-helm-charts-6aa2976/rules/integration/"
    "database_backups_and_syncs_integration_only_alerts.yaml",
    "govuk-helm-charts-6aa2976/rules/production/"
    "database_backups_and_syncs_production_only_alerts.yaml",
    "govuk-helm-charts-6aa2976/rules/search_api_alerts.yaml",
    "govuk-helm-charts-6aa2976/rules/staging/database_backups_and_syncs_staging_only_alerts.yaml",
    "prometheus-v2.42.0/cmd/promtool/testdata/prometheus-rules.lint.yml",
    "prometheus-v2.42.0/model/rulefmt/testdata/test.yaml",
)


def _refusal(path: Path, tmp_path: Path) -> str | None:
    config = tmp_path / "rules.toml"
    config.write_text(f'prometheus_endpoint = "http://127.0.0.1:9"\nrule_files = ["{path}"]\n')
    try:
        load_settings({"CONFIG_FILE": str(config)})
    except ConfigError as exc:
        return "\n".join(exc.problems)
    return None


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
@pytest.mark.skipif(CORPUS is None, reason="no shared/compat/corpus beside the checkout")
def test_the_public_rule_files_prometheus_loads_are_loaded(tmp_path: Path) -> None:
    assert CORPUS is not None and PROMTOOL is not None
    paths = [CORPUS / name for name in PROMETHEUS_LOADS]
    promtool = subprocess.run(
        [PROMTOOL, "check", "rules", *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    refused = {path.name: _refusal(path, tmp_path) for path in paths}
    assert {name: why for name, why in refused.items() if why is not None} == {}


def _rule_files(corpus: Path) -> list[Path]:
    """The corpus' rule files (the others are promtool's unit tests)."""
    return sorted(
        path
        for path in corpus.rglob("*")
        if path.suffix in (".yml", ".yaml")
        and re.search(r"(?m)^groups:", path.read_text(errors="replace"))
    )


def _refused_by_promtool(paths: list[Path]) -> list[Path]:
    """The files of ``paths`` that ``promtool check rules`` refuses: it says ``SUCCESS`` on
    stdout after ``Checking FILE`` for each file it loads (lint off: a warning only)."""
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", "--lint=none", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    loaded = set(re.findall(r"(?m)^Checking (.*)\n  SUCCESS: ", done.stdout))
    return [path for path in paths if str(path) not in loaded]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
@pytest.mark.skipif(CORPUS is None, reason="no shared/compat/corpus beside the checkout")
def test_the_public_rule_files_prometheus_refuses_are_refused(tmp_path: Path) -> None:
    """promtool's own bad files among them (``bad_lname.bad.yaml``: a label named
    ``ins-tance``, ``bad_annotation.bad.yaml``, ``invalid_record_name.bad.yaml``, ...)."""
    assert CORPUS is not None
    refused = _refused_by_promtool(_rule_files(CORPUS))
    assert len(refused) >= 13, refused  # Prometheus 2.42's *.bad.yaml and bad-rules-syntax.yml
    loaded = [str(path.relative_to(CORPUS)) for path in refused if _refusal(path, tmp_path) is None]
    assert loaded == []
