"""Privacy benchmark: how many people a stronger detector still finds after anonymisation.

For a clip (default: ../shared/data/pedestrians.mp4) and each preset:

1. a **reference** pass (the pose model at 1280 px, plus 2x2 tiles, threshold 0.2, people
   de-duplicated across tiles) finds the people in every *input* frame;
2. the pipeline runs with the preset's settings **with skeleton drawing off** (so skeletons are
   not counted as people), timed: its fps;
3. the reference runs on every *output* frame; an output detection that overlaps an input
   person (IoU >= 0.3) is a **residual person**: someone still visible;
4. **utility**: the pipeline runs again with skeletons on, and each input person should be
   matched (IoU >= 0.3) by a skeleton it drew; with ``plain`` among the presets, also the
   share of the skeletons the plain single pass draws (the pose model on the input) that each
   preset draws too ("utility is not traded away").

``--backend``/``--int8``/``--half`` run the presets (not the reference) on another inference
backend. The reference's people in the input frames are cached (``~/.cache/anonymise/privacy_eval``,
keyed by the video's size and mtime, the frame count and the reference settings), so later runs
skip that pass.

Printed per preset: residual people (% of the input's), frames with any residual person, the
longest run of consecutive such frames, skeleton recall, and fps (with the ratio to the
``plain`` preset: one pass, no tracking, no look-ahead, no motion guard).

    python scripts/privacy_eval.py [--video PATH] [--frames N] [--presets default fast plain] [--no-utility]
    python scripts/privacy_eval.py --presets default plain --backend openvino --int8   # needs $ANONYMISE_CALIBRATION

**Pixel truth** (``--suite``): every shared clip, one row each, at the defaults (``--pose`` also
draws skeletons; they change pixels, which never counts against a leak):

- ``static`` clips that start empty (``one-by-one-person-detection.mp4``, frames 0-69 empty): the
  empty scene is the median of those frames; a **person pixel** lies inside a reference person
  box (grown by PERSON_BOX_GROWTH) and differs from the empty scene, matched to the frame's
  lighting as for the fill error below, by more than PERSON_TOL; it
  **leaks** when the output left it unchanged (every channel within LEAK_TOL of the input);
- ``closeup`` clips (``closeups/*.mkv``, one person who never leaves): every pixel of the **core**
  of each reference box (shrunk by CORE_SHRINK on each side) must be replaced;
- ``people`` (``pedestrians.mp4``): the residual people above.

The pixel reference is the pose model at the frame's own size (a person who fills the frame is
one box there), threshold 0.25. Reported: share of person (or core) pixels leaked, frames
leaking more than 5% and 2%, the worst frame, fps, and with ``--pose`` the share of the frames
where the reference sees someone that carry a skeleton matching them.

**Scene** (every ``--suite`` row, beside the privacy figures; DESIGN.md's scene invariants), from the
run with skeletons off (a skeleton changes pixels inside the person):

- **scene lost**: the share of the pixels outside every reference person (boxes grown by
  SCENE_GROWTH of their height on each side) that the output changed by more than SCENE_LEVELS
  (largest channel), over every frame scored (the empty ones too: a mask where nobody is costs
  scene), with the worst frame. The suite scores the pipeline's frames in memory, before any
  encoding; the **floor** is the same measure for the input written as the pipeline writes it
  (H.264 through VideoWriter) and read back: what the encoder alone adds to a written file.
- **fill error**: the mean largest-channel difference, in levels, between the output and the empty
  scene inside the reference boxes (not grown), over the frames with a person; the empty scene is
  first matched to the frame's lighting (a per-channel gain and offset fitted on the pixels outside
  the grown boxes), and the figure without that fit is given too. The empty scene: the median of
  frames 0-69 for ``static`` clips, of up to EMPTY_SAMPLES frames spread over the whole clip for
  ``people``; none for close-ups (their person never leaves, so the median is them).

    python scripts/privacy_eval.py --suite [--no-pose|--pose] [--clips closeups one-by-one pedestrians]
                                   [--frames N] [--save-frames DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from anonymise import Anonymiser, Config, scene
from anonymise.detect import Detector
from anonymise.detections import Detections, suppress
from anonymise.io.video import Frame, VideoReader, VideoWriter

from ultralytics.utils.metrics import bbox_ioa  # isort: skip - after anonymise.detect set the offline switches

ROOT = Path(__file__).resolve().parent.parent
MATCH_IOU = 0.3

#: pixel truth (see the module docstring)
PERSON_TOL = 30
LEAK_TOL = 10
CORE_SHRINK = 0.15
PERSON_BOX_GROWTH = 0.05
STATIC_EMPTY_FRAMES = 70
CLOSEUP_CONF = 0.6

#: scene (see the module docstring)
SCENE_GROWTH = 0.25
SCENE_LEVELS = 15
EMPTY_SAMPLES = 200
MIN_FIT_PIXELS = 64

#: settings compared (Config overrides); "default" is what the CLI does with no flags
PRESETS: dict[str, dict] = {
    "default": {},
    "thorough": {"preset": "thorough"},  # every pass and every tile on every frame
    "fast": {"min_person": 48, "second_look": False},  # 640 px inference (480x360), no second look
    "no-guard": {"fail_closed": False},  # tracking, hold and look-ahead only
    "plain": {"track": False, "fail_closed": False, "lookahead": 0},  # the single-pass pipeline
}
REFERENCE = Config(mode="bbox", imgsz=1280, tiles="2", conf=0.2, pose=False, track=False, backend="torch")


# -- pixel truth: pure functions, tested on synthetic frames (tests/test_privacy_eval.py) ------------------


def max_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel largest channel difference (int16 H, W)."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1)


def boxes_region(boxes: np.ndarray, shape: tuple[int, int], grow: float = 0.0) -> np.ndarray:
    """Bool (H, W): inside any box, each grown (``grow`` > 0) or shrunk (< 0) by that share of its size per side."""
    height, width = shape
    region = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).reshape(-1, 4):
        dx, dy = (x2 - x1) * grow, (y2 - y1) * grow
        left, top = max(int(np.floor(x1 - dx)), 0), max(int(np.floor(y1 - dy)), 0)
        right, bottom = min(int(np.ceil(x2 + dx)), width), min(int(np.ceil(y2 + dy)), height)
        if right > left and bottom > top:
            region[top:bottom, left:right] = True
    return region


def person_pixels(
    image: np.ndarray, empty: np.ndarray, boxes: np.ndarray, tol: int = PERSON_TOL, grow: float = PERSON_BOX_GROWTH
) -> np.ndarray:
    """Bool (H, W): pixels of a static clip that belong to a person: inside a (grown) reference box
    and unlike the empty scene."""
    return boxes_region(boxes, image.shape[:2], grow) & (max_difference(image, empty) > tol)


def core_pixels(boxes: np.ndarray, shape: tuple[int, int], shrink: float = CORE_SHRINK) -> np.ndarray:
    """Bool (H, W): the cores of the reference boxes (each shrunk by ``shrink`` per side)."""
    return boxes_region(boxes, shape, -shrink)


def leaked(image: np.ndarray, output: np.ndarray, where: np.ndarray, tol: int = LEAK_TOL) -> np.ndarray:
    """Bool (H, W): pixels of ``where`` that the output left unchanged (every channel within ``tol``)."""
    return where & (max_difference(output, image) <= tol)


def leak_summary(leaks: list[int], totals: list[int]) -> dict:
    """Share of pixels leaked over a clip, frames leaking over 5% and 2%, and the worst frame."""
    shares = [100 * leak / total if total else 0.0 for leak, total in zip(leaks, totals)]
    worst = int(np.argmax(shares)) if shares else 0
    return {
        "leak %": 100 * sum(leaks) / max(sum(totals), 1),
        "frames > 5%": sum(s > 5 for s in shares),
        "frames > 2%": sum(s > 2 for s in shares),
        "worst %": shares[worst] if shares else 0.0,
        "worst frame": worst,
        "frames scored": sum(t > 0 for t in totals),
    }


# -- scene: pure functions, tested on synthetic frames (tests/test_privacy_eval.py) ------------------------


def grown_region(boxes: np.ndarray, shape: tuple[int, int], grow: float = SCENE_GROWTH) -> np.ndarray:
    """Bool (H, W): inside any box grown by ``grow`` of its *height* on every side.

    A person's reach (arms, a step, a shadow) scales with their height, not their width: a margin
    by width would be a few pixels beside a pedestrian seen side-on. Kept here rather than taken
    from the package, so that the measure does not move with the code it measures.
    """
    height, width = shape
    region = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).reshape(-1, 4):
        pad = (y2 - y1) * grow
        left, top = max(int(np.floor(x1 - pad)), 0), max(int(np.floor(y1 - pad)), 0)
        right, bottom = min(int(np.ceil(x2 + pad)), width), min(int(np.ceil(y2 + pad)), height)
        if right > left and bottom > top:
            region[top:bottom, left:right] = True
    return region


def _same_images(*images: np.ndarray) -> None:
    shape = images[0].shape
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) images, got {shape}")
    for other in images[1:]:
        if other.shape != shape:
            raise ValueError(f"images differ in shape: {shape} and {other.shape}")


def scene_lost(
    image: np.ndarray, output: np.ndarray, boxes: np.ndarray, grow: float = SCENE_GROWTH, levels: int = SCENE_LEVELS
) -> float:
    """Share (0-1) of the pixels outside every person (``boxes`` grown by ``grow`` of their height per
    side) that ``output`` changed by more than ``levels`` (largest channel): the scene the tool took
    from a viewer where nobody stood. NaN when no pixel lies outside (a close-up's grown box can
    cover the frame): nothing there could be lost, and a 0 would flatter the mean."""
    _same_images(image, output)
    outside = ~grown_region(boxes, image.shape[:2], grow)
    count = int(outside.sum())
    if not count:
        return float("nan")
    return float((max_difference(output, image)[outside] > levels).sum() / count)


def fill_error(output: np.ndarray, empty: np.ndarray, boxes: np.ndarray) -> float:
    """Mean largest-channel difference (levels) between ``output`` and the ``empty`` scene inside the
    ``boxes`` (not grown): how far the fill is from what stood behind the person. NaN without a box
    (no fill to judge)."""
    _same_images(output, empty)
    inside = boxes_region(boxes, output.shape[:2])
    if not inside.any():
        return float("nan")
    return float(max_difference(output, empty)[inside].mean())


def match_lighting(empty: np.ndarray, frame: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``empty`` (uint8) with a per-channel gain and offset fitted by least squares to ``frame`` on the
    ``outside`` pixels (bool H, W): the camera's auto-exposure brightens or darkens the whole room
    while someone is in view, and the fill is to be judged against the scene as lit now, not as it
    was when the room was empty. Returned unchanged when fewer than MIN_FIT_PIXELS lie outside (no
    fit to trust); a flat channel gets an offset only."""
    _same_images(empty, frame)
    if outside.shape != empty.shape[:2] or outside.dtype != bool:
        raise ValueError(f"outside: expected bool {empty.shape[:2]}, got {outside.dtype} {outside.shape}")
    if outside.sum() < MIN_FIT_PIXELS:
        return empty.copy()
    fitted = np.empty(empty.shape, np.float64)
    for c in range(3):
        x = empty[..., c][outside].astype(np.float64)
        y = frame[..., c][outside].astype(np.float64)
        spread = x.var()
        gain = ((x - x.mean()) * (y - y.mean())).mean() / spread if spread > 1e-6 else 1.0
        fitted[..., c] = gain * empty[..., c] + (y.mean() - gain * x.mean())
    return np.clip(np.rint(fitted), 0, 255).astype(np.uint8)


