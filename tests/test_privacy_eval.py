"""The pixel-truth metric of scripts/privacy_eval.py, on synthetic frames where the answer is known."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def metric():
    spec = importlib.util.spec_from_file_location("privacy_eval", ROOT / "scripts" / "privacy_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["privacy_eval"] = module
    spec.loader.exec_module(module)
    return module


def test_person_pixels_are_in_a_box_and_unlike_the_empty_scene(metric):
    empty = np.full((50, 60, 3), 100, np.uint8)
    frame = empty.copy()
    frame[10:30, 20:30] = 200  # the person: 200 pixels
    frame[40:45, 50:55] = 200  # a change outside every box (not a person)
    person = metric.person_pixels(frame, empty, np.array([[18, 8, 32, 32]]), grow=0.0)
    assert person.sum() == 200 and person[10:30, 20:30].all()


def test_leaked_counts_person_pixels_the_output_left_unchanged(metric):
    frame = np.full((20, 20, 3), 50, np.uint8)
    where = np.zeros((20, 20), bool)
    where[5:15, 5:15] = True  # 100 person pixels
    out = frame.copy()
    out[5:15, 5:10] = 200  # half replaced
    out[5:15, 10:12] = 50 + metric.LEAK_TOL  # within the tolerance: unchanged
    leak = metric.leaked(frame, out, where)
    assert leak.sum() == 50
    assert not leak[:, :5].any(), "a pixel outside the person counted"


def test_core_is_the_box_shrunk_by_15_percent_per_side(metric):
    core = metric.core_pixels(np.array([[0, 0, 100, 200]]), (300, 300))
    ys, xs = np.nonzero(core)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (15, 85, 30, 170)


def test_leak_summary(metric):
    row = metric.leak_summary([0, 3, 10, 0], [100, 100, 100, 0])
    assert row["leak %"] == pytest.approx(13 / 300 * 100)
    assert row["frames > 5%"] == 1 and row["frames > 2%"] == 2
    assert row["worst frame"] == 2 and row["worst %"] == pytest.approx(10.0)
    assert row["frames scored"] == 3


def test_a_closeup_reference_drops_a_weak_second_box(metric):
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32)
    kept = metric.closeup_people(boxes, np.array([0.9, 0.5, 0.7], np.float32))
    assert kept.tolist() == boxes[[0, 2]].tolist()
