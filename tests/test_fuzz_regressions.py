"""Inputs the fuzzers found that raised something other than our own error (or hung).

Found by tests/test_fuzz_properties.py (hypothesis) while writing it; the atheris run of
the exposition reader (docs/fuzzing.md) found none. Each test failed before its fix.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from metric_reader._config import ConfigError, load_settings
from metric_reader._core._durations import parse_duration
from metric_reader._core._exceptions import FetchError
from metric_reader._sources._prometheus import decode_query_response


@pytest.mark.parametrize("warnings", ["5", "true", '{"a": 1}', '"partial"'])
def test_warnings_that_are_not_a_list_are_ignored(warnings: str) -> None:
    # Was TypeError: 'int' object is not iterable (and a string gave one warning per letter).
    body = b'{"status":"success","warnings":%s,"data":{"resultType":"scalar","result":[1,"2"]}}'
    result = decode_query_response(200, body % warnings.encode())
    assert result.warnings == ()
    assert [s.value for s in result.samples] == [2.0]


@pytest.mark.parametrize(("opener", "closer"), [(b"[", b"]"), (b'{"a":', b"}")])
def test_json_nested_too_deeply_is_a_fetch_error(opener: bytes, closer: bytes) -> None:
    # Was RecursionError from json.loads.
    body = opener * 100_000 + b"1" + closer * 100_000
    with pytest.raises(FetchError, match="nested too deeply"):
        decode_query_response(200, body)


def test_a_config_file_name_with_a_nul_is_a_config_error() -> None:
    # Was ValueError: embedded null byte, from Path.read_text.
    with pytest.raises(ConfigError, match=r"CONFIG_FILE: .*cannot read"):
        load_settings({"CONFIG_FILE": "rules\x00.toml"})


@pytest.mark.parametrize("text", ["9" * 400 + "s", "2562048h", "1" + "0" * 20 + "ns"])
def test_durations_longer_than_go_allows_are_refused(text: str) -> None:
    # "9" * 400 + "s" was inf, which format_duration (the CLI, the logs) then failed on.
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_the_longest_go_duration_is_still_read() -> None:
    assert parse_duration("2562047h") == 2562047 * 3600


def test_a_long_line_of_spaces_in_a_rule_file_does_not_hang_the_loader(tmp_path: Path) -> None:
    # The table-header regex backtracked cubically: 2,000 spaces took 10 s, 3,000 about 35 s.
    path = tmp_path / "rules.toml"
    spaces = " " * 3000
    path.write_text(
        f'[[rules]]\nname = "a"\nmetric_name = "m"\n[plugins.p]\nnote = """\n[{spaces}\n"""\n'
    )
    start = time.monotonic()
    [rule] = load_settings({"CONFIG_FILE": str(path)}).rules
    assert rule.name == "a"
    assert time.monotonic() - start < 3


def test_a_query_is_judged_as_written_not_as_python_strips_it() -> None:
    # Was accepted: str.strip took "\x1f" for white space, so "0" was judged; PromQL's lexer
    # refuses the character, as promtool does.
    from metric_reader._config._values import promql

    with pytest.raises(ValueError, match=r"could not parse expression: .*unexpected character"):
        promql("0\x1f")
