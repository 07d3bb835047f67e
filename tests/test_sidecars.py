"""What is written beside each output: keypoints, snapshots, the debug view, data-only runs."""

import json

import cv2
import numpy as np
import pytest
from conftest import ColourDetector, is_person_colour, read_frames, stream_summary, synthetic_frames, write_video
from typer.testing import CliRunner

from anonymise import Anonymiser, Config
from anonymise.cli import app
from anonymise.io.keypoints import read_keypoints
from anonymise.sidecars import Every, Extras

runner = CliRunner()
FAST = ["--imgsz", "320", "--quiet"]


def _video(tmp_path, n=12, fps=10):
    return write_video(tmp_path / "walk.mp4", synthetic_frames(n), fps=fps)


def test_keypoints_snapshots_and_video_from_one_run(tmp_path):
    src = _video(tmp_path)
    anon = Anonymiser(Config(), detector=ColourDetector(keypoints=True))
    extras = Extras(keypoints="csv", snapshot_every="0.5s")
    report = anon.run(src, tmp_path / "out.mp4", extras=extras)
    assert report.ok and stream_summary(tmp_path / "out.mp4")["frames"] == 12
    records = list(read_keypoints(tmp_path / "out.keypoints.csv"))
    assert [r["frame"] for r in records] == list(range(12)), "one record per person per frame"
    assert records[3]["time"] == pytest.approx(0.3) and records[3]["track_id"] == records[0]["track_id"] >= 1
    snaps = sorted(p.name for p in (tmp_path / "out_snapshots").iterdir())
    assert snaps == ["out_000000.jpg", "out_000005.jpg", "out_000010.jpg"]
    assert not is_person_colour(cv2.imread(str(tmp_path / "out_snapshots" / snaps[1])), 60).any(), (
        "snapshots are anonymised"
    )


def test_export_writes_only_the_data(tmp_path):
    src = _video(tmp_path)
    anon = Anonymiser(Config(fill="none"), detector=ColourDetector(keypoints=True))
    report = anon.run(src, tmp_path / "walk.jsonl", extras=Extras(keypoints="jsonl", video=False))
    assert report.ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.jsonl", "walk.mp4"], "no video written"
    lines = (tmp_path / "walk.jsonl").read_text().splitlines()
    assert len(lines) == 12 and json.loads(lines[0])["schema"] == "anonymise.keypoints/1"


def test_debug_view_without_a_display_is_written_as_a_video(tmp_path):
    src = _video(tmp_path, n=6)
    anon = Anonymiser(Config(), detector=ColourDetector(keypoints=True))
    anon.run(src, tmp_path / "out.mp4", extras=Extras(debug_view=True))
    debug = read_frames(tmp_path / "out_debug.mp4")
    assert len(debug) == 6 and debug[0].shape == (120, 160, 3)
    assert is_person_colour(debug[2][:60, :80], 60).any(), "top left: the original"
    assert not is_person_colour(debug[2][60:, 80:], 60).any(), "bottom right: the output"


