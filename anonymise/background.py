"""Running-average background model, frozen under people, that never shows a person.

**The rule.** A pixel is learned only where it is free of people (``alpha == 0``) and outside
``exclude`` (the pipeline passes every person's box grown by a margin proportional to their
size), and has been so, and still (changed by at most ``STILL_TOL`` since the frame before),
for ``stable`` frames in a row: a person's edge, a hand the mask missed for a frame or a head
a fragmented detection left out is not learned on sight. The first such frame sets it, later
ones move it by ``rate``. A pixel first learned within ``near`` (a wider zone around people),
and not learned since with nobody near, is *suspect*: it may be an undetected part of that
person; :meth:`BackgroundModel.forget_same` forgets suspect pixels that look like the person now
standing on them.

A pixel that has *never* been seen free has no background yet; it is filled from the learned
background around it by push-pull (:func:`push_pull`: a smooth wash, mid-grey when nothing at
all has been seen), never from the current frame. The wash is shifted by a faint tint
(:data:`UNSEEN_TINTS`, fading in over :data:`TINT_RAMP` pixels from the seen edge), chosen away
from the colours now standing on it (:func:`choose_tint`): a grey wash in front of a grey shirt
would otherwise pass pixels of the person through unchanged by coincidence, and a reviewer
could not tell the invented scene from the real one. The pipeline also lets the model look ahead
(``Config.lookahead`` frames) before a frame is written, so most pixels behind a person have
been seen free by then.

``BackgroundModel`` runs on the CPU with OpenCV; ``TorchBackgroundModel`` keeps the same state
as tensors on a torch device (CUDA) and only goes to the CPU for the rare inpainting refresh.
"""

from __future__ import annotations

import cv2
import numpy as np

from .motion import difference

#: recompute the inpainted fill of never-seen pixels every this many updates
FILL_REFRESH = 25
#: what a pixel shows when no pixel of the frame has ever been seen free (before its tint)
UNSEEN_GREY = 128
#: BGR shifts of the never-seen wash, one at a time (cooler, warmer, greener, more magenta): each
#: moves two channels apart by more than their noise, so a grey or white garment never matches it
UNSEEN_TINTS = ((14, 0, -14), (-14, 0, 14), (-14, 14, -14), (14, -14, 14))
#: the tint fades in over this many pixels from the edge of the never-seen region
TINT_RAMP = 6
#: a pixel under the wash "matches" a tint when every channel is within this of the tinted wash
TINT_TOL = 12


def _check_rate(rate: float) -> float:
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    return float(rate)


#: margin (pixels) of known background around a stale region that its patch is filled from
INPAINT_RADIUS = 5
#: a pixel that changed by more than this (largest channel) since the frame before is not still
STILL_TOL = 20
#: frames a pixel must be free and still before it is learned (the pipeline's setting)
STABLE_FRAMES = 3


