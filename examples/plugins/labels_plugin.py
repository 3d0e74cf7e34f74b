"""Example plugin ``labels_plugin``: use the series labels to decide what to act on.

Meant for a rule on the kubelet's volume metrics, whose series carry ``namespace`` and
``persistentvolumeclaim`` labels, for example::

    METRIC_NAME=kubelet_volume_stats_available_bytes THRESHOLD='<5e9' THRESHOLD_DURATION=2m
    ACTION_PLUGIN=labels_plugin

On each fire or repeat it takes the PersistentVolumeClaim and its namespace from
``event.labels`` and decides to expand that claim. It does not touch the cluster: it logs
the decision and, when ``LABELS_PLUGIN_PLAN_FILE`` is set, appends it to that file as one
JSON line (a real plugin would call the Kubernetes API at that point). A series without
those labels, or with values that are not valid Kubernetes names, is a failure: nothing
is decided and the error is logged with the labels it did have.

Settings (environment variables, read at every call):

- ``LABELS_PLUGIN_PLAN_FILE``: a file to append each decision to as JSON (default: none,
  log only)

A decision looks like::

    {"action": "expand", "namespace": "shop", "persistentvolumeclaim": "data-db-0",
     "metric_name": "kubelet_volume_stats_available_bytes", "value": 1.2e9,
     "threshold": "<5e9", "kind": "fire", "level": "base", "rule": "default",
     "labels": {...}, "time": "2024-05-01T12:00:00+00:00"}
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import aiofiles
from loguru import logger

from metric_reader import Event

# A Kubernetes object name (RFC 1123 label / subdomain): never pass scraped text unchecked.
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class LabelsPlugin:
    name = "labels_plugin"

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        labels: Mapping[str, str] = event.labels if event is not None else {}
        namespace = _k8s_name(labels, "namespace")
        claim = _k8s_name(labels, "persistentvolumeclaim")
        plan = {
            "action": "expand",
            "namespace": namespace,
            "persistentvolumeclaim": claim,
            "metric_name": metric_name,
            "value": value if math.isfinite(value) else str(value),
            "threshold": threshold,
            "kind": event.kind if event is not None else "fire",
            "level": event.level if event is not None else "base",
            "rule": event.rule if event is not None else "",
            "labels": dict(labels),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        logger.bind(plugin=self.name, namespace=namespace, pvc=claim).warning(
            "labels_plugin: would expand PVC {}/{} ({} = {:g}, threshold {})",
            namespace,
            claim,
            metric_name,
            value,
            threshold,
        )
        plan_file = os.environ.get("LABELS_PLUGIN_PLAN_FILE")
        if plan_file:
            async with aiofiles.open(plan_file, "a", encoding="utf-8") as out:
                await out.write(json.dumps(plan, sort_keys=True) + "\n")


def _k8s_name(labels: Mapping[str, str], key: str) -> str:
    value = labels.get(key)
    if value is None:
        raise ValueError(
            f"series has no {key!r} label (labels: {dict(labels)}); watch a metric that has "
            "namespace and persistentvolumeclaim labels, or keep them in your QUERY with "
            "`by (namespace, persistentvolumeclaim)`"
        )
    if not _K8S_NAME.fullmatch(value):
        raise ValueError(f"label {key}={value!r} is not a valid Kubernetes name")
    return value


Plugin = LabelsPlugin()
