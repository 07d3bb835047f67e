"""The ``anonymise`` command line: the only place that prints or exits."""

from __future__ import annotations

import enum
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .config import MAX_IMGSZ, MIN_IMGSZ, PRESETS, TARGET_PERSON_PX, Audio, Config, Fill, Mode, auto_imgsz
from .errors import AnonymiseError, ConfigError, Stopped

#: click's exceptions (Typer >= 0.2x vendors its own copy of click): usage errors and the bare-command help
_CLICK_ERRORS = sys.modules[typer.BadParameter.__module__]
_NO_ARGS = getattr(_CLICK_ERRORS, "NoArgsIsHelpError", ())


class _OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a bad value) are bad input like any other: one line, exit 1.

    Click's own are three lines (usage, hint, error) and exit 2.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as e:  # bare ``anonymise``: the help, as click prints it
            print(e.ctx.get_help() if e.ctx else e.format_message(), file=sys.stderr)
            sys.exit(2)
        except _CLICK_ERRORS.UsageError as e:
            where = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
            _print_error(f"{e.format_message()}{where}")
            sys.exit(1)
        except typer.Abort:
            _print_error("interrupted")
            sys.exit(130)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="anonymise",
    help=(
        "Remove every person from a video, fill the hole with the scene behind them, keep only the motion as a "
        "skeleton."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: wraps at 80 columns, and [ray] stays [ray]
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_D = Config()
_BALANCED, _FAST = PRESETS["balanced"], PRESETS["fast"]

# The panels of seg's, bbox's and export's help (the options' ``rich_help_panel``), in the order -h shows them
IO = "Input and output"
LOOK = "What replaces people"
DETECTION = "Detection"
SPEED = "Speed"
LIVE = "Live (cameras and streams)"
DATA = "Data and reports"
PANELS = (IO, LOOK, DETECTION, SPEED, LIVE, DATA)


class _Panelled(TyperCommand):
    """Plain click help (80 columns, and [ray] stays [ray]) with the options in their panels.

    Typer draws ``rich_help_panel`` only in its rich help, which this CLI turns off (``rich_markup_mode``).
    Within a panel the options keep the command's order: the common ones first.
    """

    def format_options(self, ctx, formatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {name: [] for name in PANELS}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(_panel_of(param), []).append(record)
        for name, records in sections.items():
            if records:
                with formatter.section(name):
                    formatter.write_dl(records)


def _panel_of(param) -> str:
    """The help panel an option sits in: its ``rich_help_panel``; -h/--help sits with the input and output."""
    return getattr(param, "rich_help_panel", None) or (IO if param.name == "help" else "Options")


# Options shared by every command (defaults come from Config, the one place they are set).
Source = Annotated[
    str,
    typer.Option(
        "--video-source",
        "-i",
        help="Video file, folder, image, camera index (0) or stream URL.",
        show_default=False,
        rich_help_panel=IO,
    ),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help=(
            "Output file, or folder for a folder input. (default: <stem>_anonymised.mp4 beside the input; "
            "<folder>_anonymised/ for a folder)"
        ),
        show_default=False,
        rich_help_panel=IO,
    ),
]
PoseModel = Annotated[
    str,
    typer.Option(
        "--pose-model",
        envvar="ANONYMISE_POSE_MODEL",
        help="Pose weights (path or Ultralytics name); the bundled yolo11n-pose.pt works offline.",
        rich_help_panel=DETECTION,
    ),
]
Device = Annotated[
    str,
    typer.Option(
        "--device", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps.", rich_help_panel=SPEED
    ),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        envvar="ANONYMISE_BACKEND",
        help=(
            "Inference runtime: auto (OpenVINO on x86-64 CPUs, TensorRT or torch fp16 on CUDA, torch elsewhere), "
            "torch, onnx, openvino or tensorrt (exported once, cached). See docs/backends.md."
        ),
        rich_help_panel=SPEED,
    ),
]
Int8 = Annotated[
    bool | None,
    typer.Option(
        "--int8/--no-int8",
        help=(
            "int8 models (openvino, tensorrt): 1.3-1.8x faster than bf16 on a CPU, calibrated once on your "
            "video's first frames, in memory (or on $ANONYMISE_CALIBRATION). Default: on with --backend auto on a "
            "CPU."
        ),
        show_default=False,
        rich_help_panel=SPEED,
    ),
]
Half = Annotated[
    bool | None,
    typer.Option(
        "--half/--no-half",
        help=(
            "Reduced precision: fp16 on CUDA (the default there); bf16 (or fp16) with --backend openvino on a "
            "CPU that has it (~1.6x faster, slightly different scores)."
        ),
        show_default=False,
        rich_help_panel=SPEED,
    ),
]
Imgsz = Annotated[
    int | None,
    typer.Option(
        "--imgsz",
        help=(
            "Inference size (px) of the search for small people. (default: enlarged until a person of "
            f"--min-person is {TARGET_PERSON_PX} px at the model, within {MIN_IMGSZ}-{MAX_IMGSZ}: 480x360 -> "
            f"{auto_imgsz(480, 360, _D.min_person)})"
        ),
        show_default=False,
        rich_help_panel=DETECTION,
    ),
]
Conf = Annotated[
    float,
    typer.Option(
        "--conf",
        help="Person confidence threshold (low on purpose: a missed person is a leak).",
        rich_help_panel=DETECTION,
    ),
]
Alpha = Annotated[
    float, typer.Option("--alpha", help="Background learning rate per frame, in (0, 1].", rich_help_panel=LOOK)
]
Dilate = Annotated[int, typer.Option("--dilate", help="Grow person boxes by this many pixels.", rich_help_panel=LOOK)]
Feather = Annotated[
    int,
    typer.Option(
        "--feather", help="Gaussian feather kernel in pixels (0: hard edge); grows outwards only.", rich_help_panel=LOOK
    ),
]
PoseConf = Annotated[
    float,
    typer.Option("--pose-conf", help="Minimum keypoint confidence for a joint to be drawn.", rich_help_panel=LOOK),
]
NoPose = Annotated[bool, typer.Option("--no-pose", help="Do not draw skeletons.", rich_help_panel=LOOK)]
Lookahead = Annotated[
    int | None,
    typer.Option(
        "--lookahead",
        help="Frames the background looks ahead (output delay). (default: 30 for files, 15 for cameras/streams)",
        show_default=False,
        rich_help_panel=LOOK,
    ),
]
MinPerson = Annotated[
    int,
    typer.Option(
        "--min-person",
        help="Smallest person height (px) to find: sets the inference size and when to tile.",
        rich_help_panel=DETECTION,
    ),
]
PresetOpt = Annotated[
    str,
    typer.Option(
        "--preset",
        help=(
            "How hard to look for people, against speed. thorough: all of every frame, at every size (slowest). "
            f"balanced: all of every {_BALANCED['sweep_every']}th frame and, between, where people were or "
            "something moved (about twice as fast, as private on the README's clips). fast: all of every "
            f"{_FAST['sweep_every']}th frame, people from {_FAST['min_person']} px tall, no closer look at motion no "
            "detection explains (about 1.5x faster again; smaller people can be missed)."
        ),
        rich_help_panel=DETECTION,
    ),
]
Tiles = Annotated[
    str,
    typer.Option(
        "--tiles",
        help="Tiled inference: auto (when people are small for the frame), off, or N tiles on the long side.",
        rich_help_panel=DETECTION,
    ),
]
Hold = Annotated[
    int,
    typer.Option(
        "--hold", help="Frames a lost track stays masked (and a new one is back-filled).", rich_help_panel=DETECTION
    ),
]
FailClosed = Annotated[
    bool,
    typer.Option(
        "--fail-closed/--no-fail-closed",
        help="Mask moving person-sized regions no detection explains (files, cameras and streams).",
        rich_help_panel=DETECTION,
    ),
]
Batch = Annotated[
    int | None,
    typer.Option(
        "--batch",
        help="Frames per model call. (default: 1 on CPU, 8 on CUDA)",
        show_default=False,
        rich_help_panel=SPEED,
    ),
]
Start = Annotated[
    str | None,
    typer.Option(
        "--start", help="Files: begin at this time (seconds, or [HH:]MM:SS).", show_default=False, rich_help_panel=IO
    ),
]
Duration = Annotated[
    str | None,
    typer.Option(
        "--duration", help="Files: process this long (seconds, or [HH:]MM:SS).", show_default=False, rich_help_panel=IO
    ),
]
Frames = Annotated[
    int | None,
    typer.Option("--frames", help="Files: process at most this many frames.", show_default=False, rich_help_panel=IO),
]
Realtime = Annotated[
    bool | None,
    typer.Option(
        "--realtime/--no-realtime",
        help=(
            "Keep the delay bounded: process the newest frame and drop stale ones (default); --no-realtime "
            "processes every frame, as for files."
        ),
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
Reconnect = Annotated[
    float,
    typer.Option(
        "--reconnect",
        help=(
            "When the source breaks off (a reset, 15 s without data), keep the recording and retry for this many "
            "seconds, into <stem>_<start time>.mp4; 0: stop."
        ),
        rich_help_panel=LIVE,
    ),
]
Segment = Annotated[
    float,
    typer.Option(
        "--segment",
        help=(
            "Record into files of this many seconds, each named by its start time (<stem>_YYYYmmdd-HHMMSS.mp4); "
            "0: one file."
        ),
        rich_help_panel=LIVE,
    ),
]
Show = Annotated[
    bool, typer.Option("--show", help="Preview window (q or Esc stops a camera or stream).", rich_help_panel=IO)
]
NoAudio = Annotated[
    bool, typer.Option("--no-audio", help="Drop the audio track (as --audio drop).", rich_help_panel=IO)
]
AudioOpt = Annotated[
    Audio,
    typer.Option(
        "--audio",
        help=(
            "What happens to the sound, a voice being an identity too: mute-speech silences where someone "
            "speaks and keeps the rest; beep-speech puts a tone there; keep copies it as it is; drop writes none."
        ),
        case_sensitive=False,
        metavar="<mode>",
        rich_help_panel=IO,
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Folder runs: redo outputs that already exist (skipped by default).", rich_help_panel=IO
    ),
]
FillOpt = Annotated[
    Fill,
    typer.Option(
        "--fill",
        help=(
            "What replaces a person: the reconstructed scene, black, a size-scaled blur or pixelation, a flat "
            "silhouette, a heat map, or none (people stay visible: only with --canvas or for data)."
        ),
        case_sensitive=False,
        rich_help_panel=LOOK,
    ),
]
CanvasOpt = Annotated[
    str | None,
    typer.Option(
        "--canvas",
        help=(
            "Draw only the skeletons, on black, white, a colour (name or #RRGGBB) or an image or video (looped, "
            "resized)."
        ),
        show_default=False,
        rich_help_panel=LOOK,
    ),
]
SkeletonColour = Annotated[
    str,
    typer.Option(
        "--skeleton-colour",
        "--skeleton-color",
        help="limbs (a colour per body part), track (a stable colour per person) or one colour (name or #RRGGBB).",
        rich_help_panel=LOOK,
    ),
]
Thickness = Annotated[
    int | None,
    typer.Option(
        "--thickness",
        help="Skeleton line thickness in pixels. (default: scaled with the frame size)",
        show_default=False,
        rich_help_panel=LOOK,
    ),
]
ShowConf = Annotated[
    bool, typer.Option("--show-conf", help="Draw each joint's size by its keypoint confidence.", rich_help_panel=LOOK)
]
KeypointsOpt = Annotated[
    str | None,
    typer.Option(
        "--keypoints",
        help=(
            "Also write per-person keypoints: jsonl or csv (a file beside each output) or a file path "
            "(.jsonl/.csv). Schema: docs/keypoints.md."
        ),
        show_default=False,
        rich_help_panel=DATA,
    ),
]
SnapshotEvery = Annotated[
    str | None,
    typer.Option(
        "--snapshot-every",
        help="Save an anonymised frame every N frames (25) or seconds (2s) as JPEG.",
        show_default=False,
        rich_help_panel=DATA,
    ),
]
SnapshotDir = Annotated[
    Path | None,
    typer.Option(
        "--snapshot-dir",
        help="Folder for snapshots. (default: <output stem>_snapshots/ beside the output)",
        show_default=False,
        rich_help_panel=DATA,
    ),
]
DebugView = Annotated[
    bool,
    typer.Option(
        "--debug-view",
        help=(
            "Original, person mask, background and output tiled: in the --show window, or else written to "
            "<output stem>_debug.mp4 (UNMASKED original: for debugging only)."
        ),
        rich_help_panel=DATA,
    ),
]
MasksOpt = Annotated[
    str | None,
    typer.Option(
        "--masks",
        help=(
            "Redaction manifest (JSON): boxes always masked in their frames, e.g. a person the detector "
            "missed (one video; schema: docs/manifest.md)."
        ),
        show_default=False,
        rich_help_panel=DETECTION,
    ),
]
ReportOpt = Annotated[
    bool,
    typer.Option(
        "--report",
        help="Also write a redaction report beside each output: <stem>.report.json and .report.html.",
        rich_help_panel=DATA,
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress bars, summary or one-off export lines; errors only.", rich_help_panel=IO
    ),
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="More logging; tracebacks for unexpected errors.", rich_help_panel=IO)
]


class Engine(str, enum.Enum):
    """Where files are processed (``--engine``)."""

    LOCAL = "local"
    RAY = "ray"


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help=(
            "local: this process; ray: spread a folder over a Ray cluster, one file per worker "
            '(pip install -e ".[ray]" in the clone).'
        ),
        case_sensitive=False,
        rich_help_panel=SPEED,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help=(
            "Ray cluster to join (auto, host:port, ray://host:10001). (default: $RAY_ADDRESS, else a local Ray "
            "instance)"
        ),
        show_default=False,
        rich_help_panel=SPEED,
    ),
]
RayActors = Annotated[
    int | None,
    typer.Option(
        "--ray-actors",
        help="Ray workers. (default: as many as the cluster's GPUs, or CPUs, hold)",
        show_default=False,
        rich_help_panel=SPEED,
    ),
]
RayGpus = Annotated[
    float | None,
    typer.Option(
        "--ray-gpus-per-actor",
        help="GPUs per Ray worker; 0.5 puts two on a GPU. (default: 1 where the cluster has GPUs, else 0)",
        show_default=False,
        rich_help_panel=SPEED,
    ),
]
RayCpus = Annotated[
    float,
    typer.Option(
        "--ray-cpus-per-actor",
        help="CPUs per Ray worker (on CPU-only clusters, the threads each worker uses).",
        rich_help_panel=SPEED,
    ),
]
RayRetries = Annotated[
    int,
    typer.Option(
        "--ray-retries",
        help="Times a file is retried when its Ray worker dies (crash, out of memory, lost node).",
        rich_help_panel=SPEED,
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"anonymise {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Remove every person from a video, keeping only their skeleton."""


@app.command(cls=_Panelled)
def seg(
    video_source: Source,
    output: Output = None,
    start: Start = None,
    duration: Duration = None,
    frames: Frames = None,
    show: Show = False,
    audio: AudioOpt = _D.audio,
    no_audio: NoAudio = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    fill: FillOpt = _D.fill,
    canvas: CanvasOpt = _D.canvas,
    no_pose: NoPose = False,
    skeleton_colour: SkeletonColour = _D.skeleton_colour,
    thickness: Thickness = _D.thickness,
    show_conf: ShowConf = False,
    pose_conf: PoseConf = _D.pose_conf,
    inflate: Annotated[
        int,
        typer.Option(
            "--inflate", help="Grow instance masks by this many pixels (distance transform).", rich_help_panel=LOOK
        ),
    ] = _D.inflate,
    dilate: Dilate = _D.dilate,
    feather: Feather = _D.feather,
    alpha: Alpha = _D.alpha,
    lookahead: Lookahead = _D.lookahead,
    preset: PresetOpt = _D.preset,
    min_person: MinPerson = _D.min_person,
    conf: Conf = _D.conf,
    hold: Hold = _D.hold,
    fail_closed: FailClosed = _D.fail_closed,
    masks: MasksOpt = _D.masks,
    imgsz: Imgsz = _D.imgsz,
    tiles: Tiles = _D.tiles,
    seg_model: Annotated[
        str,
        typer.Option(
            "--seg-model",
            envvar="ANONYMISE_SEG_MODEL",
            help="Segmentation weights (path or Ultralytics name, downloaded on first use when online).",
            rich_help_panel=DETECTION,
        ),
    ] = _D.seg_model,
    pose_model: PoseModel = _D.pose_model,
    device: Device = _D.device,
    batch: Batch = _D.batch,
    backend: BackendOpt = _D.backend,
    int8: Int8 = _D.int8,
    half: Half = _D.half,
    engine: EngineOpt = Engine.LOCAL,
    ray_address: RayAddress = None,
    ray_actors: RayActors = None,
    ray_gpus_per_actor: RayGpus = None,
    ray_cpus_per_actor: RayCpus = 1.0,
    ray_retries: RayRetries = 1,
    realtime: Realtime = _D.realtime,
    reconnect: Reconnect = 60.0,
    segment: Segment = 600.0,
    report: ReportOpt = False,
    keypoints: KeypointsOpt = None,
    snapshot_every: SnapshotEvery = None,
    snapshot_dir: SnapshotDir = None,
    debug_view: DebugView = False,
) -> None:
    """Mask people by their instance segmentation (tight masks, inflated and feathered).

    \b
    Examples:
      # the bundled sample, from the clone -> data/sample_anonymised.mp4
      anonymise seg -i data/sample.mp4
      # webcam 0 with a preview, people blurred (q, Esc or Ctrl-C ends it)
      anonymise seg -i 0 --show --fill blur
      # a folder on a GPU box: every video below footage/ into clean/
      anonymise seg -i footage/ -o clean/ --device cuda --report
    """
    _run(Mode.SEG, **locals())


@app.command(cls=_Panelled)
def bbox(
    video_source: Source,
    output: Output = None,
    start: Start = None,
    duration: Duration = None,
    frames: Frames = None,
    show: Show = False,
    audio: AudioOpt = _D.audio,
    no_audio: NoAudio = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    fill: FillOpt = _D.fill,
    canvas: CanvasOpt = _D.canvas,
    no_pose: NoPose = False,
    skeleton_colour: SkeletonColour = _D.skeleton_colour,
    thickness: Thickness = _D.thickness,
    show_conf: ShowConf = False,
    pose_conf: PoseConf = _D.pose_conf,
    dilate: Dilate = _D.dilate,
    feather: Feather = _D.feather,
    alpha: Alpha = _D.alpha,
    lookahead: Lookahead = _D.lookahead,
    preset: PresetOpt = _D.preset,
    min_person: MinPerson = _D.min_person,
    conf: Conf = _D.conf,
    hold: Hold = _D.hold,
    fail_closed: FailClosed = _D.fail_closed,
    masks: MasksOpt = _D.masks,
    imgsz: Imgsz = _D.imgsz,
    tiles: Tiles = _D.tiles,
    pose_model: PoseModel = _D.pose_model,
    bbox_model: Annotated[
        str | None,
        typer.Option(
            "--bbox-model",
            envvar="ANONYMISE_BBOX_MODEL",
            help="Separate person detector; by default the pose model's boxes are used (one forward pass).",
            show_default=False,
            rich_help_panel=DETECTION,
        ),
    ] = _D.bbox_model,
    device: Device = _D.device,
    batch: Batch = _D.batch,
    backend: BackendOpt = _D.backend,
    int8: Int8 = _D.int8,
    half: Half = _D.half,
    engine: EngineOpt = Engine.LOCAL,
    ray_address: RayAddress = None,
    ray_actors: RayActors = None,
    ray_gpus_per_actor: RayGpus = None,
    ray_cpus_per_actor: RayCpus = 1.0,
    ray_retries: RayRetries = 1,
    realtime: Realtime = _D.realtime,
    reconnect: Reconnect = 60.0,
    segment: Segment = 600.0,
    report: ReportOpt = False,
    keypoints: KeypointsOpt = None,
    snapshot_every: SnapshotEvery = None,
    snapshot_dir: SnapshotDir = None,
    debug_view: DebugView = False,
) -> None:
    """Mask people by their bounding boxes (dilated and feathered).

    \b
    Examples:
      # the bundled sample, from the clone -> data/sample_anonymised.mp4
      anonymise bbox -i data/sample.mp4
      # webcam 0 with a preview (q, Esc or Ctrl-C ends the recording)
      anonymise bbox -i 0 --show
      # a folder on a GPU box: every video below footage/ into clean/
      anonymise bbox -i footage/ -o clean/ --device cuda --report
    """
    _run(Mode.BBOX, **locals())


def _run(
    mode: Mode,
    *,
    video_source,
    output,
    show,
    no_audio,
    overwrite,
    quiet,
    verbose,
    no_pose,
    start=None,
    duration=None,
    frames=None,
    reconnect=60.0,
    segment=600.0,
    keypoints=None,
    snapshot_every=None,
    snapshot_dir=None,
    debug_view=False,
    report=False,
    video=True,
    engine=Engine.LOCAL,
    ray_address=None,
    ray_actors=None,
    ray_gpus_per_actor=None,
    ray_cpus_per_actor=1.0,
    ray_retries=1,
    **knobs,
) -> None:
    """The runner every command shares: config, plan, pipeline."""
    with _command(verbose, quiet):
        from .io.sources import probe
        from .io.video import Span, parse_time
        from .jobs import plan_jobs
        from .pipeline import Anonymiser
        from .sidecars import Extras

        if no_audio:
            knobs["audio"] = Audio.DROP
        # --no-pose with --keypoints: the pose model still runs, for the data, and nothing is drawn
        config = Config(mode=mode, pose=not no_pose or keypoints is not None, draw_pose=not no_pose, **knobs)
        if config.fill is Fill.NONE and config.canvas is None and video:
            logging.getLogger("anonymise").warning("--fill none: people are NOT removed from the video")
        extras = Extras(keypoints, snapshot_every, snapshot_dir, debug_view, video, report)
        span = Span(
            parse_time(start, "--start") if start else 0.0,
            parse_time(duration, "--duration") if duration else None,
            frames,
        )
        # once; bad paths fail before the models load
        plan = plan_jobs(video_source, output, extras, overwrite, span, reconnect, segment if video else 0.0)
        probe(plan.source, plan.span)  # a bad file, or a --start past its end, before the models load
        if config.masks and not plan.single:
            raise ConfigError("--masks applies to one video: its boxes are in that video's frames")
        ray_options = dict(
            address=ray_address,
            actors=ray_actors,
            gpus_per_actor=ray_gpus_per_actor,
            cpus_per_actor=ray_cpus_per_actor,
            retries=ray_retries,
        )
        if Engine(engine) is Engine.RAY:
            if show:
                raise ConfigError("--show needs --engine local (Ray workers have no window)")
            from .distributed import run_ray

            report = run_ray(config, plan, audio=not no_audio, progress=not quiet, **ray_options)
        else:
            if ray_options != dict(address=None, actors=None, gpus_per_actor=None, cpus_per_actor=1.0, retries=1):
                raise ConfigError("--ray-* options need --engine ray")
            anonymiser = Anonymiser(config)
            report = anonymiser.run_plan(plan, audio=not no_audio, show=show, progress=not quiet)
    if not quiet:
        _summary(report, config.audio)
    else:  # --quiet hides progress and the summary, never a failure
        for r in report.failed:
            err.print(f"[bold red]Error:[/] {escape(r.source)}: {escape(' '.join(r.message.split()))}", markup=True)
    if not report.ok:
        raise typer.Exit(1)


@app.command(cls=_Panelled)
def export(
    video_source: Source,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Keypoints file (.jsonl or .csv), or folder for a folder input. (default: "
                "<stem>_anonymised.jsonl beside the input)"
            ),
            show_default=False,
            rich_help_panel=IO,
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="jsonl or csv (when --output does not say).", rich_help_panel=IO)
    ] = "jsonl",
    start: Start = None,
    duration: Duration = None,
    frames: Frames = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    preset: PresetOpt = _D.preset,
    min_person: MinPerson = _D.min_person,
    conf: Conf = _D.conf,
    hold: Hold = _D.hold,
    imgsz: Imgsz = _D.imgsz,
    tiles: Tiles = _D.tiles,
    pose_model: PoseModel = _D.pose_model,
    device: Device = _D.device,
    batch: Batch = _D.batch,
    backend: BackendOpt = _D.backend,
    int8: Int8 = _D.int8,
    half: Half = _D.half,
    engine: EngineOpt = Engine.LOCAL,
    ray_address: RayAddress = None,
    ray_actors: RayActors = None,
    ray_gpus_per_actor: RayGpus = None,
    ray_cpus_per_actor: RayCpus = 1.0,
    ray_retries: RayRetries = 1,
    realtime: Realtime = _D.realtime,
    reconnect: Reconnect = 60.0,
) -> None:
    """Write only the people's keypoints (no video at all): the strictest privacy setting."""
    if format.lower() not in ("jsonl", "csv"):
        _fail(f"--format must be jsonl or csv, got {format!r}")
    keypoints = (
        str(output) if output is not None and output.suffix.lower() in (".jsonl", ".ndjson", ".csv") else format.lower()
    )
    _run(
        Mode.BBOX,
        video_source=video_source,
        output=output,
        show=False,
        no_audio=True,
        overwrite=overwrite,
        start=start,
        duration=duration,
        frames=frames,
        realtime=realtime,
        reconnect=reconnect,
        segment=0.0,  # keypoints only: one file
        quiet=quiet,
        verbose=verbose,
        no_pose=False,
        keypoints=keypoints,
        video=False,
        fill=Fill.NONE,
        pose_model=pose_model,
        device=device,
        imgsz=imgsz,
        conf=conf,
        min_person=min_person,
        preset=preset,
        tiles=tiles,
        hold=hold,
        batch=batch,
        backend=backend,
        int8=int8,
        half=half,
        engine=engine,
        ray_address=ray_address,
        ray_actors=ray_actors,
        ray_gpus_per_actor=ray_gpus_per_actor,
        ray_cpus_per_actor=ray_cpus_per_actor,
        ray_retries=ray_retries,
    )


