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
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from anonymise import Anonymiser, Config
from anonymise.detect import Detector, suppress
from anonymise.types import Detections
from anonymise.video import Frame, VideoReader
from ultralytics.utils.metrics import bbox_ioa  # isort: skip - after anonymise.detect set the offline switches

ROOT = Path(__file__).resolve().parent.parent
MATCH_IOU = 0.3

#: settings compared (Config overrides); "default" is what the CLI does with no flags
PRESETS: dict[str, dict] = {
    "default": {},
    "fast": {"min_person": 48, "second_look": False},  # 640 px inference (480x360), no second look
    "no-guard": {"fail_closed": False},  # tracking, hold and look-ahead only
    "plain": {"track": False, "fail_closed": False, "lookahead": 0},  # the single-pass pipeline
}
REFERENCE = Config(mode="bbox", imgsz=1280, tiles="2", conf=0.2, pose=False, track=False)


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
    key = hashlib.sha256(f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{len(frames)}|{REFERENCE!r}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "anonymise" / "privacy_eval" / f"{video.stem}-{key}.npz"
    if cache.is_file():
        data = np.load(cache)
        return [Detections(data[f"xyxy{i}"], data[f"conf{i}"], np.zeros(len(data[f"conf{i}"]), np.int64)) for i in range(len(frames))]
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


def evaluate(name: str, frames: list[Frame], truth: list[Detections], reference: Detector, utility: bool, **runtime) -> dict:
    config = Config(pose=False, **PRESETS[name], **runtime)
    anon = Anonymiser(config)
    list(anon.anonymise_frames(Frame(f.image, f.index) for f in frames[:2]))  # warm-up: Ultralytics sets up lazily
    start = time.perf_counter()
    outputs = [out for _, out in anon.anonymise_frames(Frame(f.image, f.index) for f in frames)]
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
        skeletons = [f.poses for f, _ in drawn.anonymise_frames(Frame(f.image, f.index) for f in frames)]
        kept = sum(int(matched(t, s).sum()) for t, s in zip(truth, skeletons))
        row["skeleton recall %"] = 100 * kept / max(row["input people"], 1)
        row["skeletons"] = skeletons
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=default_video())
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--no-utility", action="store_true", help="skip the skeleton-recall runs")
    parser.add_argument("--backend", default="torch", help="inference backend of the presets (the reference stays torch)")
    parser.add_argument("--int8", action="store_true", help="int8 export (openvino, tensorrt)")
    parser.add_argument("--half", action=argparse.BooleanOptionalAction, default=None, help="reduced precision (bf16 with openvino)")
    args = parser.parse_args()
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
    header = ["preset", "input people", "residual", "residual %", "frames with residual", "longest run", "skeleton recall %",
              "plain's skeletons kept %", "fps", "fps / plain"]  # fmt: skip
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
