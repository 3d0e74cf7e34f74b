"""A minimal client for one ``coordination.k8s.io/v1`` Lease, in-cluster only.

Three calls (get, create, update) over the service's own httpx client; no Kubernetes
library is needed for that. In-cluster configuration as client-go's ``rest.InClusterConfig``:
the API server from ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``, the CA and the
service-account token from the mounted service-account directory. The token is re-read
when the file changes (the kubelet rotates projected tokens), and the namespace comes from
the same directory.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._config import ClientConfig
from .._core import Conflict, FetchError, KubeError, redacted_excerpt
from .._http import deadline, make_client, read_body

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
MAX_LEASE_ANSWER = 1 << 20
"""Most bytes read of one answer about a Lease: a Lease with every annotation Kubernetes
allows (256 KiB) fits many times; more is refused while it is read, never held."""


@dataclass(frozen=True)
class InCluster:
    """Where the API server is and how to authenticate, from inside a pod."""

    server: str
    service_account_dir: Path

    @property
    def namespace(self) -> str:
        return (self.service_account_dir / "namespace").read_text().strip()


def in_cluster(environ: Mapping[str, str], service_account_dir: Path) -> InCluster | str:
    """The in-cluster configuration, or why there is none (one line)."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        return "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)"
    for name in ("token", "ca.crt"):
        if not (service_account_dir / name).is_file():
            return f"no service-account {name} in {service_account_dir}"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return InCluster(f"https://{host}:{port}", service_account_dir)


@dataclass
class Lease:
    """A Lease as the API server returned it: ``raw`` is the whole object, kept so an
    update sends back every field it does not change."""

    raw: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str(self.raw.get("metadata", {}).get("resourceVersion", ""))

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.raw.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def holder(self) -> str:
        return str(self.spec.get("holderIdentity") or "")

    @property
    def duration(self) -> float:
        seconds = self.spec.get("leaseDurationSeconds")
        return float(seconds) if isinstance(seconds, int) and seconds > 0 else 0.0

    @property
    def transitions(self) -> int:
        value = self.spec.get("leaseTransitions")
        return value if isinstance(value, int) and value >= 0 else 0

    @property
    def annotations(self) -> dict[str, str]:
        annotations = self.raw.get("metadata", {}).get("annotations")
        return annotations if isinstance(annotations, dict) else {}

    def changed(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The object to send for an update: this one with ``spec`` fields replaced."""
        raw = copy.deepcopy(self.raw)
        raw.setdefault("spec", {}).update(spec)
        if annotations is not None:
            raw.setdefault("metadata", {})["annotations"] = annotations
        return raw


def micro_time(wall: float) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseClient:
    """Get, create and update the Lease ``namespace``/``name``."""

    def __init__(self, cluster: InCluster, namespace: str, name: str, timeout: float) -> None:
        self.namespace = namespace
        self.name = name
        self.timeout = timeout
        self.cluster = cluster
        self._collection = cluster.server + LEASES.format(namespace=namespace)
        self._client = make_client(
            ClientConfig(
                ca_file=cluster.service_account_dir / "ca.crt",
                bearer_token_file=cluster.service_account_dir / "token",
            )
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self) -> Lease | None:
        """The Lease, or ``None`` when there is none."""
        try:
            return await self._call("GET", f"{self._collection}/{self.name}")
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, spec: dict[str, Any], annotations: dict[str, str]) -> Lease:
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }
        if annotations:
            body["metadata"]["annotations"] = annotations
        return await self._call("POST", self._collection, body)

    async def update(self, raw: dict[str, Any]) -> Lease:
        """Replace the Lease with ``raw``; its ``metadata.resourceVersion`` makes the
        update fail with ``Conflict`` if anyone wrote the Lease since it was read."""
        return await self._call("PUT", f"{self._collection}/{self.name}", raw)

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Lease:
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with deadline(self.timeout):
                request = self._client.build_request(
                    method, url, content=content, headers=headers, timeout=self.timeout
                )
                response = await self._client.send(request, stream=True)
                try:
                    data = await read_body(
                        response, MAX_LEASE_ANSWER, "the API server's answer", setting=False
                    )
                finally:
                    await response.aclose()
        except FetchError as exc:
            raise KubeError(0, f"{method} lease {self.name}: {exc}") from None
        if response.status_code in (200, 201):
            try:
                raw = json.loads(data)
            except ValueError:
                raw = None
            if not isinstance(raw, dict):
                raise KubeError(response.status_code, f"{method} lease: not a JSON object")
            return Lease(raw)
        reason, message = _status(data)
        text = f"{method} lease {self.namespace}/{self.name}: HTTP {response.status_code}"
        text += f" {reason}: {message}" if reason or message else ""
        error = Conflict if response.status_code == 409 else KubeError
        raise error(response.status_code, text, reason)


def _status(data: bytes) -> tuple[str, str]:
    """The reason and message of a Kubernetes ``Status`` answer, if it is one."""
    try:
        status = json.loads(data)
    except ValueError:
        return "", redacted_excerpt(data, 200).strip()
    if not isinstance(status, dict):
        return "", ""
    return str(status.get("reason") or ""), redacted_excerpt(str(status.get("message") or ""), 300)
