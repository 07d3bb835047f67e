"""Posture, falls and measures on synthetic skeletons (image coordinates: y grows downwards)."""

import csv
import math
import os

import numpy as np
import pytest

from anonymise import ConfigError, Detections, SourceError
from anonymise.analyze import (
    AnalyzeConfig,
    analyze,
    analyze_file,
    body_pose,
    skipped_note,
    summary_table,
    write_events_csv,
)
from anonymise.io.keypoints import KeypointWriter, person_records
from anonymise.pose import KEYPOINT_NAMES

W, H, FPS = 1280, 720, 30.0
TORSO, THIGH, SHIN = 100.0, 90.0, 90.0
STANDING = {"trunk": 0.0, "thigh": 0.0, "shin": 0.0}
SITTING = {"trunk": 5.0, "thigh": 85.0, "shin": 0.0}  # side view on a chair: thighs horizontal, shins vertical
LYING = {"trunk": 90.0, "thigh": 90.0, "shin": 90.0}


def skeleton(hip_x, hip_y, trunk, thigh, shin, hidden=()):
    """(17, 3) keypoints: ``trunk`` degrees from upright (tilting left), ``thigh``/``shin`` from straight down."""
    a, t, s = (math.radians(v) for v in (trunk, thigh, shin))
    up, side = np.array([-math.sin(a), -math.cos(a)]), np.array([math.cos(a), -math.sin(a)])
    hip = np.array([hip_x, hip_y])
    shoulder = hip + TORSO * up
    knee = hip + THIGH * np.array([math.sin(t), math.cos(t)])
    ankle = knee + SHIN * np.array([math.sin(s), math.cos(s)])
    head = shoulder + 0.4 * TORSO * up
    points = {
        "nose": head,
        "left_eye": head - 5 * side,
        "right_eye": head + 5 * side,
        "left_ear": head - 10 * side,
        "right_ear": head + 10 * side,
        "left_shoulder": shoulder - 15 * side,
        "right_shoulder": shoulder + 15 * side,
        "left_elbow": shoulder - 20 * side - 0.4 * TORSO * up,
        "right_elbow": shoulder + 20 * side - 0.4 * TORSO * up,
        "left_wrist": shoulder - 20 * side - 0.8 * TORSO * up,
        "right_wrist": shoulder + 20 * side - 0.8 * TORSO * up,
        "left_hip": hip - 10 * side,
        "right_hip": hip + 10 * side,
        "left_knee": knee - 10 * side,
        "right_knee": knee + 10 * side,
        "left_ankle": ankle - 10 * side,
        "right_ankle": ankle + 10 * side,
    }
    return np.array([[*points[n], 0.0 if n in hidden else 0.9] for n in KEYPOINT_NAMES], np.float32)


def lerp(a, b, u):
    return {k: a[k] + (b[k] - a[k]) * u for k in a}


def track(phases, track_id=1, start_frame=0):
    """Records of one person through ``phases``: (seconds, hip_y from, hip_y to, pose from, pose to)."""
    records, frame = [], start_frame
    for seconds, y0, y1, p0, p1 in phases:
        n = round(seconds * FPS)
        for i in range(n):
            u = i / n
            kps = skeleton(400.0, y0 + (y1 - y0) * u, **lerp(p0, p1, u))
            box = [kps[:, 0].min(), kps[:, 1].min(), kps[:, 0].max(), kps[:, 1].max()]
            people = Detections([box], [0.9], [0], tracker_id=[track_id], keypoints=kps[None])
            records += person_records(frame, frame / FPS, people, W, H)
            frame += 1
    return records


FALL = [(1.0, 400, 400, STANDING, STANDING), (0.4, 400, 560, STANDING, LYING), (2.0, 560, 560, LYING, LYING)]


