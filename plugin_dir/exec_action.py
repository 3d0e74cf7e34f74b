"""Bundled plugin ``exec_action``: run a command on each breach, the event in its environment.

Settings, from the rule file's ``[plugins.exec_action]`` table or from the environment (read
when the plugin is validated and again at every call); a key given in the table takes
precedence over its environment variable:

- ``command`` or ``EXEC_ACTION_COMMAND`` (required): the command, split into words the way
  a POSIX shell would (``shlex.split``: quotes and backslashes work) but never run through
  a shell, so ``$VAR``, ``|``, ``>`` or ``;`` are passed on as they are. For shell
  features, say so: ``sh -c 'notify --host "$HOSTNAME" >> /var/log/alerts'``. In the table
  it may also be a list of strings, used as the argument list as it is (no splitting):
  ``command = ["notify", "--team", "ops"]``. The program must exist: a path (with a ``/``)
  to an executable file, or a name found on ``PATH``.
- ``resolve_command`` or ``EXEC_ACTION_RESOLVE_COMMAND`` (optional): the command
  ``resolve`` runs when a breach ends, given the same way; by default the ``command``
  again, which can tell the two apart by ``METRIC_READER_KIND=resolve``. Set it to
  ``true`` to do nothing on resolve.
- ``args`` (table only): a list of templates, each rendered from the event into one
  argument appended to the command that runs (``command`` or ``resolve_command``), as an
  annotation is rendered (``metric_reader.AlertTemplate``: ``$labels``, ``$annotations``,
  ``$value``): ``args = ["--host", "{{ $labels.instance }}"]``. One that does not parse
  refuses the table; one that fails when rendered fails the call.

An unknown key in the table is refused, with a suggestion. For a command per route, a
``[plugins.NAME]`` table with ``plugin = "exec_action"`` makes a plugin ``NAME`` of this one
with settings of its own.

The command gets the service's own environment plus:

=================================  ==========================================================
``METRIC_READER_RULE``             the rule's name
``METRIC_READER_METRIC_NAME``      the metric name, or the PromQL text of a ``QUERY`` rule
``METRIC_READER_VALUE``            the value: ``95``, ``0.25``, ``1e+21``, ``NaN``, ``+Inf``
``METRIC_READER_THRESHOLD``        the threshold as configured, e.g. ``>80``
``METRIC_READER_DURATION_SECONDS`` how long the breach has lasted, in seconds (``30``, ``1.5``)
``METRIC_READER_LEVEL``            ``base`` or ``hard``
``METRIC_READER_KIND``             ``fire``, ``repeat`` or ``resolve``
``METRIC_READER_BREACH_STARTED``   when the breach started, ISO 8601 in UTC
``METRIC_READER_FIRE_COUNT``       successful fire/repeat calls of this breach before this one
``METRIC_READER_IDEMPOTENCY_KEY``  the same for every try of this call, another for any other
``METRIC_READER_LABELS``           every series label as one JSON object
``METRIC_READER_LABEL_<NAME>``     one per series label: ``job`` gives ``METRIC_READER_LABEL_JOB``
``METRIC_READER_ANNOTATIONS``      every annotation (a rule file's alert) as one JSON object
``METRIC_READER_ANNOTATION_<NAME>`` one per annotation, named as a label's variable
=================================  ==========================================================

In ``<NAME>`` the label name is upper-cased and any character other than ``A-Z``, ``0-9`` and
``_`` becomes ``_``; if two labels end up with the same variable (``job`` and ``JOB``), the one
whose name sorts first wins and ``METRIC_READER_LABELS`` still has both.

And prometheus-am-executor's variables, for one alert (a call is a notification of one
alert, grouped by all its labels), names as it writes them: ``AMX_RECEIVER`` (the name the
call was made to), ``AMX_STATUS`` (``firing``, or ``resolved`` on resolve),
``AMX_EXTERNAL_URL`` (empty), ``AMX_ALERT_LEN=1``, ``AMX_LABEL_<label>``,
``AMX_GLABEL_<label>``, ``AMX_ANNOTATION_<key>``, ``AMX_ALERT_1_STATUS``,
``AMX_ALERT_1_START`` (the breach's start, seconds since 1970), ``AMX_ALERT_1_END`` (``0``,
or the resolve's time), ``AMX_ALERT_1_URL`` (empty), ``AMX_ALERT_1_FINGERPRINT``
(Alertmanager's fingerprint of the labels), ``AMX_ALERT_1_LABEL_<label>`` and
``AMX_ALERT_1_ANNOTATION_<key>``; label and annotation names as they are.

Label, annotation and ``AMX_`` variables inherited from the service's own environment are
removed. NUL characters, which an environment cannot hold, are dropped from values.

Standard input is empty. Standard output and error are captured and logged when the command
ends (the last 4 KiB of each; ``plugin=exec_action`` and ``stream`` are bound to the log
record). A non-zero exit status, or death by a signal, is a failure whose message gives the
status and the end of standard error. The command runs in a process group of its own; when
the call is cancelled (``PLUGIN_TIMEOUT``, shutdown) the whole group is killed with
``SIGKILL``, so nothing it started is left running. After a command exits normally, the
background processes it started are left alone, but what they print is no longer read.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ByteReceiveStream, Process
from loguru import logger

from metric_reader import Event, check_settings, toml_type

if TYPE_CHECKING:  # the template engine is imported for args only (start-up memory)
    from metric_reader import AlertTemplate

COMMAND_VAR = "EXEC_ACTION_COMMAND"
RESOLVE_COMMAND_VAR = "EXEC_ACTION_RESOLVE_COMMAND"
OUTPUT_LIMIT = 4096  # bytes of each stream kept for the log (the last ones)
_ERROR_TAIL = 500  # characters of standard error put in a failure's message
_DRAIN_GRACE = 0.5  # seconds to finish reading output once the command has exited
_LABEL_PREFIX = "METRIC_READER_LABEL_"
_ANNOTATION_PREFIX = "METRIC_READER_ANNOTATION_"
_AMX_PREFIX = "AMX_"  # prometheus-am-executor's variables
_TABLE = "[plugins.exec_action]"
_KEYS = ("command", "resolve_command", "args")
_VARIABLES = {COMMAND_VAR: "command", RESOLVE_COMMAND_VAR: "resolve_command"}
_COMMAND_FORMAT = (
    'expected a command as a string, "notify --team ops", or as a list of strings, '
    '["notify", "--team", "ops"]'
)


class ExecActionError(Exception):
    """The command failed; ``returncode`` is its exit status (negative: killed by a signal)."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


