"""Ultralytics' ByteTrack over our merged detections, with a hold of lost tracks (see :mod:`anonymise.track`)."""

from __future__ import annotations

import numpy as np

from ..detections import Detections
from ..track import grow, margin
from . import yolo  # noqa: F401 - Ultralytics' offline environment before its tracker loads


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

        data = np.concatenate(
            [people.xyxy, people.confidence[:, None], people.class_id[:, None].astype(np.float32)], axis=1
        )
        tracks = self._tracker.update(Boxes(data.astype(np.float32), frame_shape))
        ids = np.full(len(people), -1, np.int64)
        for row in np.asarray(tracks).reshape(-1, 8):
            ids[int(row[7])] = int(row[4])
        tracked = Detections(people.xyxy, people.confidence, people.class_id, people.mask, ids, people.keypoints)
        return tracked, self.held_boxes()

    def held_boxes(self) -> np.ndarray:
        """Predicted boxes of tracks lost within ``hold`` frames, grown with the time they are lost."""
        now = self._tracker.frame_id
        boxes, ids = [], []
        for track in self._tracker.lost_stracks:
            lost_for = now - track.end_frame
            if 0 < lost_for <= self.hold:
                boxes.append(grow(track.xyxy, margin(lost_for)))
                ids.append(int(track.track_id))
        #: the track ids of the boxes the last call returned
        self.held_ids = ids
        return np.asarray(boxes, np.float32).reshape(-1, 4)
