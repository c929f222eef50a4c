"""Reconstruction pictures and curves: the pixels land where they should, files open."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from videomae import VideoMAEConfig, VideoMAEForPreTraining
from videomae.masking import Reconstruction, patchify
from videomae.video import read_video
from videomae.visualize import (
    plot_curves,
    reconstruct_clip,
    reconstruction_grid,
    save_reconstruction_gif,
    save_reconstruction_mp4,
    save_reconstruction_png,
)


def _rec(frames: int = 4, size: int = 8) -> Reconstruction:
    g = torch.Generator().manual_seed(0)
    videos = [torch.rand(2, frames, 3, size, size, generator=g) for _ in range(3)]
    return Reconstruction(*videos)


def test_grid_layout() -> None:
    rec = _rec()
    grid = reconstruction_grid(rec, index=1, scale=2, labels=False)
    gap, side = 2, 16
    assert grid.shape == (3 * side + 2 * gap, 4 * side + 3 * gap, 3)
    for row, video in enumerate((rec.original, rec.masked, rec.reconstruction)):
        for t in range(4):
            y, x = row * (side + gap), t * (side + gap)
            expected = (video[1, t].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            np.testing.assert_array_equal(grid[y:y + side:2, x:x + side:2], expected)
    labelled = reconstruction_grid(rec, scale=2)
    assert labelled.shape[1] > grid.shape[1] and labelled.shape[0] == grid.shape[0]


def test_files(tmp_path) -> None:  # noqa: ANN001
    rec = _rec(frames=6, size=16)
    png = save_reconstruction_png(rec, tmp_path / "a" / "rec.png")
    assert Image.open(png).size[1] == 3 * 96 + 4  # 16-pixel frames enlarged 6x to be readable
    gif = Image.open(save_reconstruction_gif(rec, tmp_path / "rec.gif", scale=1))
    assert gif.n_frames == 6 and gif.size == (3 * 16 + 2 * 4, 16)
    mp4 = read_video(save_reconstruction_mp4(rec, tmp_path / "rec.mp4", scale=3))
    assert mp4.shape == (6, 48, 3 * 48 + 8, 3)


def test_reconstruct_clip_keeps_visible_patches() -> None:
    config = VideoMAEConfig(image_size=16, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, decoder_hidden_size=16,
                            decoder_num_hidden_layers=1, decoder_num_attention_heads=1, decoder_intermediate_size=32)
    torch.manual_seed(0)
    model = VideoMAEForPreTraining(config)
    pixels = torch.randn(1, 4, 3, 16, 16) * 0.5
    rec = reconstruct_clip(model, pixels, mask_ratio=0.5, seed=1)
    again = reconstruct_clip(model, pixels, mask_ratio=0.5, seed=1)
    torch.testing.assert_close(rec.reconstruction, again.reconstruction)
    original = patchify(rec.original, 2, 8)[0]
    masked = patchify(rec.masked, 2, 8)[0]
    rebuilt = patchify(rec.reconstruction, 2, 8)[0]
    grey = (masked == 0.5).all(dim=-1)
    assert int(grey.sum()) == 4  # half of each slice's 4 patches, in both slices
    torch.testing.assert_close(rebuilt[~grey], original[~grey])
    assert not torch.allclose(rebuilt[grey], original[grey])


def test_plot_curves(tmp_path) -> None:  # noqa: ANN001
    path = plot_curves({"loss": {"a": [(0, 1.0), (1, 0.5)]}, "accuracy": {"a": [(1, 0.2)], "b": [(1, 0.3)]}},
                       tmp_path / "curves.png", title="t")
    image = Image.open(path)
    assert image.size[0] > image.size[1] > 100


def test_run_curves_are_drawn_by_plot_curves(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """train.metrics.plot_metrics reads a run's metrics and hands them to the one plot_curves."""
    import json

    from videomae import visualize
    from videomae.train.metrics import plot_metrics

    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"kind": "train", "step": 1, "loss": 1.0, "lr": 0.1}, {"kind": "train", "step": 2, "loss": 0.5, "lr": 0.2},
        {"kind": "eval", "step": 2, "top1": 0.5, "top5": 0.9}]))
    seen = []
    real = visualize.plot_curves
    monkeypatch.setattr(visualize, "plot_curves",
                        lambda panels, path, **kw: seen.append(panels) or real(panels, path, **kw))
    path = plot_metrics(tmp_path, tmp_path / "curves.png")
    assert Image.open(path).size[0] > 300
    assert seen[0]["loss"] == {"train loss": [(1, 1.0), (2, 0.5)]}
    assert seen[0]["accuracy"]["eval top-1"] == [(2, 0.5)]