class ExecAction:
    name = "exec_action"

    def __init__(self) -> None:
        # from the rule file's table, checked (as given: a string or a list of strings);
        # each beats its environment variable
        self._commands: dict[str, str | list[str]] = {}
        self._args: list[AlertTemplate] = []  # appended to the command, rendered per event

    def configure(self, settings: dict[str, Any]) -> None:
        """Take the ``[plugins.exec_action]`` table: ``command``, ``resolve_command``,
        ``args``."""
        check_settings(settings, _KEYS, _VARIABLES)
        args = _templates(settings["args"]) if "args" in settings else []
        commands: dict[str, str | list[str]] = {}
        for key in ("command", "resolve_command"):
            if key in settings:
                value = settings[key]
                if isinstance(value, list):
                    value = list(value)  # a copy: the caller's list may change
                if not isinstance(value, str | list):
                    raise ValueError(f"{key} is {toml_type(value)}; {_COMMAND_FORMAT}")
                _argv(value, key)
                commands[key] = value
        self._commands = commands
        self._args = args

    def validate_config(self) -> None:
        """Refuse an unset command, one that cannot be split, or a program that is missing."""
        self._command("command", required=True)
        self._command("resolve_command", required=False)

    def _command(self, key: str, *, required: bool) -> list[str]:
        """The argument list of ``key``: the table's if given, else its variable's."""
        if key in self._commands:
            return _argv(self._commands[key], f"{_TABLE} {key}")
        return _command(COMMAND_VAR if key == "command" else RESOLVE_COMMAND_VAR, required=required)

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        argv = self._command("command", required=True) + self._rendered_args(event)
        variables = _event_variables("fire", metric_name, value, threshold, duration, event)
        receiver = self._receiver(event)
        await _run(receiver, argv, _environment(variables, receiver))

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        argv = self._command("resolve_command", required=False) or self._command(
            "command", required=True
        )
        argv += self._rendered_args(event)
        variables = _event_variables("resolve", metric_name, value, threshold, duration, event)
        variables["METRIC_READER_KIND"] = "resolve"
        receiver = self._receiver(event)
        await _run(receiver, argv, _environment(variables, receiver))

    def _rendered_args(self, event: Event | None) -> list[str]:
        """``args`` for this event; ``ValueError`` (the call fails) when one cannot be
        rendered, rather than a command run with an error's text as an argument."""
        if not self._args:
            return []
        labels = dict(event.labels) if event is not None else {}
        annotations = dict(event.annotations) if event is not None else {}
        value = event.value if event is not None else math.nan
        return [
            template.render(labels=labels, annotations=annotations, value=value).replace("\0", "")
            for template in self._args
        ]

    def _receiver(self, event: Event | None) -> str:
        """``AMX_RECEIVER``: the name the call was made to (a ``[plugins.NAME]`` made of
        exec_action has its own), as Alertmanager names the receiver."""
        return event.plugin if event is not None and event.plugin else self.name


