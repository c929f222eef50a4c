"""Pictures of what a model does: reconstruction grids (PNG), animations (GIF, MP4) and
training curves.

Reconstructions come from `videomae.masking.reconstruct`, which returns videos in [0, 1]; the
functions here only lay them out and write files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .masking import Reconstruction, reconstruct, tube_mask

ROWS = ("original", "masked", "reconstruction")
_LABEL_WIDTH = 92
_GAP = 2
_BACKGROUND = (255, 255, 255)


@torch.no_grad()
def reconstruct_clip(
    model: torch.nn.Module,
    pixel_values: torch.Tensor,
    mask_ratio: float = 0.9,
    seed: int = 0,
    mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
    std: Sequence[float] = IMAGENET_DEFAULT_STD,
) -> Reconstruction:
    """Mask clips (B, T, C, H, W) with tube masking (seeded), run a `VideoMAEForPreTraining`,
    and return what to show. `mean` / `std` are the normalisation the pixels went through."""
    config = model.config
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    mask = tube_mask(config.grid_size, mask_ratio, pixel_values.shape[0], generator)
    was_training = model.training
    model.eval()
    logits = model(pixel_values.to(device), bool_masked_pos=mask.to(device)).logits
    model.train(was_training)
    return reconstruct(pixel_values.float().cpu(), logits.float().cpu(), mask, config.tubelet_size,
                       config.patch_size, config.norm_pix_loss, tuple(mean), tuple(std))


def _to_uint8(video: torch.Tensor) -> np.ndarray:
    """(T, C, H, W) in [0, 1] -> (T, H, W, 3) uint8; one channel is shown as grey."""
    if video.dim() != 4:
        raise ValueError(f"expected a video (frames, channels, height, width), got shape {tuple(video.shape)}")
    frames = video.detach().float().clamp(0, 1).cpu()
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    elif frames.shape[1] != 3:
        raise ValueError(f"can only show 1 or 3 channels, got {frames.shape[1]}")
    return (frames.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def _rows(rec: Reconstruction, index: int) -> list[np.ndarray]:
    batch = rec.original.shape[0]
    if not -batch <= index < batch:
        raise ValueError(f"index {index} is out of range for a batch of {batch} videos")
    return [_to_uint8(getattr(rec, name)[index]) for name in ROWS]


def _upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (T, H, W, 3), so patches stay sharp squares."""
    return frames if scale == 1 else frames.repeat(scale, axis=1).repeat(scale, axis=2)


def auto_scale(height: int, target: int = 96) -> int:
    """An integer enlargement that makes small frames readable (1 for frames >= target)."""
    return max(1, math.ceil(target / max(1, height)))


def reconstruction_grid(
    rec: Reconstruction, index: int = 0, scale: int | None = None, labels: bool = True
) -> np.ndarray:
    """One image (height, width, 3) uint8: a row each for the original, the masked input and
    the reconstruction, a column per frame, with the row names on the left."""
    rows = _rows(rec, index)
    scale = auto_scale(rows[0].shape[1]) if scale is None else scale
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    rows = [_upscale(r, scale) for r in rows]
    t, h, w, _ = rows[0].shape
    left = _LABEL_WIDTH if labels else 0
    grid = np.full((len(rows) * (h + _GAP) - _GAP, left + t * (w + _GAP) - _GAP, 3), 255, np.uint8)
    for r, frames in enumerate(rows):
        for i, frame in enumerate(frames):
            y, x = r * (h + _GAP), left + i * (w + _GAP)
            grid[y:y + h, x:x + w] = frame
    if labels:
        image = Image.fromarray(grid)
        draw = ImageDraw.Draw(image)
        for r, name in enumerate(ROWS):
            draw.text((4, r * (h + _GAP) + h // 2 - 5), name, fill=(0, 0, 0))
        grid = np.asarray(image)
    return grid


def save_reconstruction_png(
    rec: Reconstruction, path: str | Path, index: int = 0, scale: int | None = None
) -> Path:
    """Write `reconstruction_grid` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(reconstruction_grid(rec, index, scale)).save(path, optimize=True)
    return path


def _side_by_side(rec: Reconstruction, index: int, scale: int | None) -> np.ndarray:
    """(T, H', W', 3): original | masked | reconstruction for each time step."""
    rows = _rows(rec, index)
    scale = auto_scale(rows[0].shape[1], target=128) if scale is None else scale
    rows = [_upscale(r, scale) for r in rows]
    t, h, _, _ = rows[0].shape
    gap = np.full((t, h, _GAP * 2, 3), 255, np.uint8)
    return np.concatenate([rows[0], gap, rows[1], gap, rows[2]], axis=2)


def save_reconstruction_gif(
    rec: Reconstruction, path: str | Path, index: int = 0, fps: float = 4.0, scale: int | None = None
) -> Path:
    """An animated GIF, looping forever: original | masked | reconstruction, frame by frame."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [Image.fromarray(f) for f in _side_by_side(rec, index, scale)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0, optimize=True)
    return path


def save_reconstruction_mp4(
    rec: Reconstruction, path: str | Path, index: int = 0, fps: int = 4, scale: int | None = None
) -> Path:
    """The same animation as an H.264 mp4 (written with PyAV; sides padded to even sizes)."""
    from .data.synthetic import write_video

    frames = _side_by_side(rec, index, scale)
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
    return write_video(path, frames, fps=fps, crf=18, pix_fmt="yuv420p")  # for any player


def plot_curves(
    panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
    path: str | Path,
    xlabel: str = "step",
    title: str | None = None,
    ylim: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Line plots, one panel per key of `panels`, one line per (name -> [(x, y), ...]).
    Panels and lines without points are left out; `ylim` fixes a panel's y range.

    Example: {"pretraining loss": {"pretrain": [...]}, "test accuracy": {"pretrained": [...],
    "scratch": [...]}}. Draws on matplotlib's Agg canvas directly, so no global backend changes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = {name: {k: v for k, v in series.items() if v} for name, series in panels.items()}
    panels = {name: series for name, series in panels.items() if series} or {"(no data)": {}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4.2 * len(panels), 3.2))
    FigureCanvasAgg(fig)
    for i, (panel, series) in enumerate(panels.items(), start=1):
        ax = fig.add_subplot(1, len(panels), i)
        for name, points in series.items():
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=name, marker="o" if len(points) < 30 else None, markersize=3)
        ax.set_title(panel)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ylim and panel in ylim:
            ax.set_ylim(*ylim[panel])
        if len(series) > 1:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


__all__ = ["reconstruct_clip", "reconstruction_grid", "save_reconstruction_png", "save_reconstruction_gif",
           "save_reconstruction_mp4", "plot_curves", "auto_scale"]
