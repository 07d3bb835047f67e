"""The detector on real weights (the bundled pose model) and on an architecture-only seg model."""

import numpy as np
import pytest
from conftest import read_frames

from anonymise import Config, ConfigError, ModelError
from anonymise.callplan import call_plan
from anonymise.detect import weights as models
from anonymise.detections import box_iou

detect = pytest.importorskip("anonymise.detect")
pytestmark = pytest.mark.slow


def _plan(detector, frame, **choices):
    """The plan of a call on ``frame`` with the policy's ``choices`` (the planner's, sized for this detector)."""
    height, width = frame.shape[:2]
    return call_plan(width, height, detector.config, detector.windows(width, height), **choices)


@pytest.fixture(scope="module")
def frame(clip):
    return read_frames(clip)[0]


def test_pose_model_boxes_are_people_with_keypoints(frame):
    d = detect.Detector(Config(mode="bbox", imgsz=960, device="cpu"))
    assert d.box_model is None and d.seg_model is None, "bbox mode uses the pose model's boxes: one forward pass"
    (found,) = d([frame])
    assert len(found.people) >= 2, "several pedestrians are walking in this frame"
    # two scales merged (the frame's own 480 px and 960 px): every box is masked, each skeleton drawn once
    assert found.people.keypoints is not None and len(found.poses) <= len(found.people)
    assert found.poses.keypoints.shape == (len(found.poses), 17, 3)
    # the frame-scale pass alone: one pass, its boxes are the skeletons'
    (single,) = d([frame], plan=_plan(d, frame, small=False))
    assert single.people is single.poses
    assert (found.people.class_id == 0).all() and (found.people.confidence >= 0.15).all()
    h, w = frame.shape[:2]
    assert (found.people.xyxy[:, 2] <= w + 1).all() and (found.people.xyxy[:, 3] <= h + 1).all()


def test_seg_mode_masks_are_frame_sized():
    d = detect.Detector(
        Config(mode="seg", seg_model="yolo11n-seg.yaml", conf=0.001, imgsz=320, device="cpu", pose=False)
    )
    frames = [np.full((120, 200, 3), 90, np.uint8), np.full((120, 200, 3), 160, np.uint8)]
    found = d(frames)
    assert len(found) == 2
    for f in found:
        assert f.people.mask is not None and f.people.mask.shape[1:] == (120, 200)
        assert len(f.poses) == 0


