"""Benchmark the anonymise pipeline against its own models (the floor) and a naive loop.

For each mode (``bbox``, ``seg``) and device, everything in one process, on the same video:

decode
    PyAV decode of every frame to a BGR ``ndarray`` (``anonymise.io.video.VideoReader``).
floor
    The exact models the pipeline runs for that mode (``anonymise.detect.Detector`` built from
    the same ``Config``: imgsz, conf, device, batch, half), called on batches of
    ``detector.batch`` frames already decoded into memory. No decode, masks, background,
    compositing or encode: the best fps the pipeline could reach with these models.
floor+looks
    The floor plus the second looks the pipeline itself made (the motion guard's crops, recorded
    during the pipeline stage and replayed through ``Detector.look`` at the same size): every
    model call the pipeline made, and nothing else.
pipeline
    ``Anonymiser(config).process_video(src, tmp)``: wall time of the whole thing (decode and
    encode threads, masks, background model, blending, skeletons, H.264 + audio).
naive
    A reference loop the way a naive peer writes it: one thread, ``cv2.VideoCapture``, two
    model calls per frame (a person detector, then the pose model; in ``bbox`` mode no
    separate detector is available offline, so the pose model runs twice), float32 numpy
    blending and running average, skeletons with cv2, ``cv2.VideoWriter`` ('mp4v').

Reading the ratios:

pipeline/floor
    Share of the models' own speed the pipeline keeps. With the motion guard on (the default
    for files) the pipeline also makes second-look calls, so this is below 1 by their cost.
pipeline/calls
    pipeline / floor+looks: 1.0 means every cost besides the model calls is hidden
    (overlapped or negligible). On a CPU with few cores the decode and encode
    threads compete with torch for the same cores, so expect below 1; on a small shared VM
    run-to-run noise is about +-10%, so values a little above 1 mean "as fast as the models".
pipeline/naive
    Speed-up over the naive loop; in ``bbox`` mode about 2x of it comes from running one
    model pass instead of two.

``--rounds N`` repeats the pipeline, floor and floor+looks stages N times, back to back within a
round, and reports the median fps of each and the median of each ratio's per-round values: on a
shared machine whose speed drifts by 10-20% over minutes, a ratio of stages run seconds apart is
steadier than one of stages run minutes apart.

Ultralytics sets torch's intra-op threads to ``min(8, cpu_count - 1)`` on a model's first CPU
predict, for the rest of the process; each stage line shows the threads it ended with.

Every model gets one untimed warm-up call, so the figures are steady-state. Peak RSS is read
from ``getrusage(RUSAGE_SELF).ru_maxrss``; where Linux allows it (``/proc/self/clear_refs``)
the high-water mark is reset before each stage, so ``stage MiB`` is that stage's own peak
(models and buffers it holds; the floor stage includes every decoded frame held in memory),
and ``peak MiB`` is the process's peak so far.

    python scripts/bench.py [--video PATH] [--frames N] [--mode bbox|seg|both] [--imgsz N] [--device cpu]
                           [--skip-naive] [--rounds N]
    python scripts/bench.py --resolutions   # the defaults vs --preset thorough, 360p to 1080p and a crowd
    python scripts/bench.py --memory-check 80   # peak RSS on 80 vs 800 frames (fresh process each): flat in length?
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from anonymise.config import DEFAULT_POSE_MODEL, DEFAULT_SEG_MODEL, Config, auto_imgsz
from anonymise.detect import Detector, person_class, resolve_device  # sets Ultralytics' offline environment
from anonymise.detect import weights as models
from anonymise.errors import AnonymiseError
from anonymise.framestream import SECOND_LOOK_IMGSZ
from anonymise.io.video import VideoReader, VideoWriter
from anonymise.pipeline import Anonymiser
from anonymise.pose import SKELETON

from ultralytics import YOLO  # isort: skip - only after anonymise.detect has set YOLO_OFFLINE

DEFAULT_VIDEO = Path(__file__).resolve().parent.parent.parent / "shared/data/pedestrians.mp4"
VIDEO_NAME = "pedestrians.mp4"
SEG_FALLBACK = "yolo11n-seg.yaml"  # same architecture as yolo11n-seg.pt, random weights
#: torch's own thread count, before any Ultralytics model changed it (the pipeline and floor run with it)
TORCH_THREADS = torch.get_num_threads()


# -- memory -------------------------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); ``False`` where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024  # bytes on macOS


class Memory:
    """Per-stage and process peak RSS in MiB."""

    def __init__(self) -> None:
        self.process_peak = _ru_maxrss_mib()
        self.resettable = _reset_peak_rss()

    def start_stage(self) -> None:
        self.process_peak = max(self.process_peak, _ru_maxrss_mib())
        if self.resettable:
            _reset_peak_rss()

    def end_stage(self) -> tuple[float, float]:
        """(this stage's peak, the process's peak so far)."""
        stage = _ru_maxrss_mib()
        self.process_peak = max(self.process_peak, stage)
        return stage, self.process_peak


# -- results ------------------------------------------------------------------------------


@dataclass
class Stage:
    frames: int
    seconds: float
    stage_mib: float
    peak_mib: float
    #: torch intra-op threads at the end of the stage (Ultralytics lowers them on its first predict)
    threads: int
    note: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ModeResult:
    mode: str
    device: str
    imgsz: int
    batch: int
    stages: dict[str, Stage] = field(default_factory=dict)
    #: fps of the repeated stages (pipeline, floor, floor+looks), one dict per round; the first
    #: round is ``stages``'
    rounds: list[dict[str, float]] = field(default_factory=list)

    def fps(self, name: str) -> float | None:
        """The stage's fps: the median over the rounds for a repeated stage."""
        measured = [r[name] for r in self.rounds if name in r]
        if len(measured) > 1:
            return float(np.median(measured))
        return self.stages[name].fps if name in self.stages else None

    def ratio(self, num: str, den: str) -> float | None:
        """fps(num) / fps(den); for two repeated stages the median of the per-round ratios (each
        round's stages ran back to back, so a machine that slows down between rounds cancels out)."""
        paired = [r[num] / r[den] for r in self.rounds if num in r and r.get(den)]
        if len(paired) > 1:
            return float(np.median(paired))
        a, b = self.fps(num), self.fps(den)
        return a / b if a is not None and b else None

    @property
    def own_mib(self) -> float:
        """The highest stage peak of this mode (its own peak when the high-water mark is resettable)."""
        return max((s.stage_mib for s in self.stages.values()), default=0.0)

    @property
    def process_mib(self) -> float:
        return max((s.peak_mib for s in self.stages.values()), default=0.0)


