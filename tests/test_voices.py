"""Voices in videos (issue 31): ``--audio mute-speech`` (the default), ``beep-speech``, ``keep`` and
``drop`` through the whole pipeline, files and live streams, with manual spans from a manifest.

Speech comes from ``espeak-ng`` where it is installed (skipped, saying why, where not); elsewhere
loud tone bursts stand in for it, with the model mocked (:class:`Bursts`)."""

from __future__ import annotations

import json
import math

import av
import numpy as np
import pytest
from conftest import ColourDetector, stream_summary, synthetic_frames
from typer.testing import CliRunner

from anonymise import Anonymiser, Config, speech
from anonymise.cli import app
from anonymise.sidecars import Extras

RATE = 44100
FPS = 10


class Bursts:
    """Stand-in for Silero: a window is speech where its RMS is above 0.05 (the loud bursts)."""

    def probability(self, window: np.ndarray) -> float:
        return 1.0 if float(np.sqrt((window**2).mean())) > 0.05 else 0.0

    def reset(self) -> None:
        pass


class Nobody:
    """Stand-in for Silero that hears no speech."""

    def probability(self, window: np.ndarray) -> float:
        return 0.0

    def reset(self) -> None:
        pass


def noise(n: int, db: float, seed: int = 0) -> np.ndarray:
    """Stereo white noise at ``db`` dBFS RMS, float32 (2, n)."""
    x = np.random.default_rng(seed).standard_normal((2, n))
    return (x * 10 ** (db / 20)).astype(np.float32)


def bursts(n: int, at: list[tuple[float, float]], level: float = 0.3) -> np.ndarray:
    """A 300 Hz tone of peak ``level`` over each (start, end) seconds, else silence: (n,) float32."""
    t = np.arange(n) / RATE
    on = np.zeros(n, bool)
    for start, end in at:
        on |= (t >= start) & (t < end)
    return np.where(on, level * np.sin(2 * np.pi * 300 * t), 0.0).astype(np.float32)


