"""Audio privacy check (issue 31): speech spoken at known times over a clip's own sound, detected and muted.

Usage: python scripts/audio_eval.py [--clip ../shared/data/pedestrians.mp4] [--seconds 12] [--noise-db -30 -20]

Each scenario is a ``--seconds`` cut of ``--clip``'s first audio track (from ``--skip``), as it is and
then with pink noise at each ``--noise-db`` level (dBFS RMS) added as a stand-in for recorded ambient
sound, with two sentences spoken by ``espeak-ng`` at 2 s and 7 s: "My name is Anna Schmidt and I live
at twelve Baker Street" and a phone number. The mix is written as float WAV, run through
:func:`anonymise.speech.redact_file` (``mute``) and read back. Printed per scenario:

- the spans found;
- speech attenuation inside each sentence's spoken time (dB; ``inf`` where the output is digital silence);
- ambient change outside the spans (dB, the output's energy against the input's) and whether those
  samples are bit-identical;
- the share of speech time muted, at 10 ms resolution (a 10 ms step counts as speech where the clean
  speech's energy is within 40 dB of its loudest step, and as muted where every sample of it is silent);
- the detection's own time (decoding included, the model's load printed apart) against the clip's length.

``--pipeline``: the mix goes in as the AAC track of the clip's own video (the same cut) and the whole
pipeline runs on it at its defaults (``--audio mute-speech``), then again with ``--audio keep`` in the
same process: the figures above come from the output file's sound (AAC: "bit-identical" cannot hold,
the ambient change can), and the cost is the whole process's time against ``keep``'s.

    python scripts/audio_eval.py --pipeline --noise-db -30

The shared ``pedestrians.mp4``'s soundtrack is digital silence, so the default runs three scenarios: the
clip's own sound, and with pink noise at -30 dBFS (speech ~9 dB above it) and at -20 dBFS (about level).
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anonymise import speech  # noqa: E402

SENTENCES = (
    (2.0, "My name is Anna Schmidt and I live at twelve Baker Street"),
    (7.0, "My phone number is 0 1 7 6, 5 5 5, 8 2 3 4"),
)
STEP = 0.01  # 10 ms resolution


def decode(path: Path, rate: int, layout: str, skip: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """First audio track of ``path`` as float32 (channels, samples) at ``rate``, from ``skip`` for ``seconds``."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks = []
    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise SystemExit(f"{path} has no audio track")
        for frame in c.decode(c.streams.audio[0]):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
    x = np.concatenate(chunks, axis=1)
    start = round(skip * rate)
    end = None if seconds is None else start + round(seconds * rate)
    return np.ascontiguousarray(x[:, start:end], np.float32)


def write_wav(path: Path, x: np.ndarray, rate: int, layout: str) -> None:
    """(channels, samples) float32 as a float WAV."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_f32le", rate=rate)
        stream.layout = layout
        stream.format = "flt"
        for i in range(0, x.shape[1], 1024):
            part = np.ascontiguousarray(x[:, i : i + 1024].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(part, format="flt", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def pink_noise(n: int, channels: int, db: float, seed: int = 0) -> np.ndarray:
    """Pink (1/f) noise at ``db`` dBFS RMS: a steady stand-in for street or room sound."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=1)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[1]), 1))
    x = np.fft.irfft(spectrum, n, axis=1)
    return (x / np.sqrt((x**2).mean()) * 10 ** (db / 20)).astype(np.float32)


def spoken(text: str, rate: int, tmp: Path) -> np.ndarray:
    wav = tmp / "say.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    return decode(wav, rate, "mono")[0]


