"""Live sources in real time: the newest frame, stale ones dropped and counted, capture timestamps."""

import threading
import time

import numpy as np
import pytest

from anonymise.io.live import CAPTURE_TIME_BASE, Newest
from anonymise.io.video import Frame


def _source(n: int, every: float, fail: bool = False):
    """A live source: ``n`` frames, one every ``every`` seconds, each with one audio 'packet' (its index)."""
    for i in range(n):
        time.sleep(every)
        yield Frame(np.full((4, 4, 3), i, np.uint8), i, pts=1000 + i, audio=[i])
    if fail:
        raise ConnectionResetError("Connection reset by peer")


def test_a_slow_consumer_gets_the_newest_frames_and_the_rest_are_dropped_not_queued():
    newest = Newest(_source(40, 0.01))
    taken = []
    for frame in newest:
        taken.append(frame)
        time.sleep(0.05)  # the models: five times slower than the source
    assert newest.read == 40 and len(taken) + newest.dropped == 40
    assert 4 <= len(taken) <= 20 and newest.dropped >= 20, "most frames are dropped, none queue"
    indices = [int(f.image[0, 0, 0]) for f in taken]
    assert indices == sorted(indices) and indices[-1] == 39, "in order, and the last frame is the last one read"
    assert sorted(p for f in taken for p in f.audio) == list(range(40)), "the audio of dropped frames rides along"


def test_frames_carry_capture_times_from_zero():
    start = time.monotonic()
    taken = list(Newest(_source(10, 0.02)))
    wall = time.monotonic() - start
    assert taken[0].pts == 0 and all(f.time_base == CAPTURE_TIME_BASE for f in taken)
    assert [f.pts for f in taken] == sorted({f.pts for f in taken}), "strictly increasing"
    assert taken[-1].time == pytest.approx(wall - 0.02, abs=0.06), "the recording lasts as long as the capture"


def test_a_source_error_reaches_the_consumer_after_the_frames_before_it():
    newest = Newest(_source(3, 0.005, fail=True))
    got = []
    with pytest.raises(ConnectionResetError, match="reset by peer"):
        for frame in newest:
            got.append(frame)
    assert got, "the frames before the error are delivered"


def test_close_stops_the_reader_thread():
    newest = Newest(_source(1000, 0.005))
    next(iter(newest))
    assert newest.close()
    assert not any(t.name == "anonymise-live" and t.is_alive() for t in threading.enumerate())


def _serve(video, port, format="mpegts"):
    """A child process playing ``video`` (looped) as ``format`` on tcp://127.0.0.1:port in real time, its
    audio copied."""
    import subprocess
    import sys

    from conftest import ROOT

    scripts = str(ROOT / "scripts")
    code = (
        f"import sys; sys.path.insert(0, {scripts!r}); import live_bench; "
        f"live_bench.serve(sys.argv[1], {port}, format={format!r})"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(video)])


