"""The pipeline: wires the stages, owns the loop, the threads and the progress bars.

Per frame: detect -> person alpha -> background update -> (``lookahead`` frames later)
blend -> skeleton. Decoding, the models' main pass, the rest of the per-frame work and
encoding run in their own threads with bounded queues, so the slowest stage (inference) sets
the pace; the rest hides behind it as far as free cores allow (on two cores it competes with
inference, see the README's Performance). A frame whose processing fails is written fully
covered by the background (fail closed), never as it came in.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from .background import STABLE_FRAMES, BackgroundModel, TorchBackgroundModel
from .config import Config
from .detections import VideoInfo
from .errors import AnonymiseError, OutputError, SourceError, Stopped
from .outputs import claim
from .sidecars import Extras, Sidecars, data_suffix
from .sources import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    Source,
    default_output,
    find_media,
    media_kind,
    open_reader,
    output_for,
    parse_source,
    read_image,
    write_image,
)
from .stream import Counts, FrameStream
from .video import Frame, VideoWriter, partial_path

log = logging.getLogger(__name__)

#: frames queued between the decoder, the models and the encoder
QUEUE_SIZE = 8
#: frames of look-ahead on a live source when ``Config.lookahead`` is ``None``
LIVE_LOOKAHEAD = 0
FILE_LOOKAHEAD = 30


@dataclass
class FileResult:
    """What happened to one input."""

    source: str
    output: Path | None
    status: str  # "done", "skipped", "failed" or "stopped" (a live source ended by the user)
    frames: int = 0
    seconds: float = 0.0
    #: what the safety nets did (frames fully masked after errors, held boxes, motion regions ...)
    counts: Counts = field(default_factory=Counts)
    message: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BatchReport:
    """The results of one run over a file, a folder, a camera or a stream."""

    results: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed


class Progress:
    """Nested progress (files, then frames with fps) on stderr; silent when ``enabled`` is false."""

    def __init__(self, enabled: bool = True, files: int = 1):
        self._progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._files = self._progress.add_task("files", total=files, rate="", visible=files > 1)
        self._frames = None
        self._count, self._start = 0, 0.0

    def __enter__(self) -> Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_file(self, name: str, total: int | None) -> None:
        if self._progress is None:
            return
        if self._frames is not None:
            self._progress.remove_task(self._frames)
        self._frames = self._progress.add_task(name, total=total, rate="")
        self._count, self._start = 0, time.perf_counter()

    def advance(self, n: int = 1) -> None:
        if self._progress is None or self._frames is None:
            return
        self._count += n
        fps = self._count / max(time.perf_counter() - self._start, 1e-6)
        self._progress.update(self._frames, advance=n, rate=f"{fps:.1f} fps")

    def end_file(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._files, 1)


class Anonymiser:
    """Removes people from frames, videos, images and folders.

    >>> anon = Anonymiser(Config(mode="bbox"))
    >>> clean = anon.process_frame(frame)                     # one BGR frame (stateful)
    >>> anon.process_file("in.mp4", "out.mp4")                 # a video or an image
    >>> report = anon.run("clips/", "clips_anonymised/")       # anything --video-source takes

    ``detector`` may be any callable taking a list of BGR frames and returning one
    :class:`~anonymise.detect.FrameDetections` per frame (tests pass synthetic ones).
    ``background`` is ``auto`` (torch tensors on CUDA, OpenCV otherwise), ``cpu`` or ``torch``.
    """

    def __init__(self, config: Config | None = None, *, detector: Callable | None = None, background: str = "auto"):
        self.config = config or Config()
        if detector is None:
            from .detect import Detector  # imports torch and ultralytics: only when needed

            detector = Detector(self.config)
        self.detector = detector
        self.device = getattr(detector, "device", "cpu")
        self.batch = getattr(detector, "batch", None) or self.config.batch or 1
        if background not in ("auto", "cpu", "torch"):
            raise ValueError(f"background must be auto, cpu or torch, got {background!r}")
        self._torch_bg = background == "torch" or (background == "auto" and str(self.device).startswith("cuda"))
        self._frame_stream: FrameStream | None = None

    # -- the per-frame work (see stream.py) ------------------------------------------------

    def _new_background(self):
        if self._torch_bg:
            device = self.device if str(self.device) != "auto" else "cpu"
            return TorchBackgroundModel(self.config.alpha, device=device, stable=STABLE_FRAMES)
        return BackgroundModel(self.config.alpha, stable=STABLE_FRAMES)

    def _to_device(self, array: np.ndarray):
        if not self._torch_bg:
            return array
        import torch

        return torch.from_numpy(array).to(self.device, non_blocking=True)

    def stream(self, lookahead: int = 0, live: bool = False, fps: float = 30.0, debug: bool = False) -> FrameStream:
        """A fresh :class:`~anonymise.stream.FrameStream` (one per video) with this anonymiser's models."""
        fail_closed = self.config.fail_closed if self.config.fail_closed is not None else not live
        return FrameStream(
            self.config, self.detector, self._new_background(), lookahead, fail_closed, self._to_device, fps, debug
        )

    def anonymise_frames(
        self, frames: Iterable[Frame], stream: FrameStream | None = None
    ) -> Iterator[tuple[Frame, np.ndarray]]:
        """Anonymise in-memory frames: (input frame, output image) in input order.

        ``stream`` (from :meth:`stream`) carries the state of one video; by default a fresh one
        with the file look-ahead. Each yielded frame's ``poses`` holds the skeletons drawn on it.
        """
        if stream is None:
            stream = self.stream(self.config.lookahead if self.config.lookahead is not None else FILE_LOOKAHEAD)
        detected = _Prefetch(
            ((batch, stream.detect(batch)) for batch in _batched(frames, self.batch)),
            maxsize=max(2, QUEUE_SIZE // self.batch),
            name="anonymise-detect",
        )
        try:
            for batch, found in detected:
                yield from stream.push(batch, found)
            yield from stream.flush()
        finally:
            if detected.close():
                stream.close()

    # -- public API ------------------------------------------------------------------------

    def process_frame(self, frame: np.ndarray) -> np.ndarray:
        """Anonymise one BGR frame; background and tracks are kept across calls (see :meth:`reset`)."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"frame: expected a uint8 BGR array (H, W, 3), got {getattr(frame, 'dtype', type(frame))} "
                f"{getattr(frame, 'shape', '')}"
            )
        if self._frame_stream is None:
            self._frame_stream = self.stream(lookahead=0, live=True)
        ((_, out),) = self._frame_stream.push([Frame(frame, 0)])
        return out

    def reset(self) -> None:
        """Forget the background and tracks learned by :meth:`process_frame`."""
        self._frame_stream = None

    def process_image(
        self, src: str | Path, dst: str | Path, *, extras: Extras | None = None, single: bool = True
    ) -> FileResult:
        """Anonymise one image file into ``dst`` (written atomically, no metadata copied).

        ``extras``: its keypoints (as frame 0) and snapshots, like a one-frame video.
        """
        src, dst = Path(src), Path(dst)
        start = time.perf_counter()
        image = read_image(src)
        stream = self.stream(lookahead=0)
        ((frame, out),) = self.anonymise_frames([Frame(image, 0, 0, Fraction(1))], stream)
        if extras is not None and extras.any:
            info = VideoInfo(image.shape[1], image.shape[0], Fraction(1), frames=1)
            sidecars = Sidecars(replace(extras, debug_view=False), dst, info, single=single)
            try:
                sidecars.write(frame, out)
                if extras.video:
                    write_image(dst, out)
                sidecars.finish()
            except BaseException:
                sidecars.abort()
                raise
        else:
            write_image(dst, out)
        return FileResult(str(src), dst, "done", 1, time.perf_counter() - start, stream.counts)

    def process_video(
        self,
        source: str | Path | Source,
        dst: str | Path,
        *,
        audio: bool = True,
        show: bool = False,
        progress: Progress | None = None,
        extras: Extras | None = None,
        single: bool = True,
    ) -> FileResult:
        """Anonymise a video file, stream URL or camera into ``dst`` (H.264, audio kept).

        The output appears at ``dst`` only when complete. Ctrl-C on a file removes the partial
        output and re-raises; on a camera or stream it finishes a valid file and returns.
        ``extras``: keypoints, snapshots and the debug view (see :class:`~anonymise.sidecars.Extras`);
        with ``extras.video`` off no video is written and ``dst`` is the keypoints file.
        """
        extras = extras or Extras()
        src = source if isinstance(source, Source) else parse_source(source)
        dst = Path(dst)
        progress = progress or Progress(enabled=False)
        start = time.perf_counter()
        reader = open_reader(src, audio=audio and extras.video)
        viewer = _Viewer(str(src.spec)) if show else None
        written = 0
        frames = outputs = None
        try:
            info = reader.info
            lookahead = (
                self.config.lookahead
                if self.config.lookahead is not None
                else (LIVE_LOOKAHEAD if info.live else FILE_LOOKAHEAD)
            )
            stream = self.stream(lookahead, live=info.live, fps=float(info.fps), debug=extras.debug_view)
            sink = None
            if extras.video:
                writer = VideoWriter(
                    dst,
                    info.width,
                    info.height,
                    info.fps,
                    reader.time_base,
                    reader.audio_stream if audio else None,
                    gpu=str(self.device).startswith("cuda"),
                )
                sink = _WriterThread(writer)
            try:
                sidecars = Sidecars(extras, dst, info, single=single, show=show, time_base=reader.time_base)
            except BaseException:
                if sink is not None:
                    sink.abort()
                raise
            progress.start_file(Path(str(src.spec)).name, info.frames)
            meter = _FpsMeter()
            try:
                frames = _Prefetch(reader)
                outputs = self.anonymise_frames(frames, stream)
                for frame, out in outputs:
                    if sink is not None:
                        sink.put(frame, out)
                    sidecars.write(frame, out)
                    written += 1
                    progress.advance()
                    if viewer is not None:
                        view = sidecars.debug_view if sidecars.debug_view is not None else out
                        if not viewer.show(meter.annotate(view)):
                            if not info.live:
                                raise KeyboardInterrupt
                            break
                if sink is not None:
                    sink.finish()
                sidecars.finish()
            except KeyboardInterrupt as e:
                if info.live and written:
                    if sink is not None:
                        sink.finish()
                    sidecars.finish()
                    if isinstance(e, Stopped):  # a service manager's stop: the recording is kept, the process exits
                        raise
                    return FileResult(
                        str(src.spec), dst, "stopped", written, time.perf_counter() - start, stream.counts
                    )
                if sink is not None:
                    sink.abort()
                sidecars.abort()
                raise
            except BaseException:
                if sink is not None:
                    sink.abort()
                sidecars.abort()
                raise
        finally:
            if outputs is not None:
                outputs.close()  # stops the detect stage first: it reads from the decoder
            if frames is None or frames.close():  # never close a container a thread is still reading
                reader.close()
            if viewer is not None:
                viewer.close()
        message = ""
        if info.frames and not info.live and written < info.frames:
            message = f"only {written} of the {info.frames} frames the file declares could be decoded (truncated?)"
            log.warning("%s: %s", src.spec, message)
        return FileResult(str(src.spec), dst, "done", written, time.perf_counter() - start, stream.counts, message)

    def process_file(self, src: str | Path, dst: str | Path, **kwargs) -> FileResult:
        """Anonymise an image or a video file, chosen by its extension."""
        if media_kind(Path(src)) == "image":
            return self.process_image(src, dst, extras=kwargs.get("extras"))
        return self.process_video(src, dst, **kwargs)

    def run(
        self,
        source: str | Path | int,
        output: str | Path | None = None,
        *,
        overwrite: bool = False,
        audio: bool = True,
        show: bool = False,
        progress: bool = False,
        extras: Extras | None = None,
    ) -> BatchReport:
        """Anonymise anything ``--video-source`` accepts; see the CLI for the rules on outputs.

        A single input raises :class:`~anonymise.errors.AnonymiseError` on failure. A folder is
        processed file by file: a bad file is reported in the returned :class:`BatchReport`
        and the run goes on; outputs that exist are skipped unless ``overwrite``. ``extras``:
        keypoints, snapshots, debug view, or data only (see :class:`~anonymise.sidecars.Extras`).
        """
        extras = extras or Extras()
        src = parse_source(source)
        jobs = plan_jobs(src, output, extras)
        single = src.kind != "folder"
        if show:
            require_display()
        report = BatchReport()
        with Progress(enabled=progress, files=len(jobs)) as bar:
            for job_src, job_dst in jobs:
                if src.kind == "folder" and job_dst.exists() and not overwrite:
                    report.results.append(
                        FileResult(str(job_src), job_dst, "skipped", message="output exists (use --overwrite)")
                    )
                    bar.end_file()
                    continue
                try:
                    check_writable(job_dst.parent)
                    with claim(job_dst):  # one run per output; litter of a killed run removed
                        if not isinstance(job_src, Source) and media_kind(job_src) == "image":
                            result = self.process_image(job_src, job_dst, extras=extras, single=single)
                        else:  # a video file, or a camera / stream Source
                            result = self.process_video(
                                job_src, job_dst, audio=audio, show=show, progress=bar, extras=extras, single=single
                            )
                except (AnonymiseError, OSError) as e:
                    if src.kind != "folder":
                        raise _as_anonymise_error(e) from None
                    result = FileResult(str(job_src), job_dst, "failed", message=str(_as_anonymise_error(e)))
                except KeyboardInterrupt:
                    raise
                except Exception as e:
                    if src.kind != "folder":
                        raise
                    result = FileResult(str(job_src), job_dst, "failed", message=f"{type(e).__name__}: {e}")
                report.results.append(result)
                bar.end_file()
        return report


def _as_anonymise_error(e: Exception) -> AnonymiseError:
    if isinstance(e, AnonymiseError):
        return e
    return OutputError(f"{getattr(e, 'filename', '') or ''}: {getattr(e, 'strerror', None) or e}".lstrip(": "))


def plan_jobs(src: Source, out: str | Path | None = None, extras: Extras | None = None) -> list[tuple]:
    """Pairs of (input, output path) for a source; checks that no output can replace an input.

    ``out`` ``None``: the default output (see :func:`~anonymise.sources.default_output`). With
    ``extras.video`` off the outputs are keypoint files (``.jsonl`` or ``.csv``), not videos.
    """
    extras = extras or Extras()
    suffix = None if extras.video else data_suffix(extras.keypoints)
    if out is None:
        out = default_output(src)
        if suffix and src.kind != "folder":
            out = out.with_suffix(suffix)
    out = Path(out)
    if src.kind == "folder":
        root = src.path.resolve()
        out = out.resolve()
        if out == root:
            raise OutputError(f"output folder is the input folder ({src.path}); choose another --output")
        if out.exists() and not out.is_dir():
            raise OutputError(f"output must be a folder for a folder input, got the file {out}")
        if out.is_relative_to(root) and out.is_dir() and find_media(out):
            # its files would be inputs of this run, or be written over by outputs of other inputs
            raise OutputError(
                f"output folder {out} lies inside the input folder {src.path} and holds videos or images; "
                "choose an output folder outside the input"
            )
        inputs = find_media(root, exclude=out)
        if not inputs:
            raise SourceError(f"no videos or images in {src.path}")
        jobs, used = [], set()
        for path in inputs:
            dst = output_for(path, root, out)
            if suffix:
                dst = dst.with_suffix(suffix)
            if dst in used:  # e.g. a.avi and a.mp4 both -> a.mp4
                dst = dst.with_name(f"{path.stem}_{path.suffix.lstrip('.')}{dst.suffix}")
            used.add(dst)
            jobs.append((path, dst))
        read = {p.resolve() for p in inputs}
        clash = next((dst for _, dst in jobs if dst.resolve() in read), None)
        if clash is not None:
            raise OutputError(f"output {clash} would overwrite an input of this run; choose another --output")
        return jobs
    if out.is_dir():
        out = out / default_output(src).name
    if src.path is not None and out.resolve() == src.path.resolve():
        raise OutputError(f"output would overwrite the input {src.path}; choose another --output")
    allowed = IMAGE_EXTS if src.kind == "image" else VIDEO_EXTS
    if suffix:
        allowed = {suffix}
    if out.suffix.lower() not in allowed:
        kind = f"a {suffix.lstrip('.')}" if suffix else "an image" if src.kind == "image" else "a video"
        raise OutputError(f"output {out} needs {kind} extension ({', '.join(sorted(allowed))})")
    return [(src.path if src.path is not None else src, out)]


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed; raise :class:`OutputError` unless a file can be created in it."""
    probe = partial_path(folder / "probe.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to folder {folder}: {e.strerror or e}") from None


def _batched(iterable: Iterable, n: int) -> Iterator[list]:
    it = iter(iterable)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


_DONE = object()


class _Prefetch:
    """Iterate ``iterable`` in a background thread through a bounded queue.

    Exceptions raised by the iterable are re-raised in the consumer. :meth:`close` stops the
    thread and waits for it, so a decoder is never closed while the thread is inside it.
    """

    def __init__(self, iterable: Iterable, maxsize: int = QUEUE_SIZE, name: str = "anonymise-decode"):
        self._iterable = iterable
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._iterable:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._put(e)

    def __iter__(self) -> Iterator:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():  # closed (from another thread): nothing more comes
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> bool:
        """Stop and join the thread; ``False`` if it is still stuck (e.g. in a network read)."""
        self._stop.set()
        self._thread.join(timeout=30)
        return not self._thread.is_alive()


class _WriterThread:
    """Encodes frames in a thread; ``finish`` closes the file into place, ``abort`` removes it."""

    def __init__(self, writer: VideoWriter, maxsize: int = QUEUE_SIZE):
        self.writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="anonymise-encode", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # drain after a failure so producers never block
            frame, image = item
            try:
                self.writer.write_audio(frame.audio)
                self.writer.write(image, frame.pts, frame.duration)
                self.writer.write_audio(frame.audio_after)
            except BaseException as e:  # noqa: BLE001 - reported by put/finish
                self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            e = self._error
            if isinstance(e, AnonymiseError):
                raise e
            raise OutputError(f"writing {self.writer.path} failed: {e}") from e

    def put(self, frame: Frame, image: np.ndarray) -> None:
        self._raise()
        self._queue.put((frame, image))

    def finish(self) -> Path:
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            self.writer.abort()
            self._raise()
        return self.writer.close()

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        self._queue.put(_DONE)
        self._thread.join()  # the encoder must be idle before its container is closed
        self.writer.abort()


def require_display() -> None:
    """Raise :class:`OutputError` where a window cannot open (OpenCV's Qt would abort the process)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise OutputError("--show needs a display, and this session has none (no DISPLAY or WAYLAND_DISPLAY)")


class _FpsMeter:
    """An fps counter drawn on the ``--show`` preview (never on the written output)."""

    def __init__(self, smoothing: float = 0.9):
        self.smoothing = smoothing
        self.fps = 0.0
        self._last: float | None = None

    def annotate(self, image: np.ndarray) -> np.ndarray:
        import cv2

        now = time.perf_counter()
        if self._last is not None and now > self._last:
            rate = 1.0 / (now - self._last)
            self.fps = rate if self.fps == 0 else self.smoothing * self.fps + (1 - self.smoothing) * rate
        self._last = now
        image = image.copy()
        cv2.putText(image, f"{self.fps:.1f} fps", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
        return image


class _Viewer:
    """The ``--show`` preview window; ``show`` returns False when the user pressed q or Esc."""

    def __init__(self, title: str):
        import cv2

        require_display()
        self._cv2 = cv2
        self.title = f"anonymise: {title}"
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise OutputError(f"--show needs a display: {str(e).strip().splitlines()[-1]}") from None

    def show(self, image: np.ndarray) -> bool:
        self._cv2.imshow(self.title, image)
        return self._cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
        except self._cv2.error:
            pass