def _templates(value: object) -> list[AlertTemplate]:
    """``args``: a list of strings, each a template; ``ValueError`` naming the first bad one."""
    from metric_reader import AlertTemplate

    if not isinstance(value, list):
        raise ValueError(
            f"args is {toml_type(value)}; expected a list of strings, each a template: "
            'args = ["--host", "{{ $labels.instance }}"]'
        )
    templates = []
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise ValueError(f"args[{index}] is {toml_type(text)}, not a string")
        try:
            templates.append(AlertTemplate(text, f"args[{index}]"))
        except ValueError as exc:
            raise ValueError(f"args[{index}]={text!r} is not a template: {exc}") from None
    return templates


def _command(variable: str, *, required: bool) -> list[str]:
    """The command in ``variable`` split into words, its program checked; [] if unset."""
    raw = os.environ.get(variable, "")
    if not raw.strip():
        if required:
            raise ValueError(
                f"{variable} is not set: give the command to run, e.g. "
                f"{variable}='/usr/local/bin/notify --team ops'"
            )
        return []
    return _argv(raw, variable)


def _argv(raw: str | list[str], source: str) -> list[str]:
    """``raw`` as an argument list (a string split as a shell would, a list as it is), its
    program checked; ``source`` names the setting in messages."""
    if isinstance(raw, list):
        for index, word in enumerate(raw):
            if not isinstance(word, str):
                raise ValueError(
                    f"{source}[{index}] is {toml_type(word)}, not a string; {_COMMAND_FORMAT}"
                )
        argv = list(raw)
    else:
        try:
            argv = shlex.split(raw)
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise ValueError(
                f"{source}={raw!r} cannot be split into words ({exc}); expected a command "
                "quoted as in a POSIX shell, with balanced ' and \" quotes"
            ) from None
    if not argv or not argv[0]:  # e.g. only ``''``: nothing to run
        raise ValueError(f"{source}={raw!r} has no program to run; expected a command")
    if any("\0" in word for word in argv):  # a string in a rule file can hold one
        raise ValueError(f"{source}={raw!r} contains a NUL character, which no argument can hold")
    program = argv[0]
    if shutil.which(program) is None:
        if "/" in program:
            reason = "does not exist" if not os.path.exists(program) else "is not executable"
            if os.path.isdir(program):
                reason = "is a directory"
            raise ValueError(
                f"{source}={raw!r}: program {program!r} {reason}; expected an executable file"
            )
        raise ValueError(
            f"{source}={raw!r}: program {program!r} is not found on PATH; expected an "
            "executable on PATH or a path to one"
        )
    return argv


