"""The fake Lease API (``_lease_api``) against the protocol of the real kube-apiserver: what the
leader-election tests rely on is checked here, through plain httpx over HTTPS with the fake's
CA and a service account's token, exactly as a replica would talk to it."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _lease_api import LeaseAPI, Request, microtime

TOKEN = "token-replica-a"
OTHER = "token-replica-b"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
CONFLICT = (
    'Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object has been '
    "modified; please apply your changes to the latest version and try again"
)


def lease_body(name: str = "lock", holder: str = "a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-25T10:00:00.000000Z",
            "renewTime": "2026-11-25T10:00:00.000000Z",
            "leaseTransitions": 0,
            **spec,
        },
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LeaseAPI]:
    with LeaseAPI(tmp_path) as server:
        yield server


def connect(api: LeaseAPI, token: str | None = TOKEN, timeout: float = 5.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=api.url,
        verify=ssl.create_default_context(cafile=str(api.ca_file)),
        headers=headers,
        timeout=timeout,
        trust_env=False,
    )


@pytest.fixture
def client(api: LeaseAPI) -> Iterator[httpx.Client]:
    api.service_account(TOKEN)
    with connect(api) as http:
        yield http


def stored(api: LeaseAPI, name: str = "lock") -> dict[str, Any]:
    lease = api.lease("default", name)
    assert lease is not None
    return lease


def status(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure" and body["code"] == response.status_code, body
    return body


# --- the protocol ---------------------------------------------------------------------------


def test_create_answers_201_with_the_stored_lease_then_409_already_exists(
    api: LeaseAPI, client: httpx.Client
) -> None:
    sent = lease_body()
    sent["metadata"].update(uid="mine", creationTimestamp="2001-01-01T00:00:00Z")
    created = client.post(LEASES, json=sent)
    assert created.status_code == 201, created.text
    lease = created.json()
    meta = lease["metadata"]
    assert lease["kind"] == "Lease" and lease["apiVersion"] == "coordination.k8s.io/v1"
    assert (meta["name"], meta["namespace"]) == ("lock", "default")
    assert meta["uid"] != "mine" and meta["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert int(meta["resourceVersion"]) > 0
    assert lease["spec"] == sent["spec"]
    assert api.lease("default", "lock") == lease

    again = client.post(LEASES, json=lease_body(holder="b"))
    assert again.status_code == 409
    assert status(again) | {"metadata": {}} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'leases.coordination.k8s.io "lock" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 409,
    }
    assert api.lease("default", "lock") == lease


def test_get_answers_the_lease_or_404_not_found(client: httpx.Client) -> None:
    missing = client.get(f"{LEASES}/lock")
    assert missing.status_code == 404
    assert status(missing) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'leases.coordination.k8s.io "lock" not found',
        "reason": "NotFound",
        "details": {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 404,
    }
    created = client.post(LEASES, json=lease_body()).json()
    found = client.get(f"{LEASES}/lock")
    assert found.status_code == 200 and found.json() == created


def test_update_with_a_stale_resource_version_is_409_and_changes_nothing(
    api: LeaseAPI, client: httpx.Client
) -> None:
    stale = client.post(LEASES, json=lease_body()).json()
    fresh = client.put(
        f"{LEASES}/lock", json=stale | {"spec": stale["spec"] | {"leaseTransitions": 1}}
    )
    assert fresh.status_code == 200
    stored = api.lease("default", "lock")

    stale["spec"]["holderIdentity"] = "b"
    refused = client.put(f"{LEASES}/lock", json=stale)
    assert refused.status_code == 409
    body = status(refused)
    assert (body["reason"], body["message"]) == ("Conflict", CONFLICT)
    assert body["details"] == {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}
    assert api.lease("default", "lock") == stored


def test_update_with_the_current_resource_version_writes_and_increases_it(
    api: LeaseAPI, client: httpx.Client
) -> None:
    lease = client.post(LEASES, json=lease_body()).json()
    lease["spec"] |= {"holderIdentity": "b", "leaseTransitions": 1}
    updated = client.put(f"{LEASES}/lock", json=lease)
    assert updated.status_code == 200
    after = updated.json()
    assert int(after["metadata"]["resourceVersion"]) > int(lease["metadata"]["resourceVersion"])
    assert after["metadata"]["uid"] == lease["metadata"]["uid"]
    assert after["spec"]["holderIdentity"] == "b"
    assert api.lease("default", "lock") == after
    assert [h for _, h in api.holders("default", "lock")] == ["a", "b"]
    assert [(r.method, r.status, r.holder) for r in api.log()] == [
        ("POST", 201, "a"),
        ("PUT", 200, "b"),
    ]


def test_an_update_that_changes_nothing_writes_nothing(client: httpx.Client) -> None:
    lease = client.post(LEASES, json=lease_body()).json()
    same = client.put(f"{LEASES}/lock", json=lease)
    assert same.status_code == 200 and same.json() == lease


def test_leases_refuse_an_unconditional_update(api: LeaseAPI, client: httpx.Client) -> None:
    """The real Lease strategy has AllowUnconditionalUpdate() == false: a PUT must carry the
    resourceVersion it read."""
    lease = client.post(LEASES, json=lease_body()).json()
    del lease["metadata"]["resourceVersion"]
    lease["spec"]["holderIdentity"] = "b"
    refused = client.put(f"{LEASES}/lock", json=lease)
    assert refused.status_code == 422
    body = status(refused)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'leases.coordination.k8s.io "lock" is invalid: metadata.resourceVersion: '
        "Invalid value: 0x0: must be specified for an update"
    )
    assert stored(api)["spec"]["holderIdentity"] == "a"


def test_a_put_of_an_absent_lease_creates_it_with_the_create_verb(
    api: LeaseAPI, client: httpx.Client
) -> None:
    """The real Lease strategy has AllowCreateOnUpdate() == true."""
    body = lease_body()
    body["metadata"]["resourceVersion"] = "12"
    created = client.put(f"{LEASES}/lock", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["metadata"]["resourceVersion"] != "12"

    api.forbid("create")
    refused = client.put(f"{LEASES}/other", json=lease_body("other"))
    assert refused.status_code == 403
    assert "cannot create resource" in status(refused)["message"]


def test_names_and_namespaces_must_agree_with_the_url(client: httpx.Client) -> None:
    lease = client.post(LEASES, json=lease_body()).json()
    renamed = client.put(f"{LEASES}/other", json=lease)
    assert renamed.status_code == 400
    assert status(renamed)["message"] == (
        "the name of the object (lock) does not match the name on the URL (other)"
    )
    moved = lease_body("x")
    moved["metadata"]["namespace"] = "kube-system"
    refused = client.post(LEASES, json=moved)
    assert refused.status_code == 400
    assert status(refused)["reason"] == "BadRequest"


def test_creating_in_a_namespace_that_does_not_exist_is_404(client: httpx.Client) -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/nowhere/leases"
    refused = client.post(path, json=lease_body())
    assert refused.status_code == 404
    body = status(refused)
    assert body["message"] == 'namespaces "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}
    assert client.get(f"{path}/lock").status_code == 404


def test_list_answers_a_lease_list(api: LeaseAPI, client: httpx.Client) -> None:
    client.post(LEASES, json=lease_body("b"))
    client.post(LEASES, json=lease_body("a"))
    listed = client.get(LEASES).json()
    assert listed["kind"] == "LeaseList"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["a", "b"]
    assert "kind" not in listed["items"][0]
    latest = stored(api, "a")["metadata"]["resourceVersion"]
    assert listed["metadata"]["resourceVersion"] == latest


def test_no_or_an_unknown_token_is_401(api: LeaseAPI, client: httpx.Client) -> None:
    expected = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    for token in (None, "nobody"):
        with connect(api, token) as anonymous:
            answer = anonymous.get(f"{LEASES}/lock")
        assert answer.status_code == 401
        assert status(answer) == expected
    assert [r.token for r in api.log()] == [None, "nobody"]


def test_a_forbidden_verb_is_403_with_the_rbac_message(api: LeaseAPI, client: httpx.Client) -> None:
    api.service_account(OTHER, namespace="team")
    lease = client.post(LEASES, json=lease_body()).json()
    api.forbid("update")
    with connect(api, OTHER) as other:
        refused = other.put(f"{LEASES}/lock", json=lease)
    assert refused.status_code == 403
    assert status(refused) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'leases.coordination.k8s.io "lock" is forbidden: User '
        '"system:serviceaccount:team:default" cannot update resource "leases" in API group '
        '"coordination.k8s.io" in the namespace "default"',
        "reason": "Forbidden",
        "details": {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 403,
    }
    assert client.get(f"{LEASES}/lock").status_code == 200
    api.allow("update")
    api.forbid("create", TOKEN)
    denied = client.post(LEASES, json=lease_body("x"))
    assert status(denied)["message"].startswith(
        'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:default:default" '
        "cannot create"
    )
    assert client.put(f"{LEASES}/lock", json=lease).status_code == 200


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"leaseDurationSeconds": 0},
            "spec.leaseDurationSeconds",
            "Invalid value: 0: must be greater than 0",
        ),
        (
            {"leaseTransitions": -1},
            "spec.leaseTransitions",
            "Invalid value: -1: must be greater than or equal to 0",
        ),
    ],
)
def test_invalid_spec_values_are_422_with_causes(
    api: LeaseAPI, client: httpx.Client, spec: dict[str, Any], field: str, message: str
) -> None:
    refused = client.post(LEASES, json=lease_body(**spec))
    assert refused.status_code == 422
    body = status(refused)
    assert body["reason"] == "Invalid"
    assert body["message"] == f'Lease.coordination.k8s.io "lock" is invalid: {field}: {message}'
    assert body["details"] == {
        "name": "lock",
        "group": "coordination.k8s.io",
        "kind": "Lease",
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
    }
    assert api.lease("default", "lock") is None


def test_metadata_is_validated_like_the_real_server(client: httpx.Client) -> None:
    bad_name = client.post(LEASES, json=lease_body("Not_A_Name"))
    assert bad_name.status_code == 422
    assert "a lowercase RFC 1123 subdomain" in status(bad_name)["message"]

    no_name = client.post(LEASES, json={"spec": {}})
    assert status(no_name)["message"] == (
        'Lease.coordination.k8s.io "" is invalid: metadata.name: Required value: '
        "name or generateName is required"
    )

    big = lease_body()
    big["metadata"]["annotations"] = {"a": "x" * (256 * 1024)}
    too_big = client.post(LEASES, json=big)
    assert too_big.status_code == 422
    assert status(too_big)["details"]["causes"] == [
        {
            "reason": "FieldValueTooLong",
            "message": "Too long: must have at most 262144 bytes",
            "field": "metadata.annotations",
        }
    ]
    big["metadata"]["annotations"] = {"a": "x" * (256 * 1024 - 1)}
    big["metadata"]["labels"] = {"app": "metric-reader"}
    kept = client.post(LEASES, json=big)
    assert kept.status_code == 201
    assert kept.json()["metadata"]["labels"] == {"app": "metric-reader"}
    assert kept.json()["metadata"]["annotations"] == big["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"renewTime": "2026-11-25T10:00:00Z"}, 'parsing time "2026-11-25T10:00:00Z"'),
        ({"acquireTime": "yesterday"}, 'parsing time "yesterday"'),
        ({"leaseDurationSeconds": "15"}, "LeaseSpec.spec.leaseDurationSeconds of type int32"),
        ({"leaseDurationSeconds": 1.5}, "LeaseSpec.spec.leaseDurationSeconds of type int32"),
        ({"holderIdentity": 7}, "LeaseSpec.spec.holderIdentity of type string"),
    ],
)
def test_values_of_the_wrong_shape_are_400_decode_errors(
    client: httpx.Client, spec: dict[str, Any], fragment: str
) -> None:
    refused = client.post(LEASES, json=lease_body(**spec))
    assert refused.status_code == 400
    body = status(refused)
    assert body["reason"] == "BadRequest"
    assert body["message"].startswith('Lease in version "v1" cannot be handled as a Lease: ')
    assert fragment in body["message"]


def test_microtimes_are_stored_in_utc_and_unknown_fields_dropped_with_a_warning(
    client: httpx.Client,
) -> None:
    created = client.post(
        LEASES, json=lease_body(renewTime="2026-11-25T12:00:00.123456+02:00", future=True)
    )
    assert created.status_code == 201
    assert created.json()["spec"]["renewTime"] == "2026-11-25T10:00:00.123456Z"
    assert "future" not in created.json()["spec"]
    assert created.headers.get_list("warning") == ['299 - "unknown field \\"spec.future\\""']
    strict = client.post(
        LEASES, params={"fieldValidation": "Strict"}, json=lease_body("x", future=True)
    )
    assert strict.status_code == 400
    assert status(strict)["message"] == 'strict decoding error: unknown field "spec.future"'


def test_what_is_not_served_is_404_405_or_415(client: httpx.Client) -> None:
    unknown = client.get("/apis/coordination.k8s.io/v1/namespaces/default/leasez")
    assert unknown.status_code == 404
    assert status(unknown)["message"] == "the server could not find the requested resource"
    assert status(client.delete(f"{LEASES}/lock"))["reason"] == "MethodNotAllowed"
    assert client.put(LEASES, json=lease_body()).status_code == 405
    as_yaml = client.post(LEASES, content=b"metadata: {}", headers={"Content-Type": "text/yaml"})
    assert as_yaml.status_code == 415


def test_a_create_carrying_a_resource_version_fails_like_the_storage_layer(
    client: httpx.Client,
) -> None:
    body = lease_body()
    body["metadata"]["resourceVersion"] = "7"
    refused = client.post(LEASES, json=body)
    assert refused.status_code == 500
    assert (
        status(refused)["message"] == "resourceVersion should not be set on objects to be created"
    )


def test_concurrent_updates_from_one_version_let_exactly_one_through(
    api: LeaseAPI, client: httpx.Client
) -> None:
    lease = client.post(LEASES, json=lease_body()).json()
    codes: list[int] = []

    def take(holder: str) -> None:
        with connect(api) as http:
            mine = lease | {"spec": lease["spec"] | {"holderIdentity": holder}}
            codes.append(http.put(f"{LEASES}/lock", json=mine).status_code)

    racers = [threading.Thread(target=take, args=(f"r{i}",)) for i in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(codes) == [200] + [409] * 7
    winner = stored(api)["spec"]["holderIdentity"]
    assert [h for _, h in api.holders()] == ["a", winner]


# --- the service account --------------------------------------------------------------------


def test_the_service_account_directory_is_what_kubelet_mounts(api: LeaseAPI) -> None:
    sa = api.service_account(TOKEN, namespace="team")
    assert (sa / "token").read_text() == TOKEN
    assert (sa / "namespace").read_text() == "team"
    assert (sa / "ca.crt").read_bytes() == api.ca_file.read_bytes()
    for name in ("token", "namespace", "ca.crt"):
        assert os.readlink(sa / name) == f"..data/{name}"
    assert api.env(sa) == {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(api.port),
        "KUBERNETES_SERVICE_ACCOUNT_DIR": str(sa),
    }
    with connect(api) as http:
        path = "/apis/coordination.k8s.io/v1/namespaces/team/leases"
        assert http.post(path, json=lease_body()).status_code == 201


def test_token_rotation_swaps_the_file_atomically_and_keeps_the_old_token_for_a_while(
    api: LeaseAPI,
) -> None:
    sa = api.service_account(TOKEN)
    before = os.readlink(sa / "..data")
    api.rotate_token(TOKEN, "token-rotated", sa)
    assert (sa / "token").read_text() == "token-rotated"
    assert os.readlink(sa / "..data") != before
    assert not (sa / before).exists()
    with connect(api, "token-rotated") as new, connect(api, TOKEN) as old:
        assert new.get(f"{LEASES}/lock").status_code == 404
        assert old.get(f"{LEASES}/lock").status_code == 404

    api.rotate_token("token-rotated", "token-third", sa, old_valid_for=0)
    with connect(api, "token-rotated") as revoked, connect(api, "token-third") as third:
        assert revoked.get(f"{LEASES}/lock").status_code == 401
        assert third.get(f"{LEASES}/lock").status_code == 404


# --- faults ---------------------------------------------------------------------------------


def test_latency_delays_every_answer(api: LeaseAPI, client: httpx.Client) -> None:
    api.latency(1.0)
    started = time.monotonic()
    answer = client.post(LEASES, json=lease_body())
    elapsed = time.monotonic() - started
    assert answer.status_code == 201
    assert elapsed >= 1.0
    api.latency(0)
    started = time.monotonic()
    client.get(f"{LEASES}/lock")
    assert time.monotonic() - started < 0.8  # no latency left, with room for a busy machine


def test_a_client_that_gives_up_during_latency_may_still_have_written(
    api: LeaseAPI, client: httpx.Client
) -> None:
    api.latency(0.5)
    with connect(api, timeout=0.1) as hasty, pytest.raises(httpx.ReadTimeout):
        hasty.post(LEASES, json=lease_body())
    assert api.lease("default", "lock") is not None


def test_fail_answers_the_next_requests_with_the_real_error_then_recovers(
    api: LeaseAPI, client: httpx.Client
) -> None:
    api.fail(500, times=2)
    for _ in range(2):
        failed = client.post(LEASES, json=lease_body())
        assert failed.status_code == 500
        assert status(failed)["reason"] == "InternalError"
    assert api.lease("default", "lock") is None
    assert client.post(LEASES, json=lease_body()).status_code == 201

    api.fail(429)
    for _ in range(2):
        throttled = client.get(f"{LEASES}/lock")
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "1"
        assert status(throttled)["reason"] == "TooManyRequests"
    api.fail(503)
    assert status(client.get(f"{LEASES}/lock"))["reason"] == "ServiceUnavailable"
    api.fail(None)
    assert client.get(f"{LEASES}/lock").status_code == 200


def test_a_hung_token_times_out_while_another_token_is_served(
    api: LeaseAPI, client: httpx.Client
) -> None:
    api.service_account(OTHER)
    lease = client.post(LEASES, json=lease_body()).json()
    api.cut_off(TOKEN)
    with connect(api, timeout=0.3) as hung, pytest.raises(httpx.ReadTimeout):
        hung.put(f"{LEASES}/lock", json=lease | {"spec": lease["spec"] | {"holderIdentity": "x"}})
    with connect(api, OTHER) as other:
        assert other.get(f"{LEASES}/lock").status_code == 200
    assert api.lease("default", "lock") == lease
    assert api.log()[1] == Request(api.log()[1].time, "PUT", f"{LEASES}/lock", TOKEN, None, None)

    api.restore(TOKEN)
    assert client.get(f"{LEASES}/lock").status_code == 200


def test_a_hung_request_is_dropped_unanswered_on_restore(
    api: LeaseAPI, client: httpx.Client
) -> None:
    api.cut_off(TOKEN)
    threading.Timer(0.2, api.restore, args=(TOKEN,)).start()
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{LEASES}/lock")
    assert client.get(f"{LEASES}/lock").status_code == 404


def test_a_reset_token_gets_its_connection_reset(api: LeaseAPI, client: httpx.Client) -> None:
    """Through Python's ssl module a reset usually reads as an early EOF, so httpx may say
    "Server disconnected" rather than "Connection reset"; underneath it is a TCP RST."""
    api.service_account(OTHER)
    api.cut_off(TOKEN, mode="reset")
    started = time.monotonic()
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.post(LEASES, json=lease_body())
    assert time.monotonic() - started < 2.0
    assert api.lease("default", "lock") is None
    with connect(api, OTHER) as other:
        assert other.post(LEASES, json=lease_body()).status_code == 201
    api.restore(TOKEN)
    assert client.get(f"{LEASES}/lock").status_code == 200


def test_reset_is_a_tcp_reset(api: LeaseAPI) -> None:
    api.service_account(TOKEN)
    api.cut_off(TOKEN, mode="reset")
    request = f"GET {LEASES}/lock HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    context = ssl.create_default_context(cafile=str(api.ca_file))
    connection = socket.create_connection((api.host, api.port), timeout=5.0)
    with context.wrap_socket(connection, server_hostname=api.host) as tls:
        tls.sendall(request.encode())
        with socket.socket(fileno=os.dup(tls.fileno())) as tcp:
            tcp.settimeout(5.0)
            with pytest.raises(ConnectionResetError):
                while tcp.recv(65536):
                    pass


def test_down_refuses_connections_and_up_serves_again_on_the_same_port(
    api: LeaseAPI, client: httpx.Client
) -> None:
    created = client.post(LEASES, json=lease_body()).json()
    port = api.port
    api.down()
    with pytest.raises(httpx.ConnectError):
        client.get(f"{LEASES}/lock")
    api.up()
    assert api.port == port
    assert client.get(f"{LEASES}/lock").json() == created


def test_down_breaks_a_request_in_flight(api: LeaseAPI, client: httpx.Client) -> None:
    """The request waits 5 s for its answer; the API goes down 1 s into it (time enough for a
    busy machine to have sent it: at 0.2 s it was sometimes cut before it was read)."""
    api.latency(5.0)
    threading.Timer(1.0, api.down).start()
    started = time.monotonic()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(f"{LEASES}/lock")
    assert time.monotonic() - started < 4.0  # cut, not answered after the 5 s
    assert api.log()[-1].status is None


# --- arranging and inspecting ---------------------------------------------------------------


def test_set_and_delete_lease_arrange_states_a_client_then_sees(
    api: LeaseAPI, client: httpx.Client
) -> None:
    renewed = dt.datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=dt.UTC)
    stored = api.set_lease(
        "default",
        "lock",
        {"holderIdentity": "ghost", "leaseDurationSeconds": 15, "renewTime": renewed},
    )
    assert stored["spec"]["renewTime"] == microtime(renewed) == "2026-11-25T10:00:00.123456Z"
    assert client.get(f"{LEASES}/lock").json() == stored
    with pytest.raises(ValueError, match="must be greater than 0"):
        api.set_lease("default", "lock", {"leaseDurationSeconds": 0})
    assert api.delete_lease("default", "lock")
    assert not api.delete_lease("default", "lock")
    assert client.get(f"{LEASES}/lock").status_code == 404
    assert [h for _, h in api.holders("default", "lock")] == ["ghost", ""]
