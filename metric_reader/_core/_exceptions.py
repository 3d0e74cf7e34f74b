"""Every error metric-reader raises on purpose, in one tree.

    MetricReaderError
    ├── ConfigError        a mistake in the configuration: one line each, exit code 2
    │   ├── ListenError    LISTEN_ADDRESS cannot be listened on
    │   └── StateFileInUse another metric-reader holds STATE_FILE (``_cluster._state_lock``)
    ├── FetchError         a read of a source failed: it changes no state
    │   ├── FetchTimeout   no complete answer within the poll's time: the read ran late
    │   │   └── QueueTimeout  ... because it waited all that time for a free request slot
    │   ├── ResponseTooLarge  the answer is larger than MAX_RESPONSE_BYTES
    │   └── NotJson        the answer is not JSON (``_sources._prometheus``)
    ├── StateError         a state document that cannot be used (also a ValueError)
    ├── KubeError          the Kubernetes API refused a request or could not be reached
    │   └── Conflict       409: the Lease exists already or changed since it was read
    └── PluginError
        └── PluginFailure  a plugin call did not succeed: the plugin raised
            └── PluginTimeout  ... or ran out of time and was given up

Anything else that escapes is a bug: logged with its traceback, never a user's mistake.

An error's message often quotes what an endpoint said, and an endpoint may have said a
secret back (``_secrets``): each message is redacted as the error is made.
"""

from __future__ import annotations

from ._secrets import redact


class MetricReaderError(Exception):
    """The base of every error metric-reader raises on purpose; its text arguments are
    redacted."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(MetricReaderError):
    """User mistakes in the configuration: one line each, exit code 2."""

    def __init__(self, *problems: str) -> None:
        self.problems = tuple(redact(problem) for problem in problems)
        super().__init__("\n".join(self.problems))


class ListenError(ConfigError):
    """``LISTEN_ADDRESS`` could not be listened on (address in use, not local, ...)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class FetchError(MetricReaderError):
    """A read of a source failed: nothing it returned may change any state."""


class FetchTimeout(FetchError):
    """No complete answer within the time a poll has."""


class QueueTimeout(FetchTimeout):
    """The read never started: every request slot to the endpoint (``max_concurrent_queries``)
    stayed busy for the whole poll. The scheduler is overloaded, the endpoint may be fine."""


class ResponseTooLarge(FetchError):
    """The answer is larger than the limit (``MAX_RESPONSE_BYTES``); a batched read that
    gets this is split in two."""


class StateError(MetricReaderError, ValueError):
    """A state document that cannot be used: wrong format, version or content."""


class KubeError(MetricReaderError):
    """The API server refused a request (``status`` is its HTTP code), or could not be
    reached (``status`` 0)."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Conflict(KubeError):
    """409: the Lease exists already (create) or changed since it was read (update)."""


class PluginError(MetricReaderError):
    """Something went wrong with a plugin."""


class PluginFailure(PluginError):
    """A plugin call did not succeed: the plugin raised, or (subclass) ran out of time."""

    def __init__(self, message: str, *, plugin: str, method: str) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.method = method


class PluginTimeout(PluginFailure):
    """A plugin call took longer than its timeout and was given up."""