def _event_variables(
    kind: str,
    metric_name: str,
    value: float,
    threshold: str,
    duration: timedelta,
    event: Event | None,
) -> dict[str, str]:
    annotations: dict[str, str] = {}
    if event is not None:
        rule, labels, level, kind = event.rule, event.labels, event.level, event.kind
        started, fire_count = event.breach_started, event.fire_count
        key = event.idempotency_key
        annotations = dict(event.annotations)
    else:  # called without the event: what the classic arguments tell
        rule, labels, level, fire_count, key = "", {}, "base", 0, ""
        started = datetime.now(UTC) - duration
    variables = {
        "METRIC_READER_RULE": rule,
        "METRIC_READER_METRIC_NAME": metric_name,
        "METRIC_READER_VALUE": format_number(value),
        "METRIC_READER_THRESHOLD": threshold,
        "METRIC_READER_DURATION_SECONDS": format_number(duration.total_seconds()),
        "METRIC_READER_LEVEL": level,
        "METRIC_READER_KIND": kind,
        "METRIC_READER_BREACH_STARTED": started.isoformat(),
        "METRIC_READER_FIRE_COUNT": str(fire_count),
        "METRIC_READER_IDEMPOTENCY_KEY": key,
        "METRIC_READER_LABELS": json.dumps(dict(sorted(labels.items())), ensure_ascii=False),
        "METRIC_READER_ANNOTATIONS": json.dumps(
            dict(sorted(annotations.items())), ensure_ascii=False
        ),
    }
    for name, label_value in sorted(labels.items()):
        variables.setdefault(label_variable(name), str(label_value))
    for name, text in sorted(annotations.items()):
        variables.setdefault(annotation_variable(name), str(text))
    ended = started + duration if kind == "resolve" else None
    variables.update(_amx_variables(kind, labels, annotations, started, ended))
    return variables


def _amx_variables(
    kind: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    started: datetime,
    ended: datetime | None,
) -> dict[str, str]:
    """prometheus-am-executor's variables for one alert (``AMX_RECEIVER`` is added by
    :func:`_environment`): each call is a notification of one alert, grouped by all its
    labels, so the alert's labels are also the common and the group labels."""
    status = "resolved" if kind == "resolve" else "firing"
    variables = {
        "AMX_STATUS": status,
        "AMX_EXTERNAL_URL": "",
        "AMX_ALERT_LEN": "1",
        "AMX_ALERT_1_STATUS": status,
        "AMX_ALERT_1_START": str(int(started.timestamp())),
        "AMX_ALERT_1_END": str(int(ended.timestamp())) if ended is not None else "0",
        "AMX_ALERT_1_URL": "",
        "AMX_ALERT_1_FINGERPRINT": alert_fingerprint(labels),
    }
    for prefix, pairs in (
        ("AMX_LABEL_", labels),
        ("AMX_GLABEL_", labels),
        ("AMX_ANNOTATION_", annotations),
        ("AMX_ALERT_1_LABEL_", labels),
        ("AMX_ALERT_1_ANNOTATION_", annotations),
    ):
        for name, text in pairs.items():
            if "=" not in name and "\0" not in name:  # no environment can name these
                variables[prefix + name] = str(text)
    return variables


