"""PNG plots of a scenario's results, drawn only if matplotlib imports (the `bench` extra).

add_frame latency histogram, ring occupancy over time, finish time per variant, and the
control loop's lateness per tick.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.variants import Scenario

COLORS = {"process": "tab:blue", "thread": "tab:orange", "loan": "tab:purple",
          "before": "tab:gray", "raw": "tab:green"}


def write_plots(results: dict, scenario: Scenario, out_dir: Path) -> list[Path]:
    """Draw every plot the results allow; returns the files written (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    ok = {name: r for name, r in results.items() if "error" not in r}
    written = []
    for draw in (_add_frame_histogram, _ring_occupancy, _finish_times, _lateness):
        fig = draw(plt, ok, scenario)
        if fig is None:
            continue
        path = out_dir / f"{draw.__name__.strip('_')}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _title(what: str, scenario: Scenario) -> str:
    mode = "paced" if scenario.paced else "unpaced"
    return (
        f"{what}: {scenario.cameras} x {scenario.height}x{scenario.width}, "
        f"{mode} {scenario.fps} fps, {scenario.seconds:g} s"
    )


def _add_frame_histogram(plt, results: dict, scenario: Scenario):
    series = {n: r["series"]["add_frame_ms"] for n, r in results.items() if "series" in r}
    series = {n: np.asarray(v) for n, v in series.items() if len(v)}
    if not series:
        return None
    everything = np.concatenate(list(series.values()))
    low, high = max(everything.min(), 1e-4), max(everything.max(), 1e-3)
    bins = np.logspace(np.log10(low), np.log10(high) + 1e-9, 60)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in series.items():
        ax.hist(values, bins=bins, histtype="step", lw=1.5, label=name, color=COLORS.get(name))
    ax.axvline(0.5, color="red", ls="--", lw=1, label="target p99 0.5 ms")
    ax.set(xscale="log", xlabel="add_frame latency (ms)", ylabel="calls")
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_minor_formatter(
        lambda value, _: f"{value:g}" if _leading_digit(value) in (2, 5) else ""
    )
    ax.set_title(_title("add_frame latency", scenario))
    ax.legend()
    return fig


def _leading_digit(value: float) -> int:
    return round(value / 10 ** np.floor(np.log10(value))) if value > 0 else 0


def _ring_occupancy(plt, results: dict, scenario: Scenario):
    rings = {n: r for n, r in results.items() if "ring" in r.get("series", {})}
    if not rings:
        return None
    fig, axes = plt.subplots(len(rings), 1, figsize=(8, 3 * len(rings)), squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], rings.items(), strict=True):
        ring = result["series"]["ring"]
        for cam, used in ring["slots_used"].items():
            ax.plot(ring["t"], used, label=cam.rsplit(".", 1)[-1])
        total = max(result.get("ring_slots", {}).values(), default=0)
        top = max(5, 1.3 * max((max(u, default=0) for u in ring["slots_used"].values()), default=0))
        if total and total <= top:
            ax.axhline(total, color="red", ls="--", lw=1, label=f"capacity {total}")
        elif total:
            ax.plot([], [], " ", label=f"capacity {total} slots (off scale)")
        ax.set(xlabel="time (s)", ylabel="slots used", title=f"{name} backend", ylim=(0, top))
        ax.legend(loc="upper left", fontsize="small")
    fig.suptitle(_title("Ring occupancy", scenario))
    fig.tight_layout()
    return fig


def _finish_times(plt, results: dict, scenario: Scenario):
    names = [n for n, r in results.items() if r.get("finish_s")]
    if not names:
        return None
    parts = ("video_flush", "stats", "data")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(parts)
    x = np.arange(len(names))
    for i, part in enumerate(parts):
        values = [results[n]["finish_s"].get(part) or np.nan for n in names]
        bars = ax.bar(x + (i - 1) * width, values, width, label=part)
        ax.bar_label(bars, fmt="%.3g", fontsize="x-small")
    ax.axhline(0.35, color="red", ls="--", lw=1, label="target video part 0.35 s")
    totals = [results[n]["finish_s"].get("total") for n in names]
    labels = [
        f"{n}\n(total {t:.3g} s)" if t else f"{n}\n(flush only)"
        for n, t in zip(names, totals, strict=True)
    ]
    ax.set_xticks(x, labels)
    ax.set(yscale="log", ylabel="seconds (log scale)")
    ax.set_title(_title("finish_episode / save_episode", scenario))
    ax.legend(fontsize="small")
    return fig


def _lateness(plt, results: dict, scenario: Scenario):
    series = {n: r.get("series", {}).get("lateness_ms") for n, r in results.items()}
    series = {n: v for n, v in series.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in series.items():
        ax.plot(np.maximum(values, 1e-3), lw=0.8, label=name, color=COLORS.get(name))
    ax.axhline(1e3 / scenario.fps, color="red", ls="--", lw=1, label="one period")
    ax.set(yscale="log", xlabel="tick", ylabel="wake-up lateness (ms)")
    ax.set_title(_title("Control loop lateness", scenario))
    ax.legend(fontsize="small")
    return fig
