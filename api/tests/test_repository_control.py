"""Which model version answered (X-Model-Version, /ready, /metrics) and the repository routes (load / unload /
index) against a real redis-server; the routes answer local or admin clients only."""

import io

from prometheus_client.parser import text_string_to_metric_families

from resnet_common import protocol
import fleet
from fakeworker import FakeWorker, heartbeat, ok_result

LOAD = "/v2/repository/models/resnet50/load"
UNLOAD = "/v2/repository/models/resnet50/unload"
REMOTE = {"REMOTE_ADDR": "198.18.0.7"}


def control(r) -> dict:
    return {k.decode(): v.decode() for k, v in r.hgetall(protocol.model_control_key("resnet50")).items()}


def fleet_of(r, *versions: str, seen: str = "1,2,3") -> None:
    for i, version in enumerate(versions):
        heartbeat(r, f"w{i}", model_version=version, model_sha256=f"sha-{version}", repository_versions=seen)


def test_predict_names_the_version_in_a_header_and_keeps_the_json(client, redis_env, redis_server, photo):
    with FakeWorker(redis_server.port, lambda f: ok_result(f) | {"model_version": "7"}):
        response = client.post("/predict", data={"file": (io.BytesIO(photo()), "cat.jpg")})
    assert response.status_code == 200 and response.headers["X-Model-Version"] == "7"
    assert set(response.get_json()) == {"success", "prediction", "score"}


def test_ready_and_metrics_show_each_workers_version(client, redis_env):
    fleet_of(redis_env, "1", "2", "2")
    body = client.get("/ready").get_json()
    assert sorted(w["model_version"] for w in body["workers"]) == ["1", "2", "2"]
    assert body["model_versions"] == ["1", "2"] and fleet.served_versions(fleet.live_workers(redis_env)) == ["1", "2"]
    fams = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    info = {s.labels["version"]: s.value for s in fams["ml_model_version_info"].samples}
    assert info == {"1": 1.0, "2": 2.0}


def test_load_pins_a_version_and_load_without_one_clears_the_policy(client, redis_env):
    fleet_of(redis_env, "3")
    response = client.post(LOAD, json={"parameters": {"version": "1"}})
    assert response.status_code == 200 and response.get_json()["pinned"] == "1"
    assert control(redis_env)["pin"] == "1"
    assert client.post(LOAD).status_code == 200 and control(redis_env) == {}


def test_load_refuses_unknown_versions_models_and_parameters(client, redis_env):
    fleet_of(redis_env, "3")
    assert client.post(LOAD, json={"parameters": {"version": "9"}}).status_code == 404
    assert client.post("/v2/repository/models/other/load").status_code == 404
    assert client.post(LOAD, json={"parameters": {"version": "-1"}}).status_code == 400
    assert client.post(LOAD, json={"parameters": {"config": "{}"}}).status_code == 400
    assert client.post(LOAD, data="not json", content_type="application/json").status_code == 400
    assert client.post(LOAD, data="[" * 10_000, content_type="application/json").status_code == 400
    for digits in ("²", "٣", "１"):  # str.isdigit() takes them; int() refuses the first, reads the others as 3 and 1
        response = client.post(LOAD, json={"parameters": {"version": digits}})
        assert response.status_code == 400 and "positive integer" in response.get_json()["error"], digits
    assert control(redis_env) == {}


def test_a_failure_in_a_repository_route_is_a_v2_error_not_the_pages_redirect(client, redis_env, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(fleet, "live_workers", broken)
    response = client.post(LOAD, json={"parameters": {"version": "2"}})
    assert response.status_code == 500 and response.get_json() == {"error": "internal error"}
    assert client.post("/v2/repository/index").get_json() == {"error": "internal error"}


def test_unload_drops_the_served_version_and_never_the_last_one(client, redis_env):
    fleet_of(redis_env, "3", "3")
    response = client.post(UNLOAD)
    assert response.status_code == 200 and response.get_json()["unloaded"] == ["3"]
    assert control(redis_env) == {"unloaded": "3"}
    assert client.post(UNLOAD, json={"parameters": {"version": "2"}}).status_code == 200
    refused = client.post(UNLOAD, json={"parameters": {"version": "1"}})
    assert refused.status_code == 409 and "no version to serve" in refused.get_json()["error"]
    assert control(redis_env) == {"unloaded": "2,3"}
    client.post(LOAD, json={"parameters": {"version": "3"}})  # loading a version takes it off the unloaded list
    assert control(redis_env) == {"pin": "3", "unloaded": "2"}


def test_unload_without_a_version_needs_one_served_repository_version(client, redis_env):
    heartbeat(redis_env, "outside", model_version="")  # a MODEL_DIR outside a repository: nothing to unload
    refused = client.post(UNLOAD)
    assert refused.status_code == 409 and "name the version to unload" in refused.get_json()["error"]
    fleet_of(redis_env, "2", "3")  # a rolling switch: which one is meant is not clear either
    assert client.post(UNLOAD).status_code == 409 and control(redis_env) == {}


def test_index_lists_versions_with_their_state(client, redis_env):
    fleet_of(redis_env, "2")
    redis_env.hset(protocol.model_control_key("resnet50"), "unloaded", "3")
    rows = client.post("/v2/repository/index").get_json()
    assert [(r["version"], r["state"], r["reason"]) for r in rows] == [
        ("1", "UNAVAILABLE", "not served by the policy"),
        ("2", "READY", ""),
        ("3", "UNAVAILABLE", "unloaded"),
    ]


def test_a_hand_edited_policy_is_read_past_and_rewritten_clean(client, redis_env):
    fleet_of(redis_env, "2", "3")
    key = protocol.model_control_key("resnet50")
    redis_env.hset(key, mapping={"pin": "x", "unloaded": "1,²,b,".encode() + b"\xff"})
    rows = client.post("/v2/repository/index").get_json()
    assert [(r["version"], r["reason"]) for r in rows] == [("1", "unloaded"), ("2", ""), ("3", "")]
    response = client.post(UNLOAD, json={"parameters": {"version": "2"}})
    assert response.status_code == 200 and response.get_json()["unloaded"] == ["1", "2"]
    assert control(redis_env) == {"unloaded": "1,2"}


def test_remote_clients_are_refused_unless_they_hold_the_admin_token(client, redis_env, monkeypatch):
    fleet_of(redis_env, "3")
    assert client.post(LOAD, environ_base=REMOTE).status_code == 403
    spoofed = client.post(LOAD, headers={"X-Forwarded-For": "127.0.0.1, 198.18.0.7"})
    assert spoofed.status_code == 403  # nginx appends the real peer: one non-loopback hop is enough to refuse
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret")
    assert client.post(LOAD, environ_base=REMOTE, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.post(LOAD, environ_base=REMOTE, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_without_redis_every_repository_route_is_a_v2_503_with_retry_after(client):
    for path in ("/v2/repository/index", LOAD, UNLOAD):  # Redis: a closed port (conftest)
        response = client.post(path)
        assert response.status_code == 503 and response.headers["Retry-After"], path
        assert response.get_json() == {"error": "queue unavailable: ConnectionError"}, path
