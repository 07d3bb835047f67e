"""The temporal hold and the back-fill: who a frame's detections leave out that the frames around it show.

:class:`Hold` keeps one video's tracks (Ultralytics ByteTrack, :class:`~anonymise.detect.tracker.PersonTracker`)
and adds boxes to the slots of the look-ahead buffer:

- **held**: a track the detector lost is masked where it is predicted, for ``hold`` frames;
- **back-filled**: a new track is masked in the open frames before it, a gap between two sightings
  is filled with interpolated boxes (and, when short, skeletons) (:class:`~anonymise.track.TrackHistory`);
- **deep sweeps**: someone only a deep sweep found (the small search at a larger size) is masked until
  the next deep sweep and back-filled into the open frames since the last one; someone two deep
  sweeps found gets a skeleton interpolated into the frames between them.

Only open slots (:attr:`~anonymise.slot.Slot.open`) are back-filled: the background has learned from the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import Config
from .detect.tracker import PersonTracker
from .detections import Detections, box_iou, nested
from .slot import Counts, Slot
from .track import TrackHistory, between_joints, grow, margin

log = logging.getLogger(__name__)

#: a deep sweep's box that overlaps something masked in the frame before this much (IoU) was seen there
DEEP_SEEN_IOU = 0.3
#: someone the last deep sweep found is the one this deep sweep found where their boxes overlap
#: this much (IoU): the frames between that draw no skeleton there get one interpolated
DEEP_PAIR_IOU = 0.3


@dataclass(frozen=True)
class NewTracks:
    """Tracks seen for the first time in a frame: most likely there, undetected, in the frames before."""

    #: (4,) float32 box of each new track in the frame
    boxes: list[np.ndarray]
    #: the frame's tracked people (the new ones among them, with their keypoints where the models gave them)
    people: Detections


class Hold:
    """One video's tracks, held and back-filled into the look-ahead buffer (module docstring)."""

    def __init__(self, config: Config, depth: int, counts: Counts):
        """``depth``: how many frames back a back-fill reaches (the open slots); ``counts``: the run's, added to."""
        self._tracker = PersonTracker(config.conf, config.hold) if config.track else None
        self._history = TrackHistory(depth)
        self._counts = counts
        self._deep: tuple[int, np.ndarray] | None = None  # (frame, boxes) only the last deep sweep explained
        self._deep_poses: tuple[int, Detections] | None = None  # (frame, skeletons) the last deep sweep found

    def track(self, slot: Slot, buffer: Sequence[Slot], pose: bool) -> NewTracks | None:
        """Track ``slot``'s people (the last of ``buffer``), mask the tracks they lost, back-fill the
        new and the returning into ``buffer``'s open slots; ``pose``: gaps get skeletons too.

        Returns the new tracks (``None`` when there are none): the background may have learned them.
        """
        if self._tracker is None:
            return None
        found = slot.found
        parts = nested(found.people.xyxy)
        if parts.any():
            # Fragments inside a taller person (the enlarged pass splits people who fill the frame) are
            # masked in this frame but not tracked: as tracks they would come and go with each sweep,
            # and every new track makes the background forget a wide area around it.
            slot.extra.extend(found.people.xyxy[parts])
            if found.people is found.poses:
                found.poses = found.people = found.people[~parts]
            else:
                found.people = found.people[~parts]
        try:
            tracked, held = self._tracker.update(found.people, slot.frame.image.shape[:2], coast=found.strided)
        except Exception as e:  # noqa: BLE001 - without tracks the detections are still masked
            log.warning("tracking failed on frame %d: %s", slot.t, e)
            return None
        if found.poses is found.people:
            found.poses = tracked
        else:  # seg: skeletons from the pose model take the id of the mask they overlap most
            found.poses.tracker_id = _match_ids(found.poses.xyxy, tracked)
        found.people = tracked
        slot.extra.extend(held)
        slot.held = held
        slot.held_ids = list(getattr(self._tracker, "held_ids", []))
        slot.coasted = list(getattr(self._tracker, "coasted_ids", []))
        slot.why["held"] = len(held)
        self._counts.held += len(held)
        first = buffer[0].t
        for j, boxes in self._history.observe(slot.t, tracked).items():
            target = buffer[j - first]
            if target.open:  # the background has not learned it yet
                self._counts.held += target.mask("backfill", boxes)
        if pose:
            for j, between in self._history.poses.items():  # skeletons across short gaps (the stride's frames)
                target = buffer[j - first]
                if target.found is not None:
                    poses = target.found.poses
                    target.found.poses = Detections.concat([poses, between]) if len(poses) else between
        return NewTracks(self._history.new_boxes, tracked) if self._history.new_boxes else None

    def sweep(self, slot: Slot, buffer: Sequence[Slot], lapse: int | None, pose: bool) -> None:
        """What deep sweeps found, for ``slot`` (the last of ``buffer``): a deep sweep's people are
        back-filled, and their skeletons interpolated (``pose``); until the next deep sweep, they are
        masked. ``lapse``: the frames between deep sweeps at most (``None``: the stream plans no sweeps)."""
        if slot.found is not None and slot.found.deep:
            self._deep_found(slot, buffer, lapse)
            if pose:
                self._deep_skeletons(slot, buffer, lapse)
        self._keep_deep(slot, lapse)

    def _deep_found(self, slot: Slot, buffer: Sequence[Slot], lapse: int | None) -> None:
        """People a deep sweep found that the frame before did not explain: masked until the next
        deep sweep (:meth:`_keep_deep`) and back-filled into the open frames since the last one."""
        earlier = [s for s in list(buffer)[:-1] if s.found is not None and not s.found.deep]
        before = earlier[-1] if earlier else None  # the last frame the models saw at the usual size
        boxes = slot.found.people.xyxy
        if before is not None and before.found is not None and len(boxes):
            # what the models found or the tracks held there (not what an earlier deep sweep left)
            held = np.zeros((0, 4), np.float32) if before.held is None else np.asarray(before.held, np.float32)
            seen = np.concatenate([before.found.people.xyxy, held.reshape(-1, 4)])
            if len(seen):
                boxes = boxes[(box_iou(boxes, seen) < DEEP_SEEN_IOU).all(axis=1)]
        self._deep = (slot.t, np.asarray(boxes, np.float32).reshape(-1, 4))
        # back to the sweep before: ``every`` frames, or ``lapse`` where nobody small was seen lately
        reach = lapse if lapse is not None else 1
        if not len(boxes):
            return
        for target in buffer:
            if slot.t - reach < target.t < slot.t and target.open:
                self._counts.held += target.mask("backfill", [grow(b, margin(slot.t - target.t)) for b in boxes])

    def _deep_skeletons(self, slot: Slot, buffer: Sequence[Slot], lapse: int | None) -> None:
        """Skeletons between two deep sweeps: someone both found (boxes overlapping by
        ``DEEP_PAIR_IOU``) gets a skeleton interpolated into each frame between that is still
        buffered (the look-ahead is at least the sweep period deep) and draws none there. People
        only the deep sweeps find (small, in the dark) are masked in those frames (:meth:`_keep_deep`)
        but would have no skeleton there: their pose is carried like a track's across a gap."""
        after = slot.found.poses
        previous, self._deep_poses = self._deep_poses, None
        if after.keypoints is None or not len(after) or lapse is None:
            return
        self._deep_poses = (slot.t, after)
        if previous is None or not 1 < slot.t - previous[0] <= lapse:
            return
        t0, before = previous
        iou = box_iou(before.xyxy, after.xyxy)
        pairs = [(i, int(k)) for i, k in enumerate(iou.argmax(axis=1)) if iou[i, k] >= DEEP_PAIR_IOU]
        for target in buffer:
            if not t0 < target.t < slot.t or target.found is None:
                continue
            w = (target.t - t0) / (slot.t - t0)
            for i, k in pairs:
                box = ((1 - w) * before.xyxy[i] + w * after.xyxy[k])[None]
                have = target.found.poses
                if len(have) and (box_iou(box, have.xyxy) >= DEEP_PAIR_IOU).any():
                    continue  # a skeleton is drawn there already
                one = Detections(
                    box,
                    [min(before.confidence[i], after.confidence[k])],
                    [0],
                    tracker_id=None if self._tracker is None else [-1],
                    keypoints=between_joints(before.keypoints[i], after.keypoints[k], w)[None],
                )
                target.found.poses = Detections.concat([have, one]) if len(have) else one

    def _keep_deep(self, slot: Slot, lapse: int | None) -> None:
        if self._deep is None or lapse is None:
            return
        t, boxes = self._deep
        if not len(boxes) or not 0 < slot.t - t < lapse:  # the next deep sweep replaces them
            return
        self._counts.held += slot.mask("held", [grow(b, margin(slot.t - t)) for b in boxes])


def _match_ids(boxes: np.ndarray, tracked: Detections, min_iou: float = 0.3) -> np.ndarray:
    """For each box, the tracker id of the tracked box it overlaps most (IoU >= ``min_iou``), else -1."""
    ids = np.full(len(boxes), -1, np.int64)
    if not len(boxes) or not len(tracked) or tracked.tracker_id is None:
        return ids
    iou = box_iou(boxes, tracked.xyxy)
    best = iou.argmax(axis=1)
    hit = iou[np.arange(len(boxes)), best] >= min_iou
    ids[hit] = tracked.tracker_id[best[hit]]
    return ids
