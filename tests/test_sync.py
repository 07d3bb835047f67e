"""Audio stays in sync in every container, in and out: a flash (a white frame) and a beep (a tone) at the
same instant in the input are within one frame of each other in the output, as in the input."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import ColourDetector

from anonymise import Anonymiser, Config, speech

FPS = 10
FRAMES = 20
FLASH = 10  # the flash frame: t = 1.0 s
RATE = 44100
#: container -> (video codec, audio codec) of the input clip; AVI with B-frames (x264) and intra-only MJPEG
INPUTS = {
    "mp4": ("libx264", "aac"),
    "mkv": ("libx264", "aac"),
    "mov": ("libx264", "pcm_s16le"),
    "avi": ("libx264", "pcm_s16le"),
    "mjpeg.avi": ("mjpeg", "pcm_s16le"),
}


def flash_and_beep(path, vcodec: str, acodec: str):
    """A grey clip with one white frame at 1.0 s and a 1 kHz tone from 1.0 s to 1.1 s."""
    with av.open(str(path), "w") as out:
        v = out.add_stream(vcodec, rate=FPS)
        v.width, v.height = 64, 48
        v.pix_fmt = "yuvj420p" if vcodec == "mjpeg" else "yuv420p"
        a = out.add_stream(acodec, rate=RATE)
        a.layout = "stereo"
        for i in range(FRAMES):
            image = np.full((48, 64, 3), 255 if i == FLASH else 60, np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(v.encode())
        fmt = a.codec_context.format
        step = a.codec_context.frame_size or 1024
        total = RATE * FRAMES // FPS
        t = np.arange(total) / RATE
        tone = np.where((t >= FLASH / FPS) & (t < FLASH / FPS + 0.1), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        for start in range(0, total, step):
            chunk = np.repeat(tone[start : start + step][None], 2, axis=0)
            if fmt.name.startswith("s16"):
                data = (chunk * 32767).astype(np.int16)
                data = data.T.reshape(1, -1) if not fmt.is_planar else data
            else:
                data = chunk.astype(np.float32)
                data = data.T.reshape(1, -1) if not fmt.is_planar else data
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt.name, layout="stereo")
            frame.sample_rate, frame.pts = RATE, start
            out.mux(a.encode(frame))
        out.mux(a.encode())
    return path


def flash_to_beep(path) -> tuple[float, float, float]:
    """(flash time, beep time, video duration) in seconds, from presentation timestamps."""
    with av.open(str(path)) as c:
        flash, last, first_video = None, 0.0, None
        for f in c.decode(video=0):
            t = float(f.pts * f.time_base)
            first_video = t if first_video is None else min(first_video, t)
            last = max(last, t)
            if flash is None and f.to_ndarray(format="gray").mean() > 200:
                flash = t
    with av.open(str(path)) as c:
        beep = None
        for f in c.decode(audio=0):
            samples = f.to_ndarray().astype(np.float64)
            if samples.dtype.kind == "i" or np.abs(samples).max() > 2:
                samples = samples / 32768
            loud = np.flatnonzero(np.abs(samples).max(axis=0) > 0.25)
            if len(loud):
                channels = 1 if f.format.is_planar else len(f.layout.channels)
                beep = float(f.pts * f.time_base) + loud[0] // channels / f.sample_rate
                break
    assert flash is not None and beep is not None, f"{path.name}: no flash or no beep"
    return flash, beep, last - first_video + 1 / FPS


class NoSpeech:
    """Stand-in for Silero that hears no speech: the beep (a tone burst it may take for speech) stays."""

    def probability(self, window) -> float:
        return 0.0

    def reset(self) -> None:
        pass


@pytest.mark.parametrize("audio", ["keep", "mute-speech"])
@pytest.mark.parametrize("out_ext", ["mp4", "mkv", "mov", "avi"])
@pytest.mark.parametrize("in_name", list(INPUTS))
def test_flash_and_beep_stay_in_sync(tmp_path, in_name, out_ext, audio, monkeypatch):
    """``keep`` copies the audio's packets (re-encoded where the container cannot carry them);
    ``mute-speech`` (the default) decodes, redacts and encodes it: both stay in time."""
    monkeypatch.setattr(speech, "SileroVAD", NoSpeech)
    vcodec, acodec = INPUTS[in_name]
    src = flash_and_beep(tmp_path / f"in.{in_name}", vcodec, acodec)
    flash_in, beep_in, length_in = flash_to_beep(src)
    dst = tmp_path / f"out.{out_ext}"
    Anonymiser(Config(pose=False, audio=audio), detector=ColourDetector()).process_video(src, dst)
    flash_out, beep_out, length_out = flash_to_beep(dst)
    offset_in, offset_out = beep_in - flash_in, beep_out - flash_out
    assert abs(offset_out - offset_in) <= 1 / FPS + 1e-3, (
        f"{in_name} -> {out_ext}: flash-to-beep {offset_out * 1000:+.0f} ms, input {offset_in * 1000:+.0f} ms"
    )
    assert abs(length_out - length_in) <= 1 / FPS + 1e-3, (
        f"{in_name} -> {out_ext}: video {length_out:.2f} s, input {length_in:.2f} s"
    )
