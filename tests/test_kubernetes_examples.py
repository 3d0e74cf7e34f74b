"""The Kubernetes examples are what they say, as a user would apply them.

Every manifest (``examples/kubernetes/*.yaml`` and each complete manifest shown in the
documentation) is checked field by field against the Kubernetes API's own models (the
``kubernetes`` client's ``openapi_types`` and ``attribute_map``): an unknown or misplaced
field, a wrong scalar type or a missing required field fails, not only bad YAML. Then what
the schema cannot see: the sidecar's security settings stay on its own container, every
directory it writes is a writable volume, the plugin loads as kubelet mounts it, the
environment is a valid configuration, and the image's health check finds the port that
``LISTEN_ADDRESS`` says.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes.client
import pytest
import yaml

from metric_reader._actions import discover_plugins
from metric_reader._config import configuration_files, load_settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "kubernetes"
SIDECAR = "metric-reader"


# --- the schema check -------------------------------------------------------------------------

_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "bytes": (str,),  # base64 text in YAML
    "datetime": (str,),
}
# resource.Quantity is a string in the models, but the API server also takes a number.
_QUANTITIES = {("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests")}
_QUANTITIES |= {("V1EmptyDirVolumeSource", "size_limit")}


def _model(name: str) -> Any:
    model = getattr(kubernetes.client, name, None)
    assert model is not None, f"no model {name} in the kubernetes client"
    return model


def _type_name(value: object) -> str:
    return type(value).__name__


def schema_problems(document: dict[str, Any]) -> list[str]:
    """Every way ``document`` is not a valid object of its ``apiVersion`` and ``kind``."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind must both be set"]
    version = api_version.rpartition("/")[2]
    name = f"{version[:1].upper()}{version[1:]}{kind}"
    if getattr(kubernetes.client, name, None) is None:
        return [f"{api_version} {kind}: no such kind in the Kubernetes API"]
    problems: list[str] = []
    _check(name, document, kind, problems, quantity=False)
    return problems


def _check(type_name: str, value: object, at: str, problems: list[str], *, quantity: bool) -> None:
    if list_of := re.fullmatch(r"List\[(.+)\]", type_name):
        if not isinstance(value, list):
            problems.append(f"{at}: expected a list, got {_type_name(value)}")
            return
        for index, item in enumerate(value):
            _check(list_of.group(1), item, f"{at}[{index}]", problems, quantity=quantity)
    elif dict_of := re.fullmatch(r"Dict\[str, (.+)\]", type_name):
        if not isinstance(value, dict):
            problems.append(f"{at}: expected a map, got {_type_name(value)}")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{at}: key {key!r} is not a string")
            _check(dict_of.group(1), item, f"{at}.{key}", problems, quantity=quantity)
    elif type_name == "object":  # int-or-string and free-form fields
        if value is None:
            problems.append(f"{at}: no value")
    elif type_name in _SCALARS:
        allowed = (*_SCALARS[type_name], int, float) if quantity else _SCALARS[type_name]
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            problems.append(f"{at}: expected {type_name}, got {_type_name(value)} {value!r}")
    else:
        _check_object(type_name, value, at, problems)


def _check_object(type_name: str, value: object, at: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{at}: expected a {type_name} object, got {_type_name(value)} {value!r}")
        return
    model = _model(type_name)
    by_key = {key: attribute for attribute, key in model.attribute_map.items()}
    for key, item in value.items():
        attribute = by_key.get(key)
        if attribute is None:
            close = [k for k in by_key if k.lower() == str(key).lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{at}.{key}: no such field in {type_name}{hint}")
            continue
        quantity = (type_name, attribute) in _QUANTITIES
        _check(model.openapi_types[attribute], item, f"{at}.{key}", problems, quantity=quantity)
    fields = getattr(model, "model_fields", {})
    for attribute, key in model.attribute_map.items():
        if attribute in fields and fields[attribute].is_required() and key not in value:
            problems.append(f"{at}: {type_name} needs {key}")


def test_the_schema_check_finds_misplaced_unknown_mistyped_and_missing_fields() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "p"}},
        "spec": {
            # a container's setting at pod level: not a field of the pod's securityContext
            "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True},
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "env": [{"name": "DRY_RUN", "value": True}],  # not a string
                    "ports": [{"containerport": 9180}],  # misspelt; containerPort missing
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 9180}},
                    "volumeMounts": [{"name": "v", "mountPath": "/x", "readOnly": "yes"}],
                }
            ],
            "volumes": [{"name": "v", "emptyDir": []}],  # a list where a map belongs
        },
    }

    assert schema_problems(pod) == [
        "Pod.spec.securityContext.readOnlyRootFilesystem: no such field in V1PodSecurityContext",
        "Pod.spec.containers[0].env[0].value: expected str, got bool True",
        "Pod.spec.containers[0].ports[0].containerport: no such field in V1ContainerPort"
        " (did you mean containerPort?)",
        "Pod.spec.containers[0].ports[0]: V1ContainerPort needs containerPort",
        "Pod.spec.containers[0].volumeMounts[0].readOnly: expected bool, got str 'yes'",
        "Pod.spec.volumes[0].emptyDir: expected a V1EmptyDirVolumeSource object, got list []",
    ]
    assert schema_problems({"apiVersion": "apps/v1", "kind": "Deploymnet"}) == [
        "apps/v1 Deploymnet: no such kind in the Kubernetes API"
    ]


