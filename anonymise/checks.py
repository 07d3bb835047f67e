"""Moments a reviewer should look at, ranked by risk: what the redaction report and the studio list.

A row per reason lights up wherever the safety nets worked (a held track or a back-fill is in most
frames of a busy clip), so it tells a reviewer nothing. :func:`ranked` turns the ledger
(:mod:`anonymise.ledger`) into a short list of moments, each a frame range with the reason to look,
ordered by the risk that a person shows there (a leak), highest first:

======================  ====  =====================================================================
kind                    risk  why a person may show
======================  ====  =====================================================================
``track_ends_inside``   0.9   a track ends away from the frame's edges before the clip does: the
                              person left unseen, or the detector lost them where they stand (the
                              moment: from its end over the 2 s after)
``held_long``           0.6+  a track held without a detection for over a second: the held box
                              follows a prediction, which drifts (more the longer it lasts)
``low_confidence_edge`` 0.55  a track at the frame's edge found only with low confidence: part
                              of a person coming in or going out, which the models half see
``motion``              0.5+  the motion guard masked something moving that no detection explained
``second_look``         0.5   a second look found a person the first pass missed there: the
                              frames around may miss them too
``shown``               0.5   a still thing the models called a person, with no body part seen, is
                              shown as it is (:mod:`anonymise.things`): a person after all?
``failed``              0.3   frames that failed closed: fully masked, so nothing leaks, but the
                              scene is lost there
======================  ====  =====================================================================

Runs of a reason less than half a second apart are one moment; longer ones rank higher (up to
+0.3 at 5 s). Each moment has a stable ``id`` (kind, first frame, track) that a reviewer's "checked" mark
keeps across a re-render where the moment is unchanged. At most :data:`LIMIT` are listed; the
report says how many more there were.
"""

from __future__ import annotations

#: the most moments listed (the report counts the rest)
LIMIT = 20
#: a box within this share of the frame's size from an edge is at the edge
EDGE = 0.04
#: a track is "found only with low confidence" below this highest confidence
LOW_CONFIDENCE = 0.4
#: seconds: a held stretch longer than this is a moment; runs closer than half of it merge
HELD_S = 1.0
GAP_S = 0.5

BASE = {
    "track_ends_inside": 0.9,
    "held_long": 0.6,
    "low_confidence_edge": 0.55,
    "motion": 0.5,
    "second_look": 0.5,
    "shown": 0.5,
    "failed": 0.3,
}


def ranked(report: dict, limit: int = LIMIT) -> tuple[list[dict], int]:
    """(the moments to check, highest risk first, at most ``limit``; how many more there were), from a
    report's ledger fields (``frames``, ``size``, ``fps``, ``tracks``, ``frames_by_reason``)."""
    frames = int(report.get("frames") or 0)
    fps = float(report.get("fps") or 25.0)
    size = report.get("size")
    moments: list[dict] = []

    def add(kind: str, first: int, last: int, why: str, track: int | None = None, longer: bool = True) -> None:
        seconds = (last - first + 1) / fps
        risk = min(1.0, BASE[kind] + (0.3 * min(1.0, seconds / 5.0) if longer else 0.0))
        moment_id = f"{kind}:{first}" + (f":{track}" if track is not None else "")
        moments.append(
            {"id": moment_id, "kind": kind, "first": first, "last": last, "risk": round(risk, 3), "why": why}
            | ({"track": track} if track is not None else {})
        )

    for track in report.get("tracks", []):
        tid, last = track["id"], track["last"]
        box = track.get("last_box")
        if box and size and last < frames - 1 and not _at_edge(box, size):
            after = min(frames - 1, last + max(1, round(2 * fps)))  # where they would still be
            add(
                "track_ends_inside",
                last,
                after,
                f"person {tid}'s track ends at frame {last} away from the frame's edges: did they leave, "
                "or did the detector lose them where they stand?",
                tid,
                longer=False,
            )
        for first, end in _merged(track.get("held") or [], fps):
            if (end - first + 1) / fps > HELD_S:
                add(
                    "held_long",
                    first,
                    end,
                    f"person {tid} held without a detection for {(end - first + 1) / fps:.1f} s: "
                    "is the box still on them?",
                    tid,
                )
        confidence = track.get("confidence") or []
        boxes = [b for b in (track.get("first_box"), box) if b]
        if confidence and size and confidence[1] < LOW_CONFIDENCE and any(_at_edge(b, size) for b in boxes):
            add(
                "low_confidence_edge",
                track["first"],
                last,
                f"person {tid} at the frame's edge, found only with low confidence (at most {confidence[1]:.2f}): "
                "is all of them masked?",
                tid,
            )
    reasons = report.get("frames_by_reason", {})
    texts = {
        "motion": "the motion guard masked something moving that no detection explained: a person missed?",
        "second_look": "a second look found a person the first pass missed: check the frames around it",
        "failed": "frames failed closed (written fully masked): nothing leaks, the scene is lost",
        "shown": "a still thing the models called a person, with no body part seen, is shown as it is: a person?",
    }
    for reason, why in texts.items():
        for first, last in _merged(reasons.get(reason, {}).get("spans", []), fps):
            add(reason, first, last, why)
    moments.sort(key=lambda m: (-m["risk"], m["first"]))
    return moments[:limit], max(0, len(moments) - limit)


def _merged(runs: list, fps: float) -> list[tuple[int, int]]:
    """``[first, last]`` runs with those less than GAP_S apart joined."""
    out: list[list[int]] = []
    gap = max(1, round(GAP_S * fps))
    for first, last in runs:
        if out and first - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return [(a, b) for a, b in out]


def _at_edge(box, size) -> bool:
    width, height = size
    x1, y1, x2, y2 = box
    mx, my = EDGE * width, EDGE * height
    return x1 <= mx or y1 <= my or x2 >= width - mx or y2 >= height - my
