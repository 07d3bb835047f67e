"""The whole-clip background of a file (anonymise.scene): the fill is the scene behind the person,
seen before or after, matched to the frame's light; the wash only where the clip never shows it."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import MAGENTA, ColourDetector, is_person_colour, person_box, scene, synthetic_frames

from anonymise import Anonymiser, Config
from anonymise import scene as clip_scene
from anonymise.io.video import Frame


def _run(frames: list[np.ndarray], detector=None, **config) -> list:
    anon = Anonymiser(Config(mode="bbox", pose=False, **config), detector=detector or ColourDetector())
    copies = [Frame(f, i) for i, f in enumerate(frames)]
    return list(anon.anonymise_clip(copies, copies, fps=25.0, frames=len(frames)))


def _inner(box, shrink: int = 0):
    x1, y1, x2, y2 = box
    return np.s_[y1 + shrink : y2 - shrink, x1 + shrink : x2 - shrink]


#: a slow walker: the scene behind their first steps is seen free only after the file look-ahead
SLOW = {"n": 60, "speed": 2}


def test_a_walker_is_filled_with_the_scene_in_every_frame_even_before_it_was_first_seen():
    frames = synthetic_frames(**SLOW)
    truth = scene()
    results = _run(frames)
    assert len(results) == len(frames)
    for t, result in enumerate(results):
        out = result.image
        assert not is_person_colour(out).any(), f"frame {t}: person pixels left"
        where = _inner(person_box(t, speed=SLOW["speed"]))
        error = np.abs(out[where].astype(int) - truth[where].astype(int)).max(axis=-1)
        # frame 0's person stands where nobody has seen the scene yet: the clip shows it later
        assert error.mean() <= 2 and np.percentile(error, 99) <= 8, f"frame {t}: fill {error.mean():.1f} off the scene"
        # and nothing else changed
        assert np.abs(out.astype(int) - truth.astype(int)).max() <= 8, f"frame {t}"


def test_the_running_model_alone_washes_the_first_frames_where_the_clip_shows_the_scene_later():
    """What the two passes add: one pass (a camera) has not seen the scene behind frame 0's walker."""
    frames = synthetic_frames(**SLOW)
    truth = scene()
    anon = Anonymiser(Config(mode="bbox", pose=False), detector=ColourDetector())
    out = next(iter(anon.anonymise_frames([Frame(f, i) for i, f in enumerate(frames)]))).image
    where = _inner(person_box(0, speed=SLOW["speed"]))
    assert np.abs(out[where].astype(int) - truth[where].astype(int)).max(axis=-1).mean() > 10


def test_a_person_who_never_leaves_gets_the_tinted_wash_and_no_pixel_of_them():
    frames = synthetic_frames(20, speed=0)
    truth = scene()
    for t, result in enumerate(_run(frames)):
        out = result.image
        assert not is_person_colour(out).any(), f"frame {t}"
        where = _inner(person_box(0), 4)
        # a wash of the colours around, not the texture that was never seen
        assert out[where].astype(float).std(axis=(0, 1)).max() < truth[where].astype(float).std(axis=(0, 1)).max()
        far = np.s_[:, 100:]  # well away from the person: the input's
        assert np.array_equal(out[far], frames[t][far])


def test_an_exposure_change_corrects_the_known_scene_instead_of_discarding_it():
    n, change = 40, 20
    base = scene().astype(np.int16)
    frames, truths = [], []
    for t in range(n):
        lit = np.clip(base + (25 if t >= change else 0), 0, 255).astype(np.uint8)
        frame = lit.copy()
        x1, y1, x2, y2 = person_box(t, speed=3)
        frame[y1:y2, x1:x2] = MAGENTA
        frames.append(frame)
        truths.append(lit)
    results = _run(frames)
    for t in range(change + 2, n):
        out, truth = results[t].image, truths[t]
        where = _inner(person_box(t, speed=3))
        error = np.abs(out[where].astype(int) - truth[where].astype(int)).max(axis=-1)
        assert error.mean() <= 4, f"frame {t}: fill {error.mean():.1f} levels off the brightened scene"


