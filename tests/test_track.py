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


def test_a_strided_frame_carries_every_track_on_even_one_seen_once():
    # the small search sees the walker on even frames; the strided odd frames get the frame-scale pass
    # alone, which sees nobody: the track must neither be dropped (one frame old) nor lost
    tracker = PersonTracker(conf=0.15, hold=5)
    ids = set()
    for t in range(12):
        strided = t % 2 == 1
        tracked, held = tracker.update(_dets(None if strided else _walker(t)), (400, 600), coast=strided)
        if strided:
            assert len(held) == 1 and tracker.coasted_ids == tracker.held_ids, f"frame {t}: not carried on"
            # from its second sighting on it has a velocity (before, the stream's gap-fill covers the frame)
            assert t < 3 or _covers(held, _walker(t)[0]), f"frame {t}: the carried box must follow the person"
        else:
            assert tracker.coasted_ids == [] and len(held) == 0
            ids.update(tracked.tracker_id.tolist())
    assert len(ids) == 1 and -1 not in ids, f"the walker changed track: {ids}"
    # a person the frame-scale pass does see on the strided frame is tracked, not carried
    tracked, held = tracker.update(_dets(_walker(12)), (400, 600), coast=True)
    assert tracked.tracker_id.tolist() == list(ids) and len(held) == 0


def test_history_interpolates_skeletons_across_short_gaps_only():
    from anonymise.track import POSE_GAP

    def seen(t, track_id=4):
        box = _walker(t)
        points = np.zeros((1, 17, 3), np.float32)
        points[0, :, 0] = box[0, 0] + np.arange(17)
        points[0, :, 1] = box[0, 1] + 2 * np.arange(17)
        points[0, :, 2] = 0.9 if t < 20 else 0.4
        return Detections(box, [0.8], [0], tracker_id=[track_id], keypoints=points)

    history = TrackHistory(depth=8)
    history.observe(10, seen(10))
    assert history.poses == {}
    history.observe(12, seen(12))  # frame 11 missed
    skeleton = history.poses[11]
    assert skeleton.tracker_id.tolist() == [4] and np.allclose(skeleton.xyxy, _walker(11))
    assert np.allclose(skeleton.keypoints[0, :, :2], (seen(10).keypoints[0, :, :2] + seen(12).keypoints[0, :, :2]) / 2)
    history.observe(20, seen(20))  # a long gap: boxes (gap-fill), no skeletons
    assert history.poses == {}
    history.observe(22, seen(22))
    assert np.allclose(history.poses[21].keypoints[0, :, 2], 0.4), "a joint is as confident as its weaker end"
    assert POSE_GAP >= 2


def test_a_strided_frame_also_masks_the_people_the_tracker_did_not_take():
    # scored under ByteTrack's thresholds, a person seen by the search has no track: the strided frame
    # after it masks their box all the same (on the crowd row a still man in a dark coat was shown so)
    tracker = PersonTracker(conf=0.15, hold=5)
    faint = Detections(_walker(0, speed=0), [0.05], [0])
    tracked, _ = tracker.update(faint, (400, 600))
    tracked, _ = tracker.update(faint, (400, 600))
    assert tracked.tracker_id.tolist() == [-1]
    _, held = tracker.update(_dets(None), (400, 600), coast=True)
    assert len(held) == 1 and tracker.coasted_ids == [-1] and _covers(held, _walker(0, speed=0)[0], 1.0)
    _, held = tracker.update(_dets(None), (400, 600))  # an ordinary frame: a miss, no track to hold
    assert len(held) == 0
