"""Fine-tuning augmentations (videomae.data.augment) and the rest of the recipe: head init scale,
the options' defaults and the demo keeping its own."""

from __future__ import annotations

import pytest
import torch

from videomae.data.augment import (OPS, RAND_INCREASING_TRANSFORMS, RAND_TRANSFORMS, RandAugmentSpec,
                                   parse_rand_augment, rand_augment, random_erasing)

RECIPE = "rand-m7-n4-mstd0.5-inc1"


def _clip(seed: int = 0, frames: int = 4, size: int = 24) -> torch.Tensor:
    return torch.randint(256, (frames, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _repeated(seed: int = 0, frames: int = 4, size: int = 24) -> torch.Tensor:
    return _clip(seed, 1, size).expand(frames, -1, -1, -1).contiguous()


# Every operation at a level of 7 with a positive and a negative sign (for those with one).
_ARGS = [(name, OPS[name][1](7.0, lambda v: v)) for name in OPS] + \
        [(name, OPS[name][1](7.0, lambda v: -v)) for name in ("Rotate", "ShearX", "TranslateYRel", "ColorIncreasing")]


@pytest.mark.parametrize("name,arg", _ARGS, ids=[f"{n}-{a}" for n, a in _ARGS])
def test_every_operation_keeps_shape_dtype_and_treats_frames_alike(name, arg):
    clip = _repeated()
    out = OPS[name][0](clip, arg)
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert all(torch.equal(out[0], frame) for frame in out[1:]), name


def test_operations_do_what_their_names_say():
    clip = _clip()
    ops = {name: fn for name, (fn, _) in OPS.items()}
    assert torch.equal(ops["Invert"](clip, None), 255 - clip)
    assert torch.equal(ops["Posterize"](clip, 2), clip & 0b11000000)
    assert torch.equal(ops["Solarize"](clip, 100), torch.where(clip < 100, clip, 255 - clip))
    assert torch.equal(ops["Brightness"](clip, 1.0), clip) and torch.equal(ops["Color"](clip, 1.0), clip)
    assert ops["Brightness"](clip, 0.0).max() == 0
    assert torch.equal(ops["Rotate"](clip, 0.0), clip) and torch.equal(ops["ShearX"](clip, 0.0), clip)
    # A translation by a quarter of the width: the columns move left, grey comes in on the right.
    moved = ops["TranslateXRel"](clip, 0.25)
    assert torch.equal(moved[..., :18], clip[..., 6:]) and (moved[..., 18:] == 128).all()
    # Rotating by 90 degrees (counter-clockwise, as PIL) is a transpose and a flip.
    assert torch.equal(ops["Rotate"](clip, 90.0), clip.transpose(-2, -1).flip(-2))
    low = (clip // 4 + 50).to(torch.uint8)  # values 50..113
    stretched = ops["AutoContrast"](low, None)
    assert stretched.amin(dim=(-2, -1)).eq(0).all() and stretched.amax(dim=(-2, -1)).eq(255).all()
    flat = torch.full_like(clip, 7)
    assert torch.equal(ops["AutoContrast"](flat, None), flat) and torch.equal(ops["Equalize"](flat, None), flat)
    equalized = ops["Equalize"](low, None).float()
    assert equalized.std() > low.float().std() * 2  # the histogram is spread over 0..255


def test_parse_rand_augment_reads_timm_strings():
    spec = parse_rand_augment(RECIPE)
    assert spec == RandAugmentSpec(magnitude=7.0, num_layers=4, magnitude_std=0.5, ops=RAND_INCREASING_TRANSFORMS)
    assert parse_rand_augment("rand-m9-n2").ops == RAND_TRANSFORMS
    assert parse_rand_augment("rand-m9-mstd101-mmax8-p0.3").magnitude_max == 8.0
    assert set(RAND_TRANSFORMS) | set(RAND_INCREASING_TRANSFORMS) <= set(OPS)


@pytest.mark.parametrize("bad", ["", "rand", "augmix-m5", "rand-m7-x4", "rand-mseven", "rand-n-1", "rand-p2"])
def test_parse_rand_augment_names_a_bad_string(bad):
    with pytest.raises(ValueError, match=repr(bad).replace("[", r"\[")):
        parse_rand_augment(bad)


def test_rand_augment_is_one_draw_per_clip_reproducible_and_seeded():
    clip = _repeated(size=32)
    outs = []
    for seed in range(12):
        out = rand_augment(clip, RECIPE, torch.Generator().manual_seed(seed))
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert all(torch.equal(out[0], frame) for frame in out[1:]), seed
        assert torch.equal(out, rand_augment(clip, RECIPE, torch.Generator().manual_seed(seed)))
        outs.append(out)
    assert sum(not torch.equal(a, b) for a, b in zip(outs, outs[1:])) >= 8  # other seeds, other transforms
    assert sum(not torch.equal(o, clip) for o in outs) >= 8


def test_random_erasing_probability_area_and_frames():
    clip = torch.zeros(3, 3, 40, 40, dtype=torch.uint8)  # erased pixels are (almost all) nonzero
    gen = torch.Generator().manual_seed(0)
    erased, draws = 0, 2000
    for _ in range(draws):
        out = random_erasing(clip, 0.25, gen)
        assert out.shape == clip.shape and out.dtype == torch.uint8
        changed = (out != 0).any(dim=(0, 1))  # (H, W)
        if changed.any():
            erased += 1
            assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
            rows, cols = changed.any(dim=1).nonzero(), changed.any(dim=0).nonzero()
            h, w = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
            assert 0.02 * 1600 * 0.8 <= h * w <= 1600 / 3 * 1.1, (h, w)  # within the area bounds, up to rounding
            assert 0.3 * 0.7 <= h / w <= 1 / 0.3 / 0.7, (h, w)
    assert abs(erased / draws - 0.25) < 0.03, erased / draws
    assert torch.equal(random_erasing(clip, 0.0, gen), clip)
    a = random_erasing(_clip(), 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, random_erasing(_clip(), 1.0, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, random_erasing(_clip(), 1.0, torch.Generator().manual_seed(4)))


def test_dataset_applies_them_only_when_asked(tmp_path):
    from train_fixtures import make_motion_videos

    from videomae.data.datasets import VideoClipDataset, load_records

    records, _ = load_records(make_motion_videos(tmp_path, per_class=1), labeled=True)
    args = (records, 4, 2, 32, 40)
    plain = VideoClipDataset(*args, flip=False)
    augmented = VideoClipDataset(*args, flip=False, rand_augment=RECIPE, random_erasing=1.0)
    assert plain.rand_augment is None and plain.random_erasing == 0.0
    a, b = plain[(0, 0)]["pixel_values"], augmented[(0, 0)]["pixel_values"]
    assert a.shape == b.shape == (1, 4, 3, 32, 32) and b.dtype == torch.uint8
    assert not torch.equal(a, b)
    assert torch.equal(b, augmented[(0, 0)]["pixel_values"])  # keyed by (index, epoch), as before
    with pytest.raises(ValueError, match="rand-x"):
        VideoClipDataset(*args, rand_augment="rand-x")


# --------------------------------------------------------------------------- recipe wiring
def test_finetune_options_default_to_the_recipe_and_the_demo_keeps_its_own():
    from videomae.demo import RECIPES
    from videomae.train.options import FinetuneOptions

    options = FinetuneOptions()
    assert (options.rand_augment, options.random_erasing, options.head_init_scale) == (RECIPE, 0.25, 0.001)
    for name, recipe in RECIPES.items():
        demo = FinetuneOptions(**recipe.finetune)
        assert (demo.rand_augment, demo.random_erasing, demo.head_init_scale) == (None, 0.0, 1.0), name
    with pytest.raises(ValueError, match="rand-m7-q4"):
        FinetuneOptions(rand_augment="rand-m7-q4").validate()


def test_head_init_scale_applies_to_a_new_head_only(tmp_path):
    from train_fixtures import TINY_CONFIG

    from videomae import VideoMAEForVideoClassification
    from videomae.train.entrypoints import build_model_and_new_weights, scale_new_head
    from videomae.train.options import FinetuneOptions

    head = {"num_labels": 3, "use_mean_pooling": True}
    options = FinetuneOptions(model="small", config_overrides=TINY_CONFIG)
    torch.manual_seed(0)
    fresh, new = build_model_and_new_weights(VideoMAEForVideoClassification, options, head)
    torch.manual_seed(0)
    reference = VideoMAEForVideoClassification(fresh.config)
    assert scale_new_head(fresh, new, 0.001)
    torch.testing.assert_close(fresh.classifier.weight, reference.classifier.weight * 0.001)
    assert fresh.classifier.weight.abs().max() < 1e-3 * 0.1  # trunc-normal std 0.02, times 0.001
    torch.testing.assert_close(fresh.classifier.bias, reference.classifier.bias * 0.001)

    # A trained classifier with the same labels is loaded as it is...
    with torch.no_grad():
        reference.classifier.weight.fill_(0.5)
    reference.save_pretrained(tmp_path / "trained")
    loaded, new = build_model_and_new_weights(VideoMAEForVideoClassification,
                                              options.replace(init_from=str(tmp_path / "trained")), head,
                                              ignore_mismatched_sizes=True)
    assert not scale_new_head(loaded, new, 0.001)
    assert (loaded.classifier.weight == 0.5).all()
    # ... but one for other labels is new, and scaled.
    relabeled, new = build_model_and_new_weights(VideoMAEForVideoClassification,
                                                 options.replace(init_from=str(tmp_path / "trained")),
                                                 {**head, "num_labels": 5}, ignore_mismatched_sizes=True)
    assert "classifier.weight" in new and scale_new_head(relabeled, new, 0.001)
    assert relabeled.classifier.weight.abs().max() < 1e-3 * 0.1
