"""The ``anonymise`` command line: the only place that prints or exits."""

from __future__ import annotations

import enum
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, fields, replace
from functools import update_wrapper
from pathlib import Path
from typing import Annotated, get_type_hints

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

#: a run's one-off work (an int8 calibration) this long or longer is reported apart from its speed (s)
ONE_OFF_SHOWN = 1.0

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


# Options shared by analyze and serve too
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


@dataclass(frozen=True)
class Options:
    """Every option of ``seg`` and ``bbox``, written once: its flags, help, panel and default.

    A field named as a :class:`Config` field goes to the config as it is, and its default is
    ``Config``'s (``_D``); the others say what to read and write and how to run. Typer reads a
    command's options from its function's signature, so :func:`_takes` builds each command's
    signature from these fields (in this order, which is the order ``-h`` shows them in within a
    panel) and calls the command with one ``Options``.

    Why a table and not one explicit signature per command forwarding named arguments to a typed
    runner: that is about fifty parameters written out twice and forwarded twice, the six places
    a new setting had to be added, and the two commands drift apart. Here a new setting is a
    ``Config`` field and one field below (``tests/test_cli.py`` fails while it has neither).
    """

    video_source: Annotated[
        str,
        typer.Option(
            "--video-source",
            "-i",
            help="Video file, folder, image, camera index (0) or stream URL.",
            show_default=False,
            rich_help_panel=IO,
        ),
    ]
    output: Annotated[
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
    ] = None
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Files: begin at this time (seconds, or [HH:]MM:SS).",
            show_default=False,
            rich_help_panel=IO,
        ),
    ] = None
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            help="Files: process this long (seconds, or [HH:]MM:SS).",
            show_default=False,
            rich_help_panel=IO,
        ),
    ] = None
    frames: Annotated[
        int | None,
        typer.Option(
            "--frames", help="Files: process at most this many frames.", show_default=False, rich_help_panel=IO
        ),
    ] = None
    show: Annotated[
        bool, typer.Option("--show", help="Preview window (q or Esc stops a camera or stream).", rich_help_panel=IO)
    ] = False
    audio: Annotated[
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
    ] = _D.audio
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="Drop the audio track (as --audio drop).", rich_help_panel=IO)
    ] = False
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Folder runs: redo outputs that already exist (skipped by default).", rich_help_panel=IO
        ),
    ] = False
    quiet: Quiet = False
    verbose: Verbose = False
    fill: Annotated[
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
    ] = _D.fill
    canvas: Annotated[
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
    ] = _D.canvas
    no_pose: Annotated[bool, typer.Option("--no-pose", help="Do not draw skeletons.", rich_help_panel=LOOK)] = False
    skeleton_colour: Annotated[
        str,
        typer.Option(
            "--skeleton-colour",
            "--skeleton-color",
            help="limbs (a colour per body part), track (a stable colour per person) or one colour (name or #RRGGBB).",
            rich_help_panel=LOOK,
        ),
    ] = _D.skeleton_colour
    thickness: Annotated[
        int | None,
        typer.Option(
            "--thickness",
            help="Skeleton line thickness in pixels. (default: scaled with the frame size)",
            show_default=False,
            rich_help_panel=LOOK,
        ),
    ] = _D.thickness
    show_conf: Annotated[
        bool,
        typer.Option("--show-conf", help="Draw each joint's size by its keypoint confidence.", rich_help_panel=LOOK),
    ] = _D.show_conf
    pose_conf: Annotated[
        float,
        typer.Option("--pose-conf", help="Minimum keypoint confidence for a joint to be drawn.", rich_help_panel=LOOK),
    ] = _D.pose_conf
    inflate: Annotated[
        int,
        typer.Option(
            "--inflate", help="Grow instance masks by this many pixels (distance transform).", rich_help_panel=LOOK
        ),
    ] = _D.inflate
    dilate: Annotated[
        int, typer.Option("--dilate", help="Grow person boxes by this many pixels.", rich_help_panel=LOOK)
    ] = _D.dilate
    feather: Annotated[
        int,
        typer.Option(
            "--feather",
            help="Gaussian feather kernel in pixels (0: hard edge); grows outwards only.",
            rich_help_panel=LOOK,
        ),
    ] = _D.feather
    alpha: Annotated[
        float, typer.Option("--alpha", help="Background learning rate per frame, in (0, 1].", rich_help_panel=LOOK)
    ] = _D.alpha
    lookahead: Annotated[
        int | None,
        typer.Option(
            "--lookahead",
            help="Frames the background looks ahead (output delay). (default: 30 for files, 15 for cameras/streams)",
            show_default=False,
            rich_help_panel=LOOK,
        ),
    ] = _D.lookahead
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help=(
                "How hard to look for people, against speed. thorough: all of every frame, at every size (slowest). "
                f"balanced: all of every {_BALANCED['sweep_every']}th frame and, between, where people were or "
                "something moved (about twice as fast, as private on the README's clips). fast: all of every "
                f"{_FAST['sweep_every']}th frame, people from {_FAST['min_person']} px tall, "
                "no closer look at motion no "
                "detection explains (about 1.5x faster again; smaller people can be missed)."
            ),
            rich_help_panel=DETECTION,
        ),
    ] = _D.preset
    min_person: Annotated[
        int,
        typer.Option(
            "--min-person",
            help="Smallest person height (px) to find: sets the inference size and when to tile.",
            rich_help_panel=DETECTION,
        ),
    ] = _D.min_person
    conf: Annotated[
        float,
        typer.Option(
            "--conf",
            help="Person confidence threshold (low on purpose: a missed person is a leak).",
            rich_help_panel=DETECTION,
        ),
    ] = _D.conf
    hold: Annotated[
        int,
        typer.Option(
            "--hold", help="Frames a lost track stays masked (and a new one is back-filled).", rich_help_panel=DETECTION
        ),
    ] = _D.hold
    fail_closed: Annotated[
        bool,
        typer.Option(
            "--fail-closed/--no-fail-closed",
            help="Mask moving person-sized regions no detection explains (files, cameras and streams).",
            rich_help_panel=DETECTION,
        ),
    ] = _D.fail_closed
    masks: Annotated[
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
    ] = _D.masks
    imgsz: Annotated[
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
    ] = _D.imgsz
    tiles: Annotated[
        str,
        typer.Option(
            "--tiles",
            help="Tiled inference: auto (when people are small for the frame), off, or N tiles on the long side.",
            rich_help_panel=DETECTION,
        ),
    ] = _D.tiles
    seg_model: Annotated[
        str,
        typer.Option(
            "--seg-model",
            envvar="ANONYMISE_SEG_MODEL",
            help="Segmentation weights (path or Ultralytics name, downloaded on first use when online).",
            rich_help_panel=DETECTION,
        ),
    ] = _D.seg_model
    pose_model: Annotated[
        str,
        typer.Option(
            "--pose-model",
            envvar="ANONYMISE_POSE_MODEL",
            help="Pose weights (path or Ultralytics name); the bundled yolo11n-pose.pt works offline.",
            rich_help_panel=DETECTION,
        ),
    ] = _D.pose_model
    bbox_model: Annotated[
        str | None,
        typer.Option(
            "--bbox-model",
            envvar="ANONYMISE_BBOX_MODEL",
            help="Separate person detector; by default the pose model's boxes are used (one forward pass).",
            show_default=False,
            rich_help_panel=DETECTION,
        ),
    ] = _D.bbox_model
    device: Annotated[
        str,
        typer.Option(
            "--device", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps.", rich_help_panel=SPEED
        ),
    ] = _D.device
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            help="Frames per model call. (default: 1 on CPU, 8 on CUDA)",
            show_default=False,
            rich_help_panel=SPEED,
        ),
    ] = _D.batch
    backend: Annotated[
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
    ] = _D.backend
    int8: Annotated[
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
    ] = _D.int8
    half: Annotated[
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
    ] = _D.half
    engine: Annotated[
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
    ] = Engine.LOCAL
    ray_address: Annotated[
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
    ] = None
    ray_actors: Annotated[
        int | None,
        typer.Option(
            "--ray-actors",
            help="Ray workers. (default: as many as the cluster's GPUs, or CPUs, hold)",
            show_default=False,
            rich_help_panel=SPEED,
        ),
    ] = None
    ray_gpus_per_actor: Annotated[
        float | None,
        typer.Option(
            "--ray-gpus-per-actor",
            help="GPUs per Ray worker; 0.5 puts two on a GPU. (default: 1 where the cluster has GPUs, else 0)",
            show_default=False,
            rich_help_panel=SPEED,
        ),
    ] = None
    ray_cpus_per_actor: Annotated[
        float,
        typer.Option(
            "--ray-cpus-per-actor",
            help="CPUs per Ray worker (on CPU-only clusters, the threads each worker uses).",
            rich_help_panel=SPEED,
        ),
    ] = 1.0
    ray_retries: Annotated[
        int,
        typer.Option(
            "--ray-retries",
            help="Times a file is retried when its Ray worker dies (crash, out of memory, lost node).",
            rich_help_panel=SPEED,
        ),
    ] = 1
    realtime: Annotated[
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
    ] = _D.realtime
    reconnect: Annotated[
        float,
        typer.Option(
            "--reconnect",
            help=(
                "When the source breaks off (a reset, 15 s without data), keep the recording and retry for this many "
                "seconds, into <stem>_<start time>.mp4; 0: stop."
            ),
            rich_help_panel=LIVE,
        ),
    ] = 60.0
    segment: Annotated[
        float,
        typer.Option(
            "--segment",
            help=(
                "Record into files of this many seconds, each named by its start time (<stem>_YYYYmmdd-HHMMSS.mp4); "
                "0: one file."
            ),
            rich_help_panel=LIVE,
        ),
    ] = 600.0
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write a redaction report beside each output: <stem>.report.json and .report.html.",
            rich_help_panel=DATA,
        ),
    ] = False
    keypoints: Annotated[
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
    ] = None
    snapshot_every: Annotated[
        str | None,
        typer.Option(
            "--snapshot-every",
            help="Save an anonymised frame every N frames (25) or seconds (2s) as JPEG.",
            show_default=False,
            rich_help_panel=DATA,
        ),
    ] = None
    snapshot_dir: Annotated[
        Path | None,
        typer.Option(
            "--snapshot-dir",
            help="Folder for snapshots. (default: <output stem>_snapshots/ beside the output)",
            show_default=False,
            rich_help_panel=DATA,
        ),
    ] = None
    debug_view: Annotated[
        bool,
        typer.Option(
            "--debug-view",
            help=(
                "Original, person mask, background and output tiled: in the --show window, or else written to "
                "<output stem>_debug.mp4 (UNMASKED original: for debugging only)."
            ),
            rich_help_panel=DATA,
        ),
    ] = False


