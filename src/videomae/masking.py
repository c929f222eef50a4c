"""Masks, patches and reconstruction targets: pure functions of tensors and sizes.

Mask convention, used everywhere in this package: `True` = masked = hidden from the encoder
and predicted by the decoder; `False` = visible. Tokens are ordered (time, height, width);
pixels inside a token are ordered (tubelet, patch row, patch column, channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD


def _check_ratio(mask_ratio: float) -> None:
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")


def tube_mask(
    grid_size: tuple[int, int, int],
    mask_ratio: float,
    batch_size: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Tube masking: one spatial mask per sample, repeated over every temporal slice.

    Exactly `int(mask_ratio * height * width)` tokens are masked in each slice, so every
    sample masks the same number of tokens (the encoder needs that to batch).

    Returns a bool tensor (batch_size, t * h * w).
    """
    _check_ratio(mask_ratio)
    t, h, w = grid_size
    per_frame = h * w
    num_masked = int(mask_ratio * per_frame)
    noise = torch.rand(batch_size, per_frame, generator=generator)
    ranks = noise.argsort(dim=1).argsort(dim=1)  # rank of each token's noise, a random permutation
    frame_mask = ranks < num_masked  # (B, h*w)
    mask = frame_mask[:, None, :].expand(batch_size, t, per_frame).reshape(batch_size, t * per_frame)
    return mask.to(device) if device is not None else mask


