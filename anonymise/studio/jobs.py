"""The studio's jobs: one folder each under ``--jobs-dir``, a FIFO queue, ``--workers`` threads.

A job folder holds ``job.json`` (its state, rewritten atomically on every change), the upload
(``original/``), the outputs (``out/``) and the reviewer's manifest (``manifest.json``).

The unmasked upload is kept while its job is open for review (side by side, re-render) and
deleted when the job is marked reviewed, when it is deleted, or once the server's time limit
(``keep_originals_hours`` after upload) has passed: checked when the store loads, when a worker
picks a job, and whenever the jobs are listed. A server started without keeping originals
(``keep_originals=False``), or an upload that asked not to keep it, has it deleted as soon as
its job ends. On a restart the store reads every ``job.json``:
finished jobs stay, a job that was running is marked ``interrupted``, queued ones queue again.
A job's failure is the job's: the worker catches everything and records the one-line error.
A job that ends without its outputs (failed, cancelled, interrupted) leaves no half-written file.

What the store serves is a regular file inside the job's folder, never a link: a symlink placed
there would otherwise hand out any file the server can read.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import queue
import re
import shutil
import stat
import threading
import time
import unicodedata
import uuid
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..colours import COLOURS, parse_colour
from ..config import PRESETS, Config, Fill, Mode
from ..errors import ConfigError, first_line
from ..io.files import atomic
from ..io.images import IMAGE_EXTS
from ..io.sources import SourceKind
from . import KEEP_ORIGINALS_HOURS

log = logging.getLogger("anonymise.studio")


def studio_settings(config: Config | None = None) -> dict:
    """The settings an upload may carry, with their defaults: ``Config()``'s, never restated here.

    ``pose`` is whether skeletons are drawn (``Config.draw_pose``); ``keypoints`` (a JSONL file and
    the events from it) and ``snapshot_every`` are the run's extras, which ``Config`` does not hold:
    the studio writes keypoints by default, where the CLI writes them when asked.
    """
    config = Config() if config is None else config
    return {
        "mode": config.mode.value,
        "fill": config.fill.value,
        "canvas": config.canvas or "",
        "skeleton_colour": config.skeleton_colour,
        "preset": config.preset,
        "keypoints": True,
        "snapshot_every": "",
        "pose": config.draw_pose,
    }


#: the settings an upload may carry, with their defaults (``Config()``'s)
SETTINGS = studio_settings()
#: the values a chosen setting may take: ``Config``'s own enums and presets
CHOICES = {
    "mode": [m.value for m in Mode],
    "preset": list(PRESETS),
    "fill": [f.value for f in Fill],
}
STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
#: states in which a job's original is in use (or about to be): never deleted under it
BUSY = ("uploading", "queued", "running")
#: why a job has no original on a server that keeps none
NOT_KEPT = "this server keeps no originals"


def studio_canvas(spec: str) -> str:
    """The canvas setting as the studio takes it: a colour, or ``""`` (none; also ``none``).

    Never a path, unlike the CLI's ``--canvas``: whoever uses the studio would otherwise have any
    file the server can read (another video, its people unmasked) drawn into their output.
    Raises ``ValueError`` for anything else.
    """
    text = str(spec).strip()
    if text.lower() in ("", "none"):
        return ""
    try:
        parse_colour(text)
    except ValueError:
        raise ValueError(
            f"canvas must be a colour ({', '.join(COLOURS)} or #RRGGBB) or empty; "
            f"the studio never reads a file for it, got {text[:80]!r}"
        ) from None
    return text


def regular_file(path: Path, folder: Path) -> Path | None:
    """``path`` when it is a regular file (not a symlink) that resolves inside ``folder``, else ``None``."""
    try:
        if path.is_symlink() or not stat.S_ISREG(path.lstat().st_mode):
            return None
        return path if path.resolve().is_relative_to(folder.resolve()) else None  # a linked folder on the way
    except (OSError, ValueError):
        return None


def safe_name(name: str) -> str:
    """A file name with no folder, no leading dot and only plain characters (``../../x.mp4`` -> ``x.mp4``)."""
    name = unicodedata.normalize("NFKC", str(name)).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" .")
    return name[:120] or "upload"


@dataclass
class StudioJob:
    """One upload in the studio (``job.json``); not :class:`anonymise.jobs.Job`, a CLI run's file pair."""

    id: str
    name: str
    created: float
    settings: dict
    status: str = "queued"
    kind: str = ""  # SourceKind.VIDEO or IMAGE (its name in job.json), from probing the upload
    frames: int = 0
    total: int | None = None
    fps: float = 0.0
    eta: float | None = None
    error: str = ""
    keep_original: bool = False
    has_original: bool = True
    #: why the original is gone (``""`` while it is kept): said where a re-render is refused
    original_gone: str = ""
    #: when the reviewer marked the job reviewed (its original deleted then), else ``None``
    reviewed: float | None = None
    outputs: dict = field(default_factory=dict)  # kind -> file name under out/
    renders: int = 0
    width: int = 0
    height: int = 0
    duration: float = 0.0
    seconds: float = 0.0

    @property
    def version(self) -> str:
        """What its outputs are: ``original render`` or ``re-render N``."""
        return "original render" if self.renders <= 1 else f"re-render {self.renders - 1}"

    def state(self) -> dict:
        """What ``job.json`` holds."""
        return asdict(self)

    def public(self) -> dict:
        """What the API answers: its state and its version."""
        return {**self.state(), "version": self.version}

    @classmethod
    def from_dict(cls, data: dict) -> StudioJob:
        """A job from ``job.json`` (or :meth:`public`): keys it does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Cancelled(KeyboardInterrupt):
    """Raised inside a running job when the reviewer cancels it (the pipeline removes its partial output)."""


class JobProgress:
    """The pipeline's progress hook for one job: frames, fps and ETA into the store."""

    def __init__(self, store: JobStore, job: StudioJob, cancel: threading.Event):
        self.store, self.job, self.cancel = store, job, cancel
        self._start = time.perf_counter()
        self._last = 0.0

    def start_file(self, name: str, total: int | None, phase: str = "") -> None:
        self.job.total = total
        self.restart(phase)

    def restart(self, phase: str = "") -> None:
        """The frames again from 0: a file's second pass (``phase``, see :mod:`anonymise.scene`)."""
        self.job.frames = 0
        self._start = time.perf_counter()
        self.store.changed(self.job)

    def advance(self, n: int = 1) -> None:
        if self.cancel.is_set():
            raise Cancelled
        self.job.frames += n
        now = time.perf_counter()
        if now - self._last >= 0.25 or (self.job.total and self.job.frames >= self.job.total):
            self._last = now
            elapsed = now - self._start
            self.job.fps = self.job.frames / elapsed if elapsed > 0 else 0.0
            if self.job.total and self.job.fps > 0:
                self.job.eta = max(self.job.total - self.job.frames, 0) / self.job.fps
            self.store.changed(self.job)

    def end_file(self) -> None:
        pass


