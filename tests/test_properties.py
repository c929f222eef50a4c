"""Properties that must hold for any valid input, checked on inputs hypothesis draws.

- The processor: any size, dtype, channel count and layout of video gives `pixel_values` of the
  promised shape (four channels kept unless `do_convert_rgb`), float32, finite, inside the range
  that rescaling and mean / std allow.
- Masks: exact counts for any grid and ratio; tube masks equal at every time step; patchify
  then unpatchify is the identity; `split_indices` splits every token once, both parts ascending.
- Frame sampling: indices in range, in order, as many as asked, for any clip length, rate and
  video length, videos shorter than a clip included.

Bounded so the whole file takes seconds: a few dozen examples per property, no deadline.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from videomae import VideoMAEImageProcessor, masking, sampling

FEW = settings(max_examples=25, deadline=None)
SOME = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------- the processor
@st.composite
def videos(draw):
    """What to pass the processor and what is known about it: input_data_format, frames, the
    lowest and highest value it holds, and for four channels the alpha's kind and highest value."""
    frames, height, width = draw(st.integers(1, 3)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([1, 3, 4]))
    dtype = draw(st.sampled_from(["uint8", "int16", "bool", "float16", "float32", "float64"]))
    layout = draw(st.sampled_from(["channels_last", "channels_first", "frame list", "tensor", "pil", "gray frames"]))
    if layout == "pil":
        dtype = "uint8"
    if layout == "gray frames":
        channels = 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype in ("uint8", "int16"):
        data = rng.integers(0, 256, (frames, height, width, channels)).astype(dtype)
    elif dtype == "bool":
        data = rng.random((frames, height, width, channels)) < 0.5
    else:
        scale = draw(st.sampled_from([1.0, 255.0]))
        data = (rng.random((frames, height, width, channels)) * scale).astype(dtype)
    as_float = data.astype(np.float64) if dtype != "float16" else data.astype(np.float32).astype(np.float64)
    low, high = float(as_float.min()), float(as_float.max())
    fmt = None
    if layout == "channels_last":
        video, fmt = data, "channels_last"
    elif layout == "channels_first":
        video, fmt = np.ascontiguousarray(data.transpose(0, 3, 1, 2)), "channels_first"
    elif layout == "frame list":
        video, fmt = list(data), "channels_last"
    elif layout == "tensor":
        video, fmt = torch.from_numpy(np.ascontiguousarray(data)), "channels_last"
    elif layout == "pil":
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        video = [Image.fromarray(frame[..., 0] if channels == 1 else frame, mode) for frame in data]
    else:
        video = [frame[..., 0] for frame in data]  # (H, W) frames, no channel axis
    alpha = None if channels != 4 else "float" if dtype.startswith("float") else "uint8"
    return dict(video=video, fmt=fmt, frames=frames, low=low, high=high, alpha=alpha,
                alpha_max=float(as_float[..., -1].max()))


@SOME
@given(
    video=videos(),
    shortest=st.integers(4, 48),
    crop=st.tuples(st.integers(4, 48), st.integers(4, 48)),
    mean=st.lists(st.floats(-1, 1), min_size=4, max_size=4),
    std=st.lists(st.floats(0.1, 2), min_size=4, max_size=4),
    rescale=st.booleans(),
    convert=st.booleans(),
    channels_last_out=st.booleans(),
    return_tensors=st.sampled_from(["pt", "np"]),
)
def test_processor_output_shape_dtype_and_range_for_any_valid_input(video, shortest, crop, mean, std, rescale,
                                                                    convert, channels_last_out, return_tensors):
    num_frames, low, high = video["frames"], video["low"], video["high"]
    if video["alpha"] is not None and not convert:  # four channels kept: a mean and std for each
        channels = 4
        video["alpha"] = None
    else:
        channels, mean, std = 3, mean[:3], std[:3]
    processor = VideoMAEImageProcessor(size={"shortest_edge": shortest}, image_mean=mean, image_std=std,
                                       crop_size={"height": crop[0], "width": crop[1]}, do_rescale=rescale,
                                       do_convert_rgb=convert)

    def run():
        return processor(video["video"], input_data_format=video["fmt"], return_tensors=return_tensors,
                         data_format="channels_last" if channels_last_out else "channels_first").pixel_values

    # Floats are 0..255 when the processor rescales, else 0..1: alpha beyond that scale is refused.
    white = 1.0 if video["alpha"] == "float" and not rescale else 255.0
    if video["alpha"] == "float" and video["alpha_max"] > white:
        with pytest.raises(ValueError, match="alpha channel of float frames must hold 0..1"):
            run()
        return
    if video["alpha"] is not None:  # composited over white
        high = max(high, white)
    out = run()
    pixels = torch.as_tensor(out)
    if channels_last_out:
        assert pixels.shape == (1, num_frames, crop[0], crop[1], channels)
        pixels = pixels.permute(0, 1, 4, 2, 3)
    assert pixels.shape == (1, num_frames, channels, crop[0], crop[1])
    assert pixels.dtype == torch.float32 and isinstance(out, torch.Tensor if return_tensors == "pt" else np.ndarray)
    assert bool(torch.isfinite(pixels).all())
    factor = 1 / 255 if rescale else 1.0
    low, high = min(low, 0.0), high  # a crop larger than the frame is padded with zeros
    for c in range(channels):
        level = factor / std[c] + 1e-5  # one 8-bit level: the uint8 resize rounds
        lowest, highest = (low * factor - mean[c]) / std[c], (high * factor - mean[c]) / std[c]
        channel = pixels[:, :, c]
        assert float(channel.min()) >= lowest - level and float(channel.max()) <= highest + level


