"""`shmpipe record`: its arguments, and the wiring of sources, Pipeline, keyboard and live view
around a RecordSession (shmpipe.tools.record.session), with the exit codes of
shmpipe.tools.arguments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shmpipe.tools.arguments import (
    EXIT_BAD_ARGUMENTS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    count,
    number_in,
    positive,
    writable_folder,
)

RECORD_EPILOG = """\
sources:
  opencv:0  opencv:/dev/video2    a camera (needs pip install -e '.[camera]'), optionally
  opencv:0:640x480:MJPG           with WIDTHxHEIGHT and a pixel format (default MJPG where
                                  the camera has it; YUYV fills USB 2.0 with one camera)
  opencv:clip.mp4                 a video file through OpenCV
  file:clip.mp4                   any video PyAV decodes, looped, paced at --fps
  synthetic  synthetic:480x640    moving camera-like test content

keys (in a terminal; --no-keyboard to turn them off):
  →    finish the episode early (during the reset: end the reset)
  ←    cancel the episode and record it again (after the reset)
  Esc  save the episode and stop
  Ctrl-C  discard the open episode and stop at once (exit code 130)

A camera NAME becomes the feature observation.images.NAME unless it contains a dot.
This command drives no robot: every --feature is recorded as zeros.
If --root already holds a dataset, recording resumes after its last episode (the
settings must match it). Exit codes: 0 ok, 1 bad arguments, 2 a recording error,
130 Ctrl-C.
"""


def add_record(commands: argparse._SubParsersAction) -> None:
    from shmpipe.tools.record.display import add_display_arguments
    from shmpipe.video.encoder_config import VideoEncoderConfig

    default = VideoEncoderConfig()
    parser = commands.add_parser(
        "record",
        help="record episodes from cameras, video files or synthetic sources",
        description="Record episodes into the LeRobot v3.0 dataset at --root: each camera is\n"
        "captured straight into its shared-memory ring and encoded while recording goes on.\n"
        "A live view shows capture and encode rates; a summary follows each episode.",
        epilog=RECORD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arg = parser.add_argument
    arg("--root", required=True, type=writable_folder, metavar="DIR",
        help="the dataset's folder (made if missing)")  # fmt: skip
    arg("--fps", type=positive(int), default=30, metavar="N", help="recording rate (default: 30)")
    arg("--camera", dest="cameras", action="append", type=_camera, required=True,
        metavar="NAME=SOURCE", help="a camera and its source, e.g. front=opencv:0 (repeat "
        "for more cameras)")  # fmt: skip
    arg("--feature", dest="features", action="append", type=_feature, default=[],
        metavar="NAME=DIMS[:ENTRY,...]", help="a numeric feature, its size and optionally its "
        "entries' names, e.g. observation.state=6 or action=3:x,y,z; recorded as zeros (repeat "
        "for more)")  # fmt: skip
    arg("--task", required=True, type=_non_empty, metavar="TEXT",
        help='the task text, e.g. "pick the cube"')  # fmt: skip
    arg("--episodes", type=positive(int), default=1, metavar="N",
        help="episodes to record (default: 1)")  # fmt: skip
    arg("--episode-time", type=positive(float), default=60.0, metavar="SECONDS",
        help="length of each episode (default: 60)")  # fmt: skip
    seconds = number_in(0, float("inf"), "a number of seconds >= 0")
    arg("--reset-time", type=seconds, default=60.0, metavar="SECONDS",
        help="time to reset the scene between episodes, not recorded (default: 60)")  # fmt: skip
    arg("--backend", choices=("process", "thread"), default=None,
        help="encoders in processes (default) or threads of this process")  # fmt: skip
    video = parser.add_argument_group("video encoding (LeRobot's defaults)")
    video.add_argument("--vcodec", default=default.vcodec, metavar="CODEC",
                       help=f"(default: {default.vcodec})")  # fmt: skip
    video.add_argument("--crf", type=int, default=default.crf, metavar="N",
                       help=f"(default: {default.crf})")  # fmt: skip
    video.add_argument("--preset", type=_preset, default=default.preset,
                       help=f"(default: {default.preset})")  # fmt: skip
    video.add_argument("--g", type=positive(int), default=default.g, metavar="N",
                       help=f"keyframe interval (default: {default.g})")  # fmt: skip
    add_display_arguments(parser)
    arg("--no-keyboard", action="store_true", help="ignore keys (for scripts)")
    arg("--no-live", action="store_true",
        help="no live view: one line per episode (also when stdout is not a terminal)")  # fmt: skip
    parser.set_defaults(run=_run_record)


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty text")
    return text


def _camera(text: str) -> tuple[str, str]:
    name, equals, spec = text.partition("=")
    if not equals or not name or not spec:
        raise argparse.ArgumentTypeError(
            f"expected NAME=SOURCE (e.g. front=opencv:0 or wrist=file:clip.mp4), got {text!r}"
        )
    return name, spec


def _feature(text: str) -> tuple[str, tuple[int, ...], list[str] | None]:
    """NAME=DIMS[:ENTRY,...]: "observation.state=3:x,y,z" -> info.json's names ["x", "y", "z"]."""
    name, equals, rest = text.partition("=")
    dims, colon, entries = rest.partition(":")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not equals or not name or not shape or (colon and not entries):
        raise argparse.ArgumentTypeError(f"expected NAME=DIMS or NAME=DIMS:ENTRY,... (e.g. "
                                         f"observation.state=3:x,y,z), got {text!r}")  # fmt: skip
    if min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"{text}: a feature needs at least 1 dimension, "
                                         "each of size >= 1")  # fmt: skip
    names = entries.split(",") if colon else None
    if names is not None and len(shape) != 1:
        raise argparse.ArgumentTypeError(f"{text}: entry names are for 1-D features (NAME=N:...)")
    if names is not None and (len(names) != shape[0] or not all(names)):
        raise argparse.ArgumentTypeError(f"{text}: expected {shape[0]} comma-separated entry "
                                         f"names after the ':', got {len(names)}")  # fmt: skip
    return name, shape, names


