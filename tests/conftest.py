"""Fixtures: short real clips cut from the shared video, synthetic clips and a synthetic detector."""

from __future__ import annotations

import os
import signal
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from anonymise.detections import Detections

ROOT = Path(__file__).resolve().parent.parent
# Tests must never reach the network: Ultralytics' DNS probe and analytics off before it is imported.
os.environ.setdefault("YOLO_OFFLINE", "1")


def shared_data() -> Path | None:
    candidates = [os.environ.get("ANONYMISE_TEST_DATA"), ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "pedestrians.mp4").is_file():
            return Path(c)
    return None


PEDESTRIANS_REASON = "shared data ../shared/data/pedestrians.mp4 not found (set ANONYMISE_TEST_DATA to its folder)"


@pytest.fixture
def sigterm_stops():
    """SIGTERM handled as the CLI handles it (raising :class:`~anonymise.errors.Stopped`); call
    :func:`sigterm_now` where one arrives."""
    from anonymise.cli import _stop_on

    previous = signal.signal(signal.SIGTERM, _stop_on)
    yield
    signal.signal(signal.SIGTERM, previous)


def sigterm_now() -> None:
    """A SIGTERM arriving here, as Python handles one: its handler runs at this point.

    Not ``signal.raise_signal``: once the OpenVINO CPU plugin's models are gone (earlier tests),
    the main thread's alternate signal stack it set is freed, and a real signal crashes the test
    process. The CLI's own tests send real signals to a child process.
    """
    signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)


@pytest.fixture(scope="session")
def pedestrians() -> Path:
    data = shared_data()
    if data is None:
        pytest.skip(PEDESTRIANS_REASON)
    return data / "pedestrians.mp4"


def cut_clip(src: Path, dst: Path, frames: int, skip: int = 0) -> Path:
    """Frames ``skip`` .. ``skip + frames`` of ``src`` re-encoded (timestamps kept, shifted to 0) and the audio
    of that span copied."""
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        picked = []
        for i, f in enumerate(inp.decode(vin)):
            if i >= skip + frames + 1:
                break
            if i >= skip:
                picked.append((f.pts, f.to_ndarray(format="bgr24")))
        t0 = picked[0][0] * vin.time_base
        t1 = picked[-1][0] * vin.time_base if len(picked) > frames else None
        picked = picked[:frames]
        audio = []
        if ain is not None:
            inp.seek(0)
            for p in inp.demux(ain):
                if p.dts is None:
                    continue
                t = p.pts * p.time_base
                if t >= t0 and (t1 is None or t < t1):
                    audio.append(p)
        with av.open(str(dst), "w") as out:
            v = out.add_stream("libx264", rate=vin.average_rate)
            v.width, v.height, v.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
            v.time_base = v.codec_context.time_base = vin.time_base
            a = out.add_stream_from_template(ain) if audio else None
            shift = round(t0 / vin.time_base)
            for pts, image in picked:
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts, frame.time_base = pts - shift, vin.time_base
                out.mux(v.encode(frame))
            out.mux(v.encode())
            for p in audio:
                ashift = round(t0 / ain.time_base)
                p.pts -= ashift
                p.dts -= ashift
                p.stream = a
                out.mux(p)
    return dst


@pytest.fixture(scope="session")
def clip(pedestrians, tmp_path_factory) -> Path:
    """12 real frames (1.2 s) with their AAC audio, cut from frame 250 where several people walk."""
    return cut_clip(pedestrians, tmp_path_factory.mktemp("clips") / "clip.mp4", 12, skip=250)


# -- synthetic scenes ------------------------------------------------------------------------

MAGENTA = np.array([255, 0, 255], np.uint8)  # BGR of the synthetic "person"


