"""Configuration: one rule from the environment (SPEC section 2), or many from a TOML file
named by ``CONFIG_FILE`` (SPEC section 6), validated before anything polls.

Both paths share one validator: a rule is a set of keys (``threshold``, ``hard.threshold``,
...), each value remembering where it came from, so an error names it the way the user
wrote it: ``THRESHOLD='abc'`` for the environment, ``rules.toml:12: rules[3].threshold``
for the file. Every mistake is collected; all of them are reported together.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .._cluster._shard import ordinal_from_hostname, shard_of
from .._core._durations import parse_duration
from .._core._exceptions import ConfigError
from .._core._selector import LabelMatcher, Selector, parse_label_filters
from .._core._threshold import Threshold, parse_threshold
from .._engine._state import LevelPolicy, MissingValueBehavior
from .._sources._body import MAX_RESPONSE_BYTES as DEFAULT_MAX_RESPONSE_BYTES
from .._sources._http import ClientConfig, Secret, build_ssl_context, read_credential
from ._near_miss import slip_of

if TYPE_CHECKING:
    from ._tomlfile import TomlFile

LOG_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}
LOG_FORMATS = ("text", "json")
DEFAULT_PROMETHEUS = "http://prometheus:9090"
DEFAULT_LISTEN_ADDRESS = ":9180"
DEFAULT_SERIES_LIMIT = 10_000
"""``SERIES_LIMIT``: each series is a state machine (about 1 KiB); a rule that acts per series
and reads more than this is almost always a label that churns (a request ID, a pod hash),
and 10,000 is still ~10 MiB a rule, far above the few hundred a real rule watches."""
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.:\-]+")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class LevelConfig:
    threshold: Threshold
    duration: float = 0.0
    backoff: float = 0.0
    plugin: str | None = None
    keep_firing_for: float = 0.0
    clear_threshold: Threshold | None = None

    def policy(self, retry_delay: float) -> LevelPolicy:
        return LevelPolicy(
            self.threshold,
            self.duration,
            self.backoff,
            retry_delay,
            self.keep_firing_for,
            self.clear_threshold,
        )


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    metric_name: str
    """The metric name, or the PromQL text of a ``query`` rule: what plugins are given."""
    selector: Selector | None
    """What a scrape reads, and what the Prometheus query is built from without ``query``."""
    query: str | None
    source: Literal["prometheus", "scrape"]
    prometheus_endpoint: str
    scrape_url: str | None
    polling_interval: float
    missing: MissingValueBehavior
    base: LevelConfig | None
    """None without a threshold: the rule only reads and logs values."""
    hard: LevelConfig | None = None
    series_limit: int = DEFAULT_SERIES_LIMIT
    """``SERIES_LIMIT``: a read with more series for this rule fails for it (Prometheus'
    ``sample_limit``), and it never tracks more."""

    @property
    def promql(self) -> str:
        if self.query is not None:
            return self.query
        assert self.selector is not None
        return str(self.selector)

    @property
    def target(self) -> str:
        return self.scrape_url if self.scrape_url else self.prometheus_endpoint


@dataclass(frozen=True, slots=True)
class ElectionSettings:
    """Leader election on a Kubernetes Lease; the defaults are client-go's."""

    lock_name: str = "metric-reader-leader"
    lock_namespace: str | None = None
    """None: the pod's namespace, from the service account."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    service_account_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class Settings:
    rules: tuple[RuleConfig, ...]
    plugin_dir: Path | None = None
    plugin_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    unknown_variables: tuple[str, ...] = ()
    """Environment variables that look like a misspelt setting, with a suggestion each."""
    plugin_dir_insecure: bool = False
    """``PLUGIN_DIR_INSECURE``: load PLUGIN_DIR files others could change (development)."""
    max_concurrent_queries: int = 8
    """Requests in flight at once to one Prometheus endpoint."""
    dry_run: bool = False
    """``DRY_RUN``: evaluate everything and log each action that would run; call no plugin."""
    listen_address: str | None = None
    """``LISTEN_ADDRESS``: where /metrics, /healthz, /readyz and the status page are served;
    None serves nothing (``LISTEN_ADDRESS=off``)."""
    plugin_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``[plugins.NAME]`` tables of the rule file, for the plugins' ``configure``."""
    config_file: Path | None = None
    warnings: tuple[str, ...] = ()
    """Settings that were given but have no effect, said once at start-up."""
    state_file: Path | None = None
    """``STATE_FILE``: where rule state is kept across restarts (None: it is not)."""
    client: ClientConfig = field(default_factory=ClientConfig)
    """TLS, credentials and extra headers for every request to the endpoints."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """``MAX_RESPONSE_BYTES``: a scraped page or query answer larger than this is refused."""
    shard_count: int = 1
    """``SHARD_COUNT``: how many replicas split the rules between them (1: no sharding)."""
    shard_index: int = 0
    """``SHARD_INDEX``, or the StatefulSet ordinal of the host name: this replica's shard."""
    shard_index_from: str = ""
    """Where ``shard_index`` came from, for messages: ``SHARD_INDEX=1``, ``host name web-1``."""
    election: ElectionSettings | None = None
    """``LEADER_ELECTION_*``: elect one replica to run the actions (None: election is off)."""

    @property
    def owned_rules(self) -> tuple[RuleConfig, ...]:
        """The rules this replica runs: those whose name hashes to its shard (all of them
        without sharding)."""
        if self.shard_count == 1:
            return self.rules
        return tuple(
            rule for rule in self.rules if shard_of(rule.name, self.shard_count) == self.shard_index
        )

    def plugin_variable(self, rule: RuleConfig, level: Literal["base", "hard"]) -> str:
        """How the user named the plugin of ``rule``'s ``level``, for messages."""
        key = "action_plugin" if level == "base" else "hard.action_plugin"
        if self.config_file is None:
            return _env_name(key)
        return f"rule {rule.name!r} {key}"


