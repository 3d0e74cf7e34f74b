"""PromQL label matchers: LABEL_FILTERS parsing, matching semantics, formatting."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from metric_reader._core._regex import compile_label_regex
from metric_reader._core._selector import (
    LabelMatcher,
    MatchOp,
    Selector,
    format_selector,
    parse_label_filters,
)

EQ, NE, RE, NRE = MatchOp.EQ, MatchOp.NE, MatchOp.RE, MatchOp.NRE


def m(name: str, op: MatchOp, value: str) -> LabelMatcher:
    return LabelMatcher(name, op, value)


PARSE_CASES: list[tuple[str, tuple[LabelMatcher, ...]]] = [
    ("", ()),
    ("   \t\n ", ()),
    ('job="node"', (m("job", EQ, "node"),)),
    ('mode!="idle"', (m("mode", NE, "idle"),)),
    ('device=~"sd.*"', (m("device", RE, "sd.*"),)),
    ('device!~"sd.*"', (m("device", NRE, "sd.*"),)),
    (
        'job="node",mode!="idle",device=~"sd.*"',
        (m("job", EQ, "node"), m("mode", NE, "idle"), m("device", RE, "sd.*")),
    ),
    (' job = "node" ,\tmode != "idle" , ', (m("job", EQ, "node"), m("mode", NE, "idle"))),
    ('job="node",', (m("job", EQ, "node"),)),
    ('job="a",\n  job!~"b",\r\n', (m("job", EQ, "a"), m("job", NRE, "b"))),
    ("_x1=''", (m("_x1", EQ, ""),)),
    ("a='single'", (m("a", EQ, "single"),)),
    ("a='with \"double\" inside'", (m("a", EQ, 'with "double" inside'),)),
    ("a=`raw \\n \\d \"q\" 'q'`", (m("a", EQ, "raw \\n \\d \"q\" 'q'"),)),
    ("a=`two\nlines`", (m("a", EQ, "two\nlines"),)),
    (r'a="q\"q"', (m("a", EQ, 'q"q'),)),
    (r"a='q\'q'", (m("a", EQ, "q'q"),)),
    (r'a="back\\slash"', (m("a", EQ, "back\\slash"),)),
    (r'a="\a\b\f\n\r\t\v"', (m("a", EQ, "\a\b\f\n\r\t\v"),)),
    (r'a="\x41\101\u00e9\U0001F600"', (m("a", EQ, "AAé😀"),)),
    (r'a="\xc3\xa9"', (m("a", EQ, "é"),)),  # \x escapes are bytes, as in Go
    ('a="ünïcødé 😀"', (m("a", EQ, "ünïcødé 😀"),)),
    (r'a=~"\\d+"', (m("a", RE, r"\d+"),)),
    ('"my.label"="x"', (m("my.label", EQ, "x"),)),
    ("'quoted'!='x'", (m("quoted", NE, "x"),)),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse(text: str, expected: tuple[LabelMatcher, ...]) -> None:
    assert parse_label_filters(text) == expected


ERROR_CASES: list[tuple[str, str]] = [
    ("job=node", "at position 5: expected a quoted value after '='"),
    ("job=~", "at position 6: expected a quoted value after '=~'"),
    ("job!=  ", "at position 8: expected a quoted value after '!='"),
    ("job", "at position 4: expected an operator (=, !=, =~ or !~) after label name 'job'"),
    ('job<"x"', "at position 4: expected an operator (=, !=, =~ or !~) after label name 'job'"),
    ('job=="x"', "at position 5: expected a quoted value after '='"),
    (',job="x"', "at position 1: expected a label name, found ','"),
    ('job="x",,mode="y"', "at position 9: expected a label name, found ','"),
    ('1job="x"', "at position 1: expected a label name, found '1'"),
    (
        '{job="x"}',
        "at position 1: expected a label name, found '{' (write the matchers without braces)",
    ),
    ('job="x" mode="y"', "at position 9: expected ',' or the end after the matcher for 'job'"),
    ('job="x"}', "at position 8: expected ',' or the end after the matcher for 'job'"),
    ("a='it''", "at position 7: expected ',' or the end after the matcher for 'a'"),
    ('job="x', 'at position 5: unterminated quoted string (missing closing ")'),
    ("job='x", "at position 5: unterminated quoted string (missing closing ')"),
    ("job=`x", "at position 5: unterminated raw string (missing closing '`')"),
    ('job="x\\"', 'at position 5: unterminated quoted string (missing closing ")'),
    ('job="a\\qb"', "at position 7: unknown escape sequence '\\\\q'"),
    ("job='a\\\"b'", "at position 7: unknown escape sequence '\\\\\"'"),
    ('job="a\\\'b"', 'at position 7: unknown escape sequence "\\\\\'"'),
    ('job="\\', "at position 6: escape sequence not terminated"),
    ('job="\\x4"', "at position 6: \\x needs 2 hexadecimal digits"),
    ('job="\\u12"', "at position 6: \\u needs 4 hexadecimal digits"),
    ('job="\\U0011ffff"', "at position 6: \\U0011ffff is not a valid Unicode code point"),
    ('job="\\ud800"', "at position 6: \\ud800 is not a valid Unicode code point"),
    ('job="\\12"', "at position 6: an octal escape needs three octal digits (\\000 to \\377)"),
    ('job="\\400"', "at position 6: octal escape \\400 is above \\377"),
    ('job="\\xff"', "at position 5: this string is not valid UTF-8"),
    ('job="a\nb"', "at position 7: newline inside a quoted string (write it as \\n)"),
    ('""="x"', "at position 1: a label name cannot be empty"),
    ('device=~"sd("', "at position 9: invalid regex 'sd(' for label 'device': missing ): sd("),
    (
        'a!~"*"',
        "at position 4: invalid regex '*' for label 'a': no argument for repetition operator: *",
    ),
    # What RE2 (and so Prometheus) refuses, Python's re would accept: a clear line each.
    (
        r'instance=~"(a)\\1"',
        r"at position 11: invalid regex '(a)\\1' for label 'instance': invalid escape sequence: "
        r"\1 (label regexes use RE2 syntax, as in Prometheus: no lookaround or backreferences)",
    ),
    *(
        (
            f'x!~"{look}"',
            f"at position 4: invalid regex {look!r} for label 'x': invalid perl operator: "
            f"{look[:-2]} (label regexes use RE2 syntax, as in Prometheus: no lookaround or "
            "backreferences)",
        )
        for look in ("(?=a)", "(?!a)", "(?<=a)", "(?<!a)")
    ),
    (
        r'x=~"a\\Z"',
        r"at position 4: invalid regex 'a\\Z' for label 'x': invalid escape sequence: \Z",
    ),
    (r'x=~"\\C"', r"at position 4: invalid regex '\\C' for label 'x': invalid escape sequence: \C"),
    ('x=~"a**"', "at position 4: invalid regex 'a**' for label 'x': bad repetition operator: **"),
    (
        'x=~"a{1001}"',
        "at position 4: invalid regex 'a{1001}' for label 'x': invalid repetition size: {1001}",
    ),
    ('x=~"a)|(b"', "at position 4: invalid regex 'a)|(b' for label 'x': unexpected ): a)|(b"),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_label_filters(text)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


MATCH_CASES: list[tuple[str, dict[str, str], bool]] = [
    ('job="node"', {"job": "node"}, True),
    ('job="node"', {"job": "nodes"}, False),
    ('job="node"', {}, False),
    ('job=""', {}, True),  # a missing label is the empty string
    ('job=""', {"job": "x"}, False),
    ('job!=""', {}, False),
    ('job!=""', {"job": "x"}, True),
    ('job!="node"', {}, True),
    ('job!="node"', {"job": "node"}, False),
    ('dev=~"sd"', {"dev": "sda"}, False),  # anchored at the end
    ('dev=~"sd"', {"dev": "xsd"}, False),  # and at the start
    ('dev=~"sd.*"', {"dev": "sda"}, True),
    ('dev=~"a|b"', {"dev": "ab"}, False),  # the whole alternation is anchored
    ('dev=~"a|b"', {"dev": "b"}, True),
    ('dev=~".*"', {}, True),
    ('dev=~".+"', {}, False),
    ('dev=~""', {}, True),
    ('dev!~"sd.*"', {"dev": "sda"}, False),
    ('dev!~"sd.*"', {"dev": "nvme0"}, True),
    ('dev!~"sd.*"', {}, True),
    ('dev!~""', {}, False),
    ('dev=~"a.b"', {"dev": "a\nb"}, True),  # . matches a newline, as in Prometheus
    ('dev=~"(?i)SDA"', {"dev": "sda"}, True),
    (r'dev=~"\\d+"', {"dev": "42"}, True),
    (r'dev=~"\\d+"', {"dev": "٤٢"}, False),  # \d is ASCII, as in RE2
    ('job="a",dev=~"sd.*"', {"job": "a", "dev": "sdb"}, True),
    ('job="a",dev=~"sd.*"', {"job": "b", "dev": "sdb"}, False),
    # RE2 syntax and semantics, as in Prometheus (Go's regexp)
    ('dev=~"(?i)É"', {"dev": "é"}, True),  # case folding is Unicode
    ('dev=~"[[:alpha:]]+"', {"dev": "sda"}, True),  # POSIX classes
    ('dev=~"\\\\pL+"', {"dev": "ünï"}, True),  # Unicode classes
    ('dev=~"\\\\Q.*\\\\E"', {"dev": ".*"}, True),  # quoted text
    ('dev=~"\\\\Q.*\\\\E"', {"dev": "x"}, False),
    ('dev=~"\\\\Q\\\\C\\\\E"', {"dev": "\\C"}, True),  # \C quoted is text, not "any byte"
    ('dev=~"(?-s:a.b)"', {"dev": "a\nb"}, False),  # the flag can be turned off
    ('dev=~"a+?"', {"dev": "aaa"}, True),  # lazy quantifiers still match the whole value
    ('dev=~"x.y"', {"dev": "x\ud800y"}, True),  # a lone surrogate is one character, as U+FFFD
    ('dev=~"x\\\\.*"', {"dev": "x..."}, True),  # an escaped dot repeated: no prefix test
    ('dev=~"x\\\\.*"', {"dev": "xa"}, False),
    ('dev=~".*-prod|.*-stage"', {"dev": "a-stage"}, True),
    ('dev=~"GET|POST|"', {}, True),  # an empty alternative matches the missing label
    ('dev=~"a\\\\|b"', {"dev": "a|b"}, True),  # an escaped | is text
]


@pytest.mark.parametrize(("filters", "labels", "expected"), MATCH_CASES)
def test_matching(filters: str, labels: dict[str, str], expected: bool) -> None:
    selector = Selector("metric", parse_label_filters(filters))
    assert selector.matches(labels) is expected


def test_selector_without_matchers_matches_everything() -> None:
    assert Selector("up").matches({}) and Selector("up").matches({"a": "b"})


def test_matcher_value_semantics() -> None:
    a = LabelMatcher("dev", RE, "sd.*")
    b = LabelMatcher("dev", MatchOp("=~"), "sd.*")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != LabelMatcher("dev", NRE, "sd.*")
    assert LabelMatcher("x", "=", "y").op is EQ  # type: ignore[arg-type]
    assert repr(a) == "LabelMatcher(name='dev', op=<MatchOp.RE: '=~'>, value='sd.*')"


def test_matcher_construction_errors() -> None:
    with pytest.raises(ValueError, match="unknown matcher operator '=='"):
        LabelMatcher("x", "==", "y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"invalid regex '\(' for label 'x'"):
        LabelMatcher("x", RE, "(")


FORMAT_CASES: list[tuple[str, tuple[LabelMatcher, ...], str]] = [
    ("up", (), "up"),
    ("up", (m("job", EQ, "node"),), 'up{job="node"}'),
    (
        "node_cpu_seconds_total",
        (m("mode", NE, "idle"), m("cpu", RE, "1|2"), m("x", NRE, "")),
        'node_cpu_seconds_total{mode!="idle",cpu=~"1|2",x!~""}',
    ),
    ("a:b", (m("v", EQ, 'q"b\\s\nl\tt'),), r'a:b{v="q\"b\\s\nl\tt"}'),
    ("x", (m("v", EQ, "\x00\x7f\u200b😀é"),), 'x{v="\\x00\\x7f\\u200b😀é"}'),
    ("x", (m("my.label", EQ, "v"),), 'x{"my.label"="v"}'),
    ("my.metric", (), '{"my.metric"}'),
    ("my.metric", (m("a", EQ, "b"),), '{"my.metric",a="b"}'),
]


@pytest.mark.parametrize(("name", "matchers", "expected"), FORMAT_CASES)
def test_format(name: str, matchers: tuple[LabelMatcher, ...], expected: str) -> None:
    assert format_selector(name, matchers) == expected
    assert str(Selector(name, matchers)) == expected


@pytest.mark.parametrize(("name", "matchers", "expected"), FORMAT_CASES)
def test_format_round_trip(name: str, matchers: tuple[LabelMatcher, ...], expected: str) -> None:
    assert parse_label_filters(_inner(format_selector(name, matchers), name)) == matchers


def _inner(selector: str, name: str) -> str:
    """The matchers of a formatted selector (what LABEL_FILTERS would hold)."""
    if selector.startswith("{"):
        head = format_selector(name, ())[:-1]  # '{"name"'
        return selector[len(head) : -1].removeprefix(",")
    return selector[len(name) + 1 : -1] if selector != name else ""


legacy_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
any_names = st.one_of(legacy_names, st.text(min_size=1, max_size=8))


@st.composite
def matchers(draw: st.DrawFn) -> LabelMatcher:
    op = draw(st.sampled_from(MatchOp))
    value = draw(st.text(max_size=12))
    if op in (RE, NRE):
        value = re.escape(value)
    return LabelMatcher(draw(any_names), op, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(matchers(), max_size=5), st.sampled_from(["up", "a:b_c", "my.metric"]))
def test_format_then_parse_gives_the_same_matchers(
    generated: list[LabelMatcher], name: str
) -> None:
    text = format_selector(name, generated)
    assert parse_label_filters(_inner(text, name)) == tuple(generated)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_regex_matchers_match_their_literal_exactly(value: str) -> None:
    matcher = LabelMatcher("x", RE, re.escape(value))
    assert matcher.matches({"x": value})
    assert not matcher.matches({"x": value + "a"})
    assert not matcher.matches({"x": "a" + value})


_FRAGMENTS = [
    "a", "job", "_", "1", "=", "!=", "=~", "!~", "!", "~", '"', "'", "`", "\\", ",", " ",
    "\n", "(", ")", "[", "*", "\\x", "\\u", "\\U", "\\0", "7", "f", "{", "}", "é", "\\n",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(_FRAGMENTS)).map("".join)))
def test_parse_raises_nothing_but_value_error(text: str) -> None:
    try:
        result = parse_label_filters(text)
    except ValueError as err:
        assert str(err).startswith("at position ") and "\n" not in str(err)
    else:
        assert all(isinstance(x, LabelMatcher) for x in result)


# --- regexes run in linear time, with Prometheus' semantics -----------------------------

_CATASTROPHIC = ["([a-z0-9]+)*-prod", "(a|a)*b", "(a+)+$x", "(.*a){20}x", ".*.*.*.*.*.*=x"]


def test_catastrophic_patterns_match_a_long_value_quickly() -> None:
    """Python's re backtracks for ages on these; RE2 answers at once. Run in a subprocess so
    that a regression fails within the timeout instead of hanging the suite."""
    script = f"""
