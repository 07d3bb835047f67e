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

from .types import Detections

#: how much a held or back-filled box grows per frame away from a real sighting (fraction of its size)
GROWTH_PER_FRAME = 0.04
#: ... and at most
MAX_GROWTH = 0.5


def grow(box: np.ndarray, fraction: float) -> np.ndarray:
    """A box grown by ``fraction`` of its width/height on each side."""
    x1, y1, x2, y2 = np.asarray(box, np.float32)
    dx, dy = (x2 - x1) * fraction, (y2 - y1) * fraction
    return np.array([x1 - dx, y1 - dy, x2 + dx, y2 + dy], np.float32)


def margin(frames_away: int) -> float:
    return min(MAX_GROWTH, GROWTH_PER_FRAME * max(frames_away, 0))


class PersonTracker:
    """ByteTrack (Ultralytics) over :class:`Detections`, with a hold of lost tracks.

    ``update`` returns the detections with ``tracker_id`` set (-1 for those the tracker did not
    take, e.g. below its thresholds; they are masked all the same) and the boxes of tracks that
    were lost within the last ``hold`` frames.
    """

    def __init__(self, conf: float = 0.15, hold: int = 15):
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        self.hold = hold
        args = IterableSimpleNamespace(
            tracker_type="bytetrack",
            track_high_thresh=max(conf, 0.1),  # recall first: every detection we mask can start a track
            track_low_thresh=min(0.1, conf),
            new_track_thresh=max(conf, 0.1),
            track_buffer=max(hold, 1),
            match_thresh=0.8,
            fuse_score=True,
        )
        self._tracker = BYTETracker(args)

    def update(self, people: Detections, frame_shape: tuple[int, int]) -> tuple[Detections, np.ndarray]:
        from ultralytics.engine.results import Boxes

        data = np.concatenate([people.xyxy, people.confidence[:, None], people.class_id[:, None].astype(np.float32)], axis=1)
        tracks = self._tracker.update(Boxes(data.astype(np.float32), frame_shape))
        ids = np.full(len(people), -1, np.int64)
        for row in np.asarray(tracks).reshape(-1, 8):
            ids[int(row[7])] = int(row[4])
        tracked = Detections(people.xyxy, people.confidence, people.class_id, people.mask, ids, people.keypoints)
        return tracked, self.held_boxes()

    def held_boxes(self) -> np.ndarray:
        """Predicted boxes of tracks lost within ``hold`` frames, grown with the time they are lost."""
        now = self._tracker.frame_id
        boxes = []
        for track in self._tracker.lost_stracks:
            lost_for = now - track.end_frame
            if 0 < lost_for <= self.hold:
                boxes.append(grow(track.xyxy, margin(lost_for)))
        return np.asarray(boxes, np.float32).reshape(-1, 4)


@dataclass
class _Sighting:
    frame: int
    box: np.ndarray


class TrackHistory:
    """Back-fill and gap-fill for the frames still in the look-ahead buffer.

    ``observe(t, tracked)`` returns ``{frame_index: [boxes]}`` to add to earlier frames:
    interpolated boxes for a gap of up to ``depth`` frames since the track's last sighting,
    or, for a track seen for the first time, its box (growing with the distance) in the
    ``depth`` frames before ``t``.
    """

    def __init__(self, depth: int):
        self.depth = depth
        self._last: dict[int, _Sighting] = {}

    def observe(self, t: int, tracked: Detections) -> dict[int, list[np.ndarray]]:
        extra: dict[int, list[np.ndarray]] = {}
        if tracked.tracker_id is None or self.depth <= 0:
            return extra
        for box, track_id in zip(tracked.xyxy, tracked.tracker_id):
            if track_id < 0:
                continue
            last = self._last.get(int(track_id))
            if last is None:
                first = max(t - self.depth, 0)
                for j in range(first, t):
                    extra.setdefault(j, []).append(grow(box, margin(t - j)))
            elif 1 < t - last.frame <= self.depth + 1:
                gap = t - last.frame
                for j in range(last.frame + 1, t):
                    w = (j - last.frame) / gap
                    between = (1 - w) * last.box + w * box
                    extra.setdefault(j, []).append(grow(between, margin(min(j - last.frame, t - j))))
            self._last[int(track_id)] = _Sighting(t, np.asarray(box, np.float32))
        # forget tracks that can no longer fill anything
        for track_id in [k for k, s in self._last.items() if t - s.frame > 10 * max(self.depth, 1)]:
            del self._last[track_id]
        return extra
