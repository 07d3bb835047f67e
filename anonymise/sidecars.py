"""What a run writes besides the anonymised video: keypoints, snapshots and the debug view.

:class:`Extras` says what to write (the CLI's ``--keypoints``, ``--snapshot-every``,
``--debug-view``; ``video=False`` for ``anonymise export``). :class:`Sidecars` writes it for one
input, frame by frame as the outputs come, and is finished or aborted with the video, so that
a failed or interrupted run leaves no half-written file (each file is written under a temporary
name and renamed at the end; snapshots are whole images, each written atomically).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .compose import Anonymised
from .detections import VideoInfo
from .errors import ConfigError, OutputError
from .io.files import partial_path
from .io.keypoints import CSV_SUFFIXES, JSONL_SUFFIXES, KeypointWriter, keypoints_format
from .io.outputs import staging
from .io.video import Frame, VideoWriter

log = logging.getLogger(__name__)

#: ``--keypoints`` values that mean "a file of this format beside each output"
KEYPOINT_FORMATS = ("jsonl", "csv")
SNAPSHOT_EXT = ".jpg"


@dataclass(frozen=True)
class Every:
    """A period in frames or in seconds (``--snapshot-every 25`` or ``2s``)."""

    value: float
    seconds: bool

    @classmethod
    def parse(cls, text: str | int | float) -> Every:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds|f|frames)?\s*", str(text).lower())
        value = float(match.group(1)) if match else 0.0
        if not match or value <= 0:
            raise ConfigError(f"snapshot period must be a number of frames (25) or seconds (2s), > 0, got {text!r}")
        seconds = (match.group(2) or "f")[0] == "s"
        if not seconds and value != int(value):
            raise ConfigError(f"snapshot period in frames must be a whole number, got {text!r}")
        return cls(value, seconds)

    def due(self, frame: Frame, last: float | None, fps: float) -> float | None:
        """The position (frame index or seconds) of ``frame`` if a snapshot is due there, else None."""
        if not self.seconds:
            return frame.index if frame.index % int(self.value) == 0 else None
        now = frame.time if frame.time is not None else frame.index / fps
        if last is None or now >= last + self.value - 1e-6:
            return now if last is None else last + self.value * ((now - last + 1e-6) // self.value)
        return None


@dataclass(frozen=True)
class Extras:
    """Sidecar outputs of a run.

    ``keypoints``: ``jsonl`` or ``csv`` for a file beside each output (``<output stem>.keypoints.jsonl``),
    or a file path (one input only). ``snapshot_every``: a period (see :class:`Every`); snapshots go
    to ``snapshot_dir`` (default ``<output stem>_snapshots/`` beside the output). ``debug_view``:
    original, person mask, background and output tiled, shown with ``--show`` or else written to
    ``<output stem>_debug.mp4`` (**it contains the unmasked original**). ``video=False`` writes no
    video at all, only the keypoints (``anonymise export``).
    """

    keypoints: str | Path | None = None
    snapshot_every: str | None = None
    snapshot_dir: Path | None = None
    debug_view: bool = False
    video: bool = True
    #: a redaction report (JSON and HTML) beside each output (see :mod:`anonymise.report`)
    report: bool = False

    def __post_init__(self) -> None:
        if self.snapshot_every is not None:
            Every.parse(self.snapshot_every)
        if self.keypoints is not None and not self.keypoint_format_only:
            keypoints_format(self.keypoints)
        if not self.video and self.keypoints is None:
            raise ConfigError("a run without video output needs keypoints to write")

    @property
    def keypoint_format_only(self) -> bool:
        return str(self.keypoints).lower().lstrip(".") in KEYPOINT_FORMATS

    @property
    def any(self) -> bool:
        return self.keypoints is not None or self.snapshot_every is not None or self.debug_view

    def keypoints_path(self, output: Path, single: bool) -> Path | None:
        """Where the keypoints of the input written to ``output`` go."""
        if self.keypoints is None:
            return None
        if not self.video:
            return output  # export: the output is the keypoints file
        if self.keypoint_format_only:
            return output.with_name(f"{output.stem}.keypoints.{str(self.keypoints).lower().lstrip('.')}")
        if not single:
            raise ConfigError(
                f"--keypoints {self.keypoints}: a folder run needs a format (jsonl or csv), one file per video"
            )
        return Path(self.keypoints)

    def snapshot_folder(self, output: Path, single: bool) -> Path | None:
        if self.snapshot_every is None:
            return None
        if self.snapshot_dir is not None:
            return Path(self.snapshot_dir) if single else Path(self.snapshot_dir) / output.stem
        return output.with_name(f"{output.stem}_snapshots")


def data_suffix(keypoints: str | Path) -> str:
    """The file extension of an export's output for ``--keypoints`` (a format or a path)."""
    text = str(keypoints).lower().lstrip(".")
    if text in KEYPOINT_FORMATS:
        return "." + text
    return (
        Path(keypoints).suffix.lower()
        if Path(keypoints).suffix.lower() in (*JSONL_SUFFIXES, *CSV_SUFFIXES)
        else ".jsonl"
    )


