"""The scene behind the people of a file: a background that knows the whole clip.

A camera or a stream is composed from the running model alone (:mod:`anonymise.background`):
what each pixel showed when it was last free, before the frame. A file is known in full, so
its frames are composed from what each pixel showed when it was free **at the moment nearest
in time, before or after the frame**, matched to the frame's lighting. A generous privacy mask
(a hold, the motion guard, a deep sweep's carry, a manual box) then shows the scene, not a wash.

**Design: two passes.**

1. *Learn.* The stream runs as for any source (detect, track, hold, guard, learn), and instead of
   composing it records each frame's alpha and skeletons (:class:`Recorder`, one file), and every
   ``every`` frames a *checkpoint* of the running model (:meth:`~anonymise.background.BackgroundModel.snapshot`):
   its learned values, when each pixel was last learned, and what it forgot since the last one.
   The model learns under the rule it always had (free of every person with margins, still for
   several frames), so a checkpoint holds scene only, never a person's pixels; so do the files.
2. *Scan.* A backward scan over the checkpoints gives each one its *future*: for every pixel, the
   value learned first after it, and when; a forward scan its *past*: the value learned last up
   to it. A value learned up to :data:`TAINT_S` before the model forgot it (the motion guard, a
   new track or a manual box judged it may be a person) is used by neither; what was learned
   well before stays known.
3. *Compose.* The file is decoded again. Frame ``t`` lies between checkpoints ``k-1`` and ``k``;
   each pixel takes the candidate nearest in time (:meth:`ClipScene.at`) among checkpoint ``k``'s
   value learned at or before ``t``, the past of ``k-1``, checkpoint ``k``'s learned after ``t``,
   and the future of ``k``. A checkpoint keeps what each pixel showed the last time it was learned
   (not the running average), so each value has one moment, and so one light.

**Light.** For every frame, pass 1 fits a gain and an offset per channel mapping the frame of the
last checkpoint onto it, over the pixels free in both (:func:`fit_light`); chained from checkpoint
to checkpoint, they give every frame's light against frame 0's. Under the
people, a value seen at moment ``w`` is brought from ``w``'s light to the frame's, so an exposure
change corrects the known scene instead of discarding it (one table of levels per moment seen,
looked up for the pixels that show). Pixels no candidate knows (someone who never leaves) get the
tinted wash, as live, made on crops around those under the people (:func:`_crops`): the cost follows
the unknown pixels that show, not the people's bounding rectangle.

Decoding twice is cheap next to the models. Memory is flat in the clip's length: the compose pass
holds three checkpoints; the checkpoints and the records are files in a temporary folder that is
removed when the run ends, however it ends (a killed run's folder holds masks and scene only).
"""

from __future__ import annotations

import math
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .background import UNSEEN_TINTS, choose_tint, inpaint_unseen, mark_unseen
from .config import Fill
from .motion import LIGHT_GAINS

#: the fills that show the background (the others replace people without it)
FILLS = frozenset({Fill.BACKGROUND, Fill.SILHOUETTE, Fill.HEATMAP})

#: seconds between checkpoints (at most MAX_CHECKPOINTS in a clip: longer clips space them out)
CHECKPOINT_S = 1.0
MAX_CHECKPOINTS = 400
#: a value learned up to this many seconds before the model forgot it is not used
TAINT_S = 10.0
#: the background is made on a window this many pixels beyond the people's mask (the wash's context)
WINDOW_MARGIN = 32
#: the time of a pixel nothing knows (far from every frame)
NEVER = -(2**30)
#: the light between checkpoints: fitted on at least this many pixels free in both (sampled every
#: ``step`` pixels each way, so that about LIGHT_SAMPLES are looked at)
LIGHT_MIN = 400
LIGHT_SAMPLES = 5000
#: pixels within this of a masked one are not used to fit the light
LIGHT_MARGIN = 9


def spacing(fps: float, frames: int | None) -> int:
    """Frames between checkpoints for a clip of ``frames`` (None: unknown) at ``fps``."""
    every = max(1, round(fps * CHECKPOINT_S))
    if frames:
        every = max(every, math.ceil(frames / MAX_CHECKPOINTS))
    return every


