"""Per-stage profile of a load phase from the stack's own /metrics: scrape before and after, diff the histograms.

The mean of a stage over the phase is (sum_after - sum_before) / (count_after - count_before) of its Prometheus
histogram, summed over the `worker` label. Inference is timed per batch, so it is also divided by the images
of those batches (the batch-size histogram's sum) to give milliseconds per image.
"""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

Totals = dict[str, tuple[float, float]]  # family name -> (sum, count)

WORKER = {
    "preprocess": "ml_worker_preprocess_seconds",
    "inference": "ml_worker_inference_seconds",
    "queue_wait": "ml_worker_queue_wait_seconds",
    "batch": "ml_worker_batch_size",
}
INFERENCE_CPU = "ml_worker_inference_cpu_seconds"  # a counter: its total lands in the (sum, count) pair's sum
API_LATENCY = "api_request_latency_seconds"
API_DECODE = "api_preprocess_seconds"  # decoding each upload to the model's pixels, in the API
API_ENDPOINT = "/predict"


def parse(text: str) -> Totals:
    """Histogram (sum, count) per family, added up over workers; the API latency only for /predict."""
    out: Totals = {}
    wanted = set(WORKER.values()) | {API_LATENCY, API_DECODE, INFERENCE_CPU}
    for family in text_string_to_metric_families(text):
        if family.name not in wanted:
            continue
        total, count = out.get(family.name, (0.0, 0.0))
        for s in family.samples:
            if family.name == API_LATENCY and s.labels.get("endpoint") != API_ENDPOINT:
                continue
            if s.name.endswith(("_sum", "_total")):
                total += s.value
            elif s.name.endswith("_count"):
                count += s.value
        out[family.name] = (total, count)
    return out


def scrape(url: str, settle_s: float = 0.0, timeout: float = 10) -> Totals | str:
    """GET /metrics after `settle_s` (workers push their metrics every METRICS_PUSH_INTERVAL_S: let it land).

    A failed scrape returns its error text instead: the profile is lost, not the saturation figures."""
    time.sleep(settle_s)  # benchmark harness only: wait for a push so the scrape is not stale
    try:
        resp = requests.get(url.rstrip("/") + "/metrics", timeout=timeout)
        resp.raise_for_status()
        return parse(resp.text)
    except (requests.RequestException, ValueError) as exc:
        return f"/metrics scrape failed: {type(exc).__name__}: {exc}"[:300]


def _delta(before: Totals, after: Totals, name: str) -> tuple[float, float]:
    s0, c0 = before.get(name, (0.0, 0.0))
    s1, c1 = after.get(name, (0.0, 0.0))
    return s1 - s0, c1 - c0


def _ms(total: float, n: float) -> float | None:
    return round(1000 * total / n, 2) if n > 0 else None


def stage_ms(before: Totals | str, after: Totals | str) -> dict[str, float | str | None]:
    """Mean ms per image of each worker stage and of the API's /predict over the phase between the scrapes."""
    if isinstance(before, str) or isinstance(after, str):
        return {"error": before if isinstance(before, str) else after}
    pre_s, pre_n = _delta(before, after, WORKER["preprocess"])
    inf_s, batches = _delta(before, after, WORKER["inference"])
    images, _ = _delta(before, after, WORKER["batch"])
    wait_s, wait_n = _delta(before, after, WORKER["queue_wait"])
    api_s, api_n = _delta(before, after, API_LATENCY)
    dec_s, dec_n = _delta(before, after, API_DECODE)
    cpu_s, _ = _delta(before, after, INFERENCE_CPU)
    return {
        "images": int(images),
        "batches": int(batches),
        "mean_batch": round(images / batches, 2) if batches > 0 else None,
        "api_decode_per_image": _ms(dec_s, dec_n),
        "preprocess_per_image": _ms(pre_s, pre_n),
        "inference_per_image": _ms(inf_s, images),
        "inference_per_batch": _ms(inf_s, batches),
        "inference_cpu_s": round(cpu_s, 3),
        "queue_wait": _ms(wait_s, wait_n),
        "api_request": _ms(api_s, api_n),
        "api_requests": int(api_n),
    }
