"""Posture, falls and time measures per tracked person, from a keypoints file (see ``keypoints.py``).

Everything works on the records of ``read_keypoints`` (image coordinates: y grows downwards):

- **posture** per frame from the trunk (mid-hip -> mid-shoulder) and the legs: see :func:`body_pose`;
- **falls**: the hips drop fast by a share of the torso length and the torso ends horizontal
  (:func:`find_falls`);
- **posture changes** that last at least ``min_posture_s``, and time spent in each posture.

The rules and thresholds are the fields of :class:`AnalyzeConfig`, described in ``docs/keypoints.md``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from .errors import ConfigError, OutputError
from .io.files import atomic
from .io.keypoints import read_keypoints

POSTURES = ("standing", "sitting", "lying", "unknown")
EVENT_COLUMNS = ("track_id", "kind", "start_time", "end_time", "frame", "details")


@dataclass(frozen=True)
class AnalyzeConfig:
    """Thresholds of the posture and fall rules (angles in degrees from vertical, times in seconds)."""

    #: keypoints below this confidence are treated as missing
    min_keypoint_conf: float = 0.3
    #: trunk inclination above which a person is ``lying`` (0 = upright, 90 = horizontal)
    lying_angle: float = 60.0
    #: thigh (hip -> knee) inclination above which an upright person is ``sitting`` (0 = knee below hip)
    sitting_thigh_angle: float = 55.0
    #: hip-to-ankle height / torso length below which an upright person is ``sitting`` (standing: ~1.5-1.8)
    sitting_leg_ratio: float = 1.0
    #: a fall needs the mid-hip to drop by more than this many torso lengths ...
    fall_drop: float = 0.5
    #: ... within this many seconds ...
    fall_window_s: float = 1.0
    #: ... and the person to be ``lying`` at most this long after the drop
    fall_confirm_s: float = 1.0
    #: no second fall of the same person within this long after the end of one
    fall_refractory_s: float = 2.0
    #: a posture change is reported once the new posture has held this long (filters flicker)
    min_posture_s: float = 0.5
    #: a gap between two sightings longer than this counts only the typical frame duration
    max_gap_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_keypoint_conf <= 1.0:
            raise ConfigError(f"min_keypoint_conf must be in [0, 1], got {self.min_keypoint_conf!r}")
        for name in ("lying_angle", "sitting_thigh_angle"):
            if not 0.0 < getattr(self, name) < 90.0:
                raise ConfigError(f"{name} must be in (0, 90) degrees, got {getattr(self, name)!r}")
        for name in ("sitting_leg_ratio", "fall_drop", "fall_window_s", "fall_confirm_s", "max_gap_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("fall_refractory_s", "min_posture_s"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class BodyPose:
    """What one record says about a person's body (``None`` where the keypoints are missing)."""

    posture: str
    #: trunk inclination from vertical in degrees (0 upright, 90 horizontal, 180 head down)
    trunk_angle: float | None = None
    #: mid-hip y in pixels
    hip_y: float | None = None
    #: mid-hip to mid-shoulder distance in pixels
    torso: float | None = None


@dataclass(frozen=True)
class Event:
    """Something that happened to one person: a ``fall`` or a ``posture`` change.

    ``frame`` is the frame at ``start_time``. Falls: ``start_time`` is the last moment the hips
    were still up, ``end_time`` when they had dropped and the torso was horizontal. Posture
    changes: ``start_time`` is the first frame in the new posture, ``end_time`` when the next
    change starts or the track ends.
    """

    track_id: int
    kind: str
    start_time: float
    end_time: float
    frame: int
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrackSummary:
    """Measures of one tracked person; times in seconds, angles in degrees."""

    track_id: int
    frames: int
    first_frame: int
    last_frame: int
    first_time: float
    last_time: float
    #: seen time: the sum of the frame durations (equals the sum of ``posture_time``)
    duration: float
    #: seconds in each of ``POSTURES``
    posture_time: dict[str, float]
    #: the last known posture (``unknown`` if none was)
    final_posture: str
    mean_trunk_angle: float | None
    max_trunk_angle: float | None
    falls: int


@dataclass(frozen=True)
class Analysis:
    tracks: list[TrackSummary]
    events: list[Event]
    #: records without a ``track_id`` (they cannot be followed over time)
    skipped: int = 0


def _point(keypoints: dict, names: tuple[str, ...], min_conf: float) -> np.ndarray | None:
    """Mean (x, y) of the named keypoints that are confident enough, or ``None``."""
    points = [(keypoints[n]["x"], keypoints[n]["y"]) for n in names if keypoints[n]["conf"] >= min_conf]
    return np.mean(points, axis=0) if points else None


def _inclination(dx: float, dy: float) -> float:
    """Angle in degrees between (dx, dy) and straight down (image y grows downwards)."""
    return math.degrees(math.atan2(abs(dx), dy))