# -- input --------------------------------------------------------------------------------


def find_video(arg: str | None) -> Path:
    """``--video``, else ``$ANONYMISE_TEST_DATA/pedestrians.mp4``, else ``../shared/data``."""
    if arg:
        path = Path(arg).expanduser()
    elif os.environ.get("ANONYMISE_TEST_DATA"):
        path = Path(os.environ["ANONYMISE_TEST_DATA"]).expanduser() / VIDEO_NAME
    else:
        path = DEFAULT_VIDEO
    if not path.is_file():
        sys.exit(f"bench: video not found: {path} (pass --video PATH or set ANONYMISE_TEST_DATA to its folder)")
    return path


def cut_clip(src: Path, dst: Path, frames: int) -> int:
    """Re-encode the first ``frames`` frames of ``src`` (H.264, with that span's audio) to ``dst``."""
    written = 0
    with VideoReader(src) as reader:
        info = reader.info
        writer = VideoWriter(dst, info.width, info.height, info.fps, reader.time_base, reader.audio_stream)
        try:
            for frame in reader:
                writer.write_audio(frame.audio)
                writer.write(frame.image, frame.pts, frame.duration)
                written += 1
                if written >= frames:
                    break
            else:
                writer.write_audio(frame.audio_after)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return written


def decode_frames(path: Path) -> Iterator[np.ndarray]:
    with VideoReader(path) as reader:
        for frame in reader:
            yield frame.image


def first_frame(path: Path) -> np.ndarray:
    frames = decode_frames(path)
    try:
        return next(frames)
    finally:
        frames.close()


