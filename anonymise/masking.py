"""A frame's person mask from what the stages found: each person's whole body, then the alpha.

Pure but for :func:`whole_bodies`, which grows a slot's detections in place (the identity of
``people`` and ``poses``, one object where the pose model is the person detector, is kept).
"""

from __future__ import annotations

import numpy as np

from . import masks
from .config import Config, Mode
from .detections import Detections, FrameDetections
from .slot import Slot


def whole_bodies(slot: Slot, mode: Mode) -> None:
    """Grow every box with keypoints to the whole body they say is there (feet, crown, hands, cut-off legs)."""
    found = slot.found
    shape = slot.frame.image.shape[:2]

    def grown(d: Detections) -> Detections:
        if not len(d) or d.keypoints is None:
            return d
        bodies = masks.body_boxes(d.keypoints, d.xyxy, shape)
        return Detections(bodies, d.confidence, d.class_id, d.mask, d.tracker_id, d.keypoints)

    same = found.people is found.poses
    found.poses = grown(found.poses)
    found.people = found.poses if same else grown(found.people)
    if not same and mode is Mode.BBOX and found.people.keypoints is None and len(found.poses):
        slot.extra.extend(found.poses.xyxy)  # a separate person detector: the pose model's bodies are masked too


def alpha(image: np.ndarray, found: FrameDetections, extra: list[np.ndarray], config: Config) -> np.ndarray:
    """The person alpha (uint8 H x W) of ``found``'s people and the ``extra`` boxes, as ``config`` grows it."""
    c = config
    shape = image.shape[:2]
    boxes = [np.asarray(extra, np.float32).reshape(-1, 4)]
    if c.mode is Mode.SEG and found.people.mask is not None and len(found.poses):
        # people only the pose model saw are masked by their box (recall first)
        hard = masks.instances_mask(found.people.mask, shape)
        boxes.append(found.poses.xyxy[masks.uncovered(found.poses.xyxy, hard)])
    extra_boxes = np.concatenate(boxes)
    bodies = None
    if c.mode is Mode.SEG and len(found.poses) and found.poses.keypoints is not None:
        bodies = masks.body_mask(found.poses.keypoints, found.poses.xyxy, shape)  # what the instance mask left out
    return masks.person_alpha(
        found.people,
        shape,
        inflate_px=c.inflate,
        dilate_px=c.dilate,
        feather_px=c.feather,
        extra_boxes=extra_boxes if len(extra_boxes) else None,
        extra_mask=bodies,
    )
