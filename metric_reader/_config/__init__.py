"""Configuration: the environment and the rule file to frozen ``Settings``, checked before
anything polls. What the other layers use of it is exported here."""

from ._client import MAX_RESPONSE_BYTES, ClientConfig, Secret, build_ssl_context, read_credential
from ._keys import KNOWN_VARIABLES
from ._loader import load_settings
from ._problems import ConfigError
from ._routes import Route, routes_for
from ._types import (
    AlertDefinition,
    ElectionSettings,
    LevelConfig,
    MissingValueBehavior,
    PrometheusQuery,
    PrometheusSelector,
    RuleConfig,
    RuleSource,
    ScrapePage,
    Settings,
)
from ._values import describe_dir_error, ordinal_from_hostname, parse_listen_address

__all__ = [
    "KNOWN_VARIABLES",
    "MAX_RESPONSE_BYTES",
    "AlertDefinition",
    "ClientConfig",
    "ConfigError",
    "ElectionSettings",
    "LevelConfig",
    "MissingValueBehavior",
    "PrometheusQuery",
    "PrometheusSelector",
    "Route",
    "RuleConfig",
    "RuleSource",
    "ScrapePage",
    "Secret",
    "Settings",
    "build_ssl_context",
    "describe_dir_error",
    "load_settings",
    "ordinal_from_hostname",
    "parse_listen_address",
    "read_credential",
    "routes_for",
]
