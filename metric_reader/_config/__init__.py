"""Configuration: the environment and the rule file to frozen ``Settings``, checked before
anything polls. What the other layers use of it is exported here."""

from ._client import MAX_RESPONSE_BYTES, ClientConfig, Secret, build_ssl_context, read_credential
from ._go_glob import BadPattern as BadGlobPattern
from ._go_glob import escape as glob_escape
from ._go_glob import glob as go_glob
from ._go_glob import go_join
from ._keys import KNOWN_VARIABLES
from ._loader import load_settings, with_external
from ._problems import ConfigError
from ._prom_duration import format_prometheus_duration, go_quoted, parse_prometheus_duration
from ._promql import ParsedPromQL, parse_for_evaluation
from ._regular_file import read_regular_file
from ._routes import Route, routes_for
from ._rule_file_reader import RuleFileReader
from ._types import (
    AlertDefinition,
    ElectionSettings,
    LevelConfig,
    MissingValueBehavior,
    PrometheusQuery,
    PrometheusSelector,
    RecordingRuleConfig,
    RuleConfig,
    RuleGroupConfig,
    RuleSource,
    ScrapePage,
    Settings,
)
from ._values import describe_dir_error, ordinal_from_hostname, parse_listen_address
from ._values import url as parse_url
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
    "AlertDefinition",
    "BadGlobPattern",
    "ClientConfig",
    "ConfigError",
    "ElectionSettings",
    "LevelConfig",
    "MissingValueBehavior",
    "ParsedPromQL",
    "PrometheusQuery",
    "PrometheusSelector",
    "RecordingRuleConfig",
    "Route",
    "RuleConfig",
    "RuleFileReader",
    "RuleGroupConfig",
    "RuleSource",
    "ScrapePage",
    "Secret",
    "Settings",
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