def empty_scene(frames: list[np.ndarray], band: int = 32) -> np.ndarray:
    """Per-pixel median of ``frames`` (uint8; a half dropped, as the leak metric always did): the scene
    where no one stands in most of them. Taken ``band`` rows at a time, so that 200 frames need no
    float copy of the whole stack."""
    if not len(frames):
        raise ValueError("empty_scene needs at least one frame")
    height = frames[0].shape[0]
    return np.concatenate(
        [
            np.median(np.stack([f[top : top + band] for f in frames]), axis=0).astype(np.uint8)
            for top in range(0, height, band)
        ]
    )


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def scene_summary(lost: list[float], floor: list[float], fill: list[float] | None, unlit: list[float] | None) -> dict:
    """A clip's scene figures from the per-frame ones (NaN frames, with nothing to score, left out):
    scene lost (mean and worst frame, %), the encoder's floor (%), and the fill error with and
    without the lighting fit (levels; absent where the clip has no empty scene)."""
    scored = [(v, i) for i, v in enumerate(lost) if not math.isnan(v)]
    worst, frame = max(scored) if scored else (float("nan"), -1)
    row = {
        "scene lost %": 100 * _mean(lost),
        "scene worst %": 100 * worst,
        "scene worst frame": frame,
        "scene frames": len(scored),
        "floor %": 100 * _mean(floor),
    }
    if fill is not None and unlit is not None:
        row["fill error"] = _mean(fill)
        row["fill error unlit"] = _mean(unlit)
        row["fill frames"] = sum(not math.isnan(v) for v in fill)
    return row