def test_body_pose_rules():
    assert body_pose(person(STANDING)).posture == "standing"
    assert body_pose(person(SITTING)).posture == "sitting"
    assert body_pose(person(LYING)).posture == "lying"
    frontal = person(STANDING)  # sitting facing the camera: thighs foreshortened, feet just below the hips
    for name, below in (("knee", 20), ("ankle", 60)):
        for side in ("left", "right"):
            frontal[f"{side}_{name}"]["y"] = 400 + below
    assert body_pose(frontal).posture == "sitting"
    assert body_pose(person(STANDING, hidden=("left_shoulder", "right_shoulder"))).posture == "unknown"
    legless = ("left_knee", "right_knee", "left_ankle", "right_ankle")
    assert body_pose(person(STANDING, hidden=legless)).posture == "unknown", (
        "no legs: cannot tell standing from sitting"
    )
    upright = body_pose(person(STANDING))
    assert upright.trunk_angle == pytest.approx(0.0, abs=1e-3) and upright.torso == pytest.approx(TORSO, abs=0.05)
    assert body_pose(person({"trunk": 120.0, "thigh": 0.0, "shin": 0.0})).trunk_angle == pytest.approx(120.0, abs=0.05)


def person(p, hidden=()):
    records = person_records(
        0, 0.0, Detections([[0, 0, 1, 1]], [0.9], [0], keypoints=skeleton(400, 400, **p, hidden=hidden)[None]), W, H
    )
    return next(records)["keypoints"]


def test_a_standing_person_stands_and_never_falls():
    result = analyze(track([(3.0, 400, 400, STANDING, STANDING)]))
    (t,) = result.tracks
    assert t.falls == 0 and result.events == []
    assert t.posture_time["standing"] == pytest.approx(3.0) and t.final_posture == "standing"
    assert t.first_time == 0.0 and t.last_time == pytest.approx(3.0 - 1 / FPS)
    assert t.mean_trunk_angle == pytest.approx(0.0, abs=1e-3) and t.max_trunk_angle == pytest.approx(0.0, abs=1e-3)


def test_a_fall_is_one_event_at_the_right_time_and_ends_lying():
    result = analyze(track(FALL))
    (t,) = result.tracks
    falls = [e for e in result.events if e.kind == "fall"]
    assert len(falls) == 1 and t.falls == 1
    fall = falls[0]
    assert fall.track_id == 1 and fall.start_time == pytest.approx(1.0, abs=1.5 / FPS)
    assert fall.frame == round(fall.start_time * FPS)
    assert 1.0 < fall.end_time <= 1.45
    assert fall.details["drop"] > 0.5 and fall.details["trunk_angle"] > 60
    assert t.final_posture == "lying" and t.posture_time["lying"] > 2.0
    assert t.max_trunk_angle == pytest.approx(90.0, abs=0.01)
    changes = [(e.details["from"], e.details["to"]) for e in result.events if e.kind == "posture"]
    assert changes == [("standing", "lying")], "the brief sitting-like frames mid-fall are not a posture"


def test_two_falls_with_getting_up_between_are_two_events():
    up = (1.0, 560, 400, LYING, STANDING)
    result = analyze(track([*FALL, up, *FALL]))
    assert [round(e.start_time, 1) for e in result.events if e.kind == "fall"] == [1.0, 5.4]


def test_sitting_and_sitting_down_are_not_falls():
    result = analyze(track([(3.0, 400, 400, SITTING, SITTING)]))
    assert result.tracks[0].posture_time["sitting"] == pytest.approx(3.0) and result.events == []
    sit_down = analyze(
        track(
            [(1.0, 400, 400, STANDING, STANDING), (0.6, 400, 470, STANDING, SITTING), (2.0, 470, 470, SITTING, SITTING)]
        )
    )
    assert sit_down.tracks[0].falls == 0 and sit_down.tracks[0].final_posture == "sitting"
    assert [(e.kind, e.details) for e in sit_down.events] == [("posture", {"from": "standing", "to": "sitting"})]


