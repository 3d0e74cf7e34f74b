"""The files a configuration was read from: ``CONFIG_FILE`` and the rule files its
``rule_files`` (or ``RULE_FILES``) globs match now, for the service to watch
(``WATCH_CONFIG``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

# The rule files' code (_rule_files, _go_glob) is imported only when there are globs: a
# configuration without rule files never loads it.


def rule_file_globs(patterns: Sequence[str], base: Path) -> tuple[str, ...]:
    """``patterns`` as ``expand_rule_file_globs`` matches them: a relative one relative to
    ``base`` (the directory of the file that gave it)."""
    if not patterns:
        return ()
    from ._rule_files import anchored_pattern

    return tuple(anchored_pattern(pattern, base) for pattern in patterns)


def configuration_files(config_file: Path | None, globs: Sequence[str]) -> list[Path]:
    """``config_file`` and the files ``globs`` match now, each once. A glob without ``*``
    names its file even while it does not exist: its coming back is a change too."""
    found: dict[str, Path] = {}
    if config_file is not None:
        found[str(config_file)] = config_file
    if globs:
        from ._go_glob import BadPattern, glob
    for pattern in globs:
        try:
            matches = glob(pattern)
        except BadPattern:  # refused when the configuration was read: it cannot be here
            continue
        if not matches and "*" not in pattern:  # (Prometheus' rule: the file must exist)
            matches = [re.sub(r"\\(.)", r"\1", pattern)]
        for match in matches:
            found.setdefault(match, Path(match))
    return list(found.values())
