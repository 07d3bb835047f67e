import numpy as np
import pytest
from conftest import MAGENTA, is_person_colour, scene

from anonymise.background import (
    TINT_RAMP,
    UNSEEN_GREY,
    UNSEEN_TINTS,
    BackgroundModel,
    TorchBackgroundModel,
    choose_tint,
)


def _person_frame(background, box):
    frame = background.copy()
    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = MAGENTA
    return frame


def _alpha(shape, box):
    a = np.zeros(shape[:2], np.uint8)
    x1, y1, x2, y2 = box
    a[y1:y2, x1:x2] = 255
    return a


@pytest.fixture(params=["cpu", "torch"])
def model(request):
    if request.param == "torch":
        pytest.importorskip("torch")
        return TorchBackgroundModel(0.5, device="cpu")
    return BackgroundModel(0.5)


def _np(x):
    return x.cpu().numpy() if hasattr(x, "cpu") else x


def test_never_learns_under_the_mask(model):
    bg = scene()
    box = (40, 30, 80, 90)
    model.update(bg, np.zeros(bg.shape[:2], np.uint8))
    for _ in range(20):
        model.update(_person_frame(bg, box), _alpha(bg.shape, box))
    image = _np(model.image())
    assert not is_person_colour(image).any()
    assert np.abs(image.astype(int) - bg.astype(int)).max() <= 1


def test_never_seen_pixels_are_inpainted_not_copied_from_the_frame(model):
    """The peer's bug: a background started from frame 0 shows the person who is in frame 0."""
    bg = scene()
    box = (40, 30, 80, 90)
    frame = _person_frame(bg, box)
    model.update(frame, _alpha(bg.shape, box))
    image = _np(model.image())
    assert not is_person_colour(image).any(), "a never-seen pixel showed the person"
    assert _np(model.seen)[50, 60] == 0 and _np(model.seen)[0, 0]
    assert (image[0:20] == bg[0:20]).all()  # seen pixels are the frame as is


def test_first_sight_sets_then_running_average(model):
    a0 = np.zeros((4, 4), np.uint8)
    model.update(np.full((4, 4, 3), 100, np.uint8), a0)
    assert (_np(model.image()) == 100).all()
    model.update(np.full((4, 4, 3), 200, np.uint8), a0)
    assert (_np(model.image()) == 150).all()  # rate 0.5


def test_all_unseen_is_grey_with_its_tint(model):
    frame = np.full((8, 8, 3), 77, np.uint8)
    model.update(frame, np.full((8, 8), 255, np.uint8))
    assert (_np(model.image()) == UNSEEN_GREY + np.array(UNSEEN_TINTS[0])).all()


def _never_leaves(model, person, wall=(150, 150, 150), frames=30):
    """A wall-coloured scene with a person filling the middle who never leaves; the model's image."""
    bg = np.empty((120, 160, 3), np.uint8)
    bg[:] = wall
    box = (30, 20, 130, 120)
    frame = bg.copy()
    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = person
    frame[y1:y2:7, x1:x2] = (40, 40, 40)  # a striped garment: some pixels far from the wash
    for _ in range(frames):
        model.update(frame, _alpha(bg.shape, box))
    return frame, _np(model.image()), box


@pytest.mark.parametrize("person", [(150, 150, 150), (152, 149, 151)], ids=["wall-grey", "near-grey"])
def test_a_garment_the_colour_of_the_wash_is_still_replaced(model, person):
    """A grey shirt before a grey wall: the wash would pass it through; its tint never does."""
    frame, image, (x1, y1, x2, y2) = _never_leaves(model, person)
    inner = np.s_[y1 + TINT_RAMP : y2 - TINT_RAMP, x1 + TINT_RAMP : x2 - TINT_RAMP]
    change = np.abs(image[inner].astype(int) - frame[inner].astype(int)).max(axis=-1)
    assert (change > 10).all(), "a pixel of the person came out unchanged"
    assert (image[:, :20] == frame[:, :20]).all(), "the seen wall changed"


