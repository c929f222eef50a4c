"""Fine-tuning augmentations on uint8 clips: RandAugment and random erasing.

Both are pure functions of a uint8 clip (T, C, H, W) and a `torch.Generator`, and return a
uint8 clip of the same shape. Every random choice (which operations, their magnitudes and
signs, whether to erase, where, and the erased pixels) is drawn once per clip, so every frame
gets the same transform: a clip of one repeated frame stays a clip of one repeated frame.
The same generator state gives the same result.

RandAugment follows timm's `rand_augment.py` (the original VideoMAE recipe uses
`rand-m7-n4-mstd0.5-inc1`): its config string, its operations, their magnitude -> argument
mapping (levels out of 10), each chosen operation applied with probability 0.5, and a fill of
grey (128) where a geometric operation brings in pixels from outside the frame. Geometric
operations resample bilinearly (timm's video recipe asks PIL for bicubic); the colour
operations work on uint8 values as PIL's do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LEVEL_DENOM = 10.0  # magnitudes are levels out of 10
_FILL = 128  # grey, timm's fill for pixels a geometric operation brings in from outside
_TRANSLATE_PCT = 0.45  # timm's default relative translation at level 10


# --------------------------------------------------------------------------- operations
# Each takes a uint8 clip (T, C, H, W) and its argument, and returns a uint8 clip.
def _check_clip(clip: torch.Tensor) -> None:
    if clip.dim() != 4 or clip.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 clip (T, C, H, W), got {clip.dtype} of shape {tuple(clip.shape)}")


def _affine(clip: torch.Tensor, matrix: tuple[float, float, float, float, float, float]) -> torch.Tensor:
    """PIL's `Image.transform(AFFINE, matrix)`: output pixel (x, y) (centres at +0.5) takes the
    input at (a x + b y + c, d x + e y + f); outside the frame is grey."""
    t, c, h, w = clip.shape
    a, b, cc, d, e, f = matrix
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W)
    src_x = a * x + b * y + cc
    src_y = d * x + e * y + f
    grid = torch.stack([2 * src_x / w - 1, 2 * src_y / h - 1], dim=-1).expand(t, h, w, 2)  # (T, H, W, 2)
    # A channel of ones, resampled alike, says how much of each output pixel came from inside.
    pixels = torch.cat([clip.float(), torch.ones(t, 1, h, w)], dim=1)  # (T, C + 1, H, W)
    out = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = out[:, c:]
    out = out[:, :c] + (1 - inside) * _FILL
    return out.round_().clamp_(0, 255).to(torch.uint8)


def shear_x(clip: torch.Tensor, factor: float) -> torch.Tensor:
    return _affine(clip, (1, factor, 0, 0, 1, 0))


def shear_y(clip: torch.Tensor, factor: float) -> torch.Tensor:
    return _affine(clip, (1, 0, 0, factor, 1, 0))


def translate_x_rel(clip: torch.Tensor, pct: float) -> torch.Tensor:
    return _affine(clip, (1, 0, pct * clip.shape[-1], 0, 1, 0))


def translate_y_rel(clip: torch.Tensor, pct: float) -> torch.Tensor:
    return _affine(clip, (1, 0, 0, 0, 1, pct * clip.shape[-2]))


def rotate(clip: torch.Tensor, degrees: float) -> torch.Tensor:
    """Counter-clockwise about the centre, as PIL's `Image.rotate`."""
    h, w = clip.shape[-2:]
    angle = -math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = w / 2, h / 2
    return _affine(clip, (cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy))


def auto_contrast(clip: torch.Tensor, _: None = None) -> torch.Tensor:
    """Each frame's channels stretched to 0..255 (PIL's `autocontrast`, per image as timm's
    video recipe applies it to each frame)."""
    lo = clip.amin(dim=(-2, -1), keepdim=True).float()
    hi = clip.amax(dim=(-2, -1), keepdim=True).float()
    flat = hi <= lo
    scale = 255.0 / torch.where(flat, torch.ones_like(hi), hi - lo)
    out = ((clip.float() - lo) * scale).floor_().clamp_(0, 255).to(torch.uint8)
    return torch.where(flat, clip, out)