def scene_text(row: dict) -> str:
    """One line of a row's scene figures, as a reader wants them."""
    if "scene lost %" not in row:
        return "no scene figures (skeletons drawn: --no-pose scores the scene)"
    text = (
        f"scene lost {row['scene lost %']:.1f}% (worst {row['scene worst %']:.1f}%, frame "
        f"{row['scene worst frame']}), floor {row['floor %']:.1f}%"
    )
    if "fill error" not in row:
        return text + "; fill error n/a (no empty scene)"
    if not row["fill frames"]:
        return text + "; fill error n/a (no reference person in the frames scored)"
    fill, unlit = row["fill error"], row["fill error unlit"]
    return text + f"; fill error {fill:.1f} levels ({unlit:.1f} without the lighting fit)"


def default_video() -> Path:
    folder = os.environ.get("ANONYMISE_TEST_DATA")
    return Path(folder) / "pedestrians.mp4" if folder else ROOT.parent / "shared" / "data" / "pedestrians.mp4"


def read(path: Path, limit: int | None) -> list[Frame]:
    with VideoReader(path, audio=False) as reader:
        frames = []
        for frame in reader:
            frames.append(frame)
            if limit and len(frames) >= limit:
                break
    return frames


def people(reference: Detector, images: list[np.ndarray]) -> list[Detections]:
    """Reference people per frame, one box each (tiles de-duplicated)."""
    found = []
    for image in images:
        (result,) = reference([image])
        p = result.people
        found.append(p[suppress(p)] if len(p) else p)
    return found