# -- stages -------------------------------------------------------------------------------


def timed(memory: Memory, run: Callable[[], int], note: str = "") -> Stage:
    """Run one stage (``run`` returns its frame count) and measure its wall time and memory."""
    memory.start_stage()
    start = time.perf_counter()
    frames = run()
    seconds = time.perf_counter() - start
    stage_mib, peak_mib = memory.end_stage()
    return Stage(frames, seconds, stage_mib, peak_mib, torch.get_num_threads(), note)


def bench_decode(path: Path) -> int:
    return sum(1 for _ in decode_frames(path))


def bench_floor(detector: Detector, frames: list[np.ndarray]) -> tuple[int, float, float]:
    """Run the detector over all frames; (frames, people per frame, poses per frame)."""
    people = poses = 0
    for i in range(0, len(frames), detector.batch):
        for found in detector(frames[i : i + detector.batch]):
            people += len(found.people)
            poses += len(found.poses)
    n = max(len(frames), 1)
    return len(frames), people / n, poses / n


def record_looks(look: Callable, into: list) -> Callable:
    """``Detector.look`` that also keeps a copy of every batch of crops it is given."""

    def recorded(crops, imgsz):
        into.append([c.copy() for c in crops])
        return look(crops, imgsz)

    return recorded


def replay_looks(detector: Detector, looks: list[list[np.ndarray]]) -> int:
    for crops in looks:
        detector.look(crops, SECOND_LOOK_IMGSZ)
    return sum(map(len, looks))


def bench_pipeline(anon: Anonymiser, src: Path, dst: Path) -> int:
    result = anon.process_video(src, dst)
    if result.counts.failed:
        print(f"    warning: the pipeline wrote {result.counts.failed} frame(s) fully masked after errors")
    return result.frames


def load_yolo(spec: str) -> YOLO:
    return YOLO(models.resolve(spec).target)


def naive_loop(src: Path, dst: Path, config: Config, imgsz: int, device: str, first: np.ndarray) -> Callable[[], int]:
    """Load and warm up the naive loop's two models; return the loop itself (see the module docstring)."""
    seg = config.mode.value == "seg"
    detector = load_yolo(config.seg_model if seg else config.pose_model)
    pose_model = load_yolo(config.pose_model)
    kwargs = dict(imgsz=imgsz, conf=config.conf, iou=config.iou, device=device, verbose=False)
    for model in (detector, pose_model):  # warm-up, untimed like every other stage's
        model.predict(first, classes=[person_class(model.names)], **kwargs)

    def run() -> int:
        cap = cv2.VideoCapture(str(src))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        background: np.ndarray | None = None
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            found = detector.predict(frame, classes=[person_class(detector.names)], **kwargs)[0]
            mask = naive_mask(found, (height, width), config.dilate)
            a = (
                cv2.GaussianBlur(mask, (config.feather | 1, config.feather | 1), 0)[..., None]
                if config.feather
                else mask[..., None]
            )
            f = frame.astype(np.float32)
            if background is None:
                background = f.copy()
            else:
                background = np.where(a > 0, background, background * (1 - config.alpha) + f * config.alpha)
            blended = f * (1 - a) + background.astype(np.float32) * a
            result = np.clip(blended, 0, 255).astype(np.uint8)
            kp = pose_model.predict(frame, classes=[person_class(pose_model.names)], **kwargs)[0].keypoints
            if kp is not None:
                naive_skeleton(result, kp.data.cpu().numpy(), config.pose_conf)
            out.write(result)
            n += 1
        cap.release()
        out.release()
        return n

    return run


def naive_mask(found, shape: tuple[int, int], grow: int) -> np.ndarray:
    """float32 0/1 person mask: polygons of instance masks, else grown boxes."""
    height, width = shape
    mask = np.zeros(shape, np.float32)
    if found.masks is not None:
        for poly in found.masks.xy:
            if len(poly):
                cv2.fillPoly(mask, [poly.astype(np.int32)], 1.0)
        return mask
    for x1, y1, x2, y2 in found.boxes.xyxy.cpu().numpy().astype(int):
        mask[max(y1 - grow, 0) : min(y2 + grow, height), max(x1 - grow, 0) : min(x2 + grow, width)] = 1.0
    return mask