# --- the manifests ----------------------------------------------------------------------------


def _manifest_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def _documented_manifests() -> list[tuple[str, str]]:
    """Every complete manifest (a YAML block with apiVersion) shown in the documentation."""
    found = []
    for doc in (
        REPO / "README.md",
        REPO / "plugin_dir" / "README.md",
        *sorted(REPO.glob("docs/*.md")),
    ):
        blocks = re.findall(r"^```ya?ml\n(.*?)^```", doc.read_text(), re.S | re.M)
        for index, block in enumerate(blocks):
            if re.search(r"^apiVersion:", block, re.M):
                found.append((f"{doc.relative_to(REPO)} block {index}", block))
    return found


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _all_manifests() -> list[tuple[str, str]]:
    files = [(str(p.relative_to(REPO)), p.read_text()) for p in _manifest_files()]
    return files + _documented_manifests()


@pytest.mark.parametrize(("where", "text"), _all_manifests(), ids=lambda v: v[:60])
def test_every_manifest_matches_the_kubernetes_api(where: str, text: str) -> None:
    problems = [p for document in _documents(text) for p in schema_problems(document)]
    assert problems == [], f"{where}:\n" + "\n".join(problems)


def test_the_examples_are_the_files_the_tests_know() -> None:
    assert [p.name for p in _manifest_files()] == [
        "deployment.yaml",
        "plugins-configmap.yaml",
        "pod.yaml",
        "rbac.yaml",
        "rules-configmap.yaml",
        "rules-deployment.yaml",
    ]
    assert len(_documented_manifests()) >= 2  # the guide's ConfigMap, docs/sharding.md


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """The pod spec of every Pod and workload among the manifests."""
    specs = []
    for where, text in _all_manifests():
        for document in _documents(text):
            if document["kind"] == "Pod":
                specs.append((where, document["spec"]))
            elif document["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
                spec = dict(document["spec"]["template"]["spec"])
                claims = document["spec"].get("volumeClaimTemplates", [])
                spec["volumes"] = [
                    *spec.get("volumes", []),
                    *({"name": c["metadata"]["name"], "persistentVolumeClaim": {}} for c in claims),
                ]
                specs.append((where, spec))
    return specs


def _sidecar_specs() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for where, spec in _pod_specs():
        containers = [c for c in spec["containers"] if c["name"] == SIDECAR]
        if containers:
            found.append((where, spec, containers[0]))
    return found


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


@pytest.mark.parametrize(
    ("where", "spec", "container"), _sidecar_specs(), ids=[w for w, _, _ in _sidecar_specs()]
)
def test_security_settings_are_the_sidecars_not_the_pods(
    where: str, spec: dict[str, Any], container: dict[str, Any]
) -> None:
    """A pod-level securityContext applies to every container, the user's application too."""
    assert "securityContext" not in spec, f"{where}: pod-level securityContext"
    if container.get("securityContext") is None:
        return  # a short example in the guide: no security settings at all
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}