def test_the_temporary_files_hold_no_person_pixel_and_are_removed(monkeypatch):
    frames = synthetic_frames(30)
    folders: list[Path] = []
    checked = []
    made = clip_scene.ClipScene.__init__

    def spy(self, folder, *args):
        made(self, folder, *args)
        folders.append(Path(folder))
        for path in sorted(Path(folder).iterdir()):
            if path.name.startswith(("c", "f")):
                value = clip_scene._load(path)["value"]
                assert not is_person_colour(value, 60).any(), f"{path.name} holds a person's pixels"
                checked.append(path.name)
            else:
                data = path.read_bytes()
                assert bytes(MAGENTA) not in data and bytes(MAGENTA[::-1]) not in data

    monkeypatch.setattr(clip_scene.ClipScene, "__init__", spy)
    _run(frames)
    assert folders and len(checked) >= 4, "the checkpoints were looked at"
    assert not folders[0].exists(), "the temporary folder is removed"


def test_the_temporary_folder_is_removed_when_the_run_is_stopped(monkeypatch, tmp_path):
    folders: list[Path] = []
    made = clip_scene.Recorder.__init__

    def spy(self, folder, every, fps):
        made(self, folder, every, fps)
        folders.append(Path(folder))

    monkeypatch.setattr(clip_scene.Recorder, "__init__", spy)
    frames = synthetic_frames(30)
    anon = Anonymiser(Config(mode="bbox", pose=False), detector=ColourDetector())
    copies = [Frame(f, i) for i, f in enumerate(frames)]
    results = anon.anonymise_clip(copies, copies, fps=25.0)
    next(results)
    assert folders[0].exists()
    results.close()
    assert not folders[0].exists()


def _walker(n: int, height: int = 240, width: int = 320):
    """Frames made on the fly: a person walking to and fro across a textured scene."""
    background = scene(height, width)
    for t in range(n):
        frame = background.copy()
        x = 10 + (5 * t) % 260
        frame[60:140, x : x + 40] = MAGENTA
        yield Frame(frame, t)


def _peak(n: int) -> int:
    anon = Anonymiser(Config(mode="bbox", pose=False), detector=ColourDetector())
    tracemalloc.start()
    try:
        for _ in anon.anonymise_clip(_walker(n), _walker(n), fps=25.0, frames=n):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_clip_length():
    short, long = _peak(40), _peak(400)
    assert long < 1.3 * short, f"peak {short / 2**20:.1f} MiB for 40 frames, {long / 2**20:.1f} MiB for 400"


def test_a_manual_box_over_a_missed_person_is_filled_with_the_scene(tmp_path):
    """A person the detector never sees (cyan) stands in frames 10-19; a reviewer's box covers them."""
    truth = scene()
    cyan = np.array([255, 255, 0], np.uint8)
    frames = []
    for t in range(30):
        frame = truth.copy()
        if 10 <= t < 20:
            frame[30:90, 60:90] = cyan
        frames.append(frame)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"version": 1, "masks": [{"box": [56, 26, 94, 94], "start": 10, "end": 19}]}))
    results = _run(frames, masks=str(manifest))
    for t in range(10, 20):
        out = results[t].image
        assert not (np.abs(out.astype(int) - cyan.astype(int)).max(axis=-1) <= 40).any(), f"frame {t}"
        where = np.s_[26:94, 56:94]
        error = np.abs(out[where].astype(int) - truth[where].astype(int)).max(axis=-1)
        assert error.mean() <= 2, f"frame {t}: the manual box shows {error.mean():.1f} levels off the scene"


