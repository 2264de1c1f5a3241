"""service.Service starts the stack as `make run` serves it (testkit's Stack: supervisord, nginx in front) and
measures what the report needs."""

from __future__ import annotations

import requests

from stress_test.service import Service
from testkit import post_photo


def test_service_reports_ready_times_memory_and_cpu_per_part(tmp_path, tiny_model_dir):
    svc = Service(tmp_path / "svc", {"WORKERS": "2", "THREADS": "1", "MODEL_DIR": tiny_model_dir})
    try:
        started = svc.start(timeout=60)
        assert len(started["ready_s"]) == 2 and all(0 < s < 60 for s in started["ready_s"])
        assert len(started["rss_mb"]) == 2 and all(mb > 10 for mb in started["rss_mb"])
        answer = post_photo(svc.url, timeout=30)
        assert answer.json()["success"] is True and answer.headers["Server"].startswith("nginx")  # through nginx
        cpu = svc.cpu_seconds()
        assert {"redis", "model", "api", "nginx", "load_client", "other"} <= set(cpu)
        assert cpu["model"] > 0
        assert requests.get(svc.url + "/ready", timeout=5).status_code == 200
    finally:
        svc.stop()
    assert not any(svc.parts().values())  # every program's processes are gone
