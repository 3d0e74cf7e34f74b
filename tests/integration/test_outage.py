"""One outage, one line (issue 23): a Prometheus that is down, read by 20 rules (alerts of a
rule file, ``QUERY`` rules), is one ``poll failed`` line for their group, not one a rule;
it tells the user to set ``PROMETHEUS_ENDPOINT`` only when nothing set it; its recovery is
one line too; and ``/metrics`` stays light: reads are counted by group, and no label holds
a rule's PromQL.

Real ``python -m metric_reader`` processes against a closed loopback port. The default
endpoint (``http://prometheus:9090``) is made to refuse without any name lookup: the
service's requests go through ``HTTP_PROXY``, a closed loopback port."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .conftest import EVENT_TIMEOUT, Service, ServiceFactory, free_port

ALERTS = {  # alert: expr, node-exporter style
    "HostOutOfMemory": "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.1",
    "HostMemoryUnderPressure": "rate(node_vmstat_pgmajfault[1m]) > 1000",
    "HostNetworkThroughputIn": "sum by (instance) (rate(node_network_receive_bytes_total[2m])) > 1",
    "HostOutOfDiskSpace": 'node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} < 1e9',
    "HostDiskWillFillIn24Hours": "predict_linear(node_filesystem_avail_bytes[1h], 86400) < 0",
    "HostOutOfInodes": "node_filesystem_files_free / node_filesystem_files < 0.1",
    "HostHighCpuLoad": 'avg by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[2m])) > 0.8',
    "HostContextSwitching": "rate(node_context_switches_total[5m]) > 10000",
    "HostSwapIsFillingUp": "1 - node_memory_SwapFree_bytes / node_memory_SwapTotal_bytes > 0.8",
    "HostClockSkew": "abs(node_timex_offset_seconds) > 0.05",
    "HostOomKillDetected": "increase(node_vmstat_oom_kill[1m]) > 0",
    "HostNetworkReceiveErrors": "rate(node_network_receive_errs_total[2m]) > 0.01",
}
QUERIES = {  # [[rules]] name: QUERY
    f"checkout-errors-{n}": f'sum(rate(http_requests_total{{job="checkout-{n}",code=~"5.."}}[5m]))'
    for n in range(8)
}
RULES = len(ALERTS) + len(QUERIES)
READ_METRICS = (
    "metric_reader_polls",
    "metric_reader_poll_errors",
    "metric_reader_poll_duration_seconds",
    "metric_reader_target_up",
    "metric_reader_target_last_success_timestamp_seconds",
)


def _config(tmp_path: Path, endpoint: str | None) -> Path:
    alerts = "".join(
        f"      - alert: {name}\n        expr: '{expr}'\n        for: 5m\n"
        "        labels:\n          severity: warning\n"
        for name, expr in ALERTS.items()
    )
    (tmp_path / "node.yml").write_text(f"groups:\n  - name: node-exporter\n    rules:\n{alerts}")
    rules = "".join(
        f'[[rules]]\nname = "{name}"\nquery = {json.dumps(query)}\nthreshold = ">1"\n'
        for name, query in QUERIES.items()
    )
    endpoint_line = f'prometheus_endpoint = "{endpoint}"\n' if endpoint else ""
    config = tmp_path / "rules.toml"
    config.write_text(
        f'{endpoint_line}polling_interval = "500ms"\nrule_files = ["node.yml"]\n'
        # One read per rule and tick, as the failed reads are counted here.
        f"batch_expressions = false\n{rules}"
    )
    return config


def _records(svc: Service) -> list[dict[str, Any]]:
    found = []
    for line in svc.stderr().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _failed_lines(svc: Service) -> list[dict[str, Any]]:
    return [
        r for r in _records(svc) if r["level"] == "error" or r["message"].startswith("poll failed")
    ]


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _failed_reads(port: int) -> float:
    for family in text_string_to_metric_families(_metrics(port)):
        if family.name == "metric_reader_poll_errors":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


EMPTY_PROMETHEUS = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()


ThreadingHTTPServer.request_queue_size = 128  # 5: a burst of connections would wait a second
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@contextlib.contextmanager
def _prometheus_on(port: int) -> Iterator[None]:
    """A Prometheus whose every answer is an empty vector, listening on ``port``: a process
    of its own, so that the test's own work does not slow its answers."""
    proc = subprocess.Popen([sys.executable, "-c", EMPTY_PROMETHEUS, str(port)])
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_prometheus_down_is_one_line_for_its_group_and_metrics_name_no_query(
    tmp_path: Path, service: ServiceFactory
) -> None:
    prometheus_port, port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{prometheus_port}"
    svc = service(
        {
            "CONFIG_FILE": str(_config(tmp_path, endpoint)),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
        }
    )
    # Three ticks of the group, every read failing: 60 failed reads.
    svc.wait_until(
        lambda: svc.alive() and _metrics_up(port) and _failed_reads(port) >= 3 * RULES,
        EVENT_TIMEOUT,
        "three ticks of failed reads",
    )
    [failed] = _failed_lines(svc)  # the same error again within a minute: not said again
    group = f"prometheus {endpoint} every 500ms"
    assert failed["message"] == (
        f"poll failed: cannot connect: connection refused by 127.0.0.1:{prometheus_port} "
        f"(GET {endpoint}/api/v1/query)"
    ), failed
    assert (failed["group"], failed["endpoint"], failed["reads"], failed["rules"]) == (
        group,
        endpoint,
        RULES,
        RULES,
    )
    assert "PROMETHEUS_ENDPOINT" not in svc.stderr()  # the user set it: it is not the cause

    families = list(text_string_to_metric_families(_metrics(port)))
    for family in families:
        for sample in family.samples:
            for value in sample.labels.values():
                assert "node_" not in value and "http_requests_total" not in value, sample
    reads = [s for f in families if f.name in READ_METRICS for s in f.samples]
    assert {s.labels["group"] for s in reads} == {group}
    buckets = [s for s in reads if s.name.endswith("_bucket")]
    assert len(buckets) == 14, buckets  # one histogram, for the group
    per_rule = [s for f in families for s in f.samples if "rule" in s.labels]
    assert len(per_rule) <= 5 * RULES, len(per_rule)  # states, no data, calls in flight

    # Prometheus comes back: one line for every read that recovered.
    with _prometheus_on(prometheus_port):
        svc.wait_until(
            lambda: "poll recovered" in svc.stderr(), EVENT_TIMEOUT, "the recovery", interval=0.2
        )
        svc.wait_until(lambda: _target_up(port), EVENT_TIMEOUT, "target_up 1")
        recovered = [r for r in _records(svc) if r["message"] == "poll recovered"]
        assert len(recovered) == 1, _polls_said(svc)
        assert (recovered[0]["group"], recovered[0]["reads"]) == (group, RULES), _polls_said(svc)
        assert recovered[0]["failed_polls"] >= 3 * RULES
        assert _failed_lines(svc) == [failed]
        assert svc.stop() == 0


