"""Tracking people across frames, and holding their masks through short detector drop-outs.

Tracking is Ultralytics' own ByteTrack (``ultralytics.trackers.BYTETracker``) fed with our
merged detections. A track the detector loses is not forgotten: for ``hold`` frames its
Kalman-predicted box (grown a little more each missed frame) is still masked.

The pipeline's look-ahead then works on the tracks in both directions (:class:`TrackHistory`):
a person who is first detected at frame *t* is also masked in the buffered frames before *t*
(they were walking in, too small or too blurred to be found), and a gap between two sightings
of the same track is filled with boxes interpolated between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detections import Detections

#: how much a held or back-filled box grows per frame away from a real sighting (fraction of its size)
GROWTH_PER_FRAME = 0.04
#: ... and at most
MAX_GROWTH = 0.5
#: a gap of at most this many frames between two sightings of a track also gets skeletons, interpolated
#: (the frames the policy's stride left to the frame-scale pass are gaps of 2 for the small people)
POSE_GAP = 3


def grow(box: np.ndarray, fraction: float) -> np.ndarray:
    """A box grown by ``fraction`` of its width/height on each side."""
    x1, y1, x2, y2 = np.asarray(box, np.float32)
    dx, dy = (x2 - x1) * fraction, (y2 - y1) * fraction
    return np.array([x1 - dx, y1 - dy, x2 + dx, y2 + dy], np.float32)


def between_joints(before: np.ndarray, after: np.ndarray, w: float) -> np.ndarray:
    """Keypoints (17, 3) a share ``w`` of the way from ``before`` to ``after``: positions
    interpolated, each joint as confident as its weaker end."""
    where = (1 - w) * before[:, :2] + w * after[:, :2]
    return np.concatenate([where, np.minimum(before[:, 2:], after[:, 2:])], axis=1)


def margin(frames_away: int) -> float:
    return min(MAX_GROWTH, GROWTH_PER_FRAME * max(frames_away, 0))


@dataclass
class _Track:
    first: int
    first_box: np.ndarray
    last: int
    last_box: np.ndarray
    extrapolated: bool = False
    last_keypoints: np.ndarray | None = None


class TrackHistory:
    """Back-fill and gap-fill for the frames still in the look-ahead buffer.

    ``observe(t, tracked)`` returns ``{frame_index: [boxes]}`` to add to earlier frames, at most
    ``depth`` frames back:

    - a track seen for the first time: its box, growing with the distance, in the frames before;
    - the same track's second sighting: boxes extrapolated backwards along its velocity, so a
      person who walked in before being detected is masked where they actually were;
    - a gap since the last sighting: boxes interpolated between the two sightings, and where the
      gap is short (``POSE_GAP``) and both sightings have keypoints, skeletons too (:attr:`poses`).
    """

    def __init__(self, depth: int):
        self.depth = depth
        self._tracks: dict[int, _Track] = {}
        #: boxes of the tracks seen for the first time in the last ``observe`` call
        self.new_boxes: list[np.ndarray] = []
        #: skeletons the last ``observe`` call interpolated: ``{frame_index: Detections}``
        self.poses: dict[int, Detections] = {}

    def observe(self, t: int, tracked: Detections) -> dict[int, list[np.ndarray]]:
        extra: dict[int, list[np.ndarray]] = {}
        self.new_boxes = []
        self.poses = {}
        if tracked.tracker_id is None:
            return extra
        skeletons: dict[int, list] = {}
        oldest = max(t - self.depth, 0)

        def add(j: int, box: np.ndarray) -> None:
            if j >= oldest:
                extra.setdefault(j, []).append(box)

        keypoints = tracked.keypoints if tracked.keypoints is not None else [None] * len(tracked)
        for box, track_id, points, score in zip(tracked.xyxy, tracked.tracker_id, keypoints, tracked.confidence):
            if track_id < 0:
                continue
            box = np.asarray(box, np.float32)
            track = self._tracks.get(int(track_id))
            if track is None:
                self.new_boxes.append(box)
                for j in range(oldest, t):
                    add(j, grow(box, margin(t - j)))
                self._tracks[int(track_id)] = _Track(t, box, t, box, last_keypoints=points)
                continue
            if not track.extrapolated:
                velocity = (box - track.first_box) / max(t - track.first, 1)
                for j in range(oldest, track.first):
                    add(j, grow(track.first_box - velocity * (track.first - j), margin(track.first - j)))
                track.extrapolated = True
            gap = t - track.last
            if 1 < gap <= self.depth + 1:
                for j in range(track.last + 1, t):
                    w = (j - track.last) / gap
                    between = (1 - w) * track.last_box + w * box
                    add(j, grow(between, margin(min(j - track.last, t - j))))
                    if gap <= POSE_GAP and points is not None and track.last_keypoints is not None and j >= oldest:
                        joints = between_joints(track.last_keypoints, points, w)
                        skeletons.setdefault(j, []).append((between, score, int(track_id), joints))
            track.last, track.last_box, track.last_keypoints = t, box, points
        # forget tracks that can no longer fill anything
        for track_id in [k for k, tr in self._tracks.items() if t - tr.last > 10 * max(self.depth, 1)]:
            del self._tracks[track_id]
        for j, found in skeletons.items():
            boxes, scores, ids, joints = zip(*found)
            self.poses[j] = Detections(
                np.stack(boxes),
                np.asarray(scores, np.float32),
                np.zeros(len(ids), np.int64),
                tracker_id=np.asarray(ids, np.int64),
                keypoints=np.stack(joints).astype(np.float32),
            )
        return extra