def naive_skeleton(image: np.ndarray, keypoints: np.ndarray, conf: float) -> None:
    for person in keypoints:
        for (i, j), colour in SKELETON:
            if person[i, 2] >= conf and person[j, 2] >= conf:
                cv2.line(
                    image, (int(person[i, 0]), int(person[i, 1])), (int(person[j, 0]), int(person[j, 1])), colour, 2
                )
        for x, y, c in person:
            if c >= conf:
                cv2.circle(image, (int(x), int(y)), 3, (255, 255, 255), -1)


# -- one mode on one device -----------------------------------------------------------------


def mode_config(
    mode: str, imgsz: int | None, device: str, backend: str = "torch", int8: bool = False, half: bool | None = None
) -> tuple[Config, str]:
    """The Config to benchmark, and a note when the seg weights had to be replaced."""
    if backend != "torch" or int8 or half is not None:
        config, note = mode_config(mode, imgsz, device)
        return config.replace(backend=backend, int8=int8, half=half), note
    if mode == "seg" and models.resolve(DEFAULT_SEG_MODEL).path is None:
        note = (
            f"{DEFAULT_SEG_MODEL} is not available offline: using {SEG_FALLBACK} (same architecture, random weights); "
            "inference cost is the same, mask post-processing cost may differ (it scales with the detections)"
        )
        return Config(
            mode=mode,
            seg_model=SEG_FALLBACK,
            pose_model=DEFAULT_POSE_MODEL,
            imgsz=imgsz,
            device=device,
            backend="torch",
        ), note
    return Config(mode=mode, imgsz=imgsz, device=device, backend="torch"), ""


def log_stage(mode: str, device: str, name: str, stage: Stage) -> None:
    print(
        f"  [{mode}/{device}] {name:<8} {stage.frames:5d} frames in {stage.seconds:7.2f} s = {stage.fps:6.2f} fps"
        f"  torch threads {stage.threads}  stage {stage.stage_mib:5.0f} MiB  peak {stage.peak_mib:5.0f} MiB"
        f"{'   ' + stage.note if stage.note else ''}",
        flush=True,
    )


def bench_mode(mode: str, src: Path, args: argparse.Namespace, device: str, memory: Memory, tmp: Path) -> ModeResult:
    config, note = mode_config(mode, args.imgsz, device, args.backend, args.int8, args.half)
    if note:
        print(f"  note: {note}")
    first = first_frame(src)
    imgsz = config.imgsz or auto_imgsz(first.shape[1], first.shape[0])

    result = ModeResult(mode, device, imgsz, 0)
    # Order: decode, pipeline, naive, floor, so that the floor's frames held in memory do not
    # inflate the other stages' peak RSS.
    result.stages["decode"] = stage = timed(memory, lambda: bench_decode(src))
    log_stage(mode, device, "decode", stage)

    stage, looks, result.batch = bench_pipeline_stage(config, first, src, tmp / f"{mode}_pipeline.mp4", memory)
    result.stages["pipeline"] = stage
    log_stage(mode, device, "pipeline", stage)

    if not args.skip_naive:
        naive = naive_loop(src, tmp / f"{mode}_naive.mp4", config, imgsz, device, first)
        result.stages["naive"] = stage = timed(memory, naive)
        log_stage(mode, device, "naive", stage)
        del naive

    torch.set_num_threads(TORCH_THREADS)  # the naive loop's Ultralytics models set cpu_count - 1 for the process
    detector = Detector(config)
    detector([first])  # warm-up
    frames = list(decode_frames(src))
    result.stages["floor"], result.stages["floor+looks"] = bench_model_stages(detector, frames, looks, memory)
    log_stage(mode, device, "floor", result.stages["floor"])
    log_stage(mode, device, "calls", result.stages["floor+looks"])
    result.rounds.append({name: result.stages[name].fps for name in REPEATED})
    # Later rounds: the same stages again, back to back. Their memory is not reported (the floor's
    # frames are held by now); the first round's is.
    for number in range(2, args.rounds + 1):
        pipeline, looks, _ = bench_pipeline_stage(config, first, src, tmp / f"{mode}_pipeline.mp4", memory)
        floor, calls = bench_model_stages(detector, frames, looks, memory)
        result.rounds.append({"pipeline": pipeline.fps, "floor": floor.fps, "floor+looks": calls.fps})
        log_round(mode, device, number, result.rounds[-1])
    del frames, detector, looks
    return result