def random_mask(
    num_patches: int,
    mask_ratio: float,
    batch_size: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Independent random masking of `int(mask_ratio * num_patches)` tokens per sample.

    Returns a bool tensor (batch_size, num_patches).
    """
    _check_ratio(mask_ratio)
    num_masked = int(mask_ratio * num_patches)
    noise = torch.rand(batch_size, num_patches, generator=generator)
    mask = noise.argsort(dim=1).argsort(dim=1) < num_masked
    return mask.to(device) if device is not None else mask


def running_cell_mask(
    grid_size: tuple[int, int, int],
    mask_ratio: float = 0.5,
    batch_size: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """VideoMAE V2's decoder mask ("running cell"): True = not reconstructed by the decoder.

    A 2x2 cell holds `int(4 * mask_ratio)` masked entries then the kept ones, read as a ring
    [1]*m + [0]*(4-m); cell entry i = 2*row + col of temporal slice t at phase p is
    ring[(i + p + t + 1) % 4] (OpenGVLab/VideoMAEv2 RunningCellMaskingGenerator: the ring
    turns one step before each slice). The cell is tiled over the (h, w) grid; each sample
    draws one of the 4 phases. Every sample masks the same count, as the decoder needs.

    Returns a bool tensor (batch_size, t * h * w).
    """
    t, h, w = grid_size
    num_masked = int(4 * mask_ratio)
    if not 0 < num_masked < 4:
        raise ValueError(f"running-cell mask_ratio must mask 1, 2 or 3 of a 2x2 cell's 4 tokens (0.25, 0.5 or "
                         f"0.75), got {mask_ratio}")
    if h % 2 or w % 2:
        raise ValueError(f"running-cell masking tiles a 2x2 cell over the token grid, so its height and width must "
                         f"be even; the grid is {t}x{h}x{w}")
    ring = torch.arange(4) < num_masked  # (4,): [True]*m + [False]*(4-m)
    phase = torch.randint(4, (batch_size,), generator=generator)
    entry = (torch.arange(4)[None, None, :] + phase[:, None, None] + torch.arange(t)[None, :, None] + 1) % 4
    cell = ring[entry].reshape(batch_size, t, 2, 2)  # (B, t, 2, 2)
    mask = cell.repeat(1, 1, h // 2, w // 2)  # (B, t, h, w): np.tile of the cell
    mask = mask.reshape(batch_size, t * h * w)
    return mask.to(device) if device is not None else mask


def decoder_targets(
    bool_masked_pos: torch.Tensor, decoder_masked_pos: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual masking: the positions the decoder predicts, (B, n) ascending (every one its
    decoder mask keeps, as VideoMAE V2 does, visible ones included), and a (B, n) float weight,
    1 where that position was hidden from the encoder: only those count in the loss."""
    num_dropped = int(decoder_masked_pos[0].sum())
    kept, _ = split_indices(decoder_masked_pos, num_dropped)
    weight = bool_masked_pos.gather(1, kept).float()
    return kept, weight


def check_mask(bool_masked_pos: torch.Tensor, batch_size: int, num_patches: int) -> int:
    """Validate a mask for the encoder and return the number of masked tokens per sample."""
    if not isinstance(bool_masked_pos, torch.Tensor):
        raise ValueError(f"bool_masked_pos must be a tensor, got {type(bool_masked_pos).__name__}")
    if bool_masked_pos.dtype != torch.bool:
        raise ValueError(f"bool_masked_pos must be a bool tensor (True = masked), got {bool_masked_pos.dtype}: "
                         "pass mask.bool()")
    if bool_masked_pos.dim() == 1:
        raise ValueError(f"bool_masked_pos must be (batch, {num_patches}); got shape "
                         f"{tuple(bool_masked_pos.shape)}: add the batch dimension")
    if tuple(bool_masked_pos.shape) != (batch_size, num_patches):
        raise ValueError(f"bool_masked_pos must have shape (batch={batch_size}, num_patches={num_patches}), "
                         f"got {tuple(bool_masked_pos.shape)}")
    counts = bool_masked_pos.sum(dim=1)
    if batch_size and bool((counts != counts[0]).any()):
        raise ValueError(f"every sample must mask the same number of tokens; bool_masked_pos masks "
                         f"{counts.tolist()} per sample")
    return int(counts[0]) if batch_size else 0


def split_indices(bool_masked_pos: torch.Tensor, num_masked: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(visible, masked) token indices, each (B, n) and ascending: the order boolean indexing
    gives. Gathering with them has a static shape, so no device sync and no graph break."""
    order = torch.argsort(bool_masked_pos.to(torch.uint8), dim=1, stable=True)  # visible first, then masked
    num_visible = bool_masked_pos.shape[1] - num_masked
    return order[:, :num_visible], order[:, num_visible:]


def gather_tokens(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, N, D) tokens at (B, n) indices -> (B, n, D)."""
    return tokens.gather(1, index[..., None].expand(-1, -1, tokens.shape[-1]))


def patchify(video: torch.Tensor, tubelet_size: int, patch_size: int) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, N, tubelet * patch * patch * C), tokens in (t, h, w) order."""
    b, t, c, h, w = video.shape
    gt, gh, gw = t // tubelet_size, h // patch_size, w // patch_size
    x = video.reshape(b, gt, tubelet_size, c, gh, patch_size, gw, patch_size)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)  # (B, gt, gh, gw, tubelet, p, p, C)
    return x.reshape(b, gt * gh * gw, tubelet_size * patch_size * patch_size * c)


def unpatchify(
    patches: torch.Tensor, grid_size: tuple[int, int, int], tubelet_size: int, patch_size: int
) -> torch.Tensor:
    """(B, N, tubelet * patch * patch * C) -> (B, T, C, H, W); the inverse of `patchify`."""
    b, n, dim = patches.shape
    gt, gh, gw = grid_size
    if n != gt * gh * gw:
        raise ValueError(f"unpatchify: {n} tokens do not fill a {gt}x{gh}x{gw} grid")
    c = dim // (tubelet_size * patch_size * patch_size)
    x = patches.reshape(b, gt, gh, gw, tubelet_size, patch_size, patch_size, c)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)  # (B, gt, tubelet, C, gh, p, gw, p)
    return x.reshape(b, gt * tubelet_size, c, gh * patch_size, gw * patch_size)


def unnormalize(
    pixel_values: torch.Tensor,
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
) -> torch.Tensor:
    """Undo per-channel normalisation of (B, T, C, H, W) pixels, back to [0, 1]."""
    shape = (1, 1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=pixel_values.dtype, device=pixel_values.device).view(shape)
    std_t = torch.as_tensor(std, dtype=pixel_values.dtype, device=pixel_values.device).view(shape)
    return pixel_values * std_t + mean_t


def _patch_stats(patches: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-patch, per-channel mean and std (unbiased) over the tubelet*p*p values."""
    b, n, dim = patches.shape
    x = patches.reshape(b, n, dim // channels, channels)  # (B, N, tubelet*p*p, C)
    mean = x.mean(dim=-2, keepdim=True)
    std = x.var(dim=-2, unbiased=True, keepdim=True).sqrt()
    return x, mean, std


def normalize_patches(patches: torch.Tensor, channels: int, eps: float = 1e-6) -> torch.Tensor:
    """The norm-pixel target: each patch and channel to zero mean and unit (unbiased) std."""
    x, mean, std = _patch_stats(patches, channels)
    return ((x - mean) / (std + eps)).reshape(patches.shape)


def pretraining_targets(
    pixel_values: torch.Tensor,
    bool_masked_pos: torch.Tensor | None,
    tubelet_size: int,
    patch_size: int,
    norm_pix_loss: bool = True,
    masked_index: torch.Tensor | None = None,
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
) -> torch.Tensor:
    """Reconstruction targets for the masked tokens only: (B, num_masked, patch_dim).

    Pixels are un-normalised first with the statistics they were normalised with, `mean`
    and `std` (ImageNet's by default, as the original recipe and transformers use) when
    there is one per channel; otherwise they are used as given. Pass `masked_index` (from
    `split_indices`) to avoid a boolean gather.
    """
    b, _, c, _, _ = pixel_values.shape
    frames = unnormalize(pixel_values, mean, std) if c == len(mean) == len(std) else pixel_values
    patches = patchify(frames, tubelet_size, patch_size)
    if masked_index is None:
        masked = patches[bool_masked_pos].reshape(b, -1, patches.shape[-1])  # (B, Nm, patch_dim)
    else:
        masked = gather_tokens(patches, masked_index)
    return normalize_patches(masked, c) if norm_pix_loss else masked


@dataclass
class Reconstruction:
    """Videos (B, T, C, H, W) in [0, 1] pixel space, ready to be shown."""

    original: torch.Tensor
    masked: torch.Tensor
    reconstruction: torch.Tensor


def reconstruct(
    pixel_values: torch.Tensor,
    logits: torch.Tensor,
    bool_masked_pos: torch.Tensor,
    tubelet_size: int,
    patch_size: int,
    norm_pix_loss: bool = True,
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN,
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD,
) -> Reconstruction:
    """Turn decoder output for the masked tokens back into a video a person can look at.

    With `norm_pix_loss` the decoder predicts normalised patches; they are brought back to
    pixels with each patch's true mean and std, as the original visualisation does. Visible
    patches are shown as they were; in `masked` the hidden ones are grey.
    """
    b, t, c, h, w = pixel_values.shape
    grid = (t // tubelet_size, h // patch_size, w // patch_size)
    frames = unnormalize(pixel_values, mean, std) if c == len(mean) else pixel_values
    patches = patchify(frames.float(), tubelet_size, patch_size)  # (B, N, D)
    masked_patches = patches[bool_masked_pos].reshape(b, -1, patches.shape[-1])
    pred = logits.detach().float().reshape(masked_patches.shape)
    if norm_pix_loss:
        _, p_mean, p_std = _patch_stats(masked_patches, c)
        pred = (pred.reshape(b, pred.shape[1], -1, c) * (p_std + 1e-6) + p_mean).reshape(masked_patches.shape)
    recon = patches.clone()
    recon[bool_masked_pos] = pred.reshape(-1, patches.shape[-1])
    grey = patches.clone()
    grey[bool_masked_pos] = 0.5
    return Reconstruction(
        original=frames.float().clamp(0, 1),
        masked=unpatchify(grey, grid, tubelet_size, patch_size).clamp(0, 1),
        reconstruction=unpatchify(recon, grid, tubelet_size, patch_size).clamp(0, 1),
    )