def body_pose(keypoints: dict, config: AnalyzeConfig = AnalyzeConfig()) -> BodyPose:
    """Posture of one person from their keypoints (the ``keypoints`` object of a record).

    ``unknown`` without a shoulder and a hip, or without any knee or ankle when the trunk is
    upright; ``lying`` when the trunk is inclined more than ``lying_angle``; ``sitting`` when a
    thigh is more horizontal than ``sitting_thigh_angle`` or the ankles are less than
    ``sitting_leg_ratio`` torso lengths below the hips; ``standing`` otherwise.
    """
    c = config.min_keypoint_conf
    shoulder = _point(keypoints, ("left_shoulder", "right_shoulder"), c)
    hip = _point(keypoints, ("left_hip", "right_hip"), c)
    if shoulder is None or hip is None:
        return BodyPose("unknown", hip_y=None if hip is None else float(hip[1]))
    dx, dy = shoulder - hip
    torso = float(math.hypot(dx, dy))
    if torso < 1.0:
        return BodyPose("unknown", hip_y=float(hip[1]))
    angle = 180.0 - _inclination(dx, dy)  # the trunk points up: 0 upright
    result = {"trunk_angle": angle, "hip_y": float(hip[1]), "torso": torso}
    if angle > config.lying_angle:
        return BodyPose("lying", **result)
    thighs = [
        _inclination(keypoints[knee]["x"] - keypoints[hip_]["x"], keypoints[knee]["y"] - keypoints[hip_]["y"])
        for hip_, knee in (("left_hip", "left_knee"), ("right_hip", "right_knee"))
        if keypoints[hip_]["conf"] >= c and keypoints[knee]["conf"] >= c
    ]
    if thighs and np.mean(thighs) > config.sitting_thigh_angle:
        return BodyPose("sitting", **result)
    ankle = _point(keypoints, ("left_ankle", "right_ankle"), c)
    if ankle is not None:
        return BodyPose("sitting" if (ankle[1] - hip[1]) / torso < config.sitting_leg_ratio else "standing", **result)
    return BodyPose("standing" if thighs else "unknown", **result)


def frame_durations(times: np.ndarray, max_gap_s: float) -> np.ndarray:
    """How long each frame stands for: the time to the next, the median step for the last one and
    for gaps longer than ``max_gap_s``."""
    steps = np.diff(times)
    typical = float(np.median(steps)) if len(steps) else 0.0
    steps = np.where(steps > max_gap_s, typical, steps)
    return np.append(steps, typical)


def find_falls(times: np.ndarray, poses: list[BodyPose], config: AnalyzeConfig) -> list[tuple[int, int, float]]:
    """Falls as (start, end, drop): positions into ``times``, the hip drop at the end in torso lengths.

    At frame ``j``, the reference is the highest mid-hip among the upright (not ``lying``) frames
    of the last ``fall_window_s``; a drop of more than ``fall_drop`` of that frame's torso length
    is a fall when the person is ``lying`` at some frame from the reference to ``fall_confirm_s``
    after ``j``. The fall starts at the last frame the hips were still near the reference and ends
    when both the drop and the lying are true. After a fall, none for ``fall_refractory_s``.
    """
    falls: list[tuple[int, int, float]] = []
    lying = np.array([p.posture == "lying" for p in poses])
    resume = -math.inf  # no fall may start before this time
    first = 0  # the first frame inside the window
    for j, pj in enumerate(poses):
        while first < j and (times[j] - times[first] > config.fall_window_s or times[first] < resume):
            first += 1
        if pj.hip_y is None or first >= j:
            continue
        window = [i for i in range(first, j) if poses[i].torso is not None and poses[i].posture != "lying"]
        if not window:
            continue
        ref = min(window, key=lambda i: poses[i].hip_y)
        torso = poses[ref].torso
        drop = (pj.hip_y - poses[ref].hip_y) / torso
        if drop <= config.fall_drop:
            continue
        confirm = next(
            (k for k in range(ref + 1, len(poses)) if times[k] > times[j] + config.fall_confirm_s or lying[k]), None
        )
        if confirm is None or not lying[confirm]:
            continue
        start = max(i for i in window if poses[i].hip_y <= poses[ref].hip_y + 0.1 * torso)
        end = max(j, confirm)
        if poses[end].hip_y is not None:
            drop = max(drop, (poses[end].hip_y - poses[ref].hip_y) / torso)
        falls.append((start, end, drop))
        resume = times[end] + config.fall_refractory_s
    return falls


def posture_changes(times: np.ndarray, postures: list[str], min_s: float) -> list[tuple[int, str, str]]:
    """(position, from, to) of each change to a known posture that holds at least ``min_s``.

    ``unknown`` frames are ignored; a change is placed at the first frame of the new posture.
    """
    changes: list[tuple[int, str, str]] = []
    stable: str | None = None
    run: str | None = None
    run_start = 0
    for i, p in enumerate(postures):
        if p == "unknown":
            continue
        if p != run:
            run, run_start = p, i
        if run != stable and times[i] - times[run_start] >= min_s:
            if stable is not None:
                changes.append((run_start, stable, run))
            stable = run
    return changes