def _polls_said(svc: Service) -> str:
    """What the service said about its reads, one record a line (for a failure)."""
    return "\n".join(
        str((r["time"], r["message"][:70], r.get("reads"), r.get("failed_polls")))
        for r in _records(svc)
        if "poll" in r["message"] or "missed" in r["message"]
    )


def _metrics_up(port: int) -> bool:
    try:
        _metrics(port)
    except OSError:
        return False
    return True


def _target_up(port: int) -> bool:
    for family in text_string_to_metric_families(_metrics(port)):
        if family.name == "metric_reader_target_up":
            return all(s.value == 1 for s in family.samples)
    return False


def test_the_endpoint_setting_is_named_only_when_it_was_left_at_its_default(
    tmp_path: Path, service: ServiceFactory
) -> None:
    """The same refused endpoint, ``http://prometheus:9090``: defaulted, the line says to
    set PROMETHEUS_ENDPOINT; set explicitly to that value, it does not."""
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens: every request is refused
    defaulted, given = tmp_path / "defaulted", tmp_path / "given"
    defaulted.mkdir()
    given.mkdir()
    env = {"LOG_LEVEL": "info", "LOG_FORMAT": "json", "HTTP_PROXY": proxy}
    services = {
        "defaulted": service({"CONFIG_FILE": str(_config(defaulted, None)), **env}),
        "given": service(
            {
                "CONFIG_FILE": str(_config(given, None)),
                "PROMETHEUS_ENDPOINT": "http://prometheus:9090",
                **env,
            }
        ),
    }
    for svc in services.values():
        svc.wait_until(lambda s=svc: _failed_lines(s), EVENT_TIMEOUT, "a failed read")
    [said] = _failed_lines(services["defaulted"])
    assert said["rules"] == RULES
    assert said["message"].endswith(
        "(GET http://prometheus:9090/api/v1/query); PROMETHEUS_ENDPOINT is not set, so its "
        "default http://prometheus:9090 is used: set PROMETHEUS_ENDPOINT "
        "(prometheus_endpoint in CONFIG_FILE) to your Prometheus"
    ), said
    [said] = _failed_lines(services["given"])
    assert said["rules"] == RULES
    assert said["message"] == (
        "poll failed: cannot connect: connection refused by prometheus:9090 "
        "(GET http://prometheus:9090/api/v1/query)"
    ), said
    assert "PROMETHEUS_ENDPOINT" not in services["given"].stderr()
