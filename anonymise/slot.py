"""What the per-frame stages share: one frame's :class:`Slot` in the look-ahead, and the run's :class:`Counts`.

The stream (:mod:`anonymise.framestream`) keeps a buffer of slots; the stages read a slot and add to it:
the hold (:mod:`anonymise.hold`) and the guard (:mod:`anonymise.guard`) add boxes to mask, the stream
sets the final image and alpha, the compositor (:mod:`anonymise.compose`) turns it into an output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .detections import FrameDetections
from .io.video import Frame

if TYPE_CHECKING:
    import torch


@dataclass
class Counts:
    """What the safety nets did in one run (all per frame or per region, summed)."""

    frames: int = 0
    #: frames written fully masked because their processing failed
    failed: int = 0
    #: boxes added by the temporal hold, back-fill and gap-fill
    held: int = 0
    #: unexplained moving regions masked by the motion guard
    motion: int = 0
    #: people the second look found in such regions
    second_look: int = 0
    #: second looks not run: the look at the same place on the frame before stood for them (guard.LOOK_AGAIN_IOU)
    looks_reused: int = 0
    #: boxes kept masked because the background behind them is unknown
    carried: int = 0
    #: still things the models called people, shown as they are (see things.py)
    shown: int = 0
    #: frames whose mask foreground completion grew
    completed: int = 0
    #: frames the small-person search skipped, and the frame-scale pass (see policy.py)
    small_skipped: int = 0
    large_skipped: int = 0
    #: tile crops the small search did not run (see policy.py)
    tiles_skipped: int = 0
    #: frames whose small search ran on a window around the people and motion, not the whole frame
    windowed: int = 0
    #: scene cuts that restarted the sweeps
    scene_cuts: int = 0


@dataclass
class Slot:
    """One frame in the look-ahead buffer, and what the stages decided for it so far.

    A slot is *open* until the stream finalises it (sets :attr:`alpha`): until then the hold may still
    back-fill boxes into it; after, the background has learned from it and nothing is added.
    """

    #: the frame's index in the video (0 for the first frame the stream was given)
    t: int
    frame: Frame
    #: what the models found; ``None`` where detection failed (the frame is then masked whole)
    found: FrameDetections | None
    #: (4,) float32 boxes masked beyond the detections: held and back-filled tracks, the guard's
    #: regions, second looks, carries, manual boxes
    extra: list[np.ndarray] = field(default_factory=list)
    #: (K, 4) boxes of the tracks the detector lost in this frame (masked: in ``extra`` too);
    #: ``None`` where the frame was not tracked
    held: np.ndarray | None = None
    #: track ids of the ``held`` boxes (-1: untracked)
    held_ids: list[int] = field(default_factory=list)
    #: track ids carried on by a strided frame (among ``held_ids``)
    coasted: list[int] = field(default_factory=list)
    #: (K, 4) boxes of the redaction manifest in this frame (in ``extra`` too); ``None`` without a manifest
    manual: np.ndarray | None = None
    #: (K, 4) boxes of the still things shown, not masked, taken out of ``found`` (see ``things.py``)
    shown: np.ndarray | None = None
    #: regions masked per reason (see ``ledger.REASONS``)
    why: dict[str, int] = field(default_factory=dict)
    #: the frame's image on the compositing device, once final
    image: np.ndarray | torch.Tensor | None = None
    #: the final person alpha (uint8 H x W), on the compositing device; ``None`` while the slot is open
    alpha: np.ndarray | torch.Tensor | None = None

    @property
    def open(self) -> bool:
        """Whether the slot's mask is still open to back-fill (it is not final yet)."""
        return self.alpha is None

    def mask(self, reason: str, boxes: list[np.ndarray] | np.ndarray) -> int:
        """Add ``boxes`` to :attr:`extra` and count them under ``reason``; returns how many."""
        self.extra.extend(boxes)
        self.why[reason] = self.why.get(reason, 0) + len(boxes)
        return len(boxes)


def to_numpy(array) -> np.ndarray:
    """``array`` (numpy, or a tensor on the compositing device) as numpy."""
    return array.cpu().numpy() if hasattr(array, "cpu") else array
