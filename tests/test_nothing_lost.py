"""Nothing lost, nothing sideways: inputs never overwritten, one run per output, litter of killed runs
cleaned up, truncation and extra audio tracks said, audio copied where the container allows."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest
from conftest import ColourDetector, sigterm_now, stream_summary, synthetic_frames, write_video
from typer.testing import CliRunner

from anonymise import Anonymiser, Config, OutputError
from anonymise.cli import app
from anonymise.io.files import partial_path
from anonymise.io.outputs import claim
from anonymise.io.video import VideoWriter

runner = CliRunner()


def test_an_output_folder_inside_the_input_that_holds_media_is_refused(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    write_video(tree / "a.mp4", synthetic_frames(4), audio=None)
    original = write_video(tree / "sub" / "a.mp4", synthetic_frames(5, seed=3), audio=None)
    before = original.read_bytes()
    for extra in ([], ["--overwrite"]):
        r = runner.invoke(app, ["bbox", "-i", str(tree), "-o", str(tree / "sub"), *extra])
        assert r.exit_code == 1, r.output
        assert "inside the input folder" in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert original.read_bytes() == before, "an input was overwritten"


def test_an_empty_output_folder_inside_the_input_is_fine(tmp_path):
    from anonymise.jobs import plan_jobs

    tree = tmp_path / "tree"
    tree.mkdir()
    write_video(tree / "a.mp4", synthetic_frames(4), audio=None)
    plan = plan_jobs(tree, tree / "out")
    assert [(j.source.name, j.output.relative_to(tree).as_posix()) for j in plan.jobs] == [("a.mp4", "out/a.mp4")]
    assert not plan.single


def test_a_second_run_on_the_same_output_is_refused(tmp_path):
    src = write_video(tmp_path / "a.mp4", synthetic_frames(4), audio=None)
    dst = tmp_path / "a_anonymised.mp4"
    anon = Anonymiser(Config(pose=False), detector=ColourDetector())
    with claim(dst), pytest.raises(OutputError, match="another anonymise run is writing"):  # another run holds it
        anon.run(src, dst)
    assert not dst.exists()
    anon.run(src, dst)
    assert stream_summary(dst)["frames"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "a_anonymised.mp4"], "a lock file was left behind"


def test_stale_partials_of_a_killed_run_are_removed_and_reported(tmp_path, caplog):
    src = write_video(tmp_path / "a.mp4", synthetic_frames(4), audio=None)
    dst = tmp_path / "a_anonymised.mp4"
    stale = partial_path(dst)
    stale.write_bytes(b"half a video, unmasked frames maybe")
    other = tmp_path / ".b_anonymised.partial-12345678.mp4"  # another output's: not ours to touch
    other.write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        Anonymiser(Config(pose=False), detector=ColourDetector()).run(src, dst)
    assert not stale.exists() and other.exists()
    assert any("interrupted run" in r.getMessage() and stale.name in r.getMessage() for r in caplog.records)


def test_signals_held_come_once_after_the_block_and_a_second_one_at_once(sigterm_stops):
    import signal
    import threading

    from anonymise.errors import Stopped
    from anonymise.io.files import signals_held

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    reached = []
    with pytest.raises(Stopped), signals_held():
        sigterm_now()
        reached.append("the rest of the block")
    assert reached == ["the rest of the block"], "one stop is held until the block ends"
    assert {s: signal.getsignal(s) for s in handlers} == handlers, "the handlers are put back"
    reached = []
    with pytest.raises(Stopped), signals_held():
        sigterm_now()
        reached.append("after the first")
        sigterm_now()  # a second stop: acted on at once (a stuck block can still be stopped)
        reached.append("after the second")
    assert reached == ["after the first"] and {s: signal.getsignal(s) for s in handlers} == handlers
    with pytest.raises(ValueError), signals_held():
        raise ValueError("an error in the block")
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    seen = []

    def elsewhere():
        with signals_held():
            seen.append(signal.getsignal(signal.SIGTERM))

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()
    assert seen == [handlers[signal.SIGTERM]], "another thread gets no signals: nothing is held there"


def test_a_signal_as_the_output_is_claimed_leaves_no_lock(tmp_path, monkeypatch, sigterm_stops):
    from anonymise.errors import Stopped
    from anonymise.io import outputs

    lock = outputs._lock

    def locked_then_signalled(*args):
        handle = lock(*args)
        sigterm_now()  # the lock file exists, claim() does not hold it yet
        return handle

    monkeypatch.setattr(outputs, "_lock", locked_then_signalled)
    src = write_video(tmp_path / "a.mp4", synthetic_frames(4), audio=None)
    with pytest.raises(Stopped):
        Anonymiser(Config(pose=False), detector=ColourDetector()).run(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_quiet_still_prints_folder_failures(tmp_path, monkeypatch):
    import anonymise.pipeline as pipeline

    real_init = pipeline.Anonymiser.__init__

    def synthetic(self, config=None, *, detector=None, background="auto"):
        real_init(self, config, detector=ColourDetector(), background=background)

    monkeypatch.setattr(pipeline.Anonymiser, "__init__", synthetic)
    root = tmp_path / "in"
    root.mkdir()
    write_video(root / "a.mp4", synthetic_frames(4), audio=None)
    (root / "b.mp4").write_bytes(b"\x00" * 100)
    r = runner.invoke(app, ["bbox", "-i", str(root), "--quiet"])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "b.mp4" in lines[0], r.output


def test_a_truncated_input_warns_with_the_counts(tmp_path, caplog):
    src = tmp_path / "a.mp4"
    with av.open(str(src), "w", options={"movflags": "faststart"}) as out:  # the index first: it survives the cut
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        for image in synthetic_frames(30):
            out.mux(v.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(v.encode())
    data = src.read_bytes()
    src.write_bytes(data[: int(len(data) * 0.8)])  # the last fifth cut off: 13 of 30 frames decode
    with caplog.at_level(logging.WARNING):
        result = Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(src, tmp_path / "o.mp4")
    assert 0 < result.frames < 30
    assert f"only {result.frames} of the 30 frames" in result.message
    assert any("truncated" in r.getMessage() for r in caplog.records)


def test_a_header_that_counts_twice_the_frames_is_not_called_truncated(tmp_path, monkeypatch, caplog):
    """A file declaring 50 fps where it has 25 (or fields counted as frames) once warned "only 341 of
    the 682 frames ... (truncated?)": its frames reach its declared duration, so nothing was lost."""
    from dataclasses import replace

    import anonymise.pipeline as pipeline

    src = write_video(tmp_path / "a.mp4", synthetic_frames(30), audio=None)
    opened = pipeline.open_reader

    def doubled(*args, **kwargs):
        reader = opened(*args, **kwargs)
        reader.info = replace(reader.info, frames=2 * reader.info.frames)
        return reader

    monkeypatch.setattr(pipeline, "open_reader", doubled)
    with caplog.at_level(logging.WARNING):
        result = Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(src, tmp_path / "o.mp4")
    assert result.frames == 30 and not result.message
    assert not any("truncated" in r.getMessage() for r in caplog.records)


