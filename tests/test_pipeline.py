"""The Anonymiser on files, folders, images, cameras and streams, with a synthetic detector."""

import functools
import http.server
import threading
import time
from pathlib import Path

import av
import cv2
import pytest
from conftest import (
    ColourDetector,
    is_person_colour,
    read_frames,
    sigterm_now,
    stream_summary,
    synthetic_frames,
    write_video,
)

from anonymise import Anonymiser, Config, ConfigError, SourceError
from anonymise.jobs import plan_jobs
from anonymise.pipeline import LIVE_LOOKAHEAD
from anonymise.sidecars import Extras


def test_video_file_end_to_end_with_audio(tmp_path):
    src = write_video(tmp_path / "walk.mp4", synthetic_frames(30), fps=10, audio="aac")
    anon = Anonymiser(Config(), detector=ColourDetector())
    report = anon.run(src)
    (result,) = report.results
    dst = tmp_path / "walk_anonymised.mp4"
    assert result.status == "done" and result.output == dst and result.frames == 30
    s = stream_summary(dst)
    assert s["frames"] == 30 and s["duration"] == pytest.approx(3.0) and s["audio"] == ["aac"] and s["codec"] == "h264"
    assert not any(is_person_colour(f, 60).sum() > 5 for f in read_frames(dst))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.mp4", "walk_anonymised.mp4"]
    anon.run(src, tmp_path / "silent.mp4", audio=False)
    assert stream_summary(tmp_path / "silent.mp4")["audio"] == []


def test_image_in_image_out(tmp_path):
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), synthetic_frames(1)[0])
    report = Anonymiser(Config(), detector=ColourDetector()).run(src)
    out = cv2.imread(str(tmp_path / "photo_anonymised.png"))
    assert report.ok and out.shape == (120, 160, 3)
    assert not is_person_colour(out).any()


