"""Voices (issue 31): speech spans, streaming detection, mute and beep, manual spans, files without audio.

The shared ``pedestrians.mp4``'s soundtrack is digital silence, so the ambient sound here is pink noise.
Speech comes from ``espeak-ng`` (skipped, saying why, where it is absent); the span logic is checked
everywhere with tone bursts and a stand-in model.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from anonymise import speech
from anonymise.speech import Span, SpeechDetector, SpeechGate, merge_spans, redact_file, redact_frame, speech_spans

RATE = 44100


class LoudModel:
    """Stand-in for Silero: a window is speech where its RMS is above 0.05."""

    def __init__(self):
        self.windows = 0

    def probability(self, window: np.ndarray) -> float:
        self.windows += 1
        return 1.0 if float(np.sqrt((window**2).mean())) > 0.05 else 0.0

    def reset(self) -> None:
        self.windows = 0


def pink_noise(n: int, channels: int, db: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal((channels, n)), axis=1)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[1]), 1))
    x = np.fft.irfft(spectrum, n, axis=1)
    return (x / np.sqrt((x**2).mean()) * 10 ** (db / 20)).astype(np.float32)


def bursts(seconds: float, rate: int, at: list[tuple[float, float]], level: float = 0.3) -> np.ndarray:
    """Quiet noise (-50 dBFS) with 440 Hz bursts in ``at``: mono float32."""
    x = pink_noise(round(seconds * rate), 1, -50)[0]
    t = np.arange(len(x)) / rate
    for a, b in at:
        on = (t >= a) & (t < b)
        x[on] += level * np.sin(2 * np.pi * 440 * t[on])
    return x


def frames_of(x: np.ndarray, rate: int, sizes: list[int] | int, fmt: str = "s16", layout: str = "stereo"):
    """Mono float ``x`` as ``av.AudioFrame`` s of ``fmt``/``layout``, of the given sizes (cycled), with pts."""
    channels = 2 if layout == "stereo" else 1
    sizes = [sizes] if isinstance(sizes, int) else sizes
    i, k = 0, 0
    while i < len(x):
        part = x[i : i + sizes[k % len(sizes)]]
        planes = np.repeat(part[None], channels, axis=0)
        dtype = av.AudioFormat(fmt).packed.name
        if dtype in ("s16", "s32"):
            full = np.iinfo(np.int16 if dtype == "s16" else np.int32).max
            planes = np.round(planes.astype(np.float64) * full).astype(np.int16 if dtype == "s16" else np.int32)
        else:
            planes = planes.astype(np.float32)
        array = planes if av.AudioFormat(fmt).is_planar else planes.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), format=fmt, layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
        yield frame
        i += len(part)
        k += 1


def detect(frames) -> list[Span]:
    detector = SpeechDetector(model=LoudModel())
    spans = []
    for f in frames:
        spans += detector.feed(f)
    spans += detector.finish()
    assert spans == detector.spans
    return spans


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> Path:
    """(channels, samples) float32 as a float WAV."""
    layout = "stereo" if x.shape[0] == 2 else "mono"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_f32le", rate=rate)
        stream.layout, stream.format = layout, "flt"
        for i in range(0, x.shape[1], 1024):
            part = np.ascontiguousarray(x[:, i : i + 1024].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(part, format="flt", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def read_audio(path: Path, layout: str = "stereo", rate: int = RATE) -> np.ndarray:
    """The first audio track as float32 (channels, samples): exact for a float WAV of that rate and layout."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    with av.open(str(path)) as c:
        chunks = [g.to_ndarray() for f in c.decode(c.streams.audio[0]) for g in resampler.resample(f)]
    chunks += [g.to_ndarray() for g in resampler.resample(None)]
    return np.concatenate(chunks, axis=1)


def mask_of(spans: list[Span], n: int, rate: int = RATE) -> np.ndarray:
    mask = np.zeros(n, bool)
    for s in spans:
        mask[max(0, math.ceil(s.start * rate)) : max(0, math.ceil(s.end * rate))] = True
    return mask


# -- spans --------------------------------------------------------------------------------------


