"""Pure tensor transforms for video clips: resize, crop, flip, rescale and normalise.

Every function takes a tensor whose last three dimensions are (channels, height, width), so a
clip (T, C, H, W) and a batch of clips (B, T, C, H, W) go through the same code, on any device,
and comes back with the same leading dimensions. One implementation serves the inference
processor and the training pipeline.

Speed comes from staying in uint8 as long as possible: crops are views, downscaling uint8 on the
CPU uses torch's antialiased uint8 kernel on the memory as it comes (channels-last, what frames
decoded as (T, H, W, C) are, is its fastest layout, but converting to it costs more than it saves),
and only the final `rescale_and_normalize` writes float32, once. Crop before normalising: it
touches fewer pixels. (Cropping before resizing would touch fewer still, but the crop that a
resize-then-centre-crop keeps starts at a fractional source pixel, e.g. 279.8 for 720p to 224,
and torch's kernel has no sub-pixel offset, so it would not match PIL.)

Antialiased bilinear resizing follows PIL's filter (support scaled with the downscaling factor,
pixel centres at +0.5), so results match PIL's `Image.resize(..., BILINEAR)` within one 8-bit
level; see `_UINT8_MIN_SCALE` for when the uint8 kernel is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "resize",
    "resize_shortest_edge",
    "shortest_edge_size",
    "crop",
    "center_crop",
    "uniform_crop",
    "random_resized_crop",
    "random_resized_crop_params",
    "multi_scale_crop",
    "multi_scale_crop_params",
    "horizontal_flip",
    "rescale",
    "normalize",
    "rescale_and_normalize",
]

_MODES = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}


def _check_image_dims(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(f"{name} must have shape (..., channels, height, width), got {tuple(x.shape)}")


def _pair(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    """(height, width) from an int (square) or a pair."""
    if isinstance(size, int):
        pair = (size, size)
    elif isinstance(size, Sequence) and len(size) == 2:
        pair = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"{name} must be an int or (height, width), got {size!r}")
    if pair[0] < 1 or pair[1] < 1:
        raise ValueError(f"{name} must be positive, got {size!r}")
    return pair


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return float(torch.empty(()).uniform_(low, high, generator=generator))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [0, high)."""
    return int(torch.randint(high, (), generator=generator))


# ---------------------------------------------------------------- resizing

# torch's uint8 kernel rounds exact ties (x.5 before rounding) differently from PIL. Alone that is
# one level; through both passes it can reach two, but only where ties are frequent: scale ratios
# of small denominators near 1 (5/4, 8/7) and upscaling. From this downscaling factor on (checked
# on noise images: 720p, 1080p, 360p, 500x500, ... to 224) it stays within one level. Below it the
# image is small, so the float kernel, exact but slower, costs little.
_UINT8_MIN_SCALE = 1.5


def shortest_edge_size(height: int, width: int, size: int, max_size: int | None = None) -> tuple[int, int]:
    """Output (height, width) when the shorter side becomes `size`, the longer one scaled and truncated.

    The rule of transformers' `get_resize_output_image_size` (the longer side is
    `int(size * long / short)`), or with `max_size` that of `get_size_with_aspect_ratio`: the
    longer side is capped at `max_size`, shrinking the shorter one.
    """
    if max_size is None:
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(size * long / short)
        return (new_long, size) if width <= height else (size, new_long)
    raw_size = None
    short, long = float(min(height, width)), float(max(height, width))
    if long / short * size > max_size:
        raw_size = max_size * short / long
        size = int(round(raw_size))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    scale_from = raw_size if raw_size is not None else size
    if width < height:
        return int(scale_from * height / width), size
    return size, int(scale_from * width / height)


def _uint8_kernel_ok(x: torch.Tensor, height: int, width: int) -> bool:
    """Whether torch's uint8 kernel (CPU only) is within one level of PIL for this resize."""
    if x.device.type != "cpu":
        return False
    in_h, in_w = x.shape[-2:]
    return all(src == dst or src >= _UINT8_MIN_SCALE * dst for src, dst in ((in_h, height), (in_w, width)))


