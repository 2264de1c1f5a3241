"""What running several API replicas in a cluster needs: readiness that does not wait for workers, metrics on
their own port without the workers' copies, and a page image any replica can serve (real redis-server)."""

import io
import re

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

import display_store
import images
import metrics_server
import views
from errors import QueueFull
from fakeworker import heartbeat
from middleware import Classification

WORKER_TEXT = "# HELP ml_worker_jobs_total Jobs\n# TYPE ml_worker_jobs_total counter\nml_worker_jobs_total 7\n"


def test_ready_to_accept_needs_redis_only(client, redis_env):
    assert client.get("/ready").status_code == 503  # no worker: the service as a whole cannot answer
    response = client.get("/ready/accept")
    assert response.status_code == 200 and response.get_json() == {"status": "ready", "redis": True}


def test_ready_to_accept_without_redis_is_503(client):
    response = client.get("/ready/accept")
    assert response.status_code == 503 and response.get_json()["redis"] is False


def names(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


def test_metrics_port_moves_metrics_off_the_public_port(client, monkeypatch):
    assert client.get("/metrics").status_code == 200
    monkeypatch.setenv("METRICS_PORT", "9100")
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("merge", ["0", "1"])
def test_metrics_server_merges_workers_only_when_asked(redis_env, monkeypatch, merge):
    monkeypatch.setenv("METRICS_MERGE_WORKERS", merge)
    heartbeat(redis_env, "w1", metrics=WORKER_TEXT)
    from prometheus_client import generate_latest

    text = generate_latest(metrics_server.registry()).decode()
    assert {"ml_queue_depth", "ml_workers_live", "ml_redis_up"} <= names(text)
    assert ("ml_worker_jobs" in names(text)) == (merge == "1")


def post_page(client, data: bytes):
    return client.post("/", data={"file": (io.BytesIO(data), "cat.jpg")}, content_type="multipart/form-data")


@pytest.fixture
def predict(monkeypatch):
    monkeypatch.setattr(
        views, "model_predict", lambda name, top_k=5, explain=False: Classification("tabby", 0.5, (("tabby", 0.5),))
    )


def test_another_replica_serves_the_page_image(client, redis_env, predict, photo, monkeypatch, tmp_path):
    data = photo("cat.jpg")
    page = post_page(client, data).get_data(as_text=True)
    src = re.search(r'src="(/display/[^"]+)"', page).group(1)
    # Replica B: its own (empty) local folder, the same Redis.
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path / "replica-b"))
    response = client.get(src)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(response.data)) as shown, Image.open(io.BytesIO(data)) as upload:
        assert shown.format == "JPEG" and max(shown.size) == images.DISPLAY_SIDE  # the rendition, not the upload
        assert abs(shown.width / shown.height - upload.width / upload.height) < 0.02
    assert len(response.data) < len(data)
    assert 0 < redis_env.ttl(display_store.key(src.rsplit("/", 1)[1])) <= 600
    redis_env.flushdb()  # expired from Redis and not on this replica's disk: a plain 404
    assert client.get(src).status_code == 404


def test_renditions_over_the_byte_bound_stay_local(client, redis_env, predict, photo, monkeypatch):
    monkeypatch.setenv("DISPLAY_MAX_BYTES", "1000")
    post_page(client, photo("cat.jpg"))
    assert not redis_env.keys(display_store.key("*"))


def test_display_store_drops_the_oldest_beyond_its_byte_bound(redis_env, monkeypatch):
    monkeypatch.setenv("DISPLAY_MAX_BYTES", str(3 * (1000 + 200)))
    for i in range(5):
        assert display_store.keep(f"{i:032x}.jpg", bytes([i]) * 1000)
    kept = sorted(k.decode() for k in redis_env.keys(display_store.key("*")))
    assert kept == [display_store.key(f"{i:032x}.jpg") for i in (2, 3, 4)]  # the two oldest were dropped
    assert int(redis_env.get(display_store.BYTES_KEY)) <= 3 * 1200


def test_nothing_is_kept_for_display_when_the_job_is_refused(client, redis_env, photo, monkeypatch):
    def queue_full(name, top_k=5, explain=False):
        raise QueueFull("queue is full")

    monkeypatch.setattr(views, "model_predict", queue_full)
    post_page(client, photo("cat.jpg"))
    assert not redis_env.keys(display_store.key("*"))


def test_sentinel_mode_finds_no_master_fast(client, monkeypatch):
    """Sentinels unreachable: readiness answers 503 at once instead of using REDIS_HOST/PORT."""
    from testkit import refused_port

    with refused_port() as port:
        monkeypatch.setenv("REDIS_SENTINELS", f"127.0.0.1:{port}")
        response = client.get("/ready/accept")
    assert response.status_code == 503 and "MasterNotFoundError" in response.get_json()["error"]
