"""One video's frames through detect, track, look-ahead, mask, background and compose (FrameStream),
with a synthetic detector."""

import numpy as np
import pytest
from conftest import (
    MAGENTA,
    ColourDetector,
    is_person_colour,
    person_box,
    scene,
    synthetic_frames,
)

from anonymise import Anonymiser, Config
from anonymise.io.video import Frame


def _visible(out):
    return [i for i, o in enumerate(out) if is_person_colour(o, 60).sum() > 5]


def _outputs(anon, frames, lookahead):
    stream = anon.stream(lookahead)
    out = [image for _, image in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    return out, stream.counts


def test_people_replaced_and_far_pixels_bit_identical():
    frames = synthetic_frames(20)
    anon = Anonymiser(Config(feather=7, dilate=2), detector=ColourDetector())
    out, stats = _outputs(anon, frames, lookahead=10)
    assert len(out) == 20 and stats.failed == 0
    for i, (f, o) in enumerate(zip(frames, out)):
        assert not is_person_colour(o).any(), f"person visible in frame {i}"
        x1, y1, x2, y2 = person_box(i)
        far = np.ones(f.shape[:2], bool)
        far[max(y1 - 16, 0) : y2 + 16, max(x1 - 16, 0) : x2 + 16] = False  # dilate 2 + feather 7 + motion region
        assert (o[far] == f[far]).all(), f"pixels far from the person changed in frame {i}"


def test_lookahead_shows_the_real_scene_behind_a_person_who_later_moves():
    frames = synthetic_frames(20)
    truth = scene()
    anon = Anonymiser(Config(feather=0, dilate=0, hold=5), detector=ColourDetector())
    # the background sees 18 - 5 frames ahead: enough for the person (4 px a frame) to clear their
    # box, its learning margin, and the frames a pixel must stay still before it is learned
    ahead, _ = _outputs(anon, frames, lookahead=18)
    x1, y1, x2, y2 = person_box(0)
    err = np.abs(ahead[0][y1:y2, x1:x2].astype(int) - truth[y1:y2, x1:x2].astype(int))
    assert err.max() <= 1, "with look-ahead the first frame shows the true background"
    blind, _ = _outputs(anon, frames, lookahead=0)
    assert not is_person_colour(blind[0]).any(), "without look-ahead the hole is inpainted, never the person"


def test_output_order_is_input_order():
    frames = [np.full((40, 40, 3), i, np.uint8) for i in range(25)]
    anon = Anonymiser(Config(lookahead=7), detector=ColourDetector())
    out, _ = _outputs(anon, frames, lookahead=7)
    assert [int(o[0, 0, 0]) for o in out] == list(range(25))


def test_fail_closed_frame_is_fully_masked():
    frames = synthetic_frames(12)
    anon = Anonymiser(Config(), detector=ColourDetector(fail_on={6}))
    out, stats = _outputs(anon, frames, lookahead=0)
    assert stats.failed == 1
    assert not is_person_colour(out[5]).any(), "a frame whose detection failed is never written as it came"
    far = np.abs(out[5][110:].astype(int) - scene()[110:].astype(int))  # below the dilate + feather rim
    assert far.max() <= 1, "the failed frame is the learned background all over"


def test_first_batch_failing_is_an_error_not_a_silent_blank_video():
    anon = Anonymiser(Config(), detector=ColourDetector(fail_on={1}))
    with pytest.raises(RuntimeError, match="synthetic detector failure"):
        _outputs(anon, synthetic_frames(3), lookahead=0)


def test_seg_masks_and_torch_background_match_cpu():
    pytest.importorskip("torch")
    frames = synthetic_frames(15)
    cpu = Anonymiser(Config(mode="seg", inflate=2), detector=ColourDetector(with_masks=True))
    gpu = Anonymiser(Config(mode="seg", inflate=2), detector=ColourDetector(with_masks=True), background="torch")
    a, _ = _outputs(cpu, frames, lookahead=5)
    b, _ = _outputs(gpu, frames, lookahead=5)
    assert max(np.abs(x.astype(int) - y.astype(int)).max() for x, y in zip(a, b)) <= 1
    assert not any(is_person_colour(x).any() for x in b)


def test_skeletons_are_drawn_over_the_filled_person():
    frames = synthetic_frames(5)
    anon = Anonymiser(Config(pose_conf=0.5), detector=ColourDetector(keypoints=True))
    out, _ = _outputs(anon, frames, lookahead=2)
    x1, y1, x2, y2 = person_box(2)
    column = out[2][y1:y2, (x1 + x2) // 2 - 1 : (x1 + x2) // 2 + 2]
    assert (column.max(axis=-1) >= 250).any(), "white joints drawn where the keypoints are"
    off = Anonymiser(Config(pose=False), detector=ColourDetector(keypoints=True))
    plain, _ = _outputs(off, frames, lookahead=2)
    assert not np.array_equal(out[2], plain[2])


def test_process_frame_learns_across_calls():
    frames = synthetic_frames(12)
    anon = Anonymiser(Config(feather=0, dilate=0), detector=ColourDetector())
    first = anon.process_frame(frames[0])
    assert not is_person_colour(first).any()
    for f in frames[1:]:
        last = anon.process_frame(f)
    x1, y1, x2, y2 = person_box(11)
    assert not is_person_colour(last).any()
    assert np.abs(last[y1:y2, x1:x2].astype(int) - scene()[y1:y2, x1:x2].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="expected a uint8 BGR array"):
        anon.process_frame(np.zeros((4, 4), np.uint8))


def test_hold_masks_a_tracked_person_through_detector_drop_outs():
    frames = synthetic_frames(30)
    blind = {12, 13, 14}  # frames 11-13
    held = Anonymiser(Config(fail_closed=False, hold=5), detector=ColourDetector(blind_on=blind))
    out, counts = _outputs(held, frames, lookahead=0)
    assert _visible(out) == [] and counts.held >= 3
    bare = Anonymiser(Config(fail_closed=False, track=False), detector=ColourDetector(blind_on=blind))
    assert _visible(_outputs(bare, frames, lookahead=0)[0]) == [11, 12, 13], "without the hold the drop-outs leak"


def test_lookahead_masks_a_person_before_their_first_detection():
    frames = synthetic_frames(30)
    late = set(range(1, 7))  # the detector only finds them from frame 6 on
    ahead = Anonymiser(Config(fail_closed=False, hold=10), detector=ColourDetector(blind_on=late))
    assert _visible(_outputs(ahead, frames, lookahead=20)[0]) == []
    blind = Anonymiser(Config(fail_closed=False, hold=10), detector=ColourDetector(blind_on=late))
    leaked = _visible(_outputs(blind, frames, lookahead=0)[0])
    assert set(range(6)) <= set(leaked), "no look-ahead, no back-fill"
    assert len(leaked) > 6, "and the missed frames burn the person into the background, whose fill then shows them"


def test_motion_guard_masks_a_moving_person_the_detector_never_finds():
    frames = synthetic_frames(30)
    guarded = Anonymiser(
        Config(fail_closed=True, second_look=False), detector=ColourDetector(blind_on=set(range(1, 100)))
    )
    stream = guarded.stream(lookahead=20)
    out = [o for _, o in guarded.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    assert _visible(out) == [], "every frame of an undetected walker is masked from motion"
    assert stream.counts.motion >= 29
    assert not is_person_colour(stream.background.image(), 60).any(), "the background never learned the walker"
    open_ = Anonymiser(Config(fail_closed=False), detector=ColourDetector(blind_on=set(range(1, 100))))
    assert len(_visible(_outputs(open_, frames, lookahead=20)[0])) == 30


def test_second_look_finds_the_person_on_a_crop_and_keeps_their_skeleton():
    frames = synthetic_frames(20)
    detector = ColourDetector(keypoints=True, blind_full_frame=True)
    anon = Anonymiser(Config(fail_closed=True), detector=detector)
    stream = anon.stream(lookahead=10)
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    assert _visible(out) == []
    assert stream.counts.second_look >= 15, "the crops found the person the full frame missed"
    x1, y1, x2, y2 = person_box(10)
    assert (out[10][y1:y2, (x1 + x2) // 2 - 1 : (x1 + x2) // 2 + 2].max(axis=-1) >= 250).any(), (
        "their skeleton is drawn"
    )


def test_a_tracked_person_the_detector_drops_keeps_their_skeleton_from_a_look_at_the_held_box():
    """Held (masked) while the full frame misses them, the crop around the held box finds their skeleton; once each."""
    frames = synthetic_frames(30)
    dropped = set(range(12, 18))
    anon = Anonymiser(
        Config(fail_closed=True, hold=10), detector=ColourDetector(keypoints=True, blind_full_frame=dropped)
    )
    stream = anon.stream(lookahead=12)
    results = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))
    assert _visible([o for _, o in results]) == []
    assert [len(r.poses) for r in results] == [1] * 30, "a skeleton in every frame, never two"
    assert stream.counts.second_look >= len(dropped)
    blind = Anonymiser(
        Config(fail_closed=True, hold=10, second_look=False),
        detector=ColourDetector(keypoints=True, blind_full_frame=dropped),
    )
    without = list(blind.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), blind.stream(lookahead=12)))
    assert [i for i, r in enumerate(without) if not len(r.poses)] == sorted(dropped), "without the look they have none"


