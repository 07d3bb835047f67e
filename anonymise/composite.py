"""Compositing: ``out = frame * (1 - a) + fill * a`` with ``a = alpha / 255``.

Integer arithmetic with rounding (not truncation), done only inside the rectangle of each
connected region of ``alpha > 0`` (:func:`person_regions`): pixels where alpha is 0 are copied
bit for bit, and a frame with small people costs little, wherever they stand. :func:`fill`
picks what replaces people (:class:`~anonymise.config.Fill`); every mode builds its fill
image only inside those rectangles and blends it with the same rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .colours import bgr
from .config import Fill

Rect = tuple[int, int, int, int]  # x, y, w, h

#: default silhouette colour (BGR): a neutral grey
SILHOUETTE_COLOUR = (128, 128, 128)
#: opacity (0-255) of the heat colours over the reconstructed scene
HEAT_OPACITY = 160
HEAT_COLORMAP = cv2.COLORMAP_JET
#: blur sigma and pixelation cell as fractions of a person's size (height, or width when larger)
BLUR_SIGMA, MIN_SIGMA = 1 / 4, 3.0
PIXEL_CELL, MIN_CELL = 1 / 6, 4


def _check(frame: np.ndarray, alpha: np.ndarray, background: np.ndarray | None = None) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame: expected uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    if background is not None and background.shape != frame.shape:
        raise ValueError(
            f"frame and background: expected equal (H, W, 3) shapes, got {frame.shape} and {background.shape}"
        )
    if alpha.shape != frame.shape[:2] or alpha.dtype != np.uint8:
        raise ValueError(f"alpha: expected uint8 of shape {frame.shape[:2]}, got {alpha.dtype} {alpha.shape}")


def _mix(f: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``(f * (255 - a) + b * a) / 255`` rounded to nearest, exactly; ``a`` is uint8 (h, w)."""
    a3 = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    # uint8 x uint8 products sum to <= 65025: exact in uint16; x / 255 is never exactly k + 0.5 for
    # an integer x, so rounding in convertScaleAbs equals the integer (x + 127) // 255
    total = cv2.add(cv2.multiply(f, cv2.bitwise_not(a3), dtype=cv2.CV_16U), cv2.multiply(b, a3, dtype=cv2.CV_16U))
    return cv2.convertScaleAbs(total, alpha=1 / 255)


def _blend_regions(
    frame: np.ndarray, alpha: np.ndarray, make: Callable[[Rect, float], np.ndarray], boxes: np.ndarray | None = None
) -> np.ndarray:
    """A copy of ``frame`` blended, region by region (:func:`person_regions`), with ``make(rect, size)``.

    ``make`` returns the fill image of one region's rectangle; only that region's pixels are
    written, so overlapping rectangles do not overwrite each other.
    """
    out = frame.copy()
    for mask, (x, y, w, h), size in person_regions(alpha, boxes):
        mixed = _mix(frame[y : y + h, x : x + w], make((x, y, w, h), size), alpha[y : y + h, x : x + w])
        out[y : y + h, x : x + w] = cv2.copyTo(mixed, mask.view(np.uint8), out[y : y + h, x : x + w])
    return out


def person_regions(alpha: np.ndarray, boxes: np.ndarray | None = None) -> list[tuple[np.ndarray, Rect, float]]:
    """``(mask, (x, y, w, h), size)`` for every connected region of ``alpha > 0``; ``mask`` is bool (h, w).

    Every alpha pixel belongs to exactly one region (a region's mask is its outer contour,
    filled), so none is left unfilled. A region's size is the largest ``max(height, width)`` of
    the ``boxes`` (N, 4 xyxy) overlapping it, or the region's own when no box does (or
    ``boxes`` is None): a crowd merged into one region is then still blurred per person, and a
    region no box explains (the motion guard's) by its own size.
    """
    if boxes is not None:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    x, y, w, h = cv2.boundingRect(alpha)
    if w == 0 or h == 0:
        return []
    crop = (alpha[y : y + h, x : x + w] > 0).view(np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(x, y))
    regions = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        mask = np.zeros((h, w), np.uint8)
        cv2.drawContours(mask, [contour], -1, 1, cv2.FILLED, offset=(-x, -y))
        size = float(max(w, h))
        if boxes is not None and len(boxes):
            hit = (boxes[:, 0] < x + w) & (boxes[:, 2] > x) & (boxes[:, 1] < y + h) & (boxes[:, 3] > y)
            if hit.any():
                size = float(np.max(np.maximum(boxes[hit, 2] - boxes[hit, 0], boxes[hit, 3] - boxes[hit, 1])))
        regions.append((mask.view(bool), (x, y, w, h), size))
    return regions