def summarise_track(
    track_id: int, samples: list[tuple[float, int, BodyPose]], config: AnalyzeConfig = AnalyzeConfig()
) -> tuple[TrackSummary, list[Event]]:
    """Summary and events of one person from their (time, frame, pose) samples, in any order."""
    samples = sorted(samples, key=lambda sample: sample[:2])
    times = np.array([sample[0] for sample in samples], np.float64)
    frames = [sample[1] for sample in samples]
    poses = [sample[2] for sample in samples]
    postures = [p.posture for p in poses]
    durations = frame_durations(times, config.max_gap_s)
    angles = [p.trunk_angle for p in poses if p.trunk_angle is not None]
    events: list[Event] = []
    for start, end, drop in find_falls(times, poses, config):
        details = {"drop": round(drop, 2), "trunk_angle": round(poses[end].trunk_angle or 0.0, 1)}
        events.append(Event(track_id, "fall", float(times[start]), float(times[end]), frames[start], details))
    changes = posture_changes(times, postures, config.min_posture_s)
    for n, (i, before, after) in enumerate(changes):
        until = float(times[changes[n + 1][0]]) if n + 1 < len(changes) else float(times[-1])
        events.append(Event(track_id, "posture", float(times[i]), until, frames[i], {"from": before, "to": after}))
    known = [p for p in postures if p != "unknown"]
    summary = TrackSummary(
        track_id=track_id,
        frames=len(samples),
        first_frame=min(frames),
        last_frame=max(frames),
        first_time=float(times[0]),
        last_time=float(times[-1]),
        duration=float(durations.sum()),
        posture_time={p: float(durations[[q == p for q in postures]].sum()) for p in POSTURES},
        final_posture=known[-1] if known else "unknown",
        mean_trunk_angle=float(np.mean(angles)) if angles else None,
        max_trunk_angle=float(np.max(angles)) if angles else None,
        falls=sum(e.kind == "fall" for e in events),
    )
    return summary, events


def analyze(records: Iterable[dict], config: AnalyzeConfig = AnalyzeConfig()) -> Analysis:
    """Analyse each tracked person in ``records`` (as :func:`read_keypoints` yields them).

    Records are reduced to their pose as they stream in (a long file is never held whole);
    records without a ``track_id`` are counted in ``skipped``, not analysed.
    """
    tracks: dict[int, list[tuple[float, int, BodyPose]]] = {}
    skipped = 0
    for record in records:
        if record["track_id"] is None:
            skipped += 1
            continue
        sample = (float(record["time"]), int(record["frame"]), body_pose(record["keypoints"], config))
        tracks.setdefault(record["track_id"], []).append(sample)
    summaries, events = [], []
    for track_id in sorted(tracks):
        summary, track_events = summarise_track(track_id, tracks[track_id], config)
        summaries.append(summary)
        events.extend(track_events)
    events.sort(key=lambda e: (e.start_time, e.track_id, e.kind))
    return Analysis(summaries, events, skipped)


def analyze_file(path: str | os.PathLike, config: AnalyzeConfig = AnalyzeConfig()) -> Analysis:
    """:func:`analyze` on a keypoints file; :class:`SourceError` names the file and the first bad line."""
    return analyze(read_keypoints(path), config)


def _details(details: dict) -> str:
    return ";".join(f"{k}={v}" for k, v in details.items())


def write_events_csv(events: Iterable[Event], path: str | os.PathLike) -> None:
    """Write events as CSV (``EVENT_COLUMNS``; ``details`` as ``key=value;...``), atomically."""
    path = Path(path)
    try:
        with atomic(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(EVENT_COLUMNS)
            for e in events:
                writer.writerow(
                    [e.track_id, e.kind, round(e.start_time, 3), round(e.end_time, 3), e.frame, _details(e.details)]
                )
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def skipped_note(analysis: Analysis) -> str | None:
    """Why some records were not analysed, in a sentence (``None`` when none were skipped)."""
    if not analysis.skipped:
        return None
    return (
        f"{analysis.skipped} records without a track id were not analysed: people found for a frame or two "
        "(by a second look, or below the tracker's threshold) have nothing to follow over time (docs/keypoints.md)"
    )


def summary_table(analysis: Analysis) -> Table:
    """A rich table of the tracks (built, never printed), readable at 80 columns."""
    from rich import box

    table = Table(title="People (times in seconds)", box=box.SIMPLE_HEAD, pad_edge=False)
    headers = {"standing": "stand", "sitting": "sit", "lying": "lie", "unknown": "unknown"}
    for name in ("track", "seen", "for", *(headers[p] for p in POSTURES), "tilt mean/max", "falls"):
        table.add_column(name, justify="left" if name == "track" else "right", no_wrap=True)

    def angle(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}°"

    for t in analysis.tracks:
        table.add_row(
            str(t.track_id),
            f"{t.first_time:.1f}-{t.last_time:.1f}",
            f"{t.duration:.1f}",
            *(f"{t.posture_time[p]:.1f}" for p in POSTURES),
            f"{angle(t.mean_trunk_angle)}/{angle(t.max_trunk_angle)}",
            str(t.falls),
        )
    return table