def test_the_small_search_on_a_window_finds_the_people_in_it_in_frame_coordinates(frame):
    """``area`` (ScalePolicy.area): the search's full-frame pass on a window, at the same enlargement."""
    d = detect.Detector(Config(mode="bbox", device="cpu"))
    h, w = frame.shape[:2]
    (whole,) = d([frame], plan=_plan(d, frame, large=False))
    area = (w // 4, 0, w, h * 3 // 4)  # three quarters of each side, the frame's top right
    x0, y0, x1, y1 = area
    inside = whole.people[
        (whole.people.xyxy[:, 0] >= x0 + 8)
        & (whole.people.xyxy[:, 1] >= y0 + 8)
        & (whole.people.xyxy[:, 2] <= x1 - 8)
        & (whole.people.xyxy[:, 3] <= y1 - 8)
    ]
    assert len(inside) >= 2, "several pedestrians walk in that part of the frame"
    (part,) = d([frame], plan=_plan(d, frame, large=False, area=area))
    boxes = part.people.xyxy
    assert len(boxes) and (boxes[:, :2] >= [x0 - 1, y0 - 1]).all() and (boxes[:, 2:] <= [x1 + 1, y1 + 1]).all()
    assert np.mean(box_iou(inside.xyxy, boxes).max(axis=1) > 0.5) >= 0.8, "the window missed people it holds"
    assert part.poses.keypoints is not None and len(part.poses) >= 1
    assert (part.poses.keypoints[..., 0] >= x0 - 1).all(), "keypoints are in frame coordinates"


def test_seg_masks_of_a_window_are_frame_sized_and_placed_where_the_window_is():
    """The architecture-only seg model finds nobody, so its pass on the window answers a synthetic person."""
    from anonymise.detections import Detections, FrameDetections

    d = detect.Detector(Config(mode="seg", seg_model="yolo11n-seg.yaml", imgsz=640, device="cpu", pose=False))
    asked = []

    def run(pieces, imgsz):  # a person at (10, 20)-(30, 60) of the window
        asked.append((pieces[0].shape[:2], imgsz))
        mask = np.zeros((1, *pieces[0].shape[:2]), bool)
        mask[0, 20:60, 10:30] = True
        person = Detections(np.array([[10, 20, 30, 60]], np.float32), [0.9], [0], mask=mask)
        return [FrameDetections(person, Detections.empty())]

    d._run = run
    blank = np.zeros((120, 200, 3), np.uint8)
    (found,) = d([blank], plan=_plan(d, blank, large=False, area=(100, 30, 200, 120)))
    assert asked == [((90, 100), 320)], "the window, enlarged as the whole frame would be (200 px -> 640)"
    assert found.people.xyxy.tolist() == [[110, 50, 130, 90]]
    assert found.people.mask.shape == (1, 120, 200) and found.people.mask.sum() == 800
    assert found.people.mask[0, 50:90, 110:130].all()


def test_the_detector_runs_the_plan_it_is_given_and_plans_nothing():
    """Passes of sizes and windows no policy would choose run exactly as given, in order, merged in
    frame coordinates; who only the tiles and crops found is the call's ``tile_only``."""
    from anonymise.callplan import CallPlan, Kind, Pass
    from anonymise.detections import Detections, FrameDetections

    d = detect.Detector(Config(mode="bbox", device="cpu", backend="torch", pose=False))
    asked = []

    def run(pieces, imgsz):  # one person at (2, 4)-(8, 16) of each piece
        asked.append(([p.shape[:2] for p in pieces], imgsz))
        person = Detections(np.array([[2, 4, 8, 16]], np.float32), [0.9], [0])
        return [FrameDetections(person, Detections.empty()) for _ in pieces]

    d._run = run
    plan = CallPlan(
        passes=(
            Pass(Kind.SEARCH, 224),
            Pass(Kind.TILES, 96, ((0, 0, 50, 50), (50, 10, 100, 60))),
            Pass(Kind.CROPS, 64, ((30, 30, 50, 50),)),
        )
    )
    frames = [np.zeros((60, 100, 3), np.uint8)] * 2
    found = d(frames, plan=plan)
    assert asked == [([(60, 100)] * 2, 224), ([(50, 50)] * 4, 96), ([(20, 20)] * 2, 64)]
    for f in found:
        assert f.people.xyxy.tolist() == [[2, 4, 8, 16], [2, 4, 8, 16], [52, 14, 58, 26], [32, 34, 38, 46]]
        assert f.tile_only.tolist() == [[52, 14, 58, 26], [32, 34, 38, 46]], "the tiles' own finds"
    asked.clear()
    (one,) = d(frames[:1], plan=CallPlan(passes=(Pass(Kind.ALONE, 160),)))
    assert asked == [([(60, 100)], 160)] and one.tile_only is None, "one whole pass: its results as they are"
    asked.clear()
    d(frames[:1], plan=CallPlan(small=False))  # the policy's choices alone: sized as the planner sizes them
    assert asked == [([(60, 100)], 128)], "the frame-scale pass alone, at the frame's own size"


def test_align_masks_undoes_ultralytics_letterbox():
    """A mask letterboxed the way Ultralytics does comes back onto the original frame."""
    torch = pytest.importorskip("torch")
    from ultralytics.data.augment import LetterBox

    h, w = 90, 200
    mask = np.zeros((h, w, 3), np.uint8)
    mask[20:60, 130:170] = 255
    boxed = LetterBox((320, 320), auto=True, stride=32)(image=mask)
    assert boxed.shape[:2] != (h, w)
    aligned = detect.align_masks(torch.from_numpy(boxed[..., 0] > 127)[None].float(), (h, w))[0]
    truth = mask[..., 0] > 0
    iou = (aligned & truth).sum() / (aligned | truth).sum()
    assert iou > 0.95


def test_model_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"junk.pt is not a YOLO model"):
        detect.load_model(str(junk), "segment", "--seg-model")
    text = tmp_path / "weights.txt"
    text.write_text("x")
    with pytest.raises(ModelError, match=r"is not a YOLO model file"):
        detect.load_model(str(text), "segment", "--seg-model")
    with pytest.raises(ModelError, match=r"is a 'pose' model but --seg-model needs a 'segment' model"):
        detect.load_model("yolo11n-pose.pt", "segment", "--seg-model")