def _dense(x4: torch.Tensor) -> torch.Tensor:
    """x4 itself when its memory is dense channels-first or channels-last, else a dense copy in its own order.

    torch's uint8 kernel reads either layout well (channels-last best: it packs pixels to RGBA,
    and from planes that costs a strided gather) but takes a slow path on gapped memory such as
    a crop view. Converting between the layouts is a transposing copy of the whole input, which
    costs more than the kernel's own gather (16 frames of 720p: about 45 ms against 9), so a copy
    keeps the order the input has: channels innermost stay innermost.
    """
    if x4.is_contiguous() or x4.is_contiguous(memory_format=torch.channels_last):
        return x4
    if x4.stride(1) == 1:
        return x4.contiguous(memory_format=torch.channels_last)
    return x4.contiguous()


def resize(
    x: torch.Tensor, size: int | Sequence[int], interpolation: str = "bilinear", antialias: bool = True,
    exact: bool = True,
) -> torch.Tensor:
    """Resize to exactly (height, width), keeping the dtype (uint8 stays uint8, rounded like PIL).

    Args:
        x: (..., C, H, W), uint8 or float, any device.
        size: (height, width), or an int for a square.
        interpolation: "bilinear" (PIL BILINEAR), "bicubic" (PIL BICUBIC) or "nearest" (PIL NEAREST).
        antialias: widen the filter when downscaling, as PIL does. Ignored for "nearest".
        exact: stay within one level of PIL (inference, where parity with transformers counts).
            False: always torch's uint8 kernel on the CPU, up to 3x faster on small scale
            changes and upscaling, off from PIL by a level or two there (training augmentation).
    """
    _check_image_dims(x)
    height, width = _pair(size)
    if interpolation not in _MODES:
        raise ValueError(f"interpolation must be one of {sorted(_MODES)}, got {interpolation!r}")
    if tuple(x.shape[-2:]) == (height, width):
        return x
    mode = _MODES[interpolation]
    lead = x.shape[:-3]
    x4 = x.reshape(-1, *x.shape[-3:])  # (N, C, H, W); a view for clips and batches alike
    kwargs = {} if mode == "nearest-exact" else {"antialias": antialias, "align_corners": False}
    fast = not exact and x4.device.type == "cpu"
    if x.dtype == torch.uint8 and (mode == "nearest-exact" or fast or _uint8_kernel_ok(x4, height, width)):
        if x4.device.type == "cpu" and x4.shape[1] in (3, 4):
            x4 = _dense(x4)
        out = F.interpolate(x4, size=(height, width), mode=mode, **kwargs)
    elif x.dtype == torch.uint8:
        # Float, then round back like PIL: exact up to PIL's own rounding (see _uint8_kernel_ok).
        out = F.interpolate(x4.float(), size=(height, width), mode=mode, **kwargs)
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    elif x.dtype in (torch.float32, torch.float64) or x.device.type != "cpu":
        out = F.interpolate(x4, size=(height, width), mode=mode, **kwargs)
    else:  # half precision on the CPU: no kernel, go through float32
        out = F.interpolate(x4.float(), size=(height, width), mode=mode, **kwargs).to(x.dtype)
    return out.reshape(*lead, *out.shape[-3:])


def resize_shortest_edge(
    x: torch.Tensor,
    size: int,
    max_size: int | None = None,
    interpolation: str = "bilinear",
    antialias: bool = True,
) -> torch.Tensor:
    """Resize so the shorter side is `size` (aspect ratio kept), see `shortest_edge_size`."""
    _check_image_dims(x)
    height, width = x.shape[-2:]
    return resize(x, shortest_edge_size(height, width, size, max_size), interpolation, antialias)


