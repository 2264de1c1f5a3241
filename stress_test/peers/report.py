"""peers.json → the goal verdict and a markdown table (for the printed summary and the hardware report)."""

from __future__ import annotations

from typing import Any

from resnet_common.protocol import Runtime
from stress_test.peers.systems import OURS_RUNTIME, PEERS_RUNTIME

GOAL_THROUGHPUT_RATIO = 1.1  # ours >= 1.1x the best peer's img/s at 8 and 64 clients
LABELS = {
    "ours": "this service",
    "ours_openvino": "this service, RUNTIME=openvino",
    "bentoml": "BentoML",
    "ray": "Ray Serve",
    "mlserver": "MLServer",
}
RUNTIME_LABELS = {Runtime.ONNXRUNTIME: "ONNX Runtime", Runtime.OPENVINO: "OpenVINO"}


def _load(system: dict, clients: int) -> dict | None:
    return (system.get("loads") or {}).get(str(clients))


def verdict(data: dict[str, Any], name: str = "ours") -> dict[str, Any]:
    """This service's entry `name` against the best peer that ran: img/s ratio at each load > 1 client, and 1-client
    p50. This service's other entries are not peers."""
    systems = data["systems"]
    ours = systems.get(name, {})
    peers = {k: v for k, v in systems.items() if k not in OURS_RUNTIME and v.get("status") == "ok"}
    out: dict[str, Any] = {"system": name, "peers_compared": sorted(peers)}
    if ours.get("status") != "ok" or not peers:
        out["met"] = None
        return out
    checks = []
    for clients in data["settings"]["loads"]:
        mine = _load(ours, clients)
        figures = {k: _load(v, clients) for k, v in peers.items()}
        if clients == 1:
            p50s = {k: f["p50_ms"] for k, f in figures.items() if f and f["p50_ms"]}
            best = min(p50s, key=p50s.get) if p50s else None
            ok = bool(best and mine and mine["p50_ms"] and mine["p50_ms"] <= p50s[best])
            out["p50_1_client"] = {
                "ours_ms": mine and mine["p50_ms"],
                "best_peer": best,
                "best_peer_ms": p50s.get(best),
            }
            out["p50_1_client"]["met"] = ok
        else:
            rates = {k: f["img_s"] for k, f in figures.items() if f}
            best = max(rates, key=rates.get) if rates else None
            ratio = round(mine["img_s"] / rates[best], 2) if best and mine and rates[best] else None
            ok = ratio is not None and ratio >= GOAL_THROUGHPUT_RATIO
            out[f"throughput_{clients}_clients"] = {"best_peer": best, "ratio": ratio, "met": ok}
        checks.append(ok)
    out["met"] = all(checks)
    return out


def reason(system: dict) -> str:
    """Why a system did not run, as the driver recorded it (one markdown cell: no pipes, no line breaks)."""
    text = str(system.get("reason") or system.get("error") or "no reason recorded")
    return " ".join(text.replace("|", "/").split())[:400]


def _cell(load: dict | None, key: str) -> str:
    if not load or load.get(key) is None:
        return "–"
    return f"{load[key]:g}"


