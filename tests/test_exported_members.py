"""The public surface of the package, pinned: what a plugin or a script may import.

Everything else lives in private modules (``metric_reader._*``) and may change.
"""

import metric_reader


def test_the_package_exports_exactly_its_public_names() -> None:
    exported = set(metric_reader.__all__)
    assert exported == {
        "ActionPlugin",
        "AlertTemplate",
        "Event",
        "__version__",
        "check_settings",
        "parse_duration",
        "toml_type",
    }
    public = {name for name in dir(metric_reader) if not name.startswith("_")}
    assert public == exported - {"__version__"}, "a public name that is not in __all__"
    for name in exported:
        member = getattr(metric_reader, name)
        if name != "__version__":
            assert member.__module__.startswith("metric_reader._core."), (name, member)
