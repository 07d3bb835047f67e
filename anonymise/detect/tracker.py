"""Ultralytics' ByteTrack over our merged detections, with a hold of lost tracks (see :mod:`anonymise.track`)."""

from __future__ import annotations

import copy

import numpy as np

from ..detections import Detections, box_iou
from ..track import grow, margin
from . import yolo  # noqa: F401 - Ultralytics' offline environment before its tracker loads

#: a track a detection of the frame overlaps this much (IoU) is seen: it is not carried (``coast``)
COAST_SEEN_IOU = 0.3


class PersonTracker:
    """ByteTrack (Ultralytics) over :class:`Detections`, with a hold of lost tracks.

    ``update`` returns the detections with ``tracker_id`` set (-1 for those the tracker did not
    take, e.g. below its thresholds; they are masked all the same) and the boxes of tracks that
    were lost within the last ``hold`` frames.

    ``coast``: the frame got the frame-scale pass alone (the policy's stride, see
    :class:`anonymise.policy.ScalePolicy`), which cannot see the small people. Each current track
    that no detection of the frame overlaps is carried on along its motion (its predicted box fed
    to ByteTrack as a detection), so that a track seen only by the small search is neither lost
    nor, when it is one frame old, dropped; those boxes are returned with the held ones (masked),
    with the boxes of the last search's people ByteTrack did not take (below its thresholds).
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
        self._untracked = np.zeros((0, 4), np.float32)  # the last search's people ByteTrack did not take

    def update(
        self, people: Detections, frame_shape: tuple[int, int], coast: bool = False
    ) -> tuple[Detections, np.ndarray]:
        from ultralytics.engine.results import Boxes

        data = np.concatenate(
            [people.xyxy, people.confidence[:, None], people.class_id[:, None].astype(np.float32)], axis=1
        )
        carried, carried_ids = self._coasting(people.xyxy) if coast else (np.zeros((0, 6), np.float32), [])
        tracks = self._tracker.update(Boxes(np.concatenate([data, carried]).astype(np.float32), frame_shape))
        ids = np.full(len(people) + len(carried), -1, np.int64)
        for row in np.asarray(tracks).reshape(-1, 8):
            ids[int(row[7])] = int(row[4])
        tracked = Detections(
            people.xyxy, people.confidence, people.class_id, people.mask, ids[: len(people)], people.keypoints
        )
        held = self.held_boxes()
        if coast:  # and the people the last search saw whom ByteTrack did not take (low scores): masked too
            untracked = self._untracked
            if len(untracked) and len(people):
                untracked = untracked[(box_iou(untracked, people.xyxy) < COAST_SEEN_IOU).all(axis=1)]
            carried_ids = [*carried_ids, *[-1] * len(untracked)]
            carried = np.concatenate([carried[:, :4], untracked])
        else:
            self._untracked = people.xyxy[tracked.tracker_id < 0]
        #: the track ids the last call carried on (``coast``; among :attr:`held_ids`, -1: untracked)
        self.coasted_ids = carried_ids
        if len(carried):
            held = np.concatenate([held, [grow(box, margin(1)) for box in carried[:, :4]]]).astype(np.float32)
            self.held_ids = [*self.held_ids, *carried_ids]
        return tracked, held

    def _coasting(self, boxes: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """(rows of xyxy, score, class) and ids: each current track's box one frame on along its
        velocity (as ByteTrack predicts it), where no box of ``boxes`` overlaps it (IoU 0.3)."""
        rows, ids = [], []
        for track in self._tracker.tracked_stracks:
            if track.mean is None:
                continue
            ahead = copy.copy(track)  # ByteTrack's own Kalman step, on a copy (predict() replaces mean and covariance)
            ahead.predict()
            box = np.asarray(ahead.xyxy, np.float32)
            if len(boxes) and (box_iou(box[None], np.asarray(boxes, np.float32)) >= COAST_SEEN_IOU).any():
                continue
            rows.append([*box, track.score, track.cls])
            ids.append(int(track.track_id))
        return np.asarray(rows, np.float32).reshape(-1, 6), ids

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
