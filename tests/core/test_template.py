"""Alert templates as Prometheus expands them (``expand_alert_template``, ``check_template``).

The expected texts of the constructs Prometheus 2.42 has were taken from a real Prometheus
(tests/integration/test_template_vs_prometheus.py compares the same kind of cases live);
the rest follow Prometheus' template.go and Go's text/template and fmt.
"""

# ruff: noqa: E501  (the templates are data: one line each reads best)

from __future__ import annotations

import math

import pytest

from metric_reader._core._gotemplate._template import (
    TemplateError,
    _parse,
    check_template,
    expand_alert_template,
)

LABELS = {"instance": "host-1.example.org:9100", "job": "node", "path": "/var/lib"}
NAME = "__alert_HighLoad"
PREFIX = f"<error expanding template: error executing template {NAME}: template: {NAME}"


def expand(text: str, value: float = 1234.5678, labels: dict[str, str] = LABELS) -> str:
    return expand_alert_template(
        text,
        NAME,
        labels=labels,
        value=value,
        external_labels={"cluster": "eu-1"},
        external_url="http://prom.example:9090/prefix",
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # Data and variables
        ("{{ $value }}", "1234.5678"),
        ("{{ .Value }}", "1234.5678"),
        ("{{ $labels.instance }}", "host-1.example.org:9100"),
        ("{{ .Labels.job }}", "node"),
        ("[{{ $labels.nope }}]", "[]"),  # missingkey=zero
        ("{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }}", "eu-1 eu-1"),
        ("{{ $externalURL }}", "http://prom.example:9090/prefix"),
        ("{{ externalURL }} {{ pathPrefix }}", "http://prom.example:9090/prefix /prefix"),
        ("{{ $labels }}", "map[instance:host-1.example.org:9100 job:node path:/var/lib]"),
        ('{{ $x := "one" }}{{ $x = "two" }}{{ $x }}', "two"),
        (
            "{{ . }}",
            "{map[instance:host-1.example.org:9100 job:node path:/var/lib] map[cluster:eu-1] http://prom.example:9090/prefix 1234.5678}",
        ),
        # printf and Go's fmt
        ('{{ printf "%.2f" $value }}', "1234.57"),
        (
            '{{ printf "%s=%v %d %5.1f|%-6s|%q %x %%" "a" $value 42 $value "ab" "q\\"" "hi" }}',
            'a=1234.5678 42 1234.6|ab    |"q\\"" 6869 %',
        ),
        (
            '{{ printf "%e %g %.3e %.3g %10.2f %-10.2f|" $value $value $value $value $value $value }}',
            "1.234568e+03 1234.5678 1.235e+03 1.23e+03    1234.57 1234.57   |",
        ),
        ('{{ printf "%d %s" $value }}', "%!d(float64=1234.5678) %!s(MISSING)"),
        ('{{ printf "x" 1 "a" }}', "x%!(EXTRA int=1, string=a)"),
        (
            '{{ printf "%05d|%+d|%x|%X|%o|%T|%t" 42 42 255 255 8 $value true }}',
            "00042|+42|ff|FF|10|float64|true",
        ),
        ('{{ printf "%v" $labels.job | printf "%s!" }}', "node!"),
        # Prometheus' functions
        ("{{ humanize $value }}", "1.235k"),
        ('{{ humanize "2048" }}', "2.048k"),
        ("{{ humanize 1234567 }}", "1.235M"),
        ("{{ humanize1024 $value }}", "1.206ki"),
        ("{{ humanizeDuration $value }}", "20m 34s"),
        ("{{ humanizePercentage 0.1234 }}", "12.34%"),
        ("{{ $value | humanize }}", "1.235k"),
        ('{{ title "hello wORLD foo-bar baz_qux" }}', "Hello WORLD Foo-Bar Baz_qux"),
        ('{{ toUpper $labels.job }} {{ toLower "MiXeD" }}', "NODE mixed"),
        ('{{ toUpper "straße" }}', "STRAßE"),  # Go maps rune to rune
        (
            '{{ reReplaceAll "(.*):(\\\\d+)" "$1 port $2" $labels.instance }}',
            "host-1.example.org port 9100",
        ),
        ('{{ reReplaceAll "(?P<host>[^.]+)\\\\..*" "${host}!" $labels.instance }}', "host-1!"),
        ('{{ reReplaceAll "a*" "X" "baaac" }}', "XbXcX"),  # Go skips an empty match after a match
        ('{{ reReplaceAll "(a)" "$1x|${1}x|$$" "a" }}', "|ax|$"),  # $1x names group "1x"
        ('{{ if match "^host" $labels.instance }}yes{{ else }}no{{ end }}', "yes"),
        (
            '{{ stripPort $labels.instance }} {{ stripPort "[::1]:80" }} {{ stripPort "nohost" }}',
            "host-1.example.org ::1 nohost",
        ),
        # Control structures
        (
            "{{ if gt $value 100.0 }}high{{ else if gt $value 0.0 }}low{{ else }}none{{ end }}",
            "high",
        ),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            "instance=host-1.example.org:9100;job=node;path=/var/lib;",
        ),
        ("{{ range $labels }}<{{ . }}>{{ end }}", "<host-1.example.org:9100><node></var/lib>"),
        ("{{ range $v := $labels }}{{ $v }},{{ end }}", "host-1.example.org:9100,node,/var/lib,"),
        (
            "{{ range $externalLabels.nope }}x{{ else }}empty{{ end }}",
            f'{PREFIX}:1:136: executing "{NAME}" at <$externalLabels.nope>: range can\'t iterate over >',
        ),
        (
            "{{ with $labels.job }}job {{ . }}{{ end }}{{ with $labels.nope }}x{{ else }}none{{ end }}",
            "job nodenone",
        ),
        (
            '{{ range $k, $v := $labels }}{{ if eq $k "job" }}{{ continue }}{{ end }}{{ $k }}{{ if eq $k "instance" }}{{ break }}{{ end }}{{ end }}',
            "instance",
        ),
        ('{{ if $labels.job }}{{ if eq $labels.job "node" }}N{{ end }}{{ end }}', "N"),
        ("a  {{- $labels.job -}}  b", "anodeb"),
        ("a{{/* ignored */}}b{{- /* trimmed */ -}} c", "abc"),
        ('line1\n{{ $labels.job }}\n  {{- " x" }}', "line1\nnode x"),
        ('{{ printf "%s-%s" (toUpper "a") ($labels.job | title) }}', "A-Node"),
        # Built-ins
        (
            '{{ and 1 "" }}|{{ or "" 0 "z" }}|{{ not $value }}|{{ and $labels.job "j" }}',
            "|z|false|j",
        ),
        (
            '{{ eq $labels.job "node" }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ le 2 2 }} {{ ge 3.5 $value }}',
            "true true true true false",
        ),
        ('{{ eq $labels.job "a" "node" }}', "true"),
        (
            '{{ len $labels }} {{ len "héllo" }} {{ index $labels "job" }} [{{ index $labels "x" }}]',
            "3 6 node []",
        ),
        ('{{ print 1 2 "a" "b" 3 }}|{{ println "x" 1 }}|', "1 2ab3|x 1\n|"),
        ('{{ html "<a href=\'x\'>&\\"" }}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"),
        ('{{ js "it\'s <b>=\\"\\\\" }}', "it\\'s \\u003Cb\\u003E\\u003D\\\"\\\\"),
        ('{{ urlquery "a b&c/d~" }}', "a+b%26c%2Fd~"),
        ("{{ 1.5 }} {{ 1e3 }} {{ 0x10 }} {{ 'a' }} {{ true }} {{ -3 }}", "1.5 1000 16 97 true -3"),
        # No HTML escaping in text templates
        ('{{ "<b>&</b>" }}', "<b>&</b>"),
        # humanizeTimestamp: Go's time.Time.String(), to the millisecond (promtool 2.42's answers)
        (
            "{{ humanizeTimestamp 180300 }}|{{ humanizeTimestamp -1.5 }}|"
            '{{ humanizeTimestamp 1.0004 }}|{{ humanizeTimestamp "1700000000.123" }}',
            "1970-01-03 02:05:00 +0000 UTC|1969-12-31 23:59:58.5 +0000 UTC|"
            "1970-01-01 00:00:01 +0000 UTC|2023-11-14 22:13:20.122 +0000 UTC",
        ),
    ],
)
def test_expands_as_prometheus(template: str, expected: str) -> None:
    assert expand(template) == expected