def test_span_is_validated():
    with pytest.raises(ValueError, match="must end after it starts"):
        Span(2.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        Span(0.0, math.inf)
    with pytest.raises(ValueError, match="'detected' or 'manual'"):
        Span(0.0, 1.0, source="guess")  # type: ignore[arg-type]


def test_manual_spans_merge_with_detected_ones():
    detected = [Span(1.0, 2.0), Span(5.0, 6.0)]
    manual = [Span(1.5, 3.0, "witness's name", "manual"), Span(8.0, 9.0, "address", "manual")]
    merged = merge_spans(detected, manual)
    assert merged == [
        Span(1.0, 3.0, "speech, witness's name", "manual"),
        Span(5.0, 6.0, "speech", "detected"),
        Span(8.0, 9.0, "address", "manual"),
    ]
    assert merge_spans([Span(0, 1), Span(1, 2)]) == [Span(0, 2)]  # touching spans become one
    assert detected == [Span(1.0, 2.0), Span(5.0, 6.0)]  # inputs unchanged


# -- streaming detection (stand-in model: runs everywhere) --------------------------------------


def test_bursts_give_spans_with_margin_merged_where_they_overlap():
    # bursts 0.3 s apart: with 0.2 s margins they overlap and merge; the third stands alone
    x = bursts(5.0, 48000, [(1.0, 1.5), (1.8, 2.3), (3.5, 4.0)])
    spans = detect(frames_of(x, 48000, 1024))
    window = speech.WINDOW / speech.SAMPLE_RATE
    assert len(spans) == 2
    assert spans[0].start == pytest.approx(0.8, abs=window)
    assert spans[0].end == pytest.approx(2.5, abs=window)
    assert spans[1].start == pytest.approx(3.3, abs=window)
    assert spans[1].end == pytest.approx(4.2, abs=window)
    assert all(s.source == "detected" and s.label == "speech" for s in spans)
    # each burst lies wholly inside a span, with at least the margin less a window around it
    for a, b in [(1.0, 1.5), (1.8, 2.3), (3.5, 4.0)]:
        assert any(s.start <= a - 0.2 + window and s.end >= b + 0.2 - window for s in spans)


def test_margin_and_thresholds_are_validated():
    with pytest.raises(ValueError, match="margin must be >= 0"):
        SpeechDetector(margin=-0.1, model=LoudModel())
    with pytest.raises(ValueError, match="threshold must be in"):
        SpeechDetector(threshold=1.5, model=LoudModel())


@pytest.mark.parametrize(
    "fmt,layout,rate", [("s16", "stereo", 48000), ("fltp", "mono", 22050), ("s16p", "stereo", 8000)]
)
def test_odd_sized_chunks_give_the_same_spans_as_one_chunk(fmt, layout, rate):
    x = bursts(3.0, rate, [(0.7, 1.2), (2.0, 2.4)])
    whole = detect(frames_of(x, rate, len(x), fmt, layout))
    odd = detect(frames_of(x, rate, [1, 997, 13, 4097, 333], fmt, layout))
    assert len(whole) == 2
    assert [(s.start, s.end) for s in odd] == pytest.approx([(s.start, s.end) for s in whole], abs=1e-9)


def test_spans_follow_the_stream_clock():
    # frames that start at 10 s: spans are in stream time
    x = bursts(2.0, 16000, [(0.5, 1.0)])
    frames = list(frames_of(x, 16000, 512, "s16", "mono"))
    for f in frames:
        f.pts += 10 * 16000
    (span,) = detect(frames)
    assert span.start == pytest.approx(10.3, abs=0.04) and span.end == pytest.approx(11.2, abs=0.04)


def test_the_detector_keeps_under_one_window_and_decides_with_bounded_delay():
    x = bursts(20.0, 16000, [(5.0, 6.0)])
    detector = SpeechDetector(model=LoudModel())
    seen = 0
    for f in frames_of(x, 16000, 1600, "s16", "mono"):
        detector.feed(f)
        seen += f.samples
        assert len(detector._rest) < speech.WINDOW  # memory flat in the clip's length
        assert seen / 16000 - detector.decided <= detector.delay + 0.02
    assert detector.delay < 0.4


def test_gate_releases_every_frame_redacted_in_order_within_its_delay():
    x = bursts(6.0, 48000, [(2.0, 3.0)])
    frames = list(frames_of(x, 48000, 960))
    gate = SpeechGate("mute", detector=SpeechDetector(model=LoudModel()))
    out, pushed = [], 0.0
    for f in frames:
        out += gate.push(f)
        pushed += f.samples / 48000
        released = sum(g.samples for g in out) / 48000
        assert pushed - released <= gate.delay + 2 * 960 / 48000 + 0.02  # bounded delay
    out += gate.flush()
    assert [g.pts for g in out] == [f.pts for f in frames]
    (span,) = gate.spans
    got = np.concatenate([g.to_ndarray().reshape(-1, 2) for g in out])
    want = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])
    inside = mask_of([span], len(want), 48000)
    assert np.array_equal(got[~inside], want[~inside])  # bit-identical outside
    assert not got[inside].any()  # silent inside
    assert span.start <= 1.8 + 0.04 and span.end >= 3.2 - 0.04