def scene(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """A textured background with no magenta in it."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 200, (height, width, 3), dtype=np.uint8)
    image[..., 1] = np.maximum(image[..., 1], 60)  # green channel always high: never magenta
    return cv2.GaussianBlur(image, (5, 5), 0)


def person_box(
    index: int, width: int = 160, size: tuple[int, int] = (20, 40), speed: int = 4
) -> tuple[int, int, int, int]:
    """Where the synthetic person is in frame ``index``: walking left to right."""
    w, h = size
    x = 10 + speed * index
    return x, 40, x + w, 40 + h


def synthetic_frames(n: int, height: int = 120, width: int = 160, speed: int = 4, seed: int = 0) -> list[np.ndarray]:
    background = scene(height, width, seed)
    frames = []
    for i in range(n):
        frame = background.copy()
        x1, y1, x2, y2 = person_box(i, width, speed=speed)
        frame[y1:y2, x1:x2] = MAGENTA
        frames.append(frame)
    return frames


def is_person_colour(image: np.ndarray, tolerance: int = 40) -> np.ndarray:
    return np.all(np.abs(image.astype(int) - MAGENTA.astype(int)) <= tolerance, axis=-1)


class ColourDetector:
    """Finds the synthetic magenta person: a real detector for synthetic frames (boxes and masks)."""

    def __init__(
        self,
        with_masks: bool = False,
        keypoints: bool = False,
        fail_on: set[int] | None = None,
        blind_on: set[int] | None = None,
        blind_full_frame: bool | set[int] = False,
    ):
        """``fail_on``/``blind_on``: 1-based calls that raise / see nobody; ``blind_full_frame``: sees only on
        crops (``True``), or not in these 0-based frames' full-frame calls (a set)."""
        self.with_masks = with_masks
        self.keypoints = keypoints
        self.fail_on = fail_on or set()
        self.blind_on = blind_on or set()
        self.blind_full_frame = blind_full_frame
        self.calls = 0
        self.frames_seen = 0
        self.batch = 1
        self.device = "cpu"

    def __call__(self, frames, imgsz=None):
        from anonymise.detect import FrameDetections

        out = []
        for frame in frames:
            self.calls += 1
            if self.calls in self.fail_on:
                raise RuntimeError("synthetic detector failure")
            hit = is_person_colour(frame, 10)
            full_frame = imgsz is None
            if full_frame:
                self.frames_seen += 1
            blind = self.blind_full_frame is True or (
                isinstance(self.blind_full_frame, set) and self.frames_seen - 1 in self.blind_full_frame
            )
            if self.calls in self.blind_on or (full_frame and blind):
                hit[:] = False
            if not hit.any():
                people = Detections.empty(frame.shape[:2] if self.with_masks else None)
                out.append(FrameDetections(people, Detections.empty()))
                continue
            ys, xs = np.nonzero(hit)
            box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
            mask = hit[None] if self.with_masks else None
            kp = None
            if self.keypoints:
                kp = np.zeros((1, 17, 3), np.float32)
                kp[0, :, 0] = (box[0, 0] + box[0, 2]) / 2
                kp[0, :, 1] = np.linspace(box[0, 1], box[0, 3], 17)
                kp[0, :, 2] = 0.9
            people = Detections(box, [0.9], [0], mask=mask, keypoints=kp)
            out.append(FrameDetections(people, people if self.keypoints else Detections.empty()))
        return out


class Terminated(ColourDetector):
    """The colour detector, raising what the CLI's SIGTERM handler raises on its ``at``-th call."""

    def __init__(self, at: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.at = at

    def __call__(self, frames, imgsz=None):
        from anonymise.errors import Stopped

        if self.calls >= self.at:
            raise Stopped(15)
        return super().__call__(frames, imgsz)


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: Fraction | int = 10,
    audio: str | None = "aac",
    codec: str = "libx264",
    time_base: Fraction | None = None,
    pts: list[int] | None = None,
) -> Path:
    """Encode frames (and a 440 Hz tone as ``audio`` codec: aac, pcm_s16le, ...) into ``path``."""
    fps = Fraction(fps)
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        if time_base is not None:
            v.time_base = time_base
            v.codec_context.time_base = time_base
        a = None
        if audio:
            a = out.add_stream(audio, rate=44100)
            a.layout = "mono"
        for i, image in enumerate(frames):
            f = av.VideoFrame.from_ndarray(image, format="bgr24")
            if pts is not None:
                f.pts, f.time_base = pts[i], time_base
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            seconds = len(frames) / fps
            n = int(seconds * 44100)
            t = np.arange(n) / 44100
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fmt = a.codec_context.format.name
            step = a.codec_context.frame_size or 1024
            for start in range(0, n, step):
                chunk = tone[start : start + step]
                if fmt.startswith("s16"):
                    data = (chunk * 32767).astype(np.int16)[None]
                else:
                    data = chunk[None]
                frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
                frame.sample_rate = 44100
                frame.pts = start
                for p in a.encode(frame):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path


def write_zero_frame_video(path: Path) -> Path:
    """A Matroska file with a video stream that has no frames (and a little audio, so it is a valid file)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=44100)
        a.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 44100, 0
        c.mux(a.encode(f))
        c.mux(a.encode())
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def stream_summary(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return {
            "frames": frames,
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "duration": float(v.duration * v.time_base) if v.duration else None,
            "fps": v.average_rate,
            "audio": [s.codec_context.name for s in c.streams.audio],
            "size": (v.codec_context.width, v.codec_context.height),
        }


# -- speech -----------------------------------------------------------------------------------

ESPEAK_REASON = "espeak-ng is not installed (.ci/run installs Debian's espeak-ng): no synthetic speech"


@pytest.fixture(scope="session")
def spoken(tmp_path_factory) -> np.ndarray:
    """'My name is Anna Schmidt' from espeak-ng, mono float32 at 44.1 kHz (skipped, saying why, without it)."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip(ESPEAK_REASON)
    wav = tmp_path_factory.mktemp("speech") / "say.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "My name is Anna Schmidt"], check=True, capture_output=True)
    with av.open(str(wav)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=44100)
        chunks = [r.to_ndarray().reshape(-1) for f in c.decode(audio=0) for r in resampler.resample(f)]
    return np.concatenate(chunks).astype(np.float32)