def test_a_look_that_found_someone_stands_for_the_next_frames_looks_at_the_same_place(monkeypatch):
    """Only the looks find the walker. A look that found them stands, moved as their region moved,
    for the looks at the same place on the next LOOK_REUSES frames: fewer looks, every frame masked,
    one skeleton on them in each."""
    from anonymise import framestream as stream_module
    from anonymise import guard

    looked = []
    real = stream_module.FrameStream._second_look

    def second_look(self, image, regions, context=guard.SECOND_LOOK_CONTEXT):
        looked[-1] += len(regions)
        return real(self, image, regions, context)

    monkeypatch.setattr(stream_module.FrameStream, "_second_look", second_look)
    frames = synthetic_frames(30)
    reused = []
    for reuses in (0, guard.LOOK_REUSES):
        monkeypatch.setattr(guard, "LOOK_REUSES", reuses)
        looked.append(0)
        anon = Anonymiser(Config(fail_closed=True), detector=ColourDetector(keypoints=True, blind_full_frame=True))
        stream = anon.stream(lookahead=10)
        results = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))
        reused.append(stream.counts.looks_reused)
        assert _visible([r.image for r in results]) == []
        for t, r in enumerate(results[2:], 2):  # the guard needs a frame before to see motion
            x1, _, x2, _ = person_box(t)
            assert len(r.poses) == 1, f"frame {t}: {len(r.poses)} skeletons"
            assert abs((r.poses.xyxy[0, 0] + r.poses.xyxy[0, 2]) / 2 - (x1 + x2) / 2) <= 3, f"frame {t}: elsewhere"
    assert reused[0] == 0 and reused[1] >= 15
    assert looked[1] + reused[1] == looked[0] and looked[1] <= 0.7 * looked[0], looked


