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


def _v2_running_cell_maps(grid, ratio):
    """OpenGVLab/VideoMAEv2 RunningCellMaskingGenerator's 4 maps, transcribed with lists: a ring
    [1]*m + [0]*(4-m), pointer set to the phase, advanced by one before each temporal slice,
    the 2x2 cell = ring read from the pointer, np.tile'd over (h, w). 1 = masked."""
    t, h, w = grid
    m = int(4 * ratio)
    ring = [1] * m + [0] * (4 - m)
    maps = []
    for phase in range(4):
        ptr, rows = phase, []
        for _ in range(t):
            ptr += 1
            cell = [ring[(i + ptr) % 4] for i in range(4)]  # reshape(2, 2): entry 2*row + col
            rows += [cell[2 * (r % 2) + c % 2] for r in range(h) for c in range(w)]
        maps.append(torch.tensor(rows, dtype=torch.bool))
    return maps


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_running_cell_mask_is_one_of_videomae_v2s_four_maps_per_sample(ratio):
    grid = (3, 4, 6)
    maps = _v2_running_cell_maps(grid, ratio)
    mask = masking.running_cell_mask(grid, ratio, 64, torch.Generator().manual_seed(0))
    assert mask.shape == (64, 72) and mask.dtype == torch.bool
    phases = [[torch.equal(row, m) for m in maps].index(True) for row in mask]  # each row is one of the maps
    assert set(phases) == {0, 1, 2, 3}  # and each sample draws its own phase
    assert (mask.reshape(64, 3, 24).sum(-1) == int(4 * ratio) * 6).all()  # the same count in every slice
    again = masking.running_cell_mask(grid, ratio, 64, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_running_cell_mask_shifts_one_step_per_slice_and_checks_its_grid():
    mask = masking.running_cell_mask((2, 2, 2), 0.5, 1, torch.Generator().manual_seed(3))[0].reshape(2, 4)
    assert torch.equal(mask[1], mask[0].roll(-1))  # cell entries move one position from slice to slice
    with pytest.raises(ValueError, match="even; the grid is 2x3x4"):
        masking.running_cell_mask((2, 3, 4), 0.5)
    with pytest.raises(ValueError, match="0.25, 0.5 or 0.75"):
        masking.running_cell_mask((2, 4, 4), 0.1)


def test_decoder_targets_keep_the_decoders_positions_and_weigh_the_hidden_ones():
    hidden = torch.tensor([[True, False, True, True, False, True]])
    dropped = torch.tensor([[False, False, True, True, False, False]])  # the decoder keeps 0, 1, 4, 5
    kept, weight = masking.decoder_targets(hidden, dropped)
    assert kept.tolist() == [[0, 1, 4, 5]] and weight.tolist() == [[1.0, 0.0, 0.0, 1.0]]
