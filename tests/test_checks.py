"""The reviewer's checks (anonymise.checks): moments ranked by the risk that a person shows, from
the ledger, in place of per-reason rows that light up in every frame of a busy clip."""

from __future__ import annotations

import json

from conftest import ColourDetector, scene, synthetic_frames, write_video

from anonymise import Anonymiser, Config
from anonymise.checks import LIMIT, ranked
from anonymise.sidecars import Extras


def ledger(**fields) -> dict:
    base = {"frames": 100, "fps": 10.0, "size": [640, 480], "tracks": [], "frames_by_reason": {}}
    return base | fields


def track(tid, first, last, last_box, held=(), confidence=(0.9, 0.9), first_box=None):
    return {
        "id": tid,
        "first": first,
        "last": last,
        "detected": [[first, last - sum(b - a + 1 for a, b in held)]],
        "held": [list(h) for h in held],
        "first_box": first_box or last_box,
        "last_box": last_box,
        "confidence": list(confidence),
    }


def test_a_track_that_ends_inside_the_frame_comes_first():
    inside = track(1, 0, 40, [300, 200, 340, 300])
    at_edge = track(2, 0, 60, [600, 200, 640, 300])  # walked out at the right edge
    report = ledger(
        tracks=[inside, at_edge], frames_by_reason={"motion": {"spans": [[70, 72]]}, "failed": {"spans": [[90, 90]]}}
    )
    moments, more = ranked(report)
    assert [m["kind"] for m in moments] == ["track_ends_inside", "motion", "failed"] and more == 0
    first = moments[0]
    assert first["track"] == 1 and first["first"] == 40 and first["last"] == 60, "from its end over the 2 s after"
    assert first["risk"] == 0.9
    assert first["id"] == "track_ends_inside:40:1" and "person 1" in first["why"]
    assert all(m["risk"] >= n["risk"] for m, n in zip(moments, moments[1:]))


def test_held_runs_close_together_are_one_moment_and_longer_ranks_higher():
    # held in 10 runs of 4 frames, 1 frame apart: one moment, not ten rows
    held = [(i, i + 3) for i in range(10, 60, 5)]
    report = ledger(tracks=[track(1, 0, 99, [600, 0, 640, 100], held=held)])
    (moment,), _ = ranked(report)
    assert moment["kind"] == "held_long" and (moment["first"], moment["last"]) == (10, 58)
    short = ranked(ledger(tracks=[track(1, 0, 99, [600, 0, 640, 100], held=[(10, 25)])]))[0][0]
    assert moment["risk"] > short["risk"]
    assert ranked(ledger(tracks=[track(1, 0, 99, [600, 0, 640, 100], held=[(10, 15)])]))[0] == [], "under 1 s"


def test_a_low_confidence_track_at_the_edge_is_a_moment():
    faint = track(3, 20, 99, [0, 100, 30, 200], confidence=(0.2, 0.31))
    (moment,), _ = ranked(ledger(tracks=[faint]))
    assert moment["kind"] == "low_confidence_edge" and "0.31" in moment["why"]
    sure = track(3, 20, 99, [0, 100, 30, 200], confidence=(0.5, 0.9))
    assert ranked(ledger(tracks=[sure]))[0] == []


def test_a_still_thing_shown_as_it_is_is_a_moment_to_check():
    (moment,), _ = ranked(ledger(frames_by_reason={"shown": {"spans": [[0, 40], [44, 99]]}}))
    assert moment["kind"] == "shown" and (moment["first"], moment["last"]) == (0, 99)
    assert "shown as it is" in moment["why"] and moment["risk"] > 0.5


def test_at_most_the_limit_is_listed_and_the_rest_counted():
    spans = [[i * 20, i * 20] for i in range(LIMIT + 7)]
    moments, more = ranked(ledger(frames=2000, frames_by_reason={"second_look": {"spans": spans}}))
    assert len(moments) == LIMIT and more == 7


def test_a_walker_who_vanishes_mid_frame_is_the_first_check_of_the_report(tmp_path):
    """Through the pipeline: the person is there for 12 frames, then gone in the middle of the frame
    (the detector never sees them again); the report's first check points at where their track ends."""
    frames = synthetic_frames(40)
    empty = scene()
    frames[12:] = [empty.copy() for _ in frames[12:]]
    src = write_video(tmp_path / "vanish.mp4", frames, audio=None)
    Anonymiser(Config(pose=False), detector=ColourDetector()).process_video(
        src, tmp_path / "out.mp4", extras=Extras(report=True)
    )
    report = json.loads((tmp_path / "out.report.json").read_text())
    first = report["checks"][0]
    assert first["kind"] == "track_ends_inside" and first["checked"] is False, report["checks"]
    assert first["first"] == report["tracks"][0]["last"] >= 11 and report["checks_more"] == 0
    assert report["size"] == [160, 120] and report["tracks"][0]["last_box"] is not None
    assert "Checks, by risk" in (tmp_path / "out.report.html").read_text()