def debug_tiles(frame: np.ndarray, alpha: np.ndarray, background: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Original | person mask / background | output, each at half size, in a frame of the input's size."""
    height, width = frame.shape[:2]
    h, w = height // 2, width // 2
    mask = cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR)
    tiles = [cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) for x in (frame, mask, background, output)]
    view = np.zeros_like(frame)
    for (y, x), tile in zip(((0, 0), (0, w), (h, 0), (h, w)), tiles):
        view[y : y + h, x : x + w] = tile
    for (y, x), label in zip(((0, 0), (0, w), (h, 0), (h, w)), ("original", "mask", "background", "output")):
        cv2.putText(view, label, (x + 4, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1, cv2.LINE_AA)
    return view


class Sidecars:
    """The sidecar files of one input; :meth:`write` per output frame, then :meth:`finish` or :meth:`abort`."""

    def __init__(
        self, extras: Extras, output: Path, info: VideoInfo, *, single: bool = True, show: bool = False, time_base=None
    ):
        self.extras = extras
        self.fps = float(info.fps)
        self.keypoints: KeypointWriter | None = None
        self.every = Every.parse(extras.snapshot_every) if extras.snapshot_every is not None else None
        self.snapshots = extras.snapshot_folder(output, single)
        self.snapshot_prefix = output.stem
        self._template_stem = output.stem  # a segmented recording's files are <stem>_<start time>
        self.snapshots_written: list[Path] = []
        self._made_folder = False
        #: a file's snapshots are written into a hidden folder beside theirs and moved in when the run
        #: finishes, so a killed run leaves only that folder, which the next run on the output removes
        #: (:func:`anonymise.io.outputs.claim`); a live recording's go straight in (the recording is kept)
        self._staging = None if self.snapshots is None or info.live else partial_path(staging(self.snapshots, output))
        self._last: float | None = None
        self.debug: VideoWriter | None = None
        self.debug_view: np.ndarray | None = None  # the latest tiled view (for --show)
        self._info = info
        self._single = single
        self._segmented = False
        self._first_index: int | None = None
        self._offset = 0.0  # a live segment's first frame time: its keypoints are timed from 0, as its video
        #: keypoint files of the finished segments of a live recording
        self.keypoint_segments: list[Path] = []
        path = extras.keypoints_path(output, single)
        try:
            if path is not None:
                self.keypoints = KeypointWriter(path, info.width, info.height, info.fps)
            if extras.debug_view and not show:
                debug_path = output.with_name(f"{output.stem}_debug.mp4")
                log.warning("debug view: %s shows the UNMASKED original frames", debug_path)
                self.debug = VideoWriter(debug_path, info.width, info.height, info.fps, time_base)
        except BaseException:
            self.abort()
            raise

    def segment(self, video: Path, start: float) -> None:
        """A live recording's next file begins (see :class:`anonymise.segments.Segments`): the
        keypoints so far are finished, and the next ones go beside it (``<segment stem>.keypoints.jsonl``),
        timed from the segment's start as its video is."""
        if self.extras.keypoints is None or not self.extras.video:
            return
        if self.keypoints is not None and self._segmented:
            self.keypoints.close()
            self.keypoint_segments.append(self.keypoints.path)
        elif self.keypoints is not None:
            self.keypoints.abort()  # the file named after the recording's template: nothing in it yet
        self._segmented = True
        path = self.extras.keypoints_path(Path(video), True)
        if not self.extras.keypoint_format_only:  # a path: one per segment, named by the segment's start
            base = Path(self.extras.keypoints)
            path = base.with_name(f"{base.stem}{Path(video).stem[len(self._template_stem) :]}{base.suffix}")
        info = self._info
        self.keypoints = KeypointWriter(path, info.width, info.height, info.fps)
        self._offset = start
        self._first_index = None  # frames are numbered from 0 in each segment, as its video's are

    def write(self, result: Anonymised) -> None:
        """The sidecars of one output frame: its keypoints, a snapshot when due, the debug view."""
        frame, output = result.frame, result.image
        if self.keypoints is not None:
            if self._first_index is None:
                self._first_index = frame.index
            index = frame.index - self._first_index if self._segmented else frame.index
            time = frame.time - self._offset if frame.time is not None else None
            self.keypoints.write(index, time, result.poses)
        if self.every is not None:
            due = self.every.due(frame, self._last, self.fps)
            if due is not None:
                self._last = due
                self._snapshot(frame.index, output)
        if self.extras.debug_view and result.debug is not None:
            alpha, background = result.debug
            background = background if background is not None else np.zeros_like(output)
            self.debug_view = debug_tiles(frame.image, alpha, background, output)
            if self.debug is not None:
                self.debug.write(self.debug_view, frame.pts, frame.duration)

    def _snapshot(self, index: int, image: np.ndarray) -> None:
        from .io.images import write_image

        folder = self._staging or self.snapshots
        if not self._made_folder:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(f"cannot create snapshot folder {self.snapshots}: {e.strerror or e}") from None
            self._made_folder = True
        name = f"{self.snapshot_prefix}_{index:06d}{SNAPSHOT_EXT}"
        write_image(folder / name, image)
        self.snapshots_written.append(self.snapshots / name)

    def finish(self) -> None:
        if self.keypoints is not None:
            self.keypoints.close()
        if self.debug is not None:
            self.debug.close()
        if self._staging is not None and self._made_folder:  # the snapshots move in, each with one rename
            try:
                self.snapshots.mkdir(parents=True, exist_ok=True)
                for path in self.snapshots_written:
                    os.replace(self._staging / path.name, path)
            except OSError as e:
                raise OutputError(f"cannot write snapshots to {self.snapshots}: {e.strerror or e}") from None
            shutil.rmtree(self._staging, ignore_errors=True)
            self._made_folder = False

    def abort(self) -> None:
        """Remove what this input's sidecars wrote so far (files that existed before stay)."""
        if self.keypoints is not None:
            self.keypoints.abort()
        if self.debug is not None:
            self.debug.abort()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            return
        for path in self.snapshots_written:
            path.unlink(missing_ok=True)
        if (
            self._made_folder
            and self.snapshots is not None
            and self.snapshots.is_dir()
            and not any(self.snapshots.iterdir())
        ):
            shutil.rmtree(self.snapshots, ignore_errors=True)
