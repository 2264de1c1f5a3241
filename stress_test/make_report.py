"""Write hardware_report.md and its PNG plots (stress_test/report/) from one results folder.

python -m stress_test.make_report                          # newest results folder
python -m stress_test.make_report --results-dir stress_test/results/20260101T000000Z

Reads only the summary JSON files of the folder (report_data.py); the sections are in report_sections.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt

from stress_test.report_data import Figures, load, per_core
from stress_test.report_sections import document
from stress_test.results import latest_run_dir, repo_relative

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def e2e_vs_users(f: Figures, out: Path) -> list[str]:
    """Successful /predict per second, and p50/p95 latency, against Locust users, one line per configuration."""
    configs = [c for c in f.e2e() if c.get("locust")]
    if not configs:
        return []
    fig1, ax1 = plt.subplots(figsize=(7, 4))
    fig2, ax2 = plt.subplots(figsize=(7, 4))
    for c in configs:
        users = [r["users"] for r in c["locust"]]
        (line,) = ax1.plot(users, [r["predict_ok_per_s"] for r in c["locust"]], marker="o", label=c["config"])
        ax2.plot(
            users, [r["p50_ms"] for r in c["locust"]], marker="o", color=line.get_color(), label=f"{c['config']} p50"
        )
        ax2.plot(
            users,
            [r["p95_ms"] for r in c["locust"]],
            marker="x",
            ls="--",
            color=line.get_color(),
            label=f"{c['config']} p95",
        )
    raw = f.raw_best()
    if raw:
        ax1.axhline(raw["img_s"], color="grey", ls=":", label=f"raw ORT best fp32 ({raw['img_s']:.1f})")
    for ax, ylabel in ((ax1, "successful /predict per s"), (ax2, "latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["users"] for c in configs for r in c["locust"]}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("Locust users (closed loop)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax1.set_title("End-to-end throughput vs users")
    ax2.set_title("End-to-end latency vs users")
    return [_save(fig1, out / "e2e_throughput_vs_users.png"), _save(fig2, out / "e2e_latency_vs_users.png")]


def raw_configs(f: Figures, out: Path) -> list[str]:
    """Raw ONNX Runtime images/s for every workers x threads x batch point, with the Keras baseline."""
    rows = f.bench.get("runs", [])
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows)), 4))
    labels = [f"{r['variant']}\n{r['workers']}x{r['threads']} b{r['batch']}" for r in rows]
    colors = ["tab:blue" if r["variant"] == "fp32" else "tab:orange" for r in rows]
    ax.bar(range(len(rows)), [r["img_s"] for r in rows], color=colors)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    if f.baseline:
        ax.axhline(f.baseline["img_s"], color="red", ls="--", label=f"Keras baseline ({f.baseline['img_s']:.1f})")
    gflops, peak = f.bench.get("gflops_per_image"), f.machine.get("peak_gflops")
    measured = (f.machine.get("fma_probe") or {}).get("gflops_all_cores")
    if gflops and peak:
        ax.axhline(
            peak / gflops,
            color="black",
            ls=":",
            label=f"fp32 peak, formula at nominal clock ({peak / gflops:.1f} img/s)",
        )
    if gflops and measured:
        ax.axhline(
            measured / gflops, color="green", ls="-.", label=f"fp32 peak, measured FMA ({measured / gflops:.1f} img/s)"
        )
    ax.set_ylabel("images/s (all workers)")
    ax.set_title("Raw ONNX Runtime: workers x threads, batch size")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return [_save(fig, out / "raw_throughput.png")]


def scaling(f: Figures, out: Path) -> list[str]:
    """Images/s per core against cores used, raw (best of each core count) and end to end."""
    points = per_core(f)
    if not points:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant in ("fp32", "int8"):
        pts = [p for p in points if p["variant"] == variant]
        if pts:
            ax.plot([p["cores"] for p in pts], [p["img_s_per_core"] for p in pts], marker="o", label=f"raw {variant}")
        e2e = [c for c in f.e2e(variant) if c.get("sat_ok_per_s")]
        if e2e:
            ax.scatter(
                [c["workers"] * c["threads"] for c in e2e],
                [c["sat_ok_per_s"] / (c["workers"] * c["threads"]) for c in e2e],
                marker="x",
                label=f"end-to-end {variant} (saturation)",
            )
    ax.set_xlabel("cores used by the model (workers x threads)")
    ax.set_ylabel("images/s per core")
    ax.set_xticks(sorted({p["cores"] for p in points}))
    ax.set_title("Per-core scaling")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, out / "per_core_scaling.png")]


def all_plots(f: Figures, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    return raw_configs(f, out) + scaling(f, out) + e2e_vs_users(f, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", help="results folder (default: the newest one holding a bench.json)")
    p.add_argument("--out", default=str(REPO / "hardware_report.md"), help="markdown file (default hardware_report.md)")
    p.add_argument("--plots", default=str(HERE / "report"), help="folder for the PNGs (default stress_test/report)")
    args = p.parse_args()
    folder = Path(args.results_dir) if args.results_dir else latest_run_dir("bench.json")
    if folder is None:
        raise SystemExit("no results yet: run `make bench` and `make matrix` first")
    f = load(folder)
    all_plots(f, Path(args.plots))
    shown = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
    Path(args.out).write_text(repo_relative("\n".join(document(folder, f, shown))))
    print(f"wrote {args.out} and plots in {args.plots}")


if __name__ == "__main__":
    main()