#: the stages each round repeats (decode and the naive loop run once)
REPEATED = ("pipeline", "floor", "floor+looks")


def bench_pipeline_stage(
    config: Config, first: np.ndarray, src: Path, dst: Path, memory: Memory
) -> tuple[Stage, list[list[np.ndarray]], int]:
    """The pipeline stage with a fresh ``Anonymiser`` (loaded and warmed up outside the timing):
    (its stage, the second-look crops it made, its batch size)."""
    torch.set_num_threads(TORCH_THREADS)
    anon = Anonymiser(config)
    anon.detector([first])  # warm-up
    looks: list[list[np.ndarray]] = []
    anon.detector.look = record_looks(anon.detector.look, looks)
    return timed(memory, lambda: bench_pipeline(anon, src, dst)), looks, anon.batch


def bench_model_stages(
    detector: Detector, frames: list[np.ndarray], looks: list[list[np.ndarray]], memory: Memory
) -> tuple[Stage, Stage]:
    """(floor, floor+looks): the main pass over ``frames``, then ``looks`` replayed on top."""
    torch.set_num_threads(TORCH_THREADS)
    counts: list[float] = []

    def floor() -> int:
        n, people, poses = bench_floor(detector, frames)
        counts.extend((people, poses))
        return n

    stage = timed(memory, floor)
    stage.note = (
        f"(batch {detector.batch}, half {detector.half}; per frame: {counts[0]:.1f} people, {counts[1]:.1f} poses)"
    )
    if looks:
        detector.look(looks[0], SECOND_LOOK_IMGSZ)  # warm-up (a new input shape)
    looked = timed(memory, lambda: replay_looks(detector, looks))
    calls = Stage(
        stage.frames,
        stage.seconds + looked.seconds,
        max(stage.stage_mib, looked.stage_mib),
        looked.peak_mib,
        looked.threads,
        f"(+ {sum(map(len, looks))} second-look crops in {len(looks)} calls, {looked.seconds:.2f} s)",
    )
    return stage, calls


def log_round(mode: str, device: str, number: int, fps: dict[str, float]) -> None:
    print(
        f"  [{mode}/{device}] round {number}: pipeline {fps['pipeline']:6.2f} fps, floor {fps['floor']:6.2f} fps, "
        f"calls {fps['floor+looks']:6.2f} fps; pipe/floor {fps['pipeline'] / fps['floor']:.2f}, "
        f"pipe/calls {fps['pipeline'] / fps['floor+looks']:.2f}"
    )


# -- report -------------------------------------------------------------------------------


