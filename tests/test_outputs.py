"""Every output: fill modes, skeleton-only canvases, keypoints, snapshots, export and the debug view.

Synthetic runs use the magenta detector (with keypoints); the real-clip runs use the bundled pose
model on 12 frames of pedestrians.mp4.
"""

import numpy as np
import pytest
from conftest import ColourDetector, is_person_colour, synthetic_frames, write_video
from typer.testing import CliRunner

from anonymise import Anonymiser, Config
from anonymise.cli import app
from anonymise.config import Fill
from anonymise.io.keypoints import read_keypoints
from anonymise.io.video import Frame
from anonymise.pose import track_colour

runner = CliRunner()
FAST = ["--imgsz", "320", "--quiet"]


def _run(config, frames, lookahead=0, detector=None):
    anon = Anonymiser(config, detector=detector or ColourDetector(keypoints=True))
    stream = anon.stream(lookahead, debug=True)
    return list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))


@pytest.mark.parametrize("fill", [f for f in Fill if f is not Fill.NONE])
def test_every_fill_mode_replaces_the_person_and_keeps_the_rest(fill):
    frames = synthetic_frames(8)
    for r in _run(Config(fill=fill, pose=False), frames):
        frame, out, (alpha, _) = r.frame, r.image, r.debug
        assert (out[alpha == 0] == frame.image[alpha == 0]).all(), f"{fill.value}: pixels away from people changed"
        if fill in (Fill.BLUR, Fill.PIXELATE):  # they hide detail, not a flat block's colour (see test_fill.py)
            assert (out[alpha > 0] != frame.image[alpha > 0]).any()
        else:
            assert not is_person_colour(out, 60).any(), f"{fill.value}: the person shows"


def test_blackout_is_black_exactly_inside_the_mask():
    for r in _run(Config(fill="blackout", pose=False, feather=0), synthetic_frames(5)):
        frame, out, (alpha, _) = r.frame, r.image, r.debug
        assert (alpha == 255).sum() > 500
        assert (out[alpha == 255] == 0).all() and (out[alpha == 0] == frame.image[alpha == 0]).all()


def test_fill_none_keeps_the_frame_and_draws_the_skeleton():
    (frame, out), *_ = _run(Config(fill="none", skeleton_colour="#00ff00"), synthetic_frames(3))
    drawn = np.any(out != frame.image, axis=-1)
    assert drawn.any() and (out[drawn] == [0, 255, 0]).all(axis=-1).mean() > 0.5, "only the green skeleton differs"


def test_black_canvas_shows_only_the_skeleton_in_its_track_colour():
    results = _run(Config(canvas="black", skeleton_colour="track", feather=0), synthetic_frames(6))
    for result in results:
        out = result.image
        assert not is_person_colour(out, 60).any()
        (track_id,) = result.poses.tracker_id
        colour = np.array(track_colour(int(track_id)), np.uint8)
        lit = out.max(axis=-1) > 0
        assert lit.any() and lit.mean() < 0.05, "black canvas, a thin skeleton"
        assert (np.abs(out[lit].astype(int) - colour).max(axis=-1) <= 60).mean() > 0.5, "drawn in the track's colour"


def test_video_canvas_is_looped_and_resized(tmp_path):
    colours = [(0, 0, 200), (0, 200, 0), (200, 0, 0)]
    canvas = write_video(tmp_path / "room.mp4", [np.full((48, 64, 3), c, np.uint8) for c in colours], audio=None)
    results = _run(Config(canvas=str(canvas), pose=False), synthetic_frames(7))
    for i, (_, out) in enumerate(results):
        assert out.shape == (120, 160, 3)
        assert np.abs(out.reshape(-1, 3).mean(axis=0) - colours[i % 3]).max() < 12, f"frame {i}: canvas frame {i % 3}"


def _video(tmp_path, n=12, fps=10):
    return write_video(tmp_path / "walk.mp4", synthetic_frames(n), fps=fps)