def clip(path, seconds: float, sound: np.ndarray, audio_codec: str = "aac", tracks: int = 1):
    """Synthetic walker frames at 10 fps with ``sound`` (2, n) as ``tracks`` audio tracks."""
    frames = synthetic_frames(round(seconds * FPS))
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        streams = []
        for _ in range(tracks):
            a = out.add_stream(audio_codec, rate=RATE)
            a.layout = "stereo"
            streams.append(a)
        for image in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(v.encode())
        for a in streams:
            step = a.codec_context.frame_size or 1024
            for start in range(0, sound.shape[1], step):
                chunk = np.ascontiguousarray(sound[:, start : start + step], np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = RATE, start
                out.mux(a.encode(frame))
            out.mux(a.encode())
    return path


def pcm(path) -> tuple[np.ndarray, float]:
    """(the first audio track as mono float (n,), its first sample's time) of a file."""
    with av.open(str(path)) as c:
        chunks, first = [], None
        for f in c.decode(audio=0):
            first = float(f.pts * f.time_base) if first is None and f.pts is not None else first
            x = f.to_ndarray().astype(np.float64)
            x = x.reshape(-1, len(f.layout.channels)).T if not f.format.is_planar else x
            chunks.append(x.mean(axis=0) / (32768 if f.format.name.startswith("s16") else 1))
    return np.concatenate(chunks), first or 0.0


def level(x: np.ndarray) -> float:
    """RMS in dBFS (-200 for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0
    return 20 * math.log10(rms) if rms > 0 else -200.0


def inside(spans, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for s in spans:
        mask[max(0, round(s.start * RATE)) : round(s.end * RATE)] = True
    return mask


def run(src, dst, **config):
    anon = Anonymiser(Config(pose=False, **config), detector=ColourDetector())
    return anon.process_video(src, dst, extras=Extras(report=True))


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(speech, "SileroVAD", Bursts)


# -- files ------------------------------------------------------------------------------------------


def test_the_default_mutes_the_bursts_and_keeps_the_ambient_sound(tmp_path, stand_in):
    n = 4 * RATE
    sound = noise(n, -40) + bursts(n, [(1.0, 1.6), (2.5, 2.9)])[None]
    src = clip(tmp_path / "in.mp4", 4, sound)
    result = run(src, tmp_path / "out.mp4")
    assert [(round(s.start, 1), round(s.end, 1)) for s in result.speech] == [(0.8, 1.8), (2.3, 3.1)]
    out, first = pcm(result.output)
    assert first == pytest.approx(0.0, abs=0.03) and len(out) == pytest.approx(n, abs=2048)
    muted = inside(result.speech, len(out))
    burst = level(bursts(RATE, [(0, 1)]))
    assert level(out[muted]) < burst - 60, "the spans are silent (but for the AAC frames at their edges)"
    # outside: the noise as it was (AAC re-encoded: its level, within 3 dB)
    m = min(len(out), n)
    outside = ~muted[:m]
    outside[: RATE // 10] = False  # the encoder's first frame
    assert abs(level(out[:m][outside]) - level(sound.mean(axis=0)[:m][outside])) < 3
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["settings"]["audio"] == "mute-speech"
    assert [x["why"] for x in report["audio"]["spans"]] == ["detected", "detected"]
    assert len(report["audio"]["model"]["sha256"]) == 64
    assert "<h2>Sound</h2>" in (tmp_path / "out.report.html").read_text()


def test_beep_puts_a_tone_over_the_speech(tmp_path, stand_in):
    n = 3 * RATE
    sound = noise(n, -40) + bursts(n, [(1.0, 1.5)])[None]
    result = run(clip(tmp_path / "in.mp4", 3, sound), tmp_path / "out.mp4", audio="beep-speech")
    (span,) = result.speech
    out, _ = pcm(result.output)
    inner = out[round((span.start + 0.05) * RATE) : round((span.end - 0.05) * RATE)]
    spectrum = np.abs(np.fft.rfft(inner))
    assert np.fft.rfftfreq(len(inner), 1 / RATE)[spectrum.argmax()] == pytest.approx(1000, abs=5)
    assert level(inner) == pytest.approx(-23, abs=2), "the beep's level, not the speech's"


def test_keep_copies_the_sound_and_drop_writes_none(tmp_path, stand_in):
    n = 3 * RATE
    sound = noise(n, -40) + bursts(n, [(1.0, 1.5)])[None]
    src = clip(tmp_path / "in.mp4", 3, sound)
    kept = run(src, tmp_path / "kept.mp4", audio="keep")
    assert kept.speech is None
    with av.open(str(src)) as a, av.open(str(kept.output)) as b:
        packets = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        assert packets == [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size], "copied packet for packet"
    dropped = run(src, tmp_path / "dropped.mp4", audio="drop")
    assert stream_summary(dropped.output)["audio"] == [] and dropped.speech is None
    assert stream_summary(dropped.output)["frames"] == 30


def test_a_manual_span_from_the_manifest_is_muted_where_nobody_speaks(tmp_path, monkeypatch):
    monkeypatch.setattr(speech, "SileroVAD", Nobody)
    n = 3 * RATE
    src = clip(tmp_path / "in.mp4", 3, noise(n, -30))
    manifest = tmp_path / "manual.json"
    manifest.write_text(json.dumps({"version": 1, "masks": [], "audio": [{"start": 1.0, "end": 2.0, "label": "name"}]}))
    result = run(src, tmp_path / "out.mp4", masks=str(manifest))
    assert [(s.start, s.end, s.source, s.label) for s in result.speech] == [(1.0, 2.0, "manual", "name")]
    out, _ = pcm(result.output)
    assert level(out[round(1.05 * RATE) : round(1.95 * RATE)]) < -90
    assert level(out[round(0.2 * RATE) : round(0.9 * RATE)]) == pytest.approx(-33, abs=3), "the noise kept"
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["audio"]["spans"] == [{"start": 1.0, "end": 2.0, "why": "manual", "label": "name"}]


def test_the_manifests_audio_spans_are_checked(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"masks": [], "audio": [{"start": 2.0, "end": 1.0}]}))
    src = clip(tmp_path / "in.mp4", 1, noise(RATE, -30))
    result = CliRunner().invoke(app, ["bbox", "-i", str(src), "--masks", str(bad)])
    assert result.exit_code == 1 and "audio[0] needs seconds 0 <= start < end" in result.output


def test_a_clip_without_audio_and_one_with_two_tracks(tmp_path, stand_in, caplog):
    n = 2 * RATE
    silent = run(clip(tmp_path / "none.mp4", 2, noise(n, -40), tracks=0), tmp_path / "none_out.mp4")
    assert silent.speech is None and stream_summary(silent.output)["audio"] == []
    two = clip(tmp_path / "two.mkv", 2, noise(n, -40) + bursts(n, [(0.5, 1.0)])[None], tracks=2)
    result = run(two, tmp_path / "two_out.mkv")
    assert len(result.speech) == 1 and stream_summary(result.output)["audio"] == ["aac"]
    assert any("2 audio tracks; only the first is kept" in r.getMessage() for r in caplog.records)


def test_the_summary_says_what_was_muted_and_how_to_keep_it(tmp_path, stand_in, monkeypatch):
    n = 2 * RATE
    src = clip(tmp_path / "in.mp4", 2, noise(n, -40) + bursts(n, [(0.5, 1.0)])[None])
    monkeypatch.setattr("anonymise.pipeline.Anonymiser.__init__", _with_colour_detector)
    result = CliRunner().invoke(app, ["bbox", "-i", str(src), "--no-pose"])
    assert result.exit_code == 0, result.output
    assert "speech: 1 span muted, 0.9 s; --audio keep keeps the voices" in result.output
    result = CliRunner().invoke(app, ["bbox", "-i", str(src), "--no-pose", "--audio", "beep-speech", "--overwrite"])
    assert "speech: 1 span beeped" in result.output
    result = CliRunner().invoke(app, ["bbox", "-i", str(src), "--no-pose", "--no-audio", "-o", str(tmp_path / "n.mp4")])
    assert result.exit_code == 0 and "speech:" not in result.output
    assert stream_summary(tmp_path / "n.mp4")["audio"] == []
    bad = CliRunner().invoke(app, ["bbox", "-i", str(src), "--audio", "whisper"])
    assert bad.exit_code != 0 and "whisper" in bad.output


_real_init = Anonymiser.__init__


def _with_colour_detector(self, config, detector=None, **kwargs):
    _real_init(self, config, detector=ColourDetector(), **kwargs)


# -- real speech (espeak-ng), a live stream ------------------------------------------------------


def test_real_speech_over_noise_is_muted_by_30_db_and_the_noise_kept(tmp_path, spoken):
    """Silero VAD on espeak-ng's voice over noise at -30 dBFS: every 10 ms of speech inside a span,
    its energy down by 30 dB or more, and the noise outside the spans at its level."""
    n = 6 * RATE
    voice = np.zeros(n, np.float32)
    at = round(1.5 * RATE)
    voice[at : at + len(spoken)] = spoken
    ambient = noise(n, -30, seed=3)
    result = run(clip(tmp_path / "in.mp4", 6, ambient + voice[None]), tmp_path / "out.mp4")
    assert result.speech and sum(s.duration for s in result.speech) < 4.0, result.speech
    out, _ = pcm(result.output)
    out = out[:n]
    hop = RATE // 100
    energy = (voice[: n // hop * hop].reshape(-1, hop) ** 2).sum(axis=1)
    talking = np.repeat(energy > energy.max() * 1e-4, hop)
    muted = inside(result.speech, n)[: len(talking)]
    assert muted[talking].mean() >= 0.99, "speech time muted"
    left = float(np.sum(out[: len(talking)][talking] ** 2))
    assert left == 0 or 10 * math.log10(float(np.sum(voice[: len(talking)][talking] ** 2)) / left) >= 30
    outside = ~inside(result.speech, len(out))
    outside[: RATE // 10] = False  # the encoder's first frame
    assert abs(level(out[outside]) - level(ambient.mean(axis=0)[: len(out)][outside])) < 3


@pytest.mark.slow
def test_a_live_stream_with_speech_is_recorded_muted(tmp_path, stand_in):
    """A stream (MPEG-TS with AAC, served in real time) whose sound has loud bursts: the recording's
    sound has them muted before it is written, the quiet noise between kept, for its whole length."""
    import sys

    sys.path.insert(0, str(__import__("conftest").ROOT / "tests" / "io"))
    from test_live import _audio, _record, _seconds

    n = 3 * RATE
    sound = noise(n, -40) + bursts(n, [(1.0, 1.5)])[None]
    result = _record(tmp_path, clip(tmp_path / "loop.mp4", 3, sound), seconds=5.0)
    codecs, seconds, first = _audio(result.output)
    assert codecs == ["aac"] and seconds == pytest.approx(_seconds(result.output), abs=0.5)
    assert result.speech, "the bursts were found"
    out, _ = pcm(result.output)
    assert np.abs(out).max() < 0.05, "no burst is left: each was muted before it was written"
    assert level(out[~inside(result.speech, len(out))]) == pytest.approx(-43, abs=4), "the noise kept"