def _file_action_default_dir() -> str:
    source = (REPO / "plugin_dir" / "file_action.py").read_text()
    match = re.search(r'^DEFAULT_DIR = "([^"]+)"', source, re.M)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize(
    ("where", "spec", "container"), _sidecar_specs(), ids=[w for w, _, _ in _sidecar_specs()]
)
def test_every_directory_the_sidecar_writes_is_a_writable_volume(
    where: str, spec: dict[str, Any], container: dict[str, Any]
) -> None:
    """With a read-only root file system, the state file and the bundled file_action's
    directory (a user may switch ACTION_PLUGIN to it) must be on a writable volume."""
    if not (container.get("securityContext") or {}).get("readOnlyRootFilesystem"):
        return
    env = _env(container)
    written = [PurePosixPath(env.get("FILE_ACTION_DIR") or _file_action_default_dir())]
    if "STATE_FILE" in env:
        written.append(PurePosixPath(env["STATE_FILE"]).parent)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    writable = [
        PurePosixPath(m["mountPath"])
        for m in container.get("volumeMounts", [])
        if not m.get("readOnly")
        and ({"emptyDir", "persistentVolumeClaim", "ephemeral"} & volumes[m["name"]].keys())
    ]
    for directory in written:
        assert any(directory.is_relative_to(mount) for mount in writable), (
            f"{where}: {directory} is on the read-only root file system; mount an emptyDir there"
        )