def test_an_interrupted_run_leaves_no_sidecar_behind(tmp_path):
    src = _video(tmp_path)

    class Interrupting(ColourDetector):
        def __call__(self, frames, imgsz=None):
            if self.calls >= 8:
                raise KeyboardInterrupt
            return super().__call__(frames, imgsz)

    anon = Anonymiser(Config(lookahead=0), detector=Interrupting(keypoints=True))
    with pytest.raises(KeyboardInterrupt):
        anon.run(src, tmp_path / "out.mp4", extras=Extras(keypoints="jsonl", snapshot_every="2", debug_view=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.mp4"]


def test_what_a_killed_run_left_of_every_sidecar_is_removed_by_the_next_run(tmp_path, monkeypatch):
    """After SIGKILL a keypoints partial and the snapshots written so far once survived a successful
    rerun. Snapshots now gather in a hidden folder until the run finishes, and the next run on the
    output removes every sidecar's partial (another output's stays)."""
    from anonymise import scene

    src = _video(tmp_path, n=40)
    seen = {}
    at = scene.ClipScene.at

    def looking(self, t, frame, alpha):  # the compose pass, late in the run, as a SIGKILL would find it
        if t == 36:
            seen["final"] = (tmp_path / "out_snapshots").exists()
            seen["staged"] = [p.name for p in tmp_path.glob(".out_snapshots.partial-*.out/*.jpg")]
        return at(self, t, frame, alpha)

    monkeypatch.setattr(scene.ClipScene, "at", looking)
    extras = Extras(keypoints="jsonl", snapshot_every="2")
    Anonymiser(Config(lookahead=0), detector=ColourDetector(keypoints=True)).run(
        src, tmp_path / "out.mp4", extras=extras
    )
    assert seen == {"final": False, "staged": seen["staged"]} and seen["staged"], "snapshots staged, not yet in place"
    written = sorted(p.name for p in (tmp_path / "out_snapshots").iterdir())
    assert written and set(seen["staged"]) <= set(written)
    # what a SIGKILL leaves: partial video, keypoints, report, and a staged snapshot folder
    litter = [".out.partial-1a2b3c4d.mp4", ".out.keypoints.partial-1a2b3c4d.jsonl", ".out.report.partial-1a.json"]
    for name in litter:
        (tmp_path / name).write_bytes(b"{}")
    (tmp_path / ".out_snapshots.partial-1a2b3c4d.out").mkdir()
    (tmp_path / ".out_snapshots.partial-1a2b3c4d.out" / "out_000002.jpg").write_bytes(b"x")
    (tmp_path / ".outer.partial-1a2b3c4d.mp4").write_bytes(b"another output's")
    report = Anonymiser(Config(lookahead=0), detector=ColourDetector(keypoints=True)).run(
        src, tmp_path / "out.mp4", extras=extras, overwrite=True
    )
    assert report.ok
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [".outer.partial-1a2b3c4d.mp4"], hidden
    # sidecars the user named: their partials too
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".points.partial-1a2b3c4d.jsonl").write_bytes(b"{}")
    (tmp_path / ".shots.partial-1a2b3c4d.out").mkdir()
    (tmp_path / ".shots.partial-1a2b3c4d.other").mkdir()  # another output's, sharing the folder: kept
    named = Extras(
        keypoints=str(tmp_path / "data" / "points.jsonl"), snapshot_every="2", snapshot_dir=tmp_path / "shots"
    )
    report = Anonymiser(Config(lookahead=0), detector=ColourDetector(keypoints=True)).run(
        src, tmp_path / "out.mp4", extras=named, overwrite=True
    )
    assert report.ok and (tmp_path / "data" / "points.jsonl").is_file() and any((tmp_path / "shots").iterdir())
    left = [p.name for p in [*tmp_path.iterdir(), *(tmp_path / "data").iterdir()] if "partial-1a2b3c4d" in p.name]
    assert sorted(left) == [".outer.partial-1a2b3c4d.mp4", ".shots.partial-1a2b3c4d.other"], left


@pytest.mark.parametrize(
    "text, expected", [("25", Every(25, False)), ("2s", Every(2, True)), ("0.5 s", Every(0.5, True))]
)
def test_snapshot_period(text, expected):
    assert Every.parse(text) == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fill", "sparkle"], "Invalid value for '--fill'"),
        (["--canvas", "nowhere/room.mp4"], "canvas: no such file"),
        (["--canvas", "purple"], "expected black, white"),
        (["--skeleton-colour", "plaid"], "skeleton_colour must be limbs, track"),
        (["--keypoints", "out.txt"], ".jsonl"),
        (["--snapshot-every", "0"], "snapshot period must be"),
    ],
)
def test_bad_output_options_give_one_line(tmp_path, args, message):
    src = _video(tmp_path, n=3)
    r = runner.invoke(app, ["bbox", "-i", str(src), "-o", str(tmp_path / "o.mp4"), *FAST, *args])
    assert r.exit_code == 1, "bad input exits 1, a value click rejects included"
    assert len(r.output.strip().splitlines()) == 1 and r.output.startswith("Error: ")
    assert message in " ".join(r.output.split())
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_skeletons_on_a_canvas_with_keypoints_and_snapshots_on_a_real_clip(clip, tmp_path):
    out = tmp_path / "out.mp4"
    r = runner.invoke(
        app,
        [
            "bbox",
            "-i",
            str(clip),
            "-o",
            str(out),
            "--canvas",
            "white",
            "--keypoints",
            "csv",
            "--snapshot-every",
            "5",
            *FAST,
        ],
    )
    assert r.exit_code == 0, r.output
    frames = read_frames(out)
    assert len(frames) == 12
    assert np.mean([(f > 200).all(axis=-1).mean() for f in frames]) > 0.97, "a white canvas with thin skeletons"
    assert len(list(read_keypoints(tmp_path / "out.keypoints.csv"))) > 0
    assert sorted(p.name for p in (tmp_path / "out_snapshots").iterdir()) == [
        "out_000000.jpg",
        "out_000005.jpg",
        "out_000010.jpg",
    ]


def test_keypoints_without_drawing(tmp_path):
    src = _video(tmp_path, n=5)
    anon = Anonymiser(Config(draw_pose=False, fill="blackout", feather=0), detector=ColourDetector(keypoints=True))
    anon.run(src, tmp_path / "out.mp4", extras=Extras(keypoints="jsonl"))
    assert len(list(read_keypoints(tmp_path / "out.keypoints.jsonl"))) == 5
    for out in read_frames(tmp_path / "out.mp4"):
        assert (out > 200).all(axis=-1).sum() < 5, "no white joints drawn on the blackout"