def cached_people(reference: Detector, video: Path, frames: list[Frame]) -> list[Detections]:
    """:func:`people` on the input frames, from the cache when this video, length and reference were seen."""
    stat = video.stat()
    key = hashlib.sha256(
        f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{len(frames)}|{REFERENCE!r}".encode()
    ).hexdigest()[:16]
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "anonymise"
        / "privacy_eval"
        / f"{video.stem}-{key}.npz"
    )
    if cache.is_file():
        data = np.load(cache)
        return [
            Detections(data[f"xyxy{i}"], data[f"conf{i}"], np.zeros(len(data[f"conf{i}"]), np.int64))
            for i in range(len(frames))
        ]
    truth = people(reference, [f.image for f in frames])
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}{i}": v for i, t in enumerate(truth) for k, v in (("xyxy", t.xyxy), ("conf", t.confidence))}
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    return truth


def matched(a: Detections, b: Detections | None) -> np.ndarray:
    """Boolean per box of ``a``: overlaps some box of ``b`` by IoU >= MATCH_IOU."""
    if b is None or not len(a) or not len(b):
        return np.zeros(len(a), bool)
    return (bbox_ioa(a.xyxy, b.xyxy, iou=True) >= MATCH_IOU).any(axis=1)


def longest_run(flags: list[bool]) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def anonymised(anon: Anonymiser, frames: list[Frame]):
    """The pipeline's results for ``frames`` as a file gets them: in two passes, over the scene of the
    whole clip (:mod:`anonymise.scene`), where the fill shows the scene."""
    copies = [Frame(f.image, f.index) for f in frames]
    if anon.config.fill not in scene.FILLS:
        return anon.anonymise_frames(copies)
    times = [f.time for f in frames if f.time is not None]
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 25.0
    return anon.anonymise_clip(copies, copies, fps=fps, frames=len(copies))