# --- value parsers: each takes what the user wrote, returns it parsed or raises ValueError ---


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value.strip()


_SHORTEST = 0.001
"""Durations below 1ms are refused: the shortest unit of Prometheus' durations, and more
than any timer here can keep to."""


def _any_duration(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    return parse_duration(_quoted('a duration string such as "30s"', value))


def _duration(value: object) -> float:
    seconds = _any_duration(value)
    if 0 < seconds < _SHORTEST:
        raise ValueError("must be 0 or at least 1ms")
    return seconds


def _positive_duration(value: object) -> float:
    seconds = _any_duration(value)
    if seconds < _SHORTEST:
        raise ValueError("must be at least 1ms, e.g. 1s")
    return seconds


def _threshold(value: object) -> Threshold:
    return parse_threshold(_quoted('a string such as ">80"', value))


def _quoted(expected: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {expected}, got {type(value).__name__} {value!r}")
    return value


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)[^/@]*@")


def _without_password(value: object) -> object:
    """A URL's password as ``***``, for messages."""
    return _URL_PASSWORD.sub(r"\g<head>***@", value) if isinstance(value, str) else value


def _url(value: object) -> str:
    text = _text(value)
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("expected an http:// or https:// URL with a host")
    if url.userinfo:
        # It would show in logs, check and /api/status; credentials go in their own settings.
        raise ValueError(
            "credentials in the URL are not accepted; use BASIC_AUTH_USERNAME with "
            "BASIC_AUTH_PASSWORD_FILE, or BEARER_TOKEN_FILE"
        )
    return str(url)


def _metric_name(value: object) -> str:
    text = _text(value)
    if not _METRIC_NAME.fullmatch(text):
        raise ValueError(
            "expected a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); "
            "use query for a PromQL expression"
        )
    return text


def _rule_name(value: object) -> str:
    text = _text(value)
    if not _RULE_NAME.fullmatch(text):
        raise ValueError("expected letters, digits, '_', '.', ':' or '-'")
    return text


def _plugin_name(value: object) -> str:
    text = _text(value)
    if not text:
        raise ValueError("empty plugin name")
    return text


def _choice(allowed: Mapping[str, str] | tuple[str, ...]) -> Callable[[object], str]:
    def parse(value: object) -> str:
        key = _text(value).lower()
        if key not in allowed:
            raise ValueError("expected one of " + ", ".join(allowed))
        return allowed[key] if isinstance(allowed, Mapping) else key

    return parse


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text not in _BOOLEANS:
        raise ValueError("expected one of true, false, 1, 0, yes, no")
    return _BOOLEANS[text]


_ASCII_SPACE = " \t\r\n"
_MAX_WHOLE = 2**63 - 1
"""The largest whole number Go's strconv.Atoi reads (int64)."""
_DIGITS = re.compile(r"[0-9]{1,19}")
"""ASCII digits only, as Go's strconv.Atoi: Python's int() also takes ``1_0`` and the
digits of other scripts."""


def _whole_number(value: object, least: int, expected: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip(_ASCII_SPACE)):
        number = int(value.strip(_ASCII_SPACE))
    else:
        raise ValueError(expected)
    if not least <= number <= _MAX_WHOLE:
        raise ValueError(expected)
    return number


def _positive_int(value: object) -> int:
    return _whole_number(value, 1, "expected a whole number of at least 1")


def _shard_index(value: object) -> int:
    return _whole_number(value, 0, "expected a whole number of at least 0 (the first shard is 0)")


_BYTE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_BYTE_SIZE = re.compile(r"([0-9]{1,19})[ \t]*([a-zA-Z]*)")


def _byte_size(value: object) -> int:
    """A number of bytes: ``67108864``, or with a binary unit, ``64MiB`` (KiB, MiB, GiB)."""
    expected = "expected a whole number of bytes of at least 1, e.g. 67108864 or 64MiB"
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _BYTE_SIZE.fullmatch(value.strip(_ASCII_SPACE))):
        unit = _BYTE_UNITS.get(match[2].lower())
        if unit is None:
            raise ValueError(f"{expected} (units: KiB, MiB, GiB)")
        number = int(match[1]) * unit
    else:
        raise ValueError(expected)
    if not 1 <= number <= _MAX_WHOLE:
        raise ValueError(expected)
    return number


