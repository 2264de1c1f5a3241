"""Locust load for the service: mostly POST /predict with real photos, some GET /, a little POST /feedback
(the previous answer, reported like the page does; failed unless the API says it was stored).

A 503 from /predict is the API's backpressure (queue full), not a crash: it is reported under its own name,
"/predict [503 backpressure]", so the /predict row counts only answered (or wrongly answered) predictions, and
the user waits the Retry-After it was given before trying again. Each user connects from its own loopback
address (testkit/source_addresses.py), so nginx's per-client limits see many clients, as in production. Headless example:

  python -m locust -f stress_test/locustfile.py --headless -u 4 -r 4 -t 30s --host http://127.0.0.1:5000 --csv out/u4

Environment: PHOTOS_DIR (default tests/data/photos), LOCUST_WAIT_S (think time per user, default 0 = closed
loop), LOCUST_TOP_K (ask /predict for top_k, default unset = the original three-key answer).
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path

from locust import HttpUser, between, constant, task

from stress_test.photos import PHOTOS_DIR, photo_bytes
from stress_test.unique import unique
from testkit.source_addresses import bind

PHOTOS = photo_bytes(Path(os.environ.get("PHOTOS_DIR", PHOTOS_DIR)))
WAIT_S = float(os.environ.get("LOCUST_WAIT_S", "0"))
TOP_K = os.environ.get("LOCUST_TOP_K", "")
RUN = uuid.uuid4().hex  # with id(user) and a counter: unique across users, runs and processes
BACKPRESSURE_NAME = "/predict [503 backpressure]"
MAX_RETRY_AFTER_S = 5.0
SEED_KEYS = {"success", "prediction", "score"}
CLIENT_INDEX = itertools.count()


class ServiceUser(HttpUser):
    """One client: predicts photos in a fixed rotation (offset per user), sometimes loads the page or reports."""

    wait_time = between(0.5 * WAIT_S, 1.5 * WAIT_S) if WAIT_S > 0 else constant(0)

    def on_start(self) -> None:
        bind(self.client, next(CLIENT_INDEX))  # each user connects from its own 127.0.x.y, as real clients do
        self.photos = itertools.cycle(PHOTOS[id(self) % len(PHOTOS) :] + PHOTOS[: id(self) % len(PHOTOS)])
        self.last: tuple[str, str, float] | None = None

    @task(2)
    def index(self) -> None:
        with self.client.get("/", name="GET /", catch_response=True) as resp:
            if resp.status_code != 200 or "<form" not in resp.text:
                resp.failure(f"index: status {resp.status_code}")

    @task(20)
    def predict(self) -> None:
        name, data = next(self.photos)
        self.sent = getattr(self, "sent", 0) + 1
        data = unique(data, f"{RUN}-{id(self)}-{self.sent}")  # unique bytes per request: the cache never answers
        url = f"/predict?top_k={TOP_K}" if TOP_K else "/predict"
        with self.client.post(
            url, files={"file": (name, data, "image/jpeg")}, name="/predict", catch_response=True
        ) as resp:
            if resp.status_code == 503:
                resp.request_meta["name"] = BACKPRESSURE_NAME
                resp.failure(f"503: {resp.headers.get('X-Error') or resp.text[:80]}")
                retry = float(resp.headers.get("Retry-After") or 1)
                self.wait_for(min(retry, MAX_RETRY_AFTER_S))
                return
            self._check_prediction(resp, name)

    @task(1)
    def feedback(self) -> None:
        """Report the previous answer the way the page does (JSON in `report`), asking for the API's JSON reply."""
        if self.last is None:  # nothing answered yet: there is no prediction to report
            return
        filename, prediction, score = self.last
        report = json.dumps({"filename": filename, "prediction": prediction, "score": score})
        with self.client.post(
            "/feedback",
            data={"report": report},
            headers={"Accept": "application/json"},
            name="/feedback",
            catch_response=True,
        ) as resp:
            try:
                stored = resp.status_code == 200 and resp.json() == {"success": True, "stored": True}
            except ValueError:
                stored = False
            if not stored:
                resp.failure(f"feedback not stored: status {resp.status_code} {resp.text[:80]}")

    def _check_prediction(self, resp, name: str) -> None:
        """200 with the original JSON answer and success true, or a failure saying what was wrong."""
        if resp.status_code != 200:
            resp.failure(f"predict: status {resp.status_code} {resp.text[:80]}")
            return
        try:
            body = resp.json()
        except ValueError:
            resp.failure("predict: body is not JSON")
            return
        expected = SEED_KEYS | ({"top_k"} if TOP_K else set())
        if body.get("success") is not True or set(body) != expected or not isinstance(body.get("score"), float):
            resp.failure(f"predict: unexpected body {str(body)[:80]}")
            return
        self.last = (name, body["prediction"], body["score"])

    def wait_for(self, seconds: float) -> None:
        """Honour Retry-After like a well-behaved client (gevent-friendly sleep; load-generator code only)."""
        import gevent

        gevent.sleep(seconds)
