"""The README and the examples say what the code does, and the quick start works as written.

The settings the code knows (``metric_reader._config._keys``) must all be in the README's
configuration reference and, as rule file keys, in ``examples/rules.toml``; every metric
the service exports must be in the README's metrics table; every link between the
documents must lead somewhere. The quick start's commands are run as a user would run
them, against the demo exporter.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fake_view import FakeView

from metric_reader._config import KNOWN_VARIABLES
from metric_reader._config._keys import LEVEL_KEYS as _LEVEL_KEYS
from metric_reader._config._keys import RULE_KEYS as _RULE_KEYS
from metric_reader._config._keys import TOP_LEVEL_KEYS
from metric_reader._surface._collectors import register_service_collectors

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RULES_TOML = REPO / "examples" / "rules.toml"
DOCUMENTS = [README, REPO / "plugin_dir" / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole line) down to the next heading of its level."""
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    end = re.compile(rf"^{level} ", re.M).search(text, start + len(heading) + 2)
    return text[start : end.start() if end else len(text)]


def _configuration() -> str:
    return section(README.read_text(), "## Configuration")


# --- settings ---------------------------------------------------------------------------------


def test_every_variable_the_code_knows_is_in_the_readme_configuration_reference() -> None:
    reference = _configuration()
    missing = [name for name in KNOWN_VARIABLES if f"`{name}`" not in reference]
    assert missing == [], f"README.md ## Configuration does not document: {', '.join(missing)}"


def test_the_readme_configuration_tables_name_only_real_variables() -> None:
    named = set()
    for line in _configuration().splitlines():
        if line.startswith("| `"):
            named |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    unknown = sorted(named - set(KNOWN_VARIABLES))
    assert unknown == [], f"README.md documents settings the code does not know: {unknown}"


def _rules_toml_keys() -> dict[str, set[str]]:
    """The keys of ``examples/rules.toml``, commented out or not, by table: ``""`` for the
    top level, ``"rules"`` and ``"rules.hard"``."""
    keys: dict[str, set[str]] = {"": set()}
    table = ""
    for line in RULES_TOML.read_text().splitlines():
        text = re.sub(r"^\s*#\s?", "", line)
        if header := re.match(r"\s*\[\[?([\w.]+)\]\]?\s*(#.*)?$", text):
            table = header.group(1)
            keys.setdefault(table, set())
        elif key := re.match(r"\s*([a-z_]+)\s*=", text):
            keys[table].add(key.group(1))
    return keys


def test_every_rule_file_key_is_in_examples_rules_toml() -> None:
    keys = _rules_toml_keys()
    top_level = [k for k in TOP_LEVEL_KEYS if k not in _RULE_KEYS]  # service-wide settings
    rule = [k for k in _RULE_KEYS if not k.startswith("hard.")]
    missing = [f"{k} (top level)" for k in top_level if k not in keys[""]]
    missing += [f"{k} ([[rules]])" for k in rule if k not in keys.get("rules", set())]
    missing += [
        f"{k} ([rules.hard])" for k in _LEVEL_KEYS if k not in keys.get("rules.hard", set())
    ]
    assert missing == [], f"examples/rules.toml does not show: {', '.join(missing)}"


def test_the_rules_toml_check_sees_commented_keys_and_their_tables() -> None:
    keys = _rules_toml_keys()
    assert "shard_index" in keys[""]  # commented out in the file
    assert "name" in keys["rules"] and "name" not in keys["rules.hard"]
    assert "level" in keys["plugins.log_action"]  # a plugin's table is not a rule


def _exported_metrics() -> set[str]:
    """The names ``/metrics`` serves under ``metric_reader_``, read from the real registry
    (counters with their ``_total``), the scrape-time gauges included."""
    view = FakeView()
    register_service_collectors(view.registry, view)
    names = set()
    for family in view.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        if name.startswith("metric_reader_"):
            names.add(name.removeprefix("metric_reader_"))
    return names


def test_every_metric_the_service_exports_is_in_the_readme_metrics_table() -> None:
    metrics = section(README.read_text(), "### Metrics")
    names = _exported_metrics()
    assert len(names) >= 10 and "leader" in names
    missing = sorted(n for n in names if f"`{n}`" not in metrics)
    assert missing == [], f"README.md ### Metrics does not list: {missing}"
    table = metrics[metrics.index("| metric |") :].split("\n\n")[0]
    rows = re.findall(r"^\| (`[^|]*`) \|", table, re.M)
    listed = {name for row in rows for name in re.findall(r"`(\w+)`", row)} - {"metric"}
    assert listed == names, (
        f"README.md ### Metrics lists metrics that do not exist: {sorted(listed - names)}"
    )