@pytest.mark.parametrize(
    ("value", "printed", "humanized", "duration", "kibi"),
    [
        (0.0, "0", "0", "0s", "0"),
        (0.000012, "1.2e-05", "12u", "12us", "1.2e-05"),
        (1e21, "1e+21", "1Z", "-106751991167300d -15h -30m -8s", "867.4Ei"),
        (-42.5, "-42.5", "-42.5", "-42.5s", "-42.5"),
        (math.nan, "NaN", "NaN", "NaN", "NaN"),
        (math.inf, "+Inf", "+Inf", "+Inf", "+Inf"),
        (1e6, "1e+06", "1M", "11d 13h 46m 40s", "976.6ki"),
        (123456.0, "123456", "123.5k", "1d 10h 17m 36s", "120.6ki"),
        (123456789.0, "1.23456789e+08", "123.5M", "1428d 21h 33m 9s", "117.7Mi"),
        (0.25, "0.25", "250m", "250ms", "0.25"),
        (185.0, "185", "185", "3m 5s", "185"),
        (1048576.0, "1.048576e+06", "1.049M", "12d 3h 16m 16s", "1Mi"),
    ],
)
def test_values_print_and_humanize_as_go(
    value: float, printed: str, humanized: str, duration: str, kibi: str
) -> None:
    assert expand("{{ $value }}", value) == printed
    assert expand("{{ humanize $value }}", value) == humanized
    assert expand("{{ humanizeDuration $value }}", value) == duration
    assert expand("{{ humanize1024 $value }}", value) == kibi


