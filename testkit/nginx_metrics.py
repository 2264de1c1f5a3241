"""nginx's own figures, as Prometheus reads them from its metrics listener (deploy/nginx/templates)."""

from __future__ import annotations

import re
from collections import Counter

import requests
from prometheus_client.parser import text_string_to_metric_families

from testkit.paths import REPO

TEMPLATE = REPO / "deploy" / "nginx" / "templates" / "default.conf.template"


def refusal_counts(url: str) -> Counter:
    """nginx_refusals_total at `url` by (refusal, code): the answers nginx made itself so far."""
    return parse_refusals(requests.get(url, timeout=5).text)


def parse_refusals(text: str) -> Counter:
    """nginx_refusals_total by (refusal, code) in a Prometheus text exposition."""
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return Counter(
        {(s.labels["refusal"], s.labels["code"]): int(s.value) for s in samples if s.name == "nginx_refusals_total"}
    )


def declared_answers() -> set[tuple[str, str]]:
    """The (refusal, code) pairs the template starts at zero (its Lua table ANSWERS)."""
    table = TEMPLATE.read_text().split("local ANSWERS = {")[1].split("}")[0]
    return {tuple(pair.split()) for pair in re.findall(r'"(\w+ \d{3})"', table)}