def test_the_readme_does_not_offer_an_install_from_pypi() -> None:
    for document in DOCUMENTS:
        text = document.read_text()
        assert not re.search(r"pip install (-U )?metric-reader", text), document
    assert "not on PyPI yet" in README.read_text()


# --- links ------------------------------------------------------------------------------------


def test_every_docs_page_is_in_the_readmes_table_of_documents() -> None:
    table = section(README.read_text(), "## More documentation")
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    missing = [name for name in pages if f"(docs/{name})" not in table]
    assert missing == [], f"README.md ## More documentation does not link: {missing}"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.S | re.M)
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_leads_to_a_file_and_heading_that_exist(document: Path) -> None:
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path_part, _, anchor = target.partition("#")
        path = (document.parent / path_part).resolve() if path_part else document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no such heading")
    assert broken == [], f"{document.relative_to(REPO)}: {broken}"


# --- the quick start --------------------------------------------------------------------------


def readme_files() -> dict[str, str]:
    """The README's code blocks marked ``<!-- readme-file: PATH -->``, by PATH."""
    blocks = re.findall(
        r"<!-- readme-file: (\S+) -->\n```[a-z]*\n(.*?)^```", README.read_text(), re.S | re.M
    )
    return dict(blocks)


def _quick_start_commands() -> tuple[list[str], dict[str, str], list[str]]:
    """The exporter's command line, then the service's environment and command line."""
    [block] = re.findall(
        r"<!-- readme-command -->\n```sh\n(.*?)^```", README.read_text(), re.S | re.M
    )
    exporter, service = block.replace("\\\n", " ").strip().splitlines()
    exporter_words = shlex.split(exporter.removesuffix("&"))
    words = shlex.split(service)
    env = dict(w.split("=", 1) for w in words if re.match(r"[A-Z_]+=", w))
    return exporter_words, env, [w for w in words if not re.match(r"[A-Z_]+=", w)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    """The README's plugin, exporter and command, with only the ports changed to free ones:
    the breach fires and the plugin writes its line, and Ctrl-C stops the service cleanly."""
    exporter_words, env, command = _quick_start_commands()
    assert exporter_words[:2] == ["python", "examples/demo_exporter.py"]
    assert command == ["metric-reader"]
    port = exporter_words[exporter_words.index("--port") + 1]
    assert env["SCRAPE_URL"] == f"http://127.0.0.1:{port}/metrics"
    assert env["PLUGIN_DIR"] == "plugins"
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    for relative, source in readme_files().items():
        (tmp_path / relative).write_text(source)
        (tmp_path / relative).chmod(0o644)

    free = str(_free_port())
    exporter_words[exporter_words.index("--port") + 1] = free
    env["SCRAPE_URL"] = env["SCRAPE_URL"].replace(port, free)
    env["LISTEN_ADDRESS"] = "127.0.0.1:0"  # the README's default port may be taken here
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("METRIC_READER")}
    exporter = subprocess.Popen(
        [sys.executable, str(REPO / exporter_words[1]), *exporter_words[2:]],
        stdout=subprocess.DEVNULL,
        env=base_env,
    )
    log = tmp_path / "service.log"
    try:
        with log.open("w") as out:
            service = subprocess.Popen(
                [sys.executable, "-m", "metric_reader"],
                cwd=tmp_path,
                env={**base_env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            written = tmp_path / "breaches.log"
            deadline = time.monotonic() + 60  # the exporter's queue passes 80 after 8 s
            while not written.exists() and service.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            service.send_signal(signal.SIGINT)
            assert service.wait(timeout=20) == 0, log.read_text()
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)

    [line] = written.read_text().splitlines()
    assert re.fullmatch(r"demo_queue_depth = 9\d\.\d+ \(>80\) for [5-7]s", line), line
    output = log.read_text()
    assert "firing: breached for" in output
    assert re.search(r"execute succeeded .*kind=fire .*plugin=breach_log", output), output
    assert output.rstrip().endswith("stopped")
