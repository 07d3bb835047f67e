"""The threaded pipeline: order kept, and every stage's failure (decode, model, encode, Ctrl-C) stops it cleanly."""

import threading

import numpy as np
import pytest
from conftest import ColourDetector, read_frames, synthetic_frames, write_video

from anonymise import AnonymiseError, Anonymiser, Config
from anonymise.io import video as video_module
from anonymise.threads import Prefetch


def _src(tmp_path, n=20):
    frames = synthetic_frames(n)
    for i, f in enumerate(frames):
        f[:4, :4] = i * 10  # a frame counter in the corner
    return write_video(tmp_path / "in.mp4", frames, audio=None)


def _threads_left(before):
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_prefetch_keeps_order_and_reraises_in_the_consumer():
    def numbers():
        yield from range(50)
        raise ValueError("decoder broke")

    got = []
    with pytest.raises(ValueError, match="decoder broke"):
        for x in Prefetch(numbers(), maxsize=3):
            got.append(x)
    assert got == list(range(50))


def test_output_frames_keep_input_order_through_the_threads(tmp_path):
    anon = Anonymiser(Config(lookahead=5), detector=ColourDetector())
    anon.process_video(_src(tmp_path), tmp_path / "out.mp4")
    corners = [int(np.median(f[:4, :4])) for f in read_frames(tmp_path / "out.mp4")]
    assert len(corners) == 20 and all(abs(c - 10 * i) <= 6 for i, c in enumerate(corners))


@pytest.mark.parametrize("stage", ["decode", "model", "encode"])
def test_a_failing_stage_stops_the_run_and_leaves_nothing(tmp_path, monkeypatch, stage):
    src = _src(tmp_path)
    before = set(threading.enumerate())
    if stage == "decode":
        original = video_module.VideoReader.__iter__

        def broken(self):
            for i, frame in enumerate(original(self)):
                if i == 8:
                    raise OSError("disk read error")
                yield frame

        monkeypatch.setattr(video_module.VideoReader, "__iter__", broken)
    elif stage == "encode":
        original_write = video_module.VideoWriter.write
        calls = []

        def broken_write(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 6:
                raise OSError("disk full")
            return original_write(self, *args, **kwargs)

        monkeypatch.setattr(video_module.VideoWriter, "write", broken_write)

    class Detector(ColourDetector):
        def __call__(self, frames, imgsz=None):
            if stage == "model" and self.calls >= 6:
                raise KeyboardInterrupt  # Ctrl-C while the model runs (a model *error* fails closed instead)
            return super().__call__(frames, imgsz)

    anon = Anonymiser(Config(lookahead=2), detector=Detector())
    with pytest.raises((OSError, AnonymiseError, KeyboardInterrupt)):
        anon.process_video(src, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"], "no output, no temporary file"
    for t in _threads_left(before):
        t.join(timeout=5)
    assert not _threads_left(before), "the decode and encode threads ended"


def test_the_preview_meter_draws_fps_and_a_live_sources_delay_but_never_on_the_output():
    from anonymise.preview import FpsMeter

    frame = np.zeros((60, 320, 3), np.uint8)
    meter = FpsMeter()
    plain, live = meter.annotate(frame), meter.annotate(frame, "120 ms behind, 7 dropped")
    assert not frame.any(), "the frame itself is never drawn on"
    assert plain.any() and (live != 0).sum() > (plain != 0).sum(), "the live line is longer"


def test_a_write_error_names_the_output_asked_for_not_its_hidden_temporary_name(tmp_path, monkeypatch):
    src = _src(tmp_path)

    def denied(self, *args, **kwargs):
        raise PermissionError(1, "Operation not permitted", str(self.tmp))

    monkeypatch.setattr(video_module.VideoWriter, "write", denied)
    with pytest.raises(AnonymiseError) as caught:
        Anonymiser(Config(), detector=ColourDetector()).process_video(src, tmp_path / "out.mp4")
    message = str(caught.value)
    assert f"'{tmp_path / 'out.mp4'}'" in message and ".out" not in message and "partial" not in message, message