def test_the_tint_moves_away_from_a_garment_of_its_colour(model):
    """A person dressed in the wash plus the first tint: another tint is chosen, and nothing matches."""
    first = np.clip(np.array((150, 150, 150)) + UNSEEN_TINTS[0], 0, 255)
    frame, image, (x1, y1, x2, y2) = _never_leaves(model, tuple(int(v) for v in first))
    inner = np.s_[y1 + TINT_RAMP : y2 - TINT_RAMP, x1 + TINT_RAMP : x2 - TINT_RAMP]
    assert (np.abs(image[inner].astype(int) - frame[inner].astype(int)).max(axis=-1) > 10).all()


def test_the_torch_model_tints_as_the_cpu_model_does():
    """A large block never seen free (the fade-in and the full tint), and a garment in the first tint."""
    pytest.importorskip("torch")
    first = tuple(int(v) for v in np.clip(np.array((150, 150, 150)) + UNSEEN_TINTS[0], 0, 255))
    for person in [(150, 150, 150), first]:
        _, cpu, _ = _never_leaves(BackgroundModel(0.5), person)
        _, gpu, _ = _never_leaves(TorchBackgroundModel(0.5, device="cpu"), person)
        assert np.abs(cpu.astype(int) - gpu.astype(int)).max() <= 1


def test_choose_tint_keeps_its_choice_unless_another_is_much_better():
    wash = np.full((40, 40, 3), 100, np.uint8)
    unseen = np.ones((40, 40), bool)
    assert choose_tint(wash, wash, unseen, current=2) == 2  # no tint matches a grey: keep
    first = np.clip(wash.astype(int) + UNSEEN_TINTS[1], 0, 255).astype(np.uint8)
    assert choose_tint(first, wash, unseen, current=1) != 1  # the frame is the tinted wash: move
    assert choose_tint(None, wash, unseen, current=3) == 3


def test_cpu_and_torch_models_agree():
    pytest.importorskip("torch")
    cpu, gpu = BackgroundModel(0.1), TorchBackgroundModel(0.1, device="cpu")
    rng = np.random.default_rng(1)
    for i in range(10):
        frame = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        alpha = np.zeros((30, 40), np.uint8)
        alpha[5 + i : 15 + i, 10:20] = 200
        cpu.update(frame, alpha)
        gpu.update(frame, alpha)
    assert np.abs(cpu.image().astype(int) - gpu.image().cpu().numpy().astype(int)).max() <= 1


def test_cpu_and_torch_models_agree_on_the_learning_rule():
    """Stillness over several frames, margins (exclude), suspect pixels (near) and forget_same: the same on both."""
    pytest.importorskip("torch")
    cpu, gpu = BackgroundModel(0.1, stable=3), TorchBackgroundModel(0.1, device="cpu", stable=3)
    rng = np.random.default_rng(2)
    still = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    for i in range(8):
        frame = still.copy()
        frame[:, 30:35] = 255 if i % 2 else 0  # a flickering strip: never still
        alpha = np.zeros((30, 40), np.uint8)
        alpha[10:20, 10:20] = 255
        exclude = np.zeros((30, 40), bool)
        exclude[8:22, 8:22] = True
        near = np.zeros((30, 40), bool)
        near[:, :25] = True
        cpu.update(frame, alpha, exclude=exclude, near=near)
        gpu.update(frame, alpha, exclude=exclude, near=near)
        assert (cpu.seen == gpu.seen.cpu().numpy()).all(), f"update {i}: learned pixels differ"
    assert not cpu.seen[8:22, 8:22].any() and not cpu.seen[:, 30:35].any()
    where = np.ones((30, 40), bool)
    assert cpu.forget_same(still, where) == gpu.forget_same(still, where) > 0
    assert (cpu.seen == gpu.seen.cpu().numpy()).all()


