"""Still things the models call people: shown as the scene they are, not masked for the whole clip.

A detector tuned for recall calls a few objects people. On the shared close-ups it is the black
office chair at the frame's right edge (0.4-0.63 in ``milk.mkv``); in the empty room of
``one-by-one-person-detection.mp4``, a dark corner at the top right. Masked, such a thing is a
tinted box for as long as it is found, since nothing behind it is ever seen (53-61% of the scene
outside the person lost in ``book.mkv`` and ``milk.mkv``).

:func:`still_things` finds them in the frame the stream is about to finalise, from the frames its
look-ahead buffer holds around it (about ``hold`` frames each way). A detection there is a still
thing when all of these hold:

- **large**: at least :data:`THING_HEIGHT` of the frame's height and :data:`THING_MIN_PX` tall. At
  that size the pose model sees a person's joints: every person that large in the shared clips shows
  several at :data:`BODY_PART` or more in nearly every frame, the things at most one in any;
- **no body part**: no detection at that place (overlapping it by :data:`VETO_IOU`), its own or
  anyone's, shows :data:`BODY_JOINTS` joints at :data:`BODY_PART` or more in :data:`VETO_FRAMES`
  frames of the window;
- **found again**: the place is found (IoU :data:`PLACE_IOU`) in at least :data:`THING_SEEN` frames;
- **nothing moved there**: in every frame of the window, under :data:`STILL_SHARE` of the box's pixels
  differ from the frame's by more than the motion threshold.

Someone who walks in front of it, sits in it or gets up moves there, and the place is masked again
for the whole window around that moment; someone found with a joint there vetoes it the same way.
A thing is dropped from the frame's detections with the hold's boxes inside it (its track's held and
back-filled boxes), so it is shown and the background learns it; manual boxes, the motion guard and
second looks are untouched. The redaction report lists every stretch shown this way as a moment to
check (``shown``); ``--masks`` masks it by hand where it is a person after all. A photo has no frames
around it, so it never shows one; neither does a detection without keypoints (a separate box model
whose boxes no skeleton matches).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import motion
from .detections import Detections, box_ioa, box_iou
from .slot import Slot
from .track import MAX_GROWTH, grow

#: a thing is at least this share of the frame's height, and this many pixels, tall
THING_HEIGHT, THING_MIN_PX = 1 / 3, 96
#: a joint at this confidence or more is seen; this many seen joints are a body part (a stray joint on
#: the chair of ``book.mkv`` reaches 0.58 in one frame; a person that large shows 8-13)
BODY_PART, BODY_JOINTS = 0.5, 2
#: detections overlapping a candidate this much (IoU) are at its place (it is found again there)
PLACE_IOU = 0.5
#: detections overlapping a candidate this much (IoU) with a body part in this many frames of the window
#: veto it (one frame's is a stray: the chair of ``book.mkv`` shows two joints in its last frame)
VETO_IOU, VETO_FRAMES = 0.3, 2
#: the place is found in at least this many frames of the window
THING_SEEN = 3
#: at most this share of the box's pixels may differ from the frame's in any frame of the window
STILL_SHARE = 0.02
#: boxes of the hold lying this much within a thing grown by the hold's largest margin are its own
OWN_BOXES = 0.9


def still_things(slot: Slot, window: Sequence[Slot], threshold: int) -> np.ndarray:
    """(K, 4) places that are still things in ``slot`` (module docstring), judged over ``window`` (the
    buffered slots around it, ``slot`` among them); ``threshold``: the motion threshold.

    A place is any large detection without a body part in the window (a strided frame's thing is
    often found only on the frames the small search ran, and held or back-filled between)."""
    none = np.zeros((0, 4), np.float32)
    if slot.found is None:
        return none
    height, width = slot.frame.image.shape[:2]
    tallest = max(THING_HEIGHT * height, THING_MIN_PX)
    found = [_evidence(s) for s in window if s.found is not None]
    places = np.zeros((0, 4), np.float32)
    for boxes, joints in found:
        tall = boxes[:, 3] - boxes[:, 1]
        for box in boxes[(tall >= tallest) & (joints >= 0) & (joints < BODY_JOINTS)]:
            if not len(places) or (box_iou(box[None], places)[0] < PLACE_IOU).all():
                places = np.concatenate([places, box[None]])
    things = []
    for box in places:
        seen, bodies = 0, 0
        for boxes, joints in found:
            if not len(boxes):
                continue
            iou = box_iou(box[None], boxes)[0]
            seen += bool((iou >= PLACE_IOU).any())
            bodies += bool(((iou >= VETO_IOU) & (joints >= BODY_JOINTS)).any())
        if bodies >= VETO_FRAMES or seen < THING_SEEN or not _still(box, slot, window, threshold, (height, width)):
            continue
        things.append(box)
    return np.asarray(things, np.float32).reshape(-1, 4)


def show(slot: Slot, things: np.ndarray) -> int:
    """Drop ``things`` from ``slot``: its detections at their place that show no body part in this frame,
    and the hold's boxes inside them (not the manual ones). Returns how many things were shown."""
    if not len(things):
        return 0
    found = slot.found
    _, joints = _with_joints(found)
    at = (box_iou(found.people.xyxy, things) >= PLACE_IOU).any(axis=1) if len(found.people) else np.zeros(0, bool)
    drop = at & (joints >= 0) & (joints < BODY_JOINTS)  # one that shows a body part here (or may) stays masked
    same = found.people is found.poses
    found.people = found.people[~drop]
    if same:
        found.poses = found.people
    elif len(found.poses) and found.poses.keypoints is not None:
        at = (box_iou(found.poses.xyxy, things) >= PLACE_IOU).any(axis=1)
        found.poses = found.poses[~(at & (_joints_seen(found.poses.keypoints) < BODY_JOINTS))]
    reach = np.asarray([grow(b, MAX_GROWTH) for b in things], np.float32)
    inside = lambda boxes: (box_ioa(reach, boxes) >= OWN_BOXES).any(axis=0)  # noqa: E731
    if slot.extra:
        manual = np.zeros((0, 4), np.float32) if slot.manual is None else np.asarray(slot.manual, np.float32)
        extra = np.asarray(slot.extra, np.float32).reshape(-1, 4)
        is_manual = (np.abs(extra[:, None] - manual[None]).max(axis=2) < 1e-3).any(axis=1)
        slot.extra = [box for box, drop in zip(extra, inside(extra) & ~is_manual) if not drop]
    if slot.held is not None and len(slot.held):
        own = inside(np.asarray(slot.held, np.float32).reshape(-1, 4))  # no second look at them (guard.py)
        slot.held = np.asarray(slot.held, np.float32).reshape(-1, 4)[~own]
        if len(slot.held_ids) == len(own):
            slot.held_ids = [i for i, o in zip(slot.held_ids, own) if not o]
    slot.shown = things
    slot.why["shown"] = len(things)
    return len(things)