# ---------------------------------------------------------------- cropping


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The region [top, top + height) x [left, left + width); a view, no copy."""
    _check_image_dims(x)
    img_h, img_w = x.shape[-2:]
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > img_h or left + width > img_w:
        raise ValueError(
            f"crop (top={top}, left={left}, height={height}, width={width}) is outside the "
            f"{img_h}x{img_w} image"
        )
    return x[..., top : top + height, left : left + width]


def center_crop(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Central (height, width) region; a view unless the image is smaller than the crop.

    A side shorter than the crop is zero-padded first, with the larger half of the padding
    before the image, as transformers' PIL-backend `center_crop` does, so both give the same
    pixels.
    """
    _check_image_dims(x)
    crop_h, crop_w = _pair(size)
    img_h, img_w = x.shape[-2:]
    if crop_h > img_h or crop_w > img_w:
        pad_h, pad_w = max(crop_h - img_h, 0), max(crop_w - img_w, 0)
        top, left = math.ceil(pad_h / 2), math.ceil(pad_w / 2)
        padded = x.new_zeros((*x.shape[:-2], img_h + pad_h, img_w + pad_w))
        padded[..., top : top + img_h, left : left + img_w] = x
        x, img_h, img_w = padded, img_h + pad_h, img_w + pad_w
    top, left = (img_h - crop_h) // 2, (img_w - crop_w) // 2
    return x[..., top : top + crop_h, left : left + crop_w]


