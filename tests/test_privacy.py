"""Privacy at every scale, on synthetic scenes where the answer is known: whole bodies from
keypoints, foreground completion, and a background that cannot learn a person."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MAGENTA, is_person_colour, scene

from anonymise import Anonymiser, Config
from anonymise.background import BackgroundModel
from anonymise.detect import FrameDetections
from anonymise.detections import Detections
from anonymise.io.video import Frame
from anonymise.masks import body_boxes, body_mask

#: a skin tone for the synthetic face (far from MAGENTA and from the scene's green-heavy texture)
FACE = np.array([90, 140, 230], np.uint8)  # BGR


def is_face_colour(image: np.ndarray, tolerance: int = 30) -> np.ndarray:
    return np.all(np.abs(image.astype(int) - FACE.astype(int)) <= tolerance, axis=-1)


def standing_keypoints(x: float, top: float, height: float, legs: bool = True) -> np.ndarray:
    """COCO-17 keypoints of a person standing upright, ``height`` px from crown to soles."""
    h = height
    points = {
        0: (x, top + 0.08 * h),
        1: (x - 0.02 * h, top + 0.06 * h),
        2: (x + 0.02 * h, top + 0.06 * h),
        3: (x - 0.05 * h, top + 0.07 * h),
        4: (x + 0.05 * h, top + 0.07 * h),
        5: (x - 0.12 * h, top + 0.19 * h),
        6: (x + 0.12 * h, top + 0.19 * h),
        7: (x - 0.15 * h, top + 0.33 * h),
        8: (x + 0.15 * h, top + 0.33 * h),
        9: (x - 0.16 * h, top + 0.46 * h),
        10: (x + 0.16 * h, top + 0.46 * h),
        11: (x - 0.07 * h, top + 0.50 * h),
        12: (x + 0.07 * h, top + 0.50 * h),
        13: (x - 0.07 * h, top + 0.72 * h),
        14: (x + 0.07 * h, top + 0.72 * h),
        15: (x - 0.07 * h, top + 0.94 * h),
        16: (x + 0.07 * h, top + 0.94 * h),
    }
    kp = np.zeros((17, 3), np.float32)
    for i, (px, py) in points.items():
        kp[i] = (px, py, 0.9)
    if not legs:
        kp[13:, 2] = 0.01  # knees and ankles not seen
    return kp


def draw_person(image: np.ndarray, x: float, top: float, height: float, colour=MAGENTA, face=FACE) -> np.ndarray:
    """A stick-figure-shaped person: head (``face``), torso, arms and legs down to the soles."""
    import cv2

    out = image.copy()
    h = height
    c = tuple(int(v) for v in colour)
    cv2.rectangle(
        out, (int(x - 0.12 * h), int(top + 0.17 * h)), (int(x + 0.12 * h), int(top + 0.52 * h)), c, -1
    )  # torso
    for side in (-1, 1):
        cv2.line(
            out,
            (int(x + side * 0.12 * h), int(top + 0.19 * h)),
            (int(x + side * 0.17 * h), int(top + 0.50 * h)),
            c,
            max(int(0.04 * h), 1),
        )
        cv2.line(
            out,
            (int(x + side * 0.07 * h), int(top + 0.50 * h)),
            (int(x + side * 0.07 * h), int(top + 0.97 * h)),
            c,
            max(int(0.05 * h), 1),
        )
        cv2.line(
            out,
            (int(x + side * 0.07 * h), int(top + 0.97 * h)),
            (int(x + side * 0.11 * h), int(top + 0.995 * h)),
            c,
            max(int(0.03 * h), 1),
        )
    cv2.ellipse(
        out, (int(x), int(top + 0.08 * h)), (int(0.06 * h), int(0.08 * h)), 0, 0, 360, tuple(int(v) for v in face), -1
    )
    return out


class ScriptedDetector:
    """Returns what a script says for each frame index: ``script(t, frame) -> FrameDetections``."""

    def __init__(self, script):
        self.script = script
        self.t = 0
        self.batch = 1
        self.device = "cpu"

    def __call__(self, frames, imgsz=None):
        out = []
        for frame in frames:
            if imgsz is not None:  # a second look on a crop: sees nothing more
                out.append(FrameDetections(Detections.empty(), Detections.empty()))
                continue
            out.append(self.script(self.t, frame))
            self.t += 1
        return out


def run(detector, frames, lookahead=10, **config):
    anon = Anonymiser(Config(**config), detector=detector)
    stream = anon.stream(lookahead)
    return [out for _, out in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)], stream


# -- whole bodies from keypoints -------------------------------------------------------------------------


def test_body_boxes_reach_the_feet_crown_and_hands():
    kp = standing_keypoints(100, 20, 200)[None]
    box = np.array([[80, 40, 120, 180]], np.float32)  # cut short: below the eyes, above the ankles
    ((x1, y1, x2, y2),) = body_boxes(kp, box, (300, 300))
    assert y1 <= 20, f"the crown (y=20) is above the box top {y1}"
    assert y2 >= 220, f"the soles (y=220) are below the box bottom {y2}"
    wrists = kp[0, 9:11, 0]
    assert x1 < wrists.min() - 5 and x2 > wrists.max() + 5, "the hands reach beyond the wrists"


def test_a_box_cut_at_the_thighs_is_extended_to_where_the_legs_end():
    kp = standing_keypoints(100, 20, 200, legs=False)[None]  # the model saw nothing below the hips
    box = np.array([[75, 20, 125, 130]], np.float32)  # head to thigh
    ((_, _, _, y2),) = body_boxes(kp, box, (300, 300))
    assert y2 >= 220, f"the legs were not drawn on to the feet: box ends at {y2}"
    clipped = body_boxes(kp, box, (180, 300))
    assert clipped[0, 3] == 180, "the extension is clipped to the frame"


def test_body_mask_covers_the_drawn_person():
    image = draw_person(np.zeros((260, 200, 3), np.uint8), 100, 20, 200)
    person = image.any(axis=-1)
    mask = body_mask(standing_keypoints(100, 20, 200)[None], np.array([[76, 20, 124, 220]]), (260, 200)) > 0
    assert (mask | ~person).all(), f"{np.count_nonzero(person & ~mask)} person pixels outside the body mask"


@pytest.mark.parametrize("mode", ["bbox", "seg"])
def test_a_frame_filling_person_split_into_partial_boxes_is_masked_head_to_feet(mode):
    """The nano pose model, enlarged 2x, splits a person who fills the frame into a head-to-thigh box and
    fragments; the feet are in no box. Their keypoints still say where the body goes."""
    bg = scene(240, 160)
    frames = [draw_person(bg, 80, 10, 225) for _ in range(12)]
    kp = standing_keypoints(80, 10, 225, legs=False)

    def script(t, frame):
        boxes = np.array([[50, 10, 110, 130], [60, 140, 100, 190]], np.float32)  # head to thigh, a knee fragment
        keypoints = np.stack([kp, np.zeros((17, 3), np.float32)])
        poses = Detections(boxes, [0.6, 0.3], [0, 0], keypoints=keypoints)
        if mode == "bbox":
            return FrameDetections(poses, poses)
        masks = np.zeros((2, *frame.shape[:2]), bool)
        masks[0, 10:130, 50:110] = is_person_colour(frame[10:130, 50:110], 10) | is_face_colour(frame[10:130, 50:110])
        return FrameDetections(Detections(boxes, [0.6, 0.3], [0, 0], mask=masks), poses)

    out, _ = run(ScriptedDetector(script), frames, lookahead=5, mode=mode, feather=0, dilate=0, inflate=0, pose=False)
    for i, o in enumerate(out):
        assert not is_person_colour(o, 30).any(), (
            f"frame {i}: {np.count_nonzero(is_person_colour(o, 30))} person pixels left"
        )
        assert not is_face_colour(o).any(), f"frame {i}: face pixels left"


# -- foreground completion -------------------------------------------------------------------------------


def test_a_limb_outside_the_box_joins_the_mask():
    """A person whose detected box leaves out an outstretched arm: the arm touches the mask and is not
    the empty scene the background learned, so it is masked too."""
    bg = scene(120, 160)
    person = bg.copy()
    person[40:100, 60:80] = MAGENTA  # the body, 60 px tall: the box
    person[55:59, 80:93] = MAGENTA  # an arm, 13 px beyond the box (the reach is 0.25 x 60 = 15 px)
    frames = [bg] * 8 + [person] * 12

    def script(t, frame):
        if t < 8:
            return FrameDetections(Detections.empty(), Detections.empty())
        box = Detections(np.array([[60, 40, 80, 100]], np.float32), [0.9], [0])
        return FrameDetections(box, Detections.empty())

    # tracking (its back-fill grows boxes) and the motion guard off: completion alone must cover the arm
    out, stream = run(
        ScriptedDetector(script), frames, lookahead=4, feather=0, dilate=0, pose=False, track=False, fail_closed=False
    )
    assert stream.counts.completed > 0
    for i, o in enumerate(out[8:], 8):
        assert not is_person_colour(o).any(), f"frame {i}: the arm is visible"
    far = np.ones(bg.shape[:2], bool)
    far[20:120, 40:110] = False
    assert (out[-1][far] == person[far]).all(), "pixels far from the person changed"


def test_unknown_background_next_to_a_person_is_masked():
    """No empty frame was ever seen: what touches the person, within a margin, is not vouched for."""
    bg = scene(120, 160)
    person = bg.copy()
    person[40:100, 60:80] = MAGENTA
    person[44:48, 80:86] = MAGENTA  # a hand 6 px out: inside the 0.15 x 60 = 9 px margin

    def script(t, frame):
        return FrameDetections(Detections(np.array([[60, 40, 80, 100]], np.float32), [0.9], [0]), Detections.empty())

    out, _ = run(
        ScriptedDetector(script), [person] * 6, lookahead=0, feather=0, dilate=0, pose=False, fail_closed=False
    )
    for i, o in enumerate(out):
        assert not is_person_colour(o).any(), f"frame {i}: the hand is visible"


# -- a background that cannot learn a person -------------------------------------------------------------


def test_background_never_shows_a_head_missed_in_the_first_frames():
    """A close-up: the person never leaves. For 10 frames the detector's box leaves out the head (a
    fragmented detection), so the pixels above the box look like free background; then the whole
    person is found. The fill must never paint the head back, in any later frame or in the background."""
    bg = scene(200, 160)
    frame = draw_person(bg, 80, 20, 170)
    frames = [frame] * 40
    body = np.array([[50, 55, 110, 190]], np.float32)  # shoulders down: the head (y 20-48) is left out
    whole = np.array([[50, 20, 110, 190]], np.float32)

    def script(t, f):
        boxes = body if t < 10 else whole
        return FrameDetections(Detections(boxes, [0.9], [0]), Detections.empty())

    anon = Anonymiser(
        Config(pose=False), detector=ScriptedDetector(script)
    )  # the default dilate covers the arms' edges
    stream = anon.stream(lookahead=5)
    outputs = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    for i, o in enumerate(outputs[10:], 10):
        assert not is_face_colour(o).any(), (
            f"frame {i}: the fill shows {np.count_nonzero(is_face_colour(o))} face pixels"
        )
        assert not is_person_colour(o).any(), f"frame {i}: body pixels"
    assert not is_face_colour(stream.background.image()).any(), "the background holds the face"


def test_background_learns_only_pixels_free_and_still_for_several_frames():
    model = BackgroundModel(1.0, stable=3)
    a = np.full((4, 4, 3), 50, np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    free = np.zeros((4, 4), np.uint8)
    model.update(a, free)
    model.update(a, free)
    assert not model.seen.any(), "learned after two frames"
    model.update(a, free)
    assert model.seen.all()
    flicker = BackgroundModel(1.0, stable=3)
    for image in (a, b, a, b, a):
        flicker.update(image, free)
    assert not flicker.seen.any(), "learned a pixel that never stood still"
    excluded = BackgroundModel(1.0, stable=1)
    margin = np.zeros((4, 4), bool)
    margin[:, :2] = True
    excluded.update(a, free, exclude=margin)
    assert not excluded.seen[:, :2].any() and excluded.seen[:, 2:].all()


def test_forget_same_forgets_only_suspect_pixels_that_look_like_the_person():
    model = BackgroundModel(1.0)
    head = np.full((6, 6, 3), 120, np.uint8)
    near = np.zeros((6, 6), bool)
    near[:, :3] = True  # learned beside a person: suspect
    model.update(head, np.zeros((6, 6), np.uint8), near=near)
    on_it = np.ones((6, 6), bool)
    assert model.forget_same(head, on_it) == 18
    assert not model.seen[:, :3].any() and model.seen[:, 3:].all(), "trusted pixels were forgotten"
    other = BackgroundModel(1.0)
    other.update(head, np.zeros((6, 6), np.uint8), near=np.ones((6, 6), bool))
    assert other.forget_same(np.full((6, 6, 3), 20, np.uint8), on_it) == 0, "a person unlike the background is not it"
    scene_first = BackgroundModel(0.05)
    scene_first.update(head, np.zeros((6, 6), np.uint8), near=np.zeros((6, 6), bool))  # the empty scene, nobody near
    scene_first.update(head, np.zeros((6, 6), np.uint8), near=np.ones((6, 6), bool))  # then updated beside someone
    assert scene_first.forget_same(head, on_it) == 0, "the empty scene seen first was forgotten under a box"


@pytest.mark.slow
def test_a_photo_of_pedestrians_at_the_defaults_leaves_nobody_a_stronger_finder_sees(pedestrians, tmp_path):
    """Frame 300 of pedestrians.mp4 as a photo: at the defaults (before, the balanced policy's
    savings left the two walkers on the left whole), the pose model at 1280 px finds nobody in the
    output where it found people in the input."""
    from anonymise.detect import Detector
    from anonymise.detections import box_iou
    from anonymise.io.images import read_image, write_image
    from anonymise.io.video import VideoReader

    with VideoReader(pedestrians, audio=False) as reader:
        frame = next(f for i, f in enumerate(reader) if i == 300)
    src, dst = tmp_path / "photo.png", tmp_path / "out.png"
    write_image(src, frame.image)
    Anonymiser(Config(pose=False)).process_image(src, dst)
    reference = Detector(Config(imgsz=1280, conf=0.25, pose=False, track=False, backend="torch", tiles="off"))
    (before,), (after,) = reference([frame.image]), reference([read_image(dst)])
    assert len(before.people) >= 4, "the reference should see the walkers in the input"
    if len(after.people):
        left = box_iou(before.people.xyxy, after.people.xyxy).max(axis=0) >= 0.3
        assert not left.any(), f"{int(left.sum())} of {len(before.people)} people left in the photo"