# -- redaction of frames ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["s16", "s16p", "flt", "fltp", "s32", "dblp"])
def test_mute_silences_inside_and_keeps_every_other_sample(fmt):
    x = pink_noise(4800, 1, -20)[0]
    (frame,) = frames_of(x, 48000, 4800, fmt if fmt != "dblp" else "fltp")
    if fmt == "dblp":  # a double frame, made by hand
        frame = av.AudioFrame.from_ndarray(np.stack([x, x]).astype(np.float64), format="dblp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
    before = frame.to_ndarray().copy()
    out = redact_frame(frame, [Span(0.02, 0.05)], "mute")
    assert out.format.name == fmt and out.layout.name == "stereo" and out.pts == frame.pts
    assert out.sample_rate == 48000 and out.samples == frame.samples
    got = out.to_ndarray()
    planes = got if out.format.is_planar else got.reshape(-1, 2).T
    orig = before if out.format.is_planar else before.reshape(-1, 2).T
    assert not planes[:, 960:2400].any()
    assert np.array_equal(planes[:, :960], orig[:, :960]) and np.array_equal(planes[:, 2400:], orig[:, 2400:])
    assert np.array_equal(frame.to_ndarray(), before)  # input untouched
    assert redact_frame(frame, [Span(1.0, 2.0)]) is frame  # a frame no span touches is returned as it came


def test_beep_puts_a_1khz_tone_inside_and_keeps_the_rest():
    x = pink_noise(48000, 1, -30)[0]
    frames = list(frames_of(x, 48000, 1000, "s16", "stereo"))
    span = Span(0.3, 0.7)
    out = [redact_frame(f, [span], "beep") for f in frames]
    got = np.concatenate([g.to_ndarray().reshape(-1, 2) for g in out]).astype(np.float64) / 32767
    want = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames]).astype(np.float64) / 32767
    inside = mask_of([span], len(want), 48000)
    assert np.array_equal(got[~inside], want[~inside])
    tone = got[inside, 0]
    spectrum = np.abs(np.fft.rfft(tone))
    assert np.fft.rfftfreq(len(tone), 1 / 48000)[spectrum.argmax()] == pytest.approx(1000, abs=5)
    rms_db = 20 * np.log10(np.sqrt((tone**2).mean()))
    assert rms_db == pytest.approx(20 * np.log10(speech.BEEP_LEVEL / np.sqrt(2)), abs=0.5)  # -23 dBFS RMS
    assert np.array_equal(got[inside, 0], got[inside, 1])
    # phase continuous across frame edges: no jump larger than one step of a 1 kHz sine
    assert np.abs(np.diff(tone)).max() <= speech.BEEP_LEVEL * 2 * np.pi * 1000 / 48000 + 1e-3


def test_redaction_is_validated():
    frame = next(frames_of(np.zeros(100, np.float32), 48000, 100))
    with pytest.raises(ValueError, match="mode must be one of mute, beep"):
        redact_frame(frame, [], "drop")  # type: ignore[arg-type]
    frame.pts = None
    with pytest.raises(ValueError, match="no timestamp"):
        redact_frame(frame, [Span(0, 1)])


# -- files --------------------------------------------------------------------------------------


def test_a_file_with_no_audio_has_no_spans_and_no_error(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode())
    assert speech_spans(path) == []
    assert redact_file(path, tmp_path / "out.wav") == []
    assert not (tmp_path / "out.wav").exists()


def test_manual_spans_are_muted_in_a_file(tmp_path):
    noise = pink_noise(2 * RATE, 2, -45)  # below the stand-in model's threshold: only the manual span
    src = write_wav(tmp_path / "noise.wav", noise)
    manual = [Span(0.5, 0.8, "name", "manual")]
    spans = redact_file(src, tmp_path / "out.wav", manual=manual, detector=SpeechDetector(model=LoudModel()))
    assert spans == manual
    out = read_audio(tmp_path / "out.wav")[:, : noise.shape[1]]
    inside = mask_of(manual, noise.shape[1])
    assert not out[:, inside].any()
    assert np.array_equal(out[:, ~inside], noise[:, ~inside])


