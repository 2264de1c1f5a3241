"""service.Service starts the real stack (through testkit's Stack) and measures what the report needs."""

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
        assert post_photo(svc.url, timeout=30).json()["success"] is True
        cpu = svc.cpu_seconds()
        assert {"redis", "model", "api", "load_client", "other"} <= set(cpu) and cpu["model"] > 0
        assert requests.get(svc.url + "/ready", timeout=5).status_code == 200
    finally:
        svc.stop()
    assert all(proc.poll() is not None for proc in svc.parts().values())
