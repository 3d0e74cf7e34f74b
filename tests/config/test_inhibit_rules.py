"""``[[inhibit_rules]]`` as the rule file gives them (Alertmanager's ``inhibit_rules``), what
is refused as Alertmanager refuses it, and ``check`` showing each."""

from __future__ import annotations

from pathlib import Path

import pytest

from metric_reader._cli._check import check_configuration
from metric_reader._config import ConfigError, load_settings

HEAD = """\
prometheus_endpoint = "http://127.0.0.1:9"

[[rules]]
name = "disk"
metric_name = "disk_used"
threshold = ">90"
"""


def _load(tmp_path: Path, inhibit: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(HEAD + inhibit)
    return path


def test_inhibit_rules_are_read_with_the_deprecated_forms_and_check_shows_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _load(
        tmp_path,
        """
[[inhibit_rules]]
name = "node-down"
source_matchers = ['alertname="NodeNotReady"']
target_matchers = ['alertname=~"Pod.*"', 'severity!=page']
equal = ["node"]

[[inhibit_rules]]
source_match = { alertname = "NodeDown" }
target_match_re = { severity = "warn|info" }
""",
    )
    env = {"CONFIG_FILE": str(path)}
    first, second = load_settings(env).inhibit_rules
    assert first.is_source({"alertname": "NodeNotReady"})
    assert first.is_target({"alertname": "PodCrashLooping", "severity": "ticket"})
    assert not first.is_target({"alertname": "PodCrashLooping", "severity": "page"})
    assert second.is_target({"severity": "info"}) and not second.is_target({"severity": "infos"})
    assert check_configuration(env, read_sources=False, backend_options={}) == 0
    out = capsys.readouterr().out
    assert (
        'inhibit node-down: {alertname="NodeNotReady"} inhibits '
        '{alertname=~"Pod.*", severity!="page"} with equal node'
    ) in out
    assert 'inhibit inhibit_rules[1]: {alertname="NodeDown"} inhibits {severity=~"warn|info"}' in (
        out
    )


def test_what_alertmanager_refuses_is_refused(tmp_path: Path) -> None:
    path = _load(
        tmp_path,
        """
[[inhibit_rules]]
source_matchers = ['alertname="A"', 'not a matcher']
target_match = { "bad-label" = "x" }
target_match_re = { sev = "(" }
equal = ["node", "qux🙂"]
source_labels = ["x"]
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings({"CONFIG_FILE": str(path)})
    lines = [line.split(": ", 1)[1] for line in str(raised.value).splitlines()]
    assert lines == [
        "inhibit_rules[0].source_labels: unknown key; an inhibit rule takes "
        "source_matchers, target_matchers, equal and name",
        "inhibit_rules[0].source_matchers: 'not a matcher' is not a matcher: "
        + lines[1].split("is not a matcher: ", 1)[1],
        "inhibit_rules[0].target_match: invalid label name 'bad-label'",
        "inhibit_rules[0].target_match_re: invalid regex '(' for label 'sev': "
        + lines[3].split("for label 'sev': ", 1)[1],
        "inhibit_rules[0].equal: invalid label name 'qux🙂' in equal list",
    ]
