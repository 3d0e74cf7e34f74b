"""Configuration: the environment and the rule file to frozen ``Settings``, checked before
anything polls. What the other layers use of it is exported here."""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._client import (
        MAX_RESPONSE_BYTES,
        ClientConfig,
        Secret,
        build_ssl_context,
        read_credential,
    )
    from ._go_glob import BadPattern as BadGlobPattern
    from ._go_glob import escape as glob_escape
    from ._go_glob import glob as go_glob
    from ._go_glob import go_join
    from ._inhibit_rules import InhibitRule
    from ._keys import KNOWN_VARIABLES
    from ._loader import load_settings, with_external
    from ._moment import MOMENT_HELP, parse_moment
    from ._problems import ConfigError
    from ._prom_duration import format_prometheus_duration, go_quoted, parse_prometheus_duration
    from ._promql import ParsedPromQL, parse_for_evaluation
    from ._regular_file import read_regular_file
    from ._routes import Route, parse_matcher, routes_for
    from ._rule_file_reader import RuleFileReader
    from ._types import (
        AlertDefinition,
        BreakerConfig,
        BudgetConfig,
        ElectionSettings,
        GuardMode,
        LevelConfig,
        MissingValueBehavior,
        PluginGuard,
        PrometheusQuery,
        PrometheusSelector,
        RecordingRuleConfig,
        RuleConfig,
        RuleGroupConfig,
        RuleGuard,
        RuleSource,
        ScrapePage,
        Settings,
    )
    from ._values import describe_dir_error, ordinal_from_hostname, parse_listen_address
    from ._values import url as parse_url
    from ._verify import VerifyConfig
    from ._watched import configuration_files
    from ._yaml_nodes import YamlSyntaxError
    from ._yaml_nodes import compose as compose_yaml
    from ._yaml_nodes import is_null as yaml_is_null
    from ._yaml_nodes import kind as yaml_kind
    from ._yaml_nodes import place as yaml_place
    from ._yaml_nodes import scalar_text as yaml_scalar_text

__all__ = [
    "KNOWN_VARIABLES",
    "MAX_RESPONSE_BYTES",
    "MOMENT_HELP",
    "AlertDefinition",
    "BadGlobPattern",
    "BreakerConfig",
    "BudgetConfig",
    "ClientConfig",
    "ConfigError",
    "ElectionSettings",
    "GuardMode",
    "InhibitRule",
    "LevelConfig",
    "MissingValueBehavior",
    "ParsedPromQL",
    "PluginGuard",
    "PrometheusQuery",
    "PrometheusSelector",
    "RecordingRuleConfig",
    "Route",
    "RuleConfig",
    "RuleFileReader",
    "RuleGroupConfig",
    "RuleGuard",
    "RuleSource",
    "ScrapePage",
    "Secret",
    "Settings",
    "VerifyConfig",
    "YamlSyntaxError",
    "build_ssl_context",
    "compose_yaml",
    "configuration_files",
    "describe_dir_error",
    "format_prometheus_duration",
    "glob_escape",
    "go_glob",
    "go_join",
    "go_quoted",
    "load_settings",
    "ordinal_from_hostname",
    "parse_for_evaluation",
    "parse_listen_address",
    "parse_matcher",
    "parse_moment",
    "parse_prometheus_duration",
    "parse_url",
    "read_credential",
    "read_regular_file",
    "routes_for",
    "with_external",
    "yaml_is_null",
    "yaml_kind",
    "yaml_place",
    "yaml_scalar_text",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "GuardMode": "._types",
            "RuleGuard": "._types",
            "VerifyConfig": "._verify",
            "PluginGuard": "._types",
            "BreakerConfig": "._types",
            "BudgetConfig": "._types",
            "AlertDefinition": "._types",
            "BadGlobPattern": "._go_glob:BadPattern",
            "ClientConfig": "._client",
            "ConfigError": "._problems",
            "ElectionSettings": "._types",
            "KNOWN_VARIABLES": "._keys",
            "LevelConfig": "._types",
            "MAX_RESPONSE_BYTES": "._client",
            "MOMENT_HELP": "._moment",
            "MissingValueBehavior": "._types",
            "ParsedPromQL": "._promql",
            "PrometheusQuery": "._types",
            "PrometheusSelector": "._types",
            "RecordingRuleConfig": "._types",
            "Route": "._routes",
            "InhibitRule": "._inhibit_rules",
            "RuleConfig": "._types",
            "RuleFileReader": "._rule_file_reader",
            "RuleGroupConfig": "._types",
            "RuleSource": "._types",
            "ScrapePage": "._types",
            "Secret": "._client",
            "Settings": "._types",
            "YamlSyntaxError": "._yaml_nodes",
            "build_ssl_context": "._client",
            "compose_yaml": "._yaml_nodes:compose",
            "configuration_files": "._watched",
            "describe_dir_error": "._values",
            "format_prometheus_duration": "._prom_duration",
            "glob_escape": "._go_glob:escape",
            "go_glob": "._go_glob:glob",
            "go_join": "._go_glob",
            "go_quoted": "._prom_duration",
            "load_settings": "._loader",
            "ordinal_from_hostname": "._values",
            "parse_for_evaluation": "._promql",
            "parse_listen_address": "._values",
            "parse_matcher": "._routes",
            "parse_moment": "._moment",
            "parse_prometheus_duration": "._prom_duration",
            "parse_url": "._values:url",
            "read_credential": "._client",
            "read_regular_file": "._regular_file",
            "routes_for": "._routes",
            "with_external": "._loader",
            "yaml_is_null": "._yaml_nodes:is_null",
            "yaml_kind": "._yaml_nodes:kind",
            "yaml_place": "._yaml_nodes:place",
            "yaml_scalar_text": "._yaml_nodes:scalar_text",
        },
    )
