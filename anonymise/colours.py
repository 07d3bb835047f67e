"""Colours from the command line: names, ``#RRGGBB`` and BGR triples, checked once here."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: BGR colours by name for :func:`parse_colour`
COLOURS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (0, 0, 255),
    "green": (0, 255, 0),
    "blue": (255, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "yellow": (0, 255, 255),
    "cyan": (255, 255, 0),
    "magenta": (255, 0, 255),
}


def parse_colour(text: str) -> tuple[int, int, int]:
    """A BGR triple from a colour name (``COLOURS``) or ``#RRGGBB``, case-insensitive."""
    spec = text.strip().lower() if isinstance(text, str) else ""
    if spec in COLOURS:
        return COLOURS[spec]
    if re.fullmatch(r"#[0-9a-f]{6}", spec):
        return int(spec[5:7], 16), int(spec[3:5], 16), int(spec[1:3], 16)
    raise ValueError(f"colour: expected a colour name ({', '.join(COLOURS)}) or #RRGGBB, got {text!r}")


def bgr(colour: Sequence[int] | str) -> tuple[int, int, int]:
    """A checked BGR triple from a colour name, ``#RRGGBB`` or three 0-255 integers."""
    if isinstance(colour, str):
        return parse_colour(colour)
    try:
        values = tuple(int(c) for c in colour)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(0 <= c <= 255 for c in values):
        raise ValueError(f"colour: expected a BGR triple of 0-255 integers, got {colour!r}")
    return values
