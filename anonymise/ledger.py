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

#: the reasons a region is masked besides a detection, as the report names them
REASONS = ("held", "backfill", "motion", "second_look", "carried", "manual", "failed")


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
    """One tracked person: the frames they were detected in, and held in."""

    def __init__(self) -> None:
        self.detected = Spans()
        self.held = Spans()

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
        }


class Ledger:
    """Per video: every output frame's masking, by track and by reason."""

    def __init__(self) -> None:
        self.frames = 0
        self.tracks: dict[int, Track] = {}
        #: frames where each reason masked something (see REASONS), and where any detection did
        self.reasons = {reason: Spans() for reason in ("detected", *REASONS)}
        #: regions masked for each reason, summed over the frames
        self.regions = dict.fromkeys(("detected", *REASONS), 0)

    def record(
        self, t: int, tracks: Iterable[int] = (), held_tracks: Iterable[int] = (), people: int = 0, **reasons: int
    ) -> None:
        """Frame ``t``: the track ids detected (``tracks``) and held in it, the people detected (tracked or
        not), and the number of regions each other reason masked (``motion=2``, ``failed=1``)."""
        self.frames = max(self.frames, t + 1)
        for track_id in tracks:
            if track_id >= 0:
                self.tracks.setdefault(int(track_id), Track()).detected.add(t)
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
            "tracks": [track.as_dict(i) for i, track in sorted(self.tracks.items())],
            "frames_by_reason": {
                reason: {"frames": spans.count, "regions": self.regions[reason], "spans": spans.runs}
                for reason, spans in self.reasons.items()
            },
        }
