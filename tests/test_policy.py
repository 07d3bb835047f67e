"""The scale policy: the small-person search runs where small people are, and sweeps every few frames."""

from __future__ import annotations

import numpy as np

from anonymise import Anonymiser, Config
from anonymise.detect import FrameDetections, large_imgsz
from anonymise.policy import RECENT, SWEEP_EVERY, WARMUP, ScalePolicy, smallest_person
from anonymise.types import Detections
from anonymise.video import Frame


def test_large_pass_runs_only_when_the_main_pass_enlarges_the_frame():
    assert large_imgsz(640, 480, 1280) == 640  # close-up: enlarged 2x for 32 px people -> a pass at its own size
    assert large_imgsz(480, 360, 960) == 480
    assert large_imgsz(768, 432, 1280) == 640  # at most 640 (the models' training size)
    assert large_imgsz(1280, 720, 1280) is None  # not enlarged: the main pass sees large people whole


def test_smallest_person_ignores_fragments_inside_a_taller_person():
    whole = [100, 0, 300, 480]
    fragments = [[120, 300, 200, 380], [150, 10, 250, 90]]
    assert smallest_person(np.array([whole, *fragments])) == 480
    assert smallest_person(np.array([whole, [400, 100, 420, 140]])) == 40  # a small person beside them
    assert smallest_person(np.zeros((0, 4))) is None


def _run(policy: ScalePolicy, frames: int, small_at=()) -> list[bool]:
    ran = []
    for t in range(frames):
        ran.append(policy.small(1))
        height = 40 if t in small_at else 400
        policy.observe([np.array([[0, 0, 100, height]], np.float32)])
    return ran


def test_only_large_people_seen_sweeps_every_k_frames():
    ran = _run(ScalePolicy(640, 480, 640, lookahead=30), 40)
    assert all(ran[:WARMUP])
    assert all(ran[t] for t in range(0, 40, SWEEP_EVERY)), "a sweep was skipped"
    assert sum(ran) < 40 // 2, "the small search ran although only large people were seen"
    gaps = np.diff(np.flatnonzero(ran))
    assert gaps.max() <= SWEEP_EVERY, "a part of the video went unsearched for longer than K frames"


def test_a_small_person_keeps_the_small_search_on():
    ran = _run(ScalePolicy(640, 480, 640, lookahead=30), 40, small_at={12})
    assert all(ran[13 : 13 + RECENT]), "the small search stopped while a small person was recent"


def test_no_skipping_without_lookahead_or_separate_large_pass():
    assert all(_run(ScalePolicy(640, 480, 640, lookahead=0), 20)), "live (no back-fill): every frame is searched"
    assert all(_run(ScalePolicy(1280, 720, None, lookahead=30), 20))


class _PassRecorder:
    """A detector that records which passes the stream asked for; sees one large person."""

    multiscale = True

    def __init__(self):
        self.calls = []
        self.batch = 1
        self.device = "cpu"

    def __call__(self, frames, imgsz=None, small=True, large=True):
        assert large, "a large person is around: the frame-scale pass must run"
        self.calls.append(small)
        people = Detections(np.array([[100, 0, 400, 480]], np.float32), [0.9], [0])
        return [FrameDetections(people, Detections.empty()) for _ in frames]


def test_the_stream_asks_for_the_frame_scale_pass_alone_between_sweeps():
    detector = _PassRecorder()
    anon = Anonymiser(Config(pose=False), detector=detector)
    frames = [Frame(np.full((480, 640, 3), 128, np.uint8), i) for i in range(20)]
    stream = anon.stream(lookahead=30)
    list(anon.anonymise_frames(frames, stream))
    assert len(detector.calls) == 20
    assert detector.calls.count(False) == stream.counts.small_skipped > 0
    assert all(detector.calls[t] for t in range(0, 20, SWEEP_EVERY))


def test_without_large_people_the_frame_scale_pass_sweeps_too():
    policy = ScalePolicy(480, 360, 480, lookahead=30)
    runs = []
    for t in range(30):
        runs.append(policy.passes(1))
        policy.observe([np.array([[0, 0, 20, 50]], np.float32)])  # a 50 px pedestrian: small, never large
    small, large = zip(*runs)
    assert all(small), "small people are around: the small search runs on every frame"
    assert all(large[t] for t in range(0, 30, SWEEP_EVERY)) and sum(large) < 15
    assert policy.skipped["large"] == 30 - sum(large)


def test_presets_set_the_sweep_and_the_small_search():
    from anonymise import ConfigError

    assert Config().preset == "balanced" and Config().sweep_every == SWEEP_EVERY
    thorough, fast = Config(preset="thorough"), Config(preset="FAST")
    assert thorough.sweep_every == 1 and all(_run(ScalePolicy(640, 480, 640, 30, every=thorough.sweep_every), 20))
    assert fast.preset == "fast" and fast.search_min_person == 48 and not fast.looks
    ran = _run(ScalePolicy(640, 480, 640, 30, every=fast.sweep_every), 40)
    assert np.diff(np.flatnonzero(ran)).max() == fast.sweep_every
    assert Config(min_person=64, preset="fast").search_min_person == 64
    import pytest

    with pytest.raises(ConfigError, match="preset must be one of thorough, balanced, fast"):
        Config(preset="quick")