def _save(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        pickle.dump(
            {k: (a.shape, a.dtype.str, zlib.compress(np.ascontiguousarray(a).tobytes(), 1)) for k, a in arrays.items()},
            f,
        )


def _load(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        stored = pickle.load(f)  # our own file, in a folder only we can write
    return {
        k: np.frombuffer(zlib.decompress(data), np.dtype(dtype)).reshape(shape)
        for k, (shape, dtype, data) in stored.items()
    }


@dataclass
class Checkpoint:
    """The running model after frame ``t``: ``value`` (uint8 BGR), ``when`` (int32, the frame that
    last learned each pixel, NEVER where none)."""

    t: int
    value: np.ndarray
    when: np.ndarray


@dataclass
class Record:
    """What pass 1 decided for one frame: its alpha and what is drawn and boxed on it."""

    t: int
    alpha: np.ndarray  # uint8 (H, W)
    poses: object  # Detections: the skeletons (no masks)
    boxes: np.ndarray | None  # (K, 4): every box masked (the per-person fills size by them)
    failed: bool = False


class Recorder:
    """Pass 1's record, in ``folder``: frame records in order, and checkpoints of the model."""

    def __init__(self, folder: Path, every: int, fps: float):
        self.folder = Path(folder)
        self.every = every
        self.taint = max(1, math.ceil(TAINT_S * fps))  # in frames
        self.times: list[int] = []
        #: every frame's light against frame 0's: (gain, offset) per channel
        self.lights: list[np.ndarray] = []
        self._records = open(self.folder / "records.pickle", "wb")  # noqa: SIM115 - closed in finish
        self._learned: tuple | None = None  # (t, frame, alpha) the model last learned from
        # the frame the light is fitted against (sampled; frame 0's, then each checkpoint's), and its light
        self._reference: tuple | None = None

    def record(self, record: Record) -> None:
        ok, png = cv2.imencode(".png", record.alpha, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError("could not encode a mask")
        pickle.dump((record.t, png.tobytes(), record.poses, record.boxes, record.failed), self._records)

    def learned(self, t: int, background, frame: np.ndarray, alpha: np.ndarray) -> None:
        """The model has learned from frame ``t`` (``alpha``: its people): its light, and a checkpoint
        every ``every`` frames."""
        self._learned = (t, frame, alpha)
        step = max(1, int(math.sqrt(frame.shape[0] * frame.shape[1] / LIGHT_SAMPLES)))
        sample = frame[::step, ::step], _free(alpha)[::step, ::step]
        if self._reference is None:
            self._reference = (*sample, np.array([[1.0] * 3, [0.0] * 3]))
        before, was_free, base = self._reference
        gain, offset = fit_light(before, sample[0], was_free & sample[1])
        light = np.array([gain * base[0], gain * base[1] + offset])
        self.lights.append(light)
        if (t + 1) % self.every == 0:
            self._checkpoint(background)
            self._reference = (*sample, light)

    def _checkpoint(self, background) -> None:
        value, when, forgot_at = background.snapshot()
        when = np.where(when >= 0, when, NEVER).astype(np.int32)
        _save(self.folder / f"c{len(self.times)}", value=value, when=when, forgot_at=forgot_at)
        self.times.append(self._learned[0])

    def finish(self, background) -> ClipScene:
        """Pass 1 is over: the last checkpoint, the backward scan; the scene for pass 2."""
        self._records.close()
        if self._learned is not None and (not self.times or self.times[-1] != self._learned[0]):
            self._checkpoint(background)
        # backward: what a forget taints (learned up to TAINT_S before it, and not since), each checkpoint's future
        shape = None
        future_value = future_when = forget = None
        for k in range(len(self.times) - 1, -1, -1):
            stored = _load(self.folder / f"c{k}")
            value, when, forgot_at = stored["value"], stored["when"].copy(), stored["forgot_at"]
            if shape is None:
                shape = when.shape
                future_value = np.zeros((*shape, 3), np.uint8)
                future_when = np.full(shape, NEVER, np.int32)
                forget = np.full(shape, np.iinfo(np.int32).max, np.int64)  # the first forget after k, per pixel
            before_own = (when < forgot_at) & (when >= forgot_at.astype(np.int64) - self.taint)
            when[before_own | (when >= forget - self.taint)] = NEVER
            _save(self.folder / f"c{k}", value=value, when=when)
            _save(self.folder / f"f{k}", value=future_value, when=future_when)
            start = self.times[k - 1] + 1 if k else 0  # what k learned since the checkpoint before
            after = when >= start
            future_value = np.where(after[..., None], value, future_value)
            future_when = np.where(after, when, future_when)
            own = forgot_at >= start
            forget[own] = forgot_at[own]
        # forward: each checkpoint's past (the last value learned up to it, not tainted)
        past_value = past_when = None
        for k in range(len(self.times)):
            stored = _load(self.folder / f"c{k}")
            if past_value is None:
                past_value, past_when = stored["value"].copy(), stored["when"].copy()
            else:
                known = stored["when"] != NEVER
                past_value[known] = stored["value"][known]
                past_when[known] = stored["when"][known]
            _save(self.folder / f"p{k}", value=past_value, when=past_when)
        return ClipScene(self.folder, self.times, self.lights)


class ClipScene:
    """Pass 2's background: for frame ``t``, each pixel's free value nearest in time (module docstring)."""

    def __init__(self, folder: Path, times: list[int], lights: list[np.ndarray]):
        self.folder = Path(folder)
        self.times = times
        self._light = np.stack(lights).astype(np.float32) if lights else np.array([[[1.0] * 3, [0.0] * 3]], np.float32)
        self._k: int | None = None
        self._loaded: tuple = ()
        self._tint = 0

    def records(self):
        """The frame records of pass 1, in order."""
        with open(self.folder / "records.pickle", "rb") as f:
            while True:
                try:
                    t, png, poses, boxes, failed = pickle.load(f)  # our own file, in a folder only we can write
                except EOFError:
                    return
                alpha = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
                yield Record(t, alpha, poses, boxes, failed)

    def _checkpoints(self, t: int) -> tuple[Checkpoint | None, Checkpoint, Checkpoint]:
        """(the past of checkpoint k-1, checkpoint k, the future of k) for frame ``t``."""
        k = int(np.searchsorted(self.times, t))  # the first checkpoint at or after t
        k = min(k, len(self.times) - 1)
        if k != self._k:

            def load(name: str, i: int) -> Checkpoint:
                stored = _load(self.folder / f"{name}{i}")
                return Checkpoint(self.times[i], stored["value"], stored["when"])

            self._loaded = (load("p", k - 1) if k else None, load("c", k), load("f", k))
            self._k = k
        return self._loaded

    def light(self, t) -> np.ndarray:
        """The light of frame(s) ``t`` against frame 0's: (..., 2, 3) gain and offset."""
        return self._light[np.clip(t, 0, len(self._light) - 1)]

    def at(self, t: int, frame: np.ndarray, alpha: np.ndarray, whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(the background of frame ``t``, uint8 BGR; bool mask of the pixels no free moment knows).

        Under the people (``alpha`` > 0) each value is brought from the light of the moment it was
        seen to frame ``t``'s; the pixels nobody knows are a tinted wash of what is known around them.
        Only a window around the people (WINDOW_MARGIN beyond their mask) is made, the rest is 0, unless
        ``whole`` (a debug view shows all of it).
        """
        if not self.times:
            raise RuntimeError("the clip has no checkpoint")
        height, width = frame.shape[:2]
        masked = (alpha > 0).astype(np.uint8)
        out = np.zeros_like(frame)
        unseen = np.zeros((height, width), bool)
        x, y, w, h = (0, 0, width, height) if whole else cv2.boundingRect(masked)
        if not w or not h:  # nobody to fill: nothing of the background shows
            return out, unseen
        x0, y0 = max(x - WINDOW_MARGIN, 0), max(y - WINDOW_MARGIN, 0)
        x1, y1 = min(x + w + WINDOW_MARGIN, width), min(y + h + WINDOW_MARGIN, height)
        window = np.s_[y0:y1, x0:x1]
        previous, now, future = self._checkpoints(t)
        # the candidates; where two are as near in time, the first listed wins
        here = now.when[window]
        candidates = [(now.value[window], np.where(here <= t, here, NEVER))]
        if previous is not None:
            candidates.append((previous.value[window], previous.when[window]))
        candidates += [
            (now.value[window], np.where(here > t, here, NEVER)),
            (future.value[window], future.when[window]),
        ]
        part = out[window]
        when = np.full(here.shape, NEVER, np.int32)
        distance = np.full(here.shape, np.iinfo(np.int32).max, np.int32)
        for value, seen in candidates:
            gap = np.where(seen != NEVER, np.abs(seen - np.int32(t)), np.iinfo(np.int32).max)
            take = gap < distance
            if take.any():
                cv2.copyTo(value, take.view(np.uint8), part)
                when[take] = seen[take]
                np.minimum(distance, gap, out=distance)
        hole = when == NEVER
        shown = np.ones(here.shape, bool) if whole else masked[window].view(bool)
        # the wash is made where it shows: on crops around the unknown pixels under the people (with
        # room for the scene around them), not on the whole window (a crowd's is most of the frame)
        crops = _crops(hole & shown, hole.shape) if hole.any() else []
        needed = shown.copy()
        for crop in crops:
            needed[crop] = True
        part = self._relit(part, when, t, needed & ~hole)
        if crops:
            under = hole & shown
            self._tint = choose_tint(frame[window], part, under, self._tint)
            for crop in crops:
                wash = inpaint_unseen(part[crop], hole[crop])
                part[crop] = mark_unseen(wash, hole[crop], UNSEEN_TINTS[self._tint])
        out[window] = part
        unseen[window] = hole
        return out, unseen

    def _relit(self, value: np.ndarray, when: np.ndarray, t: int, region: np.ndarray) -> np.ndarray:
        """``value`` with its pixels in ``region`` brought from the light of ``when`` to frame ``t``'s.

        One table of 256 levels per channel for each moment the region's values were seen (a few
        dozen), looked up per pixel: the cost follows the region, not its bounding rectangle."""
        if not region.any():
            return value
        seen_at = when[region]
        first = int(seen_at.min())
        present = np.bincount(seen_at - first) > 0  # the moments seen, as np.unique would, in a tenth the time
        moments = np.flatnonzero(present) + first
        then = self.light(moments)  # (U, 2, 3)
        now = self.light(t)
        if np.allclose(then, now, atol=1e-3):
            return value
        levels = np.arange(256, dtype=np.float32)[None, :, None]  # (1, 256, 1): level, channel last
        table = np.clip(np.rint(now[0] * (levels - then[:, None, 1, :]) / then[:, None, 0, :] + now[1]), 0, 255)
        table = table.astype(np.uint8)  # (U, 256, 3)
        changed = (table != levels.astype(np.uint8)).any(axis=(1, 2))  # the moments whose light is not the frame's
        if not changed.any():
            return value
        which = (np.cumsum(present) - 1)[seen_at - first]
        out = value.copy()
        if not changed.all():  # only the pixels seen in another light
            region = region.copy()
            region[region] = changed[which]
            which = which[changed[which]]
        out[region] = table[which.reshape(-1, 1), value[region], np.arange(3)]
        return out


def _crops(holes: np.ndarray, shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    """Windows around each group of ``holes`` (bool): its bounding box grown by half its size (at least
    WINDOW_MARGIN px) each way; windows that touch become the bounding box of their union."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(holes.view(np.uint8), connectivity=8)
    grown = np.zeros(shape, np.uint8)
    for x, y, w, h, _ in stats[1:count]:
        margin = max(WINDOW_MARGIN, max(w, h) // 2)
        grown[max(y - margin, 0) : y + h + margin, max(x - margin, 0) : x + w + margin] = 1
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    return [np.s_[y : y + h, x : x + w] for x, y, w, h, _ in stats[1:count]]


#: colours_like: each channel in this many bins; a bin is the person's if it holds this share of their
#: pixels (and at least COLOUR_MIN of them)
COLOUR_BINS = 16
PERSON_SHARE = 0.01
COLOUR_MIN = 3


def colours_like(learned: np.ndarray, frame: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Bool (H, W): where what ``learned`` (uint8 BGR) holds may be the person of ``frame`` under
    ``person`` (bool): ``person`` itself, and every pixel whose learned colour is one of theirs
    (each channel in COLOUR_BINS bins; a bin is theirs where it holds PERSON_SHARE of their pixels)."""
    if not person.any():
        return np.zeros(person.shape, bool)
    step = 256 // COLOUR_BINS

    def bins(pixels: np.ndarray) -> np.ndarray:
        q = (pixels // step).astype(np.int64)
        return (q[..., 0] * COLOUR_BINS + q[..., 1]) * COLOUR_BINS + q[..., 2]

    theirs = bins(frame[person])
    counts = np.bincount(theirs, minlength=COLOUR_BINS**3)
    return person | (counts >= max(COLOUR_MIN, PERSON_SHARE * len(theirs)))[bins(learned)]


def _free(alpha: np.ndarray) -> np.ndarray:
    """Pixels of the frame far enough from every masked one to show its lighting."""
    masked = (alpha > 0).view(np.uint8) if alpha.dtype == bool else (alpha > 0).astype(np.uint8)
    return cv2.dilate(masked, np.ones((LIGHT_MARGIN, LIGHT_MARGIN), np.uint8)) == 0


def fit_light(before: np.ndarray, now: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gain, offset) per channel that best map ``before`` onto ``now`` (uint8 BGR) over ``free``: least
    squares, then again without the pixels it fits worst (something that moved). Identity where too
    few are free; the gain stays within LIGHT_GAINS (a wild fit on a few pixels is not the scene's light)."""
    gain, offset = np.ones(3), np.zeros(3)
    if np.count_nonzero(free) < LIGHT_MIN:
        return gain, offset
    x = before[free].astype(np.float32)
    y = now[free].astype(np.float32)
    keep = np.ones(len(x), bool)
    for _ in range(2):
        for c in range(3):
            xs, ys = x[keep, c], y[keep, c]
            mx, my = xs.mean(), ys.mean()
            var = ((xs - mx) ** 2).mean()
            g = ((xs - mx) * (ys - my)).mean() / var if var > 4.0 else 1.0
            gain[c] = min(max(g, LIGHT_GAINS[0]), LIGHT_GAINS[1])
            offset[c] = my - gain[c] * mx
        residual = np.abs(y - (x * gain + offset)).max(axis=1)
        keep = residual <= max(3 * float(np.median(residual)), 4.0)
        if np.count_nonzero(keep) < LIGHT_MIN:
            break
    return gain, offset
