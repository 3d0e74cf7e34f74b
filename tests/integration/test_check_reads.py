"""``metric-reader check`` reads each source once and says what each rule would see.

A rule that returns no series (a misspelled metric name) or whose source cannot be read is
a warning on stdout, never a failed check (exit 0): the configuration is valid, and the
source may not be reachable from where ``check`` runs. ``--no-read`` skips the reads.
An alert of a rule file is read only for its errors: returning nothing is its healthy
state, no warning.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO_ROOT, PrometheusStack, ScrapeServer, base_env, free_port


def check(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "check", *args],
        cwd=REPO_ROOT,
        env=base_env({"CONFIG_FILE": str(config)}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_says_which_rules_read_nothing_and_still_passes(
    tmp_path: Path, scrape_server: ScrapeServer
) -> None:
    scrape_server.set_value("queue_depth", 5, {"queue": "a"})
    scrape_server.set_value("queue_depth", 7, {"queue": "b"})
    nobody = f"http://127.0.0.1:{free_port()}/metrics"  # connection refused
    config = tmp_path / "rules.toml"
    config.write_text(
        f'scrape_url = "{scrape_server.url}"\n'
        '[[rules]]\nname = "queues"\nmetric_name = "queue_depth"\nthreshold = ">80"\n'
        '[[rules]]\nname = "typo"\nmetric_name = "queue_dept"\nthreshold = ">80"\n'
        f'[[rules]]\nname = "away"\nmetric_name = "queue_depth"\nscrape_url = "{nobody}"\n'
    )

    done = check(config)

    assert done.returncode == 0, done
    reads = done.stdout.split("\nfirst read of each source (5s at most):\n")[1].splitlines()
    assert reads == [
        "read queues: 2 series",
        "read typo: warning: returns no series; check the metric name, label filters or "
        "query (the service reports it as no data)",
        f"read away: warning: cannot read scrape {nobody}: cannot connect: connection "
        f"refused by 127.0.0.1:{nobody.split(':')[2].split('/')[0]} (GET {nobody})",
    ], done.stdout
    assert scrape_server.requests == 1  # one read serves both rules on the page

    skipped = check(config, "--no-read")
    assert skipped.returncode == 0, skipped
    assert "first read" not in skipped.stdout
    assert scrape_server.requests == 1


QUIET_ALERTS = """\
groups:
  - name: node
    rules:
      - alert: DiskAlmostFull
        expr: quiet_check_disk_used_ratio{job="quiet_check"} > 0.9
        for: 5m
      - alert: DiskHalfFull
        expr: quiet_check_disk_used_ratio{job="quiet_check"} > 0.25
      - alert: HostDown
        expr: up{job="quiet_check_node"} == 0
      - alert: BrokenRegex
        expr: label_replace(quiet_check_disk_used_ratio, "x", "$1", "mount", "(")
"""


def test_check_reads_the_alerts_of_rule_files_only_for_their_errors(
    tmp_path: Path, prometheus_stack: PrometheusStack
) -> None:
    """An alert whose expression returns nothing is inactive, its healthy state: no
    warning for it (the selector rule that reads nothing still has one); an alert whose
    expression fails is reported."""
    prometheus_stack.push("quiet_check_disk_used_ratio", 0.5, {"mount": "/"}, job="quiet_check")
    prometheus_stack.wait_visible('quiet_check_disk_used_ratio{job="quiet_check"}', 0.5)
    (tmp_path / "alerts.yml").write_text(QUIET_ALERTS)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"\n'
        'rule_files = ["alerts.yml"]\n'
        '[[rules]]\nname = "typo"\nmetric_name = "quiet_check_disk_used_rati"\n'
        'threshold = ">0.9"\n'
    )

    done = check(config)

    assert done.returncode == 0, done
    url = prometheus_stack.prometheus_url
    reads = done.stdout.split("\nfirst read of each source (5s at most):\n")[1].splitlines()
    assert reads == [
        "read typo: warning: returns no series; check the metric name, label filters or "
        "query (the service reports it as no data)",
        "read BrokenRegex: warning: cannot read query label_replace(quiet_check_disk_used_ratio, "
        f'"x", "$1", "mount", "(") at {url}: HTTP 422, query failed: execution: invalid '
        f"regular expression in label_replace(): ( (GET {url}/api/v1/query)",
        "alerts of the rule files: 3 of 4 read without error, 1 with series now (no "
        "series: inactive)",
    ], done.stdout
