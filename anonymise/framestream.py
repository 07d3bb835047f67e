"""The per-frame work for one video, in order, with a look-ahead buffer.

``FrameStream.push(frames)`` takes decoded frames and returns the anonymised ones that are
ready, ``lookahead`` frames behind the input:

1. **detect** people (one batched model call), fail closed: a batch the models fail on is
   fully masked. :meth:`FrameStream.detect` may run ahead in another thread (the pipeline's
   inference stage) and hand its result to ``push``; model calls are serialised by a lock,
   so the second looks below can share the models;
2. **track** them (Ultralytics ByteTrack) and **hold** lost tracks for ``hold`` frames;
   a new track is **back-filled** into the buffered frames before it, a gap is **filled**
   with interpolated boxes (both need the frames still in the buffer);
3. **finalise** a frame ``depth = min(hold, lookahead)`` frames after it arrived, once no
   back-fill can reach it: its mask is built (each person's **whole body** from their
   keypoints, see :func:`anonymise.masks.body_boxes`), the **motion guard** masks moving
   person-sized regions that nothing explains (after a second look on a crop), **foreground
   completion** adds what touches a person and is not the known background, and only then does
   the **background** learn from it, outside a margin around every person and only where it
   has been still for a few frames, so it never learns a held, back-filled or unexplained
   region, nor a part of a person the detector missed;
4. **compose** a frame ``lookahead`` frames after it arrived: background blended over the
   people, skeletons drawn.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from . import masking, masks, motion, scene
from .compose import Anonymised, Compositor
from .compose import draw as draw_skeletons
from .config import Config, auto_imgsz
from .detections import Detections, box_iou, suppress
from .errors import AnonymiseError, ConfigError
from .hold import Hold
from .io.video import Frame
from .learning import Learner, Learning
from .ledger import Ledger
from .policy import ScalePolicy, moving_boxes, scene_cut, shrunk, thumbnail
from .slot import Counts, Slot, to_numpy
from .track import grow

log = logging.getLogger(__name__)

#: unexplained motion regions are masked this much larger (fraction of their size per side)
MOTION_GROWTH = 0.25
#: inference size of the second look at a crop around an unexplained region
SECOND_LOOK_IMGSZ = 320
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
#: seconds a pixel counts as moving after it last changed: a person who stops walking is still guarded
MOTION_MEMORY_S = 5.0
#: a box masked in the previous frame stays masked while at least this share of it is forgotten
#: background unlike what was there before (someone may still be standing in it), for at most
#: MOTION_MEMORY_S
CARRY_SUSPECT = 0.25


def reconfigured(detector, **changes):
    """``detector`` with some settings changed (a photo's ``preset``): a shallow copy, so the
    anonymiser's own detector, and its loaded models, are shared and keep their settings."""
    import copy

    if not hasattr(detector, "config"):  # a synthetic detector: nothing to change
        return detector
    detector = copy.copy(detector)
    detector.config = detector.config.replace(**changes)
    return detector


class FrameStream:
    """The frames of one video through detect, track, mask, background and compose."""

    def __init__(
        self,
        config: Config,
        detector,
        background,
        lookahead: int,
        fail_closed: bool,
        to_device,
        fps: float = 30.0,
        debug: bool = False,
        images: bool = True,
        manual=None,
    ):
        """``manual``: a :class:`~anonymise.manifest.Manifest` whose boxes are masked in their frames.

        ``debug``: each :class:`Anonymised` also carries ``debug = (alpha, background)`` (numpy).

        ``images`` off (keypoints only, ``anonymise export``): no output image is made (``image`` is
        ``None``): no fill, no skeleton drawing. Detection, tracking, the look-ahead and the motion
        guard's second looks still run, so the keypoints are the ones a video run would draw.
        """
        self.config = config
        self.debug = debug
        self.images = images or debug
        self.canvas = None
        if config.canvas is not None:
            from .canvas import Canvas

            try:
                self.canvas = Canvas.parse(config.canvas)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        self.detector = detector
        self.background = background
        self.lookahead = lookahead
        self.depth = min(config.hold, lookahead)
        self.fail_closed = fail_closed
        self.to_device = to_device
        self.counts = Counts()
        #: what was masked in which frame, and why (the redaction report's record)
        self.ledger = Ledger()
        self.manual = manual
        self._buffer: deque[Slot] = deque()
        self._unsent: deque[Anonymised] = deque()  # composed, not yet handed out (see hand_out)
        #: whether the detect stage that ran ahead of this stream stopped (``anonymise_frames`` sets it):
        #: only then may a stop :meth:`flush` what the look-ahead holds
        self.detect_stopped = True
        #: a live recording keeps its tail at a stop: the batches detected and not yet pushed are pushed
        #: as the detect stage closes (``anonymise_frames``), and :meth:`flush` writes them with the rest
        self.keeps_tail = False
        self._previous: np.ndarray | None = None
        self._last_moved: np.ndarray | None = None  # int32 (H, W): frame when each pixel last changed
        self._look_misses: dict[int, int] = {}  # held track id -> looks in a row that found nobody
        self._motion_memory = max(1, round(MOTION_MEMORY_S * fps))
        self._t = 0
        self._detected_any = False
        self._masked: list[tuple[np.ndarray, int]] = []  # boxes masked in the last final frame, with their carry age
        self._models = threading.Lock()  # the detect stage and the second looks share the models
        self._scale: ScalePolicy | None = None  # made on the first frame (it needs the frame size)
        self._thumbnail: np.ndarray | None = None  # of the last frame detected, for scene cuts
        self._shrunk: np.ndarray | None = None  # of the last frame detected, for what moved since (policy.area)
        self._moving: np.ndarray | None = None  # boxes of what moved into the frames of the next model call
        #: a file's first pass (:mod:`anonymise.scene`): frames are recorded there, not composed
        self.scene: scene.Recorder | None = None
        self._hold = Hold(config, self.depth, self.counts)
        self._learner = Learner(background, self.counts)
        self._compositor = Compositor(background, self.canvas, self.counts, self.ledger)

    # -- intake ---------------------------------------------------------------------------

    def push(self, frames: list[Frame], found: list | None = None) -> list[Anonymised]:
        """Add decoded frames; return the (frame, output) pairs that are ready, in order.

        ``found``: what :meth:`detect` returned for these frames, when it ran ahead (else it runs now).
        """
        if self.manual is not None and self._t == 0 and frames:
            height, width = frames[0].image.shape[:2]
            self.manual.check_size(width, height, "the video")
        detections = self.detect(frames) if found is None else found
        ready = []
        for frame, people in zip(frames, detections):
            slot = Slot(self._t, frame, people)
            if self.manual is not None:
                slot.manual = self.manual.boxes(self._t)
                if len(slot.manual):  # always masked, and never learned (see Learner.learn)
                    slot.mask("manual", slot.manual)
            self._buffer.append(slot)
            if people is not None:
                masking.whole_bodies(slot, self.config.mode)
                new = self._hold.track(slot, self._buffer, self.config.pose)
                if new is not None:
                    self._learner.forget_new(new, frame.image, whole_clip=self.scene is not None)
            lapse = self._scale.lapse if self._scale is not None else None
            self._hold.sweep(slot, self._buffer, lapse, self.config.pose)
            self._t += 1
            if len(self._buffer) > self.depth:
                self._finalise(self._buffer[-1 - self.depth])
            while len(self._buffer) > self.lookahead:
                ready.append(self._compose(self._buffer.popleft()))
        return ready

    @property
    def buffered(self) -> int:
        """Frames pushed and not yet handed out (the look-ahead's, and those :meth:`hand_out` holds)."""
        return len(self._buffer) + len(self._unsent)

    def hand_out(self, ready: list[Anonymised]) -> Iterator[Anonymised]:
        """``ready`` one by one; those not taken when the consumer stops (a live stop closes the
        generator mid-batch) stay here, and :meth:`flush` returns them first."""
        self._unsent.extend(ready)
        while self._unsent:
            yield self._unsent.popleft()

    def hold(self, ready: list[Anonymised]) -> None:
        """Frames ready, kept for :meth:`flush` (no consumer takes them now: a stop)."""
        self._unsent.extend(ready)

    def flush(self) -> list[Anonymised]:
        """Everything still buffered, at the end of the input (or at a live stop)."""
        for slot in self._buffer:
            if slot.open:
                self._finalise(slot)
        ready = [*self._unsent, *(self._compose(slot) for slot in self._buffer)]
        self._unsent.clear()
        self._buffer.clear()
        return ready

    def detect(self, frames: list[Frame]) -> list:
        """The models' people for ``frames``, one ``None`` per frame when they fail (fail closed).

        Thread-safe against the stream's own model calls; the first batch's failure is raised
        (a model that never worked is a setup error, not a frame to mask).
        """
        try:
            images = [f.image for f in frames]
            small, large = self._passes(images)
            tiles = self._scale.tiles(len(images)) if self._scale is not None and small else None
            deep = self._scale.deep(len(images)) if self._scale is not None and small else None
            area = None
            if self._scale is not None and small and tiles is None and deep is None:
                area = self._scale.area(len(images), self._moving)
            with self._models:
                if small and large and tiles is None and deep is None and area is None:
                    found = self.detector(images)
                else:
                    options = {} if tiles is None else {"tiles": tiles}
                    if tiles is not None and self._scale.crops:
                        options["crops"] = self._scale.crops
                    if deep is not None:
                        options["search"] = deep[0]
                    if area is not None:
                        options["area"] = area
                    found = self.detector(images, small=small, large=large, **options)
            if deep is not None:
                size, which = deep
                for f, on in zip(found, which):
                    f.deep = on
            if self._scale is not None and self._scale.strided:
                for f in found:
                    f.strided = True
            self._detected_any = True
            if self._scale is not None:
                self._scale.observe([f.people.xyxy for f in found], [f.tile_only for f in found])
                self.counts.small_skipped = self._scale.skipped["small"]
                self.counts.large_skipped = self._scale.skipped["large"]
                self.counts.tiles_skipped = self._scale.skipped["tiles"]
                self.counts.windowed = self._scale.windowed
            return found
        except AnonymiseError:
            raise
        except Exception as e:
            if not self._detected_any:
                raise
            log.warning("detection failed on %d frame(s), writing them fully masked: %s", len(frames), e)
            return [None] * len(frames)

    def _passes(self, images: list[np.ndarray]) -> tuple[bool, bool]:
        """(small search, frame-scale pass) for this model call (see :class:`~anonymise.policy.ScalePolicy`)."""
        if not getattr(self.detector, "multiscale", False) or not images:
            return True, True
        first = thumbnail(images[0])
        if self._scale is not None and scene_cut(self._thumbnail, first):
            self._scale.cut()
            self.counts.scene_cuts += 1
        self._thumbnail = thumbnail(images[-1]) if len(images) > 1 else first
        if self._scale is None:
            from .detect.tiles import alone_imgsz

            height, width = images[0].shape[:2]
            size = self.config.imgsz or auto_imgsz(width, height, self.config.search_min_person)
            windows = self.detector.windows(width, height) if hasattr(self.detector, "windows") else []
            self._scale = ScalePolicy(
                width,
                height,
                alone_imgsz(width, height, size, bool(windows)),
                self.depth,
                every=self.config.sweep_every,
                stride=self.config.search_every,
                windows=windows,
                search_imgsz=size,
            )
        if self._scale.windowing:  # what moved since the frame before, for the window (ScalePolicy.area)
            now = shrunk(images[-1])
            height, width = images[-1].shape[:2]
            self._moving = moving_boxes(self._shrunk, now, width, height) if len(images) == 1 else None
            self._shrunk = now
        return self._scale.passes(len(images))

    # -- finalising a frame's mask, then learning the background ---------------------------

    def _finalise(self, slot: Slot) -> None:
        if slot.t == 0 and self.fail_closed and len(self._buffer) > 1:
            self._learner.prime([s.frame.image for s in self._buffer])
        image = slot.frame.image
        alpha = None
        learning = Learning()
        if slot.found is not None:
            try:
                alpha = masking.alpha(image, slot.found, slot.extra, self.config)
                reference = self._learner.reference()  # one conversion, shared
                if self.fail_closed and reference is not None:
                    alpha = self._guard(slot, alpha, reference)
                    alpha = self._carry(slot, alpha, reference[0])
                alpha, learning = self._learner.complete(slot, alpha, reference, self.config)
            except Exception as e:  # noqa: BLE001
                log.warning("mask building failed on frame %d, written fully masked: %s", slot.t, e)
                alpha = None
        if alpha is None:
            self.counts.failed += 1
            slot.why["failed"] = 1
            alpha = np.full(image.shape[:2], 255, np.uint8)
            learning = Learning()
        slot.image, slot.alpha = self.to_device(image), self.to_device(alpha)
        self._learner.learn(slot, alpha, learning, self.scene)
        self._previous = image

    @property
    def background_ready(self) -> bool:
        """Whether the background has anything (learned or primed) to compare a frame with."""
        return self._learner.ready

    def _guard(self, slot: Slot, alpha: np.ndarray, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
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
        now = motion.moved(image, self._previous, self.config.motion_threshold)
        self._last_moved[now] = slot.t
        recent = (slot.t - self._last_moved) <= self._motion_memory
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
            threshold=self.config.motion_threshold,
            min_height=max(self.config.min_person // 2, 4),
        )
        # tracks the detector lost this frame are masked (held); a look on a crop gets their skeleton back
        held, held_ids = self._held_unseen(slot)
        if not len(regions.boxes) and not len(held):
            return alpha
        # not under the person mask: there the background is the scene learned before they came
        self.background.forget(regions.foreground & (alpha == 0))
        unexplained = regions.boxes[~regions.explained]
        looks = np.concatenate([unexplained, held]) if self.config.looks else unexplained[:0]
        if len(looks):
            context = np.r_[np.full(len(unexplained), SECOND_LOOK_CONTEXT), np.full(len(held), HELD_LOOK_CONTEXT)]
            found = self._second_look(slot.frame.image, looks, context)
            self._count_misses(held, held_ids, found)
            if len(found) and found.keypoints is not None:
                found.xyxy = masks.body_boxes(found.keypoints, found.xyxy, image.shape[:2])
            slot.extra.extend(found.xyxy)  # every box is masked, duplicates included (as across tiles)
            found = found[suppress(found, kept=slot.found.poses.xyxy)] if len(found) else found  # each skeleton once
            if len(found):
                self.counts.second_look += len(found)
                slot.why["second_look"] = len(found)
                if slot.found.poses.tracker_id is not None:
                    found.tracker_id = np.full(len(found), -1, np.int64)  # untracked, and keeps the others' ids
                slot.found.poses = Detections.concat([slot.found.poses, found]) if len(slot.found.poses) else found
        self.counts.motion += len(unexplained)
        slot.why["motion"] = len(unexplained)
        slot.extra.extend(regions.boxes[regions.explained])  # what sticks out of a detection's mask
        slot.extra.extend(grow(box, MOTION_GROWTH) for box in unexplained)
        return masking.alpha(slot.frame.image, slot.found, slot.extra, self.config)

    def _carry(self, slot: Slot, alpha: np.ndarray, reference: np.ndarray) -> np.ndarray:
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
            if age >= self._motion_memory:
                continue
            left, top = max(int(box[0]), 0), max(int(box[1]), 0)
            right, bottom = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
            if right <= left or bottom <= top or (alpha[top:bottom, left:right] > 0).all():
                continue
            unlike = motion.moved(
                image[top:bottom, left:right], reference[top:bottom, left:right], self.config.motion_threshold
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
        self.counts.carried += len(carried)
        slot.why["carried"] = len(carried)
        slot.extra.extend(carried)
        return masking.alpha(image, slot.found, slot.extra, self.config)

    def _held_unseen(self, slot: Slot) -> tuple[np.ndarray, np.ndarray]:
        """(boxes, track ids) of the held tracks worth a look: those no detection of this frame
        overlaps (a lost track is often the same person under a new track id, already seen), and
        whose last HELD_LOOK_MISSES looks did not all find nobody."""
        ids = np.asarray(slot.held_ids, np.int64)
        still = set(ids.tolist())  # a track no longer held was detected again (or dropped): it starts again
        self._look_misses = {i: n for i, n in self._look_misses.items() if i in still}
        if not self.config.looks or slot.held is None or not len(slot.held):
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

    def _count_misses(self, held: np.ndarray, ids: np.ndarray, found: Detections) -> None:
        """After a look: each held track it found (a person overlapping its box) starts its count
        again; each it did not find counts one more miss."""
        if not len(held):
            return
        hit = (box_iou(held, found.xyxy) >= HELD_SEEN_IOU).any(axis=1) if len(found) else np.zeros(len(held), bool)
        for i, h in zip(ids.tolist(), hit):
            if i >= 0:
                self._look_misses[i] = 0 if h else self._look_misses.get(i, 0) + 1

    def _second_look(self, image: np.ndarray, regions: np.ndarray, context=SECOND_LOOK_CONTEXT) -> Detections:
        """People found on crops around ``regions``, at a higher resolution, in frame coordinates."""
        context = np.broadcast_to(np.asarray(context, np.float32), (len(regions),))
        windows = [motion.crop_window(box, image.shape[:2], float(c)) for box, c in zip(regions, context)]
        crops = [np.ascontiguousarray(image[top:bottom, left:right]) for left, top, right, bottom in windows]
        found = []
        try:
            for (left, top, _, _), people in zip(windows, self._look(crops)):
                if len(people):
                    found.append(people.shifted(left, top))
        except Exception as e:  # noqa: BLE001 - the regions are masked anyway
            log.warning("second look failed: %s", e)
        return Detections.concat(found)

    def _look(self, crops: list[np.ndarray]) -> list[Detections]:
        detector = self.detector
        look = getattr(detector, "look", None)
        shares = getattr(detector, "look_shares_models", None)
        if look is not None and shares is not None and not shares():
            return look(crops, SECOND_LOOK_IMGSZ)  # a twin of the models: beside the detect stage
        with self._models:
            if look is not None:  # one batched call for every crop
                return look(crops, SECOND_LOOK_IMGSZ)
            results = [detector([crop], imgsz=SECOND_LOOK_IMGSZ)[0] for crop in crops]
        return [r.poses if len(r.poses) else r.people for r in results]

    # -- output ----------------------------------------------------------------------------

    def _compose(self, slot: Slot) -> Anonymised:
        return self._compositor.compose(slot, self.config, images=self.images, debug=self.debug, recorder=self.scene)

    def replay(self, frames: Iterable[Frame], clip: scene.ClipScene) -> Iterator[Anonymised]:
        """A file's second pass (:mod:`anonymise.scene`): ``frames``, decoded again, composed as the first
        pass decided, over the scene the whole clip shows (see :meth:`Compositor.replay`)."""
        yield from self._compositor.replay(frames, clip, self.config, self.debug)

    def draw(self, image: np.ndarray, poses: Detections, scale: float = 1.0) -> np.ndarray:
        """``poses``' skeletons on ``image`` as the config says; ``scale``: lines that much thicker
        (a photo composed at ``scale`` times its working size, :mod:`anonymise.still`)."""
        return draw_skeletons(image, poses, self.config, scale)

    def close(self) -> None:
        """Release the canvas (a video canvas holds an open file)."""
        if self.canvas is not None:
            self.canvas.close()