def blend(frame: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A new frame with ``background`` alpha-blended over ``frame``; inputs are not modified."""
    if frame.shape != background.shape or frame.ndim != 3:
        raise ValueError(
            f"frame and background: expected equal (H, W, 3) shapes, got {frame.shape} and {background.shape}"
        )
    if alpha.shape != frame.shape[:2] or alpha.dtype != np.uint8:
        raise ValueError(f"alpha: expected uint8 of shape {frame.shape[:2]}, got {alpha.dtype} {alpha.shape}")
    return _blend_regions(frame, alpha, lambda r, _: background[r[1] : r[1] + r[3], r[0] : r[0] + r[2]])


def blend_torch(frame, background, alpha):
    """:func:`blend` for torch uint8 tensors on any device (the GPU path)."""
    import torch

    a = alpha.to(torch.int32)[..., None]
    out = (frame.to(torch.int32) * (255 - a) + background.to(torch.int32) * a + 127) // 255
    return out.to(torch.uint8)


def blackout(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """People in black: 0 where alpha is 255, the feathered rim darkened."""
    _check(frame, alpha)
    return _blend_regions(frame, alpha, lambda r, _: np.zeros((r[3], r[2], 3), np.uint8))


def silhouette(frame: np.ndarray, background: np.ndarray, alpha: np.ndarray, colour=SILHOUETTE_COLOUR) -> np.ndarray:
    """People as flat ``colour`` (BGR) shapes over the reconstructed ``background``.

    The fill is the colour weighted by alpha over the background, so the rim fades from the
    colour through the scene to the frame; under alpha 255 only the colour remains.
    """
    _check(frame, alpha, background)
    colour = bgr(colour)

    def make(r, _):
        x, y, w, h = r
        flat = np.empty((h, w, 3), np.uint8)
        flat[:] = colour
        return _mix(background[y : y + h, x : x + w], flat, alpha[y : y + h, x : x + w])

    return _blend_regions(frame, alpha, make)


def heatmap(frame: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """People as the alpha mask in heat colours (``HEAT_COLORMAP``) over the reconstructed scene.

    Nothing of ``frame`` shows under alpha 255: the fill is built from ``background`` and alpha only.
    """
    _check(frame, alpha, background)

    def make(r, _):
        x, y, w, h = r
        heat = cv2.applyColorMap(alpha[y : y + h, x : x + w], HEAT_COLORMAP)
        return _mix(background[y : y + h, x : x + w], heat, np.full((h, w), HEAT_OPACITY, np.uint8))

    return _blend_regions(frame, alpha, make)


def blur(frame: np.ndarray, alpha: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
    """People under a Gaussian blur whose sigma is a quarter of their size (at least ``MIN_SIGMA``).

    See :func:`person_regions` for how sizes are found. The blur runs per person on a crop,
    at a reduced resolution for big people (a box downscale, then sigma >= 3 px), so its cost
    does not grow with the person's size.
    """
    return _per_person(frame, alpha, boxes, _blurred)


def pixelate(frame: np.ndarray, alpha: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
    """People as square cells a sixth of their size (at least ``MIN_CELL`` px), each its mean colour.

    Cells lie on a grid anchored at the frame's origin, so a person standing still does not shimmer.
    """
    return _per_person(frame, alpha, boxes, _pixelated)


def _per_person(frame, alpha, boxes, effect: Callable[[np.ndarray, Rect, float], np.ndarray]) -> np.ndarray:
    _check(frame, alpha)
    if boxes is not None:
        boxes = np.asarray(boxes, np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes: expected shape (N, 4) xyxy, got {boxes.shape}")
    return _blend_regions(frame, alpha, lambda r, size: effect(frame, r, size), boxes)


def _blurred(frame: np.ndarray, rect: Rect, size: float) -> np.ndarray:
    """The (h, w) rect of ``frame`` blurred with sigma ``size * BLUR_SIGMA``, context from around it."""
    x, y, w, h = rect
    sigma = max(MIN_SIGMA, size * BLUR_SIGMA)
    pad = int(np.ceil(sigma))
    left, top = max(x - pad, 0), max(y - pad, 0)
    right, bottom = min(x + w + pad, frame.shape[1]), min(y + h + pad, frame.shape[0])
    crop = frame[top:bottom, left:right]
    step = max(1, int(sigma // 3))  # downscale so that the remaining sigma is >= 3 px
    small = (
        cv2.resize(crop, (-(-(right - left) // step), -(-(bottom - top) // step)), interpolation=cv2.INTER_AREA)
        if step > 1
        else crop
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma / step, borderType=cv2.BORDER_REFLECT)
    full = cv2.resize(small, (right - left, bottom - top), interpolation=cv2.INTER_LINEAR) if step > 1 else small
    return full[y - top : y - top + h, x - left : x - left + w]


def _pixelated(frame: np.ndarray, rect: Rect, size: float) -> np.ndarray:
    """The (h, w) rect of ``frame`` as cells of ``size * PIXEL_CELL`` px on a frame-anchored grid."""
    x, y, w, h = rect
    cell = max(MIN_CELL, round(size * PIXEL_CELL))
    left, top = x // cell * cell, y // cell * cell
    right, bottom = -(-(x + w) // cell) * cell, -(-(y + h) // cell) * cell  # whole cells, may pass the frame's edge
    crop = frame[top : min(bottom, frame.shape[0]), left : min(right, frame.shape[1])]
    crop = cv2.copyMakeBorder(
        crop, 0, bottom - top - crop.shape[0], 0, right - left - crop.shape[1], cv2.BORDER_REPLICATE
    )
    cells = cv2.resize(crop, ((right - left) // cell, (bottom - top) // cell), interpolation=cv2.INTER_AREA)
    full = cv2.resize(cells, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST)
    return full[y - top : y - top + h, x - left : x - left + w]


#: How each fill mode is drawn, from ``(frame, background, alpha, boxes, colour)``.
#: ``background``, ``silhouette`` and ``heatmap`` are drawn over the reconstructed scene (it must be given).
_FILLS: dict[Fill, Callable[..., np.ndarray]] = {
    Fill.BACKGROUND: lambda frame, background, alpha, boxes, colour: blend(frame, background, alpha),
    Fill.SILHOUETTE: lambda frame, background, alpha, boxes, colour: silhouette(frame, background, alpha, colour),
    Fill.HEATMAP: lambda frame, background, alpha, boxes, colour: heatmap(frame, background, alpha),
    Fill.BLACKOUT: lambda frame, background, alpha, boxes, colour: blackout(frame, alpha),
    Fill.BLUR: lambda frame, background, alpha, boxes, colour: blur(frame, alpha, boxes),
    Fill.PIXELATE: lambda frame, background, alpha, boxes, colour: pixelate(frame, alpha, boxes),
    Fill.NONE: lambda frame, background, alpha, boxes, colour: frame.copy(),
}
_NEEDS_BACKGROUND = {Fill.BACKGROUND, Fill.SILHOUETTE, Fill.HEATMAP}


def fill(
    frame: np.ndarray,
    background: np.ndarray | None,
    alpha: np.ndarray,
    mode: Fill | str,
    boxes: np.ndarray | None = None,
    *,
    colour=SILHOUETTE_COLOUR,
) -> np.ndarray:
    """A new frame with people (``alpha > 0``) replaced as ``mode`` says; pixels where alpha is 0 are unchanged.

    ``background`` (the reconstructed scene) is needed by ``background``, ``silhouette`` and
    ``heatmap`` and may be None otherwise. ``boxes`` (N, 4 xyxy person boxes) size the blur and
    pixel cells; ``colour`` (BGR or a name, see :func:`anonymise.colours.parse_colour`) is the silhouette's.
    """
    try:
        mode = Fill(mode.lower() if isinstance(mode, str) else mode)
    except (ValueError, AttributeError):
        raise ValueError(f"fill mode: expected one of {', '.join(f.value for f in Fill)}, got {mode!r}") from None
    if mode in _NEEDS_BACKGROUND:
        if background is None:
            raise ValueError(f"fill mode {mode.value}: expected a background image, got None")
    else:
        _check(frame, alpha, background)  # a background given but unused still has to match the frame
    return _FILLS[mode](frame, background, alpha, boxes, colour)
