"""Keypoint sidecar files: both formats round-trip, one record per person per frame, atomic writes."""

import json

import numpy as np
import pytest

from anonymise import ConfigError, Detections, OutputError, SourceError
from anonymise.io.keypoints import CSV_COLUMNS, SCHEMA, KeypointWriter, person_records, read_keypoints, validate_record
from anonymise.pose import KEYPOINT_NAMES

W, H = 640, 480


def _people(n, ids=None, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(10, 400, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + [60.123, 150.456]], axis=1)
    kps = np.concatenate([rng.uniform(0, 470, (n, 17, 2)), rng.uniform(0, 1, (n, 17, 1))], axis=2)
    kps[:, 3, 2] = 0.0  # an invisible joint is still written
    return Detections(boxes, rng.uniform(0.2, 1, n), np.zeros(n), tracker_id=ids, keypoints=kps)


FRAMES = [(0, 0.0, _people(2, [3, 7])), (1, 0.04, Detections.empty()), (2, 0.08, _people(1, [7], seed=1))]


def _write(path, frames=FRAMES, fps=None):
    with KeypointWriter(path, W, H, fps) as writer:
        for index, time, people in frames:
            writer.write(index, time, people)
    return writer


@pytest.mark.parametrize("name", ["out.jsonl", "out.ndjson", "out.csv"])
def test_both_formats_round_trip_one_record_per_person_per_frame(tmp_path, name):
    path = tmp_path / name
    writer = _write(path)
    expected = [r for index, time, people in FRAMES for r in person_records(index, time, people, W, H)]
    assert writer.records == len(expected) == 3, "frames with nobody produce no record"
    lines = path.read_text().splitlines()
    assert len(lines) == 3 + (name.endswith(".csv")), "one line per person per frame (+ the CSV header)"
    got = list(read_keypoints(path))
    assert got == expected
    assert [(r["frame"], r["track_id"]) for r in got] == [(0, 3), (0, 7), (2, 7)]
    assert list(got[0]["keypoints"]) == list(KEYPOINT_NAMES)
    assert got[0]["keypoints"]["left_ear"]["conf"] == 0.0


def test_jsonl_line_is_the_documented_nested_object(tmp_path):
    path = tmp_path / "k.jsonl"
    _write(path)
    record = json.loads(path.read_text().splitlines()[0])
    assert record["schema"] == SCHEMA
    assert list(record) == [
        "schema",
        "frame",
        "time",
        "track_id",
        "confidence",
        "frame_width",
        "frame_height",
        "box",
        "box_norm",
        "keypoints",
    ]
    assert set(record["keypoints"]["nose"]) == {"x", "y", "x_norm", "y_norm", "conf"}
    validate_record(record)


def test_csv_has_one_flat_header(tmp_path):
    path = tmp_path / "k.csv"
    _write(path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:14] == [
        "frame",
        "time",
        "track_id",
        "confidence",
        "frame_width",
        "frame_height",
        "x1",
        "y1",
        "x2",
        "y2",
        "x1_norm",
        "y1_norm",
        "x2_norm",
        "y2_norm",
    ]
    assert header[14:19] == ["nose_x", "nose_y", "nose_x_norm", "nose_y_norm", "nose_conf"]
    assert header[-1] == "right_ankle_conf" and len(header) == len(CSV_COLUMNS) == 14 + 17 * 5


def test_normalised_coordinates_are_pixels_over_frame_size(tmp_path):
    path = tmp_path / "k.jsonl"
    _write(path)
    for r in read_keypoints(path):
        for k, size in (("x1", W), ("y1", H), ("x2", W), ("y2", H)):
            assert r["box_norm"][k] == pytest.approx(r["box"][k] / size, abs=2e-5)
        for point in r["keypoints"].values():
            assert point["x_norm"] == pytest.approx(point["x"] / W, abs=2e-5)
            assert point["y_norm"] == pytest.approx(point["y"] / H, abs=2e-5)


def test_untracked_people_and_people_without_keypoints(tmp_path):
    path = tmp_path / "k.csv"
    untracked = _people(2, [-1, 4])
    no_keypoints = Detections([[0, 0, 10, 10]], [0.9], [0], tracker_id=[5])
    _write(path, [(0, 0.0, untracked), (1, 0.04, no_keypoints), (2, 0.08, _people(1))])
    records = list(read_keypoints(path))
    assert [(r["frame"], r["track_id"]) for r in records] == [(0, None), (0, 4), (2, None)]
    assert path.read_text().splitlines()[1].split(",")[2] == "", "no track id: an empty CSV cell"


