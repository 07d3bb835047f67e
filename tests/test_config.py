import pytest

from anonymise import Config, ConfigError, Detections, Mode
from anonymise.config import auto_imgsz


def test_defaults_are_valid_and_recall_first():
    c = Config()
    assert c.mode is Mode.BBOX and c.conf <= 0.2 and c.bbox_model is None and c.lookahead is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conf": 0}, r"conf must be in \(0, 1\], got 0"),
        ({"conf": 1.5}, r"conf must be in \(0, 1\], got 1.5"),
        ({"alpha": -0.1}, r"alpha must be in \(0, 1\]"),
        ({"pose_conf": 2}, r"pose_conf must be in \[0, 1\]"),
        ({"inflate": -1}, r"inflate must be an integer >= 0, got -1"),
        ({"feather": 2.5}, r"feather must be an integer >= 0"),
        ({"lookahead": -3}, r"lookahead must be an integer >= 0"),
        ({"imgsz": 16}, r"imgsz must be an integer in \[32, 4096\], got 16"),
        ({"batch": 0}, r"batch must be an integer >= 1, got 0"),
        ({"mode": "blur"}, r"mode must be 'seg' or 'bbox', got 'blur'"),
        ({"seg_model": ""}, r"seg_model must name a model"),
        ({"tiles": "many"}, r"tiles must be auto, off or a number of tiles 1-16, got 'many'"),
        ({"tiles": 40}, r"tiles must be auto, off or a number"),
        ({"hold": -1}, r"hold must be an integer >= 0, got -1"),
        ({"min_person": 2}, r"min_person must be an integer in \[4, 4096\], got 2"),
        ({"motion_threshold": 0}, r"motion_threshold must be an integer in \[1, 255\]"),
    ],
)
def test_bad_values_raise_specific_messages(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Config(**kwargs)


def test_mode_from_string_and_replace_revalidates():
    assert Config(mode="seg").mode is Mode.SEG
    with pytest.raises(ConfigError):
        Config().replace(alpha=0)


@pytest.mark.parametrize(
    ("size", "min_person", "expected"),
    [
        ((480, 360), 32, 960),
        ((320, 240), 32, 640),
        ((1920, 1080), 32, 1280),
        ((200, 100), 32, 640),
        ((480, 360), 64, 640),
        ((480, 360), 16, 1280),
    ],
)
def test_auto_imgsz_enlarges_for_small_people_within_bounds(size, min_person, expected):
    assert auto_imgsz(*size, min_person) == expected
    assert auto_imgsz(*size, min_person) % 32 == 0


def test_tiles_are_normalised():
    assert Config(tiles="AUTO").tiles == "auto" and Config(tiles=3).tiles == "3"


def test_detections_shapes_are_checked_and_indexable():
    d = Detections([[0, 0, 10, 10], [5, 5, 8, 8]], [0.9, 0.1], [0, 0])
    assert len(d[d.confidence > 0.3]) == 1
    assert len(Detections.empty()) == 0 and Detections.empty().xyxy.shape == (0, 4)
    with pytest.raises(ValueError, match=r"confidence: expected shape \(2,\), got \(3,\)"):
        Detections([[0, 0, 1, 1], [0, 0, 1, 1]], [0.1, 0.2, 0.3], [0, 0])
    with pytest.raises(ValueError, match=r"keypoints: expected shape \(1, 17, 3\)"):
        Detections([[0, 0, 1, 1]], [0.5], [0], keypoints=[[[0, 0, 1]]])