def _preset(text: str) -> int | str:
    """SVT-AV1 presets are numbers, x264/x265 ones words (ultrafast ...)."""
    return int(text) if text.lstrip("-").isdigit() else text


def _run_record(args: argparse.Namespace) -> int:
    """Open the sources and the pipeline, then hand over to RecordSession; the terminal side
    (keys, live view, printed summaries) is wired in here."""
    import signal
    from contextlib import ExitStack

    from rich.console import Console

    from shmpipe.tools.record.figures import camera_key
    from shmpipe.tools.record.session import Plan

    cameras = {camera_key(name): spec for name, spec in args.cameras}
    if len(cameras) < len(args.cameras):
        return _bad_arguments("--camera: two cameras have the same name")
    plan = Plan(args.fps, args.task, args.episodes, args.episode_time, args.reset_time,
                {name: shape for name, shape, _ in args.features})  # fmt: skip
    console = Console(highlight=False)
    live = not args.no_live and console.is_terminal
    previous_sigint = signal.getsignal(signal.SIGINT)
    saved: list = []
    try:
        with ExitStack() as stack:
            return _record(args, cameras, plan, console, live, stack, saved)
    except KeyboardInterrupt:
        kept = f"{count(len(saved), 'episode')} saved in this run " + (
            "is" if len(saved) == 1 else "are")
        print(f"\ninterrupted: the open episode was discarded; {kept} intact in {args.root}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous_sigint)


def _record(args, cameras, plan, console, live, stack, saved) -> int:
    import signal
    from contextlib import ExitStack

    from shmpipe import Pipeline, VideoEncoderConfig
    from shmpipe.tools.record.display import preview_from
    from shmpipe.tools.record.figures import EpisodeSaved
    from shmpipe.tools.record.keyboard import Keyboard
    from shmpipe.tools.record.live_view import LiveView, render_summary
    from shmpipe.tools.record.output import say, warnings_on_screen
    from shmpipe.tools.record.session import RecordSession
    from shmpipe.tools.sources import SourceError, open_source

    stack.enter_context(warnings_on_screen(console if live else None))
    try:
        sources = {}
        for key, spec in cameras.items():
            sources[key] = open_source(spec, plan.fps)
            stack.callback(sources[key].close)
        encoder = VideoEncoderConfig(vcodec=args.vcodec, crf=args.crf, preset=args.preset, g=args.g)
        names = {name: entries for name, _, entries in args.features if entries}
        pipe = Pipeline(args.root, plan.fps, {key: s.shape for key, s in sources.items()},
                        plan.features, encoder=encoder, backend=args.backend,
                        capture_times=True, feature_names=names or None,
                        preview=preview_from(args))  # fmt: skip
        stack.enter_context(pipe)
        if (need := pipe.status().capacity) is not None:
            print(f"encoders: {need.describe()}", flush=True)
    except (SourceError, ValueError) as error:  # a source that does not open (checked before
        return _bad_arguments(str(error))  # recording), a bad spec, a setting refused
    except (RuntimeError, OSError) as error:
        return _recording_error(error)

    def show(event) -> None:
        if isinstance(event, EpisodeSaved):
            saved.append(event.summary)
        text = _event_text(event, args.root, plan, delivers)
        if text is None:
            return
        if live and isinstance(event, EpisodeSaved):
            console.print(render_summary(event.summary))
        elif live:
            console.print(text)
        else:
            say(text)

    delivers = {key: f"{cameras[key]} -> {s.describe()}" for key, s in sources.items()}
    session = RecordSession(pipe, sources, plan, on_event=show)
    keys = not args.no_keyboard and Keyboard.usable()
    failure = None
    with ExitStack() as terminal:  # closed before the closing words are printed
        if keys:
            terminal.enter_context(Keyboard(session.press))
        if live:
            terminal.enter_context(LiveView(lambda: session.figures, console, keys))
        try:
            result = session.run()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut clean-up
            raise
        except (RuntimeError, OSError, ValueError) as error:
            failure = error
    if failure is not None:
        return _recording_error(failure)
    if result.saved:
        first, last = result.saved[0].episode_index, result.saved[-1].episode_index
        done = f"saved episodes {first}..{last}" if last > first else f"saved episode {first}"
    else:
        done = "saved no episode"
    stopped = " (stopped early)" if result.stopped_early else ""
    say(f"{done} to {args.root}{stopped}")
    return EXIT_OK



def _event_text(event, root: Path, plan, delivers: dict[str, str]) -> str | None:
    from shmpipe.tools.record import figures

    if isinstance(event, figures.SessionStarted):  # and what each camera delivers ("640x480 MJPG")
        start = f"resuming at episode {event.first_episode}" if event.resumed else "recording"
        head = (f"{start}: {count(event.episodes, 'episode')} of {plan.episode_time_s:g} s at "
                f"{plan.fps} fps into {root}; cameras (width x height):")  # fmt: skip
        cameras = [f"  {figures.camera_label(key)}: {text}" for key, text in delivers.items()]
        return "\n".join([head, *cameras])
    if isinstance(event, figures.EpisodeSaved):
        return event.summary.line()
    if isinstance(event, figures.EpisodeCancelled):
        return (f"episode {event.episode_index} cancelled ({event.frames} frames discarded): "
                "recording it again")  # fmt: skip
    if isinstance(event, figures.Notice):
        return event.text
    return None



def _bad_arguments(message: str) -> int:
    print(f"shmpipe record: error: {message}", file=sys.stderr)
    return EXIT_BAD_ARGUMENTS


def _recording_error(error: BaseException) -> int:
    print(f"shmpipe record: recording failed: {error}", file=sys.stderr)
    return EXIT_PROBLEMS