def test_a_held_track_whose_looks_find_nobody_is_not_looked_at_again(monkeypatch):
    """The person leaves (hidden): their held box stays masked, and the looks at it stop after
    HELD_LOOK_MISSES that found nobody; a look that finds them starts the count again (above)."""
    from anonymise import framestream as stream_module
    from anonymise import guard

    frames = synthetic_frames(30)
    for t in range(12, 30):
        frames[t] = scene()  # gone from frame 12 on
    held_crops = []
    real = stream_module.FrameStream._second_look

    def second_look(self, image, regions, context=guard.SECOND_LOOK_CONTEXT):
        context = np.broadcast_to(np.asarray(context, np.float32), (len(regions),))
        held_crops.extend(np.flatnonzero(context == guard.HELD_LOOK_CONTEXT).tolist())
        return real(self, image, regions, context)

    monkeypatch.setattr(stream_module.FrameStream, "_second_look", second_look)
    anon = Anonymiser(Config(fail_closed=True, hold=10), detector=ColourDetector(keypoints=True))
    stream = anon.stream(lookahead=12)
    results = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))
    assert stream.counts.held >= 5, "the lost track is held (masked) for a while"
    assert len(held_crops) == guard.HELD_LOOK_MISSES, f"{len(held_crops)} looks (10 unlimited)"
    assert _visible([r.image for r in results]) == []


