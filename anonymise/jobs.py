"""Planning a run, once, and running one job of it.

:func:`plan_jobs` turns ``--video-source`` and ``--output`` into a :class:`Plan`: every input with
its output (and keypoint file), whether the input is a single one (its failure is the run's)
or a folder (a bad file is reported and the run goes on), and which outputs are skipped
because they exist. The CLI plans before any model loads, so bad paths fail fast; the local
runner (:meth:`anonymise.pipeline.Anonymiser.run_plan`) and the Ray runner
(:func:`anonymise.distributed.run_ray`) execute that same plan through :func:`run_job`: one
dispatch (image or video), one error policy, one skip rule.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AnonymiseError, ConfigError, OutputError, SourceError
from .io.files import partial_path
from .io.images import IMAGE_EXTS
from .io.outputs import claim, staging
from .io.sources import (
    VIDEO_EXTS,
    Source,
    SourceKind,
    default_output,
    find_media,
    media_kind,
    output_for,
    parse_source,
)
from .io.video import Span
from .sidecars import Extras, data_suffix
from .slot import Counts


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
    #: live sources in real time: stale frames dropped, and the median and 95th percentile of the
    #: latency from capture to a written frame (seconds)
    dropped: int = 0
    latency: tuple[float, float] | None = None
    #: a live source that broke off (reset, stall): the recording up to then is kept, and the run may reconnect
    broken: bool = False
    #: a segmented live recording's files, in order (``output`` is the last)
    segments: tuple[Path, ...] = ()
    #: the audio's redacted spans (``--audio mute-speech`` / ``beep-speech``): speech found, and manual
    #: spans; ``None`` where the audio was not redacted (kept, dropped, or none)
    speech: tuple | None = None

    #: seconds of ``seconds`` spent on one-off work (an int8 calibration, cached for later runs)
    one_off: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_fps(self) -> float:
        """Frames per second without the one-off work (what later runs of the same models get)."""
        steady = self.seconds - self.one_off
        return self.frames / steady if steady > 0 else self.fps


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


@dataclass(frozen=True)
class Job:
    """One input and where its output goes."""

    #: a file, or the camera / stream :class:`Source` itself
    source: Path | Source
    output: Path
    #: a live recording continued after a reconnect: the output the user named, which the run
    #: holds (claims) from its first connection to its last; ``output`` is the new file
    continues: Path | None = None

    @property
    def name(self) -> str:
        return str(self.source.spec if isinstance(self.source, Source) else self.source)

    @property
    def image(self) -> bool:
        return not isinstance(self.source, Source) and media_kind(self.source) is SourceKind.IMAGE


@dataclass(frozen=True)
class Plan:
    """Everything a run will do, decided before it starts (see :func:`plan_jobs`)."""

    source: Source
    jobs: tuple[Job, ...]
    extras: Extras = field(default_factory=Extras)
    #: replace outputs that exist (a folder run skips them otherwise)
    overwrite: bool = False
    #: only part of each video (``--start``, ``--duration``, ``--frames``); ``None``: all of it
    span: Span | None = None
    #: live sources: seconds of retries (with back-off) after the source broke off; 0: none
    reconnect: float = 0.0
    #: live sources: the recording is cut into files of this many seconds, named by start time; 0: one file
    segment: float = 0.0

    def next_output(self, job: Job, now: float | None = None) -> Job:
        """The job that continues a live recording after a reconnect, under the claim of the output
        the user named: ``<stem>_<YYYYmmdd-HHMMSS><ext>`` from that name. Segmented, the name itself
        (each segment is named by its start time: a continuation's time stamp would be a second one).
        """
        named = job.continues or job.output
        if self.segment:
            return Job(job.source, named, named)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        output = named.with_name(f"{named.stem}_{stamp}{named.suffix}")
        n = 1
        while output.exists():
            n += 1
            output = named.with_name(f"{named.stem}_{stamp}-{n}{named.suffix}")
        return Job(job.source, output, named)

    @property
    def single(self) -> bool:
        """One input (a file, camera or stream): its failure is the run's. A folder goes on past a bad file."""
        return self.source.kind is not SourceKind.FOLDER

    def skipped(self, job: Job) -> FileResult | None:
        """The result of a job that is not run: a folder's output that exists, without ``overwrite``."""
        if not self.single and job.output.exists() and not self.overwrite:
            return FileResult(job.name, job.output, "skipped", message="output exists (use --overwrite)")
        return None

    def keypoints_path(self, job: Job) -> Path | None:
        """Where the job's keypoint file goes, when keypoints are asked for."""
        return self.extras.keypoints_path(job.output, self.single)


def plan_jobs(
    source: str | Path | int | Source,
    output: str | Path | None = None,
    extras: Extras | None = None,
    overwrite: bool = False,
    span: Span | None = None,
    reconnect: float = 0.0,
    segment: float = 0.0,
) -> Plan:
    """The :class:`Plan` for a source; checks that no output can replace an input, and the keypoint paths.

    ``output`` ``None``: the default output (see :func:`~anonymise.io.sources.default_output`).
    With ``extras.video`` off the outputs are keypoint files (``.jsonl`` or ``.csv``), not videos.
    """
    src = source if isinstance(source, Source) else parse_source(source)
    extras = extras or Extras()
    span = span if span is not None and not span.whole else None
    if span is not None and src.kind.live:
        raise ConfigError(f"--start, --duration and --frames take files, not a {src.kind}")
    if not isinstance(reconnect, (int, float)) or isinstance(reconnect, bool) or not reconnect >= 0:
        raise ConfigError(f"--reconnect must be a number of seconds >= 0, got {reconnect!r}")
    if not isinstance(segment, (int, float)) or isinstance(segment, bool) or not (segment == 0 or segment >= 1):
        raise ConfigError(f"--segment must be 0 (one file) or a number of seconds >= 1, got {segment!r}")
    jobs = tuple(Job(a, b) for a, b in _pairs(src, output, extras))
    live = src.kind.live
    plan = Plan(src, jobs, extras, overwrite, span, float(reconnect) if live else 0.0, float(segment) if live else 0.0)
    for job in plan.jobs:
        plan.keypoints_path(job)  # a bad --keypoints path fails now, before any model loads
    return plan


def run_job(
    anonymiser,
    plan: Plan,
    job: Job,
    *,
    audio: bool = True,
    show: bool = False,
    progress=None,
    claims: contextlib.ExitStack | None = None,
):
    """Run one job; ``(result, error)``: the error is ``None`` on success, else what a single input raises.

    The output folder is created and checked, the output claimed (one run per output; the
    litter of a killed run removed), and the input dispatched as an image or a video. A failure
    never escapes, except an interrupt: it becomes a failed :class:`FileResult`, with the error
    (an :class:`AnonymiseError`, or the unexpected exception itself) for the caller to raise.

    ``claims``: the claim is entered there and outlives the call, so that a live source's output
    stays held while it reconnects; a continuation (:meth:`Plan.next_output`) is not claimed again.
    """
    try:
        check_writable(job.output.parent)
        with contextlib.ExitStack() as held:
            if job.continues is None:
                snapshots = plan.extras.snapshot_folder(job.output, plan.single)
                also = [plan.keypoints_path(job), snapshots and staging(snapshots, job.output)]
                (claims if claims is not None else held).enter_context(claim(job.output, [p for p in also if p]))
            if job.image:
                result = anonymiser.process_image(job.source, job.output, extras=plan.extras, single=plan.single)
            else:  # a video file, or a camera / stream Source
                result = anonymiser.process_video(
                    job.source,
                    job.output,
                    audio=audio,
                    show=show,
                    progress=progress,
                    extras=plan.extras,
                    single=plan.single,
                    span=plan.span,
                    segment=plan.segment,
                )
        return result, None
    except (AnonymiseError, OSError) as e:
        error = as_anonymise_error(e)
        return FileResult(job.name, job.output, "failed", message=str(error)), error
    except Exception as e:  # noqa: BLE001 - a folder run goes on past one bad file
        return FileResult(job.name, job.output, "failed", message=f"{type(e).__name__}: {e}"), e


def as_anonymise_error(e: Exception) -> AnonymiseError:
    if isinstance(e, AnonymiseError):
        return e
    return OutputError(f"{getattr(e, 'filename', '') or ''}: {getattr(e, 'strerror', None) or e}".lstrip(": "))


def _pairs(src: Source, out: str | Path | None, extras: Extras) -> list[tuple]:
    """Pairs of (input, output path) for a source; checks that no output can replace an input.

    ``out`` ``None``: the default output (see :func:`~anonymise.io.sources.default_output`). With
    ``extras.video`` off the outputs are keypoint files (``.jsonl`` or ``.csv``), not videos.
    """
    suffix = None if extras.video else data_suffix(extras.keypoints)
    if out is None:
        out = default_output(src)
        if suffix and src.kind is not SourceKind.FOLDER:
            out = out.with_suffix(suffix)
    out = Path(out)
    if src.kind is SourceKind.FOLDER:
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
    allowed = IMAGE_EXTS if src.kind is SourceKind.IMAGE else VIDEO_EXTS
    if suffix:
        allowed = {suffix}
    if out.suffix.lower() not in allowed:
        kind = f"a {suffix.lstrip('.')}" if suffix else "an image" if src.kind is SourceKind.IMAGE else "a video"
        raise OutputError(f"output {out} needs {kind} extension ({', '.join(sorted(allowed))})")
    return [(src.path if src.path is not None else src, out)]


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed; raise :class:`OutputError` unless a file can be created in it."""
    probe = partial_path(folder / "probe.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            probe.touch()
        finally:  # whatever stops it (a signal too), the probe is not left behind
            probe.unlink(missing_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write to folder {folder}: {e.strerror or e}") from None


def note_kept(stop: KeyboardInterrupt, results) -> None:
    """Mark on a stop (Ctrl-C, SIGTERM, SIGHUP) that ends a live run the recordings its ``results``
    kept: the CLI's last line names them (see :func:`kept_on`), not "unfinished outputs were removed"."""
    outputs = [
        path
        for r in results
        if r.status in ("done", "stopped") and r.output is not None
        for path in (r.segments or (r.output,))
    ]
    stop.kept = tuple(dict.fromkeys([*outputs, *kept_on(stop)]))  # the earlier results first, each once


def kept_on(stop: BaseException) -> tuple[Path, ...]:
    """The recordings a stopped live run kept (see :func:`note_kept`); none for anything else."""
    return getattr(stop, "kept", ())
