"""What the model fleet answers per second, from the speed the model card measured: the input of admission sizing.

    python capacity.py      # one JSON line: workers, threads, batch_size, variant, img_s and where img_s comes from

deploy/render.py runs this (in the model service's own settings and topology) to size nginx's MAX_INFLIGHT and
Retry-After. The card's `speed` entry is a timing at conversion (fp32 and INT8 interleaved, `threads` intra-op
threads, batch `batch`, median of rounds), so the figure belongs to the machine that converted the model; it is
scaled linearly to the cores the fleet uses (WORKERS × THREADS, at most the cores present).
"""

from __future__ import annotations

import json
from typing import Any

import settings
from repository import start_folder
from session import available_cores, read_card, resolve_topology


def measured_img_s(card: dict, variant: str) -> tuple[float | None, dict]:
    """(images/s of `variant` as the card measured it, the speed entry it came from); None when not measured."""
    for entry in card.get("variants", {}).values():
        speed = entry.get("speed") or {}
        rate = speed.get(f"{variant}_img_s")
        if isinstance(rate, int | float) and rate > 0:
            return float(rate), speed
    return None, {}


def fleet_capacity(cfg: settings.Settings, cores: int | None = None) -> dict[str, Any]:
    """The fleet's topology and its estimated images/s (img_s None when the card measured nothing for the variant)."""
    cores = cores or available_cores()
    workers, threads = resolve_topology(cfg, cores)
    out: dict[str, Any] = {"workers": workers, "threads": threads, "batch_size": cfg.BATCH_SIZE, "cores": cores}
    try:
        card = read_card(start_folder(cfg))
    except (OSError, ValueError) as exc:
        return {**out, "variant": cfg.MODEL_VARIANT or None, "img_s": None, "source": f"no model card: {exc}"}
    variant = cfg.MODEL_VARIANT or card.get("serve", "fp32")
    rate, speed = measured_img_s(card, variant)
    if rate is None:
        return {**out, "variant": variant, "img_s": None, "source": "the model card has no speed figure for it"}
    measured_cores = max(1, min(int(speed.get("threads") or 1), cores))
    fleet_cores = min(workers * threads, cores)
    return {
        **out,
        "variant": variant,
        "img_s": round(rate * fleet_cores / measured_cores, 2),
        "source": (
            f"model card: {rate} img/s at {speed.get('threads')} threads, batch {speed.get('batch')}, "
            f"load average {speed.get('load_avg_1m')} when measured; scaled to {fleet_cores} of {cores} cores"
        ),
    }


if __name__ == "__main__":
    print(json.dumps(fleet_capacity(settings.load())))
