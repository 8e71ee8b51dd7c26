"""Whether one paced run kept up, and the capacity table made of many runs.

A run keeps up when, over its second half (the first includes SVT-AV1 filling its look-ahead),
the frames waiting for an encoder do not grow and the encoders take frames at the full rate (a
loop starved of CPU adds fewer frames, so nothing waits and yet the streams are not carried).
Throughput / fps over that half is the fractional number of streams the system carries.
"""

from __future__ import annotations

import statistics

import numpy as np

GROWTH_SHARE = 0.03  # waiting may grow by at most 3 % of the input rate (sampling noise) ...
GROWTH_FLOOR = 1.0  # ... or 1 frame/s, whichever is more


def judge(trace: dict, streams: int, fps: int) -> dict:
    """Growth (frames/s), throughput (streams) and CPU ms per frame taken, of one run."""
    t, waiting, taken = (np.asarray(trace[k], dtype=float) for k in ("t", "waiting", "taken"))
    half = t >= t[-1] / 2
    slope = float(np.polyfit(t[half], waiting[half], 1)[0]) if half.sum() >= 3 else float("nan")
    span = t[half][-1] - t[half][0]
    rate = (taken[half][-1] - taken[half][0]) / span if span > 0 else float("nan")
    frames = max(1.0, taken[-1])
    limit = max(GROWTH_FLOOR, GROWTH_SHARE * streams * fps)
    short = rate < (1 - GROWTH_SHARE) * streams * fps
    return {
        "growth_fps": slope,
        "grows": bool(slope > limit or short),
        "waiting_end": int(waiting[-1]),
        "streams_carried": float(min(streams, rate / fps)),
        "cpu_ms_per_frame": {k: 1e3 * v / frames for k, v in trace["cpu_s"].items()},
        "late_ticks": trace.get("late_ticks", 0),
    }


def verdict(verdicts: list[dict]) -> dict:
    """Medians over the repeats of one (size, system, streams): grows if most runs grew."""
    cpu_keys = sorted({k for v in verdicts for k in v["cpu_ms_per_frame"]})
    return {
        "grows": sum(v["grows"] for v in verdicts) * 2 > len(verdicts),
        "growth_fps": statistics.median(v["growth_fps"] for v in verdicts),
        "streams_carried": statistics.median(v["streams_carried"] for v in verdicts),
        "cpu_ms_per_frame": {
            k: statistics.median(v["cpu_ms_per_frame"].get(k, float("nan")) for v in verdicts)
            for k in cpu_keys
        },
        "n": len(verdicts),
        "carried_range": [
            min(v["streams_carried"] for v in verdicts),
            max(v["streams_carried"] for v in verdicts),
        ],  # fmt: skip
        "encoder_cpu_range": _range([v["cpu_ms_per_frame"].get("encoders") for v in verdicts]),
    }


def _range(values: list) -> list[float] | None:
    values = [v for v in values if v is not None]
    return [min(values), max(values)] if values else None


def add_common_cpu(summary: dict, by_streams: dict[str, dict[int, dict]]) -> None:
    """CPU per frame falls as a machine gets busier (an encoder with slack sleeps and wakes for
    every frame), so systems are compared at one stream count: the most that every system ran.
    Adds `common_streams` and `common_cpu_ms_per_frame` to each system's capacity."""
    counts = [set(v) for v in by_streams.values() if v]
    common = max(set.intersection(*counts), default=None) if counts else None
    for system, cap in summary.items():
        if common is not None and "error" not in cap:
            cap["common_streams"] = common
            cap["common_cpu_ms_per_frame"] = by_streams[system][common]["cpu_ms_per_frame"]


def capacity(by_streams: dict[int, dict]) -> dict:
    """From verdicts keyed by stream count: the most streams kept up, and the fractional
    capacity (throughput at the first count that grew, else the most kept up)."""
    kept = [n for n, v in sorted(by_streams.items()) if not v["grows"]]
    grew = [n for n, v in sorted(by_streams.items()) if v["grows"]]
    best = max(kept, default=0)
    fractional = by_streams[grew[0]]["streams_carried"] if grew else float(best)
    cpu_at = best if best else (grew[0] if grew else None)
    spread_at = grew[0] if grew else best
    return {
        "streams": best,
        "fractional": max(float(best), fractional),
        "carried_range": by_streams[spread_at].get("carried_range") if spread_at else None,
        "cpu_ms_per_frame": by_streams[cpu_at]["cpu_ms_per_frame"] if cpu_at else {},
        "cpu_at_streams": cpu_at,
        "limited": not grew,  # never grew: the true capacity may be higher (--max-streams)
    }


def markdown(summary: dict, fps: int) -> str:
    """The capacity table: per size and system, streams kept up, fractional, CPU per frame."""
    lines = [
        f"| size | system | streams kept up at {fps} fps | fractional streams | vs raw "
        "| encoder CPU ms/frame | stats ms/frame (share) | control ms/frame "
        "| fractional, run-to-run (min-max) | encoder CPU ms/frame at the common N |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, systems in summary.items():
        raw = systems.get("raw", {}).get("fractional")
        for name, cap in systems.items():
            if "error" in cap:
                lines.append(f"| {size} | {name} | {cap['error']} | | | | | | | |")
                continue
            cpu = cap["cpu_ms_per_frame"]
            enc, stats, control = (cpu.get(k) for k in ("encoders", "stats", "control"))
            share = ""
            if stats is not None and enc is not None and control is not None:
                share = f"{stats:.2f} ({100 * stats / (enc + stats + control):.0f} %)"
            ratio = f"{100 * cap['fractional'] / raw:.0f} %" if raw else ""
            kept = f"{cap['streams']}{'+' if cap['limited'] else ''}"
            lines.append(
                f"| {size} | {name} | {kept} | {cap['fractional']:.2f} | {ratio} "
                f"| {_ms(enc)} | {share or '-'} | {_ms(control)} | {_spread(cap)} "
                f"| {_common(cap)} |"
            )
    return "\n".join(lines) + "\n"


def _spread(cap: dict) -> str:
    low_high = cap.get("carried_range")
    return "-" if not low_high else f"{low_high[0]:.2f}-{low_high[1]:.2f}"


def _common(cap: dict) -> str:
    if "common_streams" not in cap:
        return "-"
    return f"{_ms(cap['common_cpu_ms_per_frame'].get('encoders'))} (N={cap['common_streams']})"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