def machine_line(devices: list[str], threads_at_start: int) -> str:
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    threads = (
        f"{threads_at_start}"
        if threads_at_start == torch.get_num_threads()
        else f"{threads_at_start} at start, {torch.get_num_threads()} now"
    )
    return (
        f"machine: {platform.node() or '?'} ({platform.machine()}), os.cpu_count()={os.cpu_count()}, "
        f"torch threads={threads}, cv2 threads={cv2.getNumThreads()}, devices={', '.join(devices)}{gpu}; "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[ModeResult], frames: int) -> str:
    head = (
        "mode",
        "device",
        "imgsz",
        "batch",
        "frames",
        "rounds",
        "decode fps",
        "floor fps",
        "calls fps",
        "pipeline fps",
        "pipe/floor",
        "pipe/calls",
        "naive fps",
        "pipe/naive",
        "pipeline MiB",
        "mode MiB",
        "peak RSS MiB",
    )
    rows = [
        (
            r.mode,
            r.device,
            str(r.imgsz),
            str(r.batch),
            str(r.stages["pipeline"].frames if "pipeline" in r.stages else frames),
            str(max(len(r.rounds), 1)),
            _fmt(r.fps("decode"), ".1f"),
            _fmt(r.fps("floor"), ".2f"),
            _fmt(r.fps("floor+looks"), ".2f"),
            _fmt(r.fps("pipeline"), ".2f"),
            _fmt(r.ratio("pipeline", "floor"), ".2f"),
            _fmt(r.ratio("pipeline", "floor+looks"), ".2f"),
            _fmt(r.fps("naive"), ".2f"),
            _fmt(r.ratio("pipeline", "naive"), ".2f"),
            f"{r.stages['pipeline'].stage_mib:.0f}" if "pipeline" in r.stages else "-",
            f"{r.own_mib:.0f}",
            f"{r.process_mib:.0f}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--video", help=f"input video (default: $ANONYMISE_TEST_DATA/{VIDEO_NAME}, else {DEFAULT_VIDEO})")
    p.add_argument(
        "--frames", type=int, help="benchmark only the first N frames (cut into a temporary H.264 clip); default: all"
    )
    p.add_argument("--mode", choices=("bbox", "seg", "both"), default="both")
    p.add_argument("--imgsz", type=int, help="inference size (default: the pipeline's auto size for the video)")
    p.add_argument(
        "--device",
        default="cpu",
        help="device of the main section (default: cpu); cuda runs again in the GPU section when present",
    )
    p.add_argument("--skip-naive", action="store_true", help="do not run the naive reference loop")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the pipeline, floor and calls stages this many times, back to back per "
        "round, and report the medians (fps, and each ratio over its rounds); decode and naive run once",
    )
    p.add_argument(
        "--backend",
        default="auto",
        help="inference backend of the floor and pipeline stages, as the CLI's --backend "
        "(default auto); the naive loop stays torch",
    )
    p.add_argument(
        "--int8",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="int8 models (default: as the CLI, on with --backend auto on a CPU)",
    )
    p.add_argument(
        "--half",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reduced precision (fp16 on CUDA, bf16 with openvino)",
    )
    p.add_argument(
        "--resolutions",
        action="store_true",
        help="the defaults and --preset thorough at 360p, 432p, 480p, 720p, 1080p and on a 1280x720 "
        "crowd: fps, model share, peak RSS and privacy (see scripts/bench_resolutions.py); --frames per row, "
        "default 100",
    )
    p.add_argument(
        "--rows", nargs="+", help="--resolutions: only these rows (360p 432p 480p 720p 1080p crowd crowd720 crowd1080)"
    )
    p.add_argument(
        "--presets", nargs="+", help="--resolutions: these presets (default: balanced thorough, and the table)"
    )
    p.add_argument(
        "--memory-check",
        type=int,
        metavar="N",
        help="only check that memory is flat in video length: "
        "peak RSS of the pipeline on N frames vs 10*N frames (the clip looped), each in a fresh process; "
        "at the defaults, or at --imgsz with tiles off",
    )
    args = p.parse_args(argv)
    if args.frames is not None and args.frames < 1:
        p.error("--frames must be >= 1")
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def loop_clip(src: Path, dst: Path, frames: int) -> int:
    """``frames`` frames of ``src`` (looped as often as needed, timestamps continued) re-encoded to ``dst``."""
    with VideoReader(src, audio=False) as reader:
        info = reader.info
        images = []
        for frame in reader:
            images.append(frame.image)
            if len(images) >= frames:
                break
    writer = VideoWriter(dst, info.width, info.height, info.fps)
    for i in range(frames):
        writer.write(images[i % len(images)])
    writer.close()
    return frames


