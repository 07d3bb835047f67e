"""Pure functions from detections to the per-pixel blend weight ``alpha`` (uint8, 255 = person).

The hard region (instance masks grown by a distance transform, or boxes grown by ``dilate``)
always gets alpha 255; feathering only adds a soft rim *outside* it, so the Gaussian never
lets a person's edge pixels through at half strength. The background model freezes under
``alpha > 0``: exactly the region that gets blended.
"""

from __future__ import annotations

import cv2
import numpy as np

from .types import Detections


def boxes_mask(xyxy: np.ndarray, shape: tuple[int, int], grow: int = 0) -> np.ndarray:
    """Filled boxes, each grown by ``grow`` pixels on every side, as a uint8 0/255 mask."""
    height, width = shape
    if grow < 0:
        raise ValueError(f"grow must be >= 0, got {grow}")
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float32).reshape(-1, 4):
        # floor/ceil so that a box never shrinks by rounding; clip to the frame
        l, t = max(int(np.floor(x1)) - grow, 0), max(int(np.floor(y1)) - grow, 0)
        r, b = min(int(np.ceil(x2)) + grow, width), min(int(np.ceil(y2)) + grow, height)
        if r > l and b > t:
            mask[t:b, l:r] = 255
    return mask


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
        l, t = int(max(np.floor(x1), 0)), int(max(np.floor(y1), 0))
        r, b = int(min(np.ceil(x2), width)), int(min(np.ceil(y2), height))
        if r <= l or b <= t:
            continue
        out[i] = np.count_nonzero(mask[t:b, l:r]) < min_cover * (r - l) * (b - t)
    return out


def person_alpha(
    people: Detections,
    shape: tuple[int, int],
    *,
    inflate_px: int = 8,
    dilate_px: int = 8,
    feather_px: int = 15,
    extra_boxes: np.ndarray | None = None,
) -> np.ndarray:
    """The blend weight for one frame: uint8 (H, W), 255 over every person, 0 far from all.

    Instance masks (when ``people.mask`` is set) are inflated by ``inflate_px``; boxes are
    grown by ``dilate_px``. ``extra_boxes`` (e.g., people only the pose model found) are added
    as boxes.
    """
    if people.mask is not None:
        hard = inflate(instances_mask(people.mask, shape), inflate_px)
        boxes = extra_boxes if extra_boxes is not None else np.zeros((0, 4), np.float32)
    else:
        hard = np.zeros(shape, np.uint8)
        boxes = people.xyxy if extra_boxes is None else np.concatenate([people.xyxy, extra_boxes])
    if len(boxes):
        hard = np.maximum(hard, boxes_mask(boxes, shape, dilate_px))
    return feather(hard, feather_px)
