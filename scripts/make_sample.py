"""Make ``data/sample.mp4``: the README's first-run sample, from a photo that Ultralytics ships.

``ultralytics/assets/zidane.jpg`` (two people, a real photo) becomes a 2-second, 10 fps,
640x360 H.264 clip from a still camera with a gentle brightness flicker, and a 440 Hz AAC
tone so that the audio path is exercised too. Run: ``python scripts/make_sample.py``.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def asset(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")  # locate the package's data without importing it
    if spec is None or spec.origin is None:
        raise SystemExit("ultralytics is not installed (pip install -e .)")
    return Path(spec.origin).parent / "assets" / name


def make(out: Path, seconds: int = 2, fps: int = 10, size: tuple[int, int] = (640, 360)) -> Path:
    photo = cv2.resize(cv2.imread(str(asset("zidane.jpg"))), size, interpolation=cv2.INTER_AREA)
    rate = 44100
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps))
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"crf": "26", "preset": "slow"}
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i in range(seconds * fps):
            gain = 1.0 + 0.03 * np.sin(i / 3)  # a little life, as a real camera has
            frame = cv2.convertScaleAbs(photo, alpha=gain)
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(video.encode())
        t = np.arange(seconds * rate) / rate
        tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        step = audio.codec_context.frame_size or 1024
        for start in range(0, len(tone), step):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = rate, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "sample.mp4")
    args = parser.parse_args()
    path = make(args.out)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
