"""Size load shedding from measured throughput: MAX_INFLIGHT and the Retry-After a shed client is given.

By Little's law an admitted request spends about MAX_INFLIGHT / throughput inside the service, so

    MAX_INFLIGHT = min(max((WORKERS + 1) × BATCH_SIZE, ceil(img/s × SHED_LATENCY_TARGET_S)),
                       GUNICORN_WORKERS × GUNICORN_THREADS)
    Retry-After  = max(1, ceil(MAX_INFLIGHT / img/s))     (whole seconds: HTTP allows no fractions)

The floor keeps every worker's next batch full while it runs the current one (throughput is never given up for
latency); the rate term scales the bound with the machine, so the latency target holds on a faster one too. The
ceiling is what the API serves at once: requests admitted beyond its threads wait in gunicorn's socket backlog in
no order admission controls, and there the slowest wait far longer than MAX_INFLIGHT / throughput.
Retry-After is the time the requests inside now take to be answered: when a slot is likely free again.
An explicit MAX_INFLIGHT or RETRY_AFTER_S wins. docs/operations.md, "Load shedding", has the reasoning.
"""

from __future__ import annotations

import math
from typing import Any


def derive(
    capacity: dict[str, Any],
    latency_target_s: float,
    max_inflight: int = 0,
    retry_after_s: int = 0,
    api_concurrency: int = 0,
) -> dict[str, Any]:
    """The bound and Retry-After with every input that made them (`capacity` as model/capacity.py prints it;
    `api_concurrency`: requests the API serves at once, GUNICORN_WORKERS × GUNICORN_THREADS, 0 for no ceiling)."""
    workers, batch = int(capacity.get("workers") or 1), int(capacity.get("batch_size") or 1)
    rate = capacity.get("img_s") or None
    floor = (workers + 1) * batch
    from_rate = math.ceil(rate * latency_target_s) if rate else None
    wanted = max(floor, from_rate or 0)
    bound = max_inflight if max_inflight > 0 else min(wanted, api_concurrency or wanted)
    retry = retry_after_s if retry_after_s > 0 else (max(1, math.ceil(bound / rate)) if rate else 1)
    return {
        "max_inflight": bound,
        "retry_after_s": retry,
        "max_inflight_source": "MAX_INFLIGHT"
        if max_inflight > 0
        else ("API threads" if bound < wanted else "rate" if (from_rate or 0) > floor else "floor"),
        "retry_after_source": "RETRY_AFTER_S" if retry_after_s > 0 else ("rate" if rate else "no measured rate"),
        "floor": floor,
        "from_rate": from_rate,
        "api_concurrency": api_concurrency or None,
        "expected_latency_s": round(bound / rate, 2) if rate else None,
        "latency_target_s": latency_target_s,
        "capacity": capacity,
    }


def bound_reason(shed: dict[str, Any]) -> str:
    """Where MAX_INFLIGHT came from, with every input: `make run`'s start line and the report say it alike."""
    cap = shed["capacity"]
    return (
        f"{shed['max_inflight_source']}: floor (WORKERS {cap.get('workers')} + 1) × BATCH_SIZE "
        f"{cap.get('batch_size')} = {shed['floor']}, rate × SHED_LATENCY_TARGET_S {shed['latency_target_s']} s = "
        f"{shed['from_rate']}"
        + (f", at most the API's threads {shed['api_concurrency']}" if shed.get("api_concurrency") else "")
    )


def fleet_rate(shed: dict[str, Any]) -> str:
    """The measured rate the derivation used, and where it was measured."""
    cap = shed["capacity"]
    return (
        f"{cap['img_s']} img/s ({cap.get('source')})" if cap.get("img_s") else f"no measured rate ({cap.get('source')})"
    )


def describe(shed: dict[str, Any]) -> str:
    """One line for `make run`'s start: the values and what they came from."""
    return (
        f"admission: MAX_INFLIGHT {shed['max_inflight']} ({bound_reason(shed)}), Retry-After "
        f"{shed['retry_after_s']} s ({shed['retry_after_source']}); fleet {fleet_rate(shed)}; expected latency at "
        f"the bound {shed['expected_latency_s']} s"
    )