def test_model_file_ships_in_the_wheel_with_its_sha256():
    imported = "silero_vad" in sys.modules
    path = speech.model_path()
    assert path.name == "silero_vad.jit" and path.is_file()
    assert len(speech.model_sha256()) == 64
    # located, never imported: importing silero_vad sets torch's threads to 1 for the whole process
    assert "silero_vad" in sys.modules or not imported


def test_speech_spans_of_a_file_use_the_default_model(tmp_path, monkeypatch):
    monkeypatch.setattr(speech, "SileroVAD", LoudModel)  # the probability function mocked
    x = bursts(3.0, RATE, [(1.0, 2.0)])
    (span,) = speech_spans(write_wav(tmp_path / "tone.wav", np.stack([x, x])))
    assert span.start == pytest.approx(0.8, abs=0.04) and span.end == pytest.approx(2.2, abs=0.04)


# -- real speech (espeak-ng) --------------------------------------------------------------------


def test_speech_over_noise_is_muted_and_the_noise_kept(spoken, tmp_path):
    n = 5 * RATE
    ambient = pink_noise(n, 2, -30, seed=1)
    clean = np.zeros(n, np.float32)
    at = round(1.5 * RATE)
    clean[at : at + len(spoken)] = spoken
    mix = ambient + clean[None]
    src = write_wav(tmp_path / "mix.wav", mix)

    threads = torch.get_num_threads()
    spans = redact_file(src, tmp_path / "out.wav", "mute")
    assert torch.get_num_threads() == threads  # the model's one thread is not left set
    out = read_audio(tmp_path / "out.wav")[:, :n]
    assert spans and all(s.source == "detected" for s in spans)
    assert sum(s.duration for s in spans) < 3.0  # the noise alone is not taken for speech

    # 10 ms steps of the clean speech within 40 dB of its loudest: speech time
    hop = RATE // 100
    energy = (clean[: n // hop * hop].reshape(-1, hop) ** 2).sum(axis=1)
    talking = energy > energy.max() * 1e-4
    muted = mask_of(spans, n)
    step_muted = muted[: n // hop * hop].reshape(-1, hop).all(axis=1)
    assert step_muted[talking].mean() >= 0.99

    spoken_samples = np.repeat(talking, hop)
    speech_energy = float((clean[: len(spoken_samples)][spoken_samples] ** 2).sum())
    left = float((out[:, : len(spoken_samples)][:, spoken_samples] ** 2).sum(axis=0).sum())
    assert left == 0 or 10 * math.log10(speech_energy / left) >= 30  # attenuated by 30 dB or more

    assert np.array_equal(out[:, ~muted], mix[:, ~muted])  # outside: bit-identical
    change = 10 * math.log10((out[:, ~muted] ** 2).sum() / (ambient[:, ~muted] ** 2).sum())
    assert abs(change) <= 3


def test_speech_is_found_in_any_chunking_and_beeped(spoken, tmp_path):
    x = np.concatenate([np.zeros(RATE // 2, np.float32), spoken, np.zeros(RATE // 2, np.float32)])
    whole = speech_spans(write_wav(tmp_path / "say.wav", x[None]))
    detector = SpeechDetector()
    odd = []
    for f in frames_of(x, RATE, [1, 2049, 777], "fltp", "mono"):
        odd += detector.feed(f)
    odd += detector.finish()
    assert len(whole) == 1 and [(s.start, s.end) for s in odd] == pytest.approx([(whole[0].start, whole[0].end)])
    assert whole[0].start <= 0.5 - 0.15 and whole[0].end >= 0.5 + len(spoken) / RATE - 0.3
    spans = redact_file(tmp_path / "say.wav", tmp_path / "beeped.wav", "beep")
    out = read_audio(tmp_path / "beeped.wav", "mono")[0][: len(x)]
    inside = mask_of(spans, len(x))
    spectrum = np.abs(np.fft.rfft(out[inside]))
    assert np.fft.rfftfreq(int(inside.sum()), 1 / RATE)[spectrum.argmax()] == pytest.approx(1000, abs=5)
    assert np.array_equal(out[~inside], x[~inside])
