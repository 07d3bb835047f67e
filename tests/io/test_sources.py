"""What ``--video-source`` means, and where outputs go by default."""

from pathlib import Path

import pytest

from anonymise import SourceError
from anonymise.io.sources import default_output, find_media, media_kind, output_for, parse_source


def test_each_kind_of_source(tmp_path):
    (tmp_path / "a.MP4").write_bytes(b"x")
    (tmp_path / "b.jpeg").write_bytes(b"x")
    assert parse_source(tmp_path / "a.MP4").kind == "video"
    assert parse_source(str(tmp_path / "b.jpeg")).kind == "image"
    assert parse_source(tmp_path).kind == "folder"
    camera = parse_source(" 2 ")
    assert (camera.kind, camera.camera) == ("camera", 2)
    assert parse_source("rtsp://cam.local:554/stream1").kind == "stream"
    assert parse_source(f"file://{tmp_path / 'a.MP4'}").kind == "video", "file:// is a path, not a stream"


@pytest.mark.parametrize(
    "spec, message", [("", "empty --video-source"), ("nowhere/x.mp4", "no such file or folder: nowhere/x.mp4")]
)
def test_bad_sources_say_what_is_wrong(spec, message):
    with pytest.raises(SourceError, match=f"^{message}$"):
        parse_source(spec)


def test_default_outputs_never_replace_the_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.avi").write_bytes(b"x")
    (tmp_path / "photo.png").write_bytes(b"x")
    (tmp_path / "shoot").mkdir()
    assert default_output(parse_source(tmp_path / "clip.avi")) == tmp_path / "clip_anonymised.mp4"
    assert default_output(parse_source(tmp_path / "photo.png")) == tmp_path / "photo_anonymised.png"
    assert default_output(parse_source(tmp_path / "shoot")) == tmp_path / "shoot_anonymised"
    assert default_output(parse_source("0")) == tmp_path / "camera0_anonymised.mp4"
    assert default_output(parse_source("rtsp://h/live/front door.sdp?x=1")) == tmp_path / "front_door_anonymised.mp4"


def test_folder_walk_mirrors_the_tree_and_skips_hidden_and_other_files(tmp_path):
    for name in ("a.mp4", "sub/b.mkv", "sub/c.jpg", ".hidden.mp4", "notes.txt", ".cache/d.mp4", "out/e.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = find_media(tmp_path, exclude=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.mp4", "sub/b.mkv", "sub/c.jpg"]
    assert output_for(tmp_path / "sub/b.mkv", tmp_path, Path("/o")) == Path("/o/sub/b.mp4"), "videos become .mp4"
    assert output_for(tmp_path / "sub/c.jpg", tmp_path, Path("/o")) == Path("/o/sub/c.jpg")
    assert (
        media_kind(Path("x.TIFF")) == "image"
        and media_kind(Path("x.webm")) == "video"
        and media_kind(Path("x.txt")) is None
    )