@pytest.mark.slow
def test_a_stream_whose_server_is_killed_and_restarted_is_recorded_on_into_a_new_file(tmp_path):
    """A real TCP stream (PyAV serving MPEG-TS on the loopback): the server is killed (SIGKILL) twice;
    the recording before each loss is kept and playable, the client reconnects to the restarted
    server and records on, then gives up after --reconnect seconds."""
    import socket

    from conftest import ColourDetector, stream_summary, synthetic_frames, write_video

    from anonymise import Anonymiser, Config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    video = write_video(tmp_path / "loop.mp4", synthetic_frames(20), fps=10, audio=None)
    out = tmp_path / "rec" / "stream.mp4"
    out.parent.mkdir()
    results = []
    anon = Anonymiser(Config(), detector=ColourDetector())
    server = _serve(video, port)
    time.sleep(1.5)  # listening
    client = threading.Thread(
        target=lambda: results.append(anon.run(f"tcp://127.0.0.1:{port}", out, reconnect=4, segment=0))
    )
    client.start()
    try:
        time.sleep(3.0)
        server.kill()  # a crash: the connection drops mid-stream
        server.wait()
        time.sleep(1.0)
        server = _serve(video, port)  # back: the client's next retry finds it
        time.sleep(4.5)
        server.kill()
        server.wait()
        client.join(30)
    finally:
        server.kill()
    assert not client.is_alive()
    (report,) = results
    kept = [r for r in report.results if r.status == "done"]
    assert len(kept) == 2 and all(r.broken for r in kept), [(r.status, r.message) for r in report.results]
    for r in kept:
        assert stream_summary(r.output)["frames"] == r.frames > 5, "each recording is kept, whole and playable"
    assert kept[0].output == out and kept[1].output.name.startswith("stream_2")
    assert report.results[-1].status == "failed" and "did not come back within 4 s" in report.results[-1].message
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")], "no hidden litter"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _record(tmp_path, video, seconds=3.0, format="mpegts"):
    """Record ``video`` served live (looped, in real time) for about ``seconds``, until the server is
    killed; the report (its one recording kept: the stream broke off, no reconnect)."""
    from conftest import ColourDetector

    from anonymise import Anonymiser, Config

    port = _free_port()
    out = tmp_path / "rec" / "stream.mp4"
    results = []
    server = _serve(video, port, format)
    try:
        time.sleep(1.5)  # listening
        anon = Anonymiser(Config(), detector=ColourDetector())
        client = threading.Thread(
            target=lambda: results.append(anon.run(f"tcp://127.0.0.1:{port}", out, reconnect=0, segment=0))
        )
        client.start()
        time.sleep(seconds)
    finally:
        server.kill()
        server.wait()
    client.join(30)
    assert not client.is_alive()
    (report,) = results
    (result,) = report.results
    assert result.status == "done" and result.broken and result.output == out, result.message
    return result


def _audio(path):
    """(codec names of the audio tracks, seconds of audio, first audio time) of a recording."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return [], 0.0, None
        packets = [p for p in c.demux(c.streams.audio[0]) if p.pts is not None]
        seconds = sum(float(p.duration * p.time_base) for p in packets if p.duration)
        return [s.codec_context.name for s in c.streams.audio], seconds, float(packets[0].pts * packets[0].time_base)


def _seconds(path) -> float:
    """How long a recording's video lasts: its last frame's time plus one frame (10 fps)."""
    import av

    with av.open(str(path)) as c:
        return max(f.time for f in c.decode(video=0)) + 0.1


def _warnings(caplog) -> list[str]:
    """The warnings, but for the one that says the stream ended and its recording is kept."""
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    return [m for m in said if "so far is kept" not in m]


@pytest.mark.slow
def test_a_stream_with_aac_in_mpegts_is_recorded_with_its_audio(tmp_path, caplog):
    """MPEG-TS carries AAC as ADTS, which MP4 refused: the recording failed after a few frames and
    nothing was kept. Now the video and its AAC audio, of the recording's length, from 0."""
    from conftest import stream_summary, synthetic_frames, write_video

    video = write_video(tmp_path / "loop.mp4", synthetic_frames(20), fps=10, audio="aac")
    result = _record(tmp_path, video)
    summary = stream_summary(result.output)
    assert summary["frames"] == result.frames > 10
    codecs, seconds, first = _audio(result.output)
    assert codecs == ["aac"] and first == pytest.approx(0.0, abs=0.3), "the audio starts with the video"
    assert seconds == pytest.approx(_seconds(result.output), abs=0.5), "audio for the whole recording"
    assert _warnings(caplog) == []


@pytest.mark.slow
def test_a_stream_without_audio_is_recorded_without_a_word(tmp_path, caplog):
    from conftest import stream_summary, synthetic_frames, write_video

    video = write_video(tmp_path / "loop.mp4", synthetic_frames(20), fps=10, audio=None)
    result = _record(tmp_path, video)
    assert stream_summary(result.output)["frames"] == result.frames > 10
    assert _audio(result.output)[0] == [] and _warnings(caplog) == []


@pytest.mark.slow
def test_g711_in_a_stream_is_reencoded_to_aac(tmp_path, caplog):
    """G.711 (a camera's usual audio) goes into MP4 as AAC. FFmpeg's own NUT carries it with its
    type; MPEG-TS has no stream type for it (FFmpeg reads it as bytes of an unknown kind), so there
    the video is recorded and the warning says what was not kept."""
    from conftest import stream_summary, synthetic_frames, write_video

    video = write_video(tmp_path / "loop.mov", synthetic_frames(20), fps=10, audio="pcm_mulaw")
    result = _record(tmp_path, video, format="nut")
    summary = stream_summary(result.output)
    assert summary["frames"] == result.frames > 10
    codecs, seconds, _ = _audio(result.output)
    assert codecs == ["aac"] and seconds == pytest.approx(_seconds(result.output), abs=0.5)
    assert _warnings(caplog) == []

    result = _record(tmp_path, video, format="mpegts")
    assert stream_summary(result.output)["frames"] == result.frames > 10, "the video is recorded"
    assert _audio(result.output)[0] == []
    (said,) = _warnings(caplog)
    assert "1 data stream" in said and "G.711" in said and "not kept" in said


