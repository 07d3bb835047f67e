"""Per-person keypoints as a sidecar file: JSON Lines or CSV, one record per person per frame.

The schema (``anonymise.keypoints/1``) is documented in ``docs/keypoints.md``. Records are written
as they come (nothing is held for the whole video) to a hidden temporary file beside the target,
which is renamed onto it by :meth:`KeypointWriter.close`; :meth:`KeypointWriter.abort` removes it
and leaves a file already at the target untouched. :func:`read_keypoints` reads either format
back into the nested record, and :func:`validate_record` checks one record.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from ..detections import Detections
from ..errors import ConfigError, OutputError, SourceError
from ..pose import KEYPOINT_NAMES
from .files import partial_path, publish

SCHEMA = "anonymise.keypoints/1"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
#: decimals kept for pixel coordinates, normalised coordinates, confidences and times
PX_DECIMALS, NORM_DECIMALS, CONF_DECIMALS, TIME_DECIMALS = 2, 5, 4, 6

BOX_KEYS = ("x1", "y1", "x2", "y2")
POINT_KEYS = ("x", "y", "x_norm", "y_norm", "conf")
HEAD_COLUMNS = ("frame", "time", "track_id", "confidence", "frame_width", "frame_height")
CSV_COLUMNS = (
    *HEAD_COLUMNS,
    *BOX_KEYS,
    *(f"{k}_norm" for k in BOX_KEYS),
    *(f"{name}_{k}" for name in KEYPOINT_NAMES for k in POINT_KEYS),
)
INT_COLUMNS = {"frame", "track_id", "frame_width", "frame_height"}


def keypoints_format(path: str | os.PathLike, error: type[Exception] = ConfigError) -> str:
    """``"jsonl"`` or ``"csv"`` from the file extension; anything else raises ``error``."""
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    supported = ", ".join(JSONL_SUFFIXES + CSV_SUFFIXES)
    raise error(f"keypoints file {path}: unsupported extension {suffix or '(none)'!r}, use one of {supported}")


def person_records(frame_index: int, time: float, people: Detections, width: int, height: int) -> Iterator[dict]:
    """The records of one frame: one per person with keypoints (people without them are skipped)."""
    if people.keypoints is None:
        return
    ids = people.tracker_id
    sizes = (width, height, width, height)
    for i, (box, kps) in enumerate(zip(people.xyxy.tolist(), people.keypoints.tolist())):
        track_id = None if ids is None or ids[i] < 0 else int(ids[i])
        yield {
            "schema": SCHEMA,
            "frame": int(frame_index),
            "time": round(float(time), TIME_DECIMALS),
            "track_id": track_id,
            "confidence": round(float(people.confidence[i]), CONF_DECIMALS),
            "frame_width": int(width),
            "frame_height": int(height),
            "box": {k: round(v, PX_DECIMALS) for k, v in zip(BOX_KEYS, box)},
            "box_norm": {k: round(v / s, NORM_DECIMALS) for k, v, s in zip(BOX_KEYS, box, sizes)},
            "keypoints": {
                name: {
                    "x": round(x, PX_DECIMALS),
                    "y": round(y, PX_DECIMALS),
                    "x_norm": round(x / width, NORM_DECIMALS),
                    "y_norm": round(y / height, NORM_DECIMALS),
                    "conf": round(c, CONF_DECIMALS),
                }
                for name, (x, y, c) in zip(KEYPOINT_NAMES, kps)
            },
        }


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def flatten(record: dict) -> dict:
    """A nested record as one CSV row (``track_id`` ``None`` becomes an empty cell)."""
    row = {k: record[k] for k in HEAD_COLUMNS}
    row["track_id"] = "" if record["track_id"] is None else record["track_id"]
    row.update(record["box"])
    row.update({f"{k}_norm": v for k, v in record["box_norm"].items()})
    for name, point in record["keypoints"].items():
        row.update({f"{name}_{k}": v for k, v in point.items()})
    return row


def unflatten(row: dict) -> dict:
    """A CSV row (values already numbers) as a nested record."""
    record = {"schema": SCHEMA, **{k: row[k] for k in HEAD_COLUMNS}}
    record["box"] = {k: row[k] for k in BOX_KEYS}
    record["box_norm"] = {k: row[f"{k}_norm"] for k in BOX_KEYS}
    record["keypoints"] = {name: {k: row[f"{name}_{k}"] for k in POINT_KEYS} for name in KEYPOINT_NAMES}
    return record


class KeypointWriter:
    """Write per-person keypoints to ``path`` (``.jsonl``/``.ndjson`` or ``.csv``), atomically.

    Use as a context manager: the file appears at ``path`` when the block ends normally; an
    exception inside the block (or :meth:`abort`) removes the temporary file instead. ``fps``
    gives the time of frames whose timestamp is unknown (``index / fps``).
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float | Fraction | None = None):
        self.path = Path(path)
        self.format = keypoints_format(self.path)
        for name, value in (("width", width), ("height", height)):
            if not _is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.width, self.height, self.fps = int(width), int(height), fps
        #: records written so far
        self.records = 0
        self.tmp = partial_path(self.path)
        try:
            self._file = open(self.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close/abort
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
        self._csv = None
        if self.format == "csv":
            self._csv = csv.DictWriter(self._file, CSV_COLUMNS, lineterminator="\n")
            self._csv.writeheader()

    def write(self, frame_index: int, time: float | None, people: Detections) -> None:
        """Append one record per person of this frame; ``time`` ``None``: ``frame_index / fps``."""
        if self._file.closed:
            raise ValueError(f"keypoints file {self.path} is already closed")
        if not _is_int(frame_index) or frame_index < 0:
            raise ValueError(f"frame_index must be an integer >= 0, got {frame_index!r}")
        if time is None:
            if self.fps is None:
                raise ValueError(f"frame {frame_index}: no timestamp and no fps to compute one")
            time = frame_index / self.fps
        if not math.isfinite(time):
            raise ValueError(f"frame {frame_index}: time must be a finite number of seconds, got {time!r}")
        for record in person_records(frame_index, float(time), people, self.width, self.height):
            if self._csv is not None:
                self._csv.writerow(flatten(record))
            else:
                self._file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
            self.records += 1

    def close(self) -> None:
        """Finish the file and rename it onto ``path`` (a no-op once closed or aborted)."""
        if self._file.closed:
            return
        try:
            self._file.close()
            publish(self.tmp, self.path)
        except OSError as e:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def abort(self) -> None:
        """Stop and remove the temporary file; a file already at ``path`` is left as it was."""
        self._file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> KeypointWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_keypoints(path: str | os.PathLike, validate: bool = True) -> Iterator[dict]:
    """The records of a keypoints file (either format) as nested dicts, one at a time.

    Raises :class:`SourceError` naming the file (and the line, for a bad record): at once for a
    missing file or an unsupported extension, while iterating for unreadable or invalid lines.
    """
    path = Path(path)
    fmt = keypoints_format(path, SourceError)
    if not path.is_file():
        raise SourceError(f"no such keypoints file: {path}")
    return _records(path, fmt, validate)


def _records(path: Path, fmt: str, validate: bool) -> Iterator[dict]:
    line = 0
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if fmt == "csv":
                rows = csv.reader(f)
                header = next(rows, None)
                line = 1
                if header is not None:
                    _check_header(header)
                for cells in rows:
                    line = rows.line_num
                    if not cells:
                        continue
                    if len(cells) != len(CSV_COLUMNS):
                        raise ValueError(f"{len(cells)} columns, expected {len(CSV_COLUMNS)}")
                    record = unflatten({k: _cell(k, v) for k, v in zip(CSV_COLUMNS, cells)})
                    if validate:
                        validate_record(record)
                    yield record
            else:
                for number, text in enumerate(f, 1):
                    line = number  # for the error message below
                    if not text.strip():
                        continue
                    try:
                        record = json.loads(text)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"not valid JSON ({e.msg}, column {e.colno})") from None
                    if validate:
                        validate_record(record)
                    yield record
    except ValueError as e:
        raise SourceError(f"{path}, line {line}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _check_header(header: list[str]) -> None:
    if tuple(header) == CSV_COLUMNS:
        return
    for i, (got, expected) in enumerate(zip(header, CSV_COLUMNS)):
        if got != expected:
            raise ValueError(f"not an anonymise keypoints CSV header: column {i + 1} is {got!r}, expected {expected!r}")
    raise ValueError(f"not an anonymise keypoints CSV header: {len(header)} columns, expected {len(CSV_COLUMNS)}")


def _cell(column: str, text: str) -> int | float | None:
    if column == "track_id" and text == "":
        return None
    try:
        return int(text) if column in INT_COLUMNS else float(text)
    except ValueError:
        kind = "an integer" if column in INT_COLUMNS else "a number"
        raise ValueError(f"{column}: expected {kind}, got {text!r}") from None


def validate_record(record: dict) -> None:
    """Raise ``ValueError`` naming the first field of ``record`` that does not follow the schema."""
    if not isinstance(record, dict):
        raise ValueError(f"record: expected an object, got {type(record).__name__}")
    if record.get("schema") != SCHEMA:
        raise ValueError(f"schema: expected {SCHEMA!r}, got {record.get('schema')!r}")
    _integer(record, "frame", "frame", low=0)
    _number(record, "time", "time")
    if record.get("track_id", 0) is not None:
        _integer(record, "track_id", "track_id", low=0)
    _number(record, "confidence", "confidence", unit=True)
    _integer(record, "frame_width", "frame_width", low=1)
    _integer(record, "frame_height", "frame_height", low=1)
    for group in ("box", "box_norm"):
        box = _object(record, group, group)
        for k in BOX_KEYS:
            _number(box, k, f"{group}.{k}")
    points = _object(record, "keypoints", "keypoints")
    extra = [str(n) for n in points if n not in KEYPOINT_NAMES]
    if extra:
        raise ValueError(f"keypoints: unexpected name(s) {', '.join(extra)} (expected the 17 COCO names)")
    for name in KEYPOINT_NAMES:
        point = _object(points, name, f"keypoints.{name}")
        for k in POINT_KEYS:
            _number(point, k, f"keypoints.{name}.{k}", unit=k == "conf")


def _object(parent: dict, key: str, field: str) -> dict:
    if key not in parent:
        raise ValueError(f"{field}: missing")
    if not isinstance(parent[key], dict):
        raise ValueError(f"{field}: expected an object, got {parent[key]!r}")
    return parent[key]


def _integer(parent: dict, key: str, field: str, low: int) -> None:
    if key not in parent:
        raise ValueError(f"{field}: missing")
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{field}: expected an integer >= {low}, got {value!r}")


def _number(parent: dict, key: str, field: str, unit: bool = False) -> None:
    if key not in parent:
        raise ValueError(f"{field}: missing")
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    if unit and not 0.0 <= value <= 1.0:
        raise ValueError(f"{field}: expected a number in [0, 1], got {value!r}")