@pytest.mark.parametrize("shares", [True, False], ids=["shared-under-the-lock", "twin-beside-the-detect-stage"])
def test_second_looks_take_the_model_lock_only_when_they_share_the_models(shares):
    """A detector whose looks run on the detect stage's models is called with the stream's model
    lock held by the looking thread; one with a twin of its own is not (it runs beside the detect stage)."""
    import threading

    class Owned:
        """The stream's model lock, saying which thread holds it."""

        def __init__(self):
            self._lock, self.owner = threading.Lock(), None

        def __enter__(self):
            self._lock.acquire()
            self.owner = threading.get_ident()

        def __exit__(self, *exc):
            self.owner = None
            self._lock.release()

    class Looking(ColourDetector):
        def look_shares_models(self):
            return shares

        def look(self, crops, imgsz):
            held.append(stream._models.owner == threading.get_ident())
            return [r.poses if len(r.poses) else r.people for r in (self([c], imgsz=imgsz)[0] for c in crops)]

    held = []
    frames = synthetic_frames(20)
    anon = Anonymiser(Config(fail_closed=True), detector=Looking(keypoints=True, blind_full_frame=True))
    stream = anon.stream(lookahead=10)
    stream._models = Owned()
    out = [o for _, o in anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream)]
    assert _visible(out) == [] and stream.counts.second_look >= 15
    assert held and set(held) == {shares}


def test_every_box_a_second_look_finds_is_masked_even_a_duplicate(monkeypatch):
    """Overlapping crops see a person twice: the skeleton is kept once, but both boxes are masked."""
    from anonymise import framestream as stream_module
    from anonymise.detections import Detections

    frames = synthetic_frames(20)
    t = 12
    x1, y1, x2, y2 = person_box(t)
    wide = (x1, y1, x2 + 8, y2)  # mostly the same person (IoU 0.71), sticking out 8 px to the right

    def second_look(self, image, regions, context=1.0):
        return Detections(
            np.array([(x1, y1, x2, y2), wide], np.float32),
            [0.9, 0.5],
            [0, 0],
            keypoints=np.zeros((2, 17, 3), np.float32),
        )

    monkeypatch.setattr(stream_module.FrameStream, "_second_look", second_look)
    monkeypatch.setattr("anonymise.guard.LOOK_REUSES", 0)  # every frame's own look (this one finds the same place)
    anon = Anonymiser(Config(fail_closed=True, dilate=0, feather=0), detector=ColourDetector(blind_full_frame=True))
    stream = anon.stream(lookahead=10, debug=True)
    results = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), stream))
    alpha = results[t].debug[0]
    assert (alpha[y1:y2, x2 : x2 + 8] > 0).all(), "the duplicate's extra pixels were left unmasked"
    assert len(results[t].poses) == 1, "one skeleton for one person"


def _stand_then_walk(n=40, start=15):
    background = scene()
    frames = []
    for t in range(n):
        f = background.copy()
        x = 10 + 4 * max(t - start, 0)
        f[40:80, x : x + 20] = MAGENTA
        frames.append(f)
    return frames


def test_a_person_learned_while_undetected_never_comes_back_as_fill(monkeypatch):
    """Undetected and still for 15 frames, the background learns them; once they walk, the guard must not let
    that ghost fill."""
    frames = _stand_then_walk()
    config = Config(hold=5)
    anon = Anonymiser(config, detector=ColourDetector(blind_on=set(range(1, 16))))
    out, _ = _outputs(anon, frames, lookahead=10)
    assert [i for i in _visible(out) if i >= 15] == []
    from anonymise.background import BackgroundModel

    monkeypatch.setattr(BackgroundModel, "forget", lambda self, where, suspect=None: None)
    anon = Anonymiser(config, detector=ColourDetector(blind_on=set(range(1, 16))))
    out, _ = _outputs(anon, frames, lookahead=10)
    assert [i for i in _visible(out) if i >= 15], "without forgetting, the ghost shows in the fill"


def _walk_then_stand(n=60, stop=15):
    background = scene()
    frames = []
    for t in range(n):
        f = background.copy()
        x = 10 + 4 * min(t, stop)
        f[40:80, x : x + 20] = MAGENTA
        frames.append(f)
    return frames


def test_a_person_who_stops_where_the_detector_loses_them_stays_masked():
    """Lost while standing still on pixels the background distrusts: the mask is carried, not released."""
    frames = _walk_then_stand()
    blind = set(range(11, 100))  # found while walking (frames 0-9), never again
    anon = Anonymiser(Config(hold=5, second_look=False), detector=ColourDetector(blind_on=blind))
    out, counts = _outputs(anon, frames, lookahead=10)
    assert _visible(out) == []
    assert counts.carried > 0