_HINTS = get_type_hints(Options, include_extras=True)  # the Annotated options, evaluated once
_FIELDS = {f.name: f for f in fields(Options)}
#: the options that are settings of the pipeline, passed on to :class:`Config` as they are
CONFIG_OPTIONS = tuple(f.name for f in fields(Config) if f.name in _FIELDS)
#: each command's options, in the order of the table: seg has no --bbox-model, bbox no --inflate or --seg-model
SEG_OPTIONS = tuple(name for name in _FIELDS if name != "bbox_model")
BBOX_OPTIONS = tuple(name for name in _FIELDS if name not in ("inflate", "seg_model"))
#: export writes keypoints only: no look, no mask growth, no segments, no sidecars but its own
EXPORT_OPTIONS = (
    "video_source",
    "output",
    "format",
    "start",
    "duration",
    "frames",
    "overwrite",
    "quiet",
    "verbose",
    "preset",
    "min_person",
    "conf",
    "hold",
    "imgsz",
    "tiles",
    "pose_model",
    "device",
    "batch",
    "backend",
    "int8",
    "half",
    "engine",
    "ray_address",
    "ray_actors",
    "ray_gpus_per_actor",
    "ray_cpus_per_actor",
    "ray_retries",
    "realtime",
    "reconnect",
)


