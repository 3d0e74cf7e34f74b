"""A stand-in for kube-apiserver's ``coordination.k8s.io/v1`` Leases, for leader-election tests.

No cluster can run here, so this serves the Lease endpoints over HTTPS on 127.0.0.1 (its own
CA, made with ``cryptography``) from a daemon thread of the test process, and lets a test
break it: latency, injected error answers, requests that hang or are reset, the whole server
going down and coming back on the same port, verbs denied, tokens rotated.

Faithful to kube-apiserver (checked against its source: the generic registry store, the Lease
strategy and validation, the request handlers and ``apimachinery``'s errors):

- bearer tokens (anonymous access disabled: no or an unknown token is 401 ``Unauthorized``);
  a denied verb is 403 ``Forbidden`` with RBAC's message and details;
- get, list, create (POST) and update (PUT) with the real codes and ``Status`` bodies:
  ``NotFound``, ``AlreadyExists``, ``Conflict`` for a stale ``metadata.resourceVersion`` or a
  ``metadata.uid`` that is not the stored one, ``BadRequest``, ``Invalid`` (422, with causes);
- the Lease strategy as it really is: a PUT of an absent Lease creates it (201, and needs the
  ``create`` verb too); a PUT without a resourceVersion is refused (422 "must be specified for
  an update"), because Leases do *not* allow unconditional updates;
- the server owns ``uid``, ``creationTimestamp`` and ``resourceVersion`` (one counter for every
  write, like etcd's revision; a PUT that changes nothing writes nothing and keeps it); a POST
  that carries a resourceVersion fails with 500, as the real storage layer does;
- decoding: wrong JSON types and MicroTimes not exactly like ``2006-01-02T15:04:05.000000Z07:00``
  are 400 ``BadRequest`` (a decode error, not 422); times are stored in UTC; unknown fields are
  dropped with a ``Warning: 299`` header (400 with ``?fieldValidation=Strict``);
- validation: name (DNS subdomain), labels, annotations (keys, 256 KiB in all),
  ``leaseDurationSeconds > 0``, ``leaseTransitions >= 0``, ``strategy``, ``preferredHolder``;
- creating in a namespace that does not exist is 404 ``namespaces "x" not found``; bodies over
  3 MiB are 413, bodies that are not ``application/json`` are 415;
- service-account directories laid out as kubelet projects them: ``token``, ``ca.crt`` and
  ``namespace`` are symlinks into ``..data``, which a rotation swaps with one rename.

Simplified: no watch, field or label selectors, PATCH or DELETE (405; use ``delete_lease``), no
``managedFields``, ``ownerReferences`` or ``finalizers`` (dropped), JSON only (no YAML or
protobuf), HTTP/1.1 only, no discovery or health endpoints, no query parameters but
``fieldValidation`` and a few harmless ones (others are 400), and the text of a decode error
after ``Lease in version "v1" cannot be handled as a Lease:`` only resembles Go's.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import re
import secrets
import select
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from _certs import cert, new_key, write_pem
from cryptography.hazmat.primitives import serialization

GROUP = "coordination.k8s.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
RESOURCE = "leases"
QUALIFIED_RESOURCE = f"{RESOURCE}.{GROUP}"
QUALIFIED_KIND = f"Lease.{GROUP}"
ANNOTATIONS_LIMIT = 256 * 1024
BODY_LIMIT = 3 * 1024 * 1024
MICROTIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
FIRST_RESOURCE_VERSION = 1000
OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)

Lease = dict[str, Any]
Headers = list[tuple[str, str]]

_SPEC_STRINGS = ("holderIdentity", "strategy", "preferredHolder")
_SPEC_INTS = ("leaseDurationSeconds", "leaseTransitions")
_SPEC_ORDER = (
    "holderIdentity",
    "leaseDurationSeconds",
    "acquireTime",
    "renewTime",
    "leaseTransitions",
    "strategy",
    "preferredHolder",
)
_OBJECT_META = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_QUERY_ACCEPTED = frozenset(
    {"fieldValidation", "fieldManager", "pretty", "timeout", "resourceVersion"}
)
_FIELD_VALIDATION = ("Ignore", "Strict", "Warn")
_LEASE_STRATEGIES = ("OldestEmulationVersion",)
_INT32 = range(-(2**31), 2**31)

_MICROTIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def microtime(when: dt.datetime) -> str:
    """``when`` as a Kubernetes MicroTime (``2026-11-25T10:00:00.123456Z``)."""
    if when.tzinfo is None:
        raise ValueError("a MicroTime needs an aware datetime")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Request:
    """One request as the server saw it. ``time`` is ``time.monotonic()`` at its arrival;
    ``status`` is None for a request that was never answered (hung, reset, or cut by
    ``down()``); ``holder`` is the ``spec.holderIdentity`` a successful write left."""

    time: float
    method: str
    path: str
    token: str | None
    status: int | None
    holder: str | None = None


# --- Status objects, as k8s.io/apimachinery/pkg/api/errors makes them -----------------------


class _ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.body = _status(code, reason, message, details)
        self.headers = headers or []


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None) -> Lease:
    body: Lease = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _q(text: str) -> str:
    """Go's ``%q`` for the strings that show up here."""
    return json.dumps(text, ensure_ascii=False)


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    return {k: v for k, v in (("name", name), ("group", group), ("kind", kind)) if v}


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, "BadRequest", message)


