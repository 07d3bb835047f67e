"""The detector protocol: what the stages may call, and a plain callable brought up to it."""

from __future__ import annotations

import numpy as np

from anonymise import Anonymiser, Config
from anonymise.detections import Detections, FrameDetections
from anonymise.framestream import reconfigured
from anonymise.person_detector import PersonDetector, Plain, person_detector


def _one_person(frames, imgsz=None, **plan):
    box = Detections(np.array([[2, 2, 10, 20]], np.float32), np.array([0.9], np.float32), np.zeros(1, np.int64))
    return [FrameDetections(box, Detections.empty()) for _ in frames]


def test_a_plain_callable_gets_the_plain_answers():
    detector = person_detector(_one_person)
    assert isinstance(detector, Plain) and isinstance(detector, PersonDetector)
    assert detector.wrapped is _one_person and person_detector(detector) is detector, "wrapped once"
    assert (detector.config, detector.device, detector.batch, detector.multiscale) == (None, "cpu", None, False)
    assert detector.windows(1280, 720) == [] and detector.resolved() == {} and detector.look_shares_models()
    with detector.calibrations_stopped():
        pass
    # its second look is its own call on each crop, at the look's size: the boxes where no skeleton is
    found = detector.look([np.zeros((40, 40, 3), np.uint8)] * 3, 320)
    assert [len(f) for f in found] == [1, 1, 1]
    assert reconfigured(detector, preset="thorough") is detector, "nothing to change"


def test_a_synthetic_detectors_own_members_are_used_and_its_settings_changed_on_a_copy():
    class Own:
        multiscale = True
        batch = 4
        device = "cpu"

        def __init__(self):
            self.config = Config()
            self.looked = []

        def __call__(self, frames, imgsz=None, plan=None):
            return _one_person(frames)

        def look(self, crops, imgsz):
            self.looked.append(imgsz)
            return [Detections.empty() for _ in crops]

        def windows(self, width, height):
            return [(0, 0, width // 2, height)]

    own = Own()
    detector = person_detector(own)
    assert detector.multiscale and detector.batch == 4 and detector.windows(100, 50) == [(0, 0, 50, 50)]
    detector.look([np.zeros((8, 8, 3), np.uint8)], 320)
    assert own.looked == [320]
    photo = reconfigured(detector, preset="thorough")
    assert photo.config.preset == "thorough" and photo.wrapped.config.preset == "thorough"
    assert own.config.preset == "balanced" and detector.config.preset == "balanced", "the run's own keep theirs"
    assert Anonymiser(Config(), detector=own).batch == 4


def test_the_models_are_a_person_detector_as_they_are():
    from anonymise.detect import Detector

    models = Detector(Config(backend="torch", imgsz=320, device="cpu", second_look=False))
    assert isinstance(models, PersonDetector) and person_detector(models) is models
    assert Anonymiser(Config(), detector=models).detector is models