def uniform_crop(x: torch.Tensor, size: int, index: int, num_crops: int = 3) -> torch.Tensor:
    """Crop `index` of `num_crops` square crops spread along the longer side (multi-view testing).

    As the original VideoMAE test protocol: the shorter side is expected to be `size` already;
    crop k starts at int(k * (long - size) / (num_crops - 1)) along the longer side (left /
    centre / right for landscape frames, top / centre / bottom for portrait).
    """
    _check_image_dims(x)
    if not 0 <= index < num_crops:
        raise ValueError(f"index must be in [0, {num_crops}), got {index}")
    img_h, img_w = x.shape[-2:]
    if min(img_h, img_w) < size:
        raise ValueError(f"uniform_crop needs the shorter side >= {size}, got a {img_h}x{img_w} image")
    step = (max(img_h, img_w) - size) / (num_crops - 1) if num_crops > 1 else 0.0
    start = int(index * step) if num_crops > 1 else (max(img_h, img_w) - size) // 2
    if img_h >= img_w:
        return crop(x, start, (img_w - size) // 2, size, size)
    return crop(x, (img_h - size) // 2, start, size, size)


def random_resized_crop_params(
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) of a random area-`scale`, aspect-`ratio` region.

    torchvision's RandomResizedCrop rule: ten tries at a random area and log-uniform aspect
    ratio, then a central crop clamped to `ratio`.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return _randint(height - h + 1, generator), _randint(width - w + 1, generator), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(
    x: torch.Tensor,
    size: int | Sequence[int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    interpolation: str = "bilinear",
    exact: bool = True,
) -> torch.Tensor:
    """One random region (the same for every frame, so motion stays coherent), resized to `size`
    (`exact`: see `resize`)."""
    _check_image_dims(x)
    top, left, h, w = random_resized_crop_params(x.shape[-2], x.shape[-1], scale, ratio, generator)
    return resize(crop(x, top, left, h, w), size, interpolation, exact=exact)


def multi_scale_crop_params(
    height: int,
    width: int,
    size: int | Sequence[int],
    scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
    max_distort: int = 1,
    fix_crop: bool = True,
    more_fix_crop: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) as the original VideoMAE `GroupMultiScaleCrop` picks them.

    Crop sides are `int(min(height, width) * s)` for s in `scales` (snapped to the output size
    when within 3 pixels), height and width scales at most `max_distort` steps apart; the
    position is one of 5 (or 13 with `more_fix_crop`) fixed offsets on a 4 x 4 grid, or uniform
    when `fix_crop` is False.
    """
    out_h, out_w = _pair(size)
    base = min(height, width)
    crop_sizes = [int(base * s) for s in scales]
    crop_hs = [out_h if abs(c - out_h) < 3 else c for c in crop_sizes]
    crop_ws = [out_w if abs(c - out_w) < 3 else c for c in crop_sizes]
    pairs = [
        (h, w)
        for i, h in enumerate(crop_hs)
        for j, w in enumerate(crop_ws)
        if abs(i - j) <= max_distort and h <= height and w <= width
    ]
    if not pairs:
        raise ValueError(f"no crop of scales {tuple(scales)} fits a {height}x{width} image")
    crop_h, crop_w = pairs[_randint(len(pairs), generator)]
    if not fix_crop:
        top, left = _randint(height - crop_h + 1, generator), _randint(width - crop_w + 1, generator)
        return top, left, crop_h, crop_w
    h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]  # (row, column) steps: corners, centre
    if more_fix_crop:
        grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
    row, col = grid[_randint(len(grid), generator)]
    return row * h_step, col * w_step, crop_h, crop_w


def multi_scale_crop(
    x: torch.Tensor,
    size: int | Sequence[int],
    scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
    max_distort: int = 1,
    fix_crop: bool = True,
    more_fix_crop: bool = True,
    generator: torch.Generator | None = None,
    interpolation: str = "bilinear",
    exact: bool = True,
) -> torch.Tensor:
    """The VideoMAE pretraining crop: a multi-scale, fixed-offset region resized to `size`
    (`exact`: see `resize`)."""
    _check_image_dims(x)
    top, left, h, w = multi_scale_crop_params(
        x.shape[-2], x.shape[-1], size, scales, max_distort, fix_crop, more_fix_crop, generator
    )
    return resize(crop(x, top, left, h, w), size, interpolation, exact=exact)


def horizontal_flip(x: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (every frame)."""
    _check_image_dims(x)
    return x.flip(-1)


# ---------------------------------------------------------------- values


def _per_channel(
    value: float | Sequence[float], channels: int, name: str, like: torch.Tensor
) -> torch.Tensor:
    """A (C, 1, 1) float32 tensor from a scalar or a per-channel sequence."""
    values = [float(value)] * channels if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != channels:
        raise ValueError(f"{name} has {len(values)} values, but the images have {channels} channels")
    if not all(math.isfinite(v) for v in values) or (name == "std" and 0.0 in values):
        raise ValueError(f"{name} must be finite{' and non-zero' if name == 'std' else ''}, got {values}")
    return torch.tensor(values, dtype=torch.float32, device=like.device).view(channels, 1, 1)


def rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x * factor, as float32 (e.g. 1/255 to map uint8 to [0, 1])."""
    _check_image_dims(x)
    return x.to(torch.float32) * factor


def normalize(x: torch.Tensor, mean: float | Sequence[float], std: float | Sequence[float]) -> torch.Tensor:
    """(x - mean) / std per channel, as float32."""
    return rescale_and_normalize(x, 1.0, mean, std)


def rescale_and_normalize(
    x: torch.Tensor,
    rescale_factor: float | None,
    mean: float | Sequence[float] | None,
    std: float | Sequence[float] | None,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """(x * rescale_factor - mean) / std as x * (factor / std) + (-mean / std), as float32.

    The input (often uint8 and strided: a crop view) is read once, converted into the output,
    which is then scaled and shifted in place while it is hot in cache; on uint8 this is about
    twice as fast as one `addcmul`, which promotes and broadcasts element by element. Pass
    `rescale_factor=None` to skip rescaling, `mean=std=None` to skip normalising.

    Args:
        out: float32 tensor of x's shape to write into (any strides, e.g. a channels-last view,
            so the caller's final layout is written directly); a new contiguous one if None.
    """
    _check_image_dims(x)
    channels = x.shape[-3]
    factor = 1.0 if rescale_factor is None else float(rescale_factor)
    if mean is None or std is None:
        scale = _per_channel(factor, channels, "rescale_factor", x)
        shift = None
    else:
        std_t = _per_channel(std, channels, "std", x)
        scale = factor / std_t
        shift = -_per_channel(mean, channels, "mean", x) / std_t
    if out is None:
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    elif out.shape != x.shape or out.dtype != torch.float32:
        raise ValueError(f"out must be float32 of shape {tuple(x.shape)}, got {out.dtype} {tuple(out.shape)}")
    out.copy_(x)
    out.mul_(scale)
    return out if shift is None else out.add_(shift)