def _not_found(name: str) -> _ApiError:
    return _ApiError(
        404,
        "NotFound",
        f"{QUALIFIED_RESOURCE} {_q(name)} not found",
        _details(name, GROUP, RESOURCE),
    )


def _namespace_not_found(namespace: str) -> _ApiError:
    return _ApiError(
        404,
        "NotFound",
        f"namespaces {_q(namespace)} not found",
        _details(namespace, "", "namespaces"),
    )


def _conflict(name: str, why: str) -> _ApiError:
    return _ApiError(
        409,
        "Conflict",
        f"Operation cannot be fulfilled on {QUALIFIED_RESOURCE} {_q(name)}: {why}",
        _details(name, GROUP, RESOURCE),
    )


def _method_not_allowed(message: str) -> _ApiError:
    return _ApiError(405, "MethodNotAllowed", message, {})


def _injected(code: int) -> _ApiError:
    if code == 429:
        return _ApiError(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            {"retryAfterSeconds": 1},
            [("Retry-After", "1")],
        )
    if code == 500:
        return _ApiError(
            500,
            "InternalError",
            "Internal error occurred: injected failure",
            {"causes": [{"message": "injected failure"}]},
        )
    if code == 503:
        return _ApiError(
            503, "ServiceUnavailable", "the server is currently unable to handle the request"
        )
    if code == 504:
        return _ApiError(
            504,
            "Timeout",
            "Timeout: request did not complete within requested timeout - "
            "context deadline exceeded",
            {},
        )
    reasons = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        410: "Expired",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
    }
    return _ApiError(code, reasons.get(code, ""), f"injected failure: HTTP {code}")


@dataclass(frozen=True)
class _FieldError:
    """One entry of a ``field.ErrorList``: ``kind`` is the cause's reason, ``body`` Go's
    ``ErrorBody()``."""

    path: str
    kind: str
    body: str

    def __str__(self) -> str:
        return f"{self.path}: {self.body}"


def _go_value(value: object) -> str:
    if isinstance(value, str):
        return _q(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _invalid(path: str, value: object, detail: str) -> _FieldError:
    return _FieldError(path, "FieldValueInvalid", f"Invalid value: {_go_value(value)}: {detail}")


def _invalid_error(
    group_kind: str, group: str, kind: str, name: str, errors: list[_FieldError]
) -> _ApiError:
    listed = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": e.kind, "message": e.body, "field": e.path} for e in errors]
    return _ApiError(422, "Invalid", f"{group_kind} {_q(name)} is invalid: {listed}", details)


def _lease_invalid(name: str, errors: list[_FieldError]) -> _ApiError:
    return _invalid_error(QUALIFIED_KIND, GROUP, "Lease", name, errors)


# --- decoding a request body, as the JSON serializer and the handlers do -----------------------


@dataclass
class _Incoming:
    name: str = ""
    generate_name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)


def _decode_error(detail: str) -> _ApiError:
    return _bad_request(f'Lease in version "v1" cannot be handled as a Lease: {detail}')


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(value: object, where: str, go_type: str) -> _ApiError:
    return _decode_error(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {where} of type {go_type}"
    )