def test_folder_mirrors_tree_skips_existing_and_survives_a_bad_file(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    write_video(root / "a.mp4", synthetic_frames(8), audio=None)
    cv2.imwrite(str(root / "sub" / "b.jpg"), synthetic_frames(1)[0])
    (root / "sub" / "broken.mp4").write_bytes(b"\x00" * 1000)
    (root / "notes.txt").write_text("not media")
    anon = Anonymiser(Config(), detector=ColourDetector())
    report = anon.run(root)
    out = tmp_path / "in_anonymised"
    status = {Path(r.source).name: r.status for r in report.results}
    assert status == {"a.mp4": "done", "b.jpg": "done", "broken.mp4": "failed"}
    assert not report.ok and "broken.mp4" in report.failed[0].message
    assert (out / "a.mp4").exists() and (out / "sub" / "b.jpg").exists() and not (out / "sub" / "broken.mp4").exists()
    assert not [p for p in out.rglob(".*")], "no partial files left behind"
    again = anon.run(root)
    assert {Path(r.source).name: r.status for r in again.results}["a.mp4"] == "skipped"
    forced = anon.run(root, overwrite=True)
    assert {Path(r.source).name: r.status for r in forced.results}["a.mp4"] == "done"


class _Interrupt(ColourDetector):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def __call__(self, frames, imgsz=None):
        if self.calls + len(frames) >= self.at:
            raise KeyboardInterrupt
        return super().__call__(frames)


def test_ctrl_c_on_a_file_leaves_nothing(tmp_path):
    src = write_video(tmp_path / "v.mp4", synthetic_frames(40), audio="aac")
    anon = Anonymiser(Config(lookahead=0), detector=_Interrupt(at=25))
    with pytest.raises(KeyboardInterrupt):
        anon.run(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def _signalled(cls, before: bool, nth: int = 1):
    """``cls``, with SIGTERM raised in its ``nth`` constructor call (before or after the original runs)."""
    calls = []

    class Signalled(cls):
        def __init__(self, *args, **kwargs):
            calls.append(1)
            if before and len(calls) == nth:
                sigterm_now()
            super().__init__(*args, **kwargs)
            if not before and len(calls) == nth:
                sigterm_now()

    return Signalled


@pytest.mark.parametrize("where", ["encoder thread", "keypoint file", "progress bar"])
def test_a_signal_while_the_outputs_are_being_created_leaves_nothing(tmp_path, monkeypatch, sigterm_stops, where):
    # the moment a stop signal is likeliest to hit: just after the first partial file appears
    from anonymise.errors import Stopped
    from anonymise.io.keypoints import KeypointWriter
    from anonymise.progress import Progress
    from anonymise.threads import WriterThread

    if where == "encoder thread":  # the video's partial file exists, its thread does not yet
        monkeypatch.setattr("anonymise.pipeline.WriterThread", _signalled(WriterThread, before=True))
    elif where == "keypoint file":  # the keypoints' partial file exists, its owner does not know it yet
        monkeypatch.setattr("anonymise.sidecars.KeypointWriter", _signalled(KeypointWriter, before=False))
    else:  # every file is open, the frames have not begun
        monkeypatch.setattr(Progress, "start_file", lambda *args: sigterm_now())
    src = write_video(tmp_path / "v.mp4", synthetic_frames(10), audio="aac")
    with pytest.raises(Stopped):
        Anonymiser(Config(lookahead=0), detector=ColourDetector()).run(src, extras=Extras(keypoints="jsonl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_ctrl_c_on_a_camera_finishes_a_valid_file(tmp_path, monkeypatch):
    video = write_video(tmp_path / "cam.mp4", synthetic_frames(40), audio=None)
    real = cv2.VideoCapture
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: real(str(video)))
    monkeypatch.chdir(tmp_path)
    anon = Anonymiser(Config(realtime=False), detector=_Interrupt(at=20))  # every frame: Ctrl-C comes at the 20th
    report = anon.run("0")
    (result,) = report.results
    assert result.status == "stopped" and result.output == tmp_path / "camera0_anonymised.mp4"
    s = stream_summary(result.output)
    assert s["frames"] == result.frames and s["codec"] == "h264"
    assert result.frames == 19, "every frame detected before the stop is written: the look-ahead's, and the queue's"
    assert not any(is_person_colour(f, 60).sum() > 5 for f in read_frames(result.output))


def test_a_live_stop_writes_every_frame_already_detected(tmp_path, monkeypatch):
    """A stop while the detect stage has run ahead: the batches it queued are written too (before,
    up to a queue's worth of frames read before the stop was lost from the recording's end)."""
    from anonymise.progress import Progress

    video = write_video(tmp_path / "cam.mp4", synthetic_frames(60), audio=None)
    real = cv2.VideoCapture
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: real(str(video)))
    monkeypatch.chdir(tmp_path)
    advanced = []

    def slow_then_stop(self, *args, **kwargs):  # a slow consumer: the detect stage runs ahead; Ctrl-C at the 5th
        advanced.append(1)
        if len(advanced) == 5:
            raise KeyboardInterrupt
        time.sleep(0.05)

    monkeypatch.setattr(Progress, "advance", slow_then_stop)
    detector = ColourDetector()
    (result,) = Anonymiser(Config(realtime=False, lookahead=2), detector=detector).run("0").results
    assert result.status == "stopped"
    assert detector.frames_seen >= 12, "the detect stage did not run ahead"
    assert result.frames >= detector.frames_seen - 2, (result.frames, detector.frames_seen)
    assert stream_summary(result.output)["frames"] == result.frames


def test_unreadable_camera_is_a_source_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    anon = Anonymiser(Config(), detector=ColourDetector())
    with pytest.raises(SourceError, match="cannot open camera 97"):
        anon.run("97")
    assert list(tmp_path.iterdir()) == []


def test_http_stream_source(tmp_path):
    """A URL source, served from this machine's loopback only."""
    (tmp_path / "www").mkdir()
    write_video(tmp_path / "www" / "s.mp4", synthetic_frames(15), audio="aac")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/s.mp4"
        report = Anonymiser(Config(), detector=ColourDetector()).run(url, tmp_path / "out.mp4")
    finally:
        server.shutdown()
    assert report.results[0].frames == 15
    s = stream_summary(tmp_path / "out.mp4")
    assert s["frames"] == 15 and s["audio"] == ["aac"]


def test_part_of_a_file_is_anonymised_alone_with_its_audio(tmp_path):
    from anonymise.io.video import Span

    src = write_video(tmp_path / "walk.mp4", synthetic_frames(40), audio="aac")
    anon = Anonymiser(Config(pose=False), detector=ColourDetector())
    report = anon.run(src, tmp_path / "part.mp4", span=Span(start=1.5, frames=12))
    assert report.results[0].frames == 12 and not report.results[0].message, "no 'truncated' warning for a span"
    s = stream_summary(tmp_path / "part.mp4")
    assert s["frames"] == 12 and s["audio"] == ["aac"] and s["duration"] == pytest.approx(1.2, abs=0.15)
    assert not any(is_person_colour(f, 60).sum() > 5 for f in read_frames(tmp_path / "part.mp4"))
    with pytest.raises(ConfigError, match="take files, not a camera"):
        anon.run("0", tmp_path / "cam.mp4", span=Span(start=1))


class _Camera:
    """cv2.VideoCapture stand-in: ``n`` synthetic frames at 50 fps, in real time."""

    def __init__(self, n: int = 60):
        self.frames = synthetic_frames(n)
        self.read_count = 0

    def isOpened(self):
        return True

    def read(self):
        if self.read_count >= len(self.frames):
            return False, None
        time.sleep(0.02)
        self.read_count += 1
        return True, self.frames[self.read_count - 1].copy()

    def get(self, prop):
        return 50.0

    def release(self):
        pass


class _Slow(ColourDetector):
    def __call__(self, frames, imgsz=None):
        time.sleep(0.08)  # the models: 4x slower than the camera
        return super().__call__(frames, imgsz)


def test_a_camera_in_real_time_drops_stale_frames_and_keeps_capture_time(tmp_path, monkeypatch):
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera())
    monkeypatch.chdir(tmp_path)
    anon = Anonymiser(Config(lookahead=0), detector=_Slow())  # the look-ahead's own delay aside
    started = time.monotonic()
    (result,) = anon.run("0").results
    wall = time.monotonic() - started
    assert result.status == "done" and result.dropped >= 20 and result.frames + result.dropped == 60
    assert result.latency is not None and result.latency[0] < 0.5, "the delay stays bounded"
    s = stream_summary(result.output)
    assert s["frames"] == result.frames
    assert s["duration"] == pytest.approx(1.2, abs=0.25) and s["duration"] < wall, "duration = capture time"
    assert not any(is_person_colour(f, 60).sum() > 5 for f in read_frames(result.output))
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera(20))
    (every,) = Anonymiser(Config(realtime=False), detector=_Slow()).run("0").results
    assert every.frames == 20 and every.dropped == 0 and every.latency is None, "--no-realtime: every frame"


