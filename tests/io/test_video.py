from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import scene, stream_summary, synthetic_frames, write_video, write_zero_frame_video

from anonymise import ConfigError, SourceError
from anonymise.io.video import Span, VideoReader, VideoWriter, parse_time


def _copy(src, dst, **writer_kwargs):
    """Read and write back unchanged: what the pipeline does around its image work."""
    with VideoReader(src) as r:
        w = VideoWriter(dst, r.info.width, r.info.height, r.info.fps, r.time_base, r.audio_stream, **writer_kwargs)
        for f in r:
            w.write_audio(f.audio)
            w.write(f.image, f.pts, f.duration)
            w.write_audio(f.audio_after)
        w.close()
    return dst


def _pts(path):
    with av.open(str(path)) as c:
        return sorted(f.pts * f.time_base for f in c.decode(video=0))


def test_roundtrip_keeps_frames_duration_fps_and_audio(tmp_path):
    src = write_video(tmp_path / "in.mp4", synthetic_frames(25), fps=10, audio="aac")
    out = _copy(src, tmp_path / "out.mp4")
    a, b = stream_summary(src), stream_summary(out)
    assert b["frames"] == a["frames"] == 25
    assert b["duration"] == pytest.approx(2.5)
    assert b["fps"] == 10 and b["codec"] == "h264" and b["pix_fmt"] == "yuv420p"
    assert b["audio"] == ["aac"]
    assert _pts(out) == _pts(src)
    with av.open(str(src)) as c1, av.open(str(out)) as c2:
        n1 = sum(p.size for p in c1.demux(c1.streams.audio[0]))
        n2 = sum(p.size for p in c2.demux(c2.streams.audio[0]))
    assert n1 == n2, "audio is copied packet for packet"


def test_ntsc_rate_is_not_rounded(tmp_path):
    src = write_video(tmp_path / "ntsc.mp4", synthetic_frames(30), fps=Fraction(30000, 1001), audio=None)
    with VideoReader(src) as r:
        assert r.info.fps == Fraction(30000, 1001)
    out = _copy(src, tmp_path / "out.mp4")
    s = stream_summary(out)
    assert s["fps"] == Fraction(30000, 1001) and s["frames"] == 30
    assert s["duration"] == pytest.approx(30 * 1001 / 30000, abs=1e-3)


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    """A header rate of 25 fps with frames actually spaced irregularly: the output must not drift."""
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 200, 240, 500, 540, 1000]
    src = write_video(tmp_path / "vfr.mkv", synthetic_frames(len(pts)), fps=25, audio=None, time_base=tb, pts=pts)
    out = _copy(src, tmp_path / "out.mp4")
    assert [float(t) for t in _pts(out)] == pytest.approx([p / 1000 for p in pts], abs=1e-3)


def test_pcm_audio_is_reencoded_for_mp4_and_copied_for_mkv(tmp_path):
    src = write_video(tmp_path / "pcm.mov", synthetic_frames(10), fps=10, audio="pcm_s16le")
    assert stream_summary(_copy(src, tmp_path / "out.mp4"))["audio"] == ["aac"]
    assert stream_summary(_copy(src, tmp_path / "out.mkv"))["audio"] == ["pcm_s16le"]


def test_odd_frame_size_is_padded_to_even(tmp_path):
    frames = [f[:119, :159].copy() for f in synthetic_frames(3)]
    w = VideoWriter(tmp_path / "odd.mp4", 159, 119, Fraction(10))
    for f in frames:
        w.write(f)
    w.close()
    assert stream_summary(tmp_path / "odd.mp4")["size"] == (160, 120)


