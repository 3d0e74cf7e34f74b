"""The status page of a real rule file, in a real browser (headless Chromium): 100 alerts of
node-exporter style with long PromQL, one firing and two pending far down the file.

In a 1400-pixel-wide window no text of a table cell may run into another cell of its row
or out of its table, the page may not scroll sideways, and the firing alert comes first,
then the pending ones; every other alert is still on the page, each expression shown once.
A script added to the test's copy of the page (the page itself has none) measures the
boxes the browser laid out and writes them into the DOM, which ``--dump-dom`` returns.
"""

from __future__ import annotations

import html
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from _browser import BROWSER_TIMEOUT, browse

from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import RECENT_SERIES_PER_RULE, Rule, make_rule
from metric_reader._sources import build_groups
from metric_reader._surface._selection import Selection
from metric_reader._surface._status import status_snapshot
from metric_reader._surface._status_page import (
    PAGE_SERIES,
    PAGE_SERIES_PER_RULE,
    render_status_page,
)
from metric_reader._surface._view import FetchStatus, GroupStatus, LastEvaluation

ALERTS = 100
FIRING = 87
PENDING = (45, 93)
WINDOW = (1400, 1000)
NOW = 10_000.0
SELECTION = Selection(
    limit=PAGE_SERIES, per_rule=PAGE_SERIES_PER_RULE, by_severity=True, recent=True
)

FILESYSTEM = (
    '100 - ((node_filesystem_avail_bytes{{job="node",mountpoint="/srv/volume-{i}",'
    'fstype!~"tmpfs|overlay|squashfs|nsfs"}} * 100) / node_filesystem_size_bytes{{job="node",'
    'mountpoint="/srv/volume-{i}",fstype!~"tmpfs|overlay|squashfs|nsfs"}}) < 10 and ON '
    '(instance, device, mountpoint) node_filesystem_readonly{{job="node"}} == 0'
)
MEMORY = """\
|
          (node_memory_MemAvailable_bytes{{job="node",instance=~"db-{i}.*"}}
            / node_memory_MemTotal_bytes{{job="node",instance=~"db-{i}.*"}} * 100 < 10)
          * on (instance) group_left (nodename) node_uname_info{{nodename=~".+"}}"""
DISK_IO = (
    '(rate(node_disk_io_time_seconds_total{{job="node",device=~"(/dev/)?(nvme[0-9]+n[0-9]+'
    '|sd[a-z]+|vd[a-z]+)",instance="storage-{i}.example.internal:9100"}}[1m]) > 0.8) '
    '* on (instance) group_left (nodename) node_uname_info{{nodename=~".+"}}'
)


def rule_file(path: Path) -> None:
    """``ALERTS`` alerts in three groups, each expression its own (no two share a query)."""
    lines = ["groups:"]
    for first, group, shape in ((0, "node-filesystem", FILESYSTEM), (40, "node-memory", MEMORY)):
        lines += [f"  - name: {group}", "    interval: 30s", "    rules:"]
        for i in range(first, first + 40):
            expr = shape.format(i=i)
            expr = expr if expr.startswith("|") else "'" + expr + "'"
            lines += [
                f"      - alert: {group.title().replace('-', '')}Alert{i:03d}",
                f"        expr: {expr}",
                "        for: 2m",
                "        labels: {severity: warning}",
                "        annotations: {summary: 'on {{ $labels.instance }}'}",
            ]
    lines += ["  - name: node-disk", "    interval: 1m", "    rules:"]
    for i in range(ALERTS - 80):
        lines += [
            f"      - alert: HostUnusualDiskIoAlert{i:03d}",
            f"        expr: '{DISK_IO.format(i=i)}'",
            "        for: 5m",
        ]
    path.write_text("\n".join(lines) + "\n")


