"""Turn the variants' results into the comparison table, and say plainly which targets fail.

The targets are the issue's, measured for 3 cameras 480x640 paced at 30 fps for 10 s on a
2-core machine; they apply to shmpipe (process, thread, loan) and are never adjusted here.
"""

from __future__ import annotations

import math

from bench.variants import VARIANTS, Scenario

SHMPIPE = ("process", "thread", "loan")
ADD_FRAME_P99_MS = 0.5  # copying every image
ADD_FRAME_LOAN_P99_MS = 0.1  # images in loaned slots: nothing to copy
VIDEO_FLUSH_S = 0.35
ENCODE_RATIO = 0.95


def add_ratios(results: dict, scenario: Scenario) -> None:
    """Sustained encode fps as a fraction of the raw limit measured the same way.

    shmpipe encodes all cameras at once, so its reference is the raw limit with K cameras
    (paced: min(fps, that), since frames arrive no faster). before encodes one camera at a
    time after recording, so its reference is the raw single-camera rate.
    """
    raw = results.get("raw", {}).get("encode")
    if not raw:
        return
    limit = raw["sustained_fps_per_camera"]
    references = {
        "process": min(scenario.fps, limit) if scenario.paced else limit,
        "before": raw["single_camera"]["sustained_fps"],
    }
    references["thread"] = references["loan"] = references["process"]
    for name, reference in references.items():
        encode = results.get(name, {}).get("encode")
        if not encode or encode.get("sustained_fps_per_camera") is None:
            continue
        encode["reference_fps_per_camera"] = reference
        encode["ratio_to_raw"] = encode["sustained_fps_per_camera"] / reference


def _get(result: dict, *keys):
    for key in keys:
        if not isinstance(result, dict) or result.get(key) is None:
            return None
        result = result[key]
    return result


