"""``bench.py --resolutions``: the defaults at every resolution, beside ``--preset thorough``.

One row per resolution (and a crowd), each run twice (the defaults, then ``--preset thorough``) on a cut of a
shared clip, everything in one process:

- **fps**: ``Anonymiser.process_video`` on the cut (a temporary H.264 file), whole pipeline:
  decode, models, masks, background, blending, encode (skeletons off, as the privacy figure);
- **model share**: the share of that wall time spent inside model calls (``Detector._predict``:
  every pass, tile and second look);
- **peak MiB**: that run's peak RSS (the high-water mark is reset before each run where Linux
  allows it);
- **privacy**: the pixel-truth or residual-people figure of ``privacy_eval.py --suite`` for the
  clip's kind, from a second run on the same frames in memory (a pixel leak cannot be scored
  on an H.264 output: compression changes every pixel a little):

  - ``360p`` ``pedestrians.mp4``; ``720p`` and ``1080p`` the same clip upscaled 2x and 3x, so its
    people stay small in the frame (60-120 px at 720p): **residual people %** (the reference
    runs on the outputs scaled back to 480x360, against the people it found in the original);
  - ``432p`` ``one-by-one-person-detection.mp4`` (its first 70 frames, empty, give the scene;
    the cut is the N frames after them): **person pixels leaked %**;
  - ``480p`` the close-ups (``closeups/*.mkv``, the first N frames of each, pooled): **core
    pixels leaked %**;
  - ``crowd`` four moments of ``pedestrians.mp4`` (frames i, i+200, i+400 and i+600), each
    stretched to 640x360, in one 1280x720 frame (2x2): 20-50 people 20-60 px tall, a stand-in
    for a crowd seen from afar: **residual people %** in pixels: the reference's people of each
    cell's own moment (found once on the original frames, cached), placed where the mosaic put
    them, each counted as visible where half of its box's core (``privacy_eval.CORE_SHRINK``) or more
    is unchanged in the output (within ``privacy_eval.LEAK_TOL``; :func:`shown`). A re-detection on
    the output, as the other rows score, missed people 12-30 px tall and took washes for people;
  - ``crowd720`` and ``crowd1080``: nine moments (frames i, i+80, ..., i+640) in a 3x3 grid scaled
    to 1280x720 and 1920x1080: 43-53 people, 26-55 px tall at 720p (5th-95th percentile), the harder stand-in for a
    busy HD camera (issue 30); scored as ``crowd``.

The ratio columns are the defaults over thorough, run back to back on the same machine.

    python scripts/bench.py --resolutions [--frames 100] [--rows 360p 720p] [--presets fast]
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import privacy_eval as pe

from anonymise import Anonymiser, Config
from anonymise.detect import Detector
from anonymise.io.video import Frame, VideoReader, VideoWriter

#: name -> (clip(s) under ../shared/data, upscale factor, what the privacy figure is)
ROWS = {
    "360p": ("pedestrians.mp4", 1, "people"),
    "432p": ("one-by-one-person-detection.mp4", 1, "static"),
    "480p": ("closeups", 1, "closeup"),
    "720p": ("pedestrians.mp4", 2, "people"),
    "1080p": ("pedestrians.mp4", 3, "people"),
    "crowd": ("pedestrians.mp4", 1, "crowd"),
    "crowd720": ("pedestrians.mp4", 1, "crowd"),
    "crowd1080": ("pedestrians.mp4", 1, "crowd"),
}


@dataclass(frozen=True)
class Mosaic:
    """Moments of pedestrians.mp4 (these frame offsets) in a ``grid`` x ``grid`` frame of ``size``."""

    offsets: tuple[int, ...]
    grid: int
    size: tuple[int, int]

    @property
    def cell(self) -> tuple[int, int]:
        return self.size[0] // self.grid, self.size[1] // self.grid


#: the crowd rows: 2x2 at 1280x720 (20-50 people 20-60 px tall); 3x3 at 720p and 1080p (43-53 people)
MOSAICS = {
    "crowd": Mosaic((0, 200, 400, 600), 2, (1280, 720)),
    "crowd720": Mosaic(tuple(range(0, 641, 80)), 3, (1280, 720)),
    "crowd1080": Mosaic(tuple(range(0, 641, 80)), 3, (1920, 1080)),
}
PRESETS = ("balanced", "thorough")
PRIVACY_LABEL = {
    "people": "residual people %",
    "crowd": "residual people %",
    "static": "person px leaked %",
    "closeup": "core px leaked %",
}


@dataclass
class Run:
    fps: float
    model_share: float
    peak_mib: float
    privacy: float


class ModelClock:
    """Seconds spent inside ``Detector._predict`` (every model call), while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = Detector._predict

    def __enter__(self) -> ModelClock:
        clock, original = self, self._original

        def timed(detector, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(detector, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - start

        Detector._predict = timed
        return self

    def __exit__(self, *exc) -> None:
        Detector._predict = self._original


def clips_of(row: str) -> list[Path]:
    name, _, _ = ROWS[row]
    data = pe.shared_data()
    return sorted((data / "closeups").glob("*.mkv")) if name == "closeups" else [data / name]


def mosaic(images: list[np.ndarray], layout: Mosaic = MOSAICS["crowd"]) -> np.ndarray:
    """Frames, each resized to the layout's cell, in its grid (the crowd rows)."""
    cells = [cv2.resize(image, layout.cell, interpolation=cv2.INTER_CUBIC) for image in images]
    g = layout.grid
    image = np.vstack([np.hstack(cells[r * g : (r + 1) * g]) for r in range(g)])
    if image.shape[:2] != layout.size[::-1]:  # a size the grid does not divide: the last row/column padded
        image = cv2.copyMakeBorder(
            image, 0, layout.size[1] - image.shape[0], 0, layout.size[0] - image.shape[1], cv2.BORDER_REPLICATE
        )
    return image


#: a person is visible in the output where this share of their box's core is unchanged (every channel
#: within ``privacy_eval.LEAK_TOL`` of the input: the mosaic is made and scored in memory, uncompressed)
VISIBLE_SHARE = 0.5


def placed(boxes: np.ndarray, cell: int, layout: Mosaic, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """``boxes`` of a ``size`` (width, height) frame, where the :func:`mosaic` put that frame as cell ``cell``."""
    width, height = layout.cell
    x0, y0 = (cell % layout.grid) * width, (cell // layout.grid) * height
    scale = np.array([width / size[0], height / size[1]] * 2, np.float32)
    return np.asarray(boxes, np.float32).reshape(-1, 4) * scale + np.array([x0, y0, x0, y0], np.float32)


def shown(image: np.ndarray, output: np.ndarray, boxes: np.ndarray, share: float = VISIBLE_SHARE) -> np.ndarray:
    """Bool per box: the output left at least ``share`` of its core (``privacy_eval.CORE_SHRINK``) as it came."""
    same = pe.max_difference(output, image) <= pe.LEAK_TOL
    height, width = same.shape
    visible = np.zeros(len(boxes), bool)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        dx, dy = (x1 - x0) * pe.CORE_SHRINK, (y1 - y0) * pe.CORE_SHRINK
        left, top = max(int(round(x0 + dx)), 0), max(int(round(y0 + dy)), 0)
        right, bottom = min(int(round(x1 - dx)), width), min(int(round(y1 - dy)), height)
        core = same[top:bottom, left:right]
        visible[i] = core.size > 0 and core.mean() >= share
    return visible


def frames_of(video: Path, kind: str, count: int, scale: int, row: str = "crowd") -> list[Frame]:
    """The frames a row runs on: the first ``count`` (after the 70 empty ones for ``static``), upscaled
    (or, for ``crowd``, four moments of the clip in one frame)."""
    if kind == "crowd":
        originals = pe.read(video, None)
        layout = MOSAICS[row]
        return [Frame(mosaic([originals[i + o].image for o in layout.offsets], layout), i) for i in range(count)]
    frames = pe.read(video, count + (pe.STATIC_EMPTY_FRAMES if kind == "static" else 0))
    if scale != 1:
        height, width = frames[0].image.shape[:2]
        frames = [
            Frame(cv2.resize(f.image, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC), f.index)
            for f in frames
        ]
    return frames


def write_clip(frames: list[Frame], fps: float, path: Path) -> Path:
    height, width = frames[0].image.shape[:2]
    writer = VideoWriter(path, width, height, fps)
    for f in frames:
        writer.write(f.image)
    writer.close()
    return path


def whole_process(config: Config, clip: Path, tmp: Path, memory) -> tuple[float, float, float, int]:
    """(wall seconds, model seconds, peak MiB, frames) of one ``process_video`` run."""
    anon = Anonymiser(config)
    memory.start_stage()
    with ModelClock() as clock:
        start = time.perf_counter()
        result = anon.process_video(clip, tmp / "out.mp4")
        seconds = time.perf_counter() - start
    peak, _ = memory.end_stage()
    (tmp / "out.mp4").unlink(missing_ok=True)
    return seconds, clock.seconds, peak, result.frames


def privacy(
    kind: str,
    video: Path,
    frames: list[Frame],
    scale: int,
    config: Config,
    reference: Detector | None,
    row: str = "crowd",
) -> tuple[int, int]:
    """(leaked, total) for the row's privacy figure: people (residual / input) or pixels."""
    if kind == "crowd":  # the reference's people of each cell's own moment, scored in pixels
        originals = pe.read(video, None)
        truth = pe.cached_people(reference, video, originals)
        outputs = Anonymiser(config).anonymise_frames(Frame(f.image, f.index) for f in frames)
        leaked = total = 0
        for (_, out), source in zip(outputs, frames):
            boxes = np.concatenate(
                [
                    placed(truth[source.index + offset].xyxy, k, MOSAICS[row])
                    for k, offset in enumerate(MOSAICS[row].offsets)
                ]
            )
            visible = shown(source.image, out, boxes)
            leaked, total = leaked + int(visible.sum()), total + len(boxes)
        return leaked, total
    if kind == "people":
        originals = pe.read(video, len(frames))
        truth = pe.cached_people(reference, video, originals)
        outputs = [out for _, out in Anonymiser(config).anonymise_frames(Frame(f.image, f.index) for f in frames)]
        if scale != 1:
            height, width = originals[0].image.shape[:2]
            outputs = [cv2.resize(o, (width, height), interpolation=cv2.INTER_AREA) for o in outputs]
        residual = pe.people(reference, outputs)
        return sum(int(pe.matched(r, t).sum()) for r, t in zip(residual, truth)), sum(len(t) for t in truth)
    truth, confidence = pe.pixel_reference(video, frames)
    empty = None
    if kind == "closeup":
        truth = [pe.closeup_people(b, c) for b, c in zip(truth, confidence)]
    else:
        empty = np.median(np.stack([f.image for f in frames[: pe.STATIC_EMPTY_FRAMES]]), axis=0).astype(np.uint8)
    leaked = total = 0
    for (_, out), source, boxes in zip(
        Anonymiser(config).anonymise_frames(Frame(f.image, f.index) for f in frames), frames, truth
    ):
        image = source.image
        where = pe.person_pixels(image, empty, boxes) if kind == "static" else pe.core_pixels(boxes, image.shape[:2])
        leaked += int(pe.leaked(image, out, where).sum())
        total += int(where.sum())
    return leaked, total


def bench_row(row: str, count: int, memory, tmp: Path, reference: Detector, presets=PRESETS) -> dict[str, Run]:
    _, scale, kind = ROWS[row]
    runs: dict[str, Run] = {}
    inputs = []
    for video in clips_of(row):
        frames = frames_of(video, kind, count, scale, row)
        with VideoReader(video, audio=False) as reader:
            fps = reader.info.fps
        inputs.append((video, frames, write_clip(frames, fps, tmp / f"{row}-{video.stem}.mp4")))
    for preset in presets:
        config = Config(pose=False, preset=preset)
        wall = model = peak = 0.0
        done = leaked = total = 0
        for video, frames, clip in inputs:
            seconds, in_models, mib, n = whole_process(config, clip, tmp, memory)
            wall, model, peak, done = wall + seconds, model + in_models, max(peak, mib), done + n
            a, b = privacy(kind, video, frames, scale, config, reference, row)
            leaked, total = leaked + a, total + b
        runs[preset] = Run(done / wall, model / wall, peak, 100 * leaked / max(total, 1))
        r = runs[preset]
        print(
            f"  {row} {preset}: {r.fps:.2f} fps, model share {100 * r.model_share:.0f}%, peak {r.peak_mib:.0f} MiB, "
            f"{PRIVACY_LABEL[kind]} {r.privacy:.2f}",
            flush=True,
        )
    return runs


def run(rows: list[str], count: int, memory, presets=PRESETS) -> None:
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    reference = Detector(pe.REFERENCE)
    results = {}
    with tempfile.TemporaryDirectory(prefix="anonymise-bench-") as tmp_name:
        for row in rows:
            name, scale, kind = ROWS[row]
            print(
                f"row {row}: {name}{f' upscaled {scale}x' if scale != 1 else ''}, {count} "
                f"frames{' (after the 70 empty ones)' if kind == 'static' else ''}",
                flush=True,
            )
            results[row] = bench_row(row, count, memory, Path(tmp_name), reference, presets)
    if set(PRESETS) <= set(presets):
        print(f"\ncommand: {shlex.join([Path(sys.executable).name, *sys.argv])}")
        print(table(results))


def table(results: dict[str, dict[str, Run]]) -> str:
    header = [
        "row",
        "clip",
        "privacy figure",
        "fps",
        "thorough fps",
        "fps ratio",
        "model share %",
        "peak MiB",
        "privacy",
        "thorough privacy",
        "privacy diff",
    ]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for row, runs in results.items():
        name, scale, kind = ROWS[row]
        ours, thorough = runs["balanced"], runs["thorough"]
        cells = [
            row,
            f"{name}{f' x{scale}' if scale != 1 else ''}",
            PRIVACY_LABEL[kind],
            f"{ours.fps:.2f}",
            f"{thorough.fps:.2f}",
            f"{ours.fps / thorough.fps:.2f}",
            f"{100 * ours.model_share:.0f}",
            f"{ours.peak_mib:.0f}",
            f"{ours.privacy:.2f}",
            f"{thorough.privacy:.2f}",
            f"{ours.privacy - thorough.privacy:+.2f}",
        ]
        lines.append(" | ".join(cells))
    return "\n".join(lines)