def evaluate(
    name: str,
    frames: list[Frame],
    truth: list[Detections],
    reference: Detector,
    utility: bool,
    keep_outputs: bool = False,
    **runtime,
) -> dict:
    config = Config(pose=False, **PRESETS[name], **runtime)
    anon = Anonymiser(config)
    list(anon.anonymise_frames(Frame(f.image, f.index) for f in frames[:2]))  # warm-up: Ultralytics sets up lazily
    start = time.perf_counter()
    outputs = [out for _, out in anonymised(anon, frames)]
    seconds = time.perf_counter() - start
    residual = people(reference, outputs)
    leaks = [matched(r, t) for r, t in zip(residual, truth)]
    per_frame = [bool(x.any()) for x in leaks]
    row = {
        "preset": name,
        "input people": sum(len(t) for t in truth),
        "residual": sum(int(x.sum()) for x in leaks),
        "frames with residual": sum(per_frame),
        "longest run": longest_run(per_frame),
        "fps": len(frames) / seconds,
    }
    row["residual %"] = 100 * row["residual"] / max(row["input people"], 1)
    if keep_outputs:
        row["outputs"] = outputs
    spans, start = [], None
    for i, flag in enumerate(per_frame + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append(f"{start}-{i - 1}" if i - 1 > start else str(start))
            start = None
    boxes = [r.xyxy[x].round().astype(int).tolist() for r, x in zip(residual, leaks) if x.any()][:3]
    print(f"  {name}: residual frames {', '.join(spans) or 'none'}; first boxes {boxes}")
    if utility:
        drawn = Anonymiser(config.replace(pose=True))
        skeletons = [r.poses for r in anonymised(drawn, frames)]
        kept = sum(int(matched(t, s).sum()) for t, s in zip(truth, skeletons))
        row["skeleton recall %"] = 100 * kept / max(row["input people"], 1)
        row["skeletons"] = skeletons
    return row


# -- the pixel suite -------------------------------------------------------------------------------------


def shared_data() -> Path:
    folder = os.environ.get("ANONYMISE_TEST_DATA")
    return Path(folder) if folder else ROOT.parent / "shared" / "data"


def suite_clips(names: list[str]) -> list[tuple[str, Path]]:
    """(kind, path) of every clip the suite scores: ``static``, ``closeup`` or ``people``."""
    data, clips = shared_data(), []
    for name in names:
        if name == "closeups":
            clips += [("closeup", p) for p in sorted((data / "closeups").glob("*.mkv"))]
        elif name == "one-by-one":
            clips.append(("static", data / "one-by-one-person-detection.mp4"))
        elif name == "pedestrians":
            clips.append(("people", data / "pedestrians.mp4"))
        else:
            clips += [("closeup", p) for p in sorted(data.glob(f"**/{name}*")) if p.is_file()]
    return clips


def pixel_reference(video: Path, frames: list[Frame]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Reference person boxes and their confidences per frame: the pose model at the frame's own size (cached
    like :func:`cached_people`)."""
    height, width = frames[0].image.shape[:2]
    config = Config(
        mode="bbox",
        imgsz=int(np.ceil(max(height, width) / 32) * 32),
        tiles="off",
        conf=0.25,
        pose=False,
        track=False,
        backend="torch",
    )
    stat = video.stat()
    key = hashlib.sha256(
        f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{len(frames)}|{config!r}".encode()
    ).hexdigest()[:16]
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "anonymise"
        / "privacy_eval"
        / f"{video.stem}-px2-{key}.npz"
    )
    if cache.is_file():
        data = np.load(cache)
        return [data[f"xyxy{i}"] for i in range(len(frames))], [data[f"conf{i}"] for i in range(len(frames))]
    detector = Detector(config)
    found = []
    for frame in frames:
        (result,) = detector([frame.image])
        p = result.people
        found.append(p[suppress(p)] if len(p) else p)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **{f"{k}{i}": v for i, p in enumerate(found) for k, v in (("xyxy", p.xyxy), ("conf", p.confidence))})
    tmp.replace(cache)
    return [p.xyxy for p in found], [p.confidence for p in found]


def reencoded(video: Path, frames: list[Frame]) -> list[np.ndarray]:
    """The input frames written as the pipeline writes them (H.264 through VideoWriter, the source's
    rate and timestamps) to a temporary file, and read back: the encoder's own loss, the floor under
    any written output. The file lives in a temporary folder removed on return."""
    with VideoReader(video, audio=False) as reader:
        info = reader.info
    height, width = frames[0].image.shape[:2]
    with tempfile.TemporaryDirectory(prefix="privacy_eval-") as folder:
        path = Path(folder) / f"{video.stem}.mp4"
        writer = VideoWriter(path, width, height, info.fps, frames[0].time_base)
        try:
            for frame in frames:
                writer.write(frame.image, frame.pts, frame.duration)
        except BaseException:
            writer.abort()
            raise
        writer.close()
        images = [f.image[:height, :width] for f in read(path, len(frames))]
    if len(images) != len(frames):
        raise SystemExit(f"error: the re-encoded {video.name} has {len(images)} frames, not {len(frames)}")
    return images


def sampled_empty_scene(video: Path, count: int = EMPTY_SAMPLES) -> np.ndarray:
    """:func:`empty_scene` of up to ``count`` frames spread over the whole clip (whatever ``--frames``
    scores): people who walk through are in few of them at any pixel."""
    with VideoReader(video, audio=False) as reader:
        step = max(1, math.ceil((reader.info.frames or count) / count))
        images = [frame.image for frame in reader if frame.index % step == 0]
    return empty_scene(images)


def scene_figures(
    video: Path, frames: list[Frame], outputs: list[np.ndarray], truth: list[np.ndarray], empty: np.ndarray | None
) -> dict:
    """A clip's scene row (:func:`scene_summary`) from the pipeline's ``outputs`` (skeletons off) and the
    reference boxes ``truth``; fill error only where there is an ``empty`` scene."""
    lost, fill, unlit = [], [], []
    for frame, out, boxes in zip(frames, outputs, truth):
        lost.append(scene_lost(frame.image, out, boxes))
        if empty is not None:
            lit = match_lighting(empty, frame.image, ~grown_region(boxes, empty.shape[:2]))
            fill.append(fill_error(out, lit, boxes))
            unlit.append(fill_error(out, empty, boxes))
    floor = [scene_lost(f.image, again, boxes) for f, again, boxes in zip(frames, reencoded(video, frames), truth)]
    return scene_summary(lost, floor, fill if empty is not None else None, unlit if empty is not None else None)


def closeup_people(boxes: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """A close-up's reference people: the most confident box, and any other at CLOSEUP_CONF or more.

    The shared close-ups hold one person; the reference also calls a blue panel at the frame's
    edge a person at 0.3-0.56, which would score the pipeline on a person who is not there.
    """
    if not len(boxes):
        return boxes
    keep = confidence >= CLOSEUP_CONF
    keep[int(np.argmax(confidence))] = True
    return boxes[keep]


def score_pixels(kind: str, video: Path, frames: list[Frame], pose: bool, save: Path | None, **runtime) -> dict:
    """One clip's pixel-truth row (see the module docstring)."""
    truth, confidence = pixel_reference(video, frames)
    if kind == "closeup":
        truth = [closeup_people(b, c) for b, c in zip(truth, confidence)]
    empty = None
    if kind == "static":
        empty = empty_scene([f.image for f in frames[:STATIC_EMPTY_FRAMES]])
    anon = Anonymiser(Config(pose=pose, **runtime))
    list(anon.anonymise_frames(Frame(f.image, f.index) for f in frames[:2]))  # warm-up
    leaks, totals, skeleton, seen, outputs = [], [], 0, 0, []
    saved: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    start = time.perf_counter()
    for result, source, boxes in zip(anonymised(anon, frames), frames, truth):
        out = result.image
        image = source.image
        if not pose:
            outputs.append(out)  # scored for the scene after the timed run
        if kind == "static":  # unlike the empty scene as lit now (an exposure change is not a person)
            where = person_pixels(image, match_lighting(empty, image, ~grown_region(boxes, empty.shape[:2])), boxes)
        else:
            where = core_pixels(boxes, image.shape[:2])
        leak = leaked(image, out, where)
        leaks.append(int(leak.sum()))
        totals.append(int(where.sum()))
        if len(boxes):
            seen += 1
            drawn = result.poses
            if (
                drawn is not None
                and len(drawn)
                and (bbox_ioa(np.asarray(boxes), drawn.xyxy, iou=True) >= MATCH_IOU).any()
            ):
                skeleton += 1
        if save is not None and (len(leaks) - 1) in (0, 30, 60, len(frames) // 2, len(frames) - 1):
            saved[len(leaks) - 1] = (image, out, leak)
        if save is not None:
            share = leaks[-1] / max(totals[-1], 1)
            worst = saved.get(-1)
            if worst is None or share > worst[3]:
                saved[-1] = (image, out, leak, share, len(leaks) - 1)
    seconds = time.perf_counter() - start
    row = {
        "clip": video.name,
        "kind": kind,
        "frames": len(frames),
        **leak_summary(leaks, totals),
        "fps": len(frames) / seconds,
    }
    if pose:
        row["skeleton frames %"] = 100 * skeleton / max(seen, 1)
    else:
        row |= scene_figures(video, frames, outputs, truth, empty)
    if save is not None:
        import cv2

        save.mkdir(parents=True, exist_ok=True)
        for index, item in saved.items():
            image, out, leak = item[:3]
            index = item[4] if index == -1 else index
            marked = out.copy()
            marked[leak] = (0, 0, 255)  # leaked pixels in red
            cv2.imwrite(str(save / f"{video.stem}-{index:04d}.png"), np.hstack([image, out, marked]))
    return row


def run_suite(args) -> None:
    runtime = dict(backend=args.backend, int8=args.int8, half=args.half, preset=args.preset)
    rows = []
    for kind, video in suite_clips(args.clips):
        if not video.is_file():
            raise SystemExit(f"error: no clip at {video} (set ANONYMISE_TEST_DATA)")
        frames = read(video, args.frames)
        print(
            f"clip: {video.name} ({kind}), {len(frames)} frames of "
            f"{frames[0].image.shape[1]}x{frames[0].image.shape[0]}",
            flush=True,
        )
        if kind == "people":
            reference = Detector(REFERENCE)
            truth = cached_people(reference, video, frames)
            r = evaluate("default", frames, truth, reference, utility=args.pose, keep_outputs=True, **runtime)
            row = {
                "clip": video.name,
                "kind": kind,
                "frames": len(frames),
                "residual people %": r["residual %"],
                "fps": r["fps"],
            }
            if args.pose:
                row["skeleton recall %"] = r["skeleton recall %"]
            # the residual run draws no skeletons (evaluate's first pass), so its outputs score the scene
            boxes = [t.xyxy for t in truth]
            row |= scene_figures(video, frames, r.pop("outputs"), boxes, sampled_empty_scene(video))
        else:
            row = score_pixels(kind, video, frames, args.pose, args.save_frames, **runtime)
        rows.append(row)
        print(
            "  " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True
        )
        print(f"  {scene_text(row)}", flush=True)
    header = [
        "clip",
        "kind",
        "frames",
        "leak %",
        "frames > 5%",
        "frames > 2%",
        "worst %",
        "worst frame",
        "residual people %",
        "skeleton frames %",
        "skeleton recall %",
        "scene lost %",
        "scene worst %",
        "floor %",
        "fill error",
        "fill error unlit",
        "fps",
    ]
    header = [h for h in header if any(h in r for r in rows)]
    print(
        f"suite ({'skeletons drawn' if args.pose else '--no-pose'}, --preset {args.preset}, --backend {args.backend}):"
    )
    print("  ".join(f"{h:>18}" for h in header))
    for r in rows:
        print("  ".join(f"{r[h]:>18.2f}" if isinstance(r.get(h), float) else f"{r.get(h, ''):>18}" for h in header))
    for r in rows:
        print(f"  {r['clip']}: {scene_text(r)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=default_video())
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--no-utility", action="store_true", help="skip the skeleton-recall runs")
    parser.add_argument(
        "--backend", default="auto", help="inference backend of the presets (the reference stays torch)"
    )
    parser.add_argument(
        "--int8",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="int8 models (default: as the CLI, on with --backend auto on a CPU)",
    )
    parser.add_argument(
        "--half", action=argparse.BooleanOptionalAction, default=None, help="reduced precision (bf16 with openvino)"
    )
    parser.add_argument(
        "--suite", action="store_true", help="pixel truth on every shared clip (see the module docstring)"
    )
    parser.add_argument(
        "--clips", nargs="+", default=["closeups", "one-by-one", "pedestrians"], help="--suite: which clips"
    )
    parser.add_argument(
        "--pose", action=argparse.BooleanOptionalAction, default=False, help="--suite: draw skeletons too"
    )
    parser.add_argument(
        "--save-frames", type=Path, default=None, help="--suite: write input|output|leaks (red) PNGs here"
    )
    parser.add_argument("--preset", default="balanced", help="--suite: the compute policy (thorough, balanced, fast)")
    args = parser.parse_args()
    if args.suite:
        print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
        run_suite(args)
        return
    if not args.video.is_file():
        raise SystemExit(f"error: no video at {args.video} (pass --video or set ANONYMISE_TEST_DATA)")
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    frames = read(args.video, args.frames)
    print(f"clip: {args.video.name}, {len(frames)} frames of {frames[0].image.shape[1]}x{frames[0].image.shape[0]}")
    reference = Detector(REFERENCE)
    print(f"reference: pose model, imgsz {REFERENCE.imgsz}, tiles {REFERENCE.tiles}, conf {REFERENCE.conf}")
    truth = cached_people(reference, args.video, frames)
    runtime = dict(backend=args.backend, int8=args.int8, half=args.half)
    rows = [evaluate(name, frames, truth, reference, utility=not args.no_utility, **runtime) for name in args.presets]
    plain = next((r["fps"] for r in rows if r["preset"] == "plain"), None)
    single = next((r.get("skeletons") for r in rows if r["preset"] == "plain"), None)
    header = [
        "preset",
        "input people",
        "residual",
        "residual %",
        "frames with residual",
        "longest run",
        "skeleton recall %",
        "plain's skeletons kept %",
        "fps",
        "fps / plain",
    ]
    print("  ".join(f"{h:>12}" for h in header))
    for r in rows:
        r["fps / plain"] = r["fps"] / plain if plain else float("nan")
        if single is not None and r.get("skeletons") is not None:
            # the skeletons one plain pass of the pose model draws on the input: does the preset keep them all?
            total = sum(len(s) for s in single)
            kept = sum(int(matched(s, ours).sum()) for s, ours in zip(single, r["skeletons"]))
            r["plain's skeletons kept %"] = 100 * kept / max(total, 1)
        cells = []
        for h in header:
            v = r.get(h, "")
            cells.append(f"{v:>12.2f}" if isinstance(v, float) else f"{v!s:>12}")
        print("  ".join(cells))
    for name in args.presets:
        print(f"  {name}: {PRESETS[name] or 'the CLI defaults'}")


if __name__ == "__main__":
    main()