@pytest.mark.parametrize(
    ("template", "error"),
    [
        (
            '{{ humanize "abc" }}',
            ':1:115: executing "{n}" at <humanize "abc">: error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax',
        ),
        (
            "{{ toUpper $value }}",
            ':1:123: executing "{n}" at <$value>: wrong type for value; expected string; got float64',
        ),
        ("{{ toUpper 1 }}", ':1:123: executing "{n}" at <1>: expected string; found 1'),
        (
            "{{ $labels.job.x }}",
            ':1:122: executing "{n}" at <$labels.job.x>: can\'t evaluate field x in type string',
        ),
        (
            "{{ .Nope }}",
            ':1:115: executing "{n}" at <.Nope>: can\'t evaluate field Nope in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }',
        ),
        (
            "{{ humanize }}",
            ':1:115: executing "{n}" at <humanize>: wrong number of args for humanize: want 1 got 0',
        ),
        (
            '{{ lt 1 "a" }}',
            ':1:115: executing "{n}" at <lt 1 "a">: error calling lt: incompatible types for comparison',
        ),
        (
            "{{ eq $value 0 }}",
            ':1:115: executing "{n}" at <eq $value 0>: error calling eq: incompatible types for comparison',
        ),
        (
            '{{ reReplaceAll "(" "x" "y" }}',
            ':1:115: executing "{n}" at <reReplaceAll "(" "x" "y">: error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`',
        ),
        ("{{ nil }}", ':1:115: executing "{n}" at <nil>: nil is not a command'),
        (
            'ok\n{{ humanize "x" }}',
            ':2:3: executing "{n}" at <humanize "x">: error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax',
        ),
        (
            '{{ query "up" }}',
            ':1:115: executing "{n}" at <query "up">: error calling query: function \'query\' is not available in metric-reader',
        ),
        ("{{ len 3 }}", ':1:115: executing "{n}" at <len 3>: error calling len: len of type int'),
        (
            "{{ $value 1 }}",
            ':1:115: executing "{n}" at <$value>: can\'t give argument to non-function $value',
        ),
    ],
)
def test_execution_errors_show_in_the_text(template: str, error: str) -> None:
    assert expand(template) == f"{PREFIX}{error.replace('{n}', NAME)}>"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ $labels.job }", 'unexpected "}" in operand'),
        ("{{ nosuch $value }}", 'function "nosuch" not defined'),
        ("{{ $nope }}", 'undefined variable "$nope"'),
        ("{{ if $value }}x", "unexpected EOF"),
        ('{{ "abc }}', "unterminated quoted string"),
        ("{{ $value ", "unclosed action"),
        ("{{ (humanize $value }}", "unclosed left paren"),
        ("x{{ end }}", "unexpected {{end}}"),
        ("{{ }}", "missing value for command"),
        ("{{ $value | 1 }}", "non executable command in pipeline stage 2"),
        ("{{ break }}", "{{break}} outside {{range}}"),
        ('{{ "a".b }}', 'unexpected . after term "\\"a\\""'),
        ("{{ 12abc }}", 'bad number syntax: "12a"'),
        ("{{/* never closed", "unclosed comment"),
        ("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}", 'undefined variable "$x"'),
        ('{{ define "x" }}{{ end }}', "{{define}} is not supported in alert templates"),
    ],
)
def test_parse_errors_refuse_the_template_and_show_in_the_text(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        check_template(template, NAME)
    assert str(raised.value) == f"template: {NAME}:1: {message}"
    assert expand(template) == (
        f"<error expanding template: error parsing template {NAME}: template: {NAME}:1: {message}>"
    )


def test_check_template_accepts_what_prometheus_accepts() -> None:
    check_template('{{ query "up" | first | value }} {{ $labels.job }} {{ humanize $value }}', NAME)


def test_an_error_in_one_template_leaves_the_next_expansion_alone() -> None:
    assert expand('{{ humanize "x" }}').startswith("<error expanding template:")
    assert expand("{{ humanize $value }}") == "1.235k"


def test_a_template_is_parsed_once_for_every_expansion() -> None:
    before = _parse.cache_info()
    for value in (1.0, 2.0, 3.0):
        assert expand("{{ $value }} cached-case", value) == f"{value:g} cached-case"
    after = _parse.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 2


# --- bounded: what one template can make and cost (issue 22, point 8) -----------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # Go's fmt: a number past 10^6 in the format takes the rest of it (NOVERB); an
        # argument past 10^6, or not an int, is BADWIDTH or BADPREC (the verb still prints).
        ('{{ printf "%.299999999f" 1.0 }}', "%!(NOVERB)%!(EXTRA float64=1)"),
        ('{{ printf "%99999999d|x" 1 }}', "%!(NOVERB)%!(EXTRA int=1)"),
        ('{{ printf "%*d|%*d|%*d" 2000000 1 "a" 2 -3 4 }}', "%!(BADWIDTH)1|%!(BADWIDTH)2|4  "),
        ('{{ printf "%.*f|%.*f" -1 1.5 2 1.5 }}', "%!(BADPREC)1.500000|1.50"),
        ('{{ printf "%*d" }}', "%!(BADWIDTH)%!d(MISSING)"),
        ('{{ printf "%c|%q" 1114112 55296 }}', "\ufffd|'\ufffd'"),
        ('{{ printf "%1000000d" 7 | len }}', "1000000"),
    ],
)
def test_printf_bounds_widths_and_precisions_as_go(template: str, expected: str) -> None:
    assert expand(template) == expected