def test_a_second_audio_track_is_reported(tmp_path, caplog):
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        tracks = [out.add_stream("aac", rate=44100) for _ in range(2)]
        for a in tracks:
            a.layout = "mono"
        for _ in range(5):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60, np.uint8), format="bgr24")))
        out.mux(v.encode())
        for a in tracks:
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            out.mux(a.encode(frame))
            out.mux(a.encode())
    with caplog.at_level(logging.WARNING):
        Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(path, tmp_path / "o.mkv")
    assert any("2 audio tracks; only the first is kept" in r.getMessage() for r in caplog.records)


def _clip_with_audio(path, acodec: str):
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream(acodec, rate=44100)
        a.layout = "stereo"
        for _ in range(10):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60, np.uint8), format="bgr24")))
        out.mux(v.encode())
        fmt, step = a.codec_context.format, a.codec_context.frame_size or 1024
        for start in range(0, 44100, step):
            shape = (2, step) if fmt.is_planar else (1, 2 * step)
            dtype = {"s16": np.int16, "s32": np.int32, "flt": np.float32}[fmt.name.rstrip("p")]
            frame = av.AudioFrame.from_ndarray(np.zeros(shape, dtype), format=fmt.name, layout="stereo")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(a.encode(frame))
        out.mux(a.encode())
    return path


