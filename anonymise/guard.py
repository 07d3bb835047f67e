"""The motion guard: what moves and no detection explains is masked, and looked at again.

:class:`Guard` runs on each frame the stream finalises (fail closed, once the background has a
reference to compare with), after the detections' alpha is built:

- **guard**: every moving, person-sized region is masked; one no detection explains is grown and
  gets a **second look** (the models on a crop around it, at the size of :data:`LOOK_SIZES` that shows
  it at least ``TARGET_PERSON_PX`` tall, :func:`look_size`), and so do
  the held tracks no detection of the frame overlaps, so a lost person gets their skeleton back;
- **carry**: a box masked in the frame before stays masked while the background cannot vouch for
  what is under it (see :meth:`Guard._carry`).

The models are not the guard's: it is handed a :data:`Look` (the stream's, which shares them with
its detect stage); :func:`second_look` is the one the stream uses.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import masking, masks, motion
from .config import TARGET_PERSON_PX, Config
from .detections import Detections, box_ioa, box_iou, suppress
from .slot import Counts, Slot, to_numpy
from .track import grow

if TYPE_CHECKING:
    from .background import BackgroundModel, TorchBackgroundModel
    from .person_detector import PersonDetector

log = logging.getLogger(__name__)

#: unexplained motion regions are masked this much larger (fraction of their size per side)
MOTION_GROWTH = 0.25
#: inference size of the second look at a crop around an unexplained region, at most
SECOND_LOOK_IMGSZ = 320
#: the look's sizes (px): each crop runs at the smallest that shows its region at least
#: TARGET_PERSON_PX tall (the height the small search is sized for), else at SECOND_LOOK_IMGSZ; a few
#: fixed sizes, so the runtimes compile few input shapes. In a crowd most looks are at people
#: already large enough in their crop: a held track's (little context) runs at 160 px, a quarter of
#: the cost at 320
LOOK_SIZES = (160, 224, SECOND_LOOK_IMGSZ)
#: context around an unexplained region in its second-look crop (times its size, per side)
SECOND_LOOK_CONTEXT = 1.0
#: the same around a held box (already grown with the time its track is lost)
HELD_LOOK_CONTEXT = 0.25
#: a held box that overlaps a detection of the frame this much (IoU) is that person, seen: no look
HELD_SEEN_IOU = 0.1
#: a held track whose looks found nobody this many frames in a row gets no more looks until it is
#: detected again (it stays masked: the hold does that); on pedestrians.mp4 a third of the looks at
#: held tracks found nobody, most of them at people who had left or were hidden
HELD_LOOK_MISSES = 3
#: a look's target (an unexplained region, a held box) that overlaps this much (IoU) a target of the
#: frame before whose look found someone gets no look of its own, up to ``LOOK_REUSES`` frames in a
#: row: those people, moved as the target moved, stand for it (masked, their skeletons drawn), and
#: then it is looked at again. In a crowd the looks were most of the models' time
LOOK_AGAIN_IOU, LOOK_REUSES = 0.3, 2
#: a person a look found belongs to each target they overlap this much (IoU), or hold this share of
LOOK_FOUND_IOU, LOOK_FOUND_HOLDS = 0.1, 0.5
#: seconds a pixel counts as moving after it last changed: a person who stops walking is still guarded
MOTION_MEMORY_S = 5.0
#: a box masked in the previous frame stays masked while at least this share of it is forgotten
#: background unlike what was there before (someone may still be standing in it), for at most
#: MOTION_MEMORY_S
CARRY_SUSPECT = 0.25

#: people found on crops of ``image`` around ``regions`` (K, 4), each with its ``context`` (K,), in frame coordinates
Look = Callable[[np.ndarray, np.ndarray, np.ndarray], Detections]


class Guard:
    """One video's motion guard and carry (module docstring); it remembers the frames it saw."""

    def __init__(self, background: BackgroundModel | TorchBackgroundModel, counts: Counts, fps: float, look: Look):
        """``counts``: the run's, added to; ``look``: the second look (see :data:`Look`)."""
        self.background = background
        self._counts = counts
        self._look = look
        self._memory = max(1, round(MOTION_MEMORY_S * fps))  # frames
        self._previous: np.ndarray | None = None  # the last frame finalised
        self._last_moved: np.ndarray | None = None  # int32 (H, W): frame when each pixel last changed
        self._look_misses: dict[int, int] = {}  # held track id -> looks in a row that found nobody
        self._masked: list[tuple[np.ndarray, int]] = []  # boxes masked in the last final frame, with their carry age
        #: (frame, its look targets, the people found for each, frames each was reused): for the next frame
        self._looked: tuple[int, np.ndarray, list[Detections], np.ndarray] | None = None

    def check(
        self, slot: Slot, alpha: np.ndarray, reference: tuple[np.ndarray, np.ndarray], config: Config
    ) -> np.ndarray:
        """``alpha`` with what the guard and the carry mask in ``slot`` (their boxes are added to its
        ``extra``). ``reference``: the background's ``(learned values, known)`` to compare with."""
        alpha = self._guard(slot, alpha, reference, config)
        return self._carry(slot, alpha, reference[0], config)

    def passed(self, image: np.ndarray) -> None:
        """The frame just finalised, guarded or not: the next one's motion is measured against it."""
        self._previous = image

    def _guard(
        self, slot: Slot, alpha: np.ndarray, reference: tuple[np.ndarray, np.ndarray], config: Config
    ) -> np.ndarray:
        """Mask every moving, person-sized region; look again at those no detection explains.

        Where such a region disagrees with the background outside the person mask, the background
        is not trusted: it may hold a person it learned while the detector missed them (a ghost
        beside where they are now), so those pixels are forgotten (inpainted until seen free
        again) and can never come back as fill.
        """
        reference, known = reference
        learned = to_numpy(self.background.seen)
        image = slot.frame.image
        if self._last_moved is None or self._last_moved.shape != image.shape[:2]:
            self._last_moved = np.full(image.shape[:2], -(2**30), np.int32)
        now = motion.moved(image, self._previous, config.motion_threshold)
        self._last_moved[now] = slot.t
        recent = (slot.t - self._last_moved) <= self._memory
        # Remembered motion counts only against what the background really learned: against a
        # prior it would flag the prior's own ghost of a slow walker, mask it, and so never replace it.
        near_now = cv2.dilate(now.view(np.uint8), np.ones((7, 7), np.uint8)).view(bool)
        trusted = learned | (known & near_now)
        regions = motion.moving_regions(
            image,
            recent,
            reference,
            trusted,
            alpha,
            threshold=config.motion_threshold,
            min_height=max(config.min_person // 2, 4),
        )
        # tracks the detector lost this frame are masked (held); a look on a crop gets their skeleton back
        held, held_ids = self._held_unseen(slot, config.looks)
        if not len(regions.boxes) and not len(held):
            return alpha
        # not under the person mask: there the background is the scene learned before they came
        self.background.forget(regions.foreground & (alpha == 0))
        unexplained = regions.boxes[~regions.explained]
        looks = np.concatenate([unexplained, held]) if config.looks else unexplained[:0]
        if len(looks):
            context = np.r_[np.full(len(unexplained), SECOND_LOOK_CONTEXT), np.full(len(held), HELD_LOOK_CONTEXT)]
            again, moved, reused = self._looked_before(looks, slot.t)
            fresh = self._look(image, looks[~again], context[~again]) if (~again).any() else Detections.empty()
            mine = _belonging(looks, fresh)
            for j in np.flatnonzero(again):
                mine[j] = moved[j]
            self._looked = (slot.t, looks, mine, reused)
            self._counts.looks_reused += int(again.sum())
            found = Detections.concat([fresh, *(moved[j] for j in np.flatnonzero(again))])
            self._count_misses(held, held_ids, found)
            if len(found) and found.keypoints is not None:
                found.xyxy = masks.body_boxes(found.keypoints, found.xyxy, image.shape[:2])
            slot.extra.extend(found.xyxy)  # every box is masked, duplicates included (as across tiles)
            found = found[suppress(found, kept=slot.found.poses.xyxy)] if len(found) else found  # each skeleton once
            if len(found):
                self._counts.second_look += len(found)
                slot.why["second_look"] = len(found)
                if slot.found.poses.tracker_id is not None:
                    found.tracker_id = np.full(len(found), -1, np.int64)  # untracked, and keeps the others' ids
                slot.found.poses = Detections.concat([slot.found.poses, found]) if len(slot.found.poses) else found
        self._counts.motion += len(unexplained)
        slot.why["motion"] = len(unexplained)
        slot.extra.extend(regions.boxes[regions.explained])  # what sticks out of a detection's mask
        slot.extra.extend(grow(box, MOTION_GROWTH) for box in unexplained)
        return masking.alpha(slot.frame.image, slot.found, slot.extra, config)

    def _carry(self, slot: Slot, alpha: np.ndarray, reference: np.ndarray, config: Config) -> np.ndarray:
        """Keep masking last frame's boxes where the background cannot vouch for what is there.

        The motion guard forgets the background under a region it cannot explain (it may be a
        ghost). If the person there then stands still and the mask is released (the hold runs
        out), those pixels would show them, and be learned as the empty scene on first sight; the
        guard, which trusts learned pixels only, could not see them. So a box masked in the
        previous frame stays masked while at least CARRY_SUSPECT of its part outside this frame's
        mask is forgotten and unlike the value the background had there before, for at most the
        motion memory (what the mask covers is a person found there, who explains the change).
        """
        image = slot.frame.image
        forgotten = to_numpy(self.background.forgotten)
        height, width = alpha.shape
        masked = [(np.asarray(b, np.float32), 0) for b in [*slot.found.people.xyxy, *slot.extra]]
        carried = []
        for box, age in self._masked:
            if age >= self._memory:
                continue
            left, top = max(int(box[0]), 0), max(int(box[1]), 0)
            right, bottom = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
            if right <= left or bottom <= top or (alpha[top:bottom, left:right] > 0).all():
                continue
            unlike = motion.moved(
                image[top:bottom, left:right], reference[top:bottom, left:right], config.motion_threshold
            )
            open_ = (
                alpha[top:bottom, left:right] == 0
            )  # what this frame's mask already covers is explained (a person found there)
            suspect = forgotten[top:bottom, left:right] & unlike & open_
            if np.count_nonzero(suspect) >= CARRY_SUSPECT * np.count_nonzero(open_):
                carried.append(box)
                masked.append((box, age + 1))
        self._masked = masked
        if not carried:
            return alpha
        self._counts.carried += len(carried)
        slot.why["carried"] = len(carried)
        slot.extra.extend(carried)
        return masking.alpha(image, slot.found, slot.extra, config)

    def _held_unseen(self, slot: Slot, looks: bool) -> tuple[np.ndarray, np.ndarray]:
        """(boxes, track ids) of the held tracks worth a look: those no detection of this frame
        overlaps (a lost track is often the same person under a new track id, already seen), and
        whose last HELD_LOOK_MISSES looks did not all find nobody."""
        ids = np.asarray(slot.held_ids, np.int64)
        still = set(ids.tolist())  # a track no longer held was detected again (or dropped): it starts again
        self._look_misses = {i: n for i, n in self._look_misses.items() if i in still}
        if not looks or slot.held is None or not len(slot.held):
            return np.zeros((0, 4), np.float32), ids[:0]
        held = np.asarray(slot.held, np.float32).reshape(-1, 4)
        if len(ids) != len(held):
            ids = np.full(len(held), -1, np.int64)
        # the tracks a strided frame carried on were seen by the last search, and the next one
        # searches for them (interpolating their skeletons): no look
        coasted = set(slot.coasted)
        keep = np.array([self._look_misses.get(int(i), 0) < HELD_LOOK_MISSES and i not in coasted for i in ids], bool)
        seen = np.concatenate([slot.found.people.xyxy, slot.found.poses.xyxy])
        if len(seen):
            keep &= (box_iou(held, seen) < HELD_SEEN_IOU).all(axis=1)
        return held[keep], ids[keep]

    def _looked_before(self, targets: np.ndarray, t: int) -> tuple[np.ndarray, list[Detections], np.ndarray]:
        """Which ``targets`` a look on the frame before stands for (``LOOK_AGAIN_IOU``, ``LOOK_REUSES``),
        the people it found for each (moved as the target moved, by the targets' centres; empty where
        none), and how many frames in a row each has been reused (0: looked at now)."""
        again = np.zeros(len(targets), bool)
        moved = [Detections.empty() for _ in targets]
        reused = np.zeros(len(targets), np.int64)
        if self._looked is None or self._looked[0] != t - 1 or not len(self._looked[1]):
            return again, moved, reused
        _, before, found, count = self._looked
        iou = box_iou(targets, before)
        for j, row in enumerate(iou):
            i = int(row.argmax())
            if row[i] < LOOK_AGAIN_IOU or not len(found[i]) or count[i] >= LOOK_REUSES:
                continue
            again[j], reused[j] = True, count[i] + 1
            dx, dy = (targets[j, :2] + targets[j, 2:] - before[i, :2] - before[i, 2:]) / 2
            moved[j] = found[i].shifted(float(dx), float(dy))
        return again, moved, reused

    def _count_misses(self, held: np.ndarray, ids: np.ndarray, found: Detections) -> None:
        """After a look: each held track it found (a person overlapping its box) starts its count
        again; each it did not find counts one more miss."""
        if not len(held):
            return
        hit = (box_iou(held, found.xyxy) >= HELD_SEEN_IOU).any(axis=1) if len(found) else np.zeros(len(held), bool)
        for i, h in zip(ids.tolist(), hit):
            if i >= 0:
                self._look_misses[i] = 0 if h else self._look_misses.get(i, 0) + 1


def _belonging(targets: np.ndarray, found: Detections) -> list[Detections]:
    """The people of ``found`` that belong to each target (``LOOK_FOUND_IOU``, ``LOOK_FOUND_HOLDS``)."""
    if not len(found):
        return [Detections.empty() for _ in targets]
    mine = (box_iou(found.xyxy, targets) >= LOOK_FOUND_IOU) | (box_ioa(found.xyxy, targets) >= LOOK_FOUND_HOLDS)
    return [found[mine[:, j]] for j in range(len(targets))]


def second_look(
    detector: PersonDetector,
    models: AbstractContextManager,
    image: np.ndarray,
    regions: np.ndarray,
    context=SECOND_LOOK_CONTEXT,
) -> Detections:
    """People ``detector`` finds on crops around ``regions``, at a higher resolution, in frame
    coordinates. ``models``: the lock the detector's models are called under (see :func:`_look`)."""
    context = np.broadcast_to(np.asarray(context, np.float32), (len(regions),))
    windows = [motion.crop_window(box, image.shape[:2], float(c)) for box, c in zip(regions, context)]
    crops = [np.ascontiguousarray(image[top:bottom, left:right]) for left, top, right, bottom in windows]
    sizes = [look_size(box, crop.shape[:2]) for box, crop in zip(regions, crops)]
    found = []
    try:
        for (left, top, _, _), people in zip(windows, _look(detector, models, crops, sizes)):
            if len(people):
                found.append(people.shifted(left, top))
    except Exception as e:  # noqa: BLE001 - the regions are masked anyway
        log.warning("second look failed: %s", e)
    return Detections.concat(found)


def look_size(region: np.ndarray, crop: tuple[int, int]) -> int:
    """The look's size for ``region`` (x0, y0, x1, y1) in a crop of ``crop`` (H, W) px: the smallest of
    :data:`LOOK_SIZES` at which the region is TARGET_PERSON_PX tall (the crop is padded to a square)."""
    side = max(crop)
    height = float(region[3] - region[1])
    for size in LOOK_SIZES:
        if height * size >= TARGET_PERSON_PX * side:
            return size
    return SECOND_LOOK_IMGSZ


def _look(
    detector: PersonDetector, models: AbstractContextManager, crops: list[np.ndarray], sizes: list[int]
) -> list[Detections]:
    """The people on each crop at its size (one call per size), under ``models`` unless the detector's
    looks run on a twin of its models (then beside the detect stage)."""
    found: list[Detections | None] = [None] * len(crops)
    shared = detector.look_shares_models()
    for size in sorted(set(sizes)):
        which = [i for i, s in enumerate(sizes) if s == size]
        with models if shared else contextlib.nullcontext():
            people = detector.look([crops[i] for i in which], size)
        for i, p in zip(which, people):
            found[i] = p
    return found
