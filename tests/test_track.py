"""Temporal hold (Ultralytics ByteTrack underneath), back-fill and gap-fill, on synthetic detections with gaps."""

import numpy as np

from anonymise import Detections
from anonymise.detect.tracker import PersonTracker
from anonymise.track import TrackHistory, grow


def _walker(t, speed=5.0):
    return np.array([[20 + speed * t, 50, 50 + speed * t, 130]], np.float32)


def _dets(box):
    return Detections(box, [0.9], [0]) if box is not None else Detections.empty()


def _covers(boxes, truth, share=0.9):
    """Whether the union of ``boxes`` covers ``share`` of ``truth``."""
    x1, y1, x2, y2 = truth.astype(int)
    canvas = np.zeros((400, 600), bool)
    for b in np.asarray(boxes).reshape(-1, 4).astype(int):
        canvas[max(b[1], 0) : b[3], max(b[0], 0) : b[2]] = True
    return canvas[y1:y2, x1:x2].mean() >= share


def test_a_lost_track_is_held_on_its_predicted_path_then_released():
    tracker = PersonTracker(conf=0.15, hold=5)
    gap = range(10, 14)  # the detector misses 4 frames
    for t in range(10):
        tracked, held = tracker.update(_dets(_walker(t)), (400, 600))
    assert tracked.tracker_id[0] >= 0 and len(held) == 0
    for t in gap:
        tracked, held = tracker.update(_dets(None), (400, 600))
        assert len(tracked) == 0 and len(held) == 1, f"frame {t}: the lost person must stay masked"
        assert _covers(held, _walker(t)[0]), f"frame {t}: the held box must follow the person"
    for _ in range(5):
        _, held = tracker.update(_dets(None), (400, 600))
    assert len(held) == 0, "after --hold frames the track is released"


def test_history_back_fills_a_new_track_and_fills_gaps():
    history = TrackHistory(depth=4)
    seen = Detections(_walker(10), [0.9], [0], tracker_id=[7])
    extra = history.observe(10, seen)
    assert sorted(extra) == [6, 7, 8, 9], "a new track is masked in the frames before its first detection"
    assert all(_covers(extra[j], seen.xyxy[0], 1.0) for j in extra), "back-filled boxes grow around the first sighting"
    again = Detections(_walker(13), [0.9], [0], tracker_id=[7])
    extra = history.observe(13, again)
    assert {11, 12} <= set(extra), "the gap between two sightings is filled"
    for j in (11, 12):
        assert _covers(extra[j], _walker(j)[0]), "with boxes interpolated along the path"
    far = history.observe(30, Detections(_walker(30), [0.9], [0], tracker_id=[7]))
    assert far == {}, "a gap longer than the look-ahead cannot be filled"


def test_history_extrapolates_back_along_the_velocity_of_a_walker():
    history = TrackHistory(depth=8)
    history.observe(10, Detections(_walker(10), [0.9], [0], tracker_id=[3]))
    extra = history.observe(11, Detections(_walker(11), [0.9], [0], tracker_id=[3]))
    for j in range(3, 10):
        assert _covers(extra[j], _walker(j)[0]), (
            f"frame {j}: the walker was further back, where the extrapolation puts them"
        )
    assert history.observe(12, Detections(_walker(12), [0.9], [0], tracker_id=[3])) == {}, "only once"


def test_history_ignores_untracked_detections():
    history = TrackHistory(depth=4)
    assert history.observe(5, Detections(_walker(5), [0.9], [0], tracker_id=[-1])) == {}
    assert history.observe(5, Detections(_walker(5), [0.9], [0])) == {}


def test_grow():
    assert grow(np.array([10, 10, 20, 30]), 0.5).tolist() == [5, 0, 25, 40]