def alert_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of an alert: FNV-1a (64 bits) of its labels sorted by
    name, each name and value followed by a 0xff byte (Prometheus' ``LabelSet.Fingerprint``),
    in 16 hex digits."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                digest = ((digest ^ byte) * _FNV_PRIME) & _U64
            digest = ((digest ^ 0xFF) * _FNV_PRIME) & _U64
    return f"{digest:016x}"


_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_U64 = (1 << 64) - 1


def label_variable(label: str) -> str:
    """``METRIC_READER_LABEL_<NAME>``: upper-cased, anything outside ``A-Z0-9_`` made ``_``."""
    return _LABEL_PREFIX + re.sub(r"[^A-Z0-9_]", "_", label.upper())


def annotation_variable(annotation: str) -> str:
    """``METRIC_READER_ANNOTATION_<NAME>``, made as a label's variable is."""
    return _ANNOTATION_PREFIX + re.sub(r"[^A-Z0-9_]", "_", annotation.upper())


def format_number(number: float) -> str:
    """``95``, ``0.25``, ``1e+21``; ``NaN``, ``+Inf`` and ``-Inf`` as Prometheus spells them."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _environment(variables: Mapping[str, str], receiver: str) -> dict[str, str]:
    """The service's environment without the event variables it may have inherited (a
    stale label must not pass for the event's), and this event's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith((_LABEL_PREFIX, _ANNOTATION_PREFIX, _AMX_PREFIX))
        and k not in ("METRIC_READER_LABELS", "METRIC_READER_ANNOTATIONS")
    }
    env.update({k: v.replace("\0", "") for k, v in variables.items()})
    env["AMX_RECEIVER"] = receiver.replace("\0", "")
    return env


class _Tail:
    """The last ``OUTPUT_LIMIT`` bytes of a stream, and how many were dropped before them."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        extra = len(self.data) - OUTPUT_LIMIT
        if extra > 0:
            del self.data[:extra]
            self.dropped += extra

    def text(self) -> str:
        text = self.data.decode("utf-8", "replace").rstrip()
        return f"[{self.dropped} bytes not shown]...{text}" if self.dropped else text


@dataclass
class _Outcome:
    returncode: int
    stdout: _Tail
    stderr: _Tail
    seconds: float


async def _run(plugin: str, argv: list[str], env: dict[str, str]) -> None:
    program = argv[0]
    log = logger.bind(plugin=plugin, program=program, kind=env["METRIC_READER_KIND"])
    outcome = await _run_process(argv, env)
    code = outcome.returncode
    failed = code != 0
    level = "WARNING" if failed else "INFO"
    for stream, tail in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        text = tail.text()
        if text:
            log.bind(stream=stream).log(level, "exec_action: {} {}:\n{}", program, stream, text)
    log = log.bind(returncode=code, seconds=round(outcome.seconds, 3))
    if not failed:
        log.info("exec_action: {} exited with status 0 in {:.3f}s", program, outcome.seconds)
        return
    status = _describe_status(code)
    stderr = outcome.stderr.text()
    if len(stderr) > _ERROR_TAIL:
        stderr = "..." + stderr[-_ERROR_TAIL:]
    stderr = " | ".join(line for line in stderr.splitlines() if line.strip())
    raise ExecActionError(
        f"{program} {status}" + (f"; stderr: {stderr}" if stderr else " (no stderr output)"),
        code,
    )


def _describe_status(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal"
        return f"was killed by {name} ({-code})"
    return f"exited with status {code}"


async def _run_process(argv: list[str], env: dict[str, str]) -> _Outcome:
    """Run ``argv`` to its end, reading its output; on cancellation kill its process group."""
    started = time.monotonic()
    process = await anyio.open_process(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group: killed as one on cancellation
    )
    stdout, stderr = _Tail(), _Tail()
    try:
        assert process.stdout is not None and process.stderr is not None
        drained = anyio.Event()
        pending = [2]

        async def drain(stream: ByteReceiveStream, tail: _Tail) -> None:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                async for chunk in stream:
                    tail.add(chunk)
            pending[0] -= 1
            if not pending[0]:
                drained.set()

        async with anyio.create_task_group() as group:
            group.start_soon(drain, process.stdout, stdout)
            group.start_soon(drain, process.stderr, stderr)
            returncode = await process.wait()
            # a background child it started may hold the pipes open: do not wait for it
            with anyio.move_on_after(_DRAIN_GRACE):
                await drained.wait()
            group.cancel_scope.cancel()
    except BaseException:
        _kill_group(process)
        raise
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await process.aclose()  # closes the pipes and reaps the process: no zombie
    return _Outcome(returncode, stdout, stderr, time.monotonic() - started)


def _kill_group(process: Process) -> None:
    """SIGKILL the command and everything in its process group (it leads the group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()  # in case it left its group


Plugin = ExecAction()