import time
from metric_reader._core._selector import Selector, parse_label_filters
value = "a" * 10_000
for regex in {_CATASTROPHIC!r}:
    for op in ("=~", "!~"):
        selector = Selector("m", parse_label_filters(f"instance{{op}}`{{regex}}`"))
        started = time.process_time()
        assert selector.matches({{"instance": value}}) is (op == "!~"), regex
        assert time.process_time() - started < 0.5, regex
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


_RE2 = re2.Options()
_RE2.log_errors = False
_RE2.dot_nl = True

# Small regexes whose meaning is the same in Python's re (DOTALL, ASCII) and RE2.
_SAFE_ATOMS = ["a", "b", "-", ".", "[ab]", "[^a]", "\\d", "\\w", "\\.", "é", "\n"]
safe_regexes = st.recursive(
    st.sampled_from(_SAFE_ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["*", "+", "?", "{1,2}", "*?"])).map(
            lambda t: f"(?:{t[0]}){t[1]}"
        ),
        st.lists(inner, min_size=2, max_size=3).map("".join),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + "|".join(xs) + ")"),
    ),
    max_leaves=6,
)
values = st.text(st.sampled_from("ab-.1_é\n"), max_size=8)


@settings(max_examples=400, deadline=None)
@given(safe_regexes, values)
def test_matching_agrees_with_python_fullmatch_on_simple_patterns(regex: str, value: str) -> None:
    expected = re.fullmatch(regex, value, re.DOTALL | re.ASCII) is not None
    assert LabelMatcher("x", RE, regex).matches({"x": value}) is expected
    assert LabelMatcher("x", NRE, regex).matches({"x": value}) is not expected


