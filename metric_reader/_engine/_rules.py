"""The rule of each kind a configuration asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._alerting import AlertingRule
from ._logging_rule import LoggingRule
from ._rule import Rule

if TYPE_CHECKING:
    from .._config import RuleConfig


def make_rule(config: RuleConfig) -> Rule:
    """An ``AlertingRule`` if ``config`` has a threshold, else a ``LoggingRule``."""
    return LoggingRule(config) if config.base is None else AlertingRule(config)
