"""The cluster and observability files, checked offline: `kubectl kustomize` builds every overlay, each core
object passes the Kubernetes schema (kubernetes-validate, strict), the KEDA ScaledObject and ServiceMonitors
are checked for structure and for agreeing with the settings, Prometheus files pass `promtool`, and the compose
`observability` profile passes `docker-compose config -q`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml
from resnet_common import protocol

from testkit import REPO

K8S = REPO / "deploy" / "k8s"
OBS = REPO / "deploy" / "observability"
OVERLAYS = ["dev", "production"]
KUBERNETES_VERSION = "1.32"
CORE_GROUPS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/install_system.sh --test-tools installs it")
    return path


def build(path) -> list[dict]:
    out = subprocess.run([_tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = by_kind(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, build(K8S / "overlays" / request.param)


def config_value(docs: list[dict], key: str) -> str:
    values = [cm["data"][key] for cm in by_kind(docs, "ConfigMap") if key in cm.get("data", {})]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def test_core_objects_pass_the_kubernetes_schema(overlay):
    name, docs = overlay
    core = [d for d in docs if d["apiVersion"] in CORE_GROUPS]
    assert {d["kind"] for d in core} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
    }
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert {d["apiVersion"] for d in docs} - CORE_GROUPS == {"keda.sh/v1alpha1"}, "unexpected custom resources"


def test_every_pod_is_locked_down_and_secrets_come_from_a_secret(overlay):
    _, docs = overlay
    for workload in by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            for env in c.get("env", []):
                if env["name"] in ("SECRET_KEY", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"):
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], env
            assert c["resources"]["requests"] and c["resources"]["limits"]


def test_api_probes_grace_autoscaling_and_private_metrics(overlay):
    _, docs = overlay
    api = one(docs, "Deployment", "api")["spec"]["template"]["spec"]
    container = api["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready/accept"  # Redis reachable, no worker needed
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["terminationGracePeriodSeconds"] > float(config_value(docs, "REQUEST_TIMEOUT_S"))
    metrics_port = int(config_value(docs, "METRICS_PORT"))
    assert {p["containerPort"] for p in container["ports"]} == {5000, metrics_port}
    service = one(docs, "Service", "api")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"], "the public Service exposes metrics"
    assert config_value(docs, "METRICS_MERGE_WORKERS") == "0", "worker figures would be counted per API replica"
    assert "replicas" not in one(docs, "Deployment", "api")["spec"], "the HPA owns the replica count"
    hpa = one(docs, "HorizontalPodAutoscaler", "api")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "api" and hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb = one(docs, "PodDisruptionBudget", "api")["spec"]
    assert pdb["minAvailable"] < hpa["minReplicas"], "the PDB would block every node drain"


def test_model_whole_cores_memory_probes_and_grace(overlay):
    _, docs = overlay
    model = one(docs, "Deployment", "model")["spec"]["template"]["spec"]
    c = model["containers"][0]
    req, lim = c["resources"]["requests"], c["resources"]["limits"]
    assert req["cpu"] == lim["cpu"] and re.fullmatch(r"[1-9]\d*", str(lim["cpu"])), "integer CPU, requests = limits"
    assert req["memory"] == lim["memory"]
    mib = (
        int(re.fullmatch(r"(\d+)Mi", lim["memory"]).group(1))
        if lim["memory"].endswith("Mi")
        else int(re.fullmatch(r"(\d+)Gi", lim["memory"]).group(1)) * 1024
    )
    assert mib >= 600, "below the measured ~410 MB RSS of an fp32 worker at batch 8 plus headroom"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert model["terminationGracePeriodSeconds"] >= 10
    assert (
        one(docs, "PodDisruptionBudget", "model")["spec"]["selector"]["matchLabels"]
        == one(docs, "Deployment", "model")["spec"]["selector"]["matchLabels"]
    )


def _env_names(container: dict, docs: list[dict]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    return names


def test_keda_scaledobject_watches_the_job_stream_length(overlay):
    name, docs = overlay
    so = one(docs, "ScaledObject", "model")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    target = one(docs, "Deployment", spec["scaleTargetRef"]["name"])
    assert target["metadata"]["name"] == "model" and "replicas" not in target["spec"], "KEDA owns the count"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert set(spec) <= {
        "scaleTargetRef",
        "pollingInterval",
        "cooldownPeriod",
        "minReplicaCount",
        "maxReplicaCount",
        "advanced",
        "triggers",
        "fallback",
        "idleReplicaCount",
    }
    [trigger] = spec["triggers"]
    assert trigger["type"] == {"dev": "redis-streams", "production": "redis-sentinel-streams"}[name]
    meta = trigger["metadata"]
    assert meta["stream"] == protocol.JOB_STREAM
    # XLEN: KEDA uses it only without consumerGroup (with one it switches to pendingEntriesCount).
    assert "consumerGroup" not in meta and "pendingEntriesCount" not in meta and "lagCount" not in meta
    target_len = int(meta["streamLength"])
    assert target_len * spec["maxReplicaCount"] <= int(config_value(docs, "MAX_QUEUE_DEPTH")), (
        "MAX_QUEUE_DEPTH caps XLEN below what maxReplicaCount needs"
    )
    env = _env_names(target["spec"]["template"]["spec"]["containers"][0], docs)
    for key, value in meta.items():
        if key.endswith("FromEnv"):
            assert value in env, f"{key}: {value} is not in the model container's environment"
    if name == "production":
        assert {"addressesFromEnv", "sentinelMasterFromEnv"} <= set(meta)
        assert "REDIS_SENTINELS" in env and "REDIS_SENTINEL_MASTER" in env


def test_dev_overlay_runs_its_own_redis_and_production_an_external_sentinel_set():
    dev, prod = build(K8S / "overlays" / "dev"), build(K8S / "overlays" / "production")
    assert one(dev, "StatefulSet", "redis") and config_value(dev, "REDIS_HOST") == "redis"
    assert not by_kind(prod, "StatefulSet") and not by_kind(prod, "Secret"), "production keeps no secret in git"
    sentinels = config_value(prod, "REDIS_SENTINELS").split(",")
    assert len(sentinels) >= 3 and all(re.fullmatch(r"[\w.-]+:\d+", s) for s in sentinels)


def test_servicemonitors_scrape_each_pod_on_the_metrics_port():
    docs = build(K8S / "monitoring")
    for doc in by_kind(docs, "Service"):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["spec"]["clusterIP"] == "None"
    monitors = by_kind(docs, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"api", "model"}
    for m in monitors:
        assert m["apiVersion"] == "monitoring.coreos.com/v1"
        [endpoint] = m["spec"]["endpoints"]
        assert endpoint["port"] == "metrics"
        services = [
            s
            for s in by_kind(docs, "Service")
            if m["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert len(services) == 1 and services[0]["spec"]["ports"][0]["name"] == "metrics"


def dashboard_queries() -> list[str]:
    dash = json.loads((OBS / "grafana" / "dashboards" / "resnet-inference.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_prometheus_config_and_dashboard_queries_pass_promtool(tmp_path):
    promtool = _tool("promtool")
    out = subprocess.run([promtool, "check", "config", str(OBS / "prometheus.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every dashboard query, parsed by Prometheus' own parser as a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(dashboard_queries())],
            }
        ]
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    out = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # Debian's promtool is built without Kubernetes discovery: the pod-discovery config is checked here instead.
    k8s = yaml.safe_load((OBS / "prometheus-k8s.yml").read_text())
    [job] = k8s["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    for rule in job["relabel_configs"]:
        re.compile(rule.get("regex", "(.*)"))
        assert rule.get("action", "replace") in ("keep", "replace")


def test_compose_observability_profile_is_valid():
    compose = _tool("docker-compose")
    out = subprocess.run(
        [
            compose,
            "--env-file",
            ".env.example",
            "-f",
            "docker-compose.yml",
            "--profile",
            "observability",
            "config",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    assert services["prometheus"]["profiles"] == ["observability"] == services["grafana"]["profiles"]
    mounted = " ".join(services["grafana"]["volumes"])
    assert "deploy/observability/grafana/dashboards" in mounted and "provisioning" in mounted
