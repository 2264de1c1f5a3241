"""The hardware report's sections: markdown tables and sentences built from the figures report_data.py reads.

Each section function returns markdown lines; the older sections say "not run" when their results file is missing,
the newer ones (OpenVINO, peers, CPU account) render nothing, so older results folders still make a report.
`document()` puts them in order (make_report.py writes it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from resnet_common import shed_sizing

from stress_test.report_data import (
    REDIS_HEADROOM,
    Figures,
    amdahl,
    best_per_core,
    compose_rows,
    cpu_account_rows,
    find_json,
    find_path,
    judge,
    LONE_PARTS,
    lone_request_parts,
    machine_rate,
    noise_basis,
    openvino_at_ort_best,
    openvino_end_to_end,
    openvino_judgement,
    openvino_rows,
    per_core,
    plan,
    process_rows,
    raw_moves,
    run_noise,
    targets,
    workload_targets,
)
from stress_test import bench_queue
from stress_test import config_search
from stress_test.peers.report import peers_section
from stress_test.results import hours_between, read_json, written_at

# Every results file a section reads, in the order the report shows them.
REPORT_FILES = (
    "bench.json",
    "decode_profile.json",
    "matrix.json",
    "config_search.json",
    "compose_matrix.json",
    "shedding.json",
    "goodput.json",
    "queue_capacity.json",
    "explain.json",
    "peers.json",
    "perf_analyzer.json",
    "workloads.json",
    "bench_v2.json",
    "split_cores.json",
)

TARGET_EXPLAIN_MS = 1.0  # heatmaps: at most this many ms per image, when asked
P99_TARGET_MS = 3000  # load shedding: p99 of the 200s under 160 clients
BEYOND_ONE_REDIS = (  # how the plan grows past one Redis: a design, not a measurement
    "Beyond one Redis: the job stream is the one shared part, so it is split, not scaled up. Run S streams "
    "`ml:jobs:{k}` (k = 0..S-1) on a Redis Cluster, each key with a hash tag so the stream, its group and the "
    "result lists `ml:result:{k}:<id>` of its jobs live in one slot (one node: the MULTI that answers and "
    "acknowledges stays atomic, and the API's BLPOP waits on the node that gets the answer). The API picks a "
    "stream per request (round-robin, or the shortest XLEN); each stream has its own worker Deployment and its "
    "own KEDA ScaledObject (`redis-cluster-streams`, streamLength, as today) and its own MAX_QUEUE_DEPTH. "
    "Shards are added by adding streams, and a node's failure stalls only its 1/S of the traffic "
    "(replicas per shard, as with Sentinel today). At 1000x the network through each shard — payload in and "
    "out — is the second limit to watch: the table gives it per shard."
)


def md_table(rows: list[dict], columns: list[tuple[str, str]], missing: str = "–") -> list[str]:
    """A markdown table of `rows` (dicts) with (key, heading) columns; `missing` stands for None."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(missing if r.get(k) is None else str(r[k]) for k, _ in columns) + " |" for r in rows]
    return [head, sep, *body, ""]


