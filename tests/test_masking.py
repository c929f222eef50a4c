"""Masks, patches, targets and reconstructions."""

from __future__ import annotations

import pytest
import torch

import videomae
from videomae import masking


@pytest.mark.parametrize("grid,ratio", [((8, 14, 14), 0.9), ((2, 4, 4), 0.75), ((3, 2, 5), 0.5), ((1, 3, 3), 0.0)])
def test_tube_mask_counts_and_shape(grid, ratio):
    t, h, w = grid
    mask = videomae.tube_mask(grid, ratio, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (4, t * h * w) and mask.dtype == torch.bool
    slices = mask.reshape(4, t, h * w)
    assert torch.all(slices.sum(-1) == int(ratio * h * w))
    assert torch.all(slices == slices[:, :1])  # same spatial mask at every time step


def test_tube_mask_is_random_per_sample_and_reproducible():
    grid = (8, 14, 14)
    a = videomae.tube_mask(grid, 0.9, 8, generator=torch.Generator().manual_seed(1))
    b = videomae.tube_mask(grid, 0.9, 8, generator=torch.Generator().manual_seed(1))
    c = videomae.tube_mask(grid, 0.9, 8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(row.tolist()) for row in a}) == 8


def test_random_mask_counts():
    mask = videomae.random_mask(1568, 0.9, 3, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (3, 1568) and torch.all(mask.sum(1) == int(0.9 * 1568))


def test_mask_ratio_must_be_a_fraction():
    with pytest.raises(ValueError, match="mask_ratio"):
        videomae.tube_mask((2, 2, 2), 1.0)


@pytest.mark.parametrize("shape,tubelet,patch", [((2, 4, 3, 32, 48), 2, 16), ((1, 3, 1, 8, 8), 1, 4)])
def test_patchify_unpatchify_identity(shape, tubelet, patch):
    video = torch.randn(shape)
    patches = videomae.patchify(video, tubelet, patch)
    b, t, c, h, w = shape
    assert patches.shape == (b, (t // tubelet) * (h // patch) * (w // patch), tubelet * patch * patch * c)
    grid = (t // tubelet, h // patch, w // patch)
    assert torch.equal(videomae.unpatchify(patches, grid, tubelet, patch), video)


def test_patch_layout_is_t_h_w_then_tubelet_row_col_channel():
    video = torch.arange(1 * 2 * 3 * 4 * 4, dtype=torch.float).reshape(1, 2, 3, 4, 4)
    patches = videomae.patchify(video, 2, 2)
    # token 1 is (t=0, h=0, w=1); its first value is frame 0, row 0, column 2, channel 0
    assert patches[0, 1, 0] == video[0, 0, 0, 0, 2]
    # second value inside a patch is the next channel
    assert patches[0, 0, 1] == video[0, 0, 1, 0, 0]


def test_normalized_targets_have_zero_mean_unit_std():
    pixels = torch.randn(2, 4, 3, 16, 16)
    mask = videomae.tube_mask((2, 2, 2), 0.5, 2)
    targets = videomae.pretraining_targets(pixels, mask, 2, 8, norm_pix_loss=True)
    assert targets.shape == (2, 4, 2 * 8 * 8 * 3)
    per_channel = targets.reshape(2, 4, -1, 3)
    torch.testing.assert_close(per_channel.mean(2), torch.zeros(2, 4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(2), torch.ones(2, 4, 3), atol=1e-4, rtol=0)


def test_reconstruction_from_perfect_prediction_is_the_original():
    pixels = torch.randn(2, 4, 3, 16, 16).clamp(-2, 2)
    mask = videomae.tube_mask((2, 2, 2), 0.5, 2, generator=torch.Generator().manual_seed(0))
    for norm_pix in (True, False):
        targets = videomae.pretraining_targets(pixels, mask, 2, 8, norm_pix_loss=norm_pix)
        rec = videomae.reconstruct(pixels, targets, mask, 2, 8, norm_pix_loss=norm_pix)
        expected = masking.unnormalize(pixels).clamp(0, 1)
        torch.testing.assert_close(rec.reconstruction, expected, atol=1e-4, rtol=0)
        hidden = videomae.unpatchify(mask[:, :, None].float().expand(-1, -1, 384), (2, 2, 2), 2, 8).bool()
        assert torch.all(rec.masked[hidden] == 0.5)
        assert torch.equal(rec.masked[~hidden], rec.original[~hidden])


def test_targets_undo_the_statistics_the_pixels_were_normalised_with():
    """Without norm_pix_loss the target is the pixel in [0, 1], whatever mean and std the run used."""
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.5, 1.0)
    frames = torch.rand(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))  # [0, 1]
    pixels = (frames - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)
    mask = videomae.tube_mask((2, 2, 2), 0.5, 2, generator=torch.Generator().manual_seed(1))
    targets = videomae.pretraining_targets(pixels, mask, 2, 8, norm_pix_loss=False, mean=mean, std=std)
    expected = videomae.patchify(frames, 2, 8)[mask].reshape(2, 4, -1)
    torch.testing.assert_close(targets, expected, atol=1e-6, rtol=0)
    # the default stays ImageNet's, as in transformers
    imagenet = videomae.pretraining_targets(pixels, mask, 2, 8, norm_pix_loss=False)
    torch.testing.assert_close(imagenet, videomae.patchify(masking.unnormalize(pixels), 2, 8)[mask].reshape(2, 4, -1))
