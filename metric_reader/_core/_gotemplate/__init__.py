"""Go's text/template as Prometheus' alert templates use it: parse, check and expand.

The entry point of the template engine; its lexer (``_lex``), parser (``_parse``), the
tree the parser builds (``_nodes``), executor (``_exec``), Go's fmt verbs (``_fmt``) and
Prometheus' template functions (``_template``) are private.
"""

from ._fmt import format_float, quote
from ._template import AlertTemplate, TemplateError, check_template, expand_alert_template

__all__ = [
    "AlertTemplate",
    "TemplateError",
    "check_template",
    "expand_alert_template",
    "format_float",
    "quote",
]