def test_offline_missing_weights_name_the_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models, "PROJECT_MODELS", tmp_path / "none")
    monkeypatch.delenv("ANONYMISE_MODELS", raising=False)

    def offline(*args, **kwargs):
        raise ConnectionError("Download failure. Environment may be offline.")

    monkeypatch.setattr("ultralytics.utils.downloads.safe_download", offline)
    with pytest.raises(
        ModelError,
        match=r"model 'yolo11n-seg.pt' is not on this machine and could not be downloaded .*--seg-model PATH",
    ):
        detect.load_model("yolo11n-seg.pt", "segment", "--seg-model")


@pytest.mark.parametrize(("device", "message"), [("tpu", "unknown device 'tpu'"), ("cuda:7", "CUDA")])
def test_device_errors(device, message):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(ConfigError, match=message):
        detect.resolve_device(device)


def test_auto_device_picks_cuda_only_when_present():
    import torch

    if not torch.backends.mps.is_available():
        assert detect.resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert detect.resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("present", [True, False])
def test_mps_is_checked_and_chosen_by_auto_on_apple_silicon(monkeypatch, present):
    """``--device mps`` once crashed (AttributeError on ``torch.exports``); ``auto`` chose the CPU on a Mac."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: present)
    assert detect.resolve_device("auto") == ("mps" if present else "cpu")
    if present:
        assert detect.resolve_device("mps") == "mps"
    else:
        with pytest.raises(ConfigError, match="device 'mps' requested but this machine has no Apple GPU"):
            detect.resolve_device("mps")


def test_real_segmentation_weights(frame):
    """Runs only where the official yolo11n-seg.pt is on disk (it cannot be downloaded here)."""
    resolved = models.resolve("yolo11n-seg.pt")
    if resolved.path is None:
        dirs = ", ".join(str(d) for d in models.models_dirs())
        pytest.skip(f"yolo11n-seg.pt not found (looked in {dirs}); put it in models/ to run this check")
    d = detect.Detector(Config(mode="seg", imgsz=960, device="cpu"))
    (found,) = d([frame])
    assert len(found.people) >= 2 and found.people.mask.shape[1:] == frame.shape[:2]
    for box, mask in zip(found.people.xyxy, found.people.mask):
        ys, xs = np.nonzero(mask)
        if len(xs):  # each mask lies in (a slightly grown) box
            assert xs.min() >= box[0] - 4 and xs.max() <= box[2] + 4


def test_ultralytics_does_not_take_torch_threads_away(frame):
    import torch

    before = torch.get_num_threads()
    d = detect.Detector(Config(mode="bbox", imgsz=320, device="cpu"))
    d([frame])
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("size", "tiles", "expected"),
    [((360, 480), "auto", 0), ((720, 1280), "auto", 15), ((360, 480), "2", 4), ((720, 1280), "off", 0)],
)
def test_tile_windows_cover_the_frame_with_person_sized_overlap(size, tiles, expected):
    h, w = size
    windows = detect.tile_windows(h, w, tiles, min_person=32)
    assert len(windows) == expected
    if not windows:
        return
    assert len({(x1 - x0, y1 - y0) for x0, y0, x1, y1 in windows}) == 1, "equal sizes: one batch"
    covered = np.zeros(size, int)
    for x0, y0, x1, y1 in windows:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    xs = sorted({x0 for x0, *_ in windows})
    tile_w = windows[0][2] - windows[0][0]
    assert all(b - a <= tile_w - 64 for a, b in zip(xs, xs[1:])), "neighbours overlap by two person heights"


def test_merge_tiles_keeps_every_box_for_masking_and_one_skeleton_per_person():
    from anonymise import Detections

    def kp(box):
        k = np.zeros((1, 17, 3), np.float32)
        k[0, :, 0], k[0, :, 1], k[0, :, 2] = box[0], box[1], 0.9
        return k

    full_person = np.array([[90, 40, 130, 140]], np.float32)  # found by the full-frame pass
    whole_det = Detections(full_person, [0.8], [0], keypoints=kp(full_person[0]))
    whole = detect.FrameDetections(whole_det, whole_det)
    # tile 1 (x 0..100) sees the left part of the same person, tile 2 (x 80..180) sees all of them
    cut = Detections([[90, 40, 100, 140]], [0.5], [0], keypoints=kp([90, 40]))
    full_in_tile = Detections([[10, 40, 50, 140]], [0.9], [0], keypoints=kp([10, 40]))
    parts = [detect.FrameDetections(cut, cut), detect.FrameDetections(full_in_tile, full_in_tile)]
    merged = detect.merge_tiles(whole, parts, [(0, 0, 100, 200), (80, 0, 180, 200)], (200, 180))
    assert len(merged.people) == 3, "masking keeps every box (dropping one could leave part of a person bare)"
    assert len(merged.poses) == 1, "the skeleton is drawn once"
    assert merged.poses.confidence[0] == pytest.approx(0.9) and merged.poses.xyxy[0].tolist() == [90, 40, 130, 140]


def test_merge_tiles_pastes_masks_into_the_frame():
    from anonymise import Detections

    mask = np.zeros((1, 50, 50), bool)
    mask[0, 10:20, 10:20] = True
    tile = Detections([[10, 10, 20, 20]], [0.9], [0], mask=mask)
    whole = detect.FrameDetections(Detections.empty((100, 100)), Detections.empty())
    merged = detect.merge_tiles(
        whole, [detect.FrameDetections(tile, Detections.empty())], [(50, 30, 100, 80)], (100, 100)
    )
    assert merged.people.mask.shape == (1, 100, 100)
    assert merged.people.mask[0, 40:50, 60:70].all() and merged.people.mask[0].sum() == 100
    assert merged.people.xyxy[0].tolist() == [60, 40, 70, 50]


def test_tiles_find_small_people_a_single_pass_misses(frame):
    """On real footage at a small inference size, 2x2 tiles see people the whole-frame pass does not."""
    single = detect.Detector(Config(mode="bbox", imgsz=320, tiles="off", device="cpu"))
    tiled = detect.Detector(Config(mode="bbox", imgsz=320, tiles="2", min_person=48, device="cpu"))
    (one,) = single([frame])
    (many,) = tiled([frame])
    people = many.people[detect.suppress(many.people)]
    assert len(people) > len(one.people)
    h, w = frame.shape[:2]
    assert (
        (many.people.xyxy[:, [0, 1]] >= -1).all()
        and (many.people.xyxy[:, 2] <= w + 1).all()
        and (many.people.xyxy[:, 3] <= h + 1).all()
    )
    assert len(many.poses) <= len(many.people) and many.poses.keypoints is not None
    # who only the tiles found: boxes of the merged people that no full-frame box accounts for
    assert one.tile_only is None, "no tiles, nothing to say"
    assert len(many.tile_only) >= 1 and len(people) - len(one.people) >= 1
    assert all((many.people.xyxy == box).all(axis=1).any() for box in many.tile_only)
    windows = tiled.windows(w, h)
    (none,) = tiled([frame], plan=_plan(tiled, frame, tiles=[False] * len(windows)))
    assert none.tile_only is not None and len(none.tile_only) == 0, "no tile ran: nobody found only on tiles"
    # a person crop (half a tile's side, enlarged as the tiles are) around each of them finds them again
    side = (windows[0][2] - windows[0][0]) // 2
    crops = []
    for x0, y0, x1, y1 in many.tile_only:
        left = int(np.clip((x0 + x1) / 2 - side / 2, 0, w - side))
        top = int(np.clip((y0 + y1) / 2 - side / 2, 0, h - side))
        crops.append((left, top, left + side, top + side))
    (again,) = tiled([frame], plan=_plan(tiled, frame, tiles=[False] * len(windows), crops=crops))
    found = box_iou(many.tile_only, again.tile_only).max(axis=1) if len(again.tile_only) else [0]
    assert np.mean(np.asarray(found) > 0.5) >= 0.8, "the crops missed people only the tiles found"


def test_tile_only_keeps_the_people_no_full_frame_box_accounts_for():
    full = np.array([[0, 0, 100, 200], [300, 0, 320, 40]], np.float32)
    tiled = np.array(
        [
            [2, 2, 98, 198],  # the same person (IoU)
            [10, 10, 50, 90],  # a part of the first, found whole by the full pass
            [290, 0, 330, 120],  # holds the second: the full pass found them in part
            [200, 100, 220, 140],  # nobody the full pass found
        ],
        np.float32,
    )
    assert detect.tile_only(full, tiled).tolist() == [[200, 100, 220, 140]]
    assert detect.tile_only(full[:0], tiled).shape == (4, 4) and detect.tile_only(full, tiled[:0]).shape == (0, 4)


def test_a_twin_that_cannot_load_leaves_the_looks_on_the_shared_model(monkeypatch, caplog):
    """One warning, then the looks share the detect stage's model under the lock, as before."""
    from anonymise.detect import detector as module

    calls = []

    def broken(model):
        calls.append(model)
        raise ModelError("out of GPU memory")

    monkeypatch.setattr(module, "twin", broken)
    d = module.Detector.__new__(module.Detector)
    d.pose_model, d.box_model, d.seg_model = object(), None, None
    d._twin, d._max_batch, d._threads = [None], {}, module.torch.get_num_threads()
    with caplog.at_level("WARNING", logger="anonymise"):
        assert d.look_shares_models() and d.look_shares_models()
    assert len(calls) == 1, "tried once"
    assert [r.message for r in caplog.records] == ["second looks share the detect stage's model: out of GPU memory"]


def test_a_call_of_many_tiles_runs_in_bounded_chunks_with_the_same_people(frame, monkeypatch):
    """A 12 MP photo's 192 tiles once went to the model in one call (4 GB more on a CPU): calls now
    take at most PIECES_PER_CALL inputs, and find what one call found."""
    d = detect.Detector(Config(mode="bbox", device="cpu", backend="torch", pose=True))
    model = d.pose_model
    sizes = []
    predict = model.predict
    monkeypatch.setattr(model, "predict", lambda frames, **kw: sizes.append(len(frames)) or predict(frames, **kw))
    pieces = [frame] * 3 + [np.ascontiguousarray(frame[:, ::-1])] * (detect.detector.PIECES_PER_CALL * 2)
    chunked = d._run(pieces, 320)
    assert sizes and max(sizes) <= detect.detector.PIECES_PER_CALL and sum(sizes) == len(pieces)
    assert [len(f.people) for f in chunked[:3]] == [len(chunked[0].people)] * 3
    assert len(chunked) == len(pieces)
