"""The ``anonymise`` command line: the only place that prints or exits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import Config, Mode
from .errors import AnonymiseError

app = typer.Typer(
    name="anonymise",
    help="Remove every person from a video, fill the hole with the scene behind them, keep only the motion as a skeleton.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_D = Config()

# Options shared by every command (defaults come from Config, the one place they are set).
Source = Annotated[str, typer.Option("--video-source", "-i", help="Video file, folder, image, camera index (0) or stream URL.", show_default=False)]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file, or folder for a folder input. (default: <stem>_anonymised.mp4 beside the input; <folder>_anonymised/ for a folder)", show_default=False)]
PoseModel = Annotated[str, typer.Option("--pose-model", envvar="ANONYMISE_POSE_MODEL", help="Pose weights (path or Ultralytics name); the bundled yolo11n-pose.pt works offline.")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps.")]
Imgsz = Annotated[Optional[int], typer.Option("--imgsz", help="Inference size in pixels. (default: from the frame size, 2x for small frames, at most 1280)", show_default=False)]
Conf = Annotated[float, typer.Option("--conf", help="Person confidence threshold (low on purpose: a missed person is a leak).")]
Alpha = Annotated[float, typer.Option("--alpha", help="Background learning rate per frame, in (0, 1].")]
Dilate = Annotated[int, typer.Option("--dilate", help="Grow person boxes by this many pixels.")]
Feather = Annotated[int, typer.Option("--feather", help="Gaussian feather kernel in pixels (0: hard edge); grows outwards only.")]
PoseConf = Annotated[float, typer.Option("--pose-conf", help="Minimum keypoint confidence for a joint to be drawn.")]
NoPose = Annotated[bool, typer.Option("--no-pose", help="Do not draw skeletons.")]
Lookahead = Annotated[Optional[int], typer.Option("--lookahead", help="Frames the background looks ahead (output delay). (default: 30 for files, 0 for cameras/streams)", show_default=False)]
MinPerson = Annotated[int, typer.Option("--min-person", help="Smallest person height (px) to find: sets the inference size and when to tile.")]
Tiles = Annotated[str, typer.Option("--tiles", help="Tiled inference: auto (when people are small for the frame), off, or N tiles on the long side.")]
Hold = Annotated[int, typer.Option("--hold", help="Frames a lost track stays masked (and a new one is back-filled).")]
FailClosed = Annotated[Optional[bool], typer.Option("--fail-closed/--no-fail-closed", help="Mask moving person-sized regions no detection explains. (default: on for files, off for cameras/streams)", show_default=False)]
Batch = Annotated[Optional[int], typer.Option("--batch", help="Frames per model call. (default: 1 on CPU, 8 on CUDA)", show_default=False)]
Show = Annotated[bool, typer.Option("--show", help="Preview window (q or Esc stops a camera or stream).")]
NoAudio = Annotated[bool, typer.Option("--no-audio", help="Drop the audio track.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Folder runs: redo outputs that already exist (skipped by default).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="More logging; tracebacks for unexpected errors.")]


def _version(value: bool) -> None:
    if value:
        out.print(f"anonymise {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Remove every person from a video, keeping only their skeleton."""


@app.command()
def seg(
    video_source: Source,
    output: Output = None,
    seg_model: Annotated[str, typer.Option("--seg-model", envvar="ANONYMISE_SEG_MODEL", help="Segmentation weights (path or Ultralytics name, downloaded on first use when online).")] = _D.seg_model,
    pose_model: PoseModel = _D.pose_model,
    device: Device = _D.device,
    imgsz: Imgsz = _D.imgsz,
    conf: Conf = _D.conf,
    alpha: Alpha = _D.alpha,
    inflate: Annotated[int, typer.Option("--inflate", help="Grow instance masks by this many pixels (distance transform).")] = _D.inflate,
    dilate: Dilate = _D.dilate,
    feather: Feather = _D.feather,
    pose_conf: PoseConf = _D.pose_conf,
    no_pose: NoPose = False,
    lookahead: Lookahead = _D.lookahead,
    min_person: MinPerson = _D.min_person,
    tiles: Tiles = _D.tiles,
    hold: Hold = _D.hold,
    fail_closed: FailClosed = _D.fail_closed,
    batch: Batch = _D.batch,
    show: Show = False,
    no_audio: NoAudio = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Mask people by their instance segmentation (tight masks, inflated and feathered)."""
    _run(Mode.SEG, **locals())


@app.command()
def bbox(
    video_source: Source,
    output: Output = None,
    bbox_model: Annotated[Optional[str], typer.Option("--bbox-model", envvar="ANONYMISE_BBOX_MODEL", help="Separate person detector; by default the pose model's boxes are used (one forward pass).", show_default=False)] = _D.bbox_model,
    pose_model: PoseModel = _D.pose_model,
    device: Device = _D.device,
    imgsz: Imgsz = _D.imgsz,
    conf: Conf = _D.conf,
    alpha: Alpha = _D.alpha,
    dilate: Dilate = _D.dilate,
    feather: Feather = _D.feather,
    pose_conf: PoseConf = _D.pose_conf,
    no_pose: NoPose = False,
    lookahead: Lookahead = _D.lookahead,
    min_person: MinPerson = _D.min_person,
    tiles: Tiles = _D.tiles,
    hold: Hold = _D.hold,
    fail_closed: FailClosed = _D.fail_closed,
    batch: Batch = _D.batch,
    show: Show = False,
    no_audio: NoAudio = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Mask people by their bounding boxes (dilated and feathered)."""
    _run(Mode.BBOX, **locals())


def _run(mode: Mode, *, video_source, output, show, no_audio, overwrite, quiet, verbose, no_pose, **knobs) -> None:
    """The runner both commands share: config, pipeline, and one line per error."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        from .pipeline import Anonymiser, plan_jobs
        from .sources import default_output, parse_source

        config = Config(mode=mode, pose=not no_pose, **knobs)
        source = parse_source(video_source)
        plan_jobs(source, output if output is not None else default_output(source))  # bad paths fail before models load
        anonymiser = Anonymiser(config)
        report = anonymiser.run(video_source, output, overwrite=overwrite, audio=not no_audio, show=show, progress=not quiet)
    except AnonymiseError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted; unfinished outputs were removed", code=130)
    except Exception as e:  # noqa: BLE001 - one line unless --verbose
        if verbose:
            raise
        _fail(f"unexpected {type(e).__name__}: {e} (run with --verbose for the traceback)")
    if not quiet:
        _summary(report)
    if not report.ok:
        raise typer.Exit(1)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]Error:[/] {' '.join(message.split())}", markup=True)
    raise typer.Exit(code)


def _summary(report) -> None:
    results = report.results
    if len(results) == 1 and results[0].status != "failed":
        r = results[0]
        note = f", {r.counts.failed} frames fully masked after errors" if r.counts.failed else ""
        out.print(f"{r.status}: {r.output} ({r.frames} frames, {r.fps:.1f} fps{note})")
        return
    table = Table(title="anonymise summary", show_lines=False)
    for column in ("input", "status", "frames", "fps", "output / message"):
        table.add_column(column, overflow="fold")
    for r in results:
        colour = {"done": "green", "skipped": "yellow", "failed": "red"}.get(r.status, "")
        detail = r.message if r.status != "done" else str(r.output)
        table.add_row(r.source, f"[{colour}]{r.status}[/]", str(r.frames), f"{r.fps:.1f}", detail)
    out.print(table)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    out.print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
