"""The per-frame work for one video, in order, with a look-ahead buffer.

``FrameStream.push(frames)`` takes decoded frames and returns the anonymised ones that are
ready, ``lookahead`` frames behind the input. The stream keeps the buffer of :class:`~anonymise.slot.Slot`
and calls the stages on it:

1. **detect** people (one batched model call, planned by :mod:`anonymise.planner`), fail closed: a
   batch the models fail on is fully masked. :meth:`FrameStream.detect` may run ahead in another
   thread (the pipeline's inference stage) and hand its result to ``push``; model calls are
   serialised by a lock, so the guard's second looks can share the models;
2. **hold** (:mod:`anonymise.hold`): each person's **whole body** from their keypoints
   (:mod:`anonymise.masking`), then tracks, and lost tracks held for ``hold`` frames; a new track is
   **back-filled** into the buffered frames before it, a gap is **filled** with interpolated boxes
   (both need the frames still in the buffer), and the background forgets what it learned around a
   new track (:mod:`anonymise.learning`);
3. **finalise** a frame ``depth = min(hold, lookahead)`` frames after it arrived, once no
   back-fill can reach it: its mask is built (:mod:`anonymise.masking`), the **motion guard**
   (:mod:`anonymise.guard`) masks moving person-sized regions that nothing explains (after a second
   look on a crop), **foreground completion** adds what touches a person and is not the known
   background, and only then does the **background** learn from it (:mod:`anonymise.learning`),
   outside a margin around every person and only where it has been still for a few frames, so it
   never learns a held, back-filled or unexplained region, nor a part of a person the detector missed;
4. **compose** a frame ``lookahead`` frames after it arrived (:mod:`anonymise.compose`): background
   blended over the people, skeletons drawn.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

from . import guard, masking, scene, things
from .compose import Anonymised, Compositor
from .compose import draw as draw_skeletons
from .config import Config
from .detections import Detections, FrameDetections
from .errors import AnonymiseError, ConfigError
from .guard import SECOND_LOOK_CONTEXT, SECOND_LOOK_IMGSZ, Guard
from .hold import Hold
from .io.video import Frame
from .learning import Learner, Learning
from .ledger import Ledger
from .person_detector import PersonDetector, Plain, person_detector
from .planner import Planner
from .slot import Counts, Slot

__all__ = ["SECOND_LOOK_IMGSZ", "Anonymised", "Counts", "FrameStream", "reconfigured"]

log = logging.getLogger(__name__)


def reconfigured(detector: PersonDetector, **changes) -> PersonDetector:
    """``detector`` with some settings changed (a photo's ``preset``): a shallow copy, so the
    anonymiser's own detector, and its loaded models, are shared and keep their settings."""
    import copy

    if detector.config is None:  # a synthetic detector without settings: nothing to change
        return detector
    detector = copy.copy(detector)
    detector.config = detector.config.replace(**changes)
    if isinstance(detector, Plain):  # the object it wraps reads them
        detector.wrapped = copy.copy(detector.wrapped)
        detector.wrapped.config = detector.config
    return detector


class FrameStream:
    """The frames of one video through detect, hold, mask, guard, background and compose."""

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

        ``config``, ``detector``, ``debug`` and ``images`` may be replaced between frames (a photo's
        working copy, :meth:`anonymise.pipeline.Anonymiser._still`): the stages are handed them at each
        call (the hold's tracker keeps the settings it was made with).
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
        self.detector = detector  # a PersonDetector (see the property)
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
        self._t = 0
        self._detected_any = False
        self._models = threading.Lock()  # the detect stage and the second looks share the models
        #: a file's first pass (:mod:`anonymise.scene`): frames are recorded there, not composed
        self.scene: scene.Recorder | None = None
        # the stages (each adds to the run's counts)
        self._planner = Planner(self.depth, self.counts)
        self._hold = Hold(config, self.depth, self.counts)
        self._guard = Guard(background, self.counts, fps, self._second_look)
        self._learner = Learner(background, self.counts)
        self._compositor = Compositor(background, self.canvas, self.counts, self.ledger)

    # -- intake ---------------------------------------------------------------------------

    def push(self, frames: list[Frame], found: list[FrameDetections | None] | None = None) -> list[Anonymised]:
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
            self._hold.sweep(slot, self._buffer, self._planner.lapse, self.config.pose)
            self._t += 1
            if len(self._buffer) > self.depth:
                self._finalise(self._buffer[-1 - self.depth])
            while len(self._buffer) > self.lookahead:
                ready.append(self._compose(self._buffer.popleft()))
        return ready

    @property
    def detector(self) -> PersonDetector:
        """The detector the stages call (a callable given is wrapped: :func:`.person_detector.person_detector`)."""
        return self._detector

    @detector.setter
    def detector(self, detector) -> None:
        self._detector = person_detector(detector)

    def resolved(self) -> dict:
        """The settings this stream runs with, as resolved (the redaction report's): the look-ahead,
        fail-closed, the detector's backend, device, precision and batch, and the passes planned."""
        detector = self.detector.resolved()
        passes = self._planner.describe()
        size = {"imgsz": passes["search_imgsz"]} if "search_imgsz" in passes else {}
        return {"lookahead": self.lookahead, "fail_closed": self.fail_closed, **size, **detector, **passes}

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

    def detect(self, frames: list[Frame]) -> list[FrameDetections | None]:
        """The models' people for ``frames``, one ``None`` per frame when they fail (fail closed).

        Thread-safe against the stream's own model calls; the first batch's failure is raised
        (a model that never worked is a setup error, not a frame to mask).
        """
        try:
            images = [f.image for f in frames]
            plan = self._planner.plan(images, self.detector, self.config)
            with self._models:
                found = self.detector(images, plan=plan)
            self._planner.mark(plan, found)
            self._detected_any = True
            self._planner.observe(found)
            return found
        except AnonymiseError:
            raise
        except Exception as e:
            if not self._detected_any:
                raise
            log.warning("detection failed on %d frame(s), writing them fully masked: %s", len(frames), e)
            return [None] * len(frames)

    def _second_look(self, image: np.ndarray, regions: np.ndarray, context=SECOND_LOOK_CONTEXT) -> Detections:
        """People found on crops around ``regions`` by this stream's models (the guard's ``Look``)."""
        return guard.second_look(self.detector, self._models, image, regions, context)

    # -- finalising a frame's mask, then learning the background ---------------------------

    def _finalise(self, slot: Slot) -> None:
        if slot.t == 0 and self.fail_closed and len(self._buffer) > 1:
            self._learner.prime([s.frame.image for s in self._buffer])
        image = slot.frame.image
        alpha = None
        learning = Learning()
        if slot.found is not None:
            try:
                self.counts.shown += things.show(
                    slot, things.still_things(slot, self._buffer, self.config.motion_threshold)
                )
                alpha = masking.alpha(image, slot.found, slot.extra, self.config)
                reference = self._learner.reference()  # one conversion, shared
                if self.fail_closed and reference is not None:
                    alpha = self._guard.check(slot, alpha, reference, self.config)
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
        self._guard.passed(image)

    @property
    def background_ready(self) -> bool:
        """Whether the background has anything (learned or primed) to compare a frame with."""
        return self._learner.ready

    # -- output ----------------------------------------------------------------------------

    def _compose(self, slot: Slot) -> Anonymised:
        if slot.open:  # its check was cut short (a stop came while the guard looked): it is done again now
            self._finalise(slot)
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