def _label_filters(value: object) -> tuple[LabelMatcher, ...]:
    return parse_label_filters(_quoted("a string of PromQL matchers", value))


def _listen_address(value: object) -> str:
    text = _text(value)
    if text.lower() == "off":
        return "off"
    from .._surface._web import parse_listen_address

    try:
        parse_listen_address(text)
    except ValueError as exc:
        raise ValueError(f"{exc}; or off to serve nothing") from None
    return text


def _listening(given: str | None) -> str | None:
    if given is None:
        return DEFAULT_LISTEN_ADDRESS
    return None if given == "off" else given


def _directory(value: object) -> Path:
    import errno
    import stat

    from .._actions._plugins import describe_dir_error

    path = Path(_text(value))
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    except OSError as exc:  # the operating system's words: they say what to fix
        raise ValueError(describe_dir_error(path, exc)) from None
    return path


def _state_file(value: object) -> Path:
    text = _text(value)
    if "\0" in text:
        raise ValueError("a path cannot contain a NUL character")
    path = Path(text)
    if not path.name:
        raise ValueError("expected a file path")
    if path.is_dir():
        raise ValueError("is a directory; expected a file path")
    if not path.parent.is_dir():
        raise ValueError(f"no such directory: {path.parent}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"directory {path.parent} is not writable")
    return path


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _lease_name(value: object) -> str:
    text = _text(value)
    if len(text) > 253 or not _DNS_SUBDOMAIN.fullmatch(text):
        raise ValueError(
            "a Lease name is lower-case letters, digits, '-' and '.', starting and ending "
            "with a letter or digit (at most 253 characters)"
        )
    return text


def _namespace(value: object) -> str:
    text = _text(value)
    if len(text) > 63 or not _DNS_LABEL.fullmatch(text):
        raise ValueError(
            "a namespace is lower-case letters, digits and '-', starting and ending with a "
            "letter or digit (at most 63 characters)"
        )
    return text


_ELECTION_KEYS: dict[str, Callable[[object], Any]] = {
    "enabled": _boolean,
    "lock_name": _lease_name,
    "lock_namespace": _namespace,
    "lease_duration": _positive_duration,
    "renew_deadline": _positive_duration,
    "retry_period": _positive_duration,
}


_LEVEL_KEYS: dict[str, Callable[[object], Any]] = {
    "threshold": _threshold,
    "threshold_duration": _duration,
    "backoff_delay": _duration,
    "action_plugin": _plugin_name,
    "keep_firing_for": _duration,
    "clear_threshold": _threshold,
}
_RULE_KEYS: dict[str, Callable[[object], Any]] = {
    "name": _rule_name,
    "metric_name": _metric_name,
    "label_filters": _label_filters,
    "query": _text,
    "scrape_url": _url,
    "prometheus_endpoint": _url,
    "polling_interval": _positive_duration,
    "missing_value_behavior": _choice(tuple(m.value for m in MissingValueBehavior)),
    "series_limit": _positive_int,
    **_LEVEL_KEYS,
    **{f"hard.{key}": parse for key, parse in _LEVEL_KEYS.items()},
}
_IDENTITY_KEYS = ("name", "metric_name", "label_filters", "query")
"""Keys that belong to one rule only: never defaults for the others."""
_SERVICE_KEYS: dict[str, Callable[[object], Any]] = {
    "plugin_dir": _directory,
    "plugin_dir_insecure": _boolean,
    "plugin_timeout": _positive_duration,
    "log_level": _choice(LOG_LEVELS),
    "log_format": _choice(LOG_FORMATS),
    "max_concurrent_queries": _positive_int,
    "dry_run": _boolean,
    "listen_address": _listen_address,
    "state_file": _state_file,
    "max_response_bytes": _byte_size,
    "shard_count": _positive_int,
    "shard_index": _shard_index,
    **{f"leader_election_{key}": parse for key, parse in _ELECTION_KEYS.items()},
    "kubernetes_service_account_dir": _directory,
}
_DEFAULTABLE_KEYS = tuple(k for k in _RULE_KEYS if k not in _IDENTITY_KEYS)
_ENV_RULE_KEYS = ("metric_name", "label_filters", "query")
"""Identity keys read from the environment (never ``name``: NAME is too common)."""
_CLIENT_FILE_KEYS = (
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "bearer_token_file",
    "basic_auth_password_file",
)
_CLIENT_KEYS = (
    *_CLIENT_FILE_KEYS,
    "tls_insecure_skip_verify",
    "basic_auth_username",
    "basic_auth_password",
    "http_headers",
)
"""How every endpoint is reached (TLS, credentials, headers): built by ``_client_config``."""
_SECRET_KEYS = frozenset({"basic_auth_password", "http_headers"})
"""Keys whose values are never shown, not even in a configuration error."""
TOP_LEVEL_KEYS = (*_SERVICE_KEYS, *_CLIENT_KEYS, *_DEFAULTABLE_KEYS)


def _env_name(key: str) -> str:
    return key.upper().replace(".", "_")


KNOWN_VARIABLES = (
    "CONFIG_FILE",
    *(_env_name(k) for k in (*_SERVICE_KEYS, *_CLIENT_KEYS, *_RULE_KEYS) if k != "name"),
)


@dataclass(frozen=True, slots=True)
class _Given:
    """A value as the user wrote it, and how to name where: ``THRESHOLD`` or
    ``rules.toml:12: rules[3].threshold``."""

    value: object
    at: str
    secret: bool = False
    """Never show ``value`` (a password, header values): errors name the setting only."""


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def invalid(self, given: _Given, reason: str) -> None:
        shown = "(value not shown)" if given.secret else repr(_without_password(given.value))
        self.lines.append(f"{given.at}={shown} is invalid: {reason}")

    def add(self, line: str) -> None:
        self.lines.append(line)

    def parse(self, parser: Callable[[object], Any], given: _Given | None, default: Any) -> Any:
        if given is None:
            return default
        try:
            return parser(given.value)
        except ValueError as exc:
            self.invalid(given, str(exc))
            return default


# --- the environment ---


def _from_env(environ: Mapping[str, str], keys: tuple[str, ...]) -> dict[str, _Given]:
    """The keys set in the environment; an empty value counts as unset, as in most manifests."""
    found = {}
    for key in keys:
        name = _env_name(key)
        value = environ.get(name)
        if value is not None and value.strip():
            found[key] = _Given(value, name, key in _SECRET_KEYS)
    return found


def _extends_a_setting(name: str, close: str) -> bool:
    """``MY_PLUGIN_TIMEOUT`` or ``ACTION_PLUGIN_URL``: a plugin's own setting built on one
    of ours, not a typo; ``THRESHOLD_DURATON`` and ``HARD_CLAER_THRESHOLD`` are typos (their
    match extends the same setting the same way)."""
    for known in KNOWN_VARIABLES:
        if name.endswith("_" + known) and not close.endswith("_" + known):
            return True
        if name.startswith(known + "_") and not close.startswith(known + "_"):
            return True
    return False


def _slips(environ: Mapping[str, str]) -> list[str]:
    """Variables a slip of the keyboard away from a setting (``THRESHOLD_DURATON``,
    ``METRICNAME``): refused, because the setting meant keeps its default unnoticed."""
    found = []
    for name in sorted(environ):
        if name in KNOWN_VARIABLES:
            continue
        close = slip_of(name, KNOWN_VARIABLES)
        if close is not None and not _extends_a_setting(name, close):
            found.append(
                f"{name} is not a known variable: did you mean {close}? (rename it, or unset "
                "it if it is not meant for metric-reader)"
            )
    return found


def _misspelt(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Names like a setting's but farther than a slip (``BASIC_AUTH_USER``): a warning."""
    found = []
    for name in environ:
        if name in KNOWN_VARIABLES or slip_of(name, KNOWN_VARIABLES) is not None:
            continue
        close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1, cutoff=0.85)
        if close and not _extends_a_setting(name, close[0]):
            found.append(f"{name} (did you mean {close[0]}?)")
    return tuple(sorted(found))


# --- building ---


def load_settings(environ: Mapping[str, str], *, rules: bool = True) -> Settings:
    """Build the settings from ``environ`` (and ``CONFIG_FILE``); raise ``ConfigError`` with
    every mistake found. ``rules=False`` reads the service settings alone (``plugins`` and
    ``fire`` need no rule)."""
    problems = _Problems()
    for slip in _slips(environ):
        problems.add(slip)
    config_file = environ.get("CONFIG_FILE", "").strip() or None
    toml: TomlFile | None = None
    if config_file is not None:
        from ._tomlfile import TomlFileError, read_toml_file  # only with CONFIG_FILE

        try:
            toml = read_toml_file(Path(config_file))
        except TomlFileError as exc:
            raise ConfigError(f"CONFIG_FILE: {exc}") from None

    top: dict[str, _Given] = {}
    rules_raw: list[tuple[int, dict[str, _Given]]] = []
    plugin_settings: dict[str, Mapping[str, Any]] = {}
    warnings: list[str] = []
    if toml is not None:
        top, rules_raw, plugin_settings = _read_file(toml, problems)
    # The environment overrides the file's top-level defaults.
    top.update(_from_env(environ, (*_SERVICE_KEYS, *_CLIENT_KEYS, *_DEFAULTABLE_KEYS)))

    service = {
        key: problems.parse(parse, top.get(key), None) for key, parse in _SERVICE_KEYS.items()
    }
    client = _client_config(top, problems, warnings)
    shard = _shard(top, service, environ, problems) if rules else (1, 0, "")
    election = _election(top, service, problems, warnings)
    defaults = {key: top[key] for key in _DEFAULTABLE_KEYS if key in top}
    if not rules:
        built: list[RuleConfig | None] = []
    elif rules_raw:
        identity = _from_env(environ, _ENV_RULE_KEYS)
        if identity:
            names = ", ".join(given.at for given in identity.values())
            warnings.append(f"{names} ignored: CONFIG_FILE {config_file} defines the rules")
        assert toml is not None
        built = [
            _build_rule({**defaults, **raw}, _FileScope(toml, index), problems)
            for index, raw in rules_raw
        ]
        _check_unique_names(rules_raw, problems)
    else:
        built = [
            _build_rule({**defaults, **_from_env(environ, _ENV_RULE_KEYS)}, _ENV_SCOPE, problems)
        ]
    if problems.lines:
        raise ConfigError(*problems.lines)
    return Settings(
        rules=tuple(r for r in built if r is not None),
        plugin_dir=service["plugin_dir"],
        plugin_timeout=service["plugin_timeout"] or 30.0,
        log_level=service["log_level"] or "INFO",
        log_format=service["log_format"] or "text",
        unknown_variables=_misspelt(environ),
        plugin_dir_insecure=bool(service["plugin_dir_insecure"]),
        max_concurrent_queries=service["max_concurrent_queries"] or 8,
        dry_run=bool(service["dry_run"]),
        listen_address=_listening(service["listen_address"]),
        plugin_settings=plugin_settings,
        config_file=Path(config_file) if config_file else None,
        warnings=tuple(warnings),
        state_file=service["state_file"],
        client=client,
        max_response_bytes=service["max_response_bytes"] or DEFAULT_MAX_RESPONSE_BYTES,
        shard_count=shard[0],
        shard_index=shard[1],
        shard_index_from=shard[2],
        election=election,
    )


def _election(
    top: dict[str, _Given], service: dict[str, Any], problems: _Problems, warnings: list[str]
) -> ElectionSettings | None:
    """``LEADER_ELECTION_*``, checked as client-go checks them: the lease duration longer
    than the renew deadline, the deadline longer than 1.2 retry periods."""
    keys = [f"leader_election_{key}" for key in _ELECTION_KEYS if key != "enabled"]
    keys.append("kubernetes_service_account_dir")
    if not service["leader_election_enabled"]:
        given = [top[key].at for key in keys if key in top]
        if given:
            warnings.append(f"{', '.join(given)} ignored: leader election is not enabled")
        return None
    defaults = ElectionSettings()
    election = ElectionSettings(
        lock_name=service["leader_election_lock_name"] or defaults.lock_name,
        lock_namespace=service["leader_election_lock_namespace"],
        lease_duration=service["leader_election_lease_duration"] or defaults.lease_duration,
        renew_deadline=service["leader_election_renew_deadline"] or defaults.renew_deadline,
        retry_period=service["leader_election_retry_period"] or defaults.retry_period,
        service_account_dir=service["kubernetes_service_account_dir"]
        or defaults.service_account_dir,
    )

    def named(key: str, value: float) -> str:
        given = top.get(f"leader_election_{key}")
        if given is not None:
            return f"{given.at}={given.value!r}"
        return f"{_env_name(f'leader_election_{key}')} (default {value:g}s)"

    lease, renew, retry = election.lease_duration, election.renew_deadline, election.retry_period
    if lease <= renew:
        problems.add(
            f"{named('lease_duration', lease)} must be longer than "
            f"{named('renew_deadline', renew)}: a leader must stop acting before another "
            "can take over"
        )
    if renew <= 1.2 * retry:
        problems.add(
            f"{named('renew_deadline', renew)} must be longer than 1.2 times "
            f"{named('retry_period', retry)}, so a leader can retry a renewal before it expires"
        )
    return election


def _shard(
    top: dict[str, _Given], service: dict[str, Any], environ: Mapping[str, str], problems: _Problems
) -> tuple[int, int, str]:
    """This replica's shard: ``(count, index, where the index came from)``. With more than one
    shard and no SHARD_INDEX, the index is the StatefulSet ordinal of the host name
    (``HOSTNAME``, as Kubernetes sets it, else the system's host name)."""
    if "shard_count" in top and service["shard_count"] is None:
        return 1, 0, ""  # invalid, reported
    count: int = service["shard_count"] or 1
    index: int | None = service["shard_index"]
    counted = f"{top['shard_count'].at}={top['shard_count'].value!r}" if count > 1 else ""
    if "shard_index" in top:
        given = top["shard_index"]
        if index is None:
            return count, 0, ""  # invalid, reported
        if index >= count and counted:
            problems.invalid(given, f"must be below {counted} (0 to {count - 1})")
        elif index >= count:
            name = "SHARD_COUNT" if given.at == "SHARD_INDEX" else "shard_count"
            problems.invalid(
                given, f"must be 0 when {name} is not set; set {name} to the number of replicas"
            )
        return count, index, f"{given.at}={index}"
    if count == 1:
        return 1, 0, ""
    hostname = environ.get("HOSTNAME", "").strip() or socket.gethostname()
    ordinal = ordinal_from_hostname(hostname)
    if ordinal is None:
        problems.add(
            f"{counted} needs SHARD_INDEX: host name {hostname!r} has no StatefulSet ordinal "
            f"(NAME-0, NAME-1, ...); set SHARD_INDEX (0 to {count - 1}) or run as a StatefulSet"
        )
        return count, 0, ""
    if ordinal >= count:
        problems.add(
            f"{counted} but host name {hostname!r} gives shard index {ordinal}: set SHARD_INDEX "
            f"(0 to {count - 1}), or SHARD_COUNT to the number of replicas"
        )
    return count, ordinal, f"host name {hostname}"


def _read_file(
    toml: TomlFile, problems: _Problems
) -> tuple[dict[str, _Given], list[tuple[int, dict[str, _Given]]], dict[str, Mapping[str, Any]]]:
    top: dict[str, _Given] = {}
    rules: list[tuple[int, dict[str, _Given]]] = []
    plugins: dict[str, Mapping[str, Any]] = {}
    for key, value in toml.data.items():
        if key == "rules":
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                problems.add(f"{toml.where('rules')}: expected [[rules]] tables")
                continue
            for index, table in enumerate(value):
                rules.append((index, _read_rule(toml, index, table, problems)))
        elif key == "plugins":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                problems.add(f"{toml.where('plugins')}: expected [plugins.NAME] tables")
                continue
            plugins = value
        elif key in TOP_LEVEL_KEYS:
            if key in ("plugin_dir", "state_file", *_CLIENT_FILE_KEYS) and isinstance(value, str):
                value = str(toml.path.parent / value)  # relative to the file, as in Prometheus
            top[key] = _Given(value, toml.where(key), key in _SECRET_KEYS)
        else:
            problems.add(_unknown(toml.where(key), key, (*TOP_LEVEL_KEYS, "rules", "plugins")))
    if "rules" in toml.data and not rules:
        problems.add(f"{toml.where('rules')}: no rules")
    return top, rules, plugins


def _read_rule(
    toml: TomlFile, index: int, table: dict[str, Any], problems: _Problems
) -> dict[str, _Given]:
    raw: dict[str, _Given] = {}
    prefix = f"rules[{index}]"
    rule_keys = [k for k in _RULE_KEYS if not k.startswith("hard.")] + ["hard"]
    for key, value in table.items():
        if key == "hard":
            if not isinstance(value, dict):
                problems.add(f"{toml.where(prefix + '.hard')}: expected a [rules.hard] table")
                continue
            for hard_key, hard_value in value.items():
                where = toml.where(f"{prefix}.hard.{hard_key}")
                if hard_key in _LEVEL_KEYS:
                    raw[f"hard.{hard_key}"] = _Given(hard_value, where)
                else:
                    problems.add(_unknown(where, hard_key, tuple(_LEVEL_KEYS)))
        elif key in _RULE_KEYS:
            raw[key] = _Given(value, toml.where(f"{prefix}.{key}"))
        else:
            problems.add(_unknown(toml.where(f"{prefix}.{key}"), key, tuple(rule_keys)))
    return raw


def _unknown(where: str, key: str, known: tuple[str, ...]) -> str:
    close = slip_of(key, known) or next(iter(difflib.get_close_matches(key, known, 1, 0.6)), None)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"{where}: unknown key{hint}"


class _Scope:
    """Names a rule's keys in the user's vocabulary, for errors about combinations."""

    def name(self, key: str) -> str:
        raise NotImplementedError

    def about(self) -> str:
        raise NotImplementedError


class _EnvScope(_Scope):
    def name(self, key: str) -> str:
        return _env_name(key)

    def about(self) -> str:
        return ""


class _FileScope(_Scope):
    def __init__(self, toml: TomlFile, index: int) -> None:
        self.toml, self.index = toml, index

    def name(self, key: str) -> str:
        return key

    def about(self) -> str:
        return self.toml.where(f"rules[{self.index}]") + ": "


_ENV_SCOPE = _EnvScope()


def _build_rule(raw: dict[str, _Given], scope: _Scope, problems: _Problems) -> RuleConfig | None:
    before = len(problems.lines)
    n = scope.name
    metric_name = problems.parse(_metric_name, raw.get("metric_name"), None)
    query = problems.parse(_text, raw.get("query"), None) or None
    matchers = problems.parse(_label_filters, raw.get("label_filters"), ())
    scrape_url = problems.parse(_url, raw.get("scrape_url"), None)
    endpoint = problems.parse(_url, raw.get("prometheus_endpoint"), DEFAULT_PROMETHEUS)
    interval = problems.parse(_positive_duration, raw.get("polling_interval"), 1.0)
    missing = problems.parse(
        _RULE_KEYS["missing_value_behavior"], raw.get("missing_value_behavior"), "skip"
    )
    name = problems.parse(_rule_name, raw.get("name"), None)
    series_limit = problems.parse(_positive_int, raw.get("series_limit"), DEFAULT_SERIES_LIMIT)

    if "metric_name" not in raw and "query" not in raw:
        problems.add(
            f"{scope.about()}{n('metric_name')} is not set: set {n('metric_name')} "
            f"(a metric name such as queue_depth) or {n('query')} (a PromQL expression)"
        )
    if "query" in raw:
        if "label_filters" in raw:
            problems.invalid(
                raw["label_filters"],
                f"cannot be combined with {n('query')}; put the matchers into the query",
            )
        if "scrape_url" in raw:
            problems.invalid(
                raw["query"],
                f"needs the Prometheus source, but {n('scrape_url')} is set; "
                f"a scrape reads {n('metric_name')} with {n('label_filters')}",
            )
    if isinstance(scope, _FileScope) and "name" not in raw:
        problems.add(f"{scope.about()}name is not set: every rule needs a unique name")
    base = _build_level(raw, "", scope, problems)
    hard = _build_level(raw, "hard.", scope, problems)
    if "threshold" not in raw:
        for key in ("action_plugin", "hard.threshold"):
            if key in raw:
                problems.add(
                    f"{raw[key].at}={raw[key].value!r} needs "
                    f"{n('threshold')}: set {n('threshold')}, e.g. '>80', to say when the "
                    "action runs"
                )
    if len(problems.lines) > before:
        return None
    return RuleConfig(
        name=name or metric_name or "query",
        metric_name=metric_name or query or "",
        selector=Selector(metric_name, matchers) if metric_name else None,
        query=query,
        source="scrape" if scrape_url else "prometheus",
        prometheus_endpoint=endpoint.rstrip("/"),
        scrape_url=scrape_url,
        polling_interval=interval,
        missing=MissingValueBehavior(missing),
        base=base,
        hard=hard,
        series_limit=series_limit,
    )


def _build_level(
    raw: dict[str, _Given], prefix: str, scope: _Scope, problems: _Problems
) -> LevelConfig | None:
    values = {
        key: problems.parse(parse, raw.get(prefix + key), None)
        for key, parse in _LEVEL_KEYS.items()
    }
    if prefix + "threshold" not in raw:
        if prefix:
            for key in _LEVEL_KEYS:
                if prefix + key in raw:
                    threshold = scope.name(prefix + "threshold")
                    problems.add(
                        f"{raw[prefix + key].at}={raw[prefix + key].value!r} "
                        f"needs {threshold}: set {threshold}, e.g. '>95', for the escalation "
                        "level"
                    )
                    break
        return None
    if values["threshold"] is None:
        return None
    return LevelConfig(
        threshold=values["threshold"],
        duration=values["threshold_duration"] or 0.0,
        backoff=values["backoff_delay"] or 0.0,
        plugin=values["action_plugin"],
        keep_firing_for=values["keep_firing_for"] or 0.0,
        clear_threshold=values["clear_threshold"],
    )


def _check_unique_names(rules: list[tuple[int, dict[str, _Given]]], problems: _Problems) -> None:
    seen: dict[object, int] = {}
    for index, raw in rules:
        given = raw.get("name")
        if given is None or not isinstance(given.value, str):
            continue
        if given.value in seen:
            problems.invalid(
                given, f"a rule of that name is already defined at rules[{seen[given.value]}]"
            )
        seen.setdefault(given.value, index)


# --- how the endpoints are reached: TLS, credentials, extra headers ---

_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "expect",
    }
)
"""Headers the HTTP client manages itself: HTTP_HEADERS may not set them."""
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADERS_EXAMPLE = '{"X-Scope-OrgID": "tenant-1"}'