def test_posture_times_sum_to_the_duration_and_tracks_are_separate():
    records = track(FALL, track_id=1) + track([(2.0, 400, 400, SITTING, SITTING)], track_id=2, start_frame=15)
    untracked = track([(0.5, 400, 400, STANDING, STANDING)], track_id=-1)
    result = analyze(records + untracked)
    assert result.skipped == len(untracked) == 15
    assert [t.track_id for t in result.tracks] == [1, 2]
    for t in result.tracks:
        assert sum(t.posture_time.values()) == pytest.approx(t.duration)
        assert t.duration == pytest.approx(t.last_time - t.first_time + 1 / FPS)
    assert result.tracks[1].first_frame == 15 and result.tracks[1].frames == 60
    table = summary_table(result)
    assert table.row_count == 2
    assert skipped_note(result).startswith("15 records without a track id were not analysed: people found for a frame")
    assert skipped_note(analyze(records)) is None
    from rich.console import Console

    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(table)
    rendered = console.export_text()
    assert max(len(line) for line in rendered.splitlines()) <= 80 and "\u2026" not in rendered, rendered


def test_a_gap_in_a_track_counts_the_typical_frame_duration():
    records = [r for r in track([(3.0, 400, 400, STANDING, STANDING)]) if not 30 <= r["frame"] < 75]
    (t,) = analyze(records).tracks
    assert t.duration == pytest.approx((90 - 45) / FPS)


def test_events_csv_has_the_expected_rows(tmp_path):
    result = analyze(track(FALL))
    path = tmp_path / "events.csv"
    write_events_csv(result.events, path)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["track_id", "kind", "start_time", "end_time", "frame", "details"]
    assert [(r["track_id"], r["kind"]) for r in rows] == [("1", "fall"), ("1", "posture")]
    assert float(rows[0]["start_time"]) == pytest.approx(1.0, abs=0.05) and rows[0]["frame"] == "30"
    assert rows[0]["details"].startswith("drop=") and ";trunk_angle=" in rows[0]["details"]
    assert rows[1]["details"] == "from=standing;to=lying"
    assert float(rows[1]["end_time"]) == pytest.approx(3.4 - 1 / FPS, abs=1e-3)
    assert [p.name for p in tmp_path.iterdir()] == ["events.csv"], "no temporary file left"


def test_analyze_file_reads_both_formats_and_reports_bad_files(tmp_path):
    for name in ("k.jsonl", "k.csv"):
        path = tmp_path / name
        with KeypointWriter(path, W, H, FPS) as writer:
            for r in track(FALL):
                kps = np.array([[p["x"], p["y"], p["conf"]] for p in r["keypoints"].values()], np.float32)
                box = [r["box"][k] for k in ("x1", "y1", "x2", "y2")]
                writer.write(r["frame"], None, Detections([box], [0.9], [0], tracker_id=[1], keypoints=kps[None]))
        result = analyze_file(path)
        assert result.tracks[0].falls == 1 and result.tracks[0].final_posture == "lying"

    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SourceError, match=r"no such keypoints file: .*nope\.jsonl$"):
        analyze_file(missing)
    path = tmp_path / "k.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(SourceError, match=r"k\.jsonl, line 2: not valid JSON"):
        analyze_file(path)
    path.write_text("\n".join([lines[0], lines[1], lines[2].replace('"confidence":0.9', '"confidence":9')]) + "\n")
    with pytest.raises(SourceError, match=r"k\.jsonl, line 3: confidence: expected a number in \[0, 1\], got 9$"):
        analyze_file(path)


def test_config_is_validated():
    with pytest.raises(ConfigError, match=r"lying_angle must be in \(0, 90\) degrees, got 95"):
        AnalyzeConfig(lying_angle=95)
    with pytest.raises(ConfigError, match="fall_window_s must be > 0, got 0"):
        AnalyzeConfig(fall_window_s=0)
    assert analyze([]).tracks == []
