"""The redaction manifest (--masks) and the redaction report (--report)."""

import json

import numpy as np
import pytest
from conftest import ColourDetector, is_person_colour, read_frames, scene, synthetic_frames, write_video
from typer.testing import CliRunner

from anonymise import Anonymiser, Config
from anonymise.cli import app
from anonymise.errors import ConfigError
from anonymise.io.video import Frame, Span
from anonymise.ledger import Ledger
from anonymise.manifest import Manifest
from anonymise.sidecars import Extras

SIGN = (100, 80, 150, 110)  # x0, y0, x1, y1: a "name on a sign" the detector never finds
SIGN_COLOUR = np.array([20, 230, 250], np.uint8)


def _manifest(tmp_path, masks, **extra):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"version": 1, "masks": masks, **extra}))
    return path


def _signed(n):
    frames = synthetic_frames(n)
    x0, y0, x1, y1 = SIGN
    for f in frames:
        f[y0:y1, x0:x1] = SIGN_COLOUR
    return frames


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "a JSON object"),
        ({"masks": [{"box": [10, 10, 5, 20], "start": 0}]}, "x1 > x0"),
        ({"masks": [{"box": [0, 0, 5], "start": 0}]}, r"box must be \[x0, y0, x1, y1\]"),
        ({"masks": [{"box": [0, 0, 5, 5], "start": 4, "end": 2}]}, "start <= end"),
        ({"masks": [{"box": [0, 0, 5, 5], "start": -1}]}, "start <= end"),
        ({"version": 2, "masks": []}, "version 2"),
        ({"size": [0, 10], "masks": []}, "size"),
    ],
)
def test_bad_manifests_are_one_clear_error(data, message):
    with pytest.raises(ConfigError, match=message):
        Manifest.parse(data)


def test_manifest_round_trips_and_says_which_boxes_cover_a_frame(tmp_path):
    path = _manifest(
        tmp_path, [{"box": [1, 2, 3, 4], "start": 5, "end": 7, "label": "sign"}, {"box": [0, 0, 9, 9], "start": 6}]
    )
    manifest = Manifest.load(path)
    assert len(manifest.boxes(4)) == 0
    assert manifest.boxes(5).tolist() == [[1, 2, 3, 4]]
    assert len(manifest.boxes(7)) == 2 and len(manifest.boxes(8)) == 1 and len(manifest.boxes(10**6)) == 1
    assert Manifest.parse(manifest.as_dict()) == manifest


def test_a_manual_box_is_masked_in_its_range_only(tmp_path):
    # a person the detector never finds stands in the box in frames 4-11, and the reviewer drew it there
    frames = synthetic_frames(16)
    x0, y0, x1, y1 = SIGN
    for f in frames[4:12]:
        f[y0:y1, x0:x1] = SIGN_COLOUR
    path = _manifest(tmp_path, [{"box": list(SIGN), "start": 4, "end": 11}])
    anon = Anonymiser(Config(masks=str(path), feather=0, dilate=0), detector=ColourDetector())
    stream = anon.stream(5)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    for i, (f, o) in enumerate(zip(frames, out)):
        region = o[y0:y1, x0:x1].reshape(-1, 3).astype(int)
        shown = (np.abs(region - SIGN_COLOUR).max(axis=1) < 30).mean()
        assert shown < 0.05, f"the undetected person shows in frame {i} ({shown:.0%})"
        if not 4 <= i <= 11:
            assert (o[y0:y1, x0:x1] == f[y0:y1, x0:x1]).all(), f"frame {i} is outside the manual range: unchanged"
        else:  # what the background learned there before the range began is forgotten: inpainted, changed
            assert (o[y0:y1, x0:x1] != f[y0:y1, x0:x1]).any(axis=2).mean() > 0.95, f"frame {i} is masked"
        assert not is_person_colour(o).any(), f"the detected person shows in frame {i}"
    assert stream.ledger.as_dict()["frames_by_reason"]["manual"]["spans"] == [[4, 11]]


def test_background_never_learns_under_a_manual_box_from_the_first_frame(tmp_path):
    frames = _signed(12)
    path = _manifest(tmp_path, [{"box": list(SIGN), "start": 0}])
    anon = Anonymiser(Config(masks=str(path), fill="background"), detector=ColourDetector())
    out = [o for _, o in anon.anonymise_frames(Frame(f, i) for i, f in enumerate(frames))]
    x0, y0, x1, y1 = SIGN
    for i, o in enumerate(out):
        region = o[y0:y1, x0:x1].reshape(-1, 3).astype(int)
        assert (np.abs(region - SIGN_COLOUR).max(axis=1) < 30).mean() < 0.05, f"the sign shows in frame {i}"


def test_a_manifest_drawn_on_other_frames_is_refused(tmp_path):
    path = _manifest(tmp_path, [{"box": [0, 0, 5, 5], "start": 0}], size=[640, 480])
    anon = Anonymiser(Config(masks=str(path)), detector=ColourDetector())
    with pytest.raises(ConfigError, match="640x480 frames, the video is 160x120"):
        list(anon.anonymise_frames(Frame(f, i) for i, f in enumerate(synthetic_frames(2))))