def test_time_falls_back_to_index_over_fps(tmp_path):
    path = tmp_path / "k.jsonl"
    _write(path, [(30, None, _people(1, [1]))], fps=25.0)
    assert next(read_keypoints(path))["time"] == 1.2
    with pytest.raises(ValueError, match="no timestamp and no fps"):
        _write(tmp_path / "no_fps.jsonl", [(30, None, _people(1, [1]))])


def test_validate_record_names_the_broken_field(tmp_path):
    path = tmp_path / "k.jsonl"
    _write(path)
    good = next(read_keypoints(path))
    broken = json.loads(json.dumps(good))
    del broken["keypoints"]["left_knee"]["conf"]
    with pytest.raises(ValueError, match=r"^keypoints\.left_knee\.conf: missing$"):
        validate_record(broken)
    for field, value, message in [
        ("frame", -1, r"^frame: expected an integer >= 0, got -1$"),
        ("confidence", 1.5, r"^confidence: expected a number in \[0, 1\], got 1.5$"),
        ("track_id", "7", r"^track_id: expected an integer >= 0, got '7'$"),
        ("schema", "other/2", r"^schema: expected 'anonymise.keypoints/1', got 'other/2'$"),
        ("box", [1, 2, 3, 4], r"^box: expected an object"),
    ]:
        with pytest.raises(ValueError, match=message):
            validate_record({**good, field: value})
    with pytest.raises(ValueError, match=r"^time: expected a finite number, got nan$"):
        validate_record({**good, "time": float("nan")})


@pytest.mark.parametrize("name", ["k.jsonl", "k.csv"])
def test_abort_and_exceptions_leave_no_file_and_keep_an_existing_target(tmp_path, name):
    path = tmp_path / name
    writer = KeypointWriter(path, W, H)
    writer.write(0, 0.0, _people(2, [1, 2]))
    assert writer.tmp.exists() and writer.tmp.parent == tmp_path and writer.tmp.name.startswith(".")
    writer.abort()
    assert list(tmp_path.iterdir()) == [], "abort removes the temporary file and writes no target"

    with pytest.raises(RuntimeError), KeypointWriter(path, W, H) as writer:
        writer.write(0, 0.0, _people(1, [1]))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

    path.write_text("precious")
    with pytest.raises(RuntimeError), KeypointWriter(path, W, H) as writer:
        writer.write(0, 0.0, _people(1, [1]))
        raise RuntimeError("boom")
    assert path.read_text() == "precious" and list(tmp_path.iterdir()) == [path]
    _write(path)
    assert len(list(read_keypoints(path))) == 3, "a successful close replaces the target"
    assert list(tmp_path.iterdir()) == [path]


def test_unsupported_extension_and_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match=r"unsupported extension '\.json', use one of \.jsonl, \.ndjson, \.csv$"):
        KeypointWriter(tmp_path / "k.json", W, H)
    with pytest.raises(SourceError, match="unsupported extension"):
        read_keypoints(tmp_path / "k.txt")
    with pytest.raises(SourceError, match="no such keypoints file: .*missing.csv"):
        read_keypoints(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="width must be a positive integer, got 0"):
        KeypointWriter(tmp_path / "k.csv", 0, H)
    with pytest.raises(OutputError, match="cannot write .*nowhere"):
        KeypointWriter(tmp_path / "nowhere" / "k.csv", W, H)
    assert list(tmp_path.iterdir()) == []


def test_reading_bad_csv_names_the_line(tmp_path):
    path = tmp_path / "k.csv"
    _write(path)
    lines = path.read_text().splitlines()
    lines[2] = "x" + lines[2][1:]  # the second record's frame
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"k\.csv, line 3: frame: expected an integer, got 'x'$"):
        list(read_keypoints(path))
    path.write_text("frame,when\n")
    with pytest.raises(SourceError, match=r"line 1: not an anonymise keypoints CSV header: column 2 is 'when'"):
        list(read_keypoints(path))
