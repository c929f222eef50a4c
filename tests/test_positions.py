"""Position tables on any grid: resized in 3-D (bicubic over H, W per temporal slice, then
linear over T), identity at the trained grid, for fixed and learned tables."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

import videomae
from original_layout import finetuned_shapes, random_state
from reference import tiny
from videomae.positions import resize_table, sinusoid_table


def _direct(table: torch.Tensor, grid, new_grid) -> torch.Tensor:
    """The rule written out: each temporal slice resized bicubically on its own, then every
    (h, w, channel) line interpolated linearly over T with align_corners=False by hand."""
    t, h, w = grid
    t2, h2, w2 = new_grid
    dim = table.shape[-1]
    x = table.reshape(t, h, w, dim)
    slices = [F.interpolate(x[i].permute(2, 0, 1)[None], size=(h2, w2), mode="bicubic", align_corners=False)[0]
              .permute(1, 2, 0) for i in range(t)]  # each (H', W', D)
    out = []
    for j in range(t2):
        src = max((j + 0.5) * t / t2 - 0.5, 0.0)
        lo = min(math.floor(src), t - 1)
        hi = min(lo + 1, t - 1)
        frac = src - lo
        out.append(slices[lo] * (1 - frac) + slices[hi] * frac)
    return torch.stack(out).reshape(1, t2 * h2 * w2, dim)


@pytest.mark.parametrize("new_grid", [(4, 6, 6), (2, 3, 5), (8, 4, 4), (3, 4, 4)])
def test_resize_equals_the_rule_computed_directly(new_grid):
    grid = (4, 4, 4)
    table = torch.randn(1, 64, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(resize_table(table, grid, new_grid), _direct(table, grid, new_grid),
                               rtol=1e-5, atol=1e-6)


def test_same_grid_is_identity_bitwise():
    table = sinusoid_table(2 * 4 * 4, 32)
    assert resize_table(table, (2, 4, 4), (2, 4, 4)) is table
    model = videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny()))
    assert torch.equal(model.position_table(), sinusoid_table(2 * 4 * 4, 32))


def test_resize_keeps_spatial_meaning_where_a_flat_table_shifts_it():
    table = sinusoid_table(2 * 4 * 4, 32)
    resized = resize_table(table, (2, 4, 4), (2, 8, 8)).reshape(2, 8, 8, 32)
    # corner (0, 0) of the slice 1 grows out of the original corner of slice 1 (row 16), not row 64
    flat = sinusoid_table(2 * 8 * 8, 32).reshape(2, 8, 8, 32)
    assert (resized[1, 0, 0] - table[0, 16]).abs().max() < (flat[1, 0, 0] - table[0, 16]).abs().max()


def _clip(frames: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_short_clip_is_a_clear_error_unless_interpolation_is_asked_for():
    model = videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny())).eval()
    with pytest.raises(ValueError, match="2 frames, the model expects 4.*interpolate_pos_encoding=True"):
        model(_clip(2, 32))
    out = model(_clip(2, 48), interpolate_pos_encoding=True)
    assert out.last_hidden_state.shape == (1, 1 * 6 * 6, 32)


@pytest.mark.parametrize("cls", [videomae.VideoMAEForVideoClassification, videomae.VideoMAEForPreTraining])
def test_grid_change_on_load_equals_interpolation_at_forward(tmp_path, cls):
    model = cls(videomae.VideoMAEConfig(**tiny(num_labels=3))).eval()
    model.save_pretrained(tmp_path / "m")
    moved = cls.from_pretrained(tmp_path / "m", num_frames=8, image_size=48)
    assert moved.config.position_grid == (2, 4, 4) and moved.config.grid_size == (4, 6, 6)
    expected = resize_table(sinusoid_table(32, 32), (2, 4, 4), (4, 6, 6))
    assert torch.equal(moved.videomae.position_embeddings, expected)
    clip = _clip(8, 48)
    with torch.no_grad():
        if cls is videomae.VideoMAEForPreTraining:
            mask = videomae.tube_mask((4, 6, 6), 0.75, 1, torch.Generator().manual_seed(0))
            expected_logits = model(clip, mask, interpolate_pos_encoding=True).logits
            torch.testing.assert_close(moved(clip, mask).logits, expected_logits)
        else:
            torch.testing.assert_close(moved(clip).logits, model(clip, interpolate_pos_encoding=True).logits)
    moved.save_pretrained(tmp_path / "moved")  # position_grid round-trips through config.json
    again = cls.from_pretrained(tmp_path / "moved")
    assert again.config.position_grid == (2, 4, 4)
    assert torch.equal(again.videomae.position_embeddings, expected)


def test_learned_table_from_an_original_checkpoint_is_resized_in_3d(tmp_path):
    shapes = finetuned_shapes(dim=32, depth=1, mlp=64, num_labels=3, patch=8)
    shapes["pos_embed"] = (1, 8 * 4 * 4, 32)  # use_learnable_pos_emb: 16 frames of 32x32 at patch 8
    state = random_state(shapes)
    torch.save({"model": state, "args": argparse.Namespace()}, tmp_path / "ft.pth")
    model, info = videomae.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "ft.pth", num_attention_heads=4, output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert model.config.use_learnable_pos_emb and model.config.grid_size == (8, 4, 4)
    assert torch.equal(model.videomae.position_table(), state["pos_embed"])  # trained grid: the table itself
    assert "videomae.pos_embed" in model.no_weight_decay()
    moved = videomae.VideoMAEForVideoClassification.from_pretrained(
        tmp_path / "ft.pth", num_attention_heads=4, num_frames=8, image_size=40)
    assert moved.config.position_grid == (8, 4, 4)
    torch.testing.assert_close(moved.videomae.position_table(), _direct(state["pos_embed"], (8, 4, 4), (4, 5, 5)),
                               rtol=1e-5, atol=1e-6)
    clip = _clip(8, 40)
    with torch.no_grad():
        torch.testing.assert_close(moved(clip).logits, model(clip, interpolate_pos_encoding=True).logits)
    moved.save_pretrained(tmp_path / "hf")  # the learned table travels in our folders too
    again = videomae.VideoMAEForVideoClassification.from_pretrained(tmp_path / "hf")
    assert torch.equal(again.videomae.pos_embed, state["pos_embed"])
