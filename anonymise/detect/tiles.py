"""Where the small-person search looks: tiles over the frame, and merging what each part found."""

from __future__ import annotations

import numpy as np

from ..config import MAX_IMGSZ, MIN_IMGSZ, inference_scale
from ..detections import Detections, FrameDetections, box_ioa, box_iou, suppress


def pad_square(image: np.ndarray, value: int = 114) -> np.ndarray:
    """``image`` padded right or bottom to a square with Ultralytics' letterbox grey."""
    height, width = image.shape[:2]
    if height == width:
        return image
    side = max(height, width)
    square = np.full((side, side, *image.shape[2:]), value, image.dtype)
    square[:height, :width] = image
    return square


def tile_windows(height: int, width: int, tiles: str = "auto", min_person: int = 32) -> list[tuple[int, int, int, int]]:
    """Equal-size overlapping windows (x0, y0, x1, y1) covering the frame, or ``[]`` for no tiling.

    ``auto`` tiles only when enlarging the whole frame enough for ``min_person`` people would
    need more than ``MAX_IMGSZ``; each tile is then sized to be inferred at ``MIN_IMGSZ``.
    ``N`` cuts the long side into N tiles. Tiles overlap by at least two person heights, so
    every person up to that tall lies whole in some tile.
    """
    tiles = str(tiles).lower()
    long_side = max(height, width)
    if tiles == "off":
        return []
    if tiles == "auto":
        scale = inference_scale(min_person)
        if long_side * scale <= MAX_IMGSZ:
            return []
        side = int(MIN_IMGSZ / scale)
    else:
        if int(tiles) <= 1:
            return []
        side = int(np.ceil(long_side / int(tiles) * 1.25))
    overlap = max(2 * min_person, side // 5)
    side = max(side, overlap + min_person)
    tile_w, tile_h = min(side, width), min(side, height)
    xs = _starts(width, tile_w, overlap)
    ys = _starts(height, tile_h, overlap)
    return [(x, y, x + tile_w, y + tile_h) for y in ys for x in xs]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if tile >= length:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)] if count > 1 else [0]


#: a tile's box that overlaps a full-frame pass's box this much (IoU), or lies (or holds one) this
#: much inside it, is a person that pass found too
SEEN_IOU, SEEN_INSIDE = 0.3, 0.7


def tile_only(full: np.ndarray, tiled: np.ndarray) -> np.ndarray:
    """The boxes of ``tiled`` (found on tiles, in frame pixels) that no box of ``full`` (the
    full-frame passes) accounts for: the people only the tiles see, around whom the tiles must
    keep looking (see :meth:`anonymise.policy.ScalePolicy.tiles`)."""
    tiled = np.asarray(tiled, np.float32).reshape(-1, 4)
    full = np.asarray(full, np.float32).reshape(-1, 4)
    if not len(tiled) or not len(full):
        return tiled
    seen = (
        (box_iou(tiled, full) >= SEEN_IOU).any(axis=1)
        | (box_ioa(full, tiled) > SEEN_INSIDE).any(axis=0)  # a part of a person found whole
        | (box_ioa(tiled, full) > SEEN_INSIDE).any(axis=1)  # the whole of one found in part
    )
    return tiled[~seen]


def merge_tiles(
    whole: FrameDetections, parts: list[FrameDetections], windows, shape: tuple[int, int]
) -> FrameDetections:
    """One frame's detections from a full-frame pass and its tiles.

    Every box (and mask) is kept for masking, duplicates included: dropping a box that is only
    mostly inside another would leave the rest of that person unmasked. Skeletons are
    de-duplicated (:func:`suppress`) so a person cut by a tile edge is drawn once.
    """
    people, poses = [whole.people], [whole.poses]
    for part, (x0, y0, x1, y1) in zip(parts, windows):
        shifted = part.people.shifted(x0, y0)
        if part.people.mask is not None:
            canvas = np.zeros((len(part.people), *shape), bool)
            canvas[:, y0:y1, x0:x1] = part.people.mask
            shifted.mask = canvas
        people.append(shifted)
        poses.append(part.poses.shifted(x0, y0) if part.poses is not part.people else shifted)
    merged_people = Detections.concat(people)
    merged_poses = Detections.concat([p for p in poses if len(p)]) if any(len(p) for p in poses) else Detections.empty()
    if merged_poses.keypoints is not None and len(merged_poses):
        merged_poses = merged_poses[suppress(merged_poses)]
    return FrameDetections(merged_people, merged_poses)
