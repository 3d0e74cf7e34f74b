"""Alert templates rendered by ``expand_alert_template`` and by a real Prometheus (2.42).

One rule file holds one alerting rule per value (``label_replace(vector(V), ...)``: a single
series with known labels), every rule carrying the same annotations, one template case each.
Prometheus evaluates them; each annotation it shows in ``/api/v1/alerts`` must be exactly what
``expand_alert_template`` makes of the same template, labels, value and external labels.
"""

# ruff: noqa: E501  (the templates are data: one line each reads best)

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import (
    STARTUP_TIMEOUT,
    _binary,
    _http_get,
    _start_logged,
    _stop_process,
    _tail,
    _wait_ready,
    free_port,
    wait_until,
)
from metric_reader._core._gotemplate._template import expand_alert_template

LABELS = {"instance": "host-1.example.org:9100", "job": "node", "path": "/var/lib"}
EXTERNAL_LABELS = {"cluster": "eu-1", "replica": "a"}
EXTERNAL_URL = "http://prom.example:9090/prefix"

VALUES = {
    "Positive": 1234.5678,
    "Zero": 0.0,
    "Tiny": 0.000012,
    "Huge": 1e21,
    "Negative": -42.5,
    "NotANumber": math.nan,
    "Million": 1e6,
    "Big": 123456789.0,
    "Fraction": 0.25,
    "Days": 200000.0,
    "Minutes": 185.0,
    "Kibi": 1048576.0,
}

