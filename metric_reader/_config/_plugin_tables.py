"""``[plugins.NAME]`` tables: each plugin's settings, for its ``configure(settings)``.

A table with ``plugin = "BASE"`` makes a plugin of its own, named ``NAME``: ``BASE``'s code
with the table's other settings, as an Alertmanager receiver is an integration with
settings of its own under a name routes use. So two routes can run two commands of
``exec_action``, or post to two URLs of ``http_action``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._problems import Problems

if TYPE_CHECKING:
    from ._tomlfile import TomlFile

BASE_KEY = "plugin"
"""The key of a ``[plugins.NAME]`` table that names the plugin ``NAME`` is made of."""


def read_plugin_tables(
    tables: Mapping[str, Mapping[str, Any]], toml: TomlFile, problems: Problems
) -> tuple[dict[str, Mapping[str, Any]], dict[str, str]]:
    """Each plugin's settings (without ``plugin``), and the plugins made of another: their
    name to the name of the plugin they are made of."""
    settings: dict[str, Mapping[str, Any]] = {}
    bases: dict[str, str] = {}
    for name, table in tables.items():
        own = {key: value for key, value in table.items() if key != BASE_KEY}
        if own or BASE_KEY not in table:
            settings[name] = own
        if BASE_KEY not in table:
            continue
        base = table[BASE_KEY]
        at = toml.where(f"plugins.{name}.{BASE_KEY}")
        if not isinstance(base, str) or not base.strip():
            problems.add(
                f"{at}={base!r} is invalid: expected the name of the plugin {name} is made "
                'of, e.g. plugin = "exec_action"'
            )
        elif base == name:
            problems.add(
                f"{at}={base!r} is invalid: a plugin cannot be made of itself; leave "
                f"plugin out to give {name} its own settings"
            )
        else:
            bases[name] = base
    for name, base in bases.items():
        if base in bases:
            problems.add(
                f"{toml.where(f'plugins.{name}.{BASE_KEY}')}={base!r} is invalid: {base} is "
                f"itself made of {bases[base]} ([plugins.{base}]); name the plugin it is "
                f"made of, plugin = {bases[base]!r}, and give the settings again"
            )
    return settings, {name: base for name, base in bases.items() if base not in bases}