class JobStore:
    """Every job, their folders and the queue; thread-safe.

    ``keep_originals``: whether a job keeps its upload while it is open for review (else it is
    deleted when the job ends); ``keep_originals_hours``: the time limit after upload (``None``:
    none, kept until the job is marked reviewed or deleted). ``clock`` gives the time (tests fake it).
    """

    def __init__(
        self,
        root: Path,
        keep_originals: bool = True,
        keep_originals_hours: float | None = KEEP_ORIGINALS_HOURS,
        clock=time.time,
    ):
        if keep_originals_hours is not None and not keep_originals_hours > 0:
            raise ConfigError(f"the originals' time limit must be above 0 hours, got {keep_originals_hours}")
        self.root = Path(root)
        # the jobs hold unmasked originals: the folder is its owner's alone (made so, or kept so)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)
        self.keep_originals = keep_originals
        self.keep_originals_hours = keep_originals_hours
        self.clock = clock
        self.jobs: dict[str, StudioJob] = {}
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.version = 0
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._load()

    # -- persistence ------------------------------------------------------------------------

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def _load(self) -> None:
        for path in sorted(self.root.glob("*/job.json")):
            try:
                job = StudioJob.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping %s: %s", path, first_line(e))
                continue
            if job.status == "uploading":  # the server stopped mid-upload: nothing to keep
                shutil.rmtree(path.parent, ignore_errors=True)
                continue
            if job.status == "running":
                job.status, job.error = "interrupted", "the server stopped while this job ran"
                self._settle_original(job)
                self._save(job)
            self._drop_partials(job)  # nothing runs yet: any unfinished file is a stopped run's
            self.jobs[job.id] = job
        self.expire()
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            if job.status == "queued":
                self._cancel[job.id] = threading.Event()
                self.queue.put(job.id)

    def _save(self, job: StudioJob) -> None:
        folder = self.folder(job.id)
        if not folder.is_dir():
            return  # deleted
        with atomic(folder / "job.json") as tmp:
            tmp.write_text(json.dumps(job.state()), encoding="utf-8")

    def _drop_original(self, job: StudioJob, why: str) -> None:
        """Delete the unmasked upload, saying why (kept in ``original_gone``)."""
        shutil.rmtree(self.folder(job.id) / "original", ignore_errors=True)
        if job.has_original or not job.original_gone:
            job.original_gone = why
        job.has_original = False

    def _settle_original(self, job: StudioJob) -> None:
        """At a job's end: its original is deleted unless the job keeps it and its time is not up."""
        if not job.keep_original:
            self._drop_original(job, "not kept: " + ("the upload asked so" if self.keep_originals else NOT_KEPT))
        elif self.expired(job):
            self._drop_original(job, self.time_up())

    def original_until(self, job: StudioJob) -> float | None:
        """When the job's original will be deleted by the time limit (``None``: gone, or no limit)."""
        if not job.has_original or not job.keep_original or self.keep_originals_hours is None:
            return None
        return job.created + self.keep_originals_hours * 3600

    def expired(self, job: StudioJob) -> bool:
        until = self.original_until(job)
        return until is not None and self.clock() >= until

    def time_up(self) -> str:
        hours = self.keep_originals_hours
        return f"deleted {hours:g} hour{'' if hours == 1 else 's'} after upload, the server's limit"

    def expire(self) -> list[str]:
        """Delete the originals past the time limit (never one a job is using); the ids of their jobs."""
        dropped = []
        with self._lock:
            for job in list(self.jobs.values()):
                if job.status not in BUSY and job.has_original and self.expired(job):
                    self._drop_original(job, self.time_up())
                    self._save(job)
                    dropped.append(job.id)
            if dropped:
                self.version += 1
        for job_id in dropped:
            log.info("job %s: the original was %s", job_id, self.time_up())
        return dropped

    def _drop_partials(self, job: StudioJob) -> None:
        """Delete the unfinished files (``.<name>.partial-*``) a stopped or failed run left in the job's
        folder: half a video and its keypoints, which nothing else would ever remove (a re-render
        writes under new temporary names)."""
        for folder, _, names in os.walk(self.folder(job.id)):
            for name in names:
                if name.startswith(".") and ".partial-" in name:
                    Path(folder, name).unlink(missing_ok=True)

    def changed(self, job: StudioJob) -> None:
        with self._lock:
            self._save(job)
            self.version += 1

    # -- the API's verbs ----------------------------------------------------------------------

    def create(self, name: str, settings: dict, keep_original: bool | None = None) -> tuple[StudioJob, Path]:
        """A new job (not yet queued) and the path its upload is to be written to. ``keep_original``
        ``False``: its original is deleted as soon as it ends; never kept where the server keeps none."""
        job = StudioJob(
            uuid.uuid4().hex[:12],
            safe_name(name),
            self.clock(),
            settings,
            keep_original=self.keep_originals and keep_original is not False,
        )
        job.status = "uploading"
        folder = self.folder(job.id)
        (folder / "original").mkdir(parents=True)
        (folder / "out").mkdir()
        with self._lock:
            self.jobs[job.id] = job
            self._save(job)  # a restart mid-upload finds it, and removes it
        return job, folder / "original" / job.name

    def submit(self, job: StudioJob, again: bool = False) -> bool:
        """Queue a job; ``again`` (a re-render): only if it is neither queued nor running (checked and
        changed at once, so a double click queues it once). Returns whether it was queued."""
        with self._lock:
            if again and job.status in ("queued", "running", "uploading"):
                return False
            job.status = "queued"
            job.error = ""
            job.frames, job.fps, job.eta = 0, 0.0, None
            self._cancel[job.id] = threading.Event()
            self._save(job)
            self.version += 1
        self.queue.put(job.id)
        return True

    def cancel(self, job_id: str) -> StudioJob:
        job = self.jobs[job_id]
        if job.status in ("queued", "running"):
            self._cancel.setdefault(job_id, threading.Event()).set()
            if job.status == "queued":
                job.status, job.error = "cancelled", "cancelled by the reviewer"
                self._settle_original(job)
                self.changed(job)
        return job

    def mark_reviewed(self, job_id: str) -> StudioJob:
        """The reviewer is done with the job: its original is deleted now (no re-render after).
        Raises ``ValueError`` while it is queued or running."""
        with self._lock:
            job = self.jobs[job_id]
            if job.status in BUSY:
                raise ValueError("the job is still queued or running: mark it reviewed once it has ended")
            if job.reviewed is None:
                job.reviewed = self.clock()
            if job.has_original:
                self._drop_original(job, "deleted when the job was marked reviewed")
            self._save(job)
            self.version += 1
        return job

    def delete(self, job_id: str) -> None:
        self._cancel.setdefault(job_id, threading.Event()).set()
        with self._lock:
            job = self.jobs.pop(job_id, None)
            self.version += 1
        if job is None:
            return
        if job.status != "running":
            shutil.rmtree(self.folder(job.id), ignore_errors=True)
        # a running job notices the cancel, stops, and its worker removes the folder (see _work)

    def original(self, job: StudioJob) -> Path | None:
        folder = self.folder(job.id)
        files = sorted((folder / "original").glob("*")) if job.has_original else []
        return next((f for f in files if regular_file(f, folder)), None)

    def output(self, job: StudioJob, kind: str) -> Path | None:
        name = job.outputs.get(kind)
        return regular_file(self.folder(job.id) / "out" / name, self.folder(job.id)) if name else None

    def snapshot(self, job: StudioJob, name: str) -> Path | None:
        """One of the job's snapshots by its name (only a name the job lists)."""
        if name not in job.outputs.get("snapshots", []):
            return None
        folder = self.folder(job.id) / "out" / f"{Path(job.outputs.get('video', '')).stem}_snapshots"
        return regular_file(folder / name, self.folder(job.id))

    def manifest_path(self, job: StudioJob) -> Path:
        return self.folder(job.id) / "manifest.json"

    def checks_path(self, job: StudioJob) -> Path:
        """The ids of the checks the reviewer ticked (kept across re-renders)."""
        return self.folder(job.id) / "checked.json"

    def checked(self, job: StudioJob) -> set[str]:
        path = self.checks_path(job)
        try:
            return set(json.loads(path.read_text())) if path.is_file() else set()
        except (OSError, ValueError):
            return set()

    def zip_outputs(self, job: StudioJob) -> Path:
        """Every output of the job in one zip (made once per render)."""
        target = self.folder(job.id) / f"{Path(job.name).stem}_anonymised_{job.renders}.zip"
        if regular_file(target, self.folder(job.id)) is None:  # a link in its place is replaced, never followed
            with atomic(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for kind in ("video", "image", "keypoints", "events", "report_json", "report_html"):
                    path = self.output(job, kind)
                    if path is not None:
                        archive.write(path, path.name)
        return target

    # -- the workers -------------------------------------------------------------------------

    def run_workers(self, count: int, runner) -> list[threading.Thread]:
        threads = []
        for i in range(count):
            thread = threading.Thread(target=self._work, args=(runner,), name=f"studio-worker-{i}", daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def stop(self, count: int) -> None:
        for _ in range(count):
            self.queue.put(None)

    def _work(self, runner) -> None:
        while True:
            job_id = self.queue.get()
            if job_id is None:
                return
            job = self.jobs.get(job_id)
            cancel = self._cancel.get(job_id, threading.Event())
            self.expire()  # the time limit, checked as the queue moves
            if job is None or job.status != "queued" or cancel.is_set():
                if job is not None and job.status == "cancelled":
                    self._settle_original(job)
                    self.changed(job)
                continue
            job.status = "running"
            self.changed(job)
            # the job's end is published (status) only once its files are as it says: the original dropped
            status, error = "done", None
            try:
                runner(self, job, JobProgress(self, job, cancel))
            except Cancelled:
                status, error = "cancelled", "cancelled by the reviewer"
            except BaseException as e:  # noqa: BLE001 - a job's failure is the job's, never the server's
                status, error = "failed", first_line(e) or type(e).__name__
                log.warning("job %s (%s) failed: %s", job.id, job.name, error)
            finally:
                if job.id not in self.jobs:  # deleted while it ran: every file of it goes now
                    shutil.rmtree(self.folder(job.id), ignore_errors=True)
                else:
                    if status == "failed" and not job.kind:  # not a video or image: nothing to review it against
                        self._drop_original(job, "not kept: not a video or image")
                    self._settle_original(job)
                    if status != "done":
                        self._drop_partials(job)
                    job.status = status
                    if error is not None:
                        job.error = error
                    if status == "done":
                        job.eta = 0.0
                    self.changed(job)


def detector_cache():
    """A function ``config -> detector``: the models load once per mode (per worker) and are shared
    by the jobs; each job gets a shallow copy that reads its own settings (preset, conf)."""
    loaded: dict[str, object] = {}
    lock = threading.Lock()

    def detector_for(config):
        from ..detect import Detector

        key = config.mode.value
        with lock:
            if key not in loaded:
                loaded[key] = Detector(config)
        shared = copy.copy(loaded[key])
        shared.config = config
        return shared

    return detector_for


def probe(path: Path) -> tuple[SourceKind, int, int, float]:
    """(``SourceKind.VIDEO`` or ``IMAGE``, width, height, seconds) of an upload, by opening it (never by its name)."""
    import av
    import cv2

    if path.stat().st_size == 0:
        raise ValueError("not a video or image: the upload is empty")
    try:
        container = av.open(str(path))
    except Exception:  # noqa: BLE001 - not something FFmpeg can open: maybe an image, else refused below
        container = None
    if container is not None:
        with container:
            still = container.format.name.endswith("_pipe") or container.format.name == "image2"
            if container.streams.video and not still:
                seconds = float(container.duration / 1e6) if container.duration else 0.0
                try:
                    for _ in container.decode(container.streams.video[0]):
                        width, height = _upright_size(path)
                        return SourceKind.VIDEO, width, height, seconds
                except av.FFmpegError as e:
                    raise ValueError(f"corrupt video: {first_line(e)}") from None
                raise ValueError("a video with no frame that could be decoded")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a video or image this studio can read")
    return SourceKind.IMAGE, image.shape[1], image.shape[0], 0.0


def _upright_size(path: Path) -> tuple[int, int]:
    """The frame size the pipeline works in (a phone video's rotation applied), which manual boxes use."""
    from ..io.video import VideoReader

    with VideoReader(path, audio=False, live=False) as reader:
        return reader.info.width, reader.info.height


VIDEO_SUFFIX, IMAGE_SUFFIX = ".mp4", ".png"


def run_studio_job(store: JobStore, job: StudioJob, progress: JobProgress, detector_for) -> None:
    """Anonymise one job's upload into its ``out/`` folder (with its manifest, when there is one)."""
    from ..analyze import analyze_file, write_events_csv
    from ..pipeline import Anonymiser
    from ..report import mark_checked
    from ..sidecars import Extras

    src = store.original(job)
    if src is None:
        why = job.original_gone or "not a regular file in the job's folder"
        raise ValueError(f"the original upload is gone ({why}): upload it again to re-render")
    kind, width, height, seconds = probe(src)
    job.kind, job.width, job.height, job.duration = kind, width, height, seconds
    suffix = VIDEO_SUFFIX if kind == SourceKind.VIDEO else IMAGE_SUFFIX
    # the pipeline picks its reader by extension: give the upload the one its probe found
    if kind == SourceKind.VIDEO and src.suffix.lower() != VIDEO_SUFFIX:
        src = src.rename(src.with_suffix(VIDEO_SUFFIX))
    elif kind == SourceKind.IMAGE and src.suffix.lower() not in IMAGE_EXTS:
        src = src.rename(src.with_suffix(IMAGE_SUFFIX))
    s = {**SETTINGS, **job.settings}
    manifest = store.manifest_path(job)
    config = Config(
        mode=s["mode"],
        fill=s["fill"],
        canvas=studio_canvas(s["canvas"]) or None,  # a job.json from before the check is checked again
        skeleton_colour=s["skeleton_colour"],
        preset=s["preset"],
        pose=bool(s["pose"]) or bool(s["keypoints"]),
        draw_pose=bool(s["pose"]),
        masks=str(manifest) if manifest.is_file() and kind == SourceKind.VIDEO else None,
    )
    out = store.folder(job.id) / "out"
    for old in out.iterdir():  # a re-render replaces the last render's files
        if old.is_file():
            old.unlink()
        else:
            shutil.rmtree(old, ignore_errors=True)
    dst = out / f"{Path(job.name).stem}_anonymised{suffix}"
    keypoints = "jsonl" if s["keypoints"] else None
    extras = Extras(
        keypoints=keypoints,
        snapshot_every=s["snapshot_every"] or None,
        report=kind == SourceKind.VIDEO,
    )
    anonymiser = Anonymiser(config, detector=detector_for(config))
    start = time.perf_counter()
    if kind == SourceKind.IMAGE:
        anonymiser.process_image(src, dst, extras=extras)
    else:
        anonymiser.process_video(src, dst, progress=progress, extras=extras)
    job.seconds = round(time.perf_counter() - start, 2)
    outputs = {"video" if kind == SourceKind.VIDEO else "image": dst.name}
    stem = dst.stem
    for name, path in (
        ("keypoints", out / f"{stem}.keypoints.jsonl"),
        ("report_json", out / f"{stem}.report.json"),
        ("report_html", out / f"{stem}.report.html"),
    ):
        if path.is_file():
            outputs[name] = path.name
    if "report_json" in outputs and store.checked(job):  # the reviewer's ticks, on the new render's checks
        mark_checked(out / outputs["report_json"], store.checked(job))
    if "keypoints" in outputs:
        events = out / f"{stem}_events.csv"
        write_events_csv(analyze_file(out / outputs["keypoints"]).events, events)
        outputs["events"] = events.name
    snapshots = out / f"{stem}_snapshots"
    if snapshots.is_dir():
        outputs["snapshots"] = sorted(p.name for p in snapshots.iterdir())
    job.outputs = outputs
    job.renders += 1
    if job.total is None or kind == SourceKind.IMAGE:
        job.total = job.frames = job.frames or 1