@pytest.mark.parametrize(
    ("template", "error"),
    [
        # One verb may print 10^7 wide in Go: past MAX_TEXT it is an error here.
        (
            '{{ printf "%9999999d" 1 }}',
            'at <printf "%9999999d" 1>: error calling printf: the text would be longer than 1,048,576 characters',
        ),
        # Doubling a text 25 times (64 Mi characters) stops at MAX_TEXT.
        (
            '{{ $x := "ab" }}{{ range $i, $_ := args 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 }}{{ $x = printf "%s%s" $x $x }}{{ end }}',
            "error calling printf: the text would be longer than 1,048,576 characters",
        ),
        (
            '{{ $x := printf "%1000000d" 1 }}{{ print $x $x }}',
            "error calling print: the text would be longer",
        ),
        (
            '{{ reReplaceAll "(0)" (printf "$1%1000d" 1) (printf "%02000d" 0) }}',
            "error calling reReplaceAll: the text would be longer",
        ),
        # What the template writes out.
        (
            '{{ $x := printf "%600000d" 1 }}{{ $x }}{{ $x }}',
            "the text would be longer than 1,048,576 characters",
        ),
        # Ranges nested over the same items multiply: 10^6 steps at most.
        (
            "{{ $a := args 1 2 3 4 5 6 7 8 9 10 }}" + "{{ range $a }}" * 6 + "{{ end }}" * 6,
            "more than 1,000,000 steps: a template must not loop that long",
        ),
        # A long text given to a function over and over: 16 Mi characters in all at most.
        (
            '{{ $x := printf "%1000000d" 1 }}{{ $a := args 1 2 3 4 5 6 7 8 9 10 }}{{ range $a }}{{ range $a }}{{ len $x }}{{ end }}{{ end }}',
            "more than 16,777,216 characters through its functions",
        ),
    ],
)
def test_one_expansion_is_bounded_in_size_and_time(template: str, error: str) -> None:
    text = expand(template)
    assert text.startswith(PREFIX) and text.endswith(">"), text[:300]
    assert error in text, text[:400]
    assert len(text) < 1000
