"""Position tables: the fixed sin-cos table, and resizing a table to another token grid.

Tokens are ordered (time, height, width), so a table of T*H*W rows is a (T, H, W, D) grid.
Resizing it as a grid keeps each position's 3-D meaning; rebuilding a longer 1-D table would
shift every spatial position (row h*W + w of a 14-wide grid is not (h, w) of a 20-wide one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """Fixed position table (1, num_positions, dim): angle pos / 10000^(2*(j//2)/dim), sin on
    even j, cos on odd j. Computed in float64 so it equals the reference table."""
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float().unsqueeze(0)


def resize_table(
    table: torch.Tensor, grid: tuple[int, int, int], new_grid: tuple[int, int, int]
) -> torch.Tensor:
    """A (1, T*H*W, D) table made for `grid` = (T, H, W) -> (1, T'*H'*W', D) for `new_grid`.

    As VideoMAE V2 resizes its tables: bicubic over (H, W) within each temporal slice, then
    linear over T (both with align_corners=False), in float32. The same grid returns `table`
    itself, so a model at its trained size is unchanged bit for bit.
    """
    t, h, w = grid
    t2, h2, w2 = new_grid
    if tuple(grid) == tuple(new_grid):
        return table
    dim = table.shape[-1]
    if table.shape[-2] != t * h * w:
        raise ValueError(f"position table has {table.shape[-2]} rows, but its grid {t}x{h}x{w} has {t * h * w}")
    x = table.reshape(t, h, w, dim).float()
    if (h, w) != (h2, w2):
        x = x.permute(0, 3, 1, 2)  # (T, D, H, W)
        x = F.interpolate(x, size=(h2, w2), mode="bicubic", align_corners=False)
        x = x.permute(0, 2, 3, 1)  # (T, H', W', D)
    if t != t2:
        x = x.permute(1, 2, 3, 0).reshape(h2 * w2, dim, t)  # (H'W', D, T)
        x = F.interpolate(x, size=t2, mode="linear", align_corners=False)
        x = x.reshape(h2, w2, dim, t2).permute(3, 0, 1, 2)  # (T', H', W', D)
    return x.reshape(1, t2 * h2 * w2, dim).to(table.dtype)


def grid_of(pixel_values: torch.Tensor, tubelet_size: int, patch_size: int) -> tuple[int, int, int]:
    """The token grid of (B, T, C, H, W) pixels."""
    _, frames, _, height, width = pixel_values.shape
    return frames // tubelet_size, height // patch_size, width // patch_size


__all__ = ["sinusoid_table", "resize_table", "grid_of"]