def _takes(names: tuple[str, ...]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the options ``names``, in that order, and call it with them as one :class:`Options`.

    The command is ``def command(options: Options, *, own...)``: a name that is one of its own
    keyword parameters (export's --output, with its own help, and --format) is taken from there and
    passed to it as it is; every other name is a field of :class:`Options`, and the fields not named
    keep their defaults.
    """

    def build(command: Callable[..., None]) -> Callable[..., None]:
        own = dict(list(inspect.signature(command, eval_str=True).parameters.items())[1:])
        if unplaced := own.keys() - set(names):
            raise TypeError(f"{command.__name__}: parameters not among its options: {', '.join(sorted(unplaced))}")
        params = []
        for name in names:
            if name in own:
                params.append(own[name].replace(kind=inspect.Parameter.KEYWORD_ONLY))
                continue
            default = _FIELDS[name].default
            params.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if default is MISSING else default,
                    annotation=_HINTS[name],
                )
            )

        def command_line(**given) -> None:
            mine = {name: given.pop(name) for name in own}
            command(Options(**given), **mine)

        update_wrapper(
            command_line, command, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=()
        )
        command_line.__signature__ = inspect.Signature(params)
        return command_line

    return build


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
@_takes(SEG_OPTIONS)
def seg(options: Options) -> None:
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
    _run(Mode.SEG, options)


@app.command(cls=_Panelled)
@_takes(BBOX_OPTIONS)
def bbox(options: Options) -> None:
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
    _run(Mode.BBOX, options)


def _run(mode: Mode, o: Options, video: bool = True) -> None:
    """The runner every command shares: config, plan, pipeline (``video``: False for keypoints only)."""
    with _command(o.verbose, o.quiet):
        from .io.sources import probe
        from .io.video import Span, parse_time
        from .jobs import plan_jobs
        from .pipeline import Anonymiser
        from .sidecars import Extras

        knobs = {name: getattr(o, name) for name in CONFIG_OPTIONS}
        if o.no_audio:
            knobs["audio"] = Audio.DROP
        # --no-pose with --keypoints: the pose model still runs, for the data, and nothing is drawn
        config = Config(mode=mode, pose=not o.no_pose or o.keypoints is not None, draw_pose=not o.no_pose, **knobs)
        if config.fill is Fill.NONE and config.canvas is None and video:
            logging.getLogger("anonymise").warning("--fill none: people are NOT removed from the video")
        extras = Extras(o.keypoints, o.snapshot_every, o.snapshot_dir, o.debug_view, video, o.report)
        span = Span(
            parse_time(o.start, "--start") if o.start else 0.0,
            parse_time(o.duration, "--duration") if o.duration else None,
            o.frames,
        )
        # once; bad paths fail before the models load
        plan = plan_jobs(o.video_source, o.output, extras, o.overwrite, span, o.reconnect, o.segment if video else 0.0)
        probe(plan.source, plan.span)  # a bad file, or a --start past its end, before the models load
        if config.masks and not plan.single:
            raise ConfigError("--masks applies to one video: its boxes are in that video's frames")
        ray_options = dict(
            address=o.ray_address,
            actors=o.ray_actors,
            gpus_per_actor=o.ray_gpus_per_actor,
            cpus_per_actor=o.ray_cpus_per_actor,
            retries=o.ray_retries,
        )
        if Engine(o.engine) is Engine.RAY:
            if o.show:
                raise ConfigError("--show needs --engine local (Ray workers have no window)")
            from .distributed import run_ray

            report = run_ray(config, plan, audio=not o.no_audio, progress=not o.quiet, **ray_options)
        else:
            if ray_options != dict(address=None, actors=None, gpus_per_actor=None, cpus_per_actor=1.0, retries=1):
                raise ConfigError("--ray-* options need --engine ray")
            anonymiser = Anonymiser(config)
            report = anonymiser.run_plan(plan, audio=not o.no_audio, show=o.show, progress=not o.quiet)
    if not o.quiet:
        _summary(report, config.audio)
    else:  # --quiet hides progress and the summary, never a failure
        for r in report.failed:
            err.print(f"[bold red]Error:[/] {escape(r.source)}: {escape(' '.join(r.message.split()))}", markup=True)
    if not report.ok:
        raise typer.Exit(1)


@app.command(cls=_Panelled)
@_takes(EXPORT_OPTIONS)
def export(
    options: Options,
    *,
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
) -> None:
    """Write only the people's keypoints (no video at all): the strictest privacy setting."""
    if format.lower() not in ("jsonl", "csv"):
        _fail(f"--format must be jsonl or csv, got {format!r}")
    keypoints = (
        str(output) if output is not None and output.suffix.lower() in (".jsonl", ".ndjson", ".csv") else format.lower()
    )
    # no audio, no look (people are not removed from a video that is not written), one file
    keypoints_only = replace(
        options, output=output, no_audio=True, keypoints=keypoints, fill=Fill.NONE, show=False, segment=0.0
    )
    _run(Mode.BBOX, keypoints_only, video=False)


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
            "--keep-originals/--no-keep-originals",
            help=(
                "Keep each upload while its job is open for review (side by side, re-render): deleted when it is "
                "marked reviewed or deleted, or after --keep-originals-hours. --no-keep-originals: deleted when its "
                "job ends."
            ),
        ),
    ] = True,
    keep_originals_hours: Annotated[
        float,
        typer.Option("--keep-originals-hours", help="Hours after upload when a kept original is deleted anyway."),
    ] = 72.0,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload accepted, in MB.")] = 2048,
    verbose: Verbose = False,
) -> None:
    """A local review studio in the browser: upload, progress, review, correct, download (needs .[studio])."""
    with _command(verbose):
        from .studio import serve as run_studio

        if not keep_originals_hours > 0:
            raise ConfigError(f"--keep-originals-hours must be above 0, got {keep_originals_hours:g}")
        run_studio(
            host,
            port,
            jobs_dir,
            workers,
            keep_originals,
            max_upload_mb,
            echo=out.print,
            keep_originals_hours=keep_originals_hours,
        )


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
        if r.one_off >= ONE_OFF_SHOWN:
            note += f"; {r.steady_fps:.1f} fps without the one-off int8 calibration ({r.one_off:.0f} s, cached)"
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
        steady = f" ({r.steady_fps:.1f} after the int8 calibration)" if r.one_off >= ONE_OFF_SHOWN else ""
        fps = f"{r.fps:.1f}{steady}"
        table.add_row(escape(r.source), f"[{colour}]{r.status}[/]", str(r.frames), fps, escape(detail))
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