def test_push_holds_frames_for_the_lookahead_and_flush_returns_the_rest_in_order():
    frames = [Frame(f, i) for i, f in enumerate(synthetic_frames(6))]
    anon = Anonymiser(Config(fail_closed=False, pose=False), detector=ColourDetector())
    stream = anon.stream(lookahead=2)
    first = stream.push(frames[:2])
    assert first == [], "both frames wait for the look-ahead"
    ready = stream.push(frames[2:5]) + stream.flush()
    assert [r.frame.index for r in ready] == [0, 1, 2, 3, 4]
    frame, image = ready[0]  # unpacks as (input frame, output image)
    assert frame is frames[0] and image.shape == frame.image.shape and image is ready[0].image
    assert all(len(r.poses) == 0 and r.debug is None for r in ready), "pose off, no debug view: nothing else travels"
    assert not any(is_person_colour(r.image, 60).sum() > 5 for r in ready)
    assert stream.counts.frames == 5


def test_keypoints_only_makes_no_image_and_the_same_skeletons():
    frames = synthetic_frames(12)
    anon = Anonymiser(Config(), detector=ColourDetector(keypoints=True, blind_on={4, 5}))
    video = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), anon.stream(lookahead=6)))
    data = list(anon.anonymise_frames((Frame(f, i) for i, f in enumerate(frames)), anon.stream(6, images=False)))
    assert all(r.image is None for r in data), "keypoints only: no output image is made (none can leak)"
    assert [r.poses.xyxy.round().tolist() for r in data] == [r.poses.xyxy.round().tolist() for r in video]
    assert all(len(r.poses) == 1 for r in data), "the held frames keep their skeleton too"


def test_a_stop_mid_batch_leaves_the_frames_not_handed_out_to_the_flush_in_order():
    """A live stop closes the frame generator mid-batch: the frames of that batch not yet handed
    out once vanished (a gap before the kept tail); the flush now returns them first."""
    from conftest import ColourDetector, synthetic_frames

    from anonymise import Anonymiser, Config
    from anonymise.io.video import Frame

    detector = ColourDetector()
    detector.batch = 4
    anon = Anonymiser(Config(pose=False), detector=detector)
    stream = anon.stream(lookahead=2)
    outputs = anon.anonymise_frames((Frame(f, i) for i, f in enumerate(synthetic_frames(24))), stream)
    taken = [next(outputs).frame.index for _ in range(5)]  # the middle of the second batch
    outputs.close()
    rest = [r.frame.index for r in stream.flush()]
    seen = taken + rest
    assert seen == list(range(len(seen))) and len(seen) > 5, seen


def test_a_stop_inside_a_frames_check_finishes_the_check_before_the_frame_is_written(monkeypatch):
    """A live stop (SIGINT) can land while the guard looks at a frame: its mask is not built yet.
    The frames drained after the stop push it out of the look-ahead; it was written fully masked
    as a failure ("compositing failed" on every Ctrl-C). Its check is now done again: it is masked
    as any frame, and nothing counts as failed."""
    from anonymise import guard

    frames = [Frame(f, i) for i, f in enumerate(synthetic_frames(12))]
    anon = Anonymiser(Config(pose=False), detector=ColourDetector())
    stream = anon.stream(lookahead=4)
    real, calls = guard.Guard.check, []

    def check(self, slot, *args, **kwargs):
        calls.append(slot.t)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the stop, inside the frame's check
        return real(self, slot, *args, **kwargs)

    monkeypatch.setattr(guard.Guard, "check", check)
    ready = []
    with pytest.raises(KeyboardInterrupt):
        for i in range(0, 12, 2):
            ready += stream.push(frames[i : i + 2])
    cut = calls[-1]
    for i in range(len(ready) + stream.buffered, 12, 2):  # the frames already detected, kept at a stop
        ready += stream.push(frames[i : i + 2])
    ready += stream.flush()
    assert [r.frame.index for r in ready] == list(range(12))
    assert calls.count(cut) == 2, "the interrupted check ran again"
    assert stream.counts.failed == 0
    assert not any(is_person_colour(r.image, 60).sum() > 5 for r in ready)
    assert not (ready[cut].image == frames[cut].image).all(), "the interrupted frame's person is masked"
