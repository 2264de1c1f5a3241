"""The report's "reading" section: sentences built from the measured figures, none written in advance."""

from __future__ import annotations

from stress_test.report_data import Figures, per_core, targets


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def cpu_profile(f: Figures) -> list[str]:
    """Where the CPU went during the best fp32 saturation run (process-level profile from psutil)."""
    best = f.e2e_best()
    used = dict((best or {}).get("saturation", {}).get("cpu_cores_used") or {})
    if not used:
        return []
    foreign = used.pop("other", 0.0)
    total = sum(used.values())
    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]))
    model_share = used.get("model", 0) / total if total else 0
    line = (
        f"- Profile of the saturation run of {best['config']} (CPU cores busy per process group, psutil): {parts}"
        f" (total {total:.2f} of {f.machine.get('cores')}); the model workers got {_pct(model_share)} of it."
    )
    others = total - used.get("model", 0)
    if best.get("sat_ok_per_s"):
        line += (
            f" Everything but the model cost {1000 * others / best['sat_ok_per_s']:.1f} ms of CPU per answered "
            f"request: CPU that the raw benchmark gives to inference and the service cannot."
        )
        raw_cores = best["workers"] * best["threads"]  # the raw run keeps workers x threads cores busy
        if best.get("raw_img_s") and raw_cores:
            model_ms = 1000 * used.get("model", 0) / best["sat_ok_per_s"]
            raw_ms = 1000 * raw_cores / best["raw_img_s"]
            ceiling = best["raw_img_s"] * used.get("model", 0) / raw_cores
            line += (
                f" Inside the workers an answered image cost {model_ms:.1f} ms of CPU against {raw_ms:.1f} ms in "
                f"the raw run of the same configuration; "
                + (
                    stage_profile(best)
                    or "the difference is decoding and preprocessing the upload and the queue I/O, which the raw "
                    "benchmark (preprocessed tensors) does not do."
                )
                + f" Even at raw "
                f"efficiency, the {used.get('model', 0):.2f} cores left to the workers cap this configuration at "
                f"{ceiling:.1f} img/s ({ceiling / best['raw_img_s']:.2f}x raw)."
            )
    if foreign > 0.1:
        line += f" Processes outside the service used {foreign:.2f} cores meanwhile, so this run is pessimistic."
    return [line]


def stage_profile(c: dict) -> str | None:
    """The per-stage means the workers measured during saturation (/metrics diff); None for older results."""
    st = (c.get("saturation") or {}).get("stages_ms") or {}
    pre, inf, rate = st.get("preprocess_per_image"), st.get("inference_per_image"), c.get("sat_ok_per_s")
    if pre is None or inf is None or not rate:
        return None
    text = (
        f"measured per stage (worker histograms scraped from /metrics before and after the run), preprocessing "
        f"took {pre:.1f} ms per image, which at {rate:.1f} img/s is {pre * rate / 1000:.2f} cores spent on it, "
        f"and inference {inf:.1f} ms per image (batches of {st.get('mean_batch') or 0:.1f} on average, "
        f"{st.get('inference_per_batch') or 0:.0f} ms each)"
    )
    raw = (c.get("raw_same_config") or {}).get("per_image_ms")
    if raw:
        text += f" against {raw:.1f} ms per image in the raw run of the same configuration ({inf / raw:.2f}x)"
    per_worker = 1000 * c["workers"] / rate  # wall ms each worker spent per answered image
    rest = per_worker - pre - inf
    idle = (
        f"the other {rest:.1f} ms ({_pct(rest / per_worker)}) went to queue I/O and waiting for work"
        if rest > 0.02 * per_worker
        else "so the workers did nothing else (within the measurement's noise)"
    )
    return (
        text + f". A worker preprocesses and then infers, one after the other: {pre:.1f} + {inf:.1f} ms of the "
        f"{per_worker:.1f} ms each of its {c['workers']} worker(s) spent per answered image; {idle}"
        + (
            f"; /predict took {st['api_request']:.0f} ms on average in the API, {st['queue_wait']:.0f} ms of it "
            f"waiting in the queue"
            if st.get("api_request") and st.get("queue_wait") is not None
            else ""
        )
        + "."
    )


def conditions(f: Figures) -> list[str]:
    """How trustworthy the run is: the real clock against the nominal one, and foreign load during it."""
    out, m = [], f.machine
    probe = m.get("fma_probe")
    if probe and m.get("clock_ghz"):
        ratio = probe["effective_ghz_1_core"] / m["clock_ghz"]
        if abs(ratio - 1) > 0.1:
            out.append(
                f"- Clock: the FMA probe ran at an effective {probe['effective_ghz_1_core']} GHz on one core, "
                f"{ratio:.2f}x the {m['clock_ghz']} GHz that /proc/cpuinfo reports, so fractions of the formula "
                "peak are off by that factor; the measured peak is the fairer denominator. On a shared host the "
                "clock moves with the neighbours' load, which is why the matrix also measures raw ONNX Runtime "
                "for each configuration right before its end-to-end run."
            )
    runs = f.bench.get("runs", [])
    noisy = [r for r in runs if (r.get("other_load_cores") or 0) > 0.2]
    if noisy:
        out.append(
            f"- Foreign load: {len(noisy)} of {len(runs)} raw configurations ran while other processes used "
            f"more than 0.2 cores (up to {max(r['other_load_cores'] for r in noisy):.2f}); those rows are low."
        )
    return out


