"""The background stage: what the background learns from a frame, and what it forgets.

The background (:mod:`anonymise.background`) learns a frame only once its mask is final, outside
a margin around every person and where foreground completion found nothing of them
(:meth:`Learner.complete`); what it learned where someone may have stood undetected is forgotten:
around a new track (:meth:`Learner.forget_new`), under a manual box (:meth:`Learner.learn`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import masks, motion
from .config import Config
from .detections import box_iou
from .hold import NewTracks
from .scene import colours_like
from .slot import Counts, Slot
from .track import MAX_GROWTH, grow

if TYPE_CHECKING:
    from .background import BackgroundModel, TorchBackgroundModel
    from .scene import Recorder

#: the background never learns within this share of a person's height around their box
LEARN_MARGIN = 0.15
#: what it learns within this share is suspect: forgotten if a person later stands on it and looks like it
SUSPECT_ZONE = 0.5
#: foreground completion: pixels unlike the known background join a person's mask within this
#: share of their height around their box; pixels whose background is unknown, within LEARN_MARGIN
COMPLETION_REACH = 0.25


@dataclass(frozen=True)
class Learning:
    """What the background may learn from a frame (the masks of its ``update``)."""

    #: bool (H, W): never learned from this frame (the people, and a margin around them); ``None``: no one
    exclude: np.ndarray | None = None
    #: bool (H, W): learned as suspect (close to a person); ``None``: no one
    near: np.ndarray | None = None


class Learner:
    """One video's background stage over ``background`` (module docstring)."""

    def __init__(self, background: BackgroundModel | TorchBackgroundModel, counts: Counts):
        """``counts``: the run's, added to."""
        self.background = background
        self._counts = counts

    @property
    def ready(self) -> bool:
        """Whether the background has anything (learned or primed) to compare a frame with."""
        return getattr(self.background, "seen", None) is not None

    def prime(self, images: Sequence[np.ndarray]) -> None:
        """The motion guard's reference for the first frames: the median of ``images`` (what the
        look-ahead holds), where a walking person is absent from most frames (never used as fill)."""
        self.background.prime(np.median(np.stack(images), axis=0).astype(np.uint8))

    def reference(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The background's ``(learned values, known)`` to compare a frame with; ``None`` before it has any."""
        return self.background.reference() if self.ready else None

    def forget_new(self, new: NewTracks, image: np.ndarray, whole_clip: bool) -> None:
        """Forget what was learned around ``new`` tracks' first boxes in ``image``: most likely they were
        there, undetected, before (it is relearned once free). ``whole_clip`` (:mod:`anonymise.scene`):
        only what has the person's colours is suspect; the scene they stand in front of, seen before
        they came, stays known."""
        if not self.ready:
            return
        shape = image.shape[:2]
        grown = masks.boxes_mask(np.asarray([grow(b, MAX_GROWTH) for b in new.boxes]), shape) > 0
        suspect = None
        if whole_clip:
            learned, _ = self.background.reference()
            suspect = grown & colours_like(learned, image, _bodies(new, shape))
        self.background.forget(grown, suspect)

    def complete(
        self, slot: Slot, alpha: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None, config: Config
    ) -> tuple[np.ndarray, Learning]:
        """Foreground completion, then what the background may learn from this frame.

        Returns the grown alpha and the ``exclude``/``near`` masks for the background's update.
        Where a person's mask lies on suspect background that looks like them (learned beside
        them while the detector missed part of them), that background is forgotten first.
        """
        shape = alpha.shape
        # people: what the models found and the tracks held (the motion guard's and the carry's boxes are grown already)
        held = np.zeros((0, 4), np.float32) if slot.held is None else np.asarray(slot.held, np.float32).reshape(-1, 4)
        boxes = np.concatenate([slot.found.people.xyxy, slot.found.poses.xyxy, held])
        hard = alpha == 255
        if not len(boxes) and not hard.any():
            return alpha, Learning()
        margin = masks.grown_boxes_mask(boxes, shape, LEARN_MARGIN)
        near = masks.grown_boxes_mask(boxes, shape, COMPLETION_REACH)
        learned, known = (None, None) if reference is None else reference
        added = motion.complete_foreground(
            slot.frame.image, hard, near, margin, learned, known, threshold=config.motion_threshold
        )
        if added.any():
            self._counts.completed += 1
            hard |= added
            alpha = np.maximum(alpha, masks.feather(hard.view(np.uint8) * 255, config.feather))
        if self.ready:
            self.background.forget_same(slot.frame.image, hard)
        suspect = masks.grown_boxes_mask(boxes, shape, SUSPECT_ZONE)
        return alpha, Learning(margin | hard, suspect)

    def learn(self, slot: Slot, alpha: np.ndarray, learning: Learning, scene: Recorder | None) -> None:
        """Learn from ``slot``, final (its image and alpha on the compositing device; ``alpha``: the
        same, numpy); ``scene``: a file's first pass, which keeps checkpoints of what was learned."""
        image = slot.frame.image
        if slot.manual is not None and len(slot.manual) and self.ready:
            # what a manual box covers is never shown, even where the background learned it before the box began
            self.background.forget(masks.boxes_mask(slot.manual, image.shape[:2]) > 0)
        self.background.update(slot.image, slot.alpha, exclude=learning.exclude, near=learning.near)
        if scene is not None:
            scene.learned(slot.t, self.background, image, alpha)


def _bodies(new: NewTracks, shape: tuple[int, int]) -> np.ndarray:
    """Bool (H, W): where the new tracks' people are: their bodies from their keypoints, else their boxes."""
    tracked = new.people
    where = np.zeros(shape, np.uint8)
    for box in new.boxes:
        person = None
        if tracked.keypoints is not None and len(tracked):
            iou = box_iou(np.asarray(box, np.float32)[None], tracked.xyxy)[0]
            person = int(iou.argmax()) if iou.max() > 0.9 else None
        if person is None:
            where |= masks.boxes_mask(np.asarray(box)[None], shape)
        else:
            where |= masks.body_mask(tracked.keypoints[person : person + 1], tracked.xyxy[person : person + 1], shape)
    return where > 0
