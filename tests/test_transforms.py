"""videomae.transforms: resize against PIL, crops against transformers and the original recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from videomae import transforms as T


def _image(height, width, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    smooth = np.stack([(xx * 7 + yy) % 256, (yy * 3) % 256, ((xx * yy) // 5) % 256], axis=-1)
    noisy = rng.integers(0, 256, (height, width, 3))
    return np.where(rng.random((height, width, 1)) < 0.3, noisy, smooth).astype(np.uint8)


def _pil_resize(image, height, width, resample=Image.BILINEAR):
    return np.asarray(Image.fromarray(image).resize((width, height), resample)).astype(np.int64)


SIZES = [
    (720, 1280, 224, 398),
    (1280, 720, 398, 224),
    (100, 150, 224, 336),
    (37, 53, 224, 320),
    (481, 263, 113, 57),
    (280, 250, 224, 200),  # ratio 5/4: exact ties everywhere, where torch's uint8 kernel rounds unlike PIL
    (64, 80, 224, 280),  # upscaling 7/2
    (256, 256, 224, 224),
]


@pytest.mark.parametrize("height, width, out_h, out_w", SIZES)
def test_bilinear_resize_matches_pil_within_one_level(height, width, out_h, out_w):
    image = _image(height, width)
    expected = _pil_resize(image, out_h, out_w)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, 3, H, W), channels-last memory
    for source in (x, x.contiguous(), x.float()):
        out = T.resize(source, (out_h, out_w))
        assert out.dtype == source.dtype and out.shape == (1, 3, out_h, out_w)
        diff = np.abs(out[0].permute(1, 2, 0).double().numpy() - expected)
        # uint8 results are rounded like PIL's; float ones are not, and may sit a hair past one level.
        limit = 1.0 if source.dtype == torch.uint8 else 1.01
        assert diff.max() <= limit, f"{source.dtype}: max diff {diff.max()}"


def test_uint8_resize_is_the_same_in_every_memory_layout():
    """Channels-first and channels-last memory go to the kernel as they are; gapped memory (a crop
    view, a permuted video) is made dense in its own order. Every route gives the same bytes."""
    wide = torch.from_numpy(np.stack([_image(180, 340, seed) for seed in range(3)]))  # (T, H, W, 3)
    channels_last = wide[:, :, 10:330].contiguous().permute(0, 3, 1, 2)
    expected = T.resize(channels_last, (112, 199))
    for name, x in {
        "channels_first": channels_last.contiguous(),
        "channels_first_crop_view": wide.permute(0, 3, 1, 2).contiguous()[..., 10:330],
        "channels_last_crop_view": wide.permute(0, 3, 1, 2)[..., 10:330],
        "time_major_permuted": channels_last.transpose(0, 1).contiguous().transpose(0, 1),
    }.items():
        assert torch.equal(T.resize(x, (112, 199)), expected), name


def test_other_filters_follow_pil():
    image = _image(90, 120)
    x = torch.from_numpy(image).permute(2, 0, 1)
    nearest = T.resize(x, (45, 60), "nearest").permute(1, 2, 0).numpy()  # PIL's sampling points
    np.testing.assert_array_equal(nearest, _pil_resize(image, 45, 60, Image.NEAREST))
    nearest = T.resize(x, (45, 50), "nearest").permute(1, 2, 0).numpy()  # up to float rounding of them
    assert (nearest == _pil_resize(image, 45, 50, Image.NEAREST)).mean() > 0.9
    bicubic = T.resize(x, (45, 50), "bicubic").permute(1, 2, 0).numpy().astype(np.int64)
    assert np.abs(bicubic - _pil_resize(image, 45, 50, Image.BICUBIC)).max() <= 2
    with pytest.raises(ValueError, match="interpolation"):
        T.resize(x, 10, "lanczos")


def test_resize_keeps_leading_dims_and_handles_half_precision():
    clips = torch.randint(0, 256, (2, 3, 3, 40, 60), dtype=torch.uint8)  # (B, T, C, H, W)
    out = T.resize_shortest_edge(clips, 20)
    assert out.shape == (2, 3, 3, 20, 30) and out.dtype == torch.uint8
    torch.testing.assert_close(out[1, 2], T.resize_shortest_edge(clips[1, 2], 20))
    half = T.resize(clips.half(), (20, 30))
    assert half.dtype == torch.float16
    assert T.resize(clips, (40, 60)) is clips
    with pytest.raises(ValueError, match="channels, height, width"):
        T.resize(torch.zeros(5, 5), 3)


def test_shortest_edge_size_follows_transformers():
    from transformers.image_transforms import get_resize_output_image_size, get_size_with_aspect_ratio

    for height, width in [(720, 1280), (1280, 720), (100, 100), (37, 53), (481, 263), (224, 225)]:
        image = np.zeros((3, height, width), np.uint8)
        expected = get_resize_output_image_size(image, 224, default_to_square=False, input_data_format="channels_first")
        assert T.shortest_edge_size(height, width, 224) == tuple(expected)
        assert T.shortest_edge_size(height, width, 200, 250) == get_size_with_aspect_ratio((height, width), 200, 250)


@pytest.mark.parametrize(
    "height, width, crop", [(10, 12, (4, 6)), (7, 9, (3, 3)), (5, 3, (8, 4)), (4, 9, (6, 5)), (6, 6, (6, 6))]
)
def test_center_crop_matches_transformers_including_padding(height, width, crop):
    from transformers.image_transforms import center_crop

    image = np.random.default_rng(0).integers(1, 256, (3, height, width)).astype(np.uint8)
    expected = center_crop(image, crop, input_data_format="channels_first")
    out = T.center_crop(torch.from_numpy(image)[None], crop)[0]
    np.testing.assert_array_equal(out.numpy(), expected)


def test_crop_is_a_view_and_checks_bounds():
    x = torch.arange(2 * 3 * 6 * 8, dtype=torch.float32).reshape(2, 3, 6, 8)
    out = T.crop(x, 1, 2, 3, 4)
    assert out.data_ptr() == x[..., 1:, 2:].data_ptr() and out.shape == (2, 3, 3, 4)
    with pytest.raises(ValueError, match="outside the 6x8 image"):
        T.crop(x, 4, 0, 3, 3)


def test_uniform_crop_positions():
    x = torch.arange(224 * 300, dtype=torch.float32).reshape(1, 1, 224, 300)
    lefts = [int(T.uniform_crop(x, 224, k)[0, 0, 0, 0].item()) for k in range(3)]
    assert lefts == [0, 38, 76]  # int(k * (300 - 224) / 2)
    tall = x.transpose(-1, -2)
    assert T.uniform_crop(tall, 224, 2).shape == (1, 1, 224, 224)


def test_random_resized_crop_is_reproducible_and_within_bounds():
    for seed in range(50):
        top, left, h, w = T.random_resized_crop_params(120, 160, generator=torch.Generator().manual_seed(seed))
        again = T.random_resized_crop_params(120, 160, generator=torch.Generator().manual_seed(seed))
        assert (top, left, h, w) == again
        assert 0 <= top and top + h <= 120 and 0 <= left and left + w <= 160
        assert 0.08 * 120 * 160 * 0.8 <= h * w <= 120 * 160
    clip = torch.randint(0, 256, (1, 3, 120, 160), dtype=torch.uint8).expand(4, 3, 120, 160)
    out = T.random_resized_crop(clip, 64, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 64, 64) and torch.equal(out[0], out[3])  # one crop for every frame


def _original_multiscale_candidates(image_w, image_h, size, scales=(1, 0.875, 0.75, 0.66)):
    """Every (w, h, x, y) the original GroupMultiScaleCrop can pick (max_distort 1, 13 offsets)."""
    base = min(image_w, image_h)
    crop_sizes = [int(base * s) for s in scales]
    crop_h = [size if abs(c - size) < 3 else c for c in crop_sizes]
    crop_w = [size if abs(c - size) < 3 else c for c in crop_sizes]
    pairs = [(w, h) for i, h in enumerate(crop_h) for j, w in enumerate(crop_w) if abs(i - j) <= 1]
    candidates = set()
    for w, h in pairs:
        ws, hs = (image_w - w) // 4, (image_h - h) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        candidates |= {(w, h, a * ws, b * hs) for a, b in grid}
    return candidates


def test_multi_scale_crop_picks_what_the_original_picks():
    candidates = _original_multiscale_candidates(320, 240, 224)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(3000):
        top, left, h, w = T.multi_scale_crop_params(240, 320, 224, generator=generator)
        seen.add((w, h, left, top))
    assert seen <= candidates
    assert len(seen) == len(candidates)
    clip = torch.randint(0, 256, (4, 3, 240, 320), dtype=torch.uint8)
    out = T.multi_scale_crop(clip, 224, generator=torch.Generator().manual_seed(1))
    assert out.shape == (4, 3, 224, 224) and out.dtype == torch.uint8


def test_flip_rescale_normalize():
    x = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    torch.testing.assert_close(T.horizontal_flip(x), x.flip(-1))
    torch.testing.assert_close(T.rescale(x, 1 / 255), x.float() / 255)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    expected = (x.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    fused = T.rescale_and_normalize(x, 1 / 255, mean, std)
    assert fused.dtype == torch.float32 and fused.is_contiguous()
    torch.testing.assert_close(fused, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(T.normalize(x.float(), 0.5, 0.5), (x.float() - 0.5) / 0.5)
    torch.testing.assert_close(T.rescale_and_normalize(x, 1 / 255, None, None), x.float() / 255)
    strided = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)[..., 1:4]  # a channels-last crop
    torch.testing.assert_close(T.rescale_and_normalize(strided, 1 / 255, mean, std), expected[..., 1:4])
    into = torch.empty(2, 5, 7, 3).permute(0, 3, 1, 2)  # written in place, in the layout given
    assert T.rescale_and_normalize(x, 1 / 255, mean, std, out=into) is into
    torch.testing.assert_close(into, expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="out must be float32 of shape"):
        T.rescale_and_normalize(x, 1 / 255, mean, std, out=torch.empty(2, 3, 5, 6))
    with pytest.raises(ValueError, match="mean has 2 values, but the images have 3 channels"):
        T.rescale_and_normalize(x, 1 / 255, [0.5, 0.5], std)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resize_on_gpu_matches_cpu():
    image = _image(360, 640)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    cpu = T.resize_shortest_edge(x, 224).int()
    gpu = T.resize_shortest_edge(x.cuda(), 224).cpu().int()
    assert (cpu - gpu).abs().max() <= 1


def test_inexact_resize_uses_the_uint8_kernel_and_stays_within_a_few_levels():
    """Training crops (exact=False) take torch's uint8 kernel at every scale, including the
    upscaling of multi-scale crops smaller than the output; it stays close to the exact path."""
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(4, 3, 30, 40, generator=generator) * 255, size=(211, 300), mode="bilinear")
    x = smooth.round().to(torch.uint8)
    for size in ((224, 224), (150, 150)):
        fast = T.resize(x, size, exact=False)
        exact = T.resize(x, size)
        expected = F.interpolate(x.contiguous(memory_format=torch.channels_last), size=size, mode="bilinear",
                                 antialias=True, align_corners=False)
        assert fast.dtype == torch.uint8 and torch.equal(fast, expected)
        assert (fast.int() - exact.int()).abs().max() <= 2
    crop = T.multi_scale_crop(x, 224, generator=torch.Generator().manual_seed(1), exact=False)
    assert crop.shape == (4, 3, 224, 224) and crop.dtype == torch.uint8
