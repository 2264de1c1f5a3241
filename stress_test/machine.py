"""What machine a benchmark ran on, and its fp32 peak, read from /proc so every figure can be put in context."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

FMA_UNITS = 2  # FMA pipes per core on current x86 server cores (Zen 3-5, Skylake-SP gold+ and later)
FLOP_PER_FMA = 2
LIBRARIES = (
    "onnxruntime",
    "openvino",
    "numpy",
    "pillow",
    "tensorflow-cpu",
    "keras",
    "onnx",
    "tf2onnx",
    "flask",
    "gunicorn",
    "redis",
    "locust",
    "matplotlib",
    "psutil",
)


def _cpuinfo() -> list[dict[str, str]]:
    """One dict per logical CPU from /proc/cpuinfo (empty off Linux)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpus: list[dict[str, str]] = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        cpus.append({k.strip(): v.strip() for k, v in fields.items()})
    return [c for c in cpus if c]


def cores() -> int:
    """CPUs this process may run on (what a container or taskset actually grants)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (from /proc/stat): compared with our own, it shows foreign load."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def simd_lanes(flags: set[str], vendor: str, family: int) -> tuple[int, str]:
    """fp32 lanes one FMA unit retires per cycle, and the ISA name. Zen 4 runs AVX-512 on 256-bit halves."""
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == 25:
            return 8, "AVX-512 (Zen 4: double-pumped 256-bit, 8 lanes/cycle)"
        return 16, "AVX-512"
    if "avx2" in flags and "fma" in flags:
        return 8, "AVX2+FMA"
    return 4, "SSE"


def describe() -> dict[str, Any]:
    """CPU, memory, OS and library versions, plus the fp32 peak with the formula that produced it."""
    cpus = _cpuinfo()
    first = cpus[0] if cpus else {}
    flags = set(first.get("flags", "").split())
    mhz = [float(c["cpu MHz"]) for c in cpus if "cpu MHz" in c]
    clock_ghz = (sum(mhz) / len(mhz) / 1000.0) if mhz else 0.0
    vendor, family = first.get("vendor_id", ""), int(first.get("cpu family", "0") or 0)
    lanes, isa = simd_lanes(flags, vendor, family)
    n = cores()
    peak = n * FMA_UNITS * lanes * FLOP_PER_FMA * clock_ghz
    mem_kb = 0
    if Path("/proc/meminfo").exists():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    os_name = platform.platform()
    if Path("/etc/os-release").exists():
        rel = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        os_name = f"{rel.get('PRETTY_NAME', '').strip(chr(34))} (kernel {platform.release()})"
    return {
        "cpu_model": first.get("model name", platform.processor()),
        "vendor": vendor,
        "family": family,
        "model": first.get("model", ""),
        "cores": n,
        "logical_cpus": len(cpus) or n,
        "hypervisor": "hypervisor" in flags,
        "flags": {
            f: f in flags for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
        },
        "clock_ghz": round(clock_ghz, 3),
        "simd_fp32_lanes": lanes,
        "isa": isa,
        "fma_units": FMA_UNITS,
        "peak_gflops": round(peak, 1),
        "peak_formula": (
            f"{n} cores x {FMA_UNITS} FMA units x {lanes} fp32 lanes ({isa}) x {FLOP_PER_FMA} FLOP/FMA"
            f" x {clock_ghz:.3f} GHz ('cpu MHz' in /proc/cpuinfo) = {peak:.1f} GFLOP/s;"
            " under AVX-512 load the real clock may differ (boost, or AVX-512 downclocking) and in a VM 'cpu MHz'"
            " is the nominal clock: see the measured FMA peak"
        ),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": os_name,
        "python": platform.python_version(),
        "versions": versions,
    }


def fma_probe(seconds: float = 0.5, repeats: int = 3) -> dict[str, Any] | None:
    """Measured fp32 FMA GFLOP/s on 1 core and on all cores (fma_probe.c built with gcc); None without gcc.

    The formula needs the real clock, which a VM's /proc/cpuinfo may not show; this measures what the cores
    actually retire, with the same SIMD width the formula assumes."""
    gcc = shutil.which("gcc")
    if not gcc:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "fma_probe"
        build = subprocess.run(
            [gcc, "-O2", "-march=native", "-pthread", str(Path(__file__).with_name("fma_probe.c")), "-o", str(exe)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if build.returncode != 0:
            return None
        runs = {}
        for n in sorted({1, cores()}):  # best of a few: foreign load only ever lowers the figure
            outs = [
                json.loads(
                    subprocess.run(
                        [str(exe), str(n), str(seconds)], capture_output=True, text=True, timeout=60 + seconds
                    ).stdout
                )
                for _ in range(repeats)
            ]
            runs[n] = max(outs, key=lambda o: o["gflops"])
    lanes, one, alln = runs[1]["lanes"], runs[1]["gflops"], runs[cores()]["gflops"]
    return {
        "gflops_1_core": one,
        "gflops_all_cores": alln,
        "lanes": lanes,
        "effective_ghz_1_core": round(one / (FMA_UNITS * lanes * FLOP_PER_FMA), 2),
        "how": f"fma_probe.c: 12 independent {lanes}-lane FMA chains per thread, {seconds} s, 1 and {cores()} "
        f"threads, best of {repeats}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe", action="store_true", help="also measure the FMA peak with fma_probe.c (needs gcc)")
    args = parser.parse_args()
    info = describe()
    if args.probe:
        info["fma_probe"] = fma_probe()
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
