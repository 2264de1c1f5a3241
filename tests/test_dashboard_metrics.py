"""Every metric the Grafana dashboard queries is exported by the real service, scraped the cluster's way: the
API's own metrics on its METRICS_PORT (workers not merged), the worker on its own metrics port, and nginx's
refusals on its own."""

from __future__ import annotations

import json
import re

import requests
from prometheus_client.parser import text_string_to_metric_families

from testkit import REPO, Stack, free_port, post_photo

DASHBOARD = REPO / "deploy" / "observability" / "grafana" / "dashboards" / "resnet-inference.json"
SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def dashboard_metric_names() -> set[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    return {m for e in exprs for m in re.findall(r"\b((?:api|ml|nginx)_[a-z0-9_]+)\b", e)}


def exported(text: str) -> set[str]:
    """Family names (declared, even without samples yet) and every sample name."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {s.name for s in family.samples}
    return names


def is_exported(name: str, names: set[str]) -> bool:
    base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
    return name in names or (name.endswith("_total") and base in names)


def test_every_dashboard_metric_is_exported(tmp_path):
    api_metrics, worker_metrics = free_port(), free_port()
    stack = Stack(tmp_path, env={"METRICS_PORT": api_metrics, "METRICS_MERGE_WORKERS": "0"}, model=False)
    try:
        stack.start()
        stack.start_model_host(METRICS_PORT=worker_metrics, WORKERS=1)  # its own metrics port, not the API's
        stack.wait_ready(1)
        assert post_photo(stack.url, "cat.jpg").status_code == 200
        bad = requests.post(stack.url + "/predict", files={"file": ("x.jpg", b"not an image")}, timeout=10)
        assert bad.status_code == 400
        too_long = requests.get(stack.url + "/predict?" + "q" * 9000, timeout=10)
        assert too_long.status_code == 414  # nginx's own answer
        assert requests.get(stack.url + "/metrics", timeout=5).status_code == 404  # not on the public port
        api_text = requests.get(f"http://127.0.0.1:{api_metrics}/metrics", timeout=10).text
        worker_text = requests.get(f"http://127.0.0.1:{worker_metrics}/metrics", timeout=10).text
        nginx_text = requests.get(stack.nginx_metrics_url, timeout=10).text
    finally:
        stack.stop()
    api_names, worker_names, nginx_names = exported(api_text), exported(worker_text), exported(nginx_text)
    merged = sorted(n for n in api_names if n.startswith("ml_worker_"))
    assert not merged, f"worker figures merged into the API's scrape: {merged}"
    wanted = dashboard_metric_names()
    assert len(wanted) >= 12, wanted
    missing = sorted(n for n in wanted if not is_exported(n, api_names | worker_names | nginx_names))
    assert not missing, f"the dashboard queries metrics nobody exports: {missing}"