def test_a_live_source_the_models_cannot_keep_up_with_drops_frames_and_never_searches_less(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr("anonymise.policy.LIVE_WINDOW_S", 0.4)
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera(80))
    monkeypatch.chdir(tmp_path)

    class _Configured(_Slow):
        """The slow models, reading their settings as the real detector does."""

        def __init__(self):
            super().__init__()
            self.config = Config()
            self.presets = []

        def __call__(self, frames, imgsz=None):
            self.presets.append(self.config.preset)
            return super().__call__(frames, imgsz)

    detector = _Configured()
    anon = Anonymiser(Config(), detector=detector)
    streams = []
    original = anon.stream
    monkeypatch.setattr(anon, "stream", lambda *a, **k: streams.append(original(*a, **k)) or streams[-1])
    (result,) = anon.run("0").results
    assert result.status == "done" and result.dropped > 0
    assert caplog.text.count("under the 15 fps to hold: stale frames are dropped") == 1, "said once"
    (stream,) = streams
    assert stream.config.preset == "balanced" and set(detector.presets) == {"balanced"}
    assert stream.detector.wrapped is detector
    assert stream.lookahead == LIVE_LOOKAHEAD and stream.fail_closed, "live: the file's look-ahead and motion guard"
    assert not any(is_person_colour(f, 60).sum() > 5 for f in read_frames(result.output))
    # a camera the models keep up with is left alone
    from anonymise.policy import LivePolicy

    clock = iter([0.0, *[0.05 * i for i in range(1, 200)]])
    fast = LivePolicy(20.0, clock=lambda: next(clock))
    assert not any(fast.processed(i) for i in range(150)) and fast.rate is None
    clock = iter([0.0, *[0.2 * i for i in range(1, 200)]])
    slow_source = LivePolicy(30.0, clock=lambda: next(clock))  # 5 fps arrive, 5 fps processed: nothing dropped
    assert not any(slow_source.processed(0) for _ in range(50)), "a slow source is not slow models"
    clock = iter([0.0, *[0.2 * i for i in range(1, 200)]])
    slow = LivePolicy(30.0, clock=lambda: next(clock))
    said = [slow.processed(5 * i) for i in range(100)]
    assert [r for r in said if r] == [pytest.approx(5.0)], "said once, with the rate"


