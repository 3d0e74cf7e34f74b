"""Prometheus rule files as a rule source: ``rule_files`` globs expanded as Prometheus expands
them, and the files read into frozen groups of rules, or a ``ConfigError`` naming every
problem of every file, one line each (``FILE:LINE:COL: message``, like ``promtool check
rules``).

Only alerting rules are evaluated by metric-reader; recording rules are read, checked and
returned apart so that they can be reported as skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from .._core import ConfigError
from ._go_glob import BadPattern, escape, glob, go_join
from ._prom_duration import go_quoted
from ._rule_defs import AlertRuleDef, RecordingRuleDef, RuleGroupDef, TemplateCheck

__all__ = [
    "AlertRuleDef",
    "RecordingRuleDef",
    "RuleGroupDef",
    "TemplateCheck",
    "expand_rule_file_globs",
    "load_rule_files",
]

_RULE_PATH = re.compile(r"[^*]*(\*[^/]*)?")
"""Prometheus' check of a ``rule_files`` entry: a ``*`` only in its last path element."""


def anchored_pattern(pattern: str, base: Path) -> str:
    """``pattern`` as it is matched: a relative one relative to ``base`` (the directory of the
    file that gave it), whose own glob characters are escaped."""
    return pattern if os.path.isabs(pattern) else go_join(escape(str(base)), pattern)


def expand_rule_file_globs(
    patterns: Sequence[str], base: Path, source: str = "rule_files"
) -> list[Path]:
    """The files ``patterns`` name, sorted, each once (two paths to one file count once).

    A relative pattern is relative to ``base`` (the directory of the file that gave it).
    As in Prometheus, a pattern with ``*`` may match nothing; as ``promtool check config``
    has it, a pattern without ``*`` must name a file that exists. ``source`` begins each
    error line (``RULE_FILES``, ``rules.toml: rule_files``)."""
    problems: list[str] = []
    found: dict[str, Path] = {}
    for pattern in patterns:
        shown = f"{source}: {go_quoted(pattern)}"
        if not _RULE_PATH.fullmatch(pattern):
            problems.append(f"{shown}: invalid rule file path: '*' only in the file's name")
            continue
        full = anchored_pattern(pattern, base)
        try:
            matches = glob(full)
        except BadPattern as exc:
            problems.append(f"{shown}: {exc}")
            continue
        if "*" not in pattern and not matches:
            problems.append(f"{shown} does not point to an existing file")
            continue
        for match in matches:
            found.setdefault(os.path.realpath(match), Path(match))
    if problems:
        raise ConfigError(*problems)
    return sorted(set(found.values()))


def load_rule_files(
    paths: Sequence[Path], check_templates: TemplateCheck | None = None
) -> tuple[RuleGroupDef, ...]:
    """Every group of the files at ``paths``, in their order; ``ConfigError`` with all the
    problems found in all of them. ``check_templates`` is given each label and annotation of
    each alerting rule and returns its problem, or None."""
    from ._rule_file_reader import read_rule_file

    groups: list[RuleGroupDef] = []
    problems: list[str] = []
    for path in paths:
        file_groups, file_problems = read_rule_file(path, check_templates)
        groups.extend(file_groups)
        problems.extend(file_problems)
    if problems:
        raise ConfigError(*problems)
    return tuple(groups)