def test_fit_light_finds_a_gain_and_offset_despite_something_that_moved():
    before = scene()
    now = np.clip(before.astype(np.float32) * 1.1 + 12, 0, 255).astype(np.uint8)
    now[10:40, 10:40] = MAGENTA  # someone walked in: not the light
    free = np.ones(before.shape[:2], bool)
    gain, offset = clip_scene.fit_light(before, now, free)
    assert np.allclose(gain, 1.1, atol=0.02) and np.allclose(offset, 12, atol=2)
    gain, offset = clip_scene.fit_light(before, now, np.zeros_like(free))
    assert np.array_equal(gain, np.ones(3)) and np.array_equal(offset, np.zeros(3)), "too few free pixels"


@pytest.mark.parametrize(("fps", "frames", "every"), [(25.0, 100, 25), (30.0, None, 30), (25.0, 100_000, 250)])
def test_checkpoints_are_spaced_so_a_long_clip_keeps_few(fps, frames, every):
    assert clip_scene.spacing(fps, frames) == every


def test_a_person_learned_while_undetected_never_comes_back_as_fill_from_either_side():
    """Undetected and still for 15 frames, the model learns them; once detected, they walk. Neither the
    past nor the future of the whole-clip background may bring that ghost back."""
    base = scene()
    frames = []
    for t in range(40):
        frame = base.copy()
        x = 10 + 4 * max(t - 15, 0)
        frame[40:80, x : x + 20] = MAGENTA
        frames.append(frame)
    results = _run(frames, detector=ColourDetector(blind_on=set(range(1, 16))), hold=5)
    assert [t for t, r in enumerate(results) if t >= 15 and is_person_colour(r.image, 60).sum() > 5] == []


def test_what_may_be_a_new_person_is_their_place_and_their_colours_not_the_scene_beside_them():
    learned = scene()
    frame = learned.copy()
    frame[40:80, 60:80] = MAGENTA
    person = np.zeros(learned.shape[:2], bool)
    person[40:80, 60:80] = True
    ghost = learned.copy()
    ghost[40:80, 20:40] = MAGENTA  # where they stood, undetected, before
    like = clip_scene.colours_like(ghost, frame, person)
    assert like[40:80, 60:80].all(), "where they are"
    assert like[40:80, 20:40].all(), "their colours where they stood"
    assert like.mean() < 0.15, "the scene around is not them"


class _SeesAGhost(ColourDetector):
    """The colour detector (with keypoints), plus a faint 'person' over the empty scene in every 5th
    full-frame call (as a deep sweep's false find)."""

    def __call__(self, frames, imgsz=None):
        from anonymise.detect import FrameDetections
        from anonymise.detections import Detections

        out = []
        for found in super().__call__(frames, imgsz):
            if imgsz is not None or self.frames_seen % 5:
                out.append(found)
                continue
            ghost = np.zeros((1, 17, 3), np.float32)
            ghost[0, :, 0], ghost[0, :, 1], ghost[0, :, 2] = 130, np.linspace(10, 50, 17), 0.9
            fake = Detections(np.array([[120, 10, 140, 50]], np.float32), [0.15], [0], keypoints=ghost)
            people = Detections.concat([found.people, fake]) if len(found.people) else fake
            out.append(FrameDetections(people, people))
        return out


@pytest.mark.parametrize("two_passes", [True, False])
def test_a_skeleton_is_drawn_only_where_someone_is(two_passes):
    frames = synthetic_frames(20)
    anon = Anonymiser(Config(mode="bbox"), detector=_SeesAGhost(keypoints=True))
    copies = [Frame(f, i) for i, f in enumerate(frames)]
    run = anon.anonymise_clip(copies, copies, fps=25.0) if two_passes else anon.anonymise_frames(copies)
    results = list(run)
    for t, result in enumerate(results[5:], 5):
        boxes = result.poses.xyxy
        assert len(boxes) == 1 and boxes[0][0] < 100, f"frame {t}: the skeleton over the empty scene was kept"
        assert not is_person_colour(result.image).any()
    assert sum(r.debug is None for r in results) == len(results)