# --------------------------------------------------------------------------- masks
grids = st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 8))
ratios = st.floats(0.0, 1.0, exclude_max=True)


@SOME
@given(grid=grids, ratio=ratios, batch=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_tube_mask_counts_are_exact_and_the_same_at_every_time_step(grid, ratio, batch, seed):
    t, h, w = grid
    mask = masking.tube_mask(grid, ratio, batch, torch.Generator().manual_seed(seed))
    assert mask.shape == (batch, t * h * w) and mask.dtype == torch.bool
    per_slice = mask.reshape(batch, t, h * w)
    assert bool((per_slice.sum(-1) == int(ratio * h * w)).all())
    assert bool((per_slice == per_slice[:, :1]).all())


@SOME
@given(num_patches=st.integers(1, 400), ratio=ratios, batch=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_random_mask_counts_are_exact(num_patches, ratio, batch, seed):
    mask = masking.random_mask(num_patches, ratio, batch, torch.Generator().manual_seed(seed))
    assert mask.shape == (batch, num_patches) and bool((mask.sum(1) == int(ratio * num_patches)).all())


@SOME
@given(grid=grids, tubelet=st.integers(1, 3), patch=st.integers(1, 4), channels=st.integers(1, 4),
       batch=st.integers(1, 2), seed=st.integers(0, 2**31))
def test_patchify_then_unpatchify_is_the_identity(grid, tubelet, patch, channels, batch, seed):
    gt, gh, gw = grid
    video = torch.randn(batch, gt * tubelet, channels, gh * patch, gw * patch,
                        generator=torch.Generator().manual_seed(seed))
    patches = masking.patchify(video, tubelet, patch)
    assert patches.shape == (batch, gt * gh * gw, tubelet * patch * patch * channels)
    assert torch.equal(masking.unpatchify(patches, grid, tubelet, patch), video)


@SOME
@given(num_patches=st.integers(1, 200), ratio=ratios, batch=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_split_indices_gives_every_token_once_visible_then_masked_each_ascending(num_patches, ratio, batch, seed):
    mask = masking.random_mask(num_patches, ratio, batch, torch.Generator().manual_seed(seed))
    num_masked = int(ratio * num_patches)
    visible, masked = masking.split_indices(mask, num_masked)
    assert visible.shape == (batch, num_patches - num_masked) and masked.shape == (batch, num_masked)
    for row in range(batch):
        assert bool((visible[row].diff() > 0).all()) and bool((masked[row].diff() > 0).all())
        assert sorted(visible[row].tolist() + masked[row].tolist()) == list(range(num_patches))
        assert not bool(mask[row, visible[row]].any()) and bool(mask[row, masked[row]].all())


# --------------------------------------------------------------------------- frame sampling
def _in_order_and_range(indices: np.ndarray, count: int, seg_len: int) -> None:
    assert indices.shape == (count,) and indices.dtype == np.int64
    assert bool((np.diff(indices) >= 0).all())
    assert int(indices.min()) >= 0 and int(indices.max()) < seg_len


@SOME
@given(clip_len=st.integers(1, 32), rate=st.integers(1, 8), seg_len=st.integers(1, 400),
       generator=st.sampled_from(["numpy", "torch"]), seed=st.integers(0, 2**31))
def test_sample_frame_indices(clip_len, rate, seg_len, generator, seed):
    rng = np.random.default_rng(seed) if generator == "numpy" else torch.Generator().manual_seed(seed)
    indices = sampling.sample_frame_indices(clip_len, rate, seg_len, rng)
    _in_order_and_range(indices, clip_len, seg_len)
    if seg_len > clip_len * rate:
        assert int(indices[-1] - indices[0]) <= clip_len * rate  # one clip's span, inside the video
    else:  # a video too short for the clip: spread over all of it, frames repeated
        assert int(indices[0]) == 0 and (clip_len == 1 or int(indices[-1]) == seg_len - 1)


@SOME
@given(clip_len=st.integers(1, 32), seg_len=st.integers(1, 400), training=st.booleans(), seed=st.integers(0, 2**31))
def test_uniform_indices(clip_len, seg_len, training, seed):
    indices = sampling.uniform_indices(clip_len, seg_len, training=training, generator=np.random.default_rng(seed))
    _in_order_and_range(indices, clip_len, seg_len)
    segment = seg_len // clip_len
    if segment > 0:  # one frame from each of clip_len equal segments
        assert bool((indices // segment >= np.arange(clip_len)).all())
        assert bool((indices < (np.arange(clip_len) + 1) * segment + seg_len % clip_len).all())


@SOME
@given(clip_len=st.integers(1, 16), rate=st.integers(1, 8), seg_len=st.integers(1, 300), num_clips=st.integers(1, 6))
def test_multi_clip_indices(clip_len, rate, seg_len, num_clips):
    clips = sampling.multi_clip_indices(clip_len, rate, seg_len, num_clips)
    assert clips.shape == (num_clips, clip_len) and clips.dtype == np.int64
    for row in clips:
        _in_order_and_range(row, clip_len, seg_len)
        assert bool((np.diff(row) <= rate).all())
    last = (seg_len - 1) // rate * rate
    if num_clips > 1:  # from the first frame to the last strided one
        assert int(clips[0, 0]) == 0 and int(clips[-1, -1]) == last
    assert bool((np.diff(clips[:, 0]) >= 0).all())


@FEW
@given(clip_len=st.integers(-3, 0), rate=st.integers(-2, 4), seg_len=st.integers(-5, 10))
def test_sampling_refuses_non_positive_sizes(clip_len, rate, seg_len):
    with pytest.raises(ValueError, match="must be a positive integer"):
        sampling.sample_frame_indices(clip_len, rate, seg_len)