def _string(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _type_error(value, f"{where}.{key}", "string")


def _int32(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in _INT32:
        raise _type_error(value, f"{where}.{key}", "int32")
    return value


def _string_map(raw: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(value, f"{where}.{key}", "map[string]string")
    for item in value.values():
        if not isinstance(item, str):
            raise _type_error(item, f"{where}.{key}", "string")
    return dict(value)


def _parse_time(text: str, pattern: re.Pattern[str], layout: str) -> dt.datetime:
    match = pattern.fullmatch(text)
    try:
        if match is None:
            raise ValueError("does not match the layout")
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        fraction, zone = match.group(7) or "", match.group(8)
        offset = dt.timedelta(0)
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            offset = sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        micro = int((fraction.lstrip(".") + "000000")[:6]) if fraction else 0
        return dt.datetime(
            year, month, day, hour, minute, second, micro, dt.timezone(offset)
        ).astimezone(dt.UTC)
    except ValueError as exc:
        raise _decode_error(f"parsing time {_q(text)} as {_q(layout)}: {exc}") from None


def _decode(body: bytes, content_type: str | None, validation: str) -> tuple[_Incoming, list[str]]:
    """The object a POST or PUT carries, or the 400/415 the real server would answer; with the
    ``unknown field`` warnings (raised as 400 when ``validation`` is ``Strict``)."""
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise _ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json (this test double serves no other), not {content_type!r}",
        )
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
    if not isinstance(raw, dict):
        raise _bad_request(
            f"couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{_json_type(raw)} into Go value of type struct {{ APIVersion string; Kind string }}"
        )
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    if api_version not in (None, "", API_VERSION):
        raise _bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({API_VERSION})"
        )
    if kind not in (None, "", "Lease"):
        raise _decode_error(f"no kind {_q(str(kind))} is registered for version {API_VERSION!r}")

    unknown = [
        f"unknown field {_q(k)}" for k in raw if k not in ("apiVersion", "kind", "metadata", "spec")
    ]
    incoming = _Incoming()
    meta = raw.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise _type_error(meta, "Lease.metadata", "v1.ObjectMeta")
        where = "ObjectMeta.metadata"
        incoming.name = _string(meta, "name", where) or ""
        incoming.generate_name = _string(meta, "generateName", where) or ""
        incoming.namespace = _string(meta, "namespace", where) or ""
        incoming.uid = _string(meta, "uid", where) or ""
        incoming.resource_version = _string(meta, "resourceVersion", where) or ""
        created = _string(meta, "creationTimestamp", where)
        if created is not None:
            _parse_time(created, _RFC3339, "2006-01-02T15:04:05Z07:00")
        incoming.labels = _string_map(meta, "labels", where)
        incoming.annotations = _string_map(meta, "annotations", where)
        unknown += [f"unknown field {_q('metadata.' + k)}" for k in meta if k not in _OBJECT_META]
    spec = raw.get("spec")
    if spec is not None:
        if not isinstance(spec, dict):
            raise _type_error(spec, "Lease.spec", "v1.LeaseSpec")
        where = "LeaseSpec.spec"
        for key in _SPEC_ORDER:
            value: Any
            if key in _SPEC_STRINGS:
                value = _string(spec, key, where)
            elif key in _SPEC_INTS:
                value = _int32(spec, key, where)
            elif (text := _string(spec, key, where)) is not None:
                value = microtime(_parse_time(text, _MICROTIME, MICROTIME_LAYOUT))
            else:
                value = None
            if value is not None:
                incoming.spec[key] = value
        unknown += [f"unknown field {_q('spec.' + k)}" for k in spec if k not in _SPEC_ORDER]
    if unknown and validation == "Strict":
        raise _bad_request("strict decoding error: " + ", ".join(unknown))
    return incoming, unknown if validation == "Warn" else []


# --- validation, as pkg/apis/coordination/validation and apimachinery's do --------------------


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _dns_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errors


def _qualified_name(value: str) -> list[str]:
    name_error = _regex_error(
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
        "an alphanumeric character",
        _QUALIFIED_NAME_FMT,
        "MyName",
        "my.name",
        "123-abc",
    )
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a qualified name {name_error} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    errors = []
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errors.append("prefix part must be non-empty")
        else:
            errors += [f"prefix part {m}" for m in _dns_subdomain(parts[0])]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.fullmatch(name):
        errors.append(f"name part {name_error}")
    return errors


def _label_value(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errors


def _validate(incoming: _Incoming, name: str) -> list[_FieldError]:
    errors: list[_FieldError] = []
    if not name:
        errors.append(
            _FieldError(
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        )
    else:
        errors += [_invalid("metadata.name", name, m) for m in _dns_subdomain(name)]
    for key, value in sorted(incoming.labels.items()):
        errors += [_invalid("metadata.labels", key, m) for m in _qualified_name(key)]
        errors += [_invalid("metadata.labels", value, m) for m in _label_value(value)]
    for key in sorted(incoming.annotations):
        errors += [_invalid("metadata.annotations", key, m) for m in _qualified_name(key.lower())]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in incoming.annotations.items())
    if size > ANNOTATIONS_LIMIT:
        errors.append(
            _FieldError(
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: must have at most {ANNOTATIONS_LIMIT} bytes",
            )
        )
    spec = incoming.spec
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errors.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errors.append(
            _invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    strategy = spec.get("strategy")
    if strategy is not None:
        where = "spec.strategy.strategy"  # sic: the real validation nests the name twice
        if "/" not in strategy and strategy not in _LEASE_STRATEGIES:
            supported = ", ".join(_q(s) for s in _LEASE_STRATEGIES)
            errors.append(
                _FieldError(
                    where,
                    "FieldValueNotSupported",
                    f"Unsupported value: {_q(strategy)}: supported values: {supported}",
                )
            )
        elif "/" in strategy:
            errors += [_invalid(where, strategy, m) for m in _qualified_name(strategy)]
    if spec.get("preferredHolder") and not strategy:
        errors.append(
            _FieldError(
                "spec.preferredHolder",
                "FieldValueForbidden",
                "Forbidden: may only be specified if `strategy` is defined",
            )
        )
    return errors


def _build(namespace: str, name: str, incoming: _Incoming, uid: str, created: str) -> Lease:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "resourceVersion": "",
        "creationTimestamp": created,
    }
    if incoming.labels:
        meta["labels"] = dict(incoming.labels)
    if incoming.annotations:
        meta["annotations"] = dict(incoming.annotations)
    return {
        "kind": "Lease",
        "apiVersion": API_VERSION,
        "metadata": meta,
        "spec": dict(incoming.spec),
    }


def _now_timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- certificates and the service-account volume --------------------------------------------


def _make_pki(directory: Path) -> tuple[bytes, Path, Path]:
    """A cluster CA and the apiserver's certificate for 127.0.0.1, ``localhost`` and the
    ``kubernetes`` service names: the CA's PEM and the server's certificate and key files."""
    ca_key, server_key = new_key(), new_key()
    ca = cert("kubernetes", ca_key, None, ca=True)
    server = cert("kube-apiserver", server_key, ("kubernetes", ca_key), server=True,
                  dns_names=_APISERVER_NAMES)  # fmt: skip
    cert_file = write_pem(directory / "apiserver.crt", cert=server)
    key_file = write_pem(directory / "apiserver.key", key=server_key)
    return ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file


_APISERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _project(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` into ``directory`` the way kubelet's AtomicWriter updates a projected
    volume: a new timestamped directory, ``..data`` switched to it by one rename, the
    user-visible names symlinks through ``..data``, the old directory removed."""
    stamp = Path(
        tempfile.mkdtemp(
            prefix=dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S."), dir=directory
        )
    )
    stamp.chmod(0o755)
    for name, data in files.items():
        (stamp / name).write_bytes(data)
        (stamp / name).chmod(0o644)
    data_link, staging = directory / "..data", directory / "..data_tmp"
    previous = os.readlink(data_link) if data_link.is_symlink() else None
    staging.unlink(missing_ok=True)
    os.symlink(stamp.name, staging)
    os.rename(staging, data_link)
    for name in files:
        if not (directory / name).is_symlink():
            os.symlink(f"..data/{name}", directory / name)
    if previous is not None:
        shutil.rmtree(directory / previous, ignore_errors=True)


# --- the HTTP side ----------------------------------------------------------------------------


def _bearer(header: str | None) -> str | None:
    parts = (header or "").strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def _route(path: str) -> tuple[str, str | None] | None:
    parts = path.split("/")
    if (
        len(parts) not in (7, 8)
        or parts[:5] != ["", "apis", GROUP, VERSION, "namespaces"]
        or parts[6] != RESOURCE
        or not parts[5]
    ):
        return None
    name = parts[7] if len(parts) == 8 else None
    return None if name == "" else (parts[5], name)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request's body; None when it is over the limit (the connection is then closed)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks, total = [], 0
        while size := int(handler.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
            total += size
            if total > BODY_LIMIT:
                handler.close_connection = True
                return None
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(8)
        while handler.rfile.readline(1024).strip():
            pass
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    if length > BODY_LIMIT:
        handler.close_connection = True
        return None
    return handler.rfile.read(length)


def _send(
    handler: BaseHTTPRequestHandler, code: int, body: Lease, headers: Headers, padding: int = 0
) -> None:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    data += b" " * padding
    try:
        handler.send_response(code)
        handler.send_header("Audit-Id", str(uuid.uuid4()))
        handler.send_header("Cache-Control", "no-cache, private")
        handler.send_header("Content-Type", "application/json")
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        handler.close_connection = True


def _sever(connection: socket.socket) -> None:
    """Break a connection another thread is blocked on: shut it down through a duplicate
    descriptor (the TLS object is not safe to touch from here), with a reset on close."""
    try:
        raw = socket.socket(fileno=os.dup(connection.fileno()))
    except OSError:
        return
    with raw, contextlib.suppress(OSError):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        self.server.api._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, api: LeaseAPI, port: int) -> None:
        self.api = api
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(5.0)
        try:
            connection = self.api._tls.wrap_socket(request, server_side=True)
        except OSError:
            return
        connection.settimeout(None)
        if not self.api._track(connection):
            connection.close()
            return
        try:
            _Handler(connection, client_address, self)
        except (OSError, ValueError):
            pass
        finally:
            self.api._untrack(connection)
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Token:
    namespace: str
    expires: float | None = None


class LeaseAPI:
    """The fake apiserver. Use as a context manager or call ``start()``/``stop()``. Every
    method is thread-safe."""

    def __init__(self, tmp_path: Path) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="lease-api-", dir=tmp_path))
        self._cond = threading.Condition(threading.RLock())
        self._leases: dict[tuple[str, str], Lease] = {}
        self._namespaces = set(INITIAL_NAMESPACES)
        self._rv = FIRST_RESOURCE_VERSION
        self._tokens: dict[str, _Token] = {}
        self._forbidden: set[tuple[str, str | None]] = set()
        self._latency = 0.0
        self._fail: tuple[int, int | None] | None = None
        self._padding = 0
        self._cut: dict[str, tuple[str, int]] = {}
        self._cuts = 0
        self._log: list[Request] = []
        self._holders: list[tuple[float, str, str, str]] = []
        self._connections: set[ssl.SSLSocket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._port: int | None = None
        self._accounts = 0
        self._ca_pem, cert_file, key_file = _make_pki(self._dir)
        self._ca_file = self._dir / "ca.crt"
        self._ca_file.write_bytes(self._ca_pem)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._tls.load_cert_chain(cert_file, key_file)
        self._tls.set_alpn_protocols(["http/1.1"])

    # lifecycle

    def start(self) -> LeaseAPI:
        self.up()
        return self

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> LeaseAPI:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def up(self) -> None:
        """Listen again (on the same port after a ``down()``)."""
        with self._cond:
            if self._server is not None:
                return
            server = _Server(self, self._port or 0)
            self._port = server.server_address[1]
            self._server = server
            self._generation += 1
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"lease-api-{self._port}",
                daemon=True,
            )
            self._thread.start()

    def down(self) -> None:
        """Stop listening (connections are refused) and break every open connection; requests
        in flight get no answer. The stored Leases survive."""
        with self._cond:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self._generation += 1
            connections = list(self._connections)
            self._cond.notify_all()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in connections:
            _sever(connection)
        if thread is not None:
            thread.join(5.0)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the LeaseAPI has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self._ca_file

    # identities

    def service_account(self, token: str, namespace: str = "default") -> Path:
        """Accept ``token`` as the ``default`` service account of ``namespace`` (which then
        exists); return a directory laid out like /var/run/secrets/kubernetes.io/serviceaccount.
        """
        with self._cond:
            self._accounts += 1
            directory = self._dir / f"serviceaccount-{self._accounts}"
            self._tokens[token] = _Token(namespace)
            self._namespaces.add(namespace)
        directory.mkdir()
        _project(
            directory,
            {"ca.crt": self._ca_pem, "namespace": namespace.encode(), "token": token.encode()},
        )
        return directory

    def rotate_token(
        self, old: str, new: str, sa_dir: Path, *, old_valid_for: float | None = 60.0
    ) -> None:
        """Replace the token in ``sa_dir`` with ``new`` as kubelet does (one atomic rename) and
        accept it; ``old`` stays valid ``old_valid_for`` more seconds (None: for ever, 0: not
        at all), as a bound token stays valid until it expires."""
        with self._cond:
            account = self._tokens[old]
            self._tokens[new] = _Token(account.namespace)
            if old_valid_for is not None:
                account.expires = time.monotonic() + old_valid_for
        _project(
            sa_dir,
            {
                "ca.crt": self._ca_pem,
                "namespace": account.namespace.encode(),
                "token": new.encode(),
            },
        )

    def env(self, sa_dir: Path) -> dict[str, str]:
        """What a replica using ``sa_dir`` needs in its environment to find this server."""
        return {
            "KUBERNETES_SERVICE_HOST": self.host,
            "KUBERNETES_SERVICE_PORT": str(self.port),
            "KUBERNETES_SERVICE_ACCOUNT_DIR": str(sa_dir),
        }

    def forbid(self, verb: str, token: str | None = None) -> None:
        """Deny ``verb`` (get, list, create, update) to ``token``, or to everyone."""
        with self._cond:
            self._forbidden.add((verb, token))

    def allow(self, verb: str, token: str | None = None) -> None:
        with self._cond:
            self._forbidden.discard((verb, token))

    def add_namespace(self, namespace: str) -> None:
        with self._cond:
            self._namespaces.add(namespace)

    # faults

    def latency(self, seconds: float) -> None:
        """Hold every answer ``seconds`` after the request has been carried out (so a client
        that gives up first may still have written)."""
        with self._cond:
            self._latency = max(0.0, seconds)
            self._cond.notify_all()

    def fail(self, status: int | None, times: int | None = None) -> None:
        """Answer every request (the next ``times`` ones) with ``status`` and the Status body
        the real server sends for it, without carrying it out; None stops."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"not an error status: {status}")
        with self._cond:
            self._fail = None if status is None or times == 0 else (status, times)

    def pad_answers(self, size: int) -> None:
        """Send ``size`` bytes of white space after every JSON answer (valid JSON still): an
        API server, or something in front of it, answering far more than a Lease holds."""
        with self._cond:
            self._padding = max(0, size)

    def cut_off(self, token: str, mode: Literal["hang", "reset"] = "hang") -> None:
        """Requests with ``token`` are never carried out: ``hang`` holds them unanswered until
        ``restore(token)``, ``down()`` or the client gives up; ``reset`` resets the connection."""
        if mode not in ("hang", "reset"):
            raise ValueError(f"unknown mode {mode!r}")
        with self._cond:
            self._cuts += 1
            self._cut[token] = (mode, self._cuts)
            self._cond.notify_all()

    def restore(self, token: str) -> None:
        """End a ``cut_off``: held requests are dropped (their connections closed), new ones
        are served."""
        with self._cond:
            self._cut.pop(token, None)
            self._cond.notify_all()

    # state

    def lease(self, namespace: str, name: str) -> Lease | None:
        with self._cond:
            stored = self._leases.get((namespace, name))
            return copy.deepcopy(stored)

    def set_lease(
        self,
        namespace: str,
        name: str,
        spec: Mapping[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Lease:
        """Store a Lease as if a client had written it (validated the same way; datetimes are
        accepted for the times) and return it."""
        body = {
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {k: microtime(v) if isinstance(v, dt.datetime) else v for k, v in spec.items()},
        }
        with self._cond:
            try:
                incoming, _ = _decode(json.dumps(body).encode(), "application/json", "Strict")
                if errors := _validate(incoming, name):
                    raise _lease_invalid(name, errors)
            except _ApiError as error:
                raise ValueError(error.body["message"]) from None
            self._namespaces.add(namespace)
            existing = self._leases.get((namespace, name))
            return self._store(namespace, name, incoming, existing)

    def delete_lease(self, namespace: str, name: str) -> bool:
        with self._cond:
            if self._leases.pop((namespace, name), None) is None:
                return False
            self._rv += 1
            self._record_holder(namespace, name, "")
            return True

    def log(self) -> list[Request]:
        with self._cond:
            return list(self._log)

    def holders(
        self, namespace: str | None = None, name: str | None = None
    ) -> list[tuple[float, str]]:
        """Every change of ``spec.holderIdentity`` (``""``: nobody, or no Lease) with the
        ``time.monotonic()`` it was stored at, of one Lease or of all."""
        with self._cond:
            return [
                (at, holder)
                for at, ns, lease_name, holder in self._holders
                if namespace in (None, ns) and name in (None, lease_name)
            ]

    # internals: state changes, under self._cond

    def _holder_of(self, namespace: str, name: str) -> str:
        stored = self._leases.get((namespace, name))
        return "" if stored is None else stored["spec"].get("holderIdentity") or ""

    def _record_holder(self, namespace: str, name: str, holder: str) -> None:
        previous = [h for _, ns, n, h in self._holders if (ns, n) == (namespace, name)]
        if holder != (previous[-1] if previous else ""):
            self._holders.append((time.monotonic(), namespace, name, holder))

    def _store(
        self, namespace: str, name: str, incoming: _Incoming, existing: Lease | None
    ) -> Lease:
        if existing is None:
            lease = _build(namespace, name, incoming, str(uuid.uuid4()), _now_timestamp())
        else:
            meta = existing["metadata"]
            lease = _build(namespace, name, incoming, meta["uid"], meta["creationTimestamp"])
            lease["metadata"]["resourceVersion"] = meta["resourceVersion"]
            if lease == existing:
                return copy.deepcopy(existing)
        self._rv += 1
        lease["metadata"]["resourceVersion"] = str(self._rv)
        self._leases[(namespace, name)] = lease
        self._record_holder(namespace, name, lease["spec"].get("holderIdentity") or "")
        return copy.deepcopy(lease)

    def _track(self, connection: ssl.SSLSocket) -> bool:
        with self._cond:
            if self._server is None:
                return False
            self._connections.add(connection)
            return True

    def _untrack(self, connection: ssl.SSLSocket) -> None:
        with self._cond:
            self._connections.discard(connection)

    # internals: one request

    def _serve(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        with self._cond:
            generation = self._generation
        token = _bearer(handler.headers.get("Authorization"))
        try:
            body = _read_body(handler)
        except ValueError:
            handler.close_connection = True
            return
        with self._cond:
            cut = self._cut.get(token) if token is not None else None
            if cut is not None:
                self._log.append(Request(arrived, handler.command, handler.path, token, None))
        if cut is not None:
            handler.close_connection = True
            if cut[0] == "reset":
                with contextlib.suppress(OSError):
                    handler.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            else:
                self._hold(handler.connection, token or "", cut, generation)
            return

        warnings: list[str] = []
        holder: str | None = None
        try:
            with self._cond:
                code, answer, holder = self._handle(handler, token, body, warnings)
            headers: Headers = []
        except _ApiError as error:
            code, answer, headers = error.code, error.body, error.headers
        headers += [("Warning", f"299 - {_q(w)}") for w in warnings]

        answered = self._delay(generation)
        with self._cond:
            self._log.append(
                Request(
                    arrived,
                    handler.command,
                    handler.path,
                    token,
                    code if answered else None,
                    holder,
                )
            )
        if answered:
            _send(handler, code, answer, headers, self._padding)
        else:
            handler.close_connection = True

    def _hold(
        self, connection: socket.socket, token: str, cut: tuple[str, int], generation: int
    ) -> None:
        while True:
            with self._cond:
                if self._cut.get(token) != cut or self._generation != generation:
                    return
                self._cond.wait(0.02)
            try:
                readable, _, _ = select.select([connection], [], [], 0)
            except (OSError, ValueError):
                return
            if readable:
                return

    def _delay(self, generation: int) -> bool:
        with self._cond:
            deadline = time.monotonic() + self._latency
            while self._generation == generation:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._cond.wait(left)
            return False

    def _handle(
        self, handler: _Handler, token: str | None, body: bytes | None, warnings: list[str]
    ) -> tuple[int, Lease, str | None]:
        if self._fail is not None:
            code, times = self._fail
            if times is not None:
                self._fail = (code, times - 1) if times > 1 else None
            raise _injected(code)
        account = self._tokens.get(token or "")
        if account is None or (account.expires is not None and time.monotonic() >= account.expires):
            raise _ApiError(401, "Unauthorized", "Unauthorized")

        url = urlsplit(handler.path)
        route = _route(url.path)
        if route is None:
            raise _ApiError(404, "NotFound", "the server could not find the requested resource", {})
        namespace, name = route
        method = handler.command
        verb = {
            ("GET", False): "list",
            ("GET", True): "get",
            ("POST", False): "create",
            ("PUT", True): "update",
        }.get((method, name is not None))
        if verb is None:
            if method in ("DELETE", "PATCH"):
                raise _method_not_allowed(f"this test double does not serve {method} of leases")
            raise _method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        query = parse_qs(url.query, keep_blank_values=True)
        if extra := sorted(set(query) - _QUERY_ACCEPTED):
            raise _bad_request(f"this test double does not serve the query parameter {extra[0]!r}")
        validation = query.get("fieldValidation", ["Warn"])[-1] or "Warn"
        if validation not in _FIELD_VALIDATION:
            supported = ", ".join(_q(v) for v in _FIELD_VALIDATION)
            error = _FieldError(
                "fieldValidation",
                "FieldValueNotSupported",
                f"Unsupported value: {_q(validation)}: supported values: {supported}",
            )
            options = "CreateOptions" if verb == "create" else "UpdateOptions"
            raise _invalid_error(f"{options}.meta.k8s.io", "meta.k8s.io", options, "", [error])

        self._authorize(verb, account, token, namespace, name or "")
        if verb == "get":
            stored = self._leases.get((namespace, name or ""))
            if stored is None:
                raise _not_found(name or "")
            return 200, copy.deepcopy(stored), None
        if verb == "list":
            items = []
            for (ns, _), stored in sorted(self._leases.items()):
                if ns == namespace:
                    item = copy.deepcopy(stored)
                    del item["kind"], item["apiVersion"]
                    items.append(item)
            return (
                200,
                {
                    "kind": "LeaseList",
                    "apiVersion": API_VERSION,
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                },
                None,
            )

        if body is None:
            raise _ApiError(
                413, "RequestEntityTooLarge", f"Request entity too large: limit is {BODY_LIMIT}"
            )
        incoming, found = _decode(body, handler.headers.get("Content-Type"), validation)
        warnings += found
        if verb == "create":
            return self._create(namespace, incoming)
        return self._update(account, token, namespace, name or "", incoming)

    def _authorize(
        self, verb: str, account: _Token, token: str | None, namespace: str, name: str
    ) -> None:
        if (verb, None) not in self._forbidden and (verb, token) not in self._forbidden:
            return
        user = f"system:serviceaccount:{account.namespace}:default"
        what = f"{QUALIFIED_RESOURCE} {_q(name)}" if name else QUALIFIED_RESOURCE
        raise _ApiError(
            403,
            "Forbidden",
            f"{what} is forbidden: User {_q(user)} cannot {verb} resource {_q(RESOURCE)} in API "
            f"group {_q(GROUP)} in the namespace {_q(namespace)}",
            _details(name, GROUP, RESOURCE),
        )

    def _create(self, namespace: str, incoming: _Incoming) -> tuple[int, Lease, str | None]:
        if namespace not in self._namespaces:
            raise _namespace_not_found(namespace)
        if incoming.namespace and incoming.namespace != namespace:
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        name = incoming.name
        if not name and incoming.generate_name:
            name = incoming.generate_name + "".join(
                secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5)
            )
        if errors := _validate(incoming, name):
            raise _lease_invalid(name, errors)
        if incoming.resource_version.isdigit() and int(incoming.resource_version) != 0:
            raise _ApiError(500, "", "resourceVersion should not be set on objects to be created")
        if (namespace, name) in self._leases:
            raise _ApiError(
                409,
                "AlreadyExists",
                f"{QUALIFIED_RESOURCE} {_q(name)} already exists",
                _details(name, GROUP, RESOURCE),
            )
        lease = self._store(namespace, name, incoming, None)
        return 201, lease, lease["spec"].get("holderIdentity")

    def _update(
        self, account: _Token, token: str | None, namespace: str, name: str, incoming: _Incoming
    ) -> tuple[int, Lease, str | None]:
        if incoming.name != name:
            raise _bad_request(
                f"the name of the object ({incoming.name}) does not match the name on the URL "
                f"({name})"
            )
        if incoming.namespace and incoming.namespace != namespace:
            raise _bad_request(
                f"the namespace of the object ({incoming.namespace}) does not match the "
                f"namespace on the request ({namespace})"
            )
        existing = self._leases.get((namespace, name))
        current_uid = "" if existing is None else existing["metadata"]["uid"]
        if incoming.uid and incoming.uid != current_uid:
            raise _conflict(
                name,
                f"Precondition failed: UID in precondition: {incoming.uid}, "
                f"UID in object meta: {current_uid}",
            )
        if existing is None:
            if namespace not in self._namespaces:
                raise _namespace_not_found(namespace)
            if errors := _validate(incoming, name):
                raise _lease_invalid(name, errors)
            self._authorize("create", account, token, namespace, name)
            lease = self._store(namespace, name, incoming, None)
            return 201, lease, lease["spec"].get("holderIdentity")

        text = incoming.resource_version
        if text and not text.isdigit():
            raise _ApiError(500, "", f"strconv.ParseUint: parsing {_q(text)}: invalid syntax")
        if not text or int(text) == 0:
            raise _invalid_error(
                QUALIFIED_RESOURCE,
                GROUP,
                RESOURCE,
                name,
                [
                    _FieldError(
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        if int(text) != int(existing["metadata"]["resourceVersion"]):
            raise _conflict(name, OPTIMISTIC_LOCK)
        if errors := _validate(incoming, name):
            raise _lease_invalid(name, errors)
        lease = self._store(namespace, name, incoming, existing)
        return 200, lease, lease["spec"].get("holderIdentity")
