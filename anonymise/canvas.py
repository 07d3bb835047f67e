"""What skeletons are drawn on: a plain colour, an image, or a video looped to the length of the input."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .colours import parse_colour
from .errors import SourceError
from .io.images import IMAGE_EXTS
from .io.video import VideoReader

#: a video canvas keeps its frames (resized) in memory when they fit in this many bytes
VIDEO_CACHE_BYTES = 256 * 2**20


def _size(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) not in (2, 3) or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape[:2]):
        raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape!r}")
    return int(shape[0]), int(shape[1])


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"canvas: no such file: {path}")
    if not path.is_file():
        raise SourceError(f"canvas: not a file: {path}")


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` stretched to ``size`` (H, W); area averaging when shrinking."""
    height, width = size
    if image.shape[:2] == size:
        return image.copy()
    shrink = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class Canvas:
    """A background for skeletons; :meth:`parse` builds one from a spec, :meth:`frame` gives frame ``index``."""

    @staticmethod
    def parse(spec: str | os.PathLike) -> Canvas:
        """``black``, ``white``, a colour name or ``#RRGGBB``, or a path to an image or a video.

        A colour name wins over a file of the same name. Raises :class:`SourceError` for a path
        that does not exist or cannot be decoded, ``ValueError`` for anything else.
        """
        text = os.fspath(spec).strip()
        try:
            return ColourCanvas(parse_colour(text))
        except ValueError:
            pass
        path = Path(text).expanduser()
        if text and not text.startswith("#") and path.exists():
            return ImageCanvas(path) if path.suffix.lower() in IMAGE_EXTS else VideoCanvas(path)
        if text and not text.startswith("#") and (path.suffix or os.sep in text or "/" in text):
            raise SourceError(f"canvas: no such file: {text}")
        raise ValueError(
            f"canvas: expected black, white, a colour name, #RRGGBB or a path to an image or video, got {text!r}"
        )

    def frame(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        """A new uint8 (H, W, 3) image for output frame ``index`` (>= 0) of ``shape`` (H, W)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release any open file."""

    def __enter__(self) -> Canvas:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _check_index(index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index: expected an integer >= 0, got {index!r}")
        return int(index)


class ColourCanvas(Canvas):
    """A plain canvas of one BGR colour."""

    def __init__(self, colour: tuple[int, int, int]):
        self.colour = tuple(int(c) for c in colour)

    def frame(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        self._check_index(index)
        out = np.empty((*_size(shape), 3), np.uint8)
        out[:] = self.colour
        return out

    def __repr__(self) -> str:
        return f"ColourCanvas({self.colour})"


class ImageCanvas(Canvas):
    """One still image, stretched to the frame size (the last size is cached)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _check_file(self.path)
        self.image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if self.image is None:
            raise SourceError(f"canvas: cannot read image {self.path}")
        self._resized: np.ndarray | None = None

    def frame(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        self._check_index(index)
        size = _size(shape)
        if self._resized is None or self._resized.shape[:2] != size:
            self._resized = _resize(self.image, size)
        return self._resized.copy()

    def __repr__(self) -> str:
        return f"ImageCanvas({str(self.path)!r})"


class VideoCanvas(Canvas):
    """A video, looped (frame ``index % length``) and stretched to the frame size.

    Decoded as a stream: sequential indices decode forward; going back (a wrap-around)
    reopens the file. A short video (all frames within ``VIDEO_CACHE_BYTES`` at the target
    size) is kept in memory after its first pass and the file is closed.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _check_file(self.path)
        #: number of frames, known once the video has been decoded to its end
        self.length: int | None = None
        self._reader: VideoReader | None = None
        self._frames = None
        self._pos = 0  # index of the next frame the reader yields
        self._last: tuple[int, np.ndarray] | None = None
        self._cache: list[np.ndarray] | None = []  # resized frames 0.. of the first pass; None: not caching
        self._cache_size: tuple[int, int] | None = None
        self._raw(0)  # fail now, not at the first frame, when the file cannot be decoded

    def _open(self) -> None:
        self.close()
        try:
            self._reader = VideoReader(self.path, audio=False)
        except SourceError as e:
            raise SourceError(f"canvas: {e}") from None
        self._frames, self._pos = iter(self._reader), 0

    def _raw(self, i: int) -> np.ndarray:
        """Decoded frame ``i`` (taken modulo the length once that is known)."""
        if self.length:
            i %= self.length
        if self._last is not None and self._last[0] == i:
            return self._last[1]
        if self._frames is None or i < self._pos:
            self._open()
        while True:
            try:
                image = next(self._frames).image
            except StopIteration:
                self.length = self._pos
                i %= self.length
                self._open()
                continue
            except SourceError as e:
                raise SourceError(f"canvas: {e}") from None
            self._pos += 1
            if self._pos - 1 == i:
                self._last = (i, image)
                return image

    def _cached(self, size: tuple[int, int]) -> bool:
        return (
            self._cache is not None
            and self.length is not None
            and len(self._cache) == self.length
            and size == self._cache_size
        )

    def frame(self, index: int, shape: tuple[int, ...]) -> np.ndarray:
        index, size = self._check_index(index), _size(shape)
        if self._cached(size):
            return self._cache[index % self.length].copy()
        image = self._raw(index)
        i = self._last[0]
        if self._cached(size):  # this call found the end of the first pass
            self.close()
            return self._cache[i].copy()
        out = _resize(image, size)
        if self._cache is not None:
            self._cache_size = self._cache_size or size
            if (
                i != len(self._cache)
                or size != self._cache_size
                or (len(self._cache) + 1) * out.nbytes > VIDEO_CACHE_BYTES
            ):
                self._cache = None  # not a first sequential pass at one size, or too long: stream only
            else:
                self._cache.append(out.copy())
        return out

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = self._frames = None

    def __repr__(self) -> str:
        return f"VideoCanvas({str(self.path)!r})"
