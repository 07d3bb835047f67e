"""Make ``data/sample.mp4``: the README's first-run sample, a short cut of real footage.

Frames 45-94 (5 s at 10 fps, 768x432) of ``one-by-one-person-detection.mp4`` from Intel's
sample-videos (Intel Corporation, sample-videos, CC BY 4.0; see ``data/README.md``): a still
camera on an empty room that a woman walks into and crosses to a table. The room is seen empty
first, so the fill shows the real scene behind her: what the tool does well. A quiet 440 Hz AAC
tone is added (the source has no audio) so that the audio path is exercised too.

    python scripts/make_sample.py [--source ../shared/data/one-by-one-person-detection.mp4]
"""

from __future__ import annotations

import argparse
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIRST, COUNT = 45, 50


def default_source() -> Path:
    folder = os.environ.get("ANONYMISE_TEST_DATA")
    data = Path(folder) if folder else ROOT.parent / "shared" / "data"
    return data / "one-by-one-person-detection.mp4"


def make(source: Path, out: Path, first: int = FIRST, count: int = COUNT) -> Path:
    with av.open(str(source)) as inp:
        stream = inp.streams.video[0]
        fps = stream.average_rate or Fraction(10)
        frames = []
        for i, frame in enumerate(inp.decode(stream)):
            if i >= first + count:
                break
            if i >= first:
                frames.append(frame.to_ndarray(format="bgr24"))
    if len(frames) < count:
        raise SystemExit(f"{source} has fewer than {first + count} frames")
    rate = 44100
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    with av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "28", "preset": "slow"}
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(video.encode())
        seconds = float(count / fps)
        t = np.arange(int(seconds * rate)) / rate
        tone = (0.05 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        step = audio.codec_context.frame_size or 1024
        for start in range(0, len(tone), step):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = rate, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    tmp.replace(out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=default_source())
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "sample.mp4")
    args = parser.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"error: no source clip at {args.source} (pass --source or set ANONYMISE_TEST_DATA)")
    path = make(args.source, args.out)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
