"""Pure functions from detections to the per-pixel blend weight ``alpha`` (uint8, 255 = person).

The hard region (instance masks grown by a distance transform, or boxes grown by ``dilate``)
always gets alpha 255; feathering only adds a soft rim *outside* it, so the Gaussian never
lets a person's edge pixels through at half strength. The background model freezes under
``alpha > 0``: exactly the region that gets blended.
"""

from __future__ import annotations

import cv2
import numpy as np

from .detections import Detections


def boxes_mask(xyxy: np.ndarray, shape: tuple[int, int], grow: int = 0) -> np.ndarray:
    """Filled boxes, each grown by ``grow`` pixels on every side, as a uint8 0/255 mask."""
    height, width = shape
    if grow < 0:
        raise ValueError(f"grow must be >= 0, got {grow}")
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float32).reshape(-1, 4):
        # floor/ceil so that a box never shrinks by rounding; clip to the frame
        left, top = max(int(np.floor(x1)) - grow, 0), max(int(np.floor(y1)) - grow, 0)
        right, bottom = min(int(np.ceil(x2)) + grow, width), min(int(np.ceil(y2)) + grow, height)
        if right > left and bottom > top:
            mask[top:bottom, left:right] = 255
    return mask


def grown_boxes_mask(xyxy: np.ndarray, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Bool (H, W): inside any box grown by ``fraction`` of its height on every side (a margin
    proportional to the person's size)."""
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(shape, bool)
    pad = (boxes[:, 3] - boxes[:, 1])[:, None] * fraction
    return boxes_mask(boxes + np.hstack([-pad, -pad, pad, pad]), shape) > 0


def instances_mask(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Union of (N, H, W) boolean instance masks as a uint8 0/255 mask."""
    if masks.ndim != 3 or masks.shape[1:] != tuple(shape):
        raise ValueError(f"masks: expected shape (N, {shape[0]}, {shape[1]}), got {masks.shape}")
    if len(masks) == 0:
        return np.zeros(shape, np.uint8)
    return np.any(masks, axis=0).astype(np.uint8) * 255


def inflate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a 0/255 mask by ``radius`` pixels (Euclidean, via a distance transform)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0 or not mask.any():
        return mask.copy()
    distance = cv2.distanceTransform(np.where(mask > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    return np.where(distance <= radius, 255, 0).astype(np.uint8)


def feather(mask: np.ndarray, ksize: int) -> np.ndarray:
    """Soft alpha from a hard 0/255 mask: 255 on the mask, a Gaussian fall-off outside it.

    The mask is first dilated by half the kernel so that the blur's 50% line lies outside the
    person; ``np.maximum`` then pins the mask itself to 255.
    """
    if ksize < 0:
        raise ValueError(f"ksize must be >= 0, got {ksize}")
    if ksize <= 1 or not mask.any():
        return mask.copy()
    ksize |= 1  # Gaussian kernels are odd
    radius = ksize // 2
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    soft = cv2.GaussianBlur(grown, (ksize, ksize), 0)
    return np.maximum(soft, mask)


def uncovered(boxes: np.ndarray, mask: np.ndarray, min_cover: float = 0.3) -> np.ndarray:
    """Boolean (N,) array: which boxes have less than ``min_cover`` of their area under ``mask``.

    Used in ``seg`` mode so that a person the pose model sees but the segmentation model
    missed still gets masked (by their box).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.zeros(len(boxes), bool)
    height, width = mask.shape
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        left, top = int(max(np.floor(x1), 0)), int(max(np.floor(y1), 0))
        right, bottom = int(min(np.ceil(x2), width)), int(min(np.ceil(y2), height))
        if right <= left or bottom <= top:
            continue
        out[i] = np.count_nonzero(mask[top:bottom, left:right]) < min_cover * (right - left) * (bottom - top)
    return out


def person_alpha(
    people: Detections,
    shape: tuple[int, int],
    *,
    inflate_px: int = 8,
    dilate_px: int = 8,
    feather_px: int = 15,
    extra_boxes: np.ndarray | None = None,
    extra_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The blend weight for one frame: uint8 (H, W), 255 over every person, 0 far from all.

    Instance masks (when ``people.mask`` is set) are inflated by ``inflate_px``; boxes are
    grown by ``dilate_px``. ``extra_boxes`` (e.g., people only the pose model found) are added
    as boxes, ``extra_mask`` (uint8 0/255 or bool, e.g. whole bodies from keypoints) as it is.
    """
    if people.mask is not None:
        hard = inflate(instances_mask(people.mask, shape), inflate_px)
        boxes = extra_boxes if extra_boxes is not None else np.zeros((0, 4), np.float32)
    else:
        hard = np.zeros(shape, np.uint8)
        boxes = people.xyxy if extra_boxes is None else np.concatenate([people.xyxy, extra_boxes])
    if len(boxes):
        hard = np.maximum(hard, boxes_mask(boxes, shape, dilate_px))
    if extra_mask is not None:
        hard[extra_mask > 0] = 255
    return feather(hard, feather_px)


# -- whole bodies from keypoints ---------------------------------------------------------------
# COCO-17 keypoint indices
NOSE, EYES, EARS = 0, (1, 2), (3, 4)
SHOULDERS, ELBOWS, WRISTS = (5, 6), (7, 8), (9, 10)
HIPS, KNEES, ANKLES = (11, 12), (13, 14), (15, 16)
HEAD = (NOSE, *EYES, *EARS)
#: keypoints at or above this confidence are taken as where the body is (low: recall first)
BODY_KEYPOINT_CONF = 0.2
#: anatomical margins, as shares of the torso length T (shoulders' middle to hips' middle):
#: the head reaches HEAD_UP above the eyes/ears/nose and HEAD_SIDE to each side; the feet FOOT
#: below the ankles; a hand HAND beyond the wrist (along the forearm); limbs are LIMB wide
HEAD_UP, HEAD_DOWN, HEAD_SIDE = 0.45, 0.35, 0.35
FOOT, HAND, LIMB, JOINT = 0.35, 0.45, 0.3, 0.2
#: a missing lower leg or thigh is drawn on as long as this share of T (thigh ~ 0.9 T, shank ~ 0.9 T)
THIGH, SHANK = 0.9, 0.9
#: the torso length assumed from the box when the keypoints cannot say (share of the box height)
TORSO_OF_BOX = 0.3
_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12), (5, 11), (6, 12))


def _body_parts(person: np.ndarray, box: np.ndarray, conf: float):
    """Discs (x, y, r) and capsules (x1, y1, x2, y2, r) covering one person's body, in pixels.

    ``person`` (17, 3) keypoints; ``box`` its xyxy box (the fallback for the body's scale).
    Missing legs are drawn on along the torso's direction: a box cut at the thighs is extended
    to where the feet would be (clipped to the frame by the caller).
    """
    xy, ok = person[:, :2].astype(np.float64), person[:, 2] >= conf
    discs: list[tuple] = []
    capsules: list[tuple] = []

    def mid(pair):
        seen = [xy[i] for i in pair if ok[i]]
        return np.mean(seen, axis=0) if seen else None

    shoulders, hips = mid(SHOULDERS), mid(HIPS)
    height = float(box[3] - box[1])
    torso = float(np.linalg.norm(hips - shoulders)) if shoulders is not None and hips is not None else 0.0
    torso = max(torso, TORSO_OF_BOX * height if not (shoulders is not None and hips is not None) else 0.0, 4.0)
    down = (
        (hips - shoulders) / max(np.linalg.norm(hips - shoulders), 1e-6)
        if shoulders is not None and hips is not None
        else np.array([0.0, 1.0])
    )
    limb, joint = LIMB * torso / 2, JOINT * torso
    for i in np.flatnonzero(ok):
        discs.append((*xy[i], joint))
    for a, b in _LIMBS:
        if ok[a] and ok[b]:
            capsules.append((*xy[a], *xy[b], limb))
    head = [xy[i] for i in HEAD if ok[i]]
    if head:
        head = np.asarray(head)
        top, bottom = head[:, 1].min() - HEAD_UP * torso, head[:, 1].max() + HEAD_DOWN * torso
        left, right = head[:, 0].min() - HEAD_SIDE * torso, head[:, 0].max() + HEAD_SIDE * torso
        r = max(right - left, bottom - top) / 2
        capsules.append(((left + right) / 2, top + r, (left + right) / 2, max(bottom - r, top + r), r))
    for side in (0, 1):
        hip, knee, ankle = HIPS[side], KNEES[side], ANKLES[side]
        elbow, wrist = ELBOWS[side], WRISTS[side]
        if ok[elbow] and ok[wrist]:  # the hand, beyond the wrist along the forearm
            forearm = xy[wrist] - xy[elbow]
            hand = xy[wrist] + forearm / max(np.linalg.norm(forearm), 1e-6) * HAND * torso
            capsules.append((*xy[wrist], *hand, HAND * torso / 2))
        elif ok[wrist]:
            discs.append((*xy[wrist], HAND * torso))
        # legs: from the lowest joint seen, drawn on down to the foot
        if ok[ankle]:
            foot = xy[ankle] + down * FOOT * torso
            capsules.append((*xy[ankle], *foot, FOOT * torso / 2 + limb))
            continue
        if ok[knee]:
            start = xy[knee]
            shank = (xy[knee] - xy[hip]) if ok[hip] else down * SHANK * torso
            shank = shank / max(np.linalg.norm(shank), 1e-6) * SHANK * torso
            end = start + shank + down * FOOT * torso
        elif ok[hip] or hips is not None:
            start = xy[hip] if ok[hip] else hips
            end = start + down * (THIGH + SHANK + FOOT) * torso
        else:
            continue
        capsules.append((*start, *end, limb + JOINT * torso))
    return discs, capsules


def body_mask(
    keypoints: np.ndarray, boxes: np.ndarray, shape: tuple[int, int], conf: float = BODY_KEYPOINT_CONF
) -> np.ndarray:
    """uint8 0/255 (H, W): the whole bodies that (N, 17, 3) keypoints say are there.

    Each person's keypoints with anatomical margins (the crown above the eyes and ears, the feet
    below the ankles, the hands beyond the wrists), the limbs between them, and legs drawn on
    where the keypoints stop at the hips or knees. ``boxes`` (N, 4) give the scale when the
    torso is not seen.
    """
    mask = np.zeros(shape, np.uint8)
    for person, box in zip(
        np.asarray(keypoints, np.float32).reshape(-1, 17, 3), np.asarray(boxes, np.float32).reshape(-1, 4)
    ):
        discs, capsules = _body_parts(person, box, conf)
        torso = [person[i, :2] for i in (*SHOULDERS, *reversed(HIPS)) if person[i, 2] >= conf]
        if len(torso) >= 3:  # the torso between its edges (the capsules draw the edges)
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(np.asarray(torso)).astype(np.int32)), 255)
        for x, y, r in discs:
            cv2.circle(mask, (int(round(x)), int(round(y))), max(int(np.ceil(r)), 1), 255, -1)
        for x1, y1, x2, y2, r in capsules:
            cv2.line(
                mask,
                (int(round(x1)), int(round(y1))),
                (int(round(x2)), int(round(y2))),
                255,
                max(int(np.ceil(2 * r)), 1),
            )
            cv2.circle(mask, (int(round(x1)), int(round(y1))), max(int(np.ceil(r)), 1), 255, -1)
            cv2.circle(mask, (int(round(x2)), int(round(y2))), max(int(np.ceil(r)), 1), 255, -1)
    return mask


def body_boxes(
    keypoints: np.ndarray, boxes: np.ndarray, shape: tuple[int, int], conf: float = BODY_KEYPOINT_CONF
) -> np.ndarray:
    """(N, 4) boxes: each of ``boxes`` grown to hold its person's whole body (:func:`body_mask`), in the frame."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = boxes.copy()
    height, width = shape
    for i, (person, box) in enumerate(zip(np.asarray(keypoints, np.float32).reshape(-1, 17, 3), boxes)):
        discs, capsules = _body_parts(person, box, conf)
        xs = [v for x, _, r in discs for v in (x - r, x + r)] + [
            v for x1, _, x2, _, r in capsules for v in (x1 - r, x1 + r, x2 - r, x2 + r)
        ]
        ys = [v for _, y, r in discs for v in (y - r, y + r)] + [
            v for _, y1, _, y2, r in capsules for v in (y1 - r, y1 + r, y2 - r, y2 + r)
        ]
        if xs:
            out[i] = (min(box[0], min(xs)), min(box[1], min(ys)), max(box[2], max(xs)), max(box[3], max(ys)))
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