# -- the real clip -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(clip):
    from anonymise.detect import Detector
    from anonymise.io.video import VideoReader

    frames = [f.image for f in VideoReader(clip, audio=False)][:6]
    return frames, Detector(Config(imgsz=640, tiles="off"))


@pytest.mark.slow
def test_fill_modes_on_real_people(real):
    frames, detector = real
    for fill in Fill:
        results = _run(Config(fill=fill, pose=False, fail_closed=False, track=False), frames, detector=detector)
        covered = 0
        for r in results:
            frame, out, (alpha, _) = r.frame, r.image, r.debug
            inside, outside = alpha == 255, alpha == 0
            covered += inside.sum()
            assert (out[outside] == frame.image[outside]).all(), f"{fill.value}: pixels away from people changed"
            if fill is Fill.BLACKOUT:
                assert (out[inside] == 0).all()
            elif fill is Fill.NONE:
                assert (out == frame.image).all()
            elif inside.any():
                changed = np.abs(out[inside].astype(int) - frame.image[inside].astype(int)).max(axis=-1) > 0
                assert changed.mean() > 0.5, f"{fill.value}: people barely changed"
        assert covered > 1000, "the pose model found people in these frames"


@pytest.mark.slow
def test_export_then_analyze_on_a_real_clip(clip, tmp_path):
    data = tmp_path / "people.jsonl"
    r = runner.invoke(app, ["export", "-i", str(clip), "-o", str(data), *FAST])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.jsonl"], "no video"
    records = list(read_keypoints(data))
    frames = {rec["frame"] for rec in records}
    assert records and frames <= set(range(12)) and len(frames) >= 10, "people in (nearly) every frame"
    assert all(rec["frame_width"] == 480 and rec["frame_height"] == 360 for rec in records)
    r = runner.invoke(app, ["analyze", str(data), "--events", str(tmp_path / "events.csv")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "events.csv").read_text().startswith("track_id,kind,start_time,end_time,frame,details")
    assert "people" in r.output


def test_analyze_and_export_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["analyze", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 1 and "missing.jsonl" in r.output and len(r.output.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"frame": 0}\n')
    r = runner.invoke(app, ["analyze", str(bad)])
    assert r.exit_code == 1 and "line 1" in r.output
    r = runner.invoke(app, ["export", "-i", str(_video(tmp_path, n=3)), "--format", "xml"])
    assert r.exit_code == 1 and "--format must be jsonl or csv" in r.output


def test_analyze_a_synthetic_fall(tmp_path):
    """A skeleton that stands for 1 s, then falls flat within 0.3 s: one fall event, and lying at the end."""
    from anonymise.detections import Detections
    from anonymise.io.keypoints import KeypointWriter
    from anonymise.pose import KEYPOINT_NAMES

    path = tmp_path / "fall.jsonl"
    with KeypointWriter(path, 640, 480, fps=10) as writer:
        for i in range(40):
            k = np.zeros((1, 17, 3), np.float32)
            k[..., 2] = 0.9
            fallen = min(max(i - 10, 0) / 3, 1.0)  # 0 = upright, 1 = flat
            for j, name in enumerate(KEYPOINT_NAMES):
                height = {"shoulder": 100, "hip": 50, "knee": 25, "ankle": 0}.get(name.split("_")[-1], 120)
                x = 300 + height * fallen
                y = 400 - height * (1 - fallen)
                k[0, j, :2] = x, y
            box = [k[0, :, 0].min() - 5, k[0, :, 1].min() - 5, k[0, :, 0].max() + 5, k[0, :, 1].max() + 5]
            writer.write(i, None, Detections([box], [0.9], [0], tracker_id=[1], keypoints=k))
    r = runner.invoke(app, ["analyze", str(path), "--events", str(tmp_path / "events.csv")])
    assert r.exit_code == 0, r.output
    rows = (tmp_path / "events.csv").read_text().splitlines()
    assert sum(",fall," in row for row in rows) == 1
    assert "1 people, 1 falls" in " ".join(r.output.split())