def _readable_file(value: object) -> Path:
    path = Path(_text(value))
    if not path.name:
        raise ValueError("expected a file path")
    if path.is_dir():
        raise ValueError("is a directory; expected a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from None
    return path


def _username(value: object) -> str:
    text = _text(value)
    if ":" in text or any(not ch.isprintable() for ch in text):
        raise ValueError("a basic auth user name cannot contain ':' or control characters")
    return text


def _http_headers(value: object) -> tuple[tuple[str, Secret], ...]:
    """A JSON object of strings (a TOML table in the rule file). Messages name headers,
    never their values."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:  # its message has a position, not the text
            raise ValueError(
                f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                f"expected an object of strings, e.g. {_HEADERS_EXAMPLE}"
            ) from None
        except (ValueError, RecursionError):
            raise ValueError(f"not valid JSON; expected e.g. {_HEADERS_EXAMPLE}") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected an object (a table) of strings, e.g. {_HEADERS_EXAMPLE}")
    headers: list[tuple[str, Secret]] = []
    seen: set[str] = set()
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError("a header name is not a valid HTTP header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name} is managed by the HTTP client and cannot be set")
        if name.lower() in seen:
            raise ValueError(f"header {name} is given twice")
        if not isinstance(text, str):
            raise ValueError(f"the value of header {name} must be a string")
        if not all(ch == "\t" or 32 <= ord(ch) <= 126 for ch in text):
            raise ValueError(f"the value of header {name} must be printable ASCII on one line")
        seen.add(name.lower())
        headers.append((name, Secret(text.strip(" \t"))))
    return tuple(headers)


def _client_config(
    top: dict[str, _Given], problems: _Problems, warnings: list[str]
) -> ClientConfig:
    """TLS, credentials and extra headers: checked now (files readable, certificates and
    keys usable, combinations sensible), so a mistake is found before any poll."""
    before = len(problems.lines)
    files: dict[str, Path | None] = {
        key: problems.parse(_readable_file, top.get(key), None) for key in _CLIENT_FILE_KEYS
    }
    insecure = bool(problems.parse(_boolean, top.get("tls_insecure_skip_verify"), False))
    username = problems.parse(_username, top.get("basic_auth_username"), None)
    headers = problems.parse(_http_headers, top.get("http_headers"), ())
    password: Secret | None = None
    if "basic_auth_password" in top:
        given = top["basic_auth_password"]
        if isinstance(given.value, str):
            password = Secret(given.value)
        else:
            problems.invalid(given, "expected a string")

    def named(key: str, like: str) -> str:
        """``key`` the way ``like`` was given: a variable, or a key of the rule file."""
        return _env_name(key) if top[like].at == _env_name(like) else key

    def both_or_neither(one: str, other: str, why: str) -> None:
        if one in top and other not in top:
            problems.add(f"{top[one].at} is set but {named(other, one)} is not: {why}")

    why_tls = "mutual TLS needs both the client certificate and its key"
    both_or_neither("tls_cert_file", "tls_key_file", why_tls)
    both_or_neither("tls_key_file", "tls_cert_file", why_tls)
    if "basic_auth_password" in top and "basic_auth_password_file" in top:
        problems.add(
            f"{top['basic_auth_password'].at} and {top['basic_auth_password_file'].at} are "
            "both set: give one (the file is the safer choice)"
        )
    why_basic = "basic auth needs a user name and a password"
    if "basic_auth_username" in top:
        if "basic_auth_password" not in top and "basic_auth_password_file" not in top:
            wanted = named("basic_auth_password_file", "basic_auth_username")
            problems.add(f"{top['basic_auth_username'].at} is set but {wanted} is not: {why_basic}")
    else:
        for key in ("basic_auth_password", "basic_auth_password_file"):
            both_or_neither(key, "basic_auth_username", why_basic)
    basic = [k for k in ("basic_auth_username", "basic_auth_password_file") if k in top]
    if "bearer_token_file" in top and basic:
        problems.add(
            f"{top['bearer_token_file'].at} and {top[basic[0]].at} are both set: an endpoint "
            "takes one kind of Authorization; give either a bearer token or basic auth"
        )
    if headers and ("bearer_token_file" in top or basic):
        for name, _ in headers:
            if name.lower() == "authorization":
                problems.add(
                    f"{top['http_headers'].at} sets Authorization, which "
                    "BEARER_TOKEN_FILE / BASIC_AUTH_* set too: give one"
                )
    for key, variable in (
        ("bearer_token_file", "BEARER_TOKEN_FILE"),
        ("basic_auth_password_file", "BASIC_AUTH_PASSWORD_FILE"),
    ):
        path = files[key]
        if path is not None:
            try:
                read_credential(path, variable)
            except ValueError as exc:
                problems.add(f"{top[key].at}: {exc}")
    config = ClientConfig(
        ca_file=files["tls_ca_file"],
        cert_file=files["tls_cert_file"],
        key_file=files["tls_key_file"],
        insecure_skip_verify=insecure,
        bearer_token_file=files["bearer_token_file"],
        basic_auth_username=username,
        basic_auth_password_file=files["basic_auth_password_file"],
        basic_auth_password=password,
        headers=headers,
    )
    if len(problems.lines) == before:
        try:
            build_ssl_context(config)
        except ValueError as exc:
            problems.add(str(exc))
    if insecure:
        warnings.append(
            f"{top['tls_insecure_skip_verify'].at}=true: endpoint certificates are NOT "
            "verified; anyone on the network path can read or change the answers and see the "
            "credentials sent. Use TLS_CA_FILE instead"
        )
        if "tls_ca_file" in top:
            warnings.append(f"{top['tls_ca_file'].at} has no effect: TLS_INSECURE_SKIP_VERIFY")
    return config