CASES: dict[str, str] = {
    "value": "{{ $value }}",
    "dot_value": "{{ .Value }}",
    "label": "{{ $labels.instance }}",
    "dot_label": "{{ .Labels.job }}",
    "missing_label": "[{{ $labels.nope }}]",
    "external_label": "{{ $externalLabels.cluster }}",
    "external_url": "{{ $externalURL }}",
    "labels_map": "{{ $labels }}",
    "printf_f": '{{ printf "%.2f" $value }}',
    "printf_many": '{{ printf "%s=%v %d %5.1f|%-6s|%q %x %%" "a" $value 42 $value "ab" "q\\"" "hi" }}',
    "printf_e_g": '{{ printf "%e %g %.3e %.3g %10.2f %-10.2f|" $value $value $value $value $value $value }}',
    "printf_bad": '{{ printf "%d %s" $value }}',
    "printf_extra": '{{ printf "x" 1 "a" }}',
    # Go's fmt bounds widths and precisions (tooLarge: 10^6); past them it prints an error.
    "printf_huge_precision": '{{ printf "%.299999999f|" $value }}',
    "printf_huge_width": '{{ printf "%99999999d|" 1 }}',
    "printf_width_7_digits": '{{ printf "%1000009d" 1 | len }}',
    "printf_star": '{{ printf "%*d|%*d|%.*f|%.*f|%*d|" -4 7 2000000 1 -1 $value 2 $value 1.5 3 }}',
    "printf_star_missing": '{{ printf "%*d" }}',
    "printf_no_verb": '{{ printf "a%5" }}|{{ printf "%." }}|{{ printf "%-" 1 }}',
    "printf_bad_rune": '{{ printf "%c|%q" 99999999 -1 }}',
    "humanize": "{{ humanize $value }}",
    "humanize_str": '{{ humanize "2048" }}',
    "humanize1024": "{{ humanize1024 $value }}",
    "humanizeDuration": "{{ humanizeDuration $value }}",
    "humanizePercentage": "{{ humanizePercentage $value }}",
    "humanize_pipe": "{{ $value | humanize }}",
    "title": '{{ title "hello wORLD foo-bar baz_qux" }}',
    "upper_lower": '{{ toUpper $labels.job }} {{ toLower "MiXeD" }}',
    "reReplaceAll": '{{ reReplaceAll "(.*):(\\\\d+)" "$1 port $2" $labels.instance }}',
    "reReplaceAll_named": '{{ reReplaceAll "(?P<host>[^.]+)\\\\..*" "${host}!" $labels.instance }}',
    "reReplaceAll_empty": '{{ reReplaceAll "a*" "X" "baaac" }}',
    "match": '{{ if match "^host" $labels.instance }}yes{{ else }}no{{ end }}',
    "if_else": "{{ if gt $value 100.0 }}high{{ else if gt $value 0.0 }}low{{ else }}none{{ end }}",
    "range_labels": "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
    "range_dot": "{{ range $labels }}<{{ . }}>{{ end }}",
    "range_one_var": "{{ range $v := $labels }}{{ $v }},{{ end }}",
    "range_else": "{{ range .Labels.nope }}x{{ else }}empty{{ end }}",
    "with": "{{ with $labels.job }}job {{ . }}{{ end }}{{ with $labels.nope }}x{{ else }}none{{ end }}",
    "and_or_not": '{{ and 1 "" }}|{{ or "" 0 "z" }}|{{ not $value }}|{{ and $labels.job "j" }}',
    "comparisons": '{{ eq $labels.job "node" }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ le 2 2 }} {{ ge 3.5 $value }}',
    "eq_many": '{{ eq $labels.job "a" "node" }}',
    "eq_bad_types": "{{ eq $value 0 }}",
    "len_index": '{{ len $labels }} {{ len "héllo" }} {{ index $labels "job" }} [{{ index $labels "x" }}]',
    "print": '{{ print 1 2 "a" "b" 3 }}|{{ println "x" 1 }}|',
    "html_js_url": '{{ html "<a href=\'x\'>&\\"" }} {{ js "it\'s <b>=\\"\\\\" }} {{ urlquery "a b&c/d~" }}',
    "parens": '{{ printf "%s-%s" (toUpper "a") ($labels.job | title) }}',
    "variables": '{{ $x := "one" }}{{ $x = "two" }}{{ $x }}',
    "trim": "a  {{- $labels.job -}}  b",
    "comment": "a{{/* ignored */}}b{{- /* trimmed */ -}} c",
    "constants": "{{ 1.5 }} {{ 1e3 }} {{ 0x10 }} {{ 'a' }} {{ true }} {{ -3 }}",
    "stripPort": "{{ stripPort $labels.instance }}",
    "nested_if": '{{ if $labels.job }}{{ if eq $labels.job "node" }}N{{ end }}{{ end }}',
    "multiline": 'line1\n{{ $labels.job }}\n  {{- " x" }}',
    "break_continue": '{{ range $k, $v := $labels }}{{ if eq $k "job" }}{{ continue }}{{ end }}{{ $k }}{{ if eq $k "instance" }}{{ break }}{{ end }}{{ end }}',
    # Errors: the alert still fires, the text shows the error.
    "error_humanize_string": '{{ humanize "abc" }}',
    "error_upper_float": "{{ toUpper $value }}",
    "error_upper_number": "{{ toUpper 1 }}",
    "error_field_on_string": "{{ $labels.job.x }}",
    "error_no_field": "{{ .Nope }}",
    "error_args": "{{ humanize }}",
    "error_lt_types": '{{ lt 1 "a" }}',
    "error_bad_regex": '{{ reReplaceAll "(" "x" "y" }}',
    "error_nil_command": "{{ nil }}",
    "error_second_line": 'ok\n{{ humanize "x" }}',
}


def _rule_file(path: Path) -> None:
    rules: list[dict[str, Any]] = []
    for alert, value in VALUES.items():
        expr = f"vector({_promql_number(value)})"
        for key, label_value in LABELS.items():
            expr = f'label_replace({expr}, "{key}", "{label_value}", "", "")'
        rules.append({"alert": alert, "expr": expr, "annotations": CASES})
    # JSON is YAML: no quoting rules of our own to get wrong.
    path.write_text(json.dumps({"groups": [{"name": "templates", "rules": rules}]}))


