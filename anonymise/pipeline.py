"""The Anonymiser: wires the stages for frames, images, videos, cameras and streams.

Per frame: detect -> person alpha -> background update -> (``lookahead`` frames later)
blend -> skeleton. Decoding, the models' main pass, the rest of the per-frame work and
encoding run in their own threads with bounded queues, so the slowest stage (inference) sets
the pace; the rest hides behind it as far as free cores allow (on two cores it competes with
inference, see the README's Performance). A frame whose processing fails is written fully
covered by the background (fail closed), never as it came in.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from . import scene, speech, still
from .background import STABLE_FRAMES, BackgroundModel, TorchBackgroundModel
from .config import Audio, Config, Fill
from .detections import VideoInfo
from .errors import SourceError, Stopped, StreamBroken
from .framestream import Anonymised, FrameStream, reconfigured
from .io.files import signals_held
from .io.images import read_image, write_image
from .io.live import CAPTURE_TIME_BASE, Newest
from .io.sources import Source, SourceKind, media_kind, open_reader, parse_source
from .io.video import Frame, Span, VideoWriter
from .jobs import BatchReport, FileResult, Job, Plan, note_kept, plan_jobs, run_job
from .manifest import Manifest
from .person_detector import person_detector
from .policy import LivePolicy
from .preview import FpsMeter, Viewer, require_display
from .progress import Progress
from .segments import Segments
from .sidecars import Extras, Sidecars
from .threads import QUEUE_SIZE, Prefetch, WriterThread, batched

log = logging.getLogger(__name__)

#: frames of look-ahead on a live source when ``Config.lookahead`` is ``None``: the file policy's sweeps,
#: back-fill and deep-sweep carries reach back this far (a sweep every 5th frame, the untiled search's
#: lapse every 10th: policy.ScalePolicy), at the cost of this many processed frames of delay
#: (1.5 s at 10 fps processed, 1 s at 15)
LIVE_LOOKAHEAD = 15
FILE_LOOKAHEAD = 30
#: a photo's preset, whatever the run's: the most thorough (see :meth:`Anonymiser.stream`)
STILL_PRESET = "thorough"
#: the latest frames whose latency (capture to written) a live run reports (memory stays flat)
LATENCY_SAMPLES = 3000


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
        self.detector = person_detector(detector)
        self.device = self.detector.device
        self.batch = self.detector.batch or self.config.batch or 1
        if background not in ("auto", "cpu", "torch"):
            raise ValueError(f"background must be auto, cpu or torch, got {background!r}")
        self._torch_bg = background == "torch" or (background == "auto" and str(self.device).startswith("cuda"))
        self._frame_stream: FrameStream | None = None

    # -- the per-frame work (see framestream.py) ------------------------------------------------

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

    def stream(
        self,
        lookahead: int = 0,
        fps: float = 30.0,
        debug: bool = False,
        images: bool = True,
        still: bool = False,
    ) -> FrameStream:
        """A fresh :class:`~anonymise.framestream.FrameStream` (one per video) with this anonymiser's models.

        ``images`` off: keypoints only, no output images are made (see :class:`FrameStream`).

        ``still``: a photo. It has no second chance (no tracks, sweeps or look-ahead), so it gets none
        of the video policy's savings: every pass the ``thorough`` preset runs, whatever the preset.
        """
        config, detector = self.config, self.detector
        if still and config.preset != STILL_PRESET:
            config = config.replace(preset=STILL_PRESET)
            detector = reconfigured(detector, preset=STILL_PRESET)
        fail_closed = config.fail_closed is not False
        manual = Manifest.load(config.masks) if config.masks else None
        return FrameStream(
            config,
            detector,
            self._new_background(),
            lookahead,
            fail_closed,
            self._to_device,
            fps,
            debug,
            images,
            manual,
        )

    def anonymise_frames(self, frames: Iterable[Frame], stream: FrameStream | None = None) -> Iterator[Anonymised]:
        """Anonymise in-memory frames, in input order: each an :class:`~anonymise.framestream.Anonymised`
        (the input frame, the output image, the skeletons drawn on it), which unpacks as ``(frame, image)``.

        ``stream`` (from :meth:`stream`) carries the state of one video; by default a fresh one
        with the file look-ahead. A stream passed in is the caller's to close (and to :meth:`FrameStream.flush`
        after a stop: the frames its look-ahead holds).
        """
        own = stream is None
        if own:
            stream = self.stream(self.config.lookahead if self.config.lookahead is not None else FILE_LOOKAHEAD)
        detected = Prefetch(
            ((batch, stream.detect(batch)) for batch in batched(frames, self.batch)),
            maxsize=max(2, QUEUE_SIZE // self.batch),
            name="anonymise-detect",
        )
        try:
            for batch, found in detected:
                yield from stream.hand_out(stream.push(batch, found))
            yield from stream.hand_out(stream.flush())
        finally:
            # an int8 calibration under way in the detect thread stops at its next input, not 10 s later
            with stream.detector.calibrations_stopped():
                closed = detected.close()
            stream.detect_stopped = closed
            if closed and stream.keeps_tail:  # a live stop: the frames already detected are kept too
                for batch, found in detected.drain():
                    stream.hold(stream.push(batch, found))
            if closed and own:
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
            self._frame_stream = self.stream(lookahead=0)
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
        with contextlib.closing(self.stream(lookahead=0, still=True)) as stream:
            result = self._still(image, stream)
        out = result.image
        if extras is not None and extras.any:
            info = VideoInfo(image.shape[1], image.shape[0], Fraction(1), frames=1)
            sidecars = Sidecars(replace(extras, debug_view=False), dst, info, single=single)
            try:
                sidecars.write(result)
                if extras.video:
                    write_image(dst, out)
                sidecars.finish()
            except BaseException:
                sidecars.abort()
                raise
        else:
            write_image(dst, out)
        return FileResult(str(src), dst, "done", 1, time.perf_counter() - start, stream.counts)

    def _still(self, image: np.ndarray, stream: FrameStream) -> Anonymised:
        """One photo through ``stream``; over ``still.WORK_PIXELS``, detected at full size, masked and
        filled at the working size, and composed at full size in bands (see :mod:`anonymise.still`)."""
        frame = Frame(image, 0, 0, Fraction(1))
        height, width = image.shape[:2]
        factor = still.work_scale(width, height)
        if factor == 1:
            (result,) = self.anonymise_frames([frame], stream)
            return result
        work = cv2.resize(image, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        stream.detector = still.FullSize(stream.detector, image, factor)
        draw = stream.config.pose and stream.config.draw_pose
        stream.config = stream.config.replace(draw_pose=False)  # drawn at full size below
        stream.debug = stream.images = True  # the working alpha comes back with the output
        (small,) = self.anonymise_frames([Frame(work, 0, 0, Fraction(1))], stream)
        poses = still.scaled(small.poses, 1 / factor)
        if stream.canvas is not None:  # a canvas replaces the whole photo
            out = stream.canvas.frame(0, (height, width))
        elif small.debug is None:  # the working frame failed and came back fully covered
            out = still.covered(small.image, (height, width))
        else:  # the fill (the background, or the output as --fill made it) blended in under the working alpha
            alpha, background = small.debug
            fill = background if stream.config.fill is Fill.BACKGROUND and background is not None else small.image
            try:
                out = still.compose(image.copy(), alpha, fill)
            except Exception as e:  # noqa: BLE001 - the working copy, already anonymised, enlarged instead
                log.warning("composing the photo at full size failed; written from its anonymised working copy: %s", e)
                out = still.covered(small.image, (height, width))
        if draw and len(poses) and poses.keypoints is not None:
            out = stream.draw(out, poses, scale=1 / factor)
        return Anonymised(frame, out, poses)

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
        span: Span | None = None,
        segment: float = 0.0,
    ) -> FileResult:
        """Anonymise a video file, stream URL or camera into ``dst`` (H.264, audio kept).

        ``segment``: a camera or stream is recorded into files of that many seconds, named by
        their start time (see :mod:`anonymise.segments`); 0: one file.

        ``span``: only that part of a file (see :class:`~anonymise.io.video.Span`).

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
        audio = audio and self.config.audio is not Audio.DROP
        reader = open_reader(src, audio=audio and extras.video, span=span)
        viewer = Viewer(str(src.spec)) if show else None
        written = 0
        frames = outputs = stream = None
        try:
            info = reader.info
            lookahead = (
                self.config.lookahead
                if self.config.lookahead is not None
                else (LIVE_LOOKAHEAD if info.live else FILE_LOOKAHEAD)
            )
            realtime = info.live and self.config.realtime is not False
            time_base = CAPTURE_TIME_BASE if realtime else reader.time_base  # capture times on a live source
            images = extras.video or extras.snapshot_every is not None or extras.debug_view or show
            stream = self.stream(lookahead, fps=float(info.fps), debug=extras.debug_view, images=images)
            stream.keeps_tail = info.live  # a stop keeps what was read (see kept below)
            spent = stream.detector.one_off_seconds  # an int8 calibration in this run is reported apart
            meter = FpsMeter()
            pace = LivePolicy(float(info.fps)) if realtime else None
            latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
            sink = sidecars = None

            def finished(status: str, message: str = "", broken: bool = False) -> FileResult:
                """This recording's result (its report written when asked)."""
                live = {"dropped": frames.dropped, "latency": _percentiles(latencies)} if realtime else {}
                seconds = time.perf_counter() - start
                result = FileResult(
                    str(src.spec), dst, status, written, seconds, stream.counts, message, broken=broken, **live
                )
                result.one_off = stream.detector.one_off_seconds - spent
                if gates:  # the spans of every file written (a segment's are on its own clock)
                    result.speech = tuple(span for gate in gates for span in gate.spans)
                return self._finished(sink, stream, extras, info, result, realtime=realtime)

            gates: list = []  # the speech gates of the files written (one a segment)

            def open_writer(path: Path) -> WriterThread:
                gate = None
                if audio and reader.audio_stream is not None and self.config.audio in REDACTED_AUDIO:
                    gate = speech.SpeechGate(REDACTED_AUDIO[self.config.audio], manual=_audio_spans(stream.manual))
                    gates.append(gate)
                return WriterThread(
                    VideoWriter(
                        path,
                        info.width,
                        info.height,
                        info.fps,
                        time_base,
                        reader.audio_stream if audio else None,
                        gpu=str(self.device).startswith("cuda"),
                        live=info.live,
                        speech=gate,
                    )
                )

            try:
                # a signal while the files are created comes once their owners hold them, so is cleaned up
                with signals_held():
                    if extras.video:
                        sink = Segments(dst, segment, open_writer) if info.live and segment else open_writer(dst)
                    sidecars = Sidecars(extras, dst, info, single=single, show=show, time_base=time_base)
                if isinstance(sink, Segments):
                    sink.opened = sidecars.segment  # each segment gets its own keypoint file
                whole = self._whole_clip_applies(stream, info.live)
                progress.start_file(Path(str(src.spec)).name, info.frames, "learning" if whole else "")
            except BaseException:
                if sink is not None:
                    sink.abort()
                if sidecars is not None:
                    sidecars.abort()
                raise

            def write(result: Anonymised) -> None:
                nonlocal written
                # a stop waits until the frame is in every output (a new segment's first frame included)
                with signals_held():
                    if sink is not None:
                        sink.put(result.frame, result.image)
                    sidecars.write(result)
                    written += 1
                if realtime:
                    latencies.append(frames.age(result.frame))

            def kept() -> None:
                """A live recording that ends (a stop, the source broke off): the frames the look-ahead
                holds are written too, so the recording ends where the source did; then it is finished.
                A second stop meanwhile waits until the file is finished (:func:`keep`)."""
                with signals_held():
                    outputs.close()  # the detect stage stops first
                    if stream.detect_stopped:  # never beside a detect stage that did not stop
                        for result in stream.flush():
                            write(result)
                    if sink is not None:
                        sink.finish()
                    sidecars.finish()

            def keep(status: str, message: str = "", broken: bool = False) -> FileResult:
                """:func:`kept`, and the result; a stop that came while the recording was being finished
                is raised once it is, with the recording named as kept (the CLI says so)."""
                try:
                    kept()
                except KeyboardInterrupt as again:
                    note_kept(again, [finished("stopped")])
                    raise
                return finished(status, message, broken=broken)

            reached = 0.0  # where the frames written end (seconds): a file cut short ends early
            closed_window = False  # a live --show window closed (q): the recording ends there, kept
            try:
                frames = Newest(reader) if realtime else Prefetch(reader)
                if whole:
                    outputs = self._whole_clip(src, span, frames, stream, progress, info)
                else:
                    outputs = self.anonymise_frames(frames, stream)
                for result in outputs:
                    frame, out = result
                    write(result)
                    reached = (frame.time or 0.0) + 1 / float(info.fps)
                    if realtime and pace.processed(frames.dropped):
                        log.warning(
                            "live: %.1f fps processed, under the %.0f fps to hold: stale frames are dropped, "
                            "and each frame written is searched in full (--preset fast searches less)",
                            pace.rate,
                            pace.target,
                        )
                    progress.advance()
                    if viewer is not None:
                        view = sidecars.debug_view if sidecars.debug_view is not None else out
                        live = f"{1000 * latencies[-1]:.0f} ms behind, {frames.dropped} dropped" if realtime else ""
                        if not viewer.show(meter.annotate(view, live)):
                            if not info.live:
                                raise KeyboardInterrupt
                            closed_window = True
                            break
                if closed_window:
                    return keep("done")
                if not written and span is not None and span.start:  # nothing is written: no empty file
                    raise SourceError(f"--start {span.start:g} s is past the end of {src.spec}{_seconds(info)}")
                if sink is not None:
                    sink.finish()
                sidecars.finish()
            except StreamBroken as e:
                if not written and not stream.buffered:
                    raise
                result = keep("done", str(e), broken=True)  # the recording so far, finished and playable
                log.warning("%s; the recording so far is kept: %s", e, result.output.name)  # a segment's own name
                return result
            except KeyboardInterrupt as e:
                if info.live and (written or stream.buffered):
                    result = keep("stopped")
                    if isinstance(e, Stopped):  # a service manager's stop: the recording is kept, the process exits
                        note_kept(e, [result])
                        raise
                    return result
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
            if stream is not None:
                stream.close()
            if frames is None or frames.close():  # never close a container a thread is still reading
                reader.close()
            if viewer is not None:
                viewer.close()
        message = ""
        whole = not info.live and (span is None or span.whole)
        # a header's count can be wrong (a rate declared twice the real one, fields counted as frames):
        # the file is cut short only where its frames also end before its declared duration
        short = info.duration is None or reached < info.duration - max(0.5, 2 / float(info.fps))
        if whole and info.frames and written < info.frames and short:
            message = f"only {written} of the {info.frames} frames the file declares could be decoded (truncated?)"
            log.warning("%s: %s", src.spec, message)
        return finished("done", message)

    @staticmethod
    def _whole_clip_applies(stream: FrameStream, live: bool) -> bool:
        """Whether a clip is composed over the scene its whole clip shows (:mod:`anonymise.scene`):
        a file (not a camera or stream) whose output images show the background."""
        return not live and stream.images and stream.canvas is None and stream.config.fill in scene.FILLS

    def _whole_clip(
        self, src: Source, span: Span | None, frames: Iterable[Frame], stream: FrameStream, progress: Progress, info
    ) -> Iterator[Anonymised]:
        """A file in two passes (:meth:`anonymise_clip`): the first reads it again without its audio;
        the second composes ``frames`` (the reader the output's audio comes from)."""
        reader = open_reader(src, audio=False, span=span)
        first = None
        try:
            first = Prefetch(reader)
            yield from self.anonymise_clip(
                first, frames, stream, fps=float(info.fps), frames=info.frames, progress=progress
            )
        finally:
            if first is None or first.close():
                reader.close()

    def anonymise_clip(
        self,
        first: Iterable[Frame],
        second: Iterable[Frame],
        stream: FrameStream | None = None,
        *,
        fps: float = 30.0,
        frames: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[Anonymised]:
        """Anonymise a clip that can be read twice (``first`` and ``second``: the same frames, in order),
        composed over the scene its whole clip shows (:mod:`anonymise.scene`): where a person stands,
        what that place showed when it was free, before or after. ``frames``: how many there are,
        when known (it spaces the checkpoints). Yields like :meth:`anonymise_frames`; where nothing
        shows the scene (a canvas, a fill that does not use it, keypoints only), one pass over ``second``.

        The first pass detects and learns; the second composes. Between them, a temporary folder holds
        each frame's mask and checkpoints of the background (never a person's pixels); it is removed
        however the run ends. ``progress`` advances through the first pass, then starts again.
        """
        own = stream is None
        if own:
            stream = self.stream(self.config.lookahead if self.config.lookahead is not None else FILE_LOOKAHEAD, fps)
        try:
            if not self._whole_clip_applies(stream, live=False):  # nothing shows the scene: one pass
                yield from self.anonymise_frames(second, stream)
                return
            with tempfile.TemporaryDirectory(prefix="anonymise-scene-") as folder:
                stream.scene = scene.Recorder(Path(folder), scene.spacing(fps, frames), fps)
                try:
                    for _ in self.anonymise_frames(first, stream):
                        if progress is not None:
                            progress.advance()
                    clip = stream.scene.finish(stream.background)
                finally:
                    stream.scene = None
                if progress is not None:
                    progress.restart("composing")
                yield from stream.replay(second, clip)
        finally:
            if own:
                stream.close()

    def _finished(
        self, sink, stream: FrameStream, extras: Extras, info, result: FileResult, realtime: bool = False
    ) -> FileResult:
        """The result of a finished recording; its redaction report is written when ``extras.report`` asks."""
        result = _recorded(sink, result)
        if extras.report and result.output is not None:
            from . import report

            fields = report.build(
                stream.ledger.as_dict(),
                self.config,
                source=result.source,
                output=result.output,
                fps=float(info.fps),
                seconds=result.seconds,
                counts=stream.counts,
                resolved={**stream.resolved(), "realtime": realtime},
                speech=result.speech,
            )
            if result.segments:
                fields["segments"] = [str(p) for p in result.segments]
            report.write(fields, result.output)
        return result

    def process_file(self, src: str | Path, dst: str | Path, **kwargs) -> FileResult:
        """Anonymise an image or a video file, chosen by its extension."""
        if media_kind(Path(src)) is SourceKind.IMAGE:
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
        span: Span | None = None,
        reconnect: float = 0.0,
        segment: float = 0.0,
    ) -> BatchReport:
        """Anonymise anything ``--video-source`` accepts; see the CLI for the rules on outputs.

        A single input raises :class:`~anonymise.errors.AnonymiseError` on failure. A folder is
        processed file by file: a bad file is reported in the returned :class:`BatchReport`
        and the run goes on; outputs that exist are skipped unless ``overwrite``. ``extras``:
        keypoints, snapshots, debug view, or data only (see :class:`~anonymise.sidecars.Extras`).
        """
        return self.run_plan(
            plan_jobs(source, output, extras, overwrite, span, reconnect, segment),
            audio=audio,
            show=show,
            progress=progress,
        )

    def run_plan(self, plan: Plan, *, audio: bool = True, show: bool = False, progress: bool = False) -> BatchReport:
        """Execute a :class:`~anonymise.jobs.Plan` here, job by job (see :func:`~anonymise.jobs.run_job`)."""
        if show:
            require_display()
        report = BatchReport()
        with Progress(enabled=progress, files=len(plan.jobs)) as bar:
            for job in plan.jobs:
                # the output the user named stays claimed while a live source reconnects
                with contextlib.ExitStack() as claims:
                    result = plan.skipped(job)
                    if result is None:
                        result, error = run_job(self, plan, job, audio=audio, show=show, progress=bar, claims=claims)
                        if error is not None and plan.single:
                            raise error
                    report.results.append(result)
                    try:
                        while result.broken and plan.reconnect > 0:  # a live source that broke off: a new recording
                            result = self._reconnect(plan, job, audio=audio, show=show, progress=bar)
                            report.results.append(result)
                    except KeyboardInterrupt as e:  # a stop while it reconnects: the recordings so far are kept
                        note_kept(e, report.results)
                        raise
                bar.end_file()
        return report

    def _reconnect(self, plan: Plan, job: Job, *, audio: bool, show: bool, progress: Progress) -> FileResult:
        """Retry a live source for up to ``plan.reconnect`` seconds (1, 2, 4 ... 10 s apart), recording into a new file.

        Returns the new recording's result, or a failed one when the source did not come back.
        """
        deadline = time.monotonic() + plan.reconnect
        wait = 1.0
        log.warning("%s: reconnecting (for up to %.0f s)", job.name, plan.reconnect)
        while True:
            time.sleep(min(wait, max(deadline - time.monotonic(), 0.0)))
            result, error = run_job(self, plan, plan.next_output(job), audio=audio, show=show, progress=progress)
            if error is None:
                log.warning("%s: reconnected; recorded into %s", job.name, result.output.name)
                return result
            if not isinstance(error, SourceError) or time.monotonic() >= deadline:
                message = f"did not come back within {plan.reconnect:.0f} s: {error}"
                log.warning("%s %s", job.name, message)
                return FileResult(job.name, None, "failed", message=message)
            wait = min(wait * 2, 10.0)


def _seconds(info) -> str:
    """`` (79.5 s long)`` where the duration is known."""
    return f" ({info.duration:.1f} s long)" if info.duration else ""


def _percentiles(latencies) -> tuple[float, float] | None:
    """(median, 95th percentile) of latencies in seconds, or ``None`` without any."""
    if not latencies:
        return None
    values = np.asarray(latencies, np.float64)
    return float(np.median(values)), float(np.percentile(values, 95))


#: the --audio modes that redact speech, and the :class:`~anonymise.speech.SpeechGate` mode of each
REDACTED_AUDIO = {Audio.MUTE_SPEECH: "mute", Audio.BEEP_SPEECH: "beep"}


def _audio_spans(manual) -> list:
    """The manual audio spans of a redaction manifest (``--masks``), or none."""
    return manual.audio_spans() if manual is not None else []


def _recorded(sink, result: FileResult) -> FileResult:
    """A segmented recording's result names its files (``output``: the last one)."""
    if isinstance(sink, Segments) and sink.finished:
        return replace(result, output=sink.finished[-1], segments=tuple(sink.finished))
    return result
