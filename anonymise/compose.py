"""The compose stage: a final slot becomes an output frame (:class:`Anonymised`).

The people are replaced by the fill (:func:`anonymise.composite.fill`: the background blended over them,
or a blur, a silhouette...), or the whole frame by the canvas, and skeletons are drawn. A frame whose
compositing fails is written fully covered (fail closed). A file's first pass
(:mod:`anonymise.scene`) records the slot instead, and :meth:`Compositor.replay` composes the file's
frames in its second pass, over the scene the whole clip shows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import colours, composite, pose, scene
from .config import Config, Fill
from .detections import Detections
from .io.video import Frame
from .ledger import Ledger
from .slot import Counts, Slot, to_numpy

if TYPE_CHECKING:
    import torch

    from .background import BackgroundModel, TorchBackgroundModel
    from .canvas import Canvas

log = logging.getLogger(__name__)


@dataclass
class Anonymised:
    """One output frame, and what was found in it.

    Unpacks as ``(frame, image)``: ``for frame, out in anonymiser.anonymise_frames(...)``.
    """

    #: the input frame (its image unchanged, its timing and audio)
    frame: Frame
    #: the anonymised image (``None`` when the stream makes none: keypoints only)
    image: np.ndarray | None
    #: the people whose skeletons were drawn (keypoints, track ids); empty when pose is off
    poses: Detections = field(default_factory=Detections.empty)
    #: ``(alpha, background)`` of this frame when the stream runs with a debug view
    debug: tuple[np.ndarray, np.ndarray | None] | None = None

    def __iter__(self):
        return iter((self.frame, self.image))


class Compositor:
    """One video's compose stage over ``background`` (or ``canvas``); records each frame in ``ledger``."""

    def __init__(
        self,
        background: BackgroundModel | TorchBackgroundModel,
        canvas: Canvas | None,
        counts: Counts,
        ledger: Ledger,
    ):
        """``counts``: the run's, added to."""
        self.background = background
        self.canvas = canvas
        self._counts = counts
        self._ledger = ledger

    def compose(
        self, slot: Slot, config: Config, *, images: bool, debug: bool, recorder: scene.Recorder | None
    ) -> Anonymised:
        """``slot`` (final) as an output frame. ``images`` off: no image (keypoints only); ``debug``: with
        its ``(alpha, background)``; ``recorder``: a file's first pass, where the slot is recorded instead."""
        self._counts.frames += 1
        found = slot.found
        self._record(slot)
        has_poses = found is not None and len(found.poses) and found.poses.keypoints is not None
        poses = found.poses if has_poses else Detections.empty()
        if recorder is not None:  # a file's first pass: composed in the second (replay)
            recorder.record(_record_of(slot, to_numpy(slot.alpha), poses))
            return Anonymised(slot.frame, None, poses)
        if not images:
            return Anonymised(slot.frame, None, poses)
        try:
            out, background = self._fill(slot, config, debug)
            if has_poses and isinstance(background, np.ndarray) and self.background.seen is not None:
                poses = poses[present(poses.xyxy, slot.frame.image, background, ~to_numpy(self.background.seen))]
            if config.pose and config.draw_pose and len(poses):
                out = draw(out, poses, config)
            return Anonymised(slot.frame, out, poses, (to_numpy(slot.alpha), to_numpy(background)) if debug else None)
        except Exception as e:  # noqa: BLE001 - fail closed: the whole frame becomes background
            log.warning("compositing failed on frame %d, written fully masked: %s", slot.t, e)
            self._counts.failed += 1
            if not slot.why.get("failed"):
                self._ledger.record(slot.t, failed=1)
            try:
                return Anonymised(slot.frame, to_numpy(self.background.image()))
            except Exception:  # noqa: BLE001
                return Anonymised(slot.frame, np.zeros_like(slot.frame.image))

    def replay(
        self, frames: Iterable[Frame], clip: scene.ClipScene, config: Config, debug: bool
    ) -> Iterator[Anonymised]:
        """A file's second pass (:mod:`anonymise.scene`): ``frames``, decoded again, composed as the first
        pass decided, over the scene the whole clip shows. A frame the first pass has no record of
        (the decoder gave more this time) is written fully covered."""
        records = clip.records()
        c = config
        for t, frame in enumerate(frames):
            record = next(records, None)
            image = frame.image
            if record is None or record.t != t or record.alpha.shape != image.shape[:2]:
                log.warning("frame %d was not seen by the first pass: written fully masked", t)
                self._counts.failed += 1
                record = scene.Record(t, np.full(image.shape[:2], 255, np.uint8), Detections.empty(), None, True)
            try:
                background, unseen = clip.at(t, image, record.alpha, whole=debug)
                out = composite.fill(image, background, record.alpha, c.fill, record.boxes)
                poses = record.poses
                if len(poses) and poses.keypoints is not None:
                    poses = poses[present(poses.xyxy, image, background, unseen)]
                    if c.pose and c.draw_pose and len(poses):
                        out = draw(out, poses, c)
                yield Anonymised(frame, out, poses, (record.alpha, background) if debug else None)
            except Exception as e:  # noqa: BLE001 - fail closed: the whole frame becomes the scene
                log.warning("compositing failed on frame %d, written fully masked: %s", t, e)
                self._counts.failed += 1
                try:
                    covered, _ = clip.at(t, image, np.full(image.shape[:2], 255, np.uint8))
                except Exception:  # noqa: BLE001
                    covered = np.zeros_like(image)
                yield Anonymised(frame, covered, record.poses)

    def _record(self, slot: Slot) -> None:
        people = slot.found.people if slot.found is not None else Detections.empty()
        ids = people.tracker_id if people.tracker_id is not None else ()
        height, width = slot.frame.image.shape[:2]
        self._ledger.record(
            slot.t,
            tracks=ids,
            held_tracks=slot.held_ids,
            people=len(people),
            boxes=people.xyxy if len(ids) else None,
            confidence=people.confidence if len(ids) and people.confidence is not None else None,
            size=(width, height),
            **slot.why,
        )

    def _fill(self, slot: Slot, config: Config, debug: bool) -> tuple[np.ndarray, np.ndarray | torch.Tensor | None]:
        """(the frame with its people replaced, or the canvas; the background used)."""
        shape = slot.frame.image.shape[:2]
        if self.canvas is not None:
            background = self.background.image() if debug else None
            return self.canvas.frame(slot.t, shape), background
        background = self.background.image()
        if config.fill is Fill.BACKGROUND and not isinstance(slot.image, np.ndarray):  # on the device
            return composite.blend_torch(slot.image, background, slot.alpha).cpu().numpy(), background
        out = composite.fill(slot.frame.image, to_numpy(background), to_numpy(slot.alpha), config.fill, boxes(slot))
        return out, background


