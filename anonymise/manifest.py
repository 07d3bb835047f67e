"""The redaction manifest: boxes a reviewer drew, masked in every frame of their range.

A person the detector missed, a name on a sign: the studio's review page (``anonymise serve``)
saves such corrections as a manifest, and ``--masks manifest.json`` applies the same file on
the command line. Schema (version 1; see docs/manifest.md)::

    {
      "version": 1,
      "video": "clip.mp4",                 # optional: the input it was drawn on (informational)
      "size": [480, 360],                  # optional: the frame size the boxes are in (checked)
      "masks": [
        {"box": [x0, y0, x1, y1],          # pixels of the input frame
         "start": 10, "end": 50,           # frame indices, both included; "end" omitted: to the end
         "label": "missed person"}         # optional
      ],
      "audio": [                           # optional: spans of the sound muted (or beeped), in seconds
        {"start": 4.2, "end": 6.0,         # of the output, both given
         "label": "a name said"}           # optional
      ]
    }

A manual mask is always masked, whatever the detector says, and the background never learns
under it (the stream adds it to the frame's mask before the background's update). A manual audio
span is redacted whatever the speech detector says, with ``--audio mute-speech`` or ``beep-speech``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

VERSION = 1


@dataclass(frozen=True)
class ManualMask:
    box: tuple[float, float, float, float]
    start: int
    end: int | None = None
    label: str = ""

    def covers(self, t: int) -> bool:
        return self.start <= t and (self.end is None or t <= self.end)

    def as_dict(self) -> dict:
        item = {"box": [round(v, 1) for v in self.box], "start": self.start, "end": self.end}
        if self.label:
            item["label"] = self.label
        return item


@dataclass(frozen=True)
class AudioSpan:
    """``start`` to ``end`` seconds of the sound, redacted by hand."""

    start: float
    end: float
    label: str = ""

    def as_dict(self) -> dict:
        item = {"start": round(self.start, 3), "end": round(self.end, 3)}
        if self.label:
            item["label"] = self.label
        return item


@dataclass(frozen=True)
class Manifest:
    masks: tuple[ManualMask, ...] = ()
    size: tuple[int, int] | None = None
    video: str | None = None
    audio: tuple[AudioSpan, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read and check a manifest file (one clear :class:`ConfigError` for anything wrong)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"--masks: no such file: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"--masks {path}: not a JSON manifest ({e})") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data, where: str = "manifest") -> Manifest:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a manifest is a JSON object with a 'masks' list")
        if data.get("version", VERSION) != VERSION:
            raise ConfigError(f"{where}: manifest version {data.get('version')!r} is not supported (use {VERSION})")
        items = data.get("masks", [])
        if not isinstance(items, list):
            raise ConfigError(f"{where}: 'masks' must be a list")
        size = data.get("size")
        if size is not None:
            if not (isinstance(size, list) and len(size) == 2 and all(_whole(v) and v > 0 for v in size)):
                raise ConfigError(f"{where}: 'size' must be [width, height], got {size!r}")
            size = (int(size[0]), int(size[1]))
        masks = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ConfigError(f"{where}: masks[{i}] must be an object with 'box' and 'start'")
            box = item.get("box")
            if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
                raise ConfigError(f"{where}: masks[{i}].box must be [x0, y0, x1, y1], got {box!r}")
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 <= x0 or y1 <= y0:
                raise ConfigError(f"{where}: masks[{i}].box must have x1 > x0 and y1 > y0, got {box!r}")
            start, end = item.get("start", 0), item.get("end")
            if not (_whole(start) and start >= 0) or not (end is None or (_whole(end) and end >= start)):
                raise ConfigError(
                    f"{where}: masks[{i}] needs frames 0 <= start <= end, got start={start!r} end={end!r}"
                )
            label = item.get("label", "")
            masks.append(ManualMask((x0, y0, x1, y1), int(start), None if end is None else int(end), str(label)))
        spans = data.get("audio", [])
        if not isinstance(spans, list):
            raise ConfigError(f"{where}: 'audio' must be a list")
        audio = []
        for i, item in enumerate(spans):
            start, end = (item.get("start"), item.get("end")) if isinstance(item, dict) else (None, None)
            if not (_number(start) and _number(end) and 0 <= start < end):
                raise ConfigError(f"{where}: audio[{i}] needs seconds 0 <= start < end, got {item!r}")
            audio.append(AudioSpan(float(start), float(end), str(item.get("label", ""))))
        video = data.get("video")
        return cls(tuple(masks), size, None if video is None else str(video), tuple(audio))

    def check_size(self, width: int, height: int, where: str) -> None:
        if self.size is not None and self.size != (width, height):
            raise ConfigError(
                f"--masks: the manifest was drawn on {self.size[0]}x{self.size[1]} frames, {where} is {width}x{height}"
            )

    def boxes(self, t: int) -> np.ndarray:
        """(K, 4) float32 boxes to mask in frame ``t``."""
        return np.asarray([m.box for m in self.masks if m.covers(t)], np.float32).reshape(-1, 4)

    def as_dict(self) -> dict:
        data: dict = {"version": VERSION}
        if self.video is not None:
            data["video"] = self.video
        if self.size is not None:
            data["size"] = list(self.size)
        data["masks"] = [m.as_dict() for m in self.masks]
        if self.audio:
            data["audio"] = [a.as_dict() for a in self.audio]
        return data

    def audio_spans(self) -> list:
        """The manual audio spans as :class:`anonymise.speech.Span` s (``source="manual"``)."""
        from .speech import Span

        return [Span(a.start, a.end, a.label or "manual", "manual") for a in self.audio]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