PEAK_CHILD = """
import sys, resource
from anonymise import Anonymiser, Config
size = int(sys.argv[3])  # 0: the defaults (the automatic size, tiles where it needs them)
Anonymiser(Config(imgsz=size, tiles="off") if size else Config()).process_video(sys.argv[1], sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def memory_check(video: Path, n: int, imgsz: int | None = None) -> None:
    """Peak RSS of the whole pipeline on n and 10n frames, each in a fresh process: the defaults, or
    ``imgsz`` without tiles."""
    import subprocess

    settings = f"imgsz {imgsz}, tiles off" if imgsz else "the whole defaults"
    print(f"memory check: pipeline (bbox, {settings}) on {n} and {10 * n} frames of {video.name}, fresh process each")
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="anonymise-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for frames in (n, 10 * n):
            src = tmp / f"loop{frames}.mp4"
            loop_clip(video, src, frames)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", PEAK_CHILD, str(src), str(tmp / "out.mp4"), str(imgsz or 0)],
                capture_output=True,
                text=True,
                check=True,
            )
            peaks[frames] = float(done.stdout.strip().splitlines()[-1])
            print(f"  {frames:>6} frames: peak RSS {peaks[frames]:.0f} MiB ({time.perf_counter() - start:.0f} s)")
    ratio = peaks[10 * n] / peaks[n]
    print(f"  10x longer / short: {ratio:.3f} (target: within 1.10)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.resolutions:
        import bench_resolutions

        rows = args.rows or list(bench_resolutions.ROWS)
        unknown = [r for r in rows if r not in bench_resolutions.ROWS]
        if unknown:
            sys.exit(f"bench: unknown row {unknown[0]}: use {' '.join(bench_resolutions.ROWS)}")
        presets = args.presets or list(bench_resolutions.PRESETS)
        from anonymise.config import PRESETS as KNOWN

        if any(name not in KNOWN for name in presets):
            sys.exit(f"bench: unknown preset in {' '.join(presets)}: use {' '.join(KNOWN)}")
        bench_resolutions.run(rows, args.frames or 100, Memory(), presets)
        return
    if args.memory_check:
        memory_check(find_video(args.video), args.memory_check, args.imgsz)
        return
    try:
        run(args)
    except AnonymiseError as e:  # bad --device, --imgsz, missing model, unreadable video: one line
        sys.exit(f"bench: {e}")


def run(args: argparse.Namespace) -> None:
    video = find_video(args.video)
    modes = ["bbox", "seg"] if args.mode == "both" else [args.mode]
    device = resolve_device(args.device)
    for mode in modes:
        mode_config(
            mode, args.imgsz, device, args.backend, args.int8, args.half
        )  # validate the settings before any work
    devices = [device]
    if torch.cuda.is_available() and not device.startswith("cuda"):
        devices.append("cuda:0")

    threads_at_start = torch.get_num_threads()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(machine_line(devices, threads_at_start))
    memory = Memory()
    if not memory.resettable:
        print("note: cannot reset the RSS high-water mark here; 'stage' memory is the process peak")

    results: list[ModeResult] = []
    with tempfile.TemporaryDirectory(prefix="anonymise-bench-") as tmp_name:
        tmp = Path(tmp_name)
        src, total = video, None
        if args.frames is not None:
            src = tmp / f"first{args.frames}.mp4"
            total = cut_clip(video, src, args.frames)
            print(f"input: first {total} frames of {video} (re-encoded to {src.name})")
        else:
            print(f"input: {video}")
        for section in devices:
            print(f"\n== {'GPU' if section.startswith('cuda') else 'CPU'} section: device {section} ==")
            for mode in modes:
                results.append(bench_mode(mode, src, args, section, memory, tmp))
        if not torch.cuda.is_available():
            print("\nGPU section skipped: no CUDA")
        frames = total if total is not None else results[0].stages["decode"].frames

    print(f"\ncommand: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(machine_line(devices, threads_at_start))
    print(table(results, frames))
    print(
        "pipe/floor: share of the models' own fps (one pass per frame) the whole pipeline keeps; calls fps: the "
        "floor plus the "
        "pipeline's own second looks replayed; pipe/calls: 1.0 = everything but the model calls hidden; "
        "pipe/naive: speed-up over the naive single-threaded loop. With rounds > 1: the median fps of each "
        "repeated stage, and the "
        "median of each ratio's per-round values.\n"
        "pipeline MiB: peak RSS during the pipeline stage; mode MiB: highest stage peak of the mode "
        "(the floor holds every decoded frame); peak RSS MiB: the process's peak so far (ru_maxrss)."
    )


if __name__ == "__main__":
    main()