@pytest.mark.parametrize(
    "acodec, out_ext, expected",
    [
        ("libmp3lame", "mp4", "mp3float"),  # MP4 carries MP3: copied (mp3float is FFmpeg's MP3 decoder)
        ("pcm_s16le", "mov", "pcm_s16le"),  # MOV carries PCM: copied
        ("pcm_s16le", "mp4", "aac"),  # MP4 does not: re-encoded
    ],
)
def test_audio_is_copied_where_the_container_allows(tmp_path, acodec, out_ext, expected):
    """``--audio keep``: the packets are copied; the default (``mute-speech``) re-encodes to AAC."""
    src = _clip_with_audio(tmp_path / "in.mkv", acodec)
    dst = tmp_path / f"out.{out_ext}"
    Anonymiser(Config(pose=False, audio="keep"), detector=ColourDetector()).process_video(src, dst)
    assert stream_summary(dst)["audio"] == [expected]
    Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(src, tmp_path / f"muted.{out_ext}")
    assert stream_summary(tmp_path / f"muted.{out_ext}")["audio"] == ["aac"]


def test_pcm_in_avi_with_an_unnamed_layout_makes_an_mp4(tmp_path):
    """PCM in an AVI reports its layout as "2 channels"; the AAC encoder needs a named one."""
    src = _clip_with_audio(tmp_path / "in.avi", "pcm_s16le")
    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.layout.name == "2 channels"
    dst = tmp_path / "out.mp4"
    Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(src, dst)
    assert stream_summary(dst)["audio"] == ["aac"]


def test_an_audio_setting_the_encoder_refuses_costs_only_the_audio_before_the_first_frame(
    tmp_path, monkeypatch, caplog
):
    import anonymise.io.video as video

    src = _clip_with_audio(tmp_path / "in.avi", "pcm_s16le")
    monkeypatch.setattr(video, "DEFAULT_LAYOUTS", {2: "2 channels"})  # what the old code asked the encoder for
    with av.open(str(src)) as c:
        audio = c.streams.audio[0]
        writer = VideoWriter(tmp_path / "out.mp4", 64, 48, 10, audio_stream=audio)  # the video alone, at once
    assert [p for p in tmp_path.glob(".out.partial-*") if p != writer.tmp] == [], "the refused file was left behind"
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.close()
    assert stream_summary(tmp_path / "out.mp4")["audio"] == []
    assert "out.mp4 is written without its audio" in caplog.text


KILLED_WRITER = """
import os, sys
import numpy as np
from anonymise.io.video import VideoWriter
w = VideoWriter(sys.argv[1], 64, 48, 10, live=True)
for i in range(int(sys.argv[2])):
    w.write(np.full((48, 64, 3), 3 * i, np.uint8))
sys.stdout.flush()
os._exit(0)  # as SIGKILL or a power cut would: no close, no rename
"""


def test_a_killed_live_recording_stays_playable_and_the_next_run_recovers_it(tmp_path, caplog):
    import subprocess
    import sys

    from anonymise.io.video import playable_frames

    out = tmp_path / "camera0_anonymised.mp4"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out), "35"], check=True, timeout=120)
    (left,) = tmp_path.glob(".camera0_anonymised.live-*.mp4")
    assert not out.exists()
    assert playable_frames(left) >= 35 - 2 * 10, "at most the last fragment (two seconds at 10 fps) is lost"
    with claim(out):
        pass
    (recovered,) = tmp_path.glob("camera0_anonymised_recovered-*.mp4")
    assert playable_frames(recovered) == playable_frames(recovered) >= 15
    assert not list(tmp_path.glob(".camera0*")), "no hidden litter left"
    assert "recovered a live recording of camera0_anonymised.mp4 that was interrupted" in caplog.text
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out), "0"], check=True, timeout=120)
    with claim(out):
        pass
    assert not list(tmp_path.glob(".camera0*")) and len(list(tmp_path.glob("*recovered*"))) == 1, (
        "a recording with no frame is removed, not recovered"
    )


def test_an_interrupted_segment_is_recovered_under_its_own_name(tmp_path):
    import subprocess
    import sys

    from anonymise.io.video import playable_frames

    segment = tmp_path / "camera0_anonymised_20261201-101500.mp4"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(segment), "25"], check=True, timeout=120)
    with claim(tmp_path / "camera0_anonymised.mp4"):  # the next run on that camera's output
        pass
    assert playable_frames(segment) >= 10 and not list(tmp_path.glob(".*")), "renamed into place: its start time"