def _promql_number(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(value)


@pytest.fixture(scope="module")
def prometheus_alerts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The alerts of the rule file as Prometheus shows them, by alert name."""
    prometheus_bin = _binary("PROMETHEUS_BIN", "prometheus", "prometheus")
    base = tmp_path_factory.mktemp("template_rules")
    _rule_file(base / "rules.json")
    external = "".join(f"    {k}: {v}\n" for k, v in EXTERNAL_LABELS.items())
    (base / "prometheus.yml").write_text(
        "global:\n  evaluation_interval: 200ms\n  external_labels:\n"
        f"{external}rule_files:\n  - rules.json\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "prometheus.log"
    proc: subprocess.Popen[bytes] = _start_logged(
        [
            prometheus_bin,
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url={EXTERNAL_URL}",
            "--web.route-prefix=/",
            "--log.level=warn",
        ],
        log,
        base,
    )
    try:
        _wait_ready("prometheus", url, proc, log)

        def all_alerts() -> dict[str, Any] | None:
            status, body = _http_get(f"{url}/api/v1/alerts")
            if status != 200:
                return None
            alerts = {a["labels"]["alertname"]: a for a in json.loads(body)["data"]["alerts"]}
            return alerts if set(alerts) == set(VALUES) else None

        yield wait_until(
            all_alerts,
            STARTUP_TIMEOUT,
            "every alert in /api/v1/alerts",
            interval=0.1,
            diagnostics=lambda: f"prometheus log:\n{_tail(log)}",
        )
    finally:
        _stop_process(proc)


@pytest.mark.parametrize("alert", list(VALUES))
def test_every_annotation_renders_as_prometheus_renders_it(
    prometheus_alerts: dict[str, Any], alert: str
) -> None:
    shown = prometheus_alerts[alert]
    assert shown["labels"] == {"alertname": alert, **LABELS}
    mismatches = {}
    for case, template in CASES.items():
        ours = expand_alert_template(
            template,
            f"__alert_{alert}",
            labels=LABELS,
            value=VALUES[alert],
            external_labels=EXTERNAL_LABELS,
            external_url=EXTERNAL_URL,
        )
        theirs = shown["annotations"][case]
        if ours != theirs:
            mismatches[case] = {"template": template, "prometheus": theirs, "ours": ours}
    assert not mismatches, json.dumps(mismatches, indent=1)


PARSE_CASES: dict[str, str] = {
    "brace": "{{ $labels.job }",
    "unknown_function": "{{ nosuch $value }}",
    "undefined_variable": "{{ $nope }}",
    "unclosed_if": "{{ if $value }}x",
    "unterminated_string": '{{ "abc }}',
    "unclosed_action": "{{ $value ",
    "unclosed_paren": "{{ (humanize $value }}",
    "extra_paren": "{{ humanize $value) }}",
    "stray_end": "x{{ end }}",
    "stray_else": "{{ else }}",
    "empty_action": "{{ }}",
    "empty_if": "{{ if }}x{{ end }}",
    "pipe_to_constant": "{{ $value | 1 }}",
    "break_outside_range": "{{ break }}",
    "field_on_constant": '{{ "a".b }}',
    "bad_number": "{{ 12abc }}",
    "bad_character": "{{ $labels.a-b }}",
    "unclosed_comment": "{{/* never closed",
    "comment_not_closing": "{{/* c */ x }}",
    "too_many_declarations": "{{ $a, $b := 1 }}",
    "else_with": "{{ with 1 }}{{ else with 2 }}{{ end }}",
    "variable_out_of_scope": "{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}",
    "second_line": "ok\n{{ nosuch }}",
    # These parse: promtool must accept them too.
    "valid_query": '{{ query "up" }}',
    "valid_everything": CASES["range_labels"] + CASES["if_else"] + CASES["trim"],
}


def test_parse_errors_are_promtools(tmp_path: Path) -> None:
    """``check_template`` refuses what ``promtool check rules`` refuses, with its message."""
    from metric_reader._core._gotemplate._template import TemplateError, check_template

    promtool = _binary("PROMTOOL_BIN", "promtool", "prometheus")
    alerts = {f"Case{i}": case for i, case in enumerate(PARSE_CASES)}
    rules = [
        {"alert": alert, "expr": "vector(1)", "annotations": {"t": PARSE_CASES[case]}}
        for alert, case in alerts.items()
    ]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"groups": [{"name": "parse", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    theirs: dict[str, str | None] = dict.fromkeys(PARSE_CASES)
    for line in (result.stdout + result.stderr).splitlines():
        _, found, rest = line.partition("rule ")
        if found and '": annotation "t": ' in rest:
            alert = rest.split('"')[1]
            theirs[alerts[alert]] = rest.partition('": annotation "t": ')[2]
    ours: dict[str, str | None] = {}
    for alert, case in alerts.items():
        try:
            check_template(PARSE_CASES[case], f"__alert_{alert}")
            ours[case] = None
        except TemplateError as exc:
            ours[case] = str(exc)
    assert theirs["valid_everything"] is None and theirs["brace"] is not None, result.stdout
    assert ours == theirs
