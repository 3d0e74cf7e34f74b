"""The core: what every layer shares. Events and samples, durations, thresholds,
selectors, the exception tree, the clock, logging, the secrets kept out of every text, the
plugin contract, the chart drawing; Go's templates are the subpackage ``_gotemplate``. Pure
code that imports no other layer.

What the other layers use of it is exported here; the modules behind it are private.
"""

from ._chart import (
    Chart,
    Line,
    LineKind,
    Mark,
    MarkKind,
    escape_text,
    format_value,
    render_svg,
    state_spans,
    utc_text,
)
from ._clock import to_mono, to_wall
from ._durations import format_duration, parse_duration, round_duration
from ._events import Event, EventKind, Level, idempotency_key
from ._exceptions import (
    ConfigError,
    Conflict,
    FetchError,
    FetchTimeout,
    KubeError,
    ListenError,
    MetricReaderError,
    PluginFailure,
    PluginTimeout,
    QueueTimeout,
    ResponseTooLarge,
    StateError,
)
from ._gotemplate import AlertTemplate
from ._logging import configure_logging
from ._memory import keep_freed_memory
from ._numbers import json_number
from ._plugin_contract import ActionPlugin, Method, PluginSettings
from ._plugin_settings import check_settings, toml_type
from ._regex import compile_label_regex, label_regex_refusal
from ._samples import Labels, Sample, labels_of
from ._secrets import (
    forget_secrets,
    redact,
    redacted_excerpt,
    remember_secret,
    remember_url_credentials,
    without_url_credentials,
)
from ._selector import (
    LabelMatcher,
    MatchOp,
    Selector,
    format_selector,
    parse_label_filters,
    quote,
    read_string_literal,
)
from ._text import may_hold_surrogates, utf8, valid_strings, valid_text
from ._threshold import ANY, Threshold, any_value, parse_threshold, parse_value
from ._throttle import Throttle

__all__ = [
    "ANY",
    "ActionPlugin",
    "AlertTemplate",
    "Chart",
    "ConfigError",
    "Conflict",
    "Event",
    "EventKind",
    "FetchError",
    "FetchTimeout",
    "KubeError",
    "LabelMatcher",
    "Labels",
    "Level",
    "Line",
    "LineKind",
    "ListenError",
    "Mark",
    "MarkKind",
    "MatchOp",
    "Method",
    "MetricReaderError",
    "PluginFailure",
    "PluginSettings",
    "PluginTimeout",
    "QueueTimeout",
    "ResponseTooLarge",
    "Sample",
    "Selector",
    "StateError",
    "Threshold",
    "Throttle",
    "any_value",
    "check_settings",
    "compile_label_regex",
    "configure_logging",
    "escape_text",
    "forget_secrets",
    "format_duration",
    "format_selector",
    "format_value",
    "idempotency_key",
    "json_number",
    "keep_freed_memory",
    "label_regex_refusal",
    "labels_of",
    "may_hold_surrogates",
    "parse_duration",
    "parse_label_filters",
    "parse_threshold",
    "parse_value",
    "quote",
    "read_string_literal",
    "redact",
    "redacted_excerpt",
    "remember_secret",
    "remember_url_credentials",
    "render_svg",
    "round_duration",
    "state_spans",
    "to_mono",
    "to_wall",
    "toml_type",
    "utc_text",
    "utf8",
    "valid_strings",
    "valid_text",
    "without_url_credentials",
]