#: a skeleton is drawn where at least this share of its box is unlike the scene behind it (by more
#: than PRESENT_TOL levels) or over scene never seen: someone is there
PRESENT_SHARE = 0.1
PRESENT_TOL = 30


def present(xyxy: np.ndarray, image: np.ndarray, background: np.ndarray, unseen: np.ndarray) -> np.ndarray:
    """Bool (N,): which of the boxes ``xyxy`` hold someone: at least PRESENT_SHARE of the box is unlike
    ``background`` (the scene behind, as lit now) or over ``unseen`` scene. A skeleton over empty
    floor (a faint false find of a deep sweep, a held track after its person left) is not drawn;
    its box stays masked."""
    height, width = image.shape[:2]
    keep = np.ones(len(xyxy), bool)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(xyxy, np.float32).reshape(-1, 4)):
        left, top = max(int(x1), 0), max(int(y1), 0)
        right, bottom = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
        if right <= left or bottom <= top:
            continue
        window = np.s_[top:bottom, left:right]
        unlike = np.abs(image[window].astype(np.int16) - background[window].astype(np.int16)).max(axis=-1) > PRESENT_TOL
        keep[i] = np.count_nonzero(unlike | unseen[window]) >= PRESENT_SHARE * unlike.size
    return keep


def boxes(slot: Slot) -> np.ndarray | None:
    """Every box masked in the frame (the per-person fills size by them), or None."""
    masked = [slot.extra] if len(slot.extra) else []
    if slot.found is not None and len(slot.found.people):
        masked.append(slot.found.people.xyxy)
    return np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in masked]) if masked else None


def draw(image: np.ndarray, poses: Detections, config: Config, scale: float = 1.0) -> np.ndarray:
    """``poses``' skeletons on ``image`` as ``config`` says; ``scale``: lines that much thicker
    (a photo composed at ``scale`` times its working size, :mod:`anonymise.still`)."""
    c = config
    track_ids = colour = None
    if c.skeleton_colour == "track":
        track_ids = poses.tracker_id if poses.tracker_id is not None else np.full(len(poses), -1)
    elif c.skeleton_colour != "limbs":
        colour = colours.parse_colour(c.skeleton_colour)
    thickness = c.thickness if c.thickness is None else max(1, round(c.thickness * scale))  # None: by size
    return pose.draw_skeleton(
        image, poses.keypoints, c.pose_conf, thickness, track_ids=track_ids, colour=colour, show_conf=c.show_conf
    )


def _record_of(slot: Slot, alpha: np.ndarray, poses: Detections) -> scene.Record:
    """What a file's first pass keeps of a final slot for its second (:meth:`Compositor.replay`)."""
    return scene.Record(slot.t, alpha, poses.shifted(0, 0), boxes(slot), bool(slot.why.get("failed")))