def test_ledger_keeps_spans_per_track_and_reason():
    ledger = Ledger()
    for t in range(10):
        ledger.record(t, tracks=[1] if t < 6 else [], held_tracks=[1] if 6 <= t < 8 else [], people=int(t < 6))
    ledger.record(10, tracks=[2], people=1, motion=2, failed=0)
    data = ledger.as_dict()
    one, two = data["tracks"]
    assert (one["id"], one["first"], one["last"], one["detected"], one["held"]) == (1, 0, 7, [[0, 5]], [[6, 7]])
    assert (two["first"], two["last"]) == (10, 10)
    assert data["frames_by_reason"]["motion"] == {"frames": 1, "regions": 2, "spans": [[10, 10]]}
    assert data["frames_by_reason"]["failed"]["frames"] == 0
    with pytest.raises(ValueError, match="unknown reason"):
        ledger.record(11, ghosts=1)


def test_report_beside_the_output_names_tracks_reasons_settings_and_models(tmp_path):
    src = write_video(tmp_path / "walk.mp4", _signed(20), audio=None)
    path = _manifest(tmp_path, [{"box": list(SIGN), "start": 3, "end": 9, "label": "sign"}])
    anon = Anonymiser(Config(masks=str(path)), detector=ColourDetector())
    result = anon.process_video(src, tmp_path / "walk_anonymised.mp4", extras=Extras(report=True))
    assert result.frames == 20 and len(read_frames(result.output)) == 20
    report = json.loads((tmp_path / "walk_anonymised.report.json").read_text())
    assert report["frames"] == 20 and report["input"] == str(src)
    (track,) = report["tracks"]
    assert track["first"] == 0 and track["last"] == 19 and track["frames_detected"] >= 18
    assert report["frames_by_reason"]["manual"]["spans"] == [[3, 9]]
    assert report["frames_by_reason"]["detected"]["frames"] >= 18
    assert report["failed_closed"] == []
    assert report["settings"]["masks"] == str(path) and report["settings"]["mode"] == "bbox"
    assert report["models"]["pose"]["model"] == "yolo11n-pose.pt"
    page = (tmp_path / "walk_anonymised.report.html").read_text()
    assert "Redaction report" in page and "manual" in page and "<script" not in page
    assert "http://" not in page and "https://" not in page, "the page fetches nothing"
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


def test_no_report_unless_asked(tmp_path):
    src = write_video(tmp_path / "walk.mp4", synthetic_frames(6), audio=None)
    Anonymiser(Config(), detector=ColourDetector()).process_video(src, tmp_path / "out.mp4")
    assert not list(tmp_path.glob("*.report.*"))


def test_cli_masks_errors_are_one_line(tmp_path):
    src = write_video(tmp_path / "walk.mp4", synthetic_frames(4), audio=None)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for masks, message in ((bad, "not a JSON manifest"), (tmp_path / "none.json", "no such file")):
        result = CliRunner().invoke(app, ["bbox", "-i", str(src), "--masks", str(masks)])
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.output
    folder = tmp_path / "folder"
    folder.mkdir()
    write_video(folder / "a.mp4", synthetic_frames(3), audio=None)
    good = _manifest(tmp_path, [])
    result = CliRunner().invoke(app, ["bbox", "-i", str(folder), "--masks", str(good)])
    assert result.exit_code == 1 and "--masks applies to one video" in result.output


def test_scene_fixture_has_no_sign_colour():
    assert (np.abs(scene().reshape(-1, 3).astype(int) - SIGN_COLOUR).max(axis=1) < 30).mean() < 0.01


def test_the_reports_settings_are_the_values_the_run_resolved(tmp_path, clip):
    """Where the config leaves a choice to the run (``None``, ``auto``), the report gives what was
    chosen: the look-ahead, backend, precision, batch, fail-closed, real-time and the search's passes."""
    out = tmp_path / "clip_anonymised.mp4"
    anon = Anonymiser(Config(backend="torch", pose=False))  # the real detector, no export
    anon.process_video(clip, out, extras=Extras(report=True), span=Span(0.0, frames=4))
    settings = json.loads((tmp_path / "clip_anonymised.report.json").read_text())["settings"]
    assert settings["lookahead"] == 30 and settings["fail_closed"] is True and settings["realtime"] is False
    assert (settings["backend"], settings["device"], settings["precision"], settings["batch"]) == (
        "torch",
        "cpu",
        "fp32",
        1,
    )
    assert settings["half"] is False and settings["int8"] is False
    assert settings["imgsz"] == settings["search_imgsz"] >= 480, "the search's size, picked from the frame size"
    assert settings["sweep_every"] >= 1 and settings["search_stride"] >= 1 and "search_tiles" in settings
    chosen = {
        "lookahead",
        "backend",
        "device",
        "precision",
        "batch",
        "half",
        "int8",
        "fail_closed",
        "realtime",
        "imgsz",
    }
    assert not [k for k in chosen if settings[k] in (None, "auto")], settings
    page = (tmp_path / "clip_anonymised.report.html").read_text()
    assert "<th>precision</th><td>fp32</td>" in page
