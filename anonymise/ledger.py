"""What was masked in which frame, and why: the record behind the redaction report.

The stream records each output frame once (:meth:`Ledger.record`): the tracks detected in it,
the tracks held through a drop-out, and how many regions each safety net masked (back-fill,
motion guard, second looks, carried boxes, manual masks, a frame that failed closed). Frames
are kept as spans (``[first, last]``, both included), so the ledger of an hour of video stays
small. :mod:`anonymise.report` turns it into the JSON and HTML report; the studio's timeline
reads the same JSON.
"""

from __future__ import annotations

from collections.abc import Iterable

#: the reasons a region is masked besides a detection (and "shown": a detection not masked, things.py), as
#: the report names them
REASONS = ("held", "backfill", "motion", "second_look", "carried", "manual", "failed", "shown")


class Spans:
    """Frame indices as sorted ``[first, last]`` runs, added in increasing order."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.count = 0

    def add(self, t: int) -> None:
        if self.runs and self.runs[-1][1] >= t:
            return
        self.count += 1
        if self.runs and self.runs[-1][1] == t - 1:
            self.runs[-1][1] = t
        else:
            self.runs.append([t, t])

    @property
    def first(self) -> int | None:
        return self.runs[0][0] if self.runs else None

    @property
    def last(self) -> int | None:
        return self.runs[-1][1] if self.runs else None


class Track:
    """One tracked person: the frames they were detected in, and held in; where they were first and
    last seen, and how sure the models were (the reviewer's checks, :mod:`anonymise.checks`)."""

    def __init__(self) -> None:
        self.detected = Spans()
        self.held = Spans()
        self.first_box: list[float] | None = None  # xyxy of the first detection
        self.last_box: list[float] | None = None  # xyxy of the last detection
        self.confidence: list[float] = []  # [lowest, highest] detection confidence

    def saw(self, box, confidence: float | None) -> None:
        """A detection of this track at ``box`` (xyxy), with ``confidence`` where known."""
        self.last_box = [round(float(v), 1) for v in box]
        if self.first_box is None:
            self.first_box = self.last_box
        if confidence is not None:
            c = float(confidence)
            self.confidence = [min(self.confidence[0], c), max(self.confidence[1], c)] if self.confidence else [c, c]

    def as_dict(self, track_id: int) -> dict:
        firsts = [s.first for s in (self.detected, self.held) if s.first is not None]
        lasts = [s.last for s in (self.detected, self.held) if s.last is not None]
        return {
            "id": track_id,
            "first": min(firsts),
            "last": max(lasts),
            "detected": self.detected.runs,
            "held": self.held.runs,
            "frames_detected": self.detected.count,
            "frames_held": self.held.count,
            "first_box": self.first_box,
            "last_box": self.last_box,
            "confidence": [round(c, 3) for c in self.confidence],
        }


class Ledger:
    """Per video: every output frame's masking, by track and by reason."""

    def __init__(self) -> None:
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the frames
        self.tracks: dict[int, Track] = {}
        #: frames where each reason masked something (see REASONS), and where any detection did
        self.reasons = {reason: Spans() for reason in ("detected", *REASONS)}
        #: regions masked for each reason, summed over the frames
        self.regions = dict.fromkeys(("detected", *REASONS), 0)

    def record(
        self,
        t: int,
        tracks: Iterable[int] = (),
        held_tracks: Iterable[int] = (),
        people: int = 0,
        *,
        boxes=None,
        confidence=None,
        size: tuple[int, int] | None = None,
        **reasons: int,
    ) -> None:
        """Frame ``t``: the track ids detected (``tracks``, with their ``boxes`` and ``confidence`` where
        given) and held in it, the people detected (tracked or not), and the number of regions each other
        reason masked (``motion=2``, ``failed=1``); ``size``: the frame's (width, height)."""
        self.frames = max(self.frames, t + 1)
        if size is not None:
            self.size = (int(size[0]), int(size[1]))
        for i, track_id in enumerate(tracks):
            if track_id >= 0:
                track = self.tracks.setdefault(int(track_id), Track())
                track.detected.add(t)
                if boxes is not None:
                    track.saw(boxes[i], confidence[i] if confidence is not None else None)
        for track_id in held_tracks:
            if track_id >= 0:
                self.tracks.setdefault(int(track_id), Track()).held.add(t)
        if people:
            self.reasons["detected"].add(t)
            self.regions["detected"] += int(people)
        for reason, count in reasons.items():
            if reason not in self.regions:
                raise ValueError(f"unknown reason {reason!r}")
            if count:
                self.reasons[reason].add(t)
                self.regions[reason] += int(count)

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "size": list(self.size) if self.size is not None else None,
            "tracks": [track.as_dict(i) for i, track in sorted(self.tracks.items())],
            "frames_by_reason": {
                reason: {"frames": spans.count, "regions": self.regions[reason], "spans": spans.runs}
                for reason, spans in self.reasons.items()
            },
        }