class _Camera:
    """cv2.VideoCapture stand-in: ``n`` synthetic frames at 50 fps, in real time; then unplugged."""

    def __init__(self, n: int):
        from conftest import synthetic_frames

        self.frames = synthetic_frames(n)

    def isOpened(self):
        return bool(self.frames)

    def read(self):
        if not self.frames:
            return False, None
        time.sleep(0.02)
        return True, self.frames.pop(0)

    def get(self, prop):
        return 50.0

    def release(self):
        pass


def test_a_reconnected_recording_stays_claimed_and_is_named_from_the_users_name(tmp_path, monkeypatch, caplog):
    """After a reconnect the run still holds the output the user named (a second run on it is refused,
    and cannot "recover" the open recording), the new file is ``<stem>_<time>`` (one time stamp, also
    when segmented) and the warnings name the files as they are."""
    import re

    from conftest import ColourDetector, stream_summary

    from anonymise import Anonymiser, Config, OutputError
    from anonymise.io.outputs import claim

    out = tmp_path / "door.mp4"
    claims = []

    def capture(index):  # each connection: is the output free for another run?
        try:
            with claim(out):
                claims.append("free")
        except OutputError:
            claims.append("held")
        return _Camera(12 if len(claims) <= 2 else 0)

    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", capture)
    report = Anonymiser(Config(), detector=ColourDetector()).run("0", out, reconnect=1.5, segment=600)
    first, second, *_, gave_up = report.results
    assert claims and set(claims) == {"held"}, claims
    assert gave_up.status == "failed" and "did not come back within 2 s" in gave_up.message
    stamped = re.compile(r"door_\d{8}-\d{6}(-\d+)?\.mp4")
    for r in (first, second):
        assert r.broken and stamped.fullmatch(r.output.name), r.output.name
        assert stream_summary(r.output)["frames"] == r.frames >= 1
        assert f"the recording so far is kept: {r.output.name}" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.output.name, second.output.name])


def test_a_stop_that_kept_the_recording_says_so(tmp_path, monkeypatch, capsys):
    """SIGTERM on a live source finishes its recording: the last line names it (exit 143), not
    "unfinished outputs were removed"."""
    import typer
    from conftest import Terminated, stream_summary

    from anonymise import Anonymiser, Config
    from anonymise.cli import _command

    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera(60))
    out = tmp_path / "door.mp4"
    with pytest.raises(typer.Exit) as stopped, _command(verbose=False):
        Anonymiser(Config(realtime=False), detector=Terminated()).run("0", out, segment=0)
    assert stopped.value.exit_code == 143
    assert stream_summary(out)["frames"] >= 5
    assert capsys.readouterr().err.strip() == f"Error: stopped by SIGTERM; the recording was kept: {out}"


def test_the_summary_of_a_live_run_that_reconnected_then_stopped_names_its_files(tmp_path, monkeypatch, capsys):
    """Ctrl-C after a reconnect ends the run with a "stopped" result among others: the summary table
    crashed on it (rich markup "[]stopped[/]") and the run exited 1 with a traceback."""
    from anonymise import cli
    from anonymise.jobs import BatchReport, FileResult

    monkeypatch.setattr(cli.out, "width", 300)  # one line per row
    first, second = tmp_path / "door.mp4", tmp_path / "door_20261207-080037 [b].mp4"
    report = BatchReport(
        [
            FileResult("tcp://cam", first, "done", 10, 1.0, message="the sender closed the connection", broken=True),
            FileResult("tcp://cam", second, "stopped", 5, 1.0),
        ]
    )
    cli._summary(report)
    text = capsys.readouterr().out
    assert str(first) in text and str(second) in text, text
    assert "1 done, 0 skipped, 0 failed, 1 stopped" in text