def _sidecar(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    [(spec, container)] = [
        (s, c) for where, s, c in _sidecar_specs() if where == f"examples/kubernetes/{name}"
    ]
    return spec, container


def _configmap_plugins() -> dict[str, str]:
    configmap = yaml.safe_load((EXAMPLES / "plugins-configmap.yaml").read_text())
    return configmap["data"]


def test_the_configmap_plugin_loads_as_kubelet_mounts_it(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    for name, text in _configmap_plugins().items():
        (plugins / name).write_text(text)
        (plugins / name).chmod(0o444)  # defaultMode in pod.yaml
    catalog = discover_plugins(plugins)
    assert "scale_workers" in catalog.plugins
    assert [p for p in catalog.problems if p.path.parent == plugins] == []


@pytest.mark.parametrize("name", ["pod.yaml", "deployment.yaml"])
def test_the_sidecar_environment_is_a_valid_configuration(name: str, tmp_path: Path) -> None:
    """Every variable set is a metric-reader setting or read by the ConfigMap's plugin."""
    env = _env(_sidecar(name)[1])
    (tmp_path / "plugins").mkdir()
    env["PLUGIN_DIR"] = str(tmp_path / "plugins")  # the ConfigMap mount
    if "STATE_FILE" in env:
        env["STATE_FILE"] = str(tmp_path / "state.json")  # the emptyDir
    plugin_variables = {
        variable
        for text in _configmap_plugins().values()
        for variable in re.findall(r'os\.environ\.get\("([A-Z_]+)"', text)
    }
    settings = load_settings({k: v for k, v in env.items() if k not in plugin_variables})
    assert settings.unknown_variables == ()
    [rule] = settings.rules
    assert rule.base is not None and rule.base.plugin == "scale_workers"


def test_the_pod_reads_its_own_app_and_leaves_the_app_alone() -> None:
    spec, container = _sidecar("pod.yaml")
    assert _env(container)["SCRAPE_URL"] == "http://127.0.0.1:8080/metrics"
    [app] = [c for c in spec["containers"] if c["name"] != SIDECAR]
    assert {"name": "metrics", "containerPort": 8080} in app["ports"]
    # the pod's service account is the application's too; a single sidecar elects no leader
    assert "serviceAccountName" not in spec
    assert "LEADER_ELECTION_ENABLED" not in _env(container)


def test_the_probes_use_the_service_endpoints() -> None:
    for name in ("pod.yaml", "deployment.yaml"):
        _, container = _sidecar(name)
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "mr-http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "mr-http"}
        assert container["ports"] == [{"name": "mr-http", "containerPort": 9180}]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["plugins"]["mountPath"] == _env(container)["PLUGIN_DIR"] == "/plugins"
        assert mounts["plugins"]["readOnly"] is True


def test_the_deployment_elects_one_leader_with_the_rbac_it_needs(tmp_path: Path) -> None:
    deployment = yaml.safe_load((EXAMPLES / "deployment.yaml").read_text())
    pod, container = _sidecar("deployment.yaml")
    env = _env(container)
    (tmp_path / "plugins").mkdir()
    env["PLUGIN_DIR"] = str(tmp_path / "plugins")
    env.pop("SCALER_URL")  # the plugin's
    settings = load_settings(env)
    assert deployment["spec"]["replicas"] > 1
    assert settings.election is not None and settings.unknown_variables == ()
    assert settings.election.lock_name == "metric-reader-leader"
    # every replica reads the same source: a query, not each its own pod
    assert [r.source.kind for r in settings.rules] == ["prometheus"]
    rbac = _documents((EXAMPLES / "rbac.yaml").read_text())
    [account] = [d for d in rbac if d["kind"] == "ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    [role] = [d for d in rbac if d["kind"] == "Role"]
    [rule] = role["rules"]
    assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
    assert sorted(rule["verbs"]) == ["create", "get", "update"]
    [binding] = [d for d in rbac if d["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    # a leader finishes its plugin calls (10 s) and releases the Lease before it is killed
    assert pod["terminationGracePeriodSeconds"] > 10


def _mount_as_kubelet_does(directory: Path, files: dict[str, str]) -> None:
    """A ConfigMap volume: each key a symlink into ``..data``, itself a symlink to a
    timestamped directory holding the files."""
    version = directory / "..2026_12_06_00_00_00.000000001"
    version.mkdir(parents=True)
    for name, text in files.items():
        (version / name).write_text(text)
    (directory / "..data").symlink_to(version.name)
    for name in files:
        (directory / name).symlink_to(f"..data/{name}")


def test_the_rules_configmap_runs_as_kubelet_mounts_it(tmp_path: Path) -> None:
    """CONFIG_FILE and its rule files from one ConfigMap: the alerts load, and the files
    watched for changes are the ConfigMap's (through kubelet's symlinks)."""
    configmap = yaml.safe_load((EXAMPLES / "rules-configmap.yaml").read_text())
    spec, container = _sidecar("rules-deployment.yaml")
    env = _env(container)
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "rules"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "rules"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert mount["readOnly"] is True and "subPath" not in mount  # subPath is never updated
    config_file = PurePosixPath(env["CONFIG_FILE"])
    assert config_file.parent == PurePosixPath(mount["mountPath"])
    assert config_file.name in configmap["data"]

    mounted = tmp_path / "etc-metric-reader"
    _mount_as_kubelet_does(mounted, configmap["data"])
    env["CONFIG_FILE"] = str(mounted / config_file.name)
    settings = load_settings(env)
    assert settings.unknown_variables == () and settings.watch_config
    assert [rule.name for rule in settings.rules] == ["HostOutOfMemory", "HostOutOfDiskSpace"]
    assert {rule.base.plugin for rule in settings.rules if rule.base} == {"alertmanager_action"}
    assert "alertmanager_action" in settings.plugin_settings
    watched = configuration_files(settings.config_file, settings.rule_file_globs)
    assert sorted(p.name for p in watched) == sorted(configmap["data"])


# --- the image's health check -----------------------------------------------------------------


def _healthcheck_command() -> list[str]:
    dockerfile = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", dockerfile, re.M)
    assert match is not None, "no HEALTHCHECK ... CMD [...] in the Dockerfile"
    command = json.loads(match.group(1))
    assert command[0] == "python3"  # in the image: python:3.11-slim and Debian alike
    return [sys.executable, *command[1:]]


class _Healthz(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture(params=["127.0.0.1", "::1"])
def healthz(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    host = request.param
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = (_V6Server if ":" in host else ThreadingHTTPServer)((host, 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(listen_address: str | None) -> int:
    env = {"PATH": "/usr/bin:/bin"}
    if listen_address is not None:
        env["LISTEN_ADDRESS"] = listen_address
    return subprocess.run(_healthcheck_command(), env=env, timeout=30).returncode


def test_the_health_check_asks_the_port_listen_address_names(healthz: tuple[str, int]) -> None:
    host, port = healthz
    bracketed = f"[{host}]" if ":" in host else host
    assert _run_healthcheck(f"{bracketed}:{port}") == 0
    if host == "127.0.0.1":
        assert _run_healthcheck(f":{port}") == 0  # every interface: asked on loopback
        assert _run_healthcheck(f"0.0.0.0:{port}") == 0
    else:
        assert _run_healthcheck(f"[::]:{port}") == 0


def test_the_health_check_fails_where_nothing_answers() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert _run_healthcheck(f"127.0.0.1:{free}") != 0


def test_the_health_check_passes_when_the_endpoints_are_off() -> None:
    assert _run_healthcheck("off") == 0
