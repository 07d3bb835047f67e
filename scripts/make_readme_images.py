"""The small PNGs the README shows for each output mode (docs/images/), from pedestrians.mp4.

Runs the pipeline (bundled pose model, default settings) on the first 301 frames as a file run does
(in two passes, over the scene of the whole clip, where the mode shows the scene), once per mode
(the models' results are cached, so only the first run pays for them), and saves the same crop
of frame 300, where several people walk, for each.

``docs/images/modes.json`` records a digest of the code that makes them (the package, less the
studio and the CLI, and this script) and of each PNG; ``--check`` (and the test suite) fails when
either changed since: the pictures are stale, run the script again.

    python scripts/make_readme_images.py [--video PATH]
    python scripts/make_readme_images.py --check
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from anonymise import Anonymiser, Config
from anonymise.detect import Detector
from anonymise.io.video import Frame, VideoReader

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
RECORD = OUT / "modes.json"
#: the code that does not change what a mode's picture shows
NOT_DRAWING = ("anonymise/studio/", "anonymise/cli.py")
START, COUNT, SHOWN = 0, 301, 300  # the image is frame 300, with the history a real run has
CROP = (slice(40, 240), slice(120, 420))  # rows, columns: where the people are
WIDTH = 300  # pixels of each PNG

MODES: dict[str, dict] = {
    "original": {},
    "background": {"fill": "background"},
    "blackout": {"fill": "blackout"},
    "blur": {"fill": "blur"},
    "pixelate": {"fill": "pixelate"},
    "silhouette": {"fill": "silhouette"},
    "heatmap": {"fill": "heatmap"},
    "canvas-black": {"canvas": "black", "skeleton_colour": "track"},
    "canvas-white": {"canvas": "white"},
    "track-colours": {"skeleton_colour": "track"},
}


def default_video() -> Path:
    folder = os.environ.get("ANONYMISE_TEST_DATA")
    return Path(folder) / "pedestrians.mp4" if folder else ROOT.parent / "shared" / "data" / "pedestrians.mp4"


class CachedDetector:
    """The detector, remembering its answer per (image, size): every mode sees the same detections."""

    def __init__(self, detector: Detector):
        self.detector = detector
        self.batch, self.device = detector.batch, detector.device
        self._cache: dict = {}

    def __call__(self, frames, imgsz=None):
        keys = [(hashlib.blake2b(f.tobytes(), digest_size=16).digest(), f.shape, imgsz) for f in frames]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            for i, found in zip(missing, self.detector([frames[i] for i in missing], imgsz=imgsz)):
                self._cache[keys[i]] = found
        return [copy.deepcopy(self._cache[k]) for k in keys]


def save(name: str, image: np.ndarray) -> None:
    crop = image[CROP]
    scale = WIDTH / crop.shape[1]
    small = cv2.resize(crop, (WIDTH, round(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    path = OUT / f"{name}.png"
    cv2.imwrite(str(path), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def code_digest() -> str:
    """sha256 over the code that makes the pictures: the package's modules (less NOT_DRAWING) and this script."""
    digest = hashlib.sha256()
    files = [
        p
        for p in sorted((ROOT / "anonymise").rglob("*.py"))
        if not p.relative_to(ROOT).as_posix().startswith(NOT_DRAWING)
    ]
    for path in [*files, Path(__file__).resolve()]:
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def png_digests() -> dict[str, str]:
    return {
        name: hashlib.sha256((OUT / f"{name}.png").read_bytes()).hexdigest()
        for name in MODES
        if (OUT / f"{name}.png").is_file()
    }


def stale() -> str:
    """Why the pictures are stale, or ``""`` when they are current."""
    if not RECORD.is_file():
        return f"{RECORD.relative_to(ROOT)} is missing"
    record = json.loads(RECORD.read_text())
    if record.get("code") != code_digest():
        return "the code that makes them changed since they were made"
    if record.get("images") != png_digests() or set(record.get("images", {})) != set(MODES):
        return "a picture was changed, added or removed by hand"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=default_video())
    parser.add_argument("--check", action="store_true", help="exit 1 when the pictures are stale")
    args = parser.parse_args()
    if args.check:
        why = stale()
        if why:
            raise SystemExit(f"docs/images are stale: {why}; run python scripts/make_readme_images.py")
        print("docs/images are current")
        return
    if not args.video.is_file():
        raise SystemExit(f"error: no video at {args.video} (pass --video or set ANONYMISE_TEST_DATA)")
    with VideoReader(args.video, audio=False) as reader:
        fps = float(reader.info.fps)
        frames = [Frame(f.image, f.index - START) for f in reader if START <= f.index < START + COUNT]
    OUT.mkdir(parents=True, exist_ok=True)
    detector = CachedDetector(Detector(Config()))
    for name, settings in MODES.items():
        if name == "original":
            save(name, frames[SHOWN].image)
            continue
        anon = Anonymiser(Config(**settings), detector=detector)
        copies = [Frame(f.image, f.index) for f in frames]
        outputs = [out for _, out in anon.anonymise_clip(copies, copies, fps=fps, frames=len(frames))]
        save(name, outputs[SHOWN])
    RECORD.write_text(json.dumps({"code": code_digest(), "images": png_digests()}, indent=1) + "\n")
    print(f"{RECORD.relative_to(ROOT)} written")


if __name__ == "__main__":
    sys.exit(main())