def test_writer_is_atomic(tmp_path):
    dst = tmp_path / "out.mp4"
    w = VideoWriter(dst, 160, 120, Fraction(10))
    for _ in range(40):  # enough for the encoder to emit packets, so the file exists on disk
        w.write(scene())
    assert not dst.exists() and w.tmp.exists() and w.tmp.name.startswith(".out.partial-")
    w.abort()
    assert not dst.exists() and list(tmp_path.iterdir()) == []
    w = VideoWriter(dst, 160, 120, Fraction(10))
    w.write(scene())
    w.close()
    assert dst.exists() and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_corrupt_truncated_and_empty_inputs_raise_source_errors(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match=r"cannot read .*junk.mp4"):
        VideoReader(junk)
    good = write_video(tmp_path / "good.mp4", synthetic_frames(20), audio=None)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SourceError), VideoReader(cut) as r:
        list(r)
    empty = write_zero_frame_video(tmp_path / "empty.mkv")  # MP4 would drop a track with no frames
    assert empty.stat().st_size > 0
    with pytest.raises(SourceError, match=r"no video frames could be decoded"), VideoReader(empty) as r:
        list(r)
    with pytest.raises(SourceError, match=r"no such file"):
        VideoReader(tmp_path / "missing.mp4")


def test_gpu_encoding_falls_back_to_libx264_without_nvenc(tmp_path):
    from anonymise.io.video import VideoWriter, nvenc_available

    writer = VideoWriter(tmp_path / "gpu.mp4", 64, 48, 10, gpu=True)
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.close()
    assert writer.codec == ("h264_nvenc" if nvenc_available() else "libx264")
    assert stream_summary(tmp_path / "gpu.mp4")["frames"] == 3


def _numbered(n: int) -> list[np.ndarray]:
    """Frames whose grey level says their index (8 per step): a cut can be checked by its pixels."""
    return [np.full((48, 64, 3), 8 * i + 4, np.uint8) for i in range(n)]


def _level(image: np.ndarray) -> int:
    return round((float(image.mean()) - 4) / 8)


@pytest.mark.parametrize(
    "span, first, count",
    [
        (Span(start=1.0), 10, 20),
        (Span(start=1.0, frames=5), 10, 5),
        (Span(start=0.5, duration=1.0), 5, 10),
        (Span(frames=3), 0, 3),
        (Span(start=2.9), 29, 1),
    ],
)
def test_a_span_is_that_part_alone_retimed_from_zero_with_its_audio(tmp_path, span, first, count):
    src = write_video(tmp_path / "n.mp4", _numbered(30), fps=10, audio="aac")
    with VideoReader(src, span=span) as reader:
        assert reader.info.frames == count, "the progress bar's total is the span's length"
        frames = list(reader)
    assert [f.index for f in frames] == list(range(count))
    assert [_level(f.image) for f in frames] == list(range(first, first + count)), "the frames of the span"
    assert frames[0].time == pytest.approx(0.0, abs=1e-6) and frames[-1].time == pytest.approx((count - 1) / 10)
    audio = [p for f in frames for p in f.audio + f.audio_after]
    assert audio and min(p.pts for p in audio) >= 0
    seconds = sum(float(p.duration * p.time_base) for p in audio)
    assert seconds == pytest.approx(count / 10, abs=0.1), "the audio of the span, not of the whole file"


def test_span_values_are_checked():
    for bad, message in (
        (dict(start=-1), "--start must be"),
        (dict(duration=0), "--duration must be"),
        (dict(frames=0), "--frames must be"),
    ):
        with pytest.raises(ConfigError, match=message):
            Span(**bad)
    assert parse_time("1:02:03.5") == 3723.5 and parse_time("90") == 90 and parse_time("0:30") == 30
    with pytest.raises(ConfigError, match=r"--start must be seconds \(90, 90.5\) or \[HH:\]MM:SS, got '1:x'"):
        parse_time("1:x", "--start")