def table(data: dict[str, Any]) -> str:
    """One row per system (and the raw ONNX Runtime rows): 1-client p50, then img/s, p50, p99, errors per load."""
    loads = [c for c in data["settings"]["loads"] if c != 1]
    head = ["system", "version", "1 client p50 ms"]
    for c in loads:
        head += [f"{c} cl. img/s", f"{c} cl. p50 ms", f"{c} cl. p99 ms", f"{c} cl. errors", f"{c} cl. CPU ms/img"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, system in data["systems"].items():
        row = [LABELS.get(name, name), str(system.get("version", "?"))]
        if system.get("status") != "ok":
            lines.append("| " + " | ".join(row + [f"did not run: {reason(system)}"]) + " |")
            continue
        row.append(_cell(_load(system, 1), "p50_ms"))
        for c in loads:
            load = _load(system, c)
            row += [_cell(load, k) for k in ("img_s", "p50_ms", "p99_ms", "errors", "cpu_ms_per_img")]
        lines.append("| " + " | ".join(row) + " |")
    for runtime, label in RUNTIME_LABELS.items():
        for raw in data.get(f"raw_{runtime}", []):
            what = f"raw {label} {raw['workers']}×{raw['threads']} batch {raw['batch']} (no HTTP)"
            lines.append(f"| {what} | {raw.get('runtime', '')} | batch p50 {raw['p50_ms']} ms | {raw['img_s']} img/s |")
    return "\n".join(lines)


def served_raw(data: dict[str, Any], runtime: str = PEERS_RUNTIME) -> tuple[dict | None, dict | None]:
    """The raw rows of `runtime` in the same run: the served configuration (replicas × threads, max batch) and a
    lone request's (1 × 1, batch 1)."""
    s, raw = data["settings"], data.get(f"raw_{runtime}") or []
    served = next(
        (r for r in raw if (r["workers"], r["threads"], r["batch"]) == (s["replicas"], s["threads"], s["max_batch"])),
        None,
    )
    lone = next((r for r in raw if (r["workers"], r["threads"], r["batch"]) == (1, 1, 1)), None)
    return served, lone


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def relative_table(data: dict[str, Any]) -> str:
    """Each system that ran next to this service and to raw ONNX Runtime of the same run: img/s ratios per load,
    and the 1-client p50 above raw batch-1 latency."""
    loads = [c for c in data["settings"]["loads"] if c != 1]
    served, lone = served_raw(data)
    ours = data["systems"].get("ours", {})
    head = ["system", "1 client p50 − raw batch-1 p50 ms"]
    for c in loads:
        head += [f"{c} cl. × this service", f"{c} cl. × raw ORT"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, system in data["systems"].items():
        if system.get("status") != "ok":
            continue
        one = _load(system, 1) or {}
        gap = round(one["p50_ms"] - lone["p50_ms"], 1) if lone and one.get("p50_ms") is not None else None
        row = [LABELS.get(name, name), "–" if gap is None else f"{gap:+g}"]
        for c in loads:
            rate = (_load(system, c) or {}).get("img_s")
            mine = (_load(ours, c) or {}).get("img_s") if ours.get("status") == "ok" else None
            row += [_cell({"x": _ratio(rate, mine)}, "x"), _cell({"x": _ratio(rate, served and served["img_s"])}, "x")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def verdict_lines(data: dict[str, Any], v: dict[str, Any]) -> list[str]:
    """One line per goal: met or missed, with this service's figure (entry v["system"]) and the best peer's."""
    words = {True: "met", False: "**missed**"}
    lines = []
    for clients in data["settings"]["loads"]:
        mine = _load(data["systems"].get(v["system"], {}), clients) or {}
        if clients == 1 and "p50_1_client" in v:
            p = v["p50_1_client"]
            lines.append(
                f"- 1 client, p50 no worse than the best peer's: {words[p['met']]} — this service {p['ours_ms']} ms, "
                f"{LABELS.get(p['best_peer'], '?')} {p['best_peer_ms']} ms."
            )
        check = v.get(f"throughput_{clients}_clients")
        if check:
            peer = _load(data["systems"].get(check["best_peer"] or "", {}), clients) or {}
            lines.append(
                f"- {clients} clients, ≥ {GOAL_THROUGHPUT_RATIO}× the best peer's img/s: {words[check['met']]} — "
                f"this service {mine.get('img_s')} img/s, {LABELS.get(check['best_peer'], '?')} {peer.get('img_s')} "
                f"img/s: {check['ratio']}×."
            )
    return lines


def why_missed(data: dict[str, Any], v: dict[str, Any]) -> list[str]:
    """Why each missed goal was missed, from the run's own figures (a met goal gets no line)."""
    lines = []
    one = v.get("p50_1_client")
    if one and one["met"] is False:
        lines += _lone_why(data, v["system"], one)
    for clients in data["settings"]["loads"]:
        check = v.get(f"throughput_{clients}_clients")
        if check and check["met"] is False:
            lines += _throughput_why(data, v["system"], clients, check)
    return lines


def _lone_why(data: dict[str, Any], name: str, one: dict[str, Any]) -> list[str]:
    """Each system's time beyond raw batch-1 inference on its own runtime, and what this service's lone request goes
    through."""
    runtime = OURS_RUNTIME[name]
    (_, lone), (_, peers_lone) = served_raw(data, runtime), served_raw(data)
    if not (lone and peers_lone):
        return []
    if runtime == PEERS_RUNTIME:
        beyond = f"beyond raw batch-1 inference ({lone['p50_ms']} ms), a lone request took"
    else:
        beyond = (
            f"beyond raw batch-1 inference ({lone['p50_ms']} ms with {RUNTIME_LABELS[runtime]}, "
            f"{peers_lone['p50_ms']} ms with the peers' {RUNTIME_LABELS[PEERS_RUNTIME]}), a lone request took"
        )
    return [
        f"- Why at 1 client: {beyond} {one['ours_ms'] - lone['p50_ms']:+.1f} ms here and "
        f"{one['best_peer_ms'] - peers_lone['p50_ms']:+.1f} ms with {LABELS.get(one['best_peer'], '?')}; here it also"
        " crosses nginx, is decoded in the API process and is handed to a worker process through Redis and back."
    ]


def _throughput_why(data: dict[str, Any], name: str, clients: int, check: dict[str, Any]) -> list[str]:
    """The CPU an image could cost at most to reach the goal on the cores this service kept busy, beside what it
    cost and what raw inference alone (on its runtime) cost in the same run; and the 503s a peer did not send."""
    runtime = OURS_RUNTIME[name]
    served, _ = served_raw(data, runtime)
    inference_ms = served and served.get("per_image_ms")
    mine = _load(data["systems"].get(name, {}), clients) or {}
    peer = _load(data["systems"].get(check["best_peer"] or "", {}), clients) or {}
    if not (mine.get("cpu_ms_per_img") and mine.get("cores_busy") and peer.get("img_s")):
        return []
    label, used = LABELS.get(check["best_peer"], "?"), mine["cpu_ms_per_img"]
    goal = GOAL_THROUGHPUT_RATIO * peer["img_s"]
    budget = 1000 * mine["cores_busy"] / goal
    text = (
        f"- Why at {clients} clients: this service's processes kept {mine['cores_busy']} cores busy at {used} ms of"
        f" CPU per answered image; {GOAL_THROUGHPUT_RATIO}× {label}'s {peer['img_s']} img/s is {goal:.2f} img/s,"
        f" which on those cores allows {budget:.1f} ms per image"
    )
    if budget >= used:
        text += (
            f", more than it used: it was not short of CPU but left cores idle (at its CPU per image, the goal needs"
            f" {goal * used / 1000:.2f} cores busy)."
        )
    elif inference_ms and budget < inference_ms:
        text += (
            f", less than raw {RUNTIME_LABELS[runtime]}'s inference alone costs ({inference_ms} ms per image in this"
            f" run): out of reach on this machine for a server whose inference costs what raw"
            f" {RUNTIME_LABELS[runtime]}'s does."
        )
    elif inference_ms:
        text += (
            f": {used - budget:.1f} ms less than now, of the {used - inference_ms:.1f} ms it spent beyond raw"
            " inference (HTTP, decoding, the queue)."
        )
    else:
        text += "."
    lines = [text]
    if mine.get("errors") and not peer.get("errors"):
        lines.append(
            f"  It also refused {mine['errors']} requests with 503 at its admission bound, which held its p99 at "
            f"{mine.get('p99_ms')} ms; {label} queued every request (p99 {peer.get('p99_ms')} ms)."
        )
    return lines


def _goal_paragraph(data: dict[str, Any], name: str) -> list[str]:
    """The goal's verdict for one of this service's entries, its lines and the reasons for what it missed."""
    v = verdict(data, name)
    met = {True: "met", False: "missed", None: "not measurable"}[v.get("met")]
    goal = (
        f"ours ≥ {GOAL_THROUGHPUT_RATIO}× the best peer's img/s at every load above 1 client, 1-client p50 no worse"
        " than the best peer's"
    )
    if OURS_RUNTIME[name] == PEERS_RUNTIME:
        head = f"Goal ({goal}): **{met}**."
    else:
        runtime = RUNTIME_LABELS[OURS_RUNTIME[name]]
        head = (
            f"The same goal with this service's workers on {runtime} (`RUNTIME={OURS_RUNTIME[name]}`), while the"
            f" peers run {RUNTIME_LABELS[PEERS_RUNTIME]} as above: **{met}**."
        )
    return [head, *verdict_lines(data, v), *why_missed(data, v)]


def peers_section(data: dict[str, Any], source: str | None = None) -> str:
    """The report's "Side by side with serving peers" section in markdown; `source` says which run it came from."""
    s = data["settings"]
    served, lone = served_raw(data)
    parts = [
        "## Side by side with serving peers",
        "",
        *([source, ""] if source else []),
        f"The same ONNX file ({data['model']['file']}), the same Keras-identical preprocessing (decode to 224×224×3,"
        f" then normalise), {s['replicas']} replicas × {s['threads']} intra-op thread, max batch {s['max_batch']},"
        f" each peer with its own batching and started by its own CLI; closed-loop clients from distinct loopback"
        f" addresses, unique bytes per request; "
        + (
            "each system running alone (started for its turn, stopped after it), "
            if s.get("alone")
            else "all systems up at once and loaded one at a time, "
        )
        + f"{s.get('rounds', 1)} interleaved round(s) of {s['duration_s']} s per load after {s['warmup_s']} s warm-up.",
        "",
        table(data),
        "",
    ]
    if served or lone:
        parts += [
            "Next to this service and to raw ONNX Runtime of the same run"
            + (
                f" ({served['img_s']} img/s at {served['workers']}×{served['threads']} batch {served['batch']}"
                if served
                else " ("
            )
            + (f"; batch-1 p50 {lone['p50_ms']} ms at 1×1)" if lone else ")")
            + ":",
            "",
            relative_table(data),
            "",
        ]
    ours = [name for name in OURS_RUNTIME if name in data["systems"]] or ["ours"]
    for i, name in enumerate(ours):
        parts += ([""] if i else []) + _goal_paragraph(data, name)
    for name, system in data["systems"].items():
        if system.get("status") != "ok":
            parts.append(f"- {LABELS.get(name, name)} did not run: {reason(system)}")
    for name, system in data["systems"].items():
        parts.append(f"- {LABELS.get(name, name)} request: {system.get('request', '?')}")
    return "\n".join(parts) + "\n"