def test_shape_checks():
    m = BackgroundModel()
    with pytest.raises(ValueError, match=r"alpha: expected shape \(4, 4\)"):
        m.update(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 3), np.uint8))
    with pytest.raises(RuntimeError, match="not been updated"):
        m.image()
    with pytest.raises(ValueError, match=r"rate must be in \(0, 1\]"):
        BackgroundModel(0)


def test_freezes_under_the_whole_blended_region_not_just_the_core(model):
    """The peer froze under the raw box but blended the dilated one: the rim leaked into its background."""
    bg = scene()
    model.update(bg, np.zeros(bg.shape[:2], np.uint8))
    frame = bg.copy()
    frame[20:100, 30:90] = MAGENTA  # a person whose rim (shadow, limbs) the detector did not cover
    alpha = np.zeros(bg.shape[:2], np.uint8)
    alpha[20:100, 30:90] = 1  # the faintest feather still counts as blended
    alpha[40:80, 50:70] = 255
    for _ in range(10):
        model.update(frame, alpha)
    assert not is_person_colour(_np(model.image())).any()


def test_a_prior_guides_the_motion_guard_but_is_never_used_as_fill(model):
    """A median prior may hold a person who stood still; only the motion guard's reference sees it."""
    bg = scene()
    prior = _person_frame(bg, (40, 30, 80, 90))  # the median still shows someone
    model.prime(prior)
    reference, known = model.reference()
    assert known.all() and is_person_colour(reference).any()
    model.update(bg, _alpha(bg.shape, (0, 0, 160, 60)))  # learns the bottom half only
    image = _np(model.image())
    assert not is_person_colour(image).any(), "the prior leaked into the fill"
    assert (image[60:] == bg[60:]).all()


def test_forget_makes_pixels_unseen_and_never_fills_with_what_was_learned(model):
    bg = scene()
    ghost = _person_frame(bg, (40, 30, 80, 90))
    model.update(ghost, np.zeros(bg.shape[:2], np.uint8))  # learned a person the detector missed
    where = np.zeros(bg.shape[:2], bool)
    where[30:90, 40:80] = True
    model.forget(where)
    assert not _np(model.seen)[50, 60] and _np(model.seen)[0, 0]
    assert not is_person_colour(_np(model.image())).any()


def test_forgetting_after_the_fill_exists_patches_only_the_forgotten_pixels(model):
    """The inpainted fill is made once; a later forget re-inpaints just its pixels, never shows them."""
    bg = scene()
    model.update(bg, _alpha(bg.shape, (100, 20, 140, 100)))  # a person stands at the right: unseen there
    first = _np(model.image()).copy()  # the fill exists now
    ghost = _person_frame(bg, (20, 30, 60, 90))
    model.update(ghost, _alpha(bg.shape, (100, 20, 140, 100)))  # learns a missed person on the left
    where = np.zeros(bg.shape[:2], bool)
    where[30:90, 20:60] = True
    model.forget(where)
    image = _np(model.image())
    assert not is_person_colour(image).any(), "the forgotten person came back as fill"
    assert (image[20:100, 100:140] == first[20:100, 100:140]).all(), "the fill away from the forgotten pixels changed"
    outside = ~where
    outside[20:100, 100:140] = False
    assert np.abs(image[outside].astype(int) - first[outside].astype(int)).max() <= 1


def test_forgotten_pixels_keep_their_old_value_for_the_guard_until_learned_again(model):
    bg = scene()
    model.update(bg, np.zeros(bg.shape[:2], np.uint8))
    where = np.zeros(bg.shape[:2], bool)
    where[30:90, 40:80] = True
    model.forget(where)
    assert (_np(model.forgotten) == where).all()
    reference, _ = model.reference()
    assert np.abs(_np(reference).astype(int) - bg.astype(int)).max() <= 1, "the old value is still there"
    model.update(bg, _alpha(bg.shape, (40, 30, 60, 90)))  # the right half is free again
    assert _np(model.forgotten)[50, 70] == 0 and _np(model.forgotten)[50, 50] == 1