def page_of_the_rule_file(tmp_path: Path) -> tuple[str, list[Rule]]:
    """The page the service serves for the rule file after 20 minutes of evaluations."""
    rule_file(tmp_path / "alerts.yml")
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://prometheus.monitoring.svc.cluster.local:9090"\n'
        'rule_files = ["alerts.yml"]\naction_plugin = "log_action"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    rules = [make_rule(config) for config in settings.rules]
    assert len(rules) == ALERTS
    for rule in rules:
        rule.keep_recent(RECENT_SERIES_PER_RULE)
    mount = (
        ("device", "/dev/mapper/vg--data-lv--postgresql--primary"),
        ("instance", "storage-node-17.eu-west-1.compute.example.internal:9100"),
        ("job", "node"),
        ("mountpoint", "/var/lib/kubelet/pods/3f2a9c1e-6b7d-4e2f-9a1c-0d8e7f6a5b4c/volumes"),
    )
    for at in range(int(NOW) - 1200, int(NOW) + 1, 30):
        for index, rule in enumerate(rules):
            breached = index == FIRING or (index in PENDING and at >= NOW - 60)
            samples = [Sample(mount, 4.25), Sample((("instance", "b"),), 7.5)] if breached else []
            for action in rule.evaluate(float(at), samples):
                rule.finish(float(at) + 0.2, action, True)
    groups = build_groups(settings.rules)  # as the service plans its reads
    fetches = [fetch for group in groups for fetch in group.fetches]
    failing = fetches[-1].description  # an expression Prometheus cannot run
    status = status_snapshot(
        rules,
        [
            FetchStatus(fetch.description, fetch.interval, len(fetch.rules), NOW, None)
            for fetch in fetches[:-1]
        ]
        + [FetchStatus(failing, 60.0, 1, None, f"cannot read {failing}: HTTP 422, {'x' * 300}")],
        NOW,
        ready=True,
        started_mono=NOW - 1300,
        version="1.2.3",
        selection=SELECTION,
        groups=[
            GroupStatus(group.name, group.interval, group.offset, 40, 40, 0, 0) for group in groups
        ],
        evaluations={rule.name: LastEvaluation(NOW, 0.0123456) for rule in rules},
    )
    return render_status_page(status, SELECTION), rules


MEASURE = """
<script>
(() => {
  const found = [];
  const tables = document.querySelectorAll("table");
  const overlap = (a, b) =>
    a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const boxes = (cell) => {
    const out = [];
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const box of range.getClientRects()) out.push([box, node.textContent.trim()]);
    }
    for (const element of cell.querySelectorAll("svg, code, .label, .state")) {
      out.push([element.getBoundingClientRect(), element.outerHTML]);
    }
    return out.filter(([box]) => box.width > 0 && box.height > 0);
  };
  for (const table of tables) {
    const edge = table.getBoundingClientRect();
    for (const row of table.rows) {
      const cells = [...row.cells].map((cell) => [cell, cell.getBoundingClientRect()]);
      cells.forEach(([cell], mine) => {
        for (const [box, what] of boxes(cell)) {
          if (box.left < edge.left - 1 || box.right > edge.right + 1) {
            found.push({what: what.slice(0, 80), into: "outside its table"});
          }
          cells.forEach(([other, place], theirs) => {
            if (theirs !== mine && overlap(box, place)) {
              found.push({what: what.slice(0, 80), into: other.textContent.trim().slice(0, 40)});
            }
          });
        }
      });
    }
  }
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({
    overlaps: found.length,
    first: found.slice(0, 5),
    cells: [...document.querySelectorAll("td")].length,
    page_width: document.documentElement.scrollWidth,
    window_width: window.innerWidth,
    rules: [...document.querySelectorAll("main [id^='rule-']")].map((e) => e.id.slice(5)),
  });
  document.body.appendChild(out);
})();
</script>
"""


def measured(dom: str) -> dict[str, Any]:
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found is not None, f"the measuring script did not run:\n{dom[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.mark.timeout(2 * BROWSER_TIMEOUT + 30)
def test_a_page_of_100_long_alerts_fits_a_1400_pixel_window_firing_first(tmp_path: Path) -> None:
    page, rules = page_of_the_rule_file(tmp_path)
    names = [rule.name for rule in rules]
    copy = tmp_path / "page.html"
    copy.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    width, height = WINDOW

    dom = browse(tmp_path, "--dump-dom", f"--window-size={width},{height}", copy.as_uri()).stdout

    layout = measured(dom)
    assert layout["cells"] > 4 * ALERTS
    assert layout["overlaps"] == 0, f"text runs into another column: {layout['first']}"
    assert layout["page_width"] <= layout["window_width"] == width
    firing, pending = names[FIRING], [names[i] for i in PENDING]
    assert layout["rules"][:3] == [firing, *pending]
    assert sorted(layout["rules"]) == sorted(names)  # every other alert is on the page too
    shown = page.split('<nav class="jump">')[1].split("<h2>Groups</h2>")[0]
    for rule in rules:  # among the rules, each expression once; and no "no data"
        assert shown.count(html.escape(rule.expression, quote=True)) == 1, rule.name
    assert "no data" not in page
    assert re.search(r'<td class="num">[0-9.]+m?s</td>', page)  # the groups' offset, rounded

    shot = tmp_path / "status-page.png"
    browse(tmp_path, f"--screenshot={shot}", f"--window-size={width},{height}", copy.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    assert len(data) > 50_000, "the screenshot looks empty"