def equalize(clip: torch.Tensor, _: None = None) -> torch.Tensor:
    """Histogram equalisation of each frame's channels (PIL's `ImageOps.equalize`)."""
    t, c, h, w = clip.shape
    planes = clip.reshape(t * c, h * w).long()
    offsets = torch.arange(t * c).unsqueeze(1) * 256
    hist = torch.bincount((planes + offsets).reshape(-1), minlength=t * c * 256).reshape(t * c, 256)
    # PIL: step = (pixels - count of the last value present) // 255; lut[i] = (step // 2 + sum(h[:i])) // step.
    last = 255 - torch.flip(hist > 0, dims=[1]).long().argmax(dim=1)
    step = (hist.sum(dim=1) - hist.gather(1, last.unsqueeze(1)).squeeze(1)) // 255  # (T*C,)
    before = torch.cumsum(hist, dim=1) - hist
    lut = ((step.unsqueeze(1) // 2 + before) // step.clamp(min=1).unsqueeze(1)).clamp(max=255)
    lut = torch.where(step.unsqueeze(1) > 0, lut, torch.arange(256).expand(t * c, 256))
    return lut.gather(1, planes).to(torch.uint8).reshape(t, c, h, w)


def invert(clip: torch.Tensor, _: None = None) -> torch.Tensor:
    return 255 - clip


def posterize(clip: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the top `bits` bits of each value (0 bits: black)."""
    if bits >= 8:
        return clip
    return clip & (~((1 << (8 - bits)) - 1) & 0xFF)


def solarize(clip: torch.Tensor, threshold: int) -> torch.Tensor:
    return torch.where(clip < threshold, clip, 255 - clip)


def solarize_add(clip: torch.Tensor, add: int, threshold: int = 128) -> torch.Tensor:
    added = (clip.to(torch.int16) + add).clamp_(0, 255).to(torch.uint8)
    return torch.where(clip < threshold, added, clip)


def _blend(clip: torch.Tensor, degenerate: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's `ImageEnhance`: degenerate + factor x (clip - degenerate), clipped to 0..255."""
    out = degenerate + factor * (clip.float() - degenerate)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _grey(clip: torch.Tensor) -> torch.Tensor:
    """(T, 1, H, W) float: PIL's "L" conversion (ITU-R 601-2 luma), rounded."""
    r, g, b = clip.float().unbind(dim=1)
    return ((r * 299 + g * 587 + b * 114) / 1000).round_().unsqueeze(1)


def color(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """Saturation: 0 is grey, 1 the clip."""
    return _blend(clip, _grey(clip), factor)


def contrast(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """Contrast about each frame's mean grey level."""
    mean = _grey(clip).mean(dim=(1, 2, 3), keepdim=True).add_(0.5).floor_()
    return _blend(clip, mean, factor)


def brightness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(clip, torch.zeros(()), factor)


def sharpness(clip: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with PIL's SMOOTH filter (3x3, centre 5, others 1, over 13); the border is kept."""
    c = clip.shape[1]
    kernel = torch.ones(3, 3)
    kernel[1, 1] = 5
    kernel = (kernel / 13).expand(c, 1, 3, 3)
    smooth = clip.float()
    inner = F.conv2d(smooth, kernel, groups=c).round_()  # (T, C, H - 2, W - 2)
    smooth = smooth.clone()
    smooth[..., 1:-1, 1:-1] = inner
    return _blend(clip, smooth, factor)


# --------------------------------------------------------------------------- magnitudes
# Level (0..10) -> the operation's argument, as timm maps them. `sign` draws a random sign.
Sign = Callable[[float], float]


def _rotate_arg(level: float, sign: Sign) -> float:
    return sign(level / _LEVEL_DENOM * 30.0)


def _shear_arg(level: float, sign: Sign) -> float:
    return sign(level / _LEVEL_DENOM * 0.3)


def _translate_rel_arg(level: float, sign: Sign) -> float:
    return sign(level / _LEVEL_DENOM * _TRANSLATE_PCT)


def _enhance_arg(level: float, sign: Sign) -> float:
    return level / _LEVEL_DENOM * 1.8 + 0.1


def _enhance_increasing_arg(level: float, sign: Sign) -> float:
    return max(0.1, 1.0 + sign(level / _LEVEL_DENOM * 0.9))  # >= 0.1 even past level 10


def _posterize_arg(level: float, sign: Sign) -> int:
    return int(level / _LEVEL_DENOM * 4)


def _posterize_increasing_arg(level: float, sign: Sign) -> int:
    return 4 - _posterize_arg(level, sign)


def _solarize_arg(level: float, sign: Sign) -> int:
    return int(level / _LEVEL_DENOM * 256)


def _solarize_increasing_arg(level: float, sign: Sign) -> int:
    return 256 - _solarize_arg(level, sign)


def _solarize_add_arg(level: float, sign: Sign) -> int:
    return int(level / _LEVEL_DENOM * 110)


def _no_arg(level: float, sign: Sign) -> None:
    return None


Op = tuple[Callable[[torch.Tensor, object], torch.Tensor], Callable[[float, Sign], object]]
OPS: dict[str, Op] = {
    "AutoContrast": (auto_contrast, _no_arg),
    "Equalize": (equalize, _no_arg),
    "Invert": (invert, _no_arg),
    "Rotate": (rotate, _rotate_arg),
    "Posterize": (posterize, _posterize_arg),
    "PosterizeIncreasing": (posterize, _posterize_increasing_arg),
    "Solarize": (solarize, _solarize_arg),
    "SolarizeIncreasing": (solarize, _solarize_increasing_arg),
    "SolarizeAdd": (solarize_add, _solarize_add_arg),
    "Color": (color, _enhance_arg),
    "ColorIncreasing": (color, _enhance_increasing_arg),
    "Contrast": (contrast, _enhance_arg),
    "ContrastIncreasing": (contrast, _enhance_increasing_arg),
    "Brightness": (brightness, _enhance_arg),
    "BrightnessIncreasing": (brightness, _enhance_increasing_arg),
    "Sharpness": (sharpness, _enhance_arg),
    "SharpnessIncreasing": (sharpness, _enhance_increasing_arg),
    "ShearX": (shear_x, _shear_arg),
    "ShearY": (shear_y, _shear_arg),
    "TranslateXRel": (translate_x_rel, _translate_rel_arg),
    "TranslateYRel": (translate_y_rel, _translate_rel_arg),
}
# timm's RandAugment sets: `inc1` picks the one whose magnitudes all grow stronger with the level.
RAND_TRANSFORMS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
                   "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_INCREASING_TRANSFORMS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
                              "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
                              "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel",
                              "TranslateYRel")


# --------------------------------------------------------------------------- RandAugment
@dataclass(frozen=True)
class RandAugmentSpec:
    """A parsed timm RandAugment string such as `rand-m7-n4-mstd0.5-inc1`: `num_layers` operations
    drawn (with replacement) from `ops`, each applied with probability `prob` at a magnitude
    drawn from N(magnitude, magnitude_std), clipped to [0, magnitude_max]."""

    magnitude: float = 10.0
    num_layers: int = 2
    magnitude_std: float = 0.0
    magnitude_max: float = _LEVEL_DENOM
    prob: float = 0.5
    ops: tuple[str, ...] = RAND_TRANSFORMS


def parse_rand_augment(config: str) -> RandAugmentSpec:
    """`rand-m7-n4-mstd0.5-inc1` -> RandAugmentSpec. Sections: `m` magnitude, `n` operations per
    clip, `mstd` magnitude std (`inf`: uniform in [0, m]), `mmax` upper bound, `inc` 1 for the
    increasing set, `p` probability of each operation."""
    parts = config.split("-")
    if parts[0] != "rand" or len(parts) < 2:
        raise ValueError(f"RandAugment config {config!r}: expected 'rand-' then sections, e.g. "
                         f"'rand-m7-n4-mstd0.5-inc1'")
    fields: dict[str, object] = {}
    increasing = False
    for part in parts[1:]:
        key = next((k for k in ("mstd", "mmax", "inc", "m", "n", "p") if part.startswith(k)), None)
        value = part[len(key):] if key else ""
        try:
            if key == "mstd":
                fields["magnitude_std"] = float(value)
            elif key == "mmax":
                fields["magnitude_max"] = float(value)
            elif key == "inc":
                increasing = bool(int(value))
            elif key == "m":
                fields["magnitude"] = float(value)
            elif key == "n":
                fields["num_layers"] = int(value)
            elif key == "p":
                fields["prob"] = float(value)
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"RandAugment config {config!r}: section {part!r} is not one of m<float>, n<int>, "
                             f"mstd<float>, mmax<float>, inc<0|1>, p<float>") from None
    spec = RandAugmentSpec(**fields, ops=RAND_INCREASING_TRANSFORMS if increasing else RAND_TRANSFORMS)
    if spec.num_layers < 0 or not 0.0 <= spec.prob <= 1.0 or spec.magnitude_std < 0:
        raise ValueError(f"RandAugment config {config!r}: n must be >= 0, p in [0, 1] and mstd >= 0")
    return spec


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator))


def rand_augment(clip: torch.Tensor, spec: RandAugmentSpec | str, generator: torch.Generator) -> torch.Tensor:
    """RandAugment with one draw per clip: the same operations, magnitudes and signs on every frame.

    Args:
        clip: uint8 (T, C, H, W), C = 3 (the colour operations use RGB luma).
        spec: a `RandAugmentSpec` or its string (`rand-m7-n4-mstd0.5-inc1`).
        generator: the source of every random choice.
    """
    _check_clip(clip)
    if isinstance(spec, str):
        spec = parse_rand_augment(spec)

    def sign(value: float) -> float:
        return -value if _uniform(generator) < 0.5 else value

    chosen = torch.randint(len(spec.ops), (spec.num_layers,), generator=generator).tolist()
    for index in chosen:
        name = spec.ops[index]
        if spec.prob < 1.0 and _uniform(generator) > spec.prob:
            continue
        magnitude = spec.magnitude
        if spec.magnitude_std == math.inf:
            magnitude = _uniform(generator) * magnitude
        elif spec.magnitude_std > 0:
            magnitude = magnitude + spec.magnitude_std * float(torch.randn((), generator=generator))
        magnitude = min(spec.magnitude_max, max(0.0, magnitude))
        op, level_to_arg = OPS[name]
        clip = op(clip, level_to_arg(magnitude, sign))
    return clip


# --------------------------------------------------------------------------- random erasing
def random_erasing(
    clip: torch.Tensor,
    probability: float,
    generator: torch.Generator,
    min_area: float = 0.02,
    max_area: float = 1 / 3,
    min_aspect: float = 0.3,
) -> torch.Tensor:
    """timm's random erasing in pixel mode, one region, the same region and pixels on every frame.

    With `probability`, a rectangle of `min_area`..`max_area` of the frame, aspect ratio
    log-uniform in [min_aspect, 1 / min_aspect], is filled with random pixels (10 tries to fit
    one, as timm; none fitting leaves the clip as it was). timm erases after normalisation with
    N(0, 1) values; this runs on uint8 before normalisation, so the pixels are uniform random bytes.
    """
    _check_clip(clip)
    if probability <= 0 or _uniform(generator) >= probability:
        return clip
    _, c, h, w = clip.shape
    log_lo, log_hi = math.log(min_aspect), math.log(1 / min_aspect)
    for _ in range(10):
        target = (min_area + (max_area - min_area) * _uniform(generator)) * h * w
        aspect = math.exp(log_lo + (log_hi - log_lo) * _uniform(generator))
        eh = int(round(math.sqrt(target * aspect)))
        ew = int(round(math.sqrt(target / aspect)))
        if 0 < eh < h and 0 < ew < w:
            top = int(torch.randint(h - eh + 1, (), generator=generator))
            left = int(torch.randint(w - ew + 1, (), generator=generator))
            out = clip.clone()
            out[:, :, top:top + eh, left:left + ew] = torch.randint(
                256, (c, eh, ew), generator=generator, dtype=torch.uint8)  # one draw, every frame
            return out
    return clip


__all__ = ["RandAugmentSpec", "parse_rand_augment", "rand_augment", "random_erasing", "OPS", "RAND_TRANSFORMS",
           "RAND_INCREASING_TRANSFORMS"]
