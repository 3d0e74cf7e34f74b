"""The Kubernetes example is what it says: its plugin loads as kubelet mounts it, and the
sidecar's environment is a valid configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from metric_reader._config import load_settings
from metric_reader._plugins import discover_plugins

EXAMPLES = Path(__file__).parent.parent / "examples" / "kubernetes"


def sidecar() -> dict[str, Any]:
    pod = yaml.safe_load((EXAMPLES / "pod.yaml").read_text())
    [container] = [c for c in pod["spec"]["containers"] if c["name"] == "metric-reader"]
    return container


def test_the_configmap_plugin_loads_as_kubelet_mounts_it(tmp_path: Path) -> None:
    configmap = yaml.safe_load((EXAMPLES / "plugins-configmap.yaml").read_text())
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    for name, text in configmap["data"].items():
        (plugins / name).write_text(text)
        (plugins / name).chmod(0o444)  # defaultMode in pod.yaml
    catalog = discover_plugins(plugins)
    assert "scale_workers" in catalog.plugins
    assert [p for p in catalog.problems if p.path.parent == plugins] == []


def test_the_sidecar_environment_is_a_valid_configuration(tmp_path: Path) -> None:
    container = sidecar()
    env = {item["name"]: item["value"] for item in container["env"]}
    (tmp_path / "plugins").mkdir()
    env["PLUGIN_DIR"] = str(tmp_path / "plugins")  # the ConfigMap mount
    if "STATE_FILE" in env:
        env["STATE_FILE"] = str(tmp_path / "state.json")  # the emptyDir
    settings = load_settings(env)
    [rule] = settings.rules
    assert rule.scrape_url == "http://127.0.0.1:8080/metrics"
    assert rule.base is not None and rule.base.plugin == "scale_workers"
    assert settings.unknown_variables == ()


def test_the_probes_use_the_service_endpoints() -> None:
    container = sidecar()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 9180
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["plugins"]["mountPath"] == "/plugins" and mounts["plugins"]["readOnly"]


def test_the_deployment_elects_one_leader_with_the_rbac_it_needs(tmp_path: Path) -> None:
    deployment = yaml.safe_load((EXAMPLES / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    (tmp_path / "plugins").mkdir()
    env["PLUGIN_DIR"] = str(tmp_path / "plugins")
    settings = load_settings(env)
    assert deployment["spec"]["replicas"] > 1
    assert settings.election is not None and settings.unknown_variables == ()
    assert settings.election.lock_name == "metric-reader-leader"
    rbac = list(yaml.safe_load_all((EXAMPLES / "rbac.yaml").read_text()))
    [account] = [d for d in rbac if d["kind"] == "ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    [role] = [d for d in rbac if d["kind"] == "Role"]
    [rule] = role["rules"]
    assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
    assert sorted(rule["verbs"]) == ["create", "get", "update"]
