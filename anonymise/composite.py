"""Compositing: ``out = frame * (1 - a) + background * a`` with ``a = alpha / 255``.

Integer arithmetic with rounding (not truncation), done only inside the bounding rectangle of
``alpha > 0``: pixels where alpha is 0 are copied bit for bit, and a frame with small people
costs little.
"""

from __future__ import annotations

import cv2
import numpy as np


def blend(frame: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A new frame with ``background`` alpha-blended over ``frame``; inputs are not modified."""
    if frame.shape != background.shape or frame.ndim != 3:
        raise ValueError(f"frame and background: expected equal (H, W, 3) shapes, got {frame.shape} and {background.shape}")
    if alpha.shape != frame.shape[:2] or alpha.dtype != np.uint8:
        raise ValueError(f"alpha: expected uint8 of shape {frame.shape[:2]}, got {alpha.dtype} {alpha.shape}")
    out = frame.copy()
    x, y, w, h = cv2.boundingRect(alpha)
    if w == 0 or h == 0:
        return out
    a = alpha[y : y + h, x : x + w, None].astype(np.uint16)
    f = frame[y : y + h, x : x + w].astype(np.uint16)
    b = background[y : y + h, x : x + w].astype(np.uint16)
    # f*(255-a) + b*a <= 65025, + 127 still fits uint16; // 255 after +127 rounds to nearest
    out[y : y + h, x : x + w] = ((f * (255 - a) + b * a + 127) // 255).astype(np.uint8)
    return out


def blend_torch(frame, background, alpha):
    """:func:`blend` for torch uint8 tensors on any device (the GPU path)."""
    import torch

    a = alpha.to(torch.int32)[..., None]
    out = (frame.to(torch.int32) * (255 - a) + background.to(torch.int32) * a + 127) // 255
    return out.to(torch.uint8)