def push_pull(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``image`` with its pixels outside ``known`` (bool H, W) filled smoothly from the known ones.

    Push-pull (normalised convolution over a Gaussian pyramid): known pixels keep their value; a
    hole gets the average of the known pixels around it, over a wider area the deeper it lies,
    so a large hole (a person who never left) is a smooth wash of the scene's colours, with no
    streaks and nothing of the person, who is never a known pixel.
    """
    weight = known.astype(np.float32)
    level = image.astype(np.float32)
    level[~known] = 0.0  # times the weight, which is 0 or 1 here
    levels = [(level, weight)]
    while min(level.shape[:2]) > 2:
        level, weight = cv2.pyrDown(level), cv2.pyrDown(weight)
        levels.append((level, weight))
    colour = None
    for level, weight in reversed(levels[1:]):
        here = level / np.maximum(weight, 1e-6)[..., None]
        if colour is None:
            mean = levels[0][0].reshape(-1, 3).sum(0) / max(float(levels[0][1].sum()), 1e-6)
            colour = np.where((weight > 1e-3)[..., None], here, mean.astype(np.float32))
            continue
        up = cv2.pyrUp(colour, dstsize=(level.shape[1], level.shape[0]))
        trust = np.clip(weight, 0.0, 1.0)[..., None]
        colour = trust * here + (1.0 - trust) * up
    out = image.copy()
    if colour is None:  # a frame too small for a pyramid: the known pixels' mean
        mean = levels[0][0].reshape(-1, 3).sum(0) / max(float(levels[0][1].sum()), 1e-6)
        out[~known] = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
        return out
    # the finest level's weight is 0 or 1: the known pixels keep their value, the others take the level
    # above, brought up (the same as the blend above, without its arithmetic over the whole image)
    up = cv2.pyrUp(colour, dstsize=(image.shape[1], image.shape[0]))
    out[~known] = np.clip(np.rint(up[~known]), 0, 255).astype(np.uint8)
    return out


def tint_weight(unseen: np.ndarray) -> np.ndarray:
    """Float32 (H, W): 0 on seen pixels, rising to 1 over :data:`TINT_RAMP` pixels into the never-seen ones."""
    inside = cv2.distanceTransform(unseen.astype(np.uint8), cv2.DIST_L2, 3)
    return np.minimum(inside * (1.0 / TINT_RAMP), 1.0)


def mark_unseen(fill: np.ndarray, unseen: np.ndarray, tint: tuple[int, int, int]) -> np.ndarray:
    """The wash ``fill`` (uint8 H, W, 3) shifted by ``tint`` where ``unseen``, fading in from the seen edge.

    The work is done on the bounding rectangle of ``unseen`` (grown by a pixel, so its edge is seen
    where the frame goes on): a few holes in a large frame cost what they cover.
    """
    out = fill.copy()
    x, y, w, h = cv2.boundingRect(unseen.astype(np.uint8))
    if not w or not h:
        return out
    height, width = unseen.shape
    x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + w + 1, width), min(y + h + 1, height)
    window = np.s_[y0:y1, x0:x1]
    shift = tint_weight(unseen[window])[..., None] * np.asarray(tint, np.float32)
    out[window] = np.clip(np.rint(fill[window].astype(np.float32) + shift), 0, 255).astype(np.uint8)
    return out


def choose_tint(frame: np.ndarray | None, fill: np.ndarray, unseen: np.ndarray, current: int = 0) -> int:
    """Index of the :data:`UNSEEN_TINTS` whose tinted ``fill`` matches the fewest pixels of ``frame``
    under ``unseen`` (every 4th pixel each way); ``current`` is kept unless another matches less
    than half as many (and 0.2% of the sample fewer), so the wash does not flicker."""
    if frame is None:
        return current
    where = unseen[::4, ::4]
    count = int(np.count_nonzero(where))
    if not count:
        return current
    under = frame[::4, ::4][where].astype(np.int16)
    wash = fill[::4, ::4][where].astype(np.int16)
    matches = [
        int(np.count_nonzero(np.abs(np.clip(wash + np.int16(t), 0, 255) - under).max(axis=-1) <= TINT_TOL))
        for t in np.asarray(UNSEEN_TINTS, np.int16)
    ]
    best = int(np.argmin(matches))
    return best if matches[current] > 2 * matches[best] + 0.002 * count else current


def inpaint_unseen(image: np.ndarray, unseen: np.ndarray) -> np.ndarray:
    """Fill ``unseen`` (bool H, W) pixels of ``image`` from the seen ones around them (:func:`push_pull`)."""
    if not unseen.any():
        return image.copy()
    if unseen.all():
        return np.full_like(image, UNSEEN_GREY)
    return push_pull(image, ~unseen)


def patch_fill(image: np.ndarray, unseen: np.ndarray, fill: np.ndarray, stale: np.ndarray) -> None:
    """Inpaint ``fill`` again at ``stale`` pixels only, in place, on crops around them.

    ``fill`` holds an inpainting of every ``unseen`` pixel except the ``stale`` ones (pixels
    forgotten since it was made, where it still shows what was learned there: possibly a
    person). Each crop is inpainted from the learned ``image`` and the older fill around the
    stale pixels, so the cost follows what was forgotten, not everything ever unseen.
    """
    margin = 2 * INPAINT_RADIUS + 1
    grown = cv2.dilate(stale.view(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    for x, y, w, h, _ in stats[1:count]:
        window = np.s_[y : y + h, x : x + w]
        hole = stale[window]
        if hole.all():
            fill[window] = UNSEEN_GREY
            continue
        source = np.where((unseen[window] & ~hole)[..., None], fill[window], image[window])
        patched = push_pull(source, ~hole)
        cv2.copyTo(patched, hole.view(np.uint8), fill[window])  # in place; ~10x np.copyto(where=)


class BackgroundModel:
    """Per-pixel running average of the scene, learned only where no person is (CPU, OpenCV)."""

    def __init__(self, rate: float = 0.05, stable: int = 1):
        self.rate = _check_rate(rate)
        self.stable = _check_stable(stable)
        self._run: np.ndarray | None = None  # uint8 (H, W): frames in a row free and still
        self._previous: np.ndarray | None = None  # the frame before, for stillness
        self._suspect: np.ndarray | None = None  # bool (H, W): learned near a person
        self._acc: np.ndarray | None = None  # float32 (H, W, 3)
        self._seen: np.ndarray | None = None  # uint8 (H, W), 255 where seen free at least once
        self._fill: np.ndarray | None = None  # uint8 (H, W, 3) inpainted image, refreshed now and then
        self._shown: np.ndarray | None = None  # the fill with its tint, as shown
        self._tint = 0  # index into UNSEEN_TINTS
        self._stale: np.ndarray | None = None  # bool (H, W): forgotten since the fill was made
        self._since_fill = 0
        self._primed: np.ndarray | None = None  # bool (H, W): a prior, for the motion guard only
        self._forgotten: np.ndarray | None = None  # bool (H, W): forgotten, the old value kept as a prior
        self._updates = 0  # frames learned from so far: the time of the next update
        self._when: np.ndarray | None = None  # int32 (H, W): the update that last learned each pixel
        self._last: np.ndarray | None = None  # uint8 (H, W, 3): what each pixel showed then
        self._forgot_at: np.ndarray | None = None  # int32 (H, W): when each pixel was last forgotten as suspect

    @property
    def seen(self) -> np.ndarray | None:
        """Boolean (H, W): pixels seen free of people at least once."""
        return None if self._seen is None else self._seen > 0

    def _allocate(self, shape: tuple[int, ...]) -> None:
        if self._acc is None or self._acc.shape != shape:
            self._acc = np.zeros(shape, np.float32)
            self._seen = np.zeros(shape[:2], np.uint8)
            self._fill = self._shown = None
            self._stale = np.zeros(shape[:2], bool)
            self._primed = None
            self._forgotten = np.zeros(shape[:2], bool)
            self._run = np.zeros(shape[:2], np.uint8)
            self._previous = None
            self._suspect = np.zeros(shape[:2], bool)
            self._when = np.full(shape[:2], -1, np.int32)
            self._last = np.zeros(shape, np.uint8)
            self._forgot_at = np.full(shape[:2], -1, np.int32)

    def prime(self, image: np.ndarray) -> None:
        """Set a prior (e.g. a temporal median) for the pixels not seen yet.

        It shows in :meth:`reference`, which the motion guard compares frames with, and never in
        :meth:`image`: a prior may still hold a person who did not move, so it is never used as fill.
        """
        self._allocate(image.shape)
        unseen = self._seen == 0
        self._acc[unseen] = image[unseen]
        self._primed = unseen

    def forget(self, where: np.ndarray, suspect: np.ndarray | None = None) -> None:
        """Distrust what was learned at ``where`` (bool H x W): those pixels are unseen again.

        They are inpainted until the model sees them free of people again. The motion guard calls
        this where a moving region disagrees with the background, which is how a person learned
        while the detector missed them (a ghost) is kept out of the fill. ``suspect`` (default:
        ``where``): the part that may really be a person, which :meth:`snapshot` reports (the
        whole-clip background never uses what was learned there shortly before); the rest of
        ``where`` is forgotten as a precaution only.
        """
        if self._seen is None or not where.any():
            return
        newly = where & (self._seen > 0)
        self._forgotten |= newly
        self._stale |= newly  # the fill there may show what was learned: inpainted again before use
        self._forgot_at[where if suspect is None else suspect] = self._updates
        self._seen[where] = 0

    def forget_same(self, frame: np.ndarray, where: np.ndarray, tol: int = STILL_TOL) -> int:
        """Forget suspect pixels of ``where`` (a person's mask) whose learned value looks like ``frame``.

        A pixel learned next to a person that matches the person now standing on it is most
        likely that person, learned while the detector missed them (a head left out of a
        fragmented box): filling with it would paint them back. Returns how many were forgotten.
        """
        if self._seen is None:
            return 0
        candidates = where & self._suspect & (self._seen > 0)
        if not candidates.any():
            return 0
        same = candidates & (difference(frame, cv2.convertScaleAbs(self._acc)) <= tol)
        self.forget(same)
        return int(np.count_nonzero(same))

    def _learnable(self, frame: np.ndarray, alpha: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        """uint8 0/1 (H, W): free of people, outside ``exclude``, and still for ``stable`` frames."""
        free = alpha == 0
        if exclude is not None:
            free &= ~exclude
        if self.stable <= 1:
            self._previous = frame
            return free.view(np.uint8)
        still = free if self._previous is None else free & (difference(frame, self._previous) <= STILL_TOL)
        self._previous = frame
        run = np.where(still, np.minimum(self._run, 254) + 1, free.view(np.uint8)).astype(np.uint8)
        self._run = run
        return (run >= self.stable).view(np.uint8)

    def update(
        self, frame: np.ndarray, alpha: np.ndarray, exclude: np.ndarray | None = None, near: np.ndarray | None = None
    ) -> None:
        """Learn from ``frame`` where ``alpha`` (uint8 or bool, H x W) is zero and the rule allows (module docstring).

        ``exclude`` (bool H x W): never learned this frame (margins around people); ``near``
        (bool): pixels learned there are marked suspect (see :meth:`forget_same`).
        """
        _check_frame(frame, alpha)
        self._allocate(frame.shape)
        free = self._learnable(frame, alpha, exclude)
        new = cv2.bitwise_and(free, cv2.bitwise_not(self._seen))
        if near is not None:
            # suspect: first learned beside a person, and not learned since with nobody near
            first = new.view(bool)
            self._suspect[first] = near[first]
            self._suspect[free.view(bool) & ~near] = False
        known = cv2.bitwise_and(free, self._seen)
        cv2.accumulateWeighted(frame, self._acc, self.rate, mask=known)
        cv2.accumulateWeighted(frame, self._acc, 1.0, mask=new)  # first sight: take it as is
        cv2.bitwise_or(self._seen, new * 255, dst=self._seen)
        self._forgotten[new.view(bool)] = False
        self._when[free.view(bool)] = self._updates
        cv2.copyTo(frame, free, self._last)
        self._updates += 1
        self._since_fill += 1

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the model has learned, for the whole-clip background (:mod:`anonymise.scene`):
        ``(value, when, forgot_at)``. ``value``: what each pixel showed when it was last learned
        (uint8 BGR: the frame of that moment, not the running average, so its light is that
        moment's), 0 where it never was (never a prior's pixel); ``when``: int32, the update that
        last learned each pixel, -1 where none; ``forgot_at``: int32, the update before which
        :meth:`forget` last took it as suspect, -1 where never. A forgotten pixel keeps its value
        and time here: the scene decides, from ``forgot_at``, whether it may still use them."""
        if self._acc is None:
            raise RuntimeError("the background model has not been updated yet")
        value = self._last.copy()
        value[self._when < 0] = 0
        return value, self._when.copy(), self._forgot_at.copy()

    @property
    def forgotten(self) -> np.ndarray | None:
        """Boolean (H, W): pixels :meth:`forget` took away and not learned since; :meth:`reference`
        still holds the value they had (what the scene looked like before)."""
        return self._forgotten

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """(learned background as uint8 BGR without any fill, bool mask of the pixels it knows)."""
        if self._acc is None:
            raise RuntimeError("the background model has not been updated yet")
        known = self._seen > 0
        return cv2.convertScaleAbs(self._acc), known if self._primed is None else known | self._primed

    def image(self) -> np.ndarray:
        """The background as uint8 BGR; never-seen pixels inpainted from their surroundings."""
        if self._acc is None:
            raise RuntimeError("the background model has not been updated yet")
        image = cv2.convertScaleAbs(self._acc)  # rounds to nearest and saturates
        unseen = self._seen == 0
        if unseen.any():
            if self._fill is None or self._since_fill >= FILL_REFRESH:
                self._fill = inpaint_unseen(image, unseen)
                self._tint = choose_tint(self._previous, self._fill, unseen, self._tint)
                self._since_fill = 0
                self._stale[:] = False
                self._shown = None
            elif self._stale.any():
                patch_fill(image, unseen, self._fill, self._stale & unseen)
                self._stale[:] = False
                self._shown = None
            if self._shown is None:
                self._shown = mark_unseen(self._fill, unseen, UNSEEN_TINTS[self._tint])
            # unseen pixels only come back through forget (stale, patched above), so the fill covers them all
            cv2.copyTo(self._shown, unseen.view(np.uint8), image)  # in place; ~10x np.copyto(where=)
        return image


class TorchBackgroundModel:
    """The same model as :class:`BackgroundModel` with its state as tensors on ``device``.

    ``update`` and ``image`` take and return torch tensors (H, W, 3) uint8 on the device, so
    a GPU pipeline uploads a frame once and downloads the composite once.
    """

    def __init__(self, rate: float = 0.05, device: str = "cuda", stable: int = 1):
        import torch

        self.rate = _check_rate(rate)
        self.stable = _check_stable(stable)
        self._run = None
        self._previous = None
        self._suspect = None
        self.device = torch.device(device)
        self._torch = torch
        self._acc = None
        self._seen = None
        self._fill = None
        self._shown = None
        self._tint = 0
        self._stale = None
        self._since_fill = 0
        self._primed = None
        self._forgotten = None
        self._updates = 0
        self._when = None
        self._last = None
        self._forgot_at = None

    @property
    def seen(self):
        return self._seen

    def _allocate(self, shape) -> None:
        torch = self._torch
        if self._acc is None or self._acc.shape != shape:
            self._acc = torch.zeros(shape, dtype=torch.float32, device=self.device)
            self._seen = torch.zeros(shape[:2], dtype=torch.bool, device=self.device)
            self._fill = self._shown = None
            self._stale = torch.zeros(shape[:2], dtype=torch.bool, device=self.device)
            self._primed = None
            self._forgotten = torch.zeros(shape[:2], dtype=torch.bool, device=self.device)
            self._run = torch.zeros(shape[:2], dtype=torch.uint8, device=self.device)
            self._previous = None
            self._suspect = torch.zeros(shape[:2], dtype=torch.bool, device=self.device)
            self._when = torch.full(shape[:2], -1, dtype=torch.int32, device=self.device)
            self._last = torch.zeros(shape, dtype=torch.uint8, device=self.device)
            self._forgot_at = torch.full(shape[:2], -1, dtype=torch.int32, device=self.device)

    def prime(self, image) -> None:
        """As :meth:`BackgroundModel.prime`."""
        image = self._torch.as_tensor(image, device=self.device)
        self._allocate(image.shape)
        self._primed = ~self._seen
        self._acc = self._torch.where(self._primed[..., None], image.float(), self._acc)

    def forget(self, where, suspect=None) -> None:
        """As :meth:`BackgroundModel.forget`."""
        if self._seen is None:
            return
        where = self._torch.as_tensor(where, device=self.device)
        if bool(where.any()):
            newly = where & self._seen
            self._forgotten |= newly
            self._stale |= newly
            taken = where if suspect is None else self._torch.as_tensor(suspect, device=self.device)
            self._forgot_at[taken] = self._updates
            self._seen &= ~where

    def forget_same(self, frame, where, tol: int = STILL_TOL) -> int:
        """As :meth:`BackgroundModel.forget_same`."""
        torch = self._torch
        if self._seen is None:
            return 0
        where = torch.as_tensor(where, device=self.device)
        candidates = where & self._suspect & self._seen
        if not bool(candidates.any()):
            return 0
        frame = torch.as_tensor(frame, device=self.device)
        learned = self._acc.round().clamp(0, 255)
        same = candidates & ((frame.float() - learned).abs().amax(dim=-1) <= tol)
        self.forget(same)
        return int(same.sum())

    def update(self, frame, alpha, exclude=None, near=None) -> None:
        """As :meth:`BackgroundModel.update`."""
        torch = self._torch
        frame = torch.as_tensor(frame, device=self.device)
        alpha = torch.as_tensor(alpha, device=self.device)
        _check_frame(frame, alpha)
        self._allocate(frame.shape)
        free = alpha == 0
        if exclude is not None:
            free = free & ~torch.as_tensor(exclude, device=self.device)
        if self.stable > 1:
            still = free
            if self._previous is not None:
                still = free & ((frame.int() - self._previous.int()).abs().amax(dim=-1) <= STILL_TOL)
            self._run = torch.where(still, self._run.clamp(max=254) + 1, free.to(torch.uint8))
            free = self._run >= self.stable
        self._previous = frame
        if near is not None:
            near = torch.as_tensor(near, device=self.device)
            self._suspect = torch.where(free & ~self._seen, near, self._suspect) & ~(free & ~near)
        f = frame.float()
        known = (free & self._seen)[..., None]
        new = (free & ~self._seen)[..., None]
        self._acc = torch.where(known, self._acc + self.rate * (f - self._acc), self._acc)
        self._acc = torch.where(new, f, self._acc)
        self._forgotten &= ~(free & ~self._seen)
        self._seen |= free
        self._when = torch.where(free, torch.full_like(self._when, self._updates), self._when)
        self._last = torch.where(free[..., None], frame, self._last)
        self._updates += 1
        self._since_fill += 1

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`BackgroundModel.snapshot`, downloaded to numpy."""
        if self._acc is None:
            raise RuntimeError("the background model has not been updated yet")
        value = self._last * (self._when >= 0)[..., None]
        return value.cpu().numpy(), self._when.cpu().numpy(), self._forgot_at.cpu().numpy()

    @property
    def forgotten(self):
        return self._forgotten

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`BackgroundModel.reference`, downloaded to numpy."""
        if self._acc is None:
            raise RuntimeError("the background model has not been updated yet")
        known = self._seen if self._primed is None else self._seen | self._primed
        return self._acc.round().clamp_(0, 255).to(self._torch.uint8).cpu().numpy(), known.cpu().numpy()

    def image(self):
        torch = self._torch
        if self._acc is None:
            raise RuntimeError("the background model has not been updated yet")
        image = self._acc.round().clamp_(0, 255).to(torch.uint8)
        unseen = ~self._seen
        if bool(unseen.any()):
            fill = None
            if self._fill is None or self._since_fill >= FILL_REFRESH:
                holes = unseen.cpu().numpy()
                fill = inpaint_unseen(image.cpu().numpy(), holes)
                previous = None if self._previous is None else self._previous.cpu().numpy()
                self._tint = choose_tint(previous, fill, holes, self._tint)
                self._since_fill = 0
                self._stale.zero_()
            elif bool(self._stale.any()):
                holes = unseen.cpu().numpy()
                fill = self._fill.cpu().numpy()
                patch_fill(image.cpu().numpy(), holes, fill, (self._stale & unseen).cpu().numpy())
                self._stale.zero_()
            if fill is not None:
                self._fill = torch.from_numpy(fill).to(self.device)
                self._shown = torch.from_numpy(mark_unseen(fill, holes, UNSEEN_TINTS[self._tint])).to(self.device)
            image = torch.where(unseen[..., None], self._shown, image)
        return image


def _check_stable(stable: int) -> int:
    if isinstance(stable, bool) or not isinstance(stable, int) or stable < 1:
        raise ValueError(f"stable must be an integer >= 1, got {stable!r}")
    return stable


def _check_frame(frame, alpha) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame: expected shape (H, W, 3), got {tuple(frame.shape)}")
    if tuple(alpha.shape) != tuple(frame.shape[:2]):
        raise ValueError(f"alpha: expected shape {tuple(frame.shape[:2])}, got {tuple(alpha.shape)}")