# Fragments that make the shapes the matcher answers without RE2, and near misses of them.
_SHAPE_BITS = ["a", "b", "é", ".*", ".+", ".", "|", "\\.", "\\|", "\\", "*", "?", "\\d", "(?i)"]
shaped_regexes = st.lists(st.sampled_from(_SHAPE_BITS), max_size=6).map("".join)
shaped_values = st.text(st.sampled_from("abé.|\\1A"), max_size=6)


@settings(max_examples=1000, deadline=None)
@given(shaped_regexes, st.lists(shaped_values, max_size=4))
def test_string_shortcuts_agree_with_re2(regex: str, tried: list[str]) -> None:
    """Literals, alternations and .* affixes skip the engine: the answers must not change."""
    try:
        engine = re2.compile(regex, _RE2)
    except re2.error:
        with pytest.raises(ValueError):
            compile_label_regex(regex)
        return
    fullmatch = compile_label_regex(regex)
    for value in [*tried, *tried]:  # twice: answers remembered are the same
        assert fullmatch(value) is (engine.fullmatch(value) is not None), value


def test_remembered_answers_stay_right_past_the_cache_size() -> None:
    fullmatch = compile_label_regex("[0-9]+7")
    expected = [n for n in range(10_000) if n > 9 and n % 10 == 7]
    for _ in range(2):  # 10,000 values: the remembered answers start over twice a round
        assert [n for n in range(10_000) if fullmatch(str(n))] == expected
