"""The small PNGs the README shows for each output mode (docs/images/), from pedestrians.mp4.

Runs the pipeline (bundled pose model, default settings) on the first 301 frames, once per mode
(the models' results are cached, so only the first run pays for them), and saves the same crop
of frame 300, where several people walk, for each.

    python scripts/make_readme_images.py [--video PATH]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from anonymise import Anonymiser, Config
from anonymise.detect import Detector
from anonymise.io.video import Frame, VideoReader

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=default_video())
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"error: no video at {args.video} (pass --video or set ANONYMISE_TEST_DATA)")
    with VideoReader(args.video, audio=False) as reader:
        frames = [Frame(f.image, f.index - START) for f in reader if START <= f.index < START + COUNT]
    OUT.mkdir(parents=True, exist_ok=True)
    detector = CachedDetector(Detector(Config()))
    for name, settings in MODES.items():
        if name == "original":
            save(name, frames[SHOWN].image)
            continue
        anon = Anonymiser(Config(**settings), detector=detector)
        stream = anon.stream(lookahead=30)
        outputs = [out for _, out in anon.anonymise_frames((Frame(f.image, f.index) for f in frames), stream)]
        save(name, outputs[SHOWN])


if __name__ == "__main__":
    main()