def _num(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _cpu(result: dict) -> str:
    cpu = result.get("cpu_s") or {}
    return "; ".join(f"{label} {_num(s, 1)}" for label, s in cpu.items()) or "–"


def _dropped(result: dict) -> str:
    dropped = result.get("frames_dropped")
    return "–" if dropped is None else str(sum(dropped.values()))


def _late(result: dict) -> str:
    if result.get("ticks_late") is None:
        return "–"
    return f"{result['ticks_late']} of {result['ticks']}"


def _triple(summary: dict | None, keys=("p50", "p99", "max"), digits: int = 2) -> str:
    if not summary:
        return "–"
    return " / ".join(_num(summary[k], digits) for k in keys)


def _ratio(result: dict) -> str:
    ratio = _get(result, "encode", "ratio_to_raw")
    return "–" if ratio is None else f"{100 * ratio:.0f} %"


def _field(*keys: str, digits: int = 2):
    """A table cell showing the number at result[keys[0]][keys[1]]..."""
    return lambda result: _num(_get(result, *keys), digits)


def _data_and_meta(result: dict) -> str:
    """data + meta (shmpipe: from finish_episode's timings), or data alone where meta is not
    reported (before)."""
    parts = [_get(result, "finish_s", key) for key in ("data", "meta")]
    return _num(None if parts[0] is None else parts[0] + (parts[1] or 0.0), 3)


ROWS = [  # label, cell, target
    ("add_frame p50 / p99 / max (ms)", lambda r: _triple(r.get("add_frame_ms"), digits=3),
     f"p99 ≤ {ADD_FRAME_P99_MS} (loan ≤ {ADD_FRAME_LOAN_P99_MS})"),
    ("loop lateness p50 / p99 / max (ms)", lambda r: _triple(r.get("lateness_ms")), ""),
    ("ticks late by > 1 period", _late, "0"),
    ("status() call p99 (ms)", _field("status_call_ms", "p99", digits=3), ""),
    ("waiting for encoders before finish, unpaced (s)", _field("drain_s", digits=3), ""),
    ("finish total (s)", _field("finish_s", "total", digits=3), ""),
    ("· video flush (s)", _field("finish_s", "video_flush", digits=3), f"≤ {VIDEO_FLUSH_S}"),
    ("· · of which the encoders' own flush (s)", _field("finish_s", "encoder_flush", digits=3),
     ""),
    ("· stats (s), shmpipe: during the flush", _field("finish_s", "stats", digits=3), ""),
    ("· data + meta (s), shmpipe: mostly during the flush", _data_and_meta, ""),
    ("· after the last worker was done (s)", _field("finish_s", "after_flush", digits=3), ""),
    ("· · of which videos' sync + info.json (s)", _field("finish_s", "commit", digits=3), ""),
    ("sustained encode fps / camera", _field("encode", "sustained_fps_per_camera", digits=1), ""),
    ("· ratio to raw limit", _ratio, f"≥ {100 * ENCODE_RATIO:.0f} %"),
    ("end-to-end fps / camera (loop + flush)",
     _field("encode", "end_to_end_fps_per_camera", digits=1), ""),
    ("frames dropped (all cameras)", _dropped, "0"),
    ("video bytes / frame", _field("bytes_per_frame", digits=0), ""),
    ("peak RSS, control process (MB)", _field("rss_mb", "peak", digits=0), ""),
    ("· above RSS at start (MB)", _field("rss_mb", "peak_above_start", digits=0), ""),
    ("CPU seconds per process", _cpu, ""),
]  # fmt: skip


def _over(what: str, value: float | None, target: float, unit: str) -> str | None:
    """'<what> is <value>, <by> over the <target> target', or None if it is within it."""
    if value is None or value <= target:
        return None
    over = value - target
    return (f"{what} is {value:.3f} {unit}, {over:.3f} {unit} ({100 * over / target:.0f} %) "
            f"over the {target} {unit} target")  # fmt: skip


def misses(name: str, result: dict, scenario: Scenario) -> list[str]:
    """Plain statements of every target this shmpipe variant misses, and by how much."""
    target = ADD_FRAME_LOAN_P99_MS if name == "loan" else ADD_FRAME_P99_MS
    out = [_over("add_frame p99", _get(result, "add_frame_ms", "p99"), target, "ms")]
    late = result.get("ticks_late")
    if late:
        worst = _get(result, "lateness_ms", "max")
        out.append(
            f"{late} of {result['ticks']} ticks woke more than one period "
            f"({1e3 / scenario.fps:.1f} ms) late (worst {worst:.1f} ms); target: none"
        )
    flush = _get(result, "finish_s", "video_flush")
    out.append(_over("finish_episode's video part", flush, VIDEO_FLUSH_S, "s"))
    out = [text for text in out if text]
    ratio = _get(result, "encode", "ratio_to_raw")
    if ratio is not None and ratio < ENCODE_RATIO:
        out.append(
            f"sustained encode rate is {100 * ratio:.0f} % of the reference "
            f"({_get(result, 'encode', 'reference_fps_per_camera'):.1f} fps per camera), "
            f"{100 * (ENCODE_RATIO - ratio):.0f} points under the {100 * ENCODE_RATIO:.0f} % target"
        )
    dropped = result.get("frames_dropped") or {}
    if any(dropped.values()):
        out.append(f"{sum(dropped.values())} frames dropped ({dropped}); target: 0")
    return out


def markdown(results: dict, scenario: Scenario) -> str:
    names = [n for n in VARIANTS if n in results]
    mode = "paced" if scenario.paced else "unpaced"
    any_ok = next((r for r in results.values() if "machine" in r), {})
    m = any_ok.get("machine", {})
    lines = [
        f"## {scenario.cameras} cameras {scenario.height}x{scenario.width}, {mode} "
        f"{scenario.fps} fps, {scenario.seconds:g} s ({scenario.num_frames} frames per camera)",
        "",
        f"Machine: {m.get('cores', '?')} cores, {m.get('cpu', '?')}; Python {m.get('python', '?')},"
        f" PyAV {m.get('pyav', '?')}{', running as root' if m.get('root') else ''}.",
        "",
        "| | " + " | ".join(names) + " | target (shmpipe) |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for label, cell, target in ROWS:
        cells = [("error" if "error" in results[n] else cell(results[n])) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")
    busy = [_get(results[n], "machine", "busy_before_start") for n in names]
    lines.append(
        "| machine busy just before the variant (others' load) | "
        + " | ".join("–" if b is None else f"{100 * b:.0f} %" for b in busy)
        + " | ~0 % |"
    )
    lines += ["", "### Targets", ""]
    for name in SHMPIPE:
        if name not in results:
            continue
        if "error" in results[name]:
            lines.append(f"- **{name}** did not run: {results[name]['error']}")
            continue
        missed = misses(name, results[name], scenario)
        if missed:
            lines += [f"- **{name}** misses: {text}." for text in missed]
        else:
            lines.append(f"- **{name}** meets every target.")
    lines += ["", "### Notes", ""] + _notes(results, scenario)
    return "\n".join(lines) + "\n"


def _notes(results: dict, scenario: Scenario) -> list[str]:
    notes = []
    if (scenario.cameras, scenario.height, scenario.width, scenario.fps, scenario.seconds) != (
        3,
        480,
        640,
        30,
        10,
    ) or not scenario.paced:
        notes.append(
            "- The targets are defined for 3 cameras 480x640 paced at 30 fps for 10 s; "
            "for this scenario read them as indicative."
        )
    if not scenario.paced:
        notes.append(
            "- Unpaced, the loop outruns the encoders; the bench samples status() until they have"
            " taken every frame and only then calls finish_episode, so finish is the flush alone"
            " and the wait is reported on its own row."
        )
    if scenario.paced:
        notes.append(
            "- Paced, an encoder can only go as fast as frames arrive, so the encode ratio is taken"
            " against min(fps, raw limit): it says whether encoding keeps up, not how fast it"
            " could go. Run with `--unpaced` to compare throughput with the raw limit."
        )
    if "before" in results:
        notes.append(
            "- before encodes one camera at a time after recording (PNG read + encode), so its"
            " ratio is against the raw single-camera rate."
        )
    raw = results.get("raw", {})
    single = _get(raw, "encode", "single_camera")
    if single:
        notes.append(
            f"- Raw limit: {raw['encode']['sustained_fps_per_camera']:.1f} fps per camera with "
            f"{scenario.cameras} encoding at once (whole loop incl. look-ahead fill: "
            f"{raw['encode']['loop_fps_per_camera']:.1f}); one camera alone: "
            f"{single['sustained_fps']:.1f} fps, flush {single['flush_s']:.3f} s."
        )
    before = results.get("before", {})
    steps = _get(before, "finish_s", "steps")
    if steps:
        pending = _get(before, "finish_s", "png_writes_pending_at_save")
        notes.append(
            "- before: a thread pool writes the PNGs during recording (LeRobot's image writer);"
            " save_episode "
            + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
            + f" ({pending if pending is not None else '?'} PNG writes still pending at save);"
            " its video flush above is png_write_wait + encode."
        )
    digests = {r.get("frames_digest") for r in results.values() if "frames_digest" in r}
    if len(digests) > 1:
        notes.append(f"- WARNING: variants saw different frames (digests {sorted(digests)}).")
    for name, result in results.items():
        if "error" in result and name not in SHMPIPE:
            notes.append(f"- {name} did not run: {result['error']}")
    return notes


def one_line(result: dict) -> str:
    """A console summary of one variant's result."""
    if "error" in result:
        return "ERROR " + result["error"]
    parts = []
    if result.get("add_frame_ms"):
        parts.append(f"add_frame p99 {result['add_frame_ms']['p99']:.3f} ms")
    if result.get("ticks_late") is not None:
        parts.append(f"late ticks {result['ticks_late']}")
    if _get(result, "finish_s", "total") is not None:
        parts.append(f"finish {result['finish_s']['total']:.3f} s")
    if _get(result, "encode", "sustained_fps_per_camera") is not None:
        parts.append(f"encode {result['encode']['sustained_fps_per_camera']:.1f} fps/cam")
    parts.append(f"dropped {_dropped(result)}")
    return ", ".join(parts)