def reading(f: Figures) -> list[str]:
    """Bullet points: bottleneck, latency/throughput trade-off, scaling advice, INT8, targets missed."""
    lines: list[str] = []
    raw, base, e2e = f.raw_best(), f.baseline, f.e2e_best()
    if raw:
        lines.append(
            f"- Raw ONNX Runtime fp32 peaks at {raw['img_s']:.1f} img/s with {raw['workers']} worker(s) x "
            f"{raw['threads']} thread(s), batch {raw['batch']}"
            + (f", {raw['peak_pct']:.0f}% of the nominal fp32 peak" if raw.get("peak_pct") else "")
            + (
                f" and {raw['img_s'] / base['img_s']:.1f}x the original app's Keras baseline ({base['img_s']:.1f} img/s)"
                if base
                else ""
            )
            + "."
        )
    singles = {(r["workers"], r["threads"]): r for r in f.raw() if r["batch"] == 1}
    if len(singles) > 1:
        fast = min(singles.values(), key=lambda r: r["p50_ms"])
        most = max(f.raw(), key=lambda r: r["img_s"])
        lines.append(
            f"- Latency vs throughput: the lowest single-image latency is {fast['p50_ms']:.0f} ms with "
            f"{fast['workers']}x{fast['threads']} ({fast['img_s']:.1f} img/s); the most images/s come from "
            f"{most['workers']}x{most['threads']} batch {most['batch']} ({most['img_s']:.1f} img/s, "
            f"batch p50 {most['p50_ms']:.0f} ms)."
        )
    pts = [p for p in per_core(f) if p["variant"] == "fp32"]
    if len(pts) > 1:
        eff = pts[-1]["img_s_per_core"] / pts[0]["img_s_per_core"]
        lines.append(
            f"- Scaling: {pts[0]['img_s_per_core']:.1f} img/s per core on {pts[0]['cores']} core(s), "
            f"{pts[-1]['img_s_per_core']:.1f} per core on {pts[-1]['cores']} ({_pct(eff)} efficiency, best "
            f"{pts[-1]['config']}). With more cores, "
            + (
                "add single-threaded worker processes (one per core) for throughput, and give one process "
                "several threads only where single-request latency matters."
                if pts[-1]["config"].startswith(f"{pts[-1]['cores']}x1")
                else f"the measured best here uses {pts[-1]['config']}; run `make config-search` on the target "
                "machine, since the split that wins depends on its cores and caches."
            )
        )
    if e2e and raw:
        lines.append(
            f"- End to end, the service sustains {e2e['sat_ok_per_s']:.1f} successful /predict per second "
            f"({e2e['config']}): {e2e['sat_ok_per_s'] / raw['img_s']:.2f}x the best raw figure of the benchmark"
            + (
                f" and {e2e['vs_raw_same']}x raw ONNX Runtime of the same configuration measured just before"
                if e2e.get("vs_raw_same")
                else ""
            )
            + "."
        )
        lines += cpu_profile(f)
    i8, i8_raw = f.e2e_best("int8"), f.raw_best("int8")
    agreement = f.card.get("variants", {}).get("int8", {}).get("agreement")
    if i8_raw and raw:
        lines.append(
            f"- INT8: raw {i8_raw['img_s']:.1f} img/s = {i8_raw['img_s'] / raw['img_s']:.2f}x fp32"
            + (
                f"; end to end {i8['sat_ok_per_s']:.1f} vs {e2e['sat_ok_per_s']:.1f} img/s "
                f"({i8['sat_ok_per_s'] / e2e['sat_ok_per_s']:.2f}x)"
                if i8 and e2e
                else ""
            )
            + (
                f"; top-1 agreement with fp32 {agreement.get('top1_agreement')} on {agreement.get('images')} "
                f"images, mean logit cosine {agreement.get('logit_cosine_mean')}"
                if agreement
                else ""
            )
            + "."
        )
    lines += conditions(f)
    missed = [t for t in targets(f) if t["met"] is False]
    for t in missed:
        lines.append(f"- Missed: {t['target']} — measured {t['value']}, goal {t['goal']} ({t['by']}).")
    if not lines:
        lines.append("- No measurements in this results folder yet: run `make bench` and `make matrix`.")
    return lines