@app.command()
def analyze(
    keypoints: Annotated[
        Path,
        typer.Argument(
            help="Keypoints file from --keypoints or anonymise export (.jsonl or .csv).", show_default=False
        ),
    ],
    events: Annotated[
        Path | None,
        typer.Option(
            "--events", "-o", help="Events CSV. (default: <stem>_events.csv beside the keypoints)", show_default=False
        ),
    ] = None,
    lying_angle: Annotated[
        float, typer.Option("--lying-angle", help="Trunk angle from vertical (degrees) above which a person is lying.")
    ] = 60.0,
    sitting_thigh_angle: Annotated[
        float,
        typer.Option(
            "--sitting-thigh-angle", help="Thigh angle from vertical (degrees) above which a person is sitting."
        ),
    ] = 55.0,
    fall_drop: Annotated[
        float, typer.Option("--fall-drop", help="Hip drop, in torso lengths, that starts a fall.")
    ] = 0.5,
    fall_window: Annotated[
        float, typer.Option("--fall-window", help="Seconds within which the hip drop must happen.")
    ] = 1.0,
    min_keypoint_conf: Annotated[
        float, typer.Option("--min-keypoint-conf", help="Keypoints below this confidence are ignored.")
    ] = 0.3,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Per-person postures, trunk inclination and falls from a keypoints file: an events CSV and a summary."""
    with _command(verbose, quiet):
        from .analyze import AnalyzeConfig, analyze_file, skipped_note, summary_table, write_events_csv

        config = AnalyzeConfig(
            min_keypoint_conf=min_keypoint_conf,
            lying_angle=lying_angle,
            sitting_thigh_angle=sitting_thigh_angle,
            fall_drop=fall_drop,
            fall_window_s=fall_window,
        )
        analysis = analyze_file(keypoints, config)
        target = events if events is not None else keypoints.with_name(f"{keypoints.stem}_events.csv")
        if target.resolve() == keypoints.resolve():
            raise ConfigError(f"events file would overwrite the keypoints file {keypoints}")
        write_events_csv(analysis.events, target)
    if not quiet:
        out.print(summary_table(analysis))
        if skipped_note(analysis):
            out.print(skipped_note(analysis), soft_wrap=False)
        falls = sum(e.kind == "fall" for e in analysis.events)
        out.print(f"{len(analysis.tracks)} people, {falls} falls, {len(analysis.events)} events -> {target}")


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (anything but 127.0.0.1 exposes the studio).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    jobs_dir: Annotated[
        Path | None,
        typer.Option(
            "--jobs-dir",
            help=(
                "Folder of the jobs (uploads, outputs, reports, kept originals); kept across restarts, printed at "
                "start. (default: jobs in your user data folder, ~/.local/share/anonymise/jobs on Linux)"
            ),
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Jobs run at a time (each worker loads its models once).")
    ] = 1,
    keep_originals: Annotated[
        bool,
        typer.Option(
            "--keep-originals",
            help="Keep uploads after their job ends by default (side-by-side review, re-render); else deleted.",
        ),
    ] = False,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload accepted, in MB.")] = 2048,
    verbose: Verbose = False,
) -> None:
    """A local review studio in the browser: upload, progress, review, correct, download (needs .[studio])."""
    with _command(verbose):
        from .studio import serve as run_studio

        run_studio(host, port, jobs_dir, workers, keep_originals, max_upload_mb, echo=out.print)


@contextmanager
def _command(verbose: bool, quiet: bool = False) -> Iterator[None]:
    """A command's logging, and its errors as one line with the documented exit codes.

    Bad input (:class:`AnonymiseError`) exits 1; Ctrl-C 130; SIGTERM or SIGHUP 128 + N; anything
    unexpected exits 1 too, with its traceback under ``--verbose``.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    # a one-off export or int8 calibration says what it is doing, unless --quiet
    logging.getLogger("anonymise.export").setLevel(logging.WARNING if quiet and not verbose else logging.INFO)
    try:
        yield
    except typer.Exit:
        raise
    except AnonymiseError as e:
        _fail(str(e))
    except Stopped as e:
        _fail(f"stopped by {signal.Signals(e.signum).name}; {_left_by(e)}", code=128 + e.signum)
    except KeyboardInterrupt as e:
        _fail(f"interrupted; {_left_by(e)}", code=130)
    except Exception as e:
        if verbose:
            raise
        _fail(f"unexpected {type(e).__name__}: {e} (run with --verbose for the traceback)")


def _left_by(stop: KeyboardInterrupt) -> str:
    """What a stop left behind: the live recording it finished and kept, named; else nothing unfinished."""
    from .jobs import kept_on

    kept = kept_on(stop)
    if not kept:
        return "unfinished outputs were removed"
    if len(kept) == 1:
        return f"the recording was kept: {kept[0]}"
    return f"the recording was kept: {len(kept)} files, the last {kept[-1]}"


def _print_error(message: str) -> None:
    # escape: the [onnx] of pip install -e ".[onnx]" is not markup
    err.print(f"[bold red]Error:[/] {escape(' '.join(message.split()))}", markup=True)


def _fail(message: str, code: int = 1) -> None:
    _print_error(message)
    raise typer.Exit(code)


def _summary(report, audio: Audio = Audio.MUTE_SPEECH) -> None:
    results = report.results
    if len(results) == 1 and results[0].status != "failed":
        r = results[0]
        note = f", {r.counts.failed} frames fully masked after errors" if r.counts.failed else ""
        if r.latency is not None:  # a live source in real time
            note += (
                f", {r.dropped} stale frames dropped, latency {1000 * r.latency[0]:.0f} ms median, "
                f"{1000 * r.latency[1]:.0f} ms 95th percentile"
            )
        if r.segments:
            note += f", {len(r.segments)} segment files from {r.segments[0].name}"
        out.print(f"{r.status}: {r.output} ({r.frames} frames, {r.fps:.1f} fps{note})")
        _speech_line(results, audio)
        return
    table = Table(title="anonymise summary", show_lines=False)
    for column in ("input", "status", "frames", "fps", "output / message"):
        table.add_column(column, overflow="fold")
    for r in results:
        # "stopped": a live recording ended by Ctrl-C, kept (after a reconnect it is one row of several)
        colour = {"done": "green", "skipped": "yellow", "failed": "red", "stopped": "yellow"}.get(r.status, "white")
        detail = str(r.output) if r.status in ("done", "stopped") else r.message
        table.add_row(escape(r.source), f"[{colour}]{r.status}[/]", str(r.frames), f"{r.fps:.1f}", escape(detail))
    out.print(table)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed", "stopped")}
    stopped = f", {counts['stopped']} stopped" if counts["stopped"] else ""
    out.print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed{stopped}")
    _speech_line(results, audio)


def _speech_line(results, audio: Audio) -> None:
    """One line on the voices redacted (``--audio mute-speech`` / ``beep-speech``), where there was audio."""
    redacted = [r for r in results if r.speech is not None]
    if not redacted:
        return
    spans = [span for r in redacted for span in r.speech]
    manual = sum(span.source == "manual" for span in spans)
    by_hand = f" ({manual} by hand)" if manual else ""
    verb = "beeped" if audio is Audio.BEEP_SPEECH else "muted"
    out.print(
        f"speech: {len(spans)} span{'s' * (len(spans) != 1)}{by_hand} {verb}, "
        f"{sum(span.duration for span in spans):.1f} s; --audio keep keeps the voices"
    )


def _stop_on(signum: int, frame) -> None:
    raise Stopped(signum)


def main() -> None:
    # Service managers stop a process with SIGTERM (systemd, Docker, Kubernetes), terminals with SIGHUP:
    # both take the Ctrl-C path (live recordings finished, unfinished files removed), then exit 128 + N
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop_on)
    try:
        app()
    except SystemExit as e:
        _exit_past_stuck_threads(e.code)
        raise


def _exit_past_stuck_threads(code) -> None:
    """Exit at once, past the interpreter's shutdown, while a pipeline thread is still in native code.

    A run waits 30 s for its threads (decode, detect, encode); one still stuck then (a network read
    that never returns) would have OpenVINO, PyAV or torch torn down under it by the shutdown, a
    segmentation fault after the error line. Its outputs are already finished or removed.
    """
    if not any(t.is_alive() and t.name.startswith("anonymise-") for t in threading.enumerate()):
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


if __name__ == "__main__":
    main()