def _evidence(slot: Slot) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_with_joints` of ``slot``'s detections, with the things already shown there (no joints)."""
    boxes, joints = _with_joints(slot.found)
    if slot.shown is None or not len(slot.shown):
        return boxes, joints
    return np.concatenate([boxes, slot.shown]), np.concatenate([joints, np.zeros(len(slot.shown), np.int64)])


def _with_joints(found) -> tuple[np.ndarray, np.ndarray]:
    """``found``'s people boxes (N, 4) and how many joints each shows at BODY_PART or more (-1: no
    keypoints to judge by), from their own keypoints or the skeleton that matches them best (IoU >= PLACE_IOU)."""
    people: Detections = found.people
    boxes = people.xyxy
    if not len(people):
        return boxes, np.zeros(0, np.int64)
    if people.keypoints is not None:
        return boxes, _joints_seen(people.keypoints)
    joints = np.full(len(people), -1, np.int64)
    poses = found.poses
    if len(poses) and poses.keypoints is not None:
        iou = box_iou(boxes, poses.xyxy)
        best = iou.argmax(axis=1)
        hit = iou[np.arange(len(boxes)), best] >= PLACE_IOU
        joints[hit] = _joints_seen(poses.keypoints[best[hit]])
    return boxes, joints


def _joints_seen(keypoints: np.ndarray) -> np.ndarray:
    """How many joints of each of ``keypoints`` (N, 17, 3) are seen (BODY_PART or more)."""
    return (keypoints[:, :, 2] >= BODY_PART).sum(axis=1)


def _still(box: np.ndarray, slot: Slot, window: Sequence[Slot], threshold: int, shape: tuple[int, int]) -> bool:
    """Whether under STILL_SHARE of ``box``'s pixels differ from ``slot``'s frame by more than
    ``threshold`` in every frame of ``window``."""
    height, width = shape
    left, top = max(int(box[0]), 0), max(int(box[1]), 0)
    right, bottom = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    if right <= left or bottom <= top:
        return False
    here = slot.frame.image[top:bottom, left:right]
    limit = STILL_SHARE * here.shape[0] * here.shape[1]
    for other in window:
        if other is slot:
            continue
        there = other.frame.image[top:bottom, left:right]
        if np.count_nonzero(motion.moved(here, there, threshold)) > limit:
            return False
    return True