def _ffmpeg(*args):
    """Run the ffmpeg command line (quiet); the test is skipped, saying why, where it is not installed."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg command line is not installed (apt install ffmpeg)")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True, timeout=120)


def _audio_seconds(path) -> float:
    with av.open(str(path)) as c:
        return sum(float(p.duration * p.time_base) for p in c.demux(c.streams.audio[0]) if p.duration)


def test_adts_aac_from_mpegts_is_kept_in_a_live_recording(tmp_path, caplog):
    """AAC in MPEG-TS is ADTS (a header on each packet, no extradata): a live (fragmented) MP4 refused
    it ("Malformed AAC bitstream") and the recording was lost. It is copied through aac_adtstoasc."""
    src = write_video(tmp_path / "in.ts", synthetic_frames(30), fps=10, audio="aac")
    with VideoReader(src) as r:
        assert r.audio_stream.codec_context.name == "aac" and not r.audio_stream.codec_context.extradata
    out = _copy(src, tmp_path / "live.mp4", live=True)
    s = stream_summary(out)
    assert s["frames"] == 30 and s["audio"] == ["aac"]
    assert _audio_seconds(out) == pytest.approx(3.0, abs=0.1)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.extradata, "the AudioSpecificConfig is in the file's header"
        assert sum(1 for _ in c.decode(c.streams.audio[0])) > 100, "the audio decodes"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("maker", ["pyav", "ffmpeg"])
def test_an_mpegts_input_starts_at_zero(tmp_path, maker):
    """MPEG-TS clocks start where the muxer chose (1.4 s from ffmpeg): the output starts at 0, as for
    other containers, with its audio moved with it."""
    if maker == "ffmpeg":
        mp4 = write_video(tmp_path / "src.mp4", synthetic_frames(30), fps=10, audio="aac")
        src = tmp_path / "in.ts"
        _ffmpeg("-i", mp4, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", "-f", "mpegts", src)
    else:
        src = write_video(tmp_path / "in.ts", synthetic_frames(30), fps=10, audio="aac")
    with av.open(str(src)) as c:
        assert c.start_time > 0.1 * av.time_base, "the test needs a clip that does not start at 0"
    out = _copy(src, tmp_path / "out.mp4")
    assert float(_pts(out)[0]) == pytest.approx(0.0, abs=1e-3)
    with av.open(str(out)) as c:
        assert (c.start_time or 0) / av.time_base == pytest.approx(0.0, abs=0.03)
        assert c.duration / av.time_base == pytest.approx(3.0, abs=0.1), "not 1.6 s longer than the clip"
    assert stream_summary(out)["frames"] == 30
    assert _audio_seconds(out) == pytest.approx(3.0, abs=0.1)


def test_subtitle_tracks_are_dropped_with_a_word(tmp_path, caplog):
    mp4 = write_video(tmp_path / "src.mp4", synthetic_frames(10), fps=10, audio="aac")
    srt = tmp_path / "names.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nAlice walks by\n")
    src = tmp_path / "in.mkv"
    _ffmpeg("-i", mp4, "-i", srt, "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt", src)
    with VideoReader(src) as r:
        frames = list(r)
    assert len(frames) == 10
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "1 subtitle track" in said[0] and "not kept" in said[0], said


def test_an_audio_track_that_cannot_be_set_up_costs_only_the_audio(tmp_path, monkeypatch, caplog):
    src = write_video(tmp_path / "in.mp4", synthetic_frames(10), fps=10, audio="aac")

    def refused(self, stream):
        raise ValueError("'mp4' format does not support 'nellymoser' codec")

    monkeypatch.setattr(VideoWriter, "_add_audio", refused)
    out = _copy(src, tmp_path / "out.mp4")
    s = stream_summary(out)
    assert s["frames"] == 10 and s["audio"] == [], "the video is written, without the audio track"
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "without its audio" in said[0] and "nellymoser" in said[0], said


def test_audio_that_fails_while_writing_costs_only_the_audio(tmp_path, caplog):
    src = write_video(tmp_path / "in.mov", synthetic_frames(20), fps=10, audio="pcm_s16le")  # re-encoded to AAC
    with VideoReader(src) as r:
        w = VideoWriter(tmp_path / "out.mp4", r.info.width, r.info.height, r.info.fps, r.time_base, r.audio_stream)
        for f in r:
            if f.index == 5:
                f.audio = [av.Packet(b"\x01")]  # a broken packet: one byte of 16-bit samples
            w.write_audio(f.audio)
            w.write(f.image, f.pts, f.duration)
            w.write_audio(f.audio_after)
        w.close()
    assert stream_summary(tmp_path / "out.mp4")["frames"] == 20, "every frame is written"
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and "audio" in said[0], said