def machine_section(f: Figures) -> list[str]:
    m = f.machine
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m.get("flags", {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in sorted(m.get("versions", {}).items()))
    return [
        "## Machine",
        "",
        f"- CPU: {m.get('cpu_model')} ({m.get('vendor')}, family {m.get('family')}), "
        f"{m.get('cores')} cores usable" + (", virtual machine" if m.get("hypervisor") else ""),
        f"- Flags: {flags}",
        f"- Memory: {m.get('memory_gib')} GiB; OS: {m.get('os')}; Python {m.get('python')}",
        f"- Libraries: {versions}",
        f"- fp32 peak (formula): {m.get('peak_formula')}",
        probe_line(m),
        "",
    ]


def probe_line(m: dict) -> str:
    p = m.get("fma_probe")
    if not p:
        return "- Measured FMA peak: not measured (needs gcc)."
    return (
        f"- fp32 peak (measured): {p['gflops_1_core']} GFLOP/s on one core (an effective "
        f"{p['effective_ghz_1_core']} GHz at {p['lanes']} lanes x 2 FMA units), {p['gflops_all_cores']} GFLOP/s on "
        f"all cores — {p['how']}."
    )


def raw_section(f: Figures) -> list[str]:
    b, base = f.bench, f.baseline
    if not b:
        return ["## Raw model benchmark", "", "Not run (no bench.json).", ""]
    lines = [
        "## Raw model benchmark (`make bench`)",
        "",
        f"- Model: {b.get('gflops_per_image')} GFLOP per image, {b.get('gflops_how')}.",
        "- Keras baseline (the original app's way): "
        + (
            f"{base['img_s']} img/s, p50 {base['p50_ms']} ms — {base['method']}; weights {base['weights']}."
            if base
            else "not measured."
        ),
        f"- Each ONNX Runtime worker is a spawned process with its own session; {b['settings'].get('duration')} s "
        f"measured after {b['settings'].get('warmup')} s warm-up; latency is per batch.",
        "",
    ]
    lines += md_table(
        b.get("runs", []),
        [
            ("variant", "variant"),
            ("workers", "workers"),
            ("threads", "threads"),
            ("batch", "batch"),
            ("img_s", "img/s"),
            ("p50_ms", "p50 ms"),
            ("p95_ms", "p95 ms"),
            ("x_baseline", "x Keras"),
            ("peak_pct", "% fp32 peak"),
            ("peak_pct_measured", "% measured peak"),
            ("rss_mb_max", "RSS MB"),
            ("other_load_cores", "other load (cores)"),
        ],
    )
    lines += ["![raw throughput](stress_test/report/raw_throughput.png)", "", "### Per-core scaling", ""]
    lines += md_table(
        per_core(f),
        [
            ("variant", "variant"),
            ("cores", "cores used"),
            ("config", "best config"),
            ("img_s", "img/s"),
            ("img_s_per_core", "img/s per core"),
        ],
    )
    return lines + ["![per-core scaling](stress_test/report/per_core_scaling.png)", ""]


VARIANT_NAMES = {"fp32": "fp32", "int8": "INT8"}


def openvino_section(folder: Path, f: Figures) -> list[str]:
    """bench.json's raw OpenVINO rows beside ONNX Runtime's of the same configuration; nothing when not measured."""
    rows = openvino_rows(f.bench)
    if not rows:
        return []
    runtime = f.bench["openvino"][0].get("runtime", "OpenVINO")
    lines = [
        "## OpenVINO beside ONNX Runtime (raw, `make bench`)",
        "",
        f"{runtime} compiles the same ONNX files and runs the same measurement as the ONNX Runtime rows above "
        "(spawned processes, fixed window, latency per batch; f32 inference precision, no thread pinning); x ORT is "
        "OpenVINO's img/s over ONNX Runtime's of the same variant and configuration.",
        "",
    ]
    lines += md_table(
        rows,
        [
            ("variant", "variant"),
            ("config", "workers x threads, batch"),
            ("ort_img_s", "ONNX Runtime img/s"),
            ("ov_img_s", "OpenVINO img/s"),
            ("x_onnxruntime", "x ORT"),
            ("ort_p50_ms", "ORT p50 ms"),
            ("ov_p50_ms", "OpenVINO p50 ms"),
        ],
    )
    return lines + [_openvino_verdict(rows, folder), ""]


def _openvino_verdict(rows: list[dict], folder: Path) -> str:
    """OpenVINO's rate against ONNX Runtime's where ONNX Runtime is fastest, and the end-to-end bound of a gain."""
    best = openvino_at_ort_best(rows)
    if not best:
        return "No OpenVINO row has an ONNX Runtime row of the same configuration: no comparison."
    text = (
        "At ONNX Runtime's fastest configuration of each variant, OpenVINO runs "
        + " and ".join(
            f"{VARIANT_NAMES.get(v, v)} at {r['x_onnxruntime']}× ONNX Runtime's rate ({r['config']}: "
            f"{r['ov_img_s']} vs {r['ort_img_s']} img/s)"
            for v, r in sorted(best.items())
        )
        + "."
    )
    faster = {v: r for v, r in best.items() if r["x_onnxruntime"] > 1}
    shares = {
        r["name"]: r["cpu_bound"]
        for r in cpu_account_rows((read_json(folder / "workloads.json") or {}).get("runs", []))
    }
    for v, r in sorted(faster.items()):
        share = shares.get(f"small-{v}-keras-c8")
        text += f" An end-to-end {VARIANT_NAMES.get(v, v)} gain would be at most the raw gain on inference's share " + (
            f"of the CPU per answered image: {amdahl(r['x_onnxruntime'], share):.2f}× with inference at "
            f"{share:.0%} of it (CPU account, small-{v}-keras-c8)."
            if share
            else "of the CPU per answered image, which this run does not measure (no CPU account)."
        )
    return text + " " + _openvino_end_to_end_verdict(folder)


def _openvino_end_to_end_verdict(folder: Path) -> str:
    """Whether RUNTIME=openvino wins end to end, per variant: better at some load (more img/s or less p50 by more
    than the run's noise, run_noise) and worse at none; within the noise both ways is level."""
    runs = (read_json(folder / "workloads.json") or {}).get("runs", [])
    rows, margin = openvino_end_to_end(runs), run_noise(runs)
    if not rows:
        return (
            "No end-to-end run with RUNTIME=openvino is measured here beside ONNX Runtime's drift reference: whether "
            "it wins end to end is not known."
        )
    judged = [(r, openvino_judgement(r, margin)) for r in rows]
    text = (
        "End to end (workloads below, the same stack with RUNTIME=openvino; ONNX Runtime's raw rate, measured "
        "before and after each stack, says how fast the machine ran during it, and OpenVINO's figures are "
        "corrected by the ratio of the two stacks' rates, the drift): "
        + "; ".join(
            f"{VARIANT_NAMES.get(r['variant'], r['variant'])}, {r['clients']} client{'s' if r['clients'] > 1 else ''}: "
            f"{r['ov_img_s']} against {r['ort_img_s']} img/s, p50 {r['ov_p50_ms']} against {r['ort_p50_ms']} ms, "
            f"drift {r['drift']}×; corrected {r['x_onnxruntime']}× the img/s and {r['p50_x_onnxruntime']}× the p50, "
            f"{j}"
            for r, j in judged
        )
        + f" (better or worse: by more than this run's noise in img/s or p50, {noise_basis(margin)})."
    )
    for variant in dict.fromkeys(r["variant"] for r in rows):
        verdicts = {j for r, j in judged if r["variant"] == variant}
        name = VARIANT_NAMES.get(variant, variant)
        if "worse" in verdicts:
            text += f" {name}: it does not win end to end on this machine; keep the default, RUNTIME=onnxruntime."
        elif "better" in verdicts:
            text += (
                f" {name}: it wins end to end on this machine; RUNTIME=openvino is worth setting here (ONNX Runtime"
                " stays the default)."
            )
        else:
            text += f" {name}: it is level end to end on this machine; keep the default, RUNTIME=onnxruntime."
    return text


def e2e_section(f: Figures) -> list[str]:
    if not f.matrix:
        return ["## End to end (`make matrix`)", "", "Not run (no matrix.json).", ""]
    s = f.matrix.get("settings", {})
    stack = _stack_description(f.matrix)
    lines = [
        "## End to end (`make matrix`)",
        "",
        f"{stack}, BATCH_SIZE {s.get('batch_size')}; Locust {s.get('duration')} s per "
        f"user count (closed loop, /predict 20 : page 2 : feedback 1); 503 backpressure counted apart. Saturation: "
        f"closed-loop client for {s.get('saturation_duration')} s; 1-user latency measured exactly for "
        f"{s.get('latency_duration')} s.",
        "",
    ]
    rows = []
    for c in f.e2e():
        for r in c.get("locust", []):
            rows.append({"config": c["config"], **r})
    lines += md_table(
        rows,
        [
            ("config", "config"),
            ("users", "users"),
            ("predict_ok_per_s", "ok/s"),
            ("p50_ms", "p50 ms"),
            ("p95_ms", "p95 ms"),
            ("p99_ms", "p99 ms"),
            ("predict_failures", "failures"),
            ("backpressure_503", "503s"),
        ],
    )
    lines += [
        "![throughput vs users](stress_test/report/e2e_throughput_vs_users.png)",
        "![latency vs users](stress_test/report/e2e_latency_vs_users.png)",
        "",
        "### Saturation, latency, memory, start-up",
        "",
    ]
    lines += md_table(
        f.e2e(),
        [
            ("config", "config"),
            ("sat_ok_per_s", "saturation img/s"),
            ("raw_img_s", "raw ORT same config"),
            ("vs_raw_same", "x raw same"),
            ("vs_raw_best", "x bench best"),
            ("sat_p50_ms", "sat p50 ms"),
            ("lat1_p50_ms", "1-user p50 ms"),
            ("raw_b1_p50_ms", "raw batch-1 p50 ms"),
            ("rss_mb_max", "worker RSS MB"),
            ("ready_s_max", "ready s"),
        ],
    )
    lines += stages_table(f)
    for c in f.failed_configs():
        lines.append(f"- {c['config']} failed: {c['error'][:300]}")
    return lines + [""]


def _stack_description(matrix: dict[str, Any]) -> str:
    """What the matrix's load reached: the stack behind nginx (recorded as "front"), or, in older results, not."""
    s = matrix.get("settings", {})
    gunicorn = f"gunicorn {s.get('gunicorn_workers')} x {s.get('gunicorn_threads')} threads"
    if matrix.get("front") == "nginx":
        return (
            f"The stack as `make run` serves it on 127.0.0.1 (supervisord: Redis, the model service, {gunicorn} on a "
            "unix socket, nginx in front; each client from its own 127.0.x.y)"
        )
    return f"Real stack on 127.0.0.1 (redis-server, `python ml_service.py`, {gunicorn}), without nginx"


def stages_table(f: Figures) -> list[str]:
    """Mean ms per stage during each saturation run, from the /metrics histograms (absent in older results)."""
    rows = [
        {
            "config": c["config"],
            "sat_ok_per_s": c["sat_ok_per_s"],
            **c["saturation"]["stages_ms"],
            "raw_per_image": (c.get("raw_same_config") or {}).get("per_image_ms"),
        }
        for c in f.e2e()
        if "preprocess_per_image" in (c.get("saturation") or {}).get("stages_ms", {})
    ]
    if not rows:
        return []
    return [
        "### Where the time went during saturation (per stage, from /metrics)",
        "",
        "Means over the saturation run from the difference of the Prometheus histograms scraped right before "
        "and right after it (summed over workers); worker stages are wall time inside one worker.",
        "",
        *md_table(
            rows,
            [
                ("config", "config"),
                ("sat_ok_per_s", "img/s"),
                ("preprocess_per_image", "preprocess ms/img"),
                ("inference_per_image", "inference ms/img"),
                ("raw_per_image", "raw ORT ms/img"),
                ("inference_per_batch", "inference ms/batch"),
                ("mean_batch", "mean batch"),
                ("queue_wait", "queue wait ms"),
                ("api_request", "API /predict ms"),
            ],
        ),
    ]


def int8_section(f: Figures) -> list[str]:
    v = f.card.get("variants", {}).get("int8")
    if not v:
        return ["## INT8", "", "No INT8 model in this run's model card.", ""]
    q, agree, speed = v.get("quantization", {}), v.get("agreement", {}), v.get("speed", {})
    lines = [
        "## INT8",
        "",
        "From the model card (conversion): " + ", ".join(f"{k} {q[k]}" for k in q if k != "calibration_dir"),
        "",
        "| agreement with fp32 | value |",
        "|---|---|",
        *[f"| {k} | {val} |" for k, val in agree.items()],
        "",
        "Speed at conversion: " + ", ".join(f"{k} {val}" for k, val in speed.items()) + ".",
        "",
    ]
    fp, i8 = f.raw_best("fp32"), f.raw_best("int8")
    if fp and i8:
        lines.append(
            f"- Raw ONNX Runtime best: int8 {i8['img_s']} img/s vs fp32 {fp['img_s']} img/s "
            f"({i8['img_s'] / fp['img_s']:.2f}x)."
        )
    fe, ie = f.e2e_best("fp32"), f.e2e_best("int8")
    if fe and ie:
        lines.append(
            f"- End-to-end saturation: int8 {ie['sat_ok_per_s']} img/s ({ie['config']}) vs fp32 "
            f"{fe['sat_ok_per_s']} img/s ({fe['config']}) = {ie['sat_ok_per_s'] / fe['sat_ok_per_s']:.2f}x."
        )
    return lines + [""]


def config_section(folder: Path) -> list[str]:
    cs = read_json(folder / "config_search.json")
    if not cs:
        return []
    lines = [
        "## Recommended settings (`make config-search`)",
        "",
        "From a short raw run (no HTTP) of every workers × threads × batch on each runtime measured: what bounds a "
        "stack's rate, not what it answers end to end.",
        "",
    ]
    for goal, r in cs["recommended"].items():
        lines.append(
            f"- For {goal}: `{config_search.env_line(r, cs['variant'])}` ({r['img_s']} img/s, batch p50 "
            f"{r['p50_ms']} ms, p95 {r['p95_ms']} ms)."
        )
    return lines + [""]


SAME_SITTING_H = 0.5  # two results files written further apart than this may see the machine at another speed


def compose_section(folder: Path) -> list[str]:
    title = ["## Per-core scaling in containers (`make matrix CONTAINERS=1`)", ""]
    data = read_json(folder / "compose_matrix.json")
    if not data:
        return title + ["Not run (no compose_matrix.json).", ""]
    s = data.get("settings", {})
    runs = data.get("runs", [])
    procs = process_rows(read_json(folder / "matrix.json") or {}, s.get("batch_size", 8))
    one_c = next((r["sat_ok_per_s"] for r in runs if r["models"] == 1 and r.get("sat_ok_per_s")), None)
    rows = compose_rows(runs, procs)
    lines = title + [
        f"`docker compose up --scale model=N` with `cpus: {s.get('cpus')}` per model container (each runs 1 process x "
        f"1 thread, sized from its CPU quota), BATCH_SIZE {s.get('batch_size')}, fp32, random weights; a closed-loop "
        f"client through the published port for {s.get('duration')} s (saturation) and {s.get('latency_duration')} s "
        "(1 user). Beside it, the process-based matrix above: N worker processes x 1 thread on the same machine.",
        "",
    ]
    apart = hours_between(folder / "compose_matrix.json", folder / "matrix.json")
    if apart is not None and apart >= SAME_SITTING_H:
        lines += [
            f"The containers and the processes were measured {apart:.1f} h apart ({written_at(folder / 'compose_matrix.json')}"
            f" and {written_at(folder / 'matrix.json')}); this machine's speed moves between hours (the workloads' "
            "raw rates below), so the last column compares two moments as well as two ways of running; each one's "
            "ratio to raw ONNX Runtime of as many processes x 1 thread, measured right before it (x raw), does not.",
            "",
        ]
    lines += md_table(
        rows,
        [
            ("n", "model containers / processes"),
            ("c_sat", "containers img/s"),
            ("c_x", "containers x 1"),
            ("c_p50", "containers sat p50 ms"),
            ("c_lat1", "containers 1-user p50 ms"),
            ("p_sat", "processes img/s"),
            ("p_x", "processes x 1"),
            ("p_lat1", "processes 1-user p50 ms"),
            ("c_raw", "containers x raw"),
            ("p_raw", "processes x raw"),
            ("ratio", "containers / processes"),
        ],
        missing="-",
    )
    for r in runs:
        if r.get("error"):
            lines.append(f"- {r['models']} container(s) failed: {r['error'][:300]}")
    if one_c is None:
        lines.append("- No successful single-container run: no scaling factor.")
    return lines + [""]


def peers_report_section(folder: Path) -> list[str]:
    """This service beside BentoML, Ray Serve and MLServer (peers.json), from this run or the newest that has it."""
    found = find_json(folder, "peers.json")
    if found is None:
        return []
    path, data = found
    source = None
    if path.parent != folder:
        source = (
            f"From `{path}`: this run's folder has no peers.json, so the newest one measured on the same kind of "
            "machine that has it is shown; its machine load may differ from this run's."
        )
    return peers_section(data, source).splitlines() + [""]


GOODPUT_RATIO_TARGET = 0.95  # answered img/s of 64 clients honouring Retry-After over that of 8 clients


def shedding_section(folder: Path) -> list[str]:
    """160 clients against the admission bound (shedding.json), goodput at 8, 64 and 160 clients (goodput.json) and
    the bound and Retry-After deploy/render.py derived for them."""
    data, good = read_json(folder / "shedding.json"), read_json(folder / "goodput.json")
    if not data and not good:
        return ["## Load shedding", "", "Not measured in this run (`python -m stress_test.shed_bench`).", ""]
    lines = ["## Load shedding", ""]
    if data:
        p99 = data.get("p99_ms")
        met = "met" if p99 is not None and p99 <= P99_TARGET_MS else "**missed**"
        lines += [
            f"{data['clients']} closed-loop clients for {data['duration_s']} s against the stack as `make run` starts "
            f"it (admission bound {data.get('max_inflight', '?')} requests, unique bytes per request, clients wait "
            f"`Retry-After` after a 503): {data['ok_per_s']} answers/s; 200 latency p50 {data['p50_ms']} ms, "
            f"p99 {p99} ms (target ≤ {P99_TARGET_MS} ms: {met}), max {data['max_ms']} ms; "
            f"shed rate {data['shed_rate']:.1%}; statuses {data['statuses']}.",
            "",
        ]
    if good:
        lines += _goodput_lines(good)
    admission = (good or {}).get("admission") or (data or {}).get("admission")
    if admission:
        lines += _admission_lines(admission)
    return lines


def _goodput_lines(good: dict[str, Any]) -> list[str]:
    """Answered img/s at 8, 64 and 160 clients on one stack, the 64/8 ratio and the 160-client p99 judged."""
    runs = good.get("runs", {})
    rows = [
        {
            "clients": (f"{n} (honour Retry-After)" if n == "64" else n)
            + (f", {r['rounds']} windows" if r.get("rounds", 1) > 1 else ""),
            **r,
            "shed": f"{r['shed_rate']:.1%}" if r.get("shed_rate") is not None else None,
        }
        for n, r in sorted(runs.items(), key=lambda kv: int(kv[0]))
    ]
    ratio, p99 = good.get("ratio_64_vs_8"), good.get("p99_160_ms")
    r_met, r_by = judge(ratio, GOODPUT_RATIO_TARGET, True)
    p_met, p_by = judge(p99, P99_TARGET_MS, False, " ms")
    return [
        "### Goodput under overload (`python -m stress_test.shed_bench --goodput`)",
        "",
        "One stack as `make run` starts it, closed-loop clients with unique bytes per request; every client waits "
        "the `Retry-After` a 503 carries before it sends again. 8 and 64 clients alternate (8, 64, 64, 8, …) so a "
        "drift in the machine's speed weighs on both alike; each row pools its windows (answers over their summed "
        "seconds, the median p50, the worst p99 and max); 160 clients run last.",
        "",
        *md_table(
            rows,
            [
                ("clients", "clients"),
                ("duration_s", "s"),
                ("ok_per_s", "answered img/s"),
                ("p50_ms", "p50 ms"),
                ("p99_ms", "p99 ms"),
                ("max_ms", "max ms"),
                ("shed", "shed (503)"),
                ("statuses", "statuses"),
            ],
        ),
        f"- Goodput ratio, answered img/s of 64 clients over 8: {ratio} (target ≥ {GOODPUT_RATIO_TARGET}: {r_met}"
        + (f", {r_by}" if r_by else "")
        + ").",
        f"- 160 clients: p99 of the answered requests {p99} ms (target ≤ {P99_TARGET_MS} ms: {p_met}"
        + (f", {p_by}" if p_by else "")
        + ").",
        "",
    ]


def _admission_lines(a: dict[str, Any]) -> list[str]:
    """MAX_INFLIGHT and Retry-After as deploy/render.py derived them, in the words `make run` prints at start."""
    retry = (
        ": the time the admitted requests take to be answered at the fleet's rate (expected latency at the bound "
        f"{a['expected_latency_s']} s)."
        if a["retry_after_source"] == "rate"
        else "."
    )
    return [
        "### Admission bound and Retry-After (derived by deploy/render.py)",
        "",
        f"- MAX_INFLIGHT {a['max_inflight']}, from {shed_sizing.bound_reason(a)}.",
        f"- Retry-After {a['retry_after_s']} s, from {a['retry_after_source']}{retry}",
        f"- Fleet capacity used: {shed_sizing.fleet_rate(a)}.",
        "",
    ]


def _verdict(row: dict) -> str:
    lo = row["not_asked_delta_ms"] - row["not_asked_ci_ms"]
    hi = row["not_asked_delta_ms"] + row["not_asked_ci_ms"]
    not_asked = "not measurable" if lo <= 0 <= hi else f"{row['not_asked_delta_ms']:+.3f} ms"
    explain = "met" if row["explain_delta_ms"] + row["explain_ci_ms"] <= TARGET_EXPLAIN_MS else "**missed**"
    return f"{not_asked}; explain {explain}"


def explain_section(folder: Path) -> list[str]:
    """Markdown lines; a one-line note when the benchmark was not run for this results folder."""
    data = read_json(folder / "explain.json")
    head = ["## Class activation heatmaps (`python -m stress_test.bench_explain`)", ""]
    if not data:
        return head + ["Not run (no explain.json in this results folder).", ""]
    rows = data["rows"]
    lines = head + [
        "The worker's own `Classifier` on real photos, three arms interleaved round by round: the graph without the "
        "`features` output (the model before heatmaps), the served graph with no item asking (probabilities "
        "fetched only), and every item asking (feature map fetched, one 7 x 7 map per image). Differences are "
        f"paired per round: mean ± 95% interval, ms per image of wall time and of the process's CPU time, {rows[0]['threads'] if rows else '?'} intra-op "
        f"thread(s). Targets: explain adds at most {TARGET_EXPLAIN_MS:g} ms per image; not asking costs nothing "
        "measurable.",
        "",
        "| variant | batch | no features ms/img | not asked ms/img | Δ not asked | explain ms/img | Δ explain | "
        "Δ not asked CPU | Δ explain CPU | map alone µs/img | verdict (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = [
            f"{r[k + '_delta_ms']:+.3f} ± {r[k + '_ci_ms']:.3f}" if k + "_delta_ms" in r else "–"
            for k in ("not_asked_cpu", "explain_cpu")
        ]
        lines.append(
            f"| {r['variant']} | {r['batch']} | {r['no_features_ms']} | {r['not_asked_ms']} | "
            f"{r['not_asked_delta_ms']:+.3f} ± {r['not_asked_ci_ms']:.3f} | {r['explain_ms']} | "
            f"{r['explain_delta_ms']:+.3f} ± {r['explain_ci_ms']:.3f} | {cpu[0]} | {cpu[1]} | "
            f"{r['cam_only_us']} | {_verdict(r)} |"
        )
    parity = data.get("card_parity_features") or {}
    if parity:
        lines += [
            "",
            f"Conversion parity of `{parity.get('feature_layer')}` with Keras: max abs diff "
            f"{parity.get('max_abs_diff_features'):.3g} (largest value {parity.get('features_max_abs'):.3g}); "
            f"class maps within {parity.get('max_abs_diff_cam'):.3g} per cell.",
        ]
    return lines + [""]


def capacity_section(folder: Path, f: Figures) -> list[str]:
    queue = read_json(folder / "queue_capacity.json")
    head = ["## Capacity plan (`python -m stress_test.bench_queue`)", ""]
    if not queue:
        return head + ["Not measured (no queue_capacity.json in this run).", ""]
    best, s = queue["best"], queue["settings"]
    lines = head + [
        f"The full job protocol without the model — the API's own `job_client.submit` (queue-depth check, XADD, "
        f"BLPOP) from many client threads in {s['client_procs']} processes, the worker's own `JobQueue` "
        f"(XREADGROUP of batches of {s['batch']}, then RPUSH + EXPIRE + XACK + XDEL in one MULTI) in "
        f"{s['workers']} processes — with unique {best['payload_bytes']}-byte payloads (one 224x224x3 uint8 tensor), "
        f"Redis {s.get('redis')}, {s['duration']} s per point. Load generators share the machine's "
        f"{s.get('cores')} cores with Redis, so the throughput is also divided by Redis' own CPU time: jobs/s per "
        f"Redis core is the ceiling of one Redis (single-threaded) and what the plan uses — a linear extrapolation "
        f"from the measured Redis CPU share, the less certain the lower that share is.",
        "",
    ]
    lines += md_table(queue["runs"], bench_queue.COLUMNS)
    return lines + _capacity_plan_lines(queue, f) + [BEYOND_ONE_REDIS, ""]


def _capacity_plan_lines(queue: dict[str, Any], f: Figures) -> list[str]:
    """What one Redis feeds, and the worker cores and Redis shards for 1x, 10x and 1000x today's load."""
    best, rates = queue["best"], best_per_core(f)
    e2e = f.e2e_best("fp32")
    today = e2e["sat_ok_per_s"] if e2e else None
    per_redis = best["jobs_s_per_redis_core"] * REDIS_HEADROOM
    feeds = ", ".join(f"{math.floor(per_redis / r)} {v} cores ({r} img/s per core)" for v, r in sorted(rates.items()))
    feeds = feeds or "n/a (no bench.json)"
    lines = [
        f"- One Redis carries about **{best['jobs_s_per_redis_core']} jobs/s** at a full core; planned at "
        f"{int(REDIS_HEADROOM * 100)}% of it ({per_redis:.0f} jobs/s) it feeds **{feeds}** of "
        "single-threaded workers at the best raw per-core rates of this run.",
        "- Today's load is taken as the end-to-end saturation measured in this run, "
        + (f"{today} img/s (fp32, `make matrix`)." if today else "not measured (no matrix.json)."),
        "",
    ]
    if today and rates:
        lines += md_table(
            plan(queue, rates, today),
            [
                ("load", "load"),
                ("img_s", "img/s"),
                ("variant", "variant"),
                ("worker_cores", "worker cores"),
                ("redis_shards", "Redis shards"),
                ("gbit_s_per_shard", "Gbit/s per shard"),
            ],
        )
    return lines


def workloads_section(folder: Path) -> list[str]:
    """Small and 12 MP photos: workloads.json (targets, runs, profiles) and decode_profile.json (fast mode)."""
    w, d = read_json(folder / "workloads.json"), read_json(folder / "decode_profile.json")
    if not w and not d:
        return []
    lines = ["## Small and 12 MP photos", ""]
    if w:
        runs = w.get("runs", [])
        ok = [r for r in runs if "error" not in r]
        lines += _workload_tables(w, runs) + _stage_profiles(ok) + _lone_request_lines(ok)
        lines += _pyspy_lines(ok) + _setting_lines(ok, run_noise(runs))
        lines += [f"- {r['name']} failed: {r['error'][:300]}" for r in runs if "error" in r]
    if d:
        lines += _fast_mode_lines(d)
    return lines


def _workload_tables(w: dict, runs: list[dict]) -> list[str]:
    lines = [
        "Each stack: 2 workers x 1 thread, batch 8, the raw runtime of the same configuration measured just "
        "before it (ONNX Runtime; OpenVINO for the runs named runtimeopenvino, made with RUNTIME=openvino); "
        f"closed-loop clients send unique bytes per request for {w['settings']['duration']} s. "
        f"Photos: small {w['photos_mib'].get('small')} MiB, 12 MP {w['photos_mib'].get('12mp')} MiB on "
        "average (stress_test/phone_photos.py). The load generator runs on the same cores: its share of the "
        "CPU the stack and it used is given beside each figure."
        + (
            f" ONNX Runtime's raw rate is measured again after each stack: it moved by up to {max(moves):.0%} in "
            "this run, which is how far a ratio to raw can move by itself."
            if (moves := raw_moves(runs))
            else ""
        ),
        "",
        "### Targets",
        "",
    ]
    lines += md_table(
        workload_targets(runs),
        [
            ("target", "target"),
            ("goal", "goal"),
            ("value", "measured"),
            ("result", "result"),
            ("by", "margin"),
            ("basis", "basis"),
            ("load_client_share", "load gen CPU share"),
        ],
    )
    return (
        lines
        + ["### Runs", ""]
        + md_table(
            [r for r in runs if "error" not in r],
            [
                ("name", "run"),
                ("ok_per_s", "img/s"),
                ("p50_ms", "p50 ms"),
                ("p95_ms", "p95 ms"),
                ("raw_img_s", "raw img/s"),
                ("vs_raw", "x raw"),
                ("raw_onnxruntime_img_s", "ORT raw before img/s"),
                ("raw_onnxruntime_after_img_s", "ORT raw after img/s"),
                ("raw_b1_p50_ms", "raw b1 p50 ms"),
                ("redis_kib_per_request", "Redis KiB/req"),
                ("load_client_share", "load gen share"),
            ],
        )
    )


def _stage_profiles(ok: list[dict]) -> list[str]:
    prof = [
        {
            "name": r["name"],
            **(r.get("stages_ms") or {}),
            **{f"cores_{k}": v for k, v in (r.get("cpu_cores_used") or {}).items()},
        }
        for r in ok
    ]
    return [
        "### Per-stage profile of each run",
        "",
        "Stage means from the service's own /metrics (scraped before and after the run); CPU cores used by "
        "each process group (psutil) over the run.",
        "",
    ] + md_table(
        prof,
        [
            ("name", "run"),
            ("api_decode_per_image", "API decode ms/img"),
            ("preprocess_per_image", "worker normalise ms/img"),
            ("inference_per_image", "inference ms/img"),
            ("mean_batch", "mean batch"),
            ("queue_wait", "queue wait ms"),
            ("api_request", "API /predict ms"),
            ("cores_api", "API cores"),
            ("cores_model", "worker cores"),
            ("cores_redis", "Redis cores"),
            ("cores_load_client", "load gen cores"),
            ("cores_other", "other load cores"),
        ],
    )


def _lone_request_lines(ok: list[dict]) -> list[str]:
    rows = [{"name": r["name"], **parts} for r in ok if (parts := lone_request_parts(r)) is not None]
    if not rows:
        return []
    return [
        "### Where a lone request's time goes (1-client runs)",
        "",
        "The p50 beyond raw batch 1 of each 1-client run, split with the run's own figures: stage means from "
        "/metrics, the client's p50, raw's batch-1 p50. Means and p50s are mixed, so a part is approximate; to "
        "rounding, the parts add up to the gap. API other is the API's time outside decode, queue wait, normalise "
        "and inference (form parsing, the Redis round trips, the answer); outside the API is nginx, gunicorn's HTTP "
        "and the load generator.",
        "",
    ] + md_table(rows, [("name", "run"), ("gap", "gap ms"), *((k, f"{label} ms") for k, label in LONE_PARTS)])


def _pyspy_lines(ok: list[dict]) -> list[str]:
    spied = [r for r in ok if isinstance(r.get("pyspy"), dict)]
    if not spied:
        return []
    lines = [
        "### py-spy: where each process group's busy threads stood (leaf function, share of its busy samples)",
        "",
        "Samples of blocked threads (an idle pool thread, an event loop, a Redis reply not yet there) are left out "
        "(stress_test/pyspy_profile.py); the share of busy samples is given first. A thread waiting for the GIL as "
        "a C call returns counts at that call (gunicorn's WorkerTmp.notify, write and PollableMethodQueue.defer are "
        "mostly that): these are shares of samples, not of CPU time, which the CPU account below gives.",
        "",
    ]
    for r in spied:
        for group, profile in r["pyspy"].items():
            shown = "; ".join(f"{frame} {share:.0%}" for frame, share in profile["top"][:6])
            lines.append(f"- {r['name']} {group} ({profile['busy']:.0%} busy): {shown}")
    return lines + [""]


# A setting's default against its other value, each a workloads run: (the run with the default, the run without,
# the default, the other value, the load both ran).
SETTING_COMPARISONS = (
    (
        "small-fp32-keras-c8",
        "small-fp32-keras-c8-batch_share0",
        "Fair-share batches (BATCH_SHARE=1, default)",
        "greedy batches",
        "small fp32 with 8 clients",
    ),
    (
        "small-int8-keras-c8",
        "small-int8-keras-c8-read_ahead0",
        "Reading the next batch in the transaction that answers the last (READ_AHEAD=1, default)",
        "answering, then reading (READ_AHEAD=0)",
        "small INT8 with 8 clients",
    ),
)


def _setting_lines(ok: list[dict], margin: float) -> list[str]:
    """Each of SETTING_COMPARISONS whose two runs are there; closer than `margin`: no difference. Each stack's img/s
    is taken over how fast the machine ran during it (machine_rate), not over the raw rate before it alone: one raw
    measurement moves by as much as the difference judged here."""
    by_name = {r["name"]: r for r in ok}
    lines = []
    for default_run, other_run, default, other, load in SETTING_COMPARISONS:
        on, off = by_name.get(default_run), by_name.get(other_run)
        if not (on and off and machine_rate(on) and machine_rate(off)):
            continue
        x_on, x_off = (r["ok_per_s"] / machine_rate(r) for r in (on, off))
        gain = x_on / x_off if x_off else 1.0
        verdict = (
            "helped"
            if gain > 1 + margin
            else "hurt"
            if gain < 1 - margin
            else f"made no difference beyond this run's noise ({noise_basis(margin)})"
        )
        lines += [
            f"- {default} {verdict}: {load} {on['ok_per_s']} img/s (mean batch "
            f"{(on.get('stages_ms') or {}).get('mean_batch')}) against {other} {off['ok_per_s']} img/s (mean batch "
            f"{(off.get('stages_ms') or {}).get('mean_batch')}): {x_on:.3f} against {x_off:.3f} x ONNX Runtime's raw "
            "rate while each stack ran (the mean of the rates measured before and after it).",
            "",
        ]
    return lines


def _fast_mode_lines(d: dict) -> list[str]:
    lines = ["### PREPROCESS=fast against keras mode (12 MP photos)", ""]
    a = d.get("agreement_12mp") or {}
    lines += md_table([{"metric": k, "value": v} for k, v in a.items()], [("metric", "agreement"), ("value", "value")])
    return lines + [
        f"Decode to the model's pixels, median ms per photo on one core: 12 MP keras "
        f"{d['decode_ms_12mp'].get('keras')}, fast {d['decode_ms_12mp'].get('fast')}; small photos keras "
        f"{d['decode_ms_small'].get('keras')}, fast {d['decode_ms_small'].get('fast')}.",
        "",
    ]


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
    lines = _raw_reading(f) + _scaling_reading(f) + _e2e_reading(f) + _int8_reading(f) + conditions(f)
    missed = [t for t in targets(f) if t["met"] is False]
    for t in missed:
        lines.append(f"- Missed: {t['target']} — measured {t['value']}, goal {t['goal']} ({t['by']}).")
    if not lines:
        lines.append("- No measurements in this results folder yet: run `make bench` and `make matrix`.")
    return lines


def _raw_reading(f: Figures) -> list[str]:
    """The raw peak against the Keras baseline; lowest latency against most images/s."""
    lines: list[str] = []
    raw, base = f.raw_best(), f.baseline
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
    return lines


def _scaling_reading(f: Figures) -> list[str]:
    """Images/s per core from one core to all of them, and what that advises."""
    lines: list[str] = []
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
    return lines


def _e2e_reading(f: Figures) -> list[str]:
    """What the service sustains end to end against raw, and where the CPU went."""
    lines: list[str] = []
    raw, e2e = f.raw_best(), f.e2e_best()
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
    return lines


def _int8_reading(f: Figures) -> list[str]:
    """INT8 against fp32, raw and end to end, with the agreement the card recorded."""
    lines: list[str] = []
    raw, e2e = f.raw_best(), f.e2e_best()
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
    return lines


def sources_section(folder: Path, shown: Path | str) -> list[str]:
    """Which file each part of the report comes from, and when it was written: a folder collects the runs of several
    tools, and a standalone tool's file missing from it comes from another folder of the same machine (find_path)."""
    rows = []
    for name in REPORT_FILES:
        path = find_path(folder, name)
        if path is not None:
            rows.append(f"| {name} | {path.parent.name} | {written_at(path) or 'not recorded'} |")
    return [
        f"Generated by `python -m stress_test.make_report` from `{shown}`. Each file below is one run of one tool; "
        "what a table sets side by side (a stack and its raw baseline, the peers, the loads) comes from one file, "
        "measured in that run.",
        "",
        "| file | results folder | written (UTC) |",
        "|---|---|---|",
        *rows,
        "",
    ]


def document(folder: Path, f: Figures, shown: Path | str) -> list[str]:
    """The whole report, section by section; `shown` is how the results folder is named in it."""
    words = {True: "met", False: "**missed**", None: "not measured"}
    tgt = [{**t, "met": words.get(t["met"], t["met"])} for t in targets(f)]
    lines = ["# Hardware report", ""] + sources_section(folder, shown)
    lines += machine_section(f) + ["## Targets", ""]
    lines += md_table(
        tgt,
        [
            ("target", "target"),
            ("goal", "goal"),
            ("value", "measured"),
            ("met", "result"),
            ("by", "margin"),
            ("basis", "basis"),
        ],
    )
    lines += raw_section(f) + openvino_section(folder, f) + config_section(folder) + e2e_section(f)
    lines += compose_section(folder) + int8_section(f) + peers_report_section(folder) + v2_section(folder)
    lines += ["## Reading", ""] + reading(f) + [""]
    lines += shedding_section(folder) + explain_section(folder) + capacity_section(folder, f)
    return lines + workloads_section(folder) + cpu_account_section(folder) + split_cores_section(folder)


def cpu_account_section(folder: Path) -> list[str]:
    """CPU-ms per answered image of each part of the stack, per workloads.json run; nothing without CPU accounts."""
    w = read_json(folder / "workloads.json") or {}
    rows = cpu_account_rows(w.get("runs", []))
    if not rows:
        return []
    lines = [
        "## CPU account per answered image (small and 12 MP photos)",
        "",
        "CPU time (utime + stime from /proc, every process under each part) over each workloads run, divided by the "
        "images answered in it; inference is the workers' own counter of process CPU around each inference run "
        "(ONNX Runtime or OpenVINO; stress_test/cpu_account.py). Every part shares the machine's cores with "
        "inference, the load generator included, so inference / all of it is how close end-to-end / raw can get "
        "here; x raw is what the run measured.",
        "",
    ]
    lines += md_table(
        rows,
        [
            ("name", "run"),
            ("ok_per_s", "img/s"),
            ("nginx", "nginx ms"),
            ("gunicorn", "gunicorn/Flask incl. decode ms"),
            ("redis", "Redis ms"),
            ("worker_outside_inference", "worker outside inference ms"),
            ("inference", "inference ms"),
            ("load_generator", "load generator ms"),
            ("other", "supervisord, model service, other ms"),
            ("total", "all ms"),
            ("cpu_bound", "inference / all"),
            ("vs_raw", "x raw measured"),
            ("other_on_machine_cores", "foreign load cores"),
        ],
    )
    for r in rows:
        if r["worker_unsplit"] is not None:
            lines.append(f"- {r['name']}: worker CPU not split (no inference counter): {r['worker_unsplit']} ms.")
    return lines + [""]


V2_RATIO_TARGET = 0.95  # V2 BYTES vs /predict, and V2 FP32 vs raw ONNX Runtime, same stack and run


def v2_section(folder: Path) -> list[str]:
    """The Open Inference Protocol beside /predict and raw ONNX Runtime (bench_v2.json), and Triton's
    perf_analyzer sweep (perf_analyzer.json) beside the project's own load generator."""
    lines: list[str] = []
    if found := find_json(folder, "bench_v2.json"):
        path, b = found
        bytes_word, bytes_by = judge(b.get("ratio_v2_bytes_to_predict"), V2_RATIO_TARGET, True)
        by_batch = b.get("fp32_by_batch") or {
            str(b.get("fp32_batch", 1)): {
                "ok_per_s": b["v2_fp32_ok_per_s"],
                "ratio_to_raw_ort": b.get("ratio_v2_fp32_to_raw_ort"),
            }
        }
        fp32_rows = []
        for size, fp32 in by_batch.items():
            word, by = judge(fp32.get("ratio_to_raw_ort"), V2_RATIO_TARGET, True)
            fp32_rows.append(
                f"| V2 FP32 (preprocessed tensors), {size} image{'s' if size != '1' else ''} per request, "
                f"{fp32.get('clients', b.get('fp32_clients', 16))} clients | {fp32['ok_per_s']} | raw ONNX Runtime "
                f"{b['raw_ort_img_s']} | "
                f"{fp32.get('ratio_to_raw_ort')} | ≥ {V2_RATIO_TARGET} | {word} | {by} |"
            )
        lines += [
            "## Open Inference Protocol (KServe V2)",
            "",
            f"`{b.get('command', 'python -m stress_test.bench_v2')}` (`{path}`): the same stack through nginx, "
            f"{b['workers']} workers × {b['threads']} thread, batch {b['batch_size']}, unique bytes per request, "
            "every client from its own loopback address; raw ONNX Runtime of the same processes × threads in every "
            "round, beside the idle stack.",
            "",
            "| what | answered img/s | against | ratio | target | result | margin |",
            "|---|---|---|---|---|---|---|",
            f"| V2 BYTES, batch 1, {b.get('clients', 8)} clients | {b['v2_bytes_ok_per_s']} | `/predict` "
            f"{b['predict_ok_per_s']} | {b.get('ratio_v2_bytes_to_predict')} | ≥ {V2_RATIO_TARGET} | {bytes_word} | "
            f"{bytes_by} |",
            *fp32_rows,
            "",
        ]
        cpu = b.get("api_cpu_ms_per_answer") or {}
        if cpu:
            shown = ", ".join(f"{mode} {ms}" for mode, ms in cpu.items())
            shown += "".join(
                f", FP32 at {size} images per request {fp32['api_cpu_ms']}"
                for size, fp32 in by_batch.items()
                if fp32.get("api_cpu_ms") is not None and size != str(b.get("fp32_batch", 1))
            )
            lines += [f"API-side CPU (nginx, gunicorn, Redis) per answered image, ms: {shown}.", ""]
    return lines + _perf_analyzer_lines(folder)


def _perf_analyzer_lines(folder: Path) -> list[str]:
    found = find_json(folder, "perf_analyzer.json")
    if found is None:
        return []
    path, pa = found
    rows = [
        {**level, "result": level.get("error") or "ok", "cache_hits": level.get("cache_hits")}
        for level in pa.get("levels", [])
    ]
    columns = [("server_queue_ms", "queue ms"), ("server_input_ms", "decode ms"), ("server_infer_ms", "infer ms")]
    server = columns if any("server_infer_ms" in row for row in rows) else None
    server_note = (
        " Server side, from the statistics extension (means per image): the wait in the job queue, the API's decode"
        " and the inference of the batch that computed it."
    )
    return [
        "### perf_analyzer (`make perf`)",
        "",
        f"{pa.get('tool')}, {pa.get('protocol')}; {pa.get('measurement')}; {pa.get('unique_inputs')} unique "
        f"inputs (`{path}`). The project's own load generator on the same protocol is the V2 BYTES row above."
        + (server_note if server else ""),
        "",
        *md_table(
            rows,
            [
                ("concurrency", "concurrency"),
                ("throughput", "img/s"),
                ("p50_ms", "p50 ms"),
                ("p90_ms", "p90 ms"),
                ("p99_ms", "p99 ms"),
                *(server or []),
                ("cache_hits", "cache hits"),
                ("result", "result"),
            ],
        ),
    ]


SPLIT_LOADS = {"predict": "`/predict` small photos", "lone": "`/predict` one at a time", "fp32": "V2 FP32 tensors"}


def split_cores_section(folder: Path) -> list[str]:
    """The stack with its HTTP tier on cores of its own (split_cores.json): each load against raw ONNX Runtime on
    the model's cores, judged by the workloads' and the protocol's goals."""
    found = find_json(folder, "split_cores.json")
    if found is None:
        return []
    path, s = found
    rows = []
    for variant, v in s["variants"].items():
        for load, e in v["loads"].items():
            lone = load == "lone"
            word, by = judge(
                e.get("gap_ms") if lone else e.get("vs_raw"), e["target_ms" if lone else "target"], not lone
            )
            rows.append(
                {
                    "what": f"{variant}, {SPLIT_LOADS[load]}, {e['clients']} client{'s' if e['clients'] != 1 else ''}",
                    "measured": f"p50 {e['p50_ms']} ms" if lone else f"{e['ok_per_s']} img/s",
                    "raw": f"batch-1 p50 {e['raw_b1_p50_ms']} ms" if lone else f"{v['raw_img_s']} img/s",
                    "figure": f"{e['gap_ms']:+} ms" if lone else e["vs_raw"],
                    "goal": f"≤ {e['target_ms']} ms" if lone else f"≥ {e['target']}",
                    "result": word,
                    "by": by,
                    "model_busy": e["model_cores_busy"],
                    "other_busy": e["http_cores_busy"],
                }
            )
    settings = "".join(f", {name}={value}" for name, value in (s.get("settings") or {}).items())
    return [
        "## The HTTP tier on a core of its own",
        "",
        f"`{s['command']}` (`{path}`): the model service ({s['workers']} worker × {s['threads']} thread, batch "
        f"{s['batch_size']}{settings}) pinned to {_cores(s['model_cores'])}; supervisord, Redis, gunicorn, nginx and "
        f"the load generator to {_cores(s['other_cores'])}; raw ONNX Runtime of the same processes × threads pinned "
        "to the model's cores before the first round and after each, the stack idle beside it: each round is taken "
        "over the mean of the two around it. Closed-loop clients through nginx, unique "
        "bytes per request. The goals are the small-photo and protocol targets', which the workloads judge with "
        "every part of the stack on every core: here nothing but the model service runs on its cores, as where the "
        "API runs on other cores or machines. Busy: the mean share of each group of cores in use during the load.",
        "",
        *md_table(
            rows,
            [
                ("what", "load"),
                ("measured", "measured"),
                ("raw", "raw ONNX Runtime"),
                ("figure", "x raw / gap"),
                ("goal", "goal"),
                ("result", "result"),
                ("by", "margin"),
                ("model_busy", "model cores busy"),
                ("other_busy", "other cores busy"),
            ],
        ),
        "Raw ONNX Runtime moved by up to "
        + ", ".join(f"{_pct(v['noise'])} ({variant})" for variant, v in s["variants"].items() if "noise" in v)
        + " between two of its measurements in this run: ratios closer than that are level.",
        "",
    ]


def _cores(cores: list[int]) -> str:
    return f"core{'s' if len(cores) > 1 else ''} {', '.join(map(str, cores))}"