def steps_energy(x: np.ndarray, rate: int) -> np.ndarray:
    """Energy of each 10 ms step of (channels, samples)."""
    hop = round(STEP * rate)
    n = x.shape[-1] // hop * hop
    return (x[..., :n].reshape(*x.shape[:-1], -1, hop) ** 2).sum(axis=-1).reshape(-1, n // hop).sum(axis=0)


def span_mask(spans: list[speech.Span], n: int, rate: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for s in spans:
        mask[max(0, math.ceil(s.start * rate)) : max(0, math.ceil(s.end * rate))] = True
    return mask


def db(a: float, b: float) -> float:
    """10 log10(a / b), inf where b is 0."""
    if b <= 0:
        return math.inf if a > 0 else 0.0
    if a <= 0:
        return -math.inf
    return 10 * math.log10(a / b)


def scenario(
    name: str, ambient: np.ndarray, voice: list[np.ndarray], rate: int, layout: str, tmp: Path, video=None
) -> None:
    n = ambient.shape[1]
    clean = np.zeros(n, np.float32)
    for (at, _), v in zip(SENTENCES, voice):
        i = round(at * rate)
        clean[i : i + len(v)] += v[: n - i]
    mix = ambient + clean[None]
    src, dst = tmp / "mix.wav", tmp / "out.wav"
    write_wav(src, mix, rate, layout)

    t0 = time.perf_counter()
    detector = speech.SpeechDetector()
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    detected = speech.speech_spans(src, detector=detector)
    took = time.perf_counter() - t0
    if video is None:
        spans = speech.redact_file(src, dst, "mute")  # detection again, streaming, as a writer would run it
        assert spans == detected, (spans, detected)
        out = decode(dst, rate, layout)[:, :n]
    else:
        spans, out, costs = through_pipeline(video, src, tmp)
        out = np.pad(out, ((0, 0), (0, max(0, n - out.shape[1]))))[:, :n]

    muted = span_mask(spans, n, rate)
    energy = steps_energy(clean, rate)
    talking = energy > energy.max() * 1e-4
    hop = round(STEP * rate)
    silent_steps = np.all(out[:, : len(talking) * hop].reshape(out.shape[0], -1, hop) == 0, axis=(0, 2))
    share = silent_steps[talking].mean()

    print(f"\n{name}: {n / rate:.1f} s at {rate} Hz {layout}")
    print("  spans: " + ", ".join(f"{s.start:.2f}-{s.end:.2f} s" for s in spans))
    for (at, text), v in zip(SENTENCES, voice):
        i0, i1 = round(at * rate), min(n, round(at * rate) + len(v))
        steps = talking[i0 // hop : i1 // hop]
        inside = np.zeros(n, bool)
        inside[(np.flatnonzero(steps) + i0 // hop)[:, None] * hop + np.arange(hop)] = True
        att = db(float((clean[inside] ** 2).sum()), float((out[:, inside] ** 2).sum(axis=0).sum()))
        print(f"  speech attenuation at {at:.0f} s ({text[:24]}...): {att:.1f} dB")
    kept = ~muted
    change = db(float((out[:, kept] ** 2).sum()), float((mix[:, kept] ** 2).sum()))
    same = bool(np.array_equal(out[:, kept], mix[:, kept]))
    print(
        f"  ambient outside the spans: {change:+.2f} dB, bit-identical: {same} "
        f"({kept.mean():.0%} of the clip kept, input {db(float((mix[:, kept] ** 2).mean()), 1.0):.1f} dBFS)"
    )
    print(f"  speech time muted (10 ms): {share:.2%} of {talking.sum() * STEP:.2f} s")
    print(f"  detection: {took:.2f} s for {n / rate:.1f} s of audio ({took / (n / rate):.1%}; model load {load:.2f} s)")
    if video is not None:
        muted_s, kept_s = costs
        print(
            f"  whole process: {muted_s:.1f} s with --audio mute-speech, {kept_s:.1f} s with keep "
            f"({100 * (muted_s / kept_s - 1):+.1f}%)"
        )


def clip_with(video: tuple[list[np.ndarray], float], wav: Path, dst: Path) -> Path:
    """The frames of ``video`` (frames, fps) with ``wav`` as their AAC track, into ``dst``."""
    frames, fps = video
    with av.open(str(dst), "w") as out, av.open(str(wav)) as sound:
        v = out.add_stream("libx264", rate=round(fps))
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        a = out.add_stream("aac", rate=sound.streams.audio[0].rate)
        a.layout = {1: "mono"}.get(sound.streams.audio[0].layout.nb_channels, "stereo")  # a WAV's is unnamed
        for image in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(v.encode())
        for frame in sound.decode(audio=0):
            frame.pts = None
            out.mux(a.encode(frame))
        out.mux(a.encode())
    return dst


def through_pipeline(video, wav: Path, tmp: Path) -> tuple[list, np.ndarray, tuple[float, float]]:
    """(spans, the output's sound, (seconds muted, seconds kept)): the clip anonymised at the defaults,
    then with ``--audio keep`` (the cost), both in this process."""
    from anonymise import Anonymiser, Config

    src = clip_with(video, wav, tmp / "clip.mp4")
    seconds = {}
    for mode in ("keep", "mute-speech", "keep", "mute-speech"):  # the first of each warms up
        t0 = time.perf_counter()
        result = Anonymiser(Config(audio=mode)).process_video(src, tmp / f"out-{mode}.mp4")
        seconds[mode] = time.perf_counter() - t0
        if mode == "mute-speech":
            spans = list(result.speech)
    with av.open(str(src)) as c:
        rate, layout = c.streams.audio[0].rate, c.streams.audio[0].layout.name
    return spans, decode(tmp / "out-mute-speech.mp4", rate, layout), (seconds["mute-speech"], seconds["keep"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=ROOT.parent / "shared" / "data" / "pedestrians.mp4")
    parser.add_argument("--skip", type=float, default=0.0, help="seconds into the clip where the cut starts")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the cut")
    parser.add_argument(
        "--noise-db", type=float, nargs="*", default=[-30.0, -20.0], help="pink noise levels, one scenario each"
    )
    parser.add_argument("--pipeline", action="store_true", help="through the whole pipeline (see above)")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed (apt-get install espeak-ng)")
    with av.open(str(args.clip)) as c:
        if not c.streams.audio:
            raise SystemExit(f"{args.clip} has no audio track")
        rate = c.streams.audio[0].rate
        layout = {1: "mono", 2: "stereo"}.get(c.streams.audio[0].layout.nb_channels, "stereo")
    ambient = decode(args.clip, rate, layout, args.skip, args.seconds)
    own = 20 * math.log10(max(float(np.sqrt((ambient**2).mean())), 1e-12))
    print(f"speech model: {speech.model_path().name} sha256 {speech.model_sha256()}")
    video = None
    if args.pipeline:
        with av.open(str(args.clip)) as c:
            fps = float(c.streams.video[0].average_rate or 25)
            frames = [
                f.to_ndarray(format="bgr24")
                for f in c.decode(video=0)
                if args.skip <= f.time < args.skip + args.seconds
            ]
        video = (frames, fps)
    with tempfile.TemporaryDirectory() as tmp:
        voice = [spoken(text, rate, Path(tmp)) for _, text in SENTENCES]
        scenario(f"{args.clip.name}'s own sound ({own:.0f} dBFS)", ambient, voice, rate, layout, Path(tmp), video)
        for level in args.noise_db:
            noisy = ambient + pink_noise(ambient.shape[1], ambient.shape[0], level)
            scenario(f"its own sound + pink noise at {level:.0f} dBFS", noisy, voice, rate, layout, Path(tmp), video)


if __name__ == "__main__":
    main()
