"""The response cache through the real stack: identical bytes are answered from Redis, the same way."""

from __future__ import annotations

import re

import requests

from testkit.paths import PHOTOS


def cache_count(url: str, result: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    match = re.search(rf'^api_response_cache_total{{result="{result}"}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_identical_request_is_a_hit_with_the_same_answer(stack):
    data = (PHOTOS / "rocket.jpg").read_bytes()
    hits = cache_count(stack.url, "hit")

    def post() -> dict:
        response = requests.post(
            stack.url + "/predict?top_k=3", files={"file": ("r.jpg", data, "image/jpeg")}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()

    first, second = post(), post()
    assert second == first
    assert cache_count(stack.url, "hit") == hits + 1
    other = requests.post(stack.url + "/predict?top_k=2", files={"file": ("r.jpg", data, "image/jpeg")}, timeout=30)
    assert other.status_code == 200 and cache_count(stack.url, "hit") == hits + 1  # other top_k: a miss
    page = requests.post(stack.url + "/", files={"file": ("r.jpg", data, "image/jpeg")}, timeout=30)
    assert page.status_code == 200 and first["prediction"] in page.text  # the page shows it like any answer