def test_a_live_small_person_only_the_enlarged_search_finds_is_masked_in_the_recording(tmp_path, monkeypatch):
    """A camera whose small, still person only the deep search (1280 px) finds: live sources get the
    file's look-ahead, sweeps and back-fill, so no frame of the recording shows them (before, a live
    source ran no deep search and left them whole)."""
    from conftest import MAGENTA, scene
    from test_policy import _FaintScene

    bg = scene(120, 160)
    person = bg.copy()
    person[50:80, 30:40] = MAGENTA
    camera = _Camera(0)
    camera.frames = [bg] * 3 + [person] * 37
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: camera)
    monkeypatch.chdir(tmp_path)
    detector = _FaintScene()
    (result,) = Anonymiser(Config(pose=False, realtime=False), detector=detector).run("0").results
    frames = read_frames(result.output)
    assert len(frames) == result.frames == 40, "every frame recorded, the look-ahead's last ones too"
    for i, f in enumerate(frames):
        assert is_person_colour(f, 60).sum() <= 5, f"frame {i}: the small person is visible"
    assert 1280 in detector.calls and None in detector.calls, "deep sweeps between cheaper calls, as for a file"


class _Unplugged(_Camera):
    def isOpened(self):
        return False


def test_a_camera_that_drops_out_keeps_its_recording_and_reconnects_into_a_new_file(tmp_path, monkeypatch, caplog):
    cameras = iter([_Camera(12), _Unplugged(), _Camera(8)])  # then unplugged for good
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: next(cameras, _Unplugged()))
    monkeypatch.chdir(tmp_path)
    report = Anonymiser(Config(), detector=ColourDetector()).run("0", reconnect=4)
    first, second, gave_up = report.results
    assert first.output == tmp_path / "camera0_anonymised.mp4" and first.broken and first.status == "done"
    assert stream_summary(first.output)["frames"] == first.frames >= 1, "the recording before the drop-out is kept"
    assert second.output.name.startswith("camera0_anonymised_2") and second.broken
    assert stream_summary(second.output)["frames"] == second.frames >= 1
    assert gave_up.status == "failed" and "did not come back within 4 s" in gave_up.message and not report.ok
    assert "stopped delivering frames" in caplog.text and "reconnecting (for up to 4 s)" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no hidden litter"


def test_a_live_recording_is_cut_into_segments_named_by_start_time(tmp_path, monkeypatch):
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera(75))  # 1.5 s at 50 fps
    monkeypatch.chdir(tmp_path)
    anon = Anonymiser(Config(realtime=False), detector=ColourDetector())
    plan = plan_jobs("0", segment=1)
    (result,) = anon.run_plan(plan).results
    assert len(result.segments) == 2 and result.output == result.segments[-1]
    assert all(p.name.startswith("camera0_anonymised_2") for p in result.segments)
    summaries = [stream_summary(p) for p in result.segments]
    assert sum(s["frames"] for s in summaries) == result.frames == 75, "every frame, in one file or the next"
    assert summaries[0]["duration"] == pytest.approx(1.0, abs=0.15), "a segment lasts --segment seconds"
    assert not (tmp_path / "camera0_anonymised.mp4").exists() and not list(tmp_path.glob(".*"))
    for p in result.segments:
        with av.open(str(p)) as c:
            assert next(c.decode(video=0)).time == pytest.approx(0.0, abs=0.03), "each file starts at 0"


def test_a_signal_as_a_segment_begins_finishes_it_and_leaves_nothing_hidden(tmp_path, monkeypatch, sigterm_stops):
    from anonymise.errors import Stopped
    from anonymise.io.keypoints import read_keypoints
    from anonymise.threads import WriterThread

    camera = _Camera(75)
    camera.frames = synthetic_frames(75, speed=0)  # someone on every frame: keypoints on every frame
    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: camera)
    # the second file's partial exists, its encoder thread does not yet
    monkeypatch.setattr("anonymise.pipeline.WriterThread", _signalled(WriterThread, before=True, nth=2))
    monkeypatch.chdir(tmp_path)
    anon = Anonymiser(Config(realtime=False), detector=ColourDetector(keypoints=True))
    with pytest.raises(Stopped):
        anon.run_plan(plan_jobs("0", segment=1, extras=Extras(keypoints="jsonl")))
    videos = sorted(tmp_path.glob("camera0_anonymised_2*.mp4"))
    assert len(videos) == 2, "the first file, and the second with the frame it began with"
    first, second = (stream_summary(v)["frames"] for v in videos)
    assert first >= 40 and second >= 1, "both files finished and playable"
    for video, frames in zip(videos, (first, second)):  # every frame in the video has its keypoints
        records = list(read_keypoints(video.with_name(f"{video.stem}.keypoints.jsonl")))
        assert len({r["frame"] for r in records}) == frames, f"{video.name}: frames without keypoints"
    assert not list(tmp_path.glob(".*")), "no hidden partial left"


