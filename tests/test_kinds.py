"""Source kinds and fill modes are enums, each drawn or read through one table."""

import json

from anonymise import composite
from anonymise.config import Fill
from anonymise.io.sources import SourceKind, parse_source


def test_source_kinds_are_a_str_enum_that_reads_and_writes_as_its_name(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"")
    kinds = {
        "0": SourceKind.CAMERA,
        "rtsp://cam.local/s": SourceKind.STREAM,
        str(tmp_path): SourceKind.FOLDER,
        str(tmp_path / "a.mp4"): SourceKind.VIDEO,
        str(tmp_path / "b.png"): SourceKind.IMAGE,
    }
    for spec, kind in kinds.items():
        source = parse_source(spec)
        assert source.kind is kind and source.kind == kind.value
        assert json.dumps({"kind": source.kind}) == f'{{"kind": "{kind.value}"}}'
        assert f"not a {source.kind}" == f"not a {kind.value}" and str(source.kind) == kind.value
        assert source.kind.live is (kind in (SourceKind.CAMERA, SourceKind.STREAM))


def test_every_fill_mode_is_drawn():
    assert set(composite._FILLS) == set(Fill)