def test_a_segmented_recording_has_keypoints_and_one_report_per_run(tmp_path, monkeypatch):
    import json

    from anonymise.io.keypoints import read_keypoints
    from anonymise.sidecars import Extras

    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera(75))  # 1.5 s at 50 fps
    monkeypatch.chdir(tmp_path)
    anon = Anonymiser(Config(realtime=False), detector=ColourDetector(keypoints=True))
    plan = plan_jobs("0", segment=1, extras=Extras(keypoints="jsonl", report=True))
    (result,) = anon.run_plan(plan).results
    assert len(result.segments) == 2
    segments = []
    for video in result.segments:
        keypoints = video.with_name(f"{video.stem}.keypoints.jsonl")
        assert keypoints.is_file(), f"no keypoints beside {video.name}"
        segments.append(list(read_keypoints(keypoints)))
    first, second = segments
    assert first and min(r["time"] for r in first) == pytest.approx(0.0, abs=0.03), "timed from the segment's start"
    assert max(r["time"] for r in first) < 1.0 and all(r["time"] < 0.6 for r in second)
    # the same records as one unsegmented recording: none lost or doubled at the cut
    (whole,) = (
        Anonymiser(Config(realtime=False), detector=ColourDetector(keypoints=True))
        .run_plan(plan_jobs("0", output=tmp_path / "whole.mp4", extras=Extras(keypoints="jsonl")))
        .results
    )
    assert len(first) + len(second) == len(list(read_keypoints(tmp_path / "whole.keypoints.jsonl"))) > 0
    assert not (tmp_path / "camera0_anonymised.keypoints.jsonl").exists() and not list(tmp_path.glob(".*"))
    report = json.loads(result.output.with_name(f"{result.output.stem}.report.json").read_text())
    assert report["frames"] == 75 and report["segments"] == [str(p) for p in result.segments]


def test_sigterm_on_a_camera_finishes_the_recording_then_stops(tmp_path, monkeypatch):
    from conftest import Terminated

    from anonymise.errors import Stopped

    monkeypatch.setattr("anonymise.io.camera.cv2.VideoCapture", lambda index: _Camera(60))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Stopped):
        Anonymiser(Config(realtime=False), detector=Terminated()).run("0", segment=0)
    (kept,) = tmp_path.glob("camera0_anonymised*.mp4")
    assert stream_summary(kept)["frames"] >= 5, "the recording is finished and playable"
    assert not list(tmp_path.glob(".*")), "no hidden partial left"


def test_a_runs_one_off_calibration_is_reported_apart_from_its_speed(tmp_path, capsys):
    """The models' one-off work inside the run (an int8 calibration: here 0.4 s on the first call) is
    the result's ``one_off``; its speed without it is ``steady_fps``, and the CLI's line says both."""
    from anonymise import cli
    from anonymise.jobs import BatchReport

    class Calibrating(ColourDetector):
        one_off_seconds = 0.0

        def __call__(self, frames, imgsz=None):
            if not self.one_off_seconds:
                time.sleep(0.4)
                self.one_off_seconds += 0.4
            return super().__call__(frames, imgsz)

    src = write_video(tmp_path / "in.mp4", synthetic_frames(8), audio=None)
    anon = Anonymiser(Config(pose=False), detector=Calibrating())
    result = anon.process_video(src, tmp_path / "out.mp4")
    assert result.one_off == pytest.approx(0.4) and result.seconds > 0.4
    assert result.steady_fps == pytest.approx(8 / (result.seconds - 0.4))
    again = anon.process_video(src, tmp_path / "again.mp4")
    assert again.one_off == 0.0 and again.steady_fps == again.fps, "calibrated once: none in the next run"
    cli._summary(BatchReport([result]))
    assert "one-off" not in capsys.readouterr().out, "under a second (ONE_OFF_SHOWN): not worth a word"
    result.one_off = 2.0
    result.seconds = 4.0
    cli._summary(BatchReport([result]))
    assert "(8 frames, 2.0 fps; 4.0 fps without the one-off int8 calibration (2 s, cached))" in capsys.readouterr().out
    cli.out.width = 400  # the table folds its cells on a narrow terminal
    try:
        cli._summary(BatchReport([result, again]))  # a batch: the first file's row says it
    finally:
        cli.out.width = None
    assert capsys.readouterr().out.count("2.0 (4.0 after the int8 calibration)") == 1
